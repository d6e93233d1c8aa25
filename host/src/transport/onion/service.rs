//! One tab's onion service: its Arti configuration, its launch, the console lines about it,
//! and its streams handed to the tab as connections.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use arti_client::KeystoreSelector;
use futures::{Stream, StreamExt as _};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tor_hscrypto::pk::HsClientDescEncKey;
use tor_hsservice::HsNickname;
use tor_hsservice::config::restricted_discovery::HsClientNickname;
use tor_hsservice::config::{OnionServiceConfig, OnionServiceConfigBuilder, TokenBucketConfig};
use tor_hsservice::status::{OnionServiceStatus, State};

use super::client::Client;
use super::keys::TabKeys;
use super::streams::{self, HTTP_PORT};
use crate::config::OnionTabOptions;
use crate::console::Console;
use crate::logging::Publication;
use crate::transport::Incoming;

/// Streams one visitor circuit may have open at once. A browser opens a handful; more is
/// someone trying to exhaust the tab, and Arti closes that circuit.
const MAX_STREAMS_PER_CIRCUIT: u32 = 64;

/// How long one reachability check may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Pause after the first failed reachability check; it doubles up to [`PROBE_MAX_PAUSE`].
const PROBE_FIRST_PAUSE: Duration = Duration::from_secs(1);

/// Longest pause between reachability checks.
const PROBE_MAX_PAUSE: Duration = Duration::from_secs(30);

/// When the reachability check starts if Arti's publisher has not said that the descriptor is
/// out (see [`published`]): the check then decides when the address is printed.
const PROBE_FALLBACK: Duration = Duration::from_secs(20);

/// How long after the address was printed (the descriptor is out) the host's own check may
/// take before the console says that it could not reach the tab yet.
const SELF_CHECK_GRACE: Duration = Duration::from_secs(90);

/// Accepted streams waiting for the tab to take them.
const QUEUE: usize = 32;

/// Introduction rate limit of a public tab without `intro_rate_per_second` (C tor's defaults:
/// 25 per second, bursts of 200).
const PUBLIC_INTRO_RATE: u32 = 25;

/// How many introductions above the rate an introduction point lets through in a burst, as a
/// multiple of the rate.
const BURST_FACTOR: u32 = 8;

/// Whether a tab asks for proof of work under load unless its config says: public tabs do.
pub(crate) fn proof_of_work(options: &OnionTabOptions) -> bool {
    options.proof_of_work.unwrap_or(options.public)
}

/// The onion service nickname of tab `name`: Arti's nicknames are lowercase, and the config
/// refuses tab names that differ only in case.
pub(crate) fn nickname(name: &str) -> anyhow::Result<HsNickname> {
    let lower = name.to_ascii_lowercase();
    let lower = if lower.starts_with('-') {
        format!("tab{lower}")
    } else {
        lower
    };
    HsNickname::new(lower)
        .map_err(|err| anyhow!("tab name {name:?} cannot name an onion service: {err}"))
}

/// Arti's configuration of the onion service of tab `name`. `client` is the key the host
/// made for its visitors (private tabs).
pub(crate) fn service_config(
    name: &str,
    options: &OnionTabOptions,
    client: Option<HsClientDescEncKey>,
) -> anyhow::Result<OnionServiceConfig> {
    let mut builder = OnionServiceConfigBuilder::default();
    builder
        .nickname(nickname(name)?)
        .max_concurrent_streams_per_circuit(MAX_STREAMS_PER_CIRCUIT)
        .enable_pow(proof_of_work(options));
    let rate = options
        .intro_rate_per_second
        .or(options.public.then_some(PUBLIC_INTRO_RATE));
    if let Some(rate) = rate {
        builder.rate_limit_at_intro(Some(TokenBucketConfig::new(
            rate,
            rate.saturating_mul(BURST_FACTOR),
        )));
    }
    if !options.public {
        let client = client.context("a private tab needs a client key")?;
        let discovery = builder.restricted_discovery();
        discovery.enabled(true);
        let keys = discovery.static_keys().access();
        keys.push((
            HsClientNickname::from_str("host").map_err(|e| anyhow!("{e}"))?,
            client,
        ));
        for (i, key) in options.authorized_clients.iter().enumerate() {
            let nick =
                HsClientNickname::from_str(&format!("client{i}")).map_err(|e| anyhow!("{e}"))?;
            keys.push((nick, key.key().clone()));
        }
    }
    builder
        .build()
        .with_context(|| format!("the onion service settings of tab {name:?} are invalid"))
}

