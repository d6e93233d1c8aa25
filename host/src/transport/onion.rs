//! The onion transport: every tab is its own Tor onion service, published by the Arti client
//! embedded in the host, and served straight on the onion service's streams.
//!
//! One Tor client per host ([`client`]), bootstrapped once before any tab starts
//! ([`bootstrap`]), directly or through bridges. Each tab
//! gets its own identity key and so its own address ([`keys`]), private (restricted discovery
//! with a client key the host prints) unless `public`, ephemeral (keys in memory only) unless
//! `persistent`. [`service`] launches it and turns its streams into connections.

use std::path::PathBuf;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Incoming;
use crate::config::{TabConfig, TorConfig};
use crate::console::Console;

mod bootstrap;
mod client;
mod gather;
mod keys;
mod runtime;
mod service;
mod streams;

pub(crate) use client::TorDirs;
pub(crate) use keys::TabKeys;
pub(crate) use service::{announce_pending, announce_serving};

/// The keys of `tab`: in memory for an ephemeral tab, else loaded from (or created in) its
/// folder under `keys_dir` (by default under the user's data folder), which the console names.
/// Both onion transports, Arti's and the system tor's, keep persistent keys the same way.
pub(crate) fn tab_keys(
    tab: &TabConfig,
    keys_dir: Option<&std::path::Path>,
    console: &Console,
) -> anyhow::Result<TabKeys> {
    let private = !tab.onion.public;
    if !tab.onion.persistent {
        return TabKeys::generate(private);
    }
    let dir = match keys_dir {
        Some(dir) => dir.to_owned(),
        None => keys::default_keys_dir()?,
    }
    .join(&tab.name);
    let keys =
        TabKeys::load_or_create(&dir, private).context("cannot use the tab's persistent keys")?;
    console.tab(
        &tab.name,
        &format!("persistent: keys kept in {}", dir.display()),
    );
    Ok(keys)
}

/// The onion transport: the host's Tor client, and where persistent tabs keep their keys.
pub(crate) struct OnionTransport {
    client: client::Client,
    keys_dir: Option<PathBuf>,
    /// Every tab's stream task, which outlives its tab while its circuits close (see
    /// [`OnionTransport::finished`]).
    tasks: TaskTracker,
    /// Cancelled to close every circuit at once (a second Ctrl-C).
    cut: CancellationToken,
}

impl OnionTransport {
    /// Connects to Tor (showing progress, giving up after `[tor] bootstrap_timeout`). Arti's
    /// files go in `dirs`, which the caller removes after the runtime has shut down.
    pub(crate) async fn start(
        tor: &TorConfig,
        dirs: &TorDirs,
        console: &Console,
    ) -> anyhow::Result<Self> {
        let config = client::client_config(tor, dirs)?;
        let route = bootstrap::Route::new(tor.bridges.as_ref());
        let client = bootstrap::bootstrap(config, tor.bootstrap_timeout, route, console).await?;
        Ok(Self {
            client,
            keys_dir: tor.keys_dir.clone(),
            tasks: TaskTracker::new(),
            cut: CancellationToken::new(),
        })
    }

    /// Publishes `tab` as its own onion service; with a start time ahead, prints its address
    /// (and client key) first and publishes only from then (see [`super::Transport::open`]).
    pub(crate) async fn open(
        &self,
        tab: &TabConfig,
        console: &Console,
        stopping: &CancellationToken,
    ) -> anyhow::Result<Option<Incoming>> {
        let keys = tab_keys(tab, self.keys_dir.as_deref(), console)?;
        let pending = super::pending_start(tab);
        if let Some(start) = pending {
            service::announce_pending(&tab.name, &keys, start, tab.qr, console)?;
            if !super::wait_for_start(start, stopping).await {
                return Ok(None);
            }
        }
        service::launch(
            &self.client,
            &tab.name,
            &tab.onion,
            &keys,
            tab.qr && pending.is_none(),
            console,
            &self.tasks,
            &self.cut,
        )
        .map(Some)
    }

    /// A stream through Tor to `host:port` (an onion service, or a host on the internet
    /// through an exit), for a tab's notices.
    pub(crate) async fn connect(
        &self,
        host: &str,
        port: u16,
    ) -> anyhow::Result<Box<dyn super::Io>> {
        let stream = self
            .client
            .connect((host, port))
            .await
            .context("cannot connect through Tor")?;
        Ok(Box::new(stream))
    }

    /// A handle that waits until every stopped tab has delivered the last bytes it sent and
    /// its onion service is down, or at once when `force_close` is cancelled: the host waits
    /// for it before it exits.
    pub(crate) fn finished(
        &self,
        force_close: CancellationToken,
    ) -> impl Future<Output = ()> + use<> {
        let tasks = self.tasks.clone();
        let cut = self.cut.clone();
        async move {
            tasks.close();
            tokio::select! {
                () = tasks.wait() => {}
                () = force_close.cancelled() => {
                    cut.cancel();
                    tasks.wait().await;
                }
            }
        }
    }
}

/// What tokio's timer says to a sleep polled while the runtime goes down.
const RUNTIME_SHUTTING_DOWN: &str = "A Tokio 1.x context was found, but it is being shutdown.";

/// Shuts the host's runtime down, once every tab and onion service of the host has ended.
///
/// Why a panic hook, and why it cannot be avoided with tor-hsservice 0.47 (read in its
/// `src/pow/v1.rs`): every onion service's `PowManager::new` calls
/// `RendRequestReceiver::start_accept_thread`, whatever `enable_pow` says (the code is compiled
/// in because `proof_of_work` needs the `hs-pow-full` feature). It starts
/// `expire_old_requests_loop` with `spawn_blocking` and drops the handle. That loop is
/// `loop { ...; runtime.reenter_block_on(runtime.sleep(wait)); ... }` with no way out: it
/// holds its own clone of the request receiver, so dropping the `RunningOnionService`, its
/// request stream or the `TorClient` does not end it, and the crate has no shutdown handle.
/// A blocking task cannot be cancelled, and dropping a tokio runtime waits for its blocking
/// tasks; what ends this one is tokio's timer failing the sleep as the runtime goes down,
/// which panics with [`RUNTIME_SHUTTING_DOWN`] (one panic per tab at every clean exit).
///
/// Other ways, and why not: `shutdown_background`/`shutdown_timeout` do not wait for the
/// thread, but it still wakes and panics, racing the process's exit; exiting with the runtime
/// still up leaves Arti's tasks running while their temporary folder is removed; a
/// tor-rtcompat runtime of our own (sleeps that never wake after shutdown, blocking work on
/// detached threads) would replace Arti's runtime glue to hide one upstream loop.
///
/// So while the runtime goes down, and only then, that one panic, raised in tokio's timer,
/// is not shown: the services and all our tasks have ended by now. Any other panic, or that
/// message from anywhere else, still is.
pub(crate) fn shut_down(runtime: tokio::runtime::Runtime) {
    let show = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied());
        // tokio 1.x's timer entry asserts this (`TimerEntry::poll_elapsed`); a tokio that
        // panics elsewhere shows it again, and the e2e tests' quiet-stop check then fails.
        let in_tokio_timer = info.location().is_some_and(|at| {
            at.file().contains("tokio") && at.file().ends_with("runtime/time/entry.rs")
        });
        if !(message == Some(RUNTIME_SHUTTING_DOWN) && in_tokio_timer) {
            show(info);
        }
    }));
    drop(runtime);
    // Back to the standard hook, which is the one the host runs with.
    drop(std::panic::take_hook());
}