/// Launches the onion service of tab `name` and returns its connections. The console says
/// how publication goes and prints the address (and the private key) once it is reachable.
/// Dropping the returned stream takes the service down.
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch(
    client: &Client,
    name: &str,
    options: &OnionTabOptions,
    keys: &TabKeys,
    qr: bool,
    console: &Console,
    tasks: &TaskTracker,
    cut: &CancellationToken,
) -> anyhow::Result<Incoming> {
    let config = service_config(name, options, keys.client_public())?;
    let address = keys.onion_address()?;
    // Before the service starts, so that no upload result passes unseen.
    let uploads = published(crate::logging::publications(), nickname(name)?.to_string());
    let (service, rend_requests) = client
        .launch_onion_service_with_hsid(config, keys.identity_keypair()?)
        .context("cannot launch the onion service")?
        .context("the onion service is disabled")?;
    if let Some(secret) = keys.client_secret() {
        // The host's own client holds the tab's client key (in memory) so that it can check
        // that the service is reachable, as a visitor would.
        client
            .insert_service_discovery_key(KeystoreSelector::Primary, keys.hs_id()?, secret)
            .context("cannot give the host's Tor client the tab's client key")?;
    }
    let stop = CancellationToken::new();
    let announcement = Announcement {
        tab: name.to_owned(),
        address,
        private_key: keys.client_private_base32(),
        qr,
        console: console.clone(),
    };
    let (start_probe, probe_start) = tokio::sync::oneshot::channel();
    let probe = reach_after(
        probe_start,
        Arc::clone(client),
        announcement.address.clone(),
    );
    tokio::spawn(watch_status(
        service.status_events(),
        announcement,
        uploads,
        (probe, start_probe),
        stop.clone(),
    ));
    let (sender, receiver) = mpsc::channel(QUEUE);
    tasks.spawn(streams::serve(
        service,
        rend_requests,
        sender,
        stop.clone(),
        cut.clone(),
    ));
    let guard = stop.drop_guard();
    let incoming = futures::stream::unfold((receiver, guard), |(mut receiver, guard)| async move {
        let connection = receiver.recv().await?;
        Some((connection, (receiver, guard)))
    });
    Ok(incoming.boxed())
}

/// Prints the address (and client key) of a tab whose start time is ahead, with that time;
/// nothing is published yet.
pub(crate) fn announce_pending(
    name: &str,
    keys: &TabKeys,
    start: std::time::SystemTime,
    qr: bool,
    console: &Console,
) -> anyhow::Result<()> {
    let announcement = Announcement {
        tab: name.to_owned(),
        address: keys.onion_address()?,
        private_key: keys.client_private_base32(),
        qr,
        console: console.clone(),
    };
    let first = format!(
        "not serving yet: reachable from {} at {}",
        crate::config::show_time(start),
        announcement.url()
    );
    console.tabs().reachable(
        name,
        &announcement.url(),
        announcement.private_key.as_ref(),
        Some(crate::config::show_time(start)),
    );
    announcement.print_with(first);
    Ok(())
}

/// Prints the address (and client key) of a tab whose onion service at `address` is
/// reachable: the same lines as for the embedded Arti's services, for the system tor's.
pub(crate) fn announce_serving(
    name: &str,
    address: String,
    private_key: Option<zeroize::Zeroizing<String>>,
    qr: bool,
    console: &Console,
) {
    Announcement {
        tab: name.to_owned(),
        address,
        private_key,
        qr,
        console: console.clone(),
    }
    .print();
}

/// What the console says about a tab once its service is reachable.
struct Announcement {
    tab: String,
    address: String,
    private_key: Option<zeroize::Zeroizing<String>>,
    /// Print the address and key as QR codes too.
    qr: bool,
    console: Console,
}

impl Announcement {
    fn url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// The lines that tell a user how visitors reach the tab. Stdout is the user interface,
    /// so the private key belongs here (and nowhere else).
    #[cfg(test)]
    fn lines(&self) -> Vec<String> {
        self.lines_after(format!("serving at {}", self.url()))
    }

    /// The announcement lines with another first line.
    fn lines_after(&self, first: String) -> Vec<String> {
        let mut lines = vec![first];
        if let Some(key) = &self.private_key {
            let host = self.address.trim_end_matches(".onion");
            lines.push(format!(
                "private key (give it to each visitor; Tor Browser asks for it): {}",
                key.as_str()
            ));
            lines.push(format!(
                "C tor ClientOnionAuthDir line: {host}:descriptor:x25519:{}",
                key.as_str()
            ));
        }
        lines
    }

    /// Prints the lines on the console.
    fn print(&self) {
        self.console
            .tabs()
            .reachable(&self.tab, &self.url(), self.private_key.as_ref(), None);
        self.print_with(format!("serving at {}", self.url()));
    }

    /// Prints the lines after `first`, and the QR codes if asked: the address, and the client
    /// key on its own (Tor Browser asks for the key alone).
    fn print_with(&self, first: String) {
        for line in self.lines_after(first) {
            self.console.tab(&self.tab, &line);
        }
        if self.qr {
            self.console.qr(&self.tab, "address", &self.url());
            if let Some(key) = &self.private_key {
                self.console.qr(&self.tab, "private key", key.as_str());
            }
        }
    }
}

/// Resolves once Arti's publisher has reported that the descriptor of the service `nickname`
/// is on every HsDir it uploaded it to, for every time period it started uploading for (see
/// [`crate::logging::publications`]); never, if it does not say so (a round with a failed
/// upload waits for the next round, a missed event for the reachability check).
///
/// Arti's status says "reachable" only once the uploads of both time periods are done, and
/// never on a network with one time period (the local test network's first hours), so this
/// is what tells when visitors can fetch the descriptor, as C tor's `HS_DESC UPLOADED` does.
async fn published(mut uploads: broadcast::Receiver<Publication>, nickname: String) {
    let (mut started, mut ended, mut all_ok) = (0usize, 0usize, true);
    loop {
        match uploads.recv().await {
            Ok(Publication::Started { nickname: name }) if name == nickname => started += 1,
            Ok(Publication::Uploaded {
                nickname: name,
                ok,
                total,
            }) if name == nickname => {
                ended += 1;
                all_ok &= ok == total && ok > 0;
                if ended >= started {
                    if all_ok {
                        return;
                    }
                    (started, ended, all_ok) = (0, 0, true);
                }
            }
            Ok(_) => {}
            // Counts that may have missed an event prove nothing.
            Err(_) => return std::future::pending().await,
        }
    }
}

/// The reachability check ([`reach`]), from when `start` fires (the descriptor is out) or,
/// if nothing says so, [`PROBE_FALLBACK`] after the launch.
async fn reach_after(start: oneshot::Receiver<()>, client: Client, address: String) {
    // Whether it fired, timed out or its sender is gone, the check starts.
    let _ = tokio::time::timeout(PROBE_FALLBACK, start).await;
    reach(client, address).await;
}

/// Connects to the tab's own onion service through Tor, as a visitor would, until it works.
async fn reach(client: Client, address: String) {
    let mut pause = PROBE_FIRST_PAUSE;
    loop {
        // A fresh isolation each time, so that a descriptor fetched before it was published is
        // not reused.
        let attempt = client.isolated_client();
        match tokio::time::timeout(
            PROBE_TIMEOUT,
            attempt.connect((address.as_str(), HTTP_PORT)),
        )
        .await
        {
            Ok(Ok(stream)) => {
                drop(stream);
                return;
            }
            Ok(Err(err)) => tracing::debug!("reachability check failed: {err}"),
            Err(_) => tracing::debug!("reachability check timed out"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(PROBE_MAX_PAUSE);
    }
}

/// Shows publication progress, then the address once visitors can reach the service (its
/// descriptor is on every HsDir that should have it, Arti says it is reachable, or the host
/// reached it through Tor), then trouble if Arti reports any, or if the host's own check
/// through Tor (`probe`, started by its sender once the descriptor is out) does not pass
/// within [`SELF_CHECK_GRACE`] of the address.
async fn watch_status(
    mut events: impl Stream<Item = OnionServiceStatus> + Unpin,
    announcement: Announcement,
    published: impl Future<Output = ()>,
    (probe, start_probe): (impl Future<Output = ()>, oneshot::Sender<()>),
    stop: CancellationToken,
) {
    let tab = announcement.tab.as_str();
    let console = &announcement.console;
    console.tabs().publishing(tab);
    console.tab(tab, "publishing the onion service");
    let mut announced = false;
    let mut published = std::pin::pin!(published);
    let mut start_probe = Some(start_probe);
    let mut probe = std::pin::pin!(probe);
    let mut probing = true;
    // Armed when the address goes out before the host's own check passed.
    let check = tokio::time::sleep(SELF_CHECK_GRACE);
    let mut check = std::pin::pin!(check);
    let (mut checking, mut unchecked) = (false, false);
    let mut troubled = false;
    let mut last: Option<State> = None;
    loop {
        let status = tokio::select! {
            () = stop.cancelled() => return,
            () = &mut published, if start_probe.is_some() => {
                if let Some(start) = start_probe.take() {
                    // The check may have started on its own (PROBE_FALLBACK).
                    let _ = start.send(());
                }
                if !announced {
                    announced = true;
                    announcement.print();
                    if probing {
                        checking = true;
                        check.as_mut().reset(tokio::time::Instant::now() + SELF_CHECK_GRACE);
                    }
                }
                continue;
            }
            () = &mut probe, if probing => {
                probing = false;
                checking = false;
                if !announced {
                    announced = true;
                    announcement.print();
                } else if unchecked {
                    console.tab(tab, "onion service: the host reached it through Tor now");
                }
                continue;
            }
            () = &mut check, if checking => {
                checking = false;
                unchecked = true;
                console.tab(
                    tab,
                    "onion service: published, but the host has not reached it through Tor yet \
                     (it keeps trying); visitors may not reach this tab",
                );
                continue;
            }
            status = events.next() => match status {
                Some(status) => status,
                None => return,
            },
        };
        let state = status.state();
        if last == Some(state) {
            continue;
        }
        last = Some(state);
        if state.is_fully_reachable() {
            probing = false;
            checking = false;
            if !announced {
                announced = true;
                announcement.print();
            } else if troubled {
                troubled = false;
                console.tab(tab, "onion service: reachable again");
            }
            continue;
        }
        if let Some(problem) = status.current_problem() {
            // Arti's errors name relays and may name the service: debug level only.
            tracing::debug!(tab, ?problem, "onion service problem");
        }
        // Before the address is out, every step is progress; after, only trouble is news
        // (Arti goes back to "bootstrapping" each time it re-publishes).
        let message = match (announced, state) {
            (false, State::Bootstrapping) => {
                "onion service: choosing introduction points and publishing its descriptor"
            }
            (false, State::DegradedUnreachable) => {
                "onion service: could not publish its descriptor everywhere yet; retrying"
            }
            (_, State::Recovering) => "onion service: recovering from a network problem",
            (_, State::Broken) => {
                "onion service: not working right now (Tor keeps trying); visitors may not reach this tab"
            }
            _ => continue,
        };
        troubled = announced;
        console.tab(tab, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClientKey;

    fn options(public: bool) -> OnionTabOptions {
        OnionTabOptions {
            public,
            ..OnionTabOptions::default()
        }
    }

    #[test]
    fn nicknames_are_lowercase_tab_names() {
        assert_eq!(nickname("Chat_1").expect("valid").to_string(), "chat_1");
        assert_eq!(nickname("-x").expect("valid").to_string(), "tab-x");
    }

    #[test]
    fn private_by_default_with_the_host_key_and_extra_clients() {
        let keys = TabKeys::generate(true).expect("keys");
        let extra = TabKeys::generate(true).expect("keys");
        let extra_public = extra.client_public().expect("client").to_string();
        let bare = extra_public
            .trim_start_matches("descriptor:x25519:")
            .to_owned();
        let mut opts = options(false);
        opts.authorized_clients = [extra_public.clone(), bare.to_lowercase()]
            .iter()
            .map(|written| ClientKey::parse(written).expect("a client key"))
            .collect();
        let config = service_config("chat", &opts, keys.client_public()).expect("config");
        let discovery = config.restricted_discovery();
        assert!(*discovery.enabled());
        let listed: Vec<String> = discovery
            .static_keys()
            .as_ref()
            .values()
            .map(ToString::to_string)
            .collect();
        assert_eq!(listed.len(), 3);
        assert!(listed.contains(&keys.client_public().expect("client").to_string()));
        assert!(listed.contains(&extra_public));
        assert!(
            !config.enable_pow(),
            "private tabs need no proof of work by default"
        );
        assert!(config.rate_limit_at_intro().is_none());
    }

    #[test]
    fn public_tabs_have_no_client_list_and_defend_themselves() {
        let config = service_config("share", &options(true), None).expect("config");
        assert!(!*config.restricted_discovery().enabled());
        assert!(config.enable_pow());
        assert!(config.rate_limit_at_intro().is_some());
        let mut opts = options(true);
        opts.proof_of_work = Some(false);
        opts.intro_rate_per_second = Some(5);
        let config = service_config("share", &opts, None).expect("config");
        assert!(!config.enable_pow());
        assert_eq!(
            config.rate_limit_at_intro(),
            &Some(TokenBucketConfig::new(5, 40))
        );
    }

    fn started(nickname: &str) -> Publication {
        Publication::Started {
            nickname: nickname.into(),
        }
    }

    fn uploaded(nickname: &str, ok: usize, total: usize) -> Publication {
        Publication::Uploaded {
            nickname: nickname.into(),
            ok,
            total,
        }
    }

    #[test]
    fn publication_needs_every_hsdir_of_every_time_period_started() {
        use futures::FutureExt as _;
        let (sender, _) = broadcast::channel(16);
        let mut done = Box::pin(published(sender.subscribe(), "share".into()));
        for event in [
            started("share"),
            started("share"),
            started("chat"),
            uploaded("share", 8, 8),
            uploaded("chat", 8, 8),
        ] {
            sender.send(event).expect("a receiver");
        }
        assert!(
            done.as_mut().now_or_never().is_none(),
            "one time period of two"
        );
        // A round with a failed HsDir proves nothing: the next round decides.
        sender.send(uploaded("share", 7, 8)).expect("a receiver");
        assert!(done.as_mut().now_or_never().is_none(), "an HsDir failed");
        sender.send(started("share")).expect("a receiver");
        sender.send(uploaded("share", 8, 8)).expect("a receiver");
        assert!(done.as_mut().now_or_never().is_some(), "published");
    }

    #[test]
    fn missed_upload_results_leave_it_to_the_reachability_check() {
        use futures::FutureExt as _;
        let (sender, _) = broadcast::channel(2);
        let mut done = Box::pin(published(sender.subscribe(), "share".into()));
        for event in [started("share"), started("share"), uploaded("share", 8, 8)] {
            sender.send(event).expect("a receiver");
        }
        // The receiver lagged (it lost the first start): it never says "published".
        assert!(done.as_mut().now_or_never().is_none());
        sender.send(uploaded("share", 8, 8)).expect("a receiver");
        assert!(done.as_mut().now_or_never().is_none());
    }

    /// Runs `watch_status` with no status from Arti, `published` and `probe`, for `run`
    /// (paused clock); returns the console's lines and whether the check was started.
    async fn watch(
        published: impl Future<Output = ()> + Send + 'static,
        probe: impl Future<Output = ()> + Send + 'static,
        run: Duration,
    ) -> (Vec<String>, bool) {
        let console = Console::default();
        let announcement = Announcement {
            tab: "share".into(),
            address: "x.onion".into(),
            private_key: None,
            qr: false,
            console: console.clone(),
        };
        let (start, started) = oneshot::channel();
        let stop = CancellationToken::new();
        let task = tokio::spawn(watch_status(
            futures::stream::pending::<OnionServiceStatus>(),
            announcement,
            published,
            (probe, start),
            stop.clone(),
        ));
        tokio::time::sleep(run).await;
        stop.cancel();
        task.await.expect("watch_status");
        let mut started = started;
        (console.lines(), started.try_recv().is_ok())
    }

    #[tokio::test(start_paused = true)]
    async fn the_address_goes_out_with_the_descriptor_and_the_check_follows() {
        let (lines, check_started) = watch(
            async {},
            std::future::pending(),
            SELF_CHECK_GRACE - Duration::from_secs(1),
        )
        .await;
        assert_eq!(
            lines,
            [
                "[share] publishing the onion service",
                "[share] serving at http://x.onion/"
            ]
        );
        assert!(check_started, "the check starts once the descriptor is out");
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_does_not_pass_is_reported_and_so_is_a_late_pass() {
        let late = async { tokio::time::sleep(SELF_CHECK_GRACE * 2).await };
        let (lines, _) = watch(async {}, late, SELF_CHECK_GRACE * 3).await;
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines[1], "[share] serving at http://x.onion/");
        assert!(
            lines[2].contains("has not reached it through Tor yet"),
            "{lines:?}"
        );
        assert!(lines[3].contains("reached it through Tor now"), "{lines:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_publication_the_check_decides() {
        let (lines, _) = watch(
            std::future::pending(),
            async { tokio::time::sleep(Duration::from_secs(5)).await },
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(
            lines,
            [
                "[share] publishing the onion service",
                "[share] serving at http://x.onion/"
            ]
        );
    }

    #[test]
    fn the_announcement_gives_the_address_and_both_key_forms() {
        let keys = TabKeys::generate(true).expect("keys");
        let announcement = Announcement {
            tab: "chat".into(),
            address: keys.onion_address().expect("address"),
            private_key: keys.client_private_base32(),
            qr: false,
            console: Console::default(),
        };
        let lines = announcement.lines();
        let address = keys.onion_address().expect("address");
        let key = keys.client_private_base32().expect("key");
        assert_eq!(lines[0], format!("serving at http://{address}/"));
        assert!(lines[1].ends_with(&format!(": {}", key.as_str())));
        assert_eq!(
            lines[2],
            format!(
                "C tor ClientOnionAuthDir line: {}:descriptor:x25519:{}",
                address.trim_end_matches(".onion"),
                key.as_str()
            )
        );
    }
}
