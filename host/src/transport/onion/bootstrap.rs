//! Connecting the host's Tor client to the network: progress on the console, one line when
//! Arti reports the network blocked or progress stalls (saying what to do about it: bridges,
//! or other bridges), and a deadline.

use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use arti_client::{TorClient, TorClientConfig};
use futures::StreamExt as _;

use super::client::Client;
use crate::config::Bridges;
use crate::console::Console;

/// How often bootstrap progress is shown at most (the last step is always shown).
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// How long bootstrap may make no progress before the console says so. On the public
/// network Arti usually bootstraps in seconds; half a minute without a step means something
/// is in the way. Arti itself reports a blocked network only after a minute of failed
/// attempts (tor-chanmgr 0.47's `MIN_DURATION`), and never when only a bridge or its
/// transport fails, so this line is often the first and only one.
const STALL_AFTER: Duration = Duration::from_secs(30);

/// At most this many distinct transport failures are shown (Arti retries a failing transport
/// for as long as it connects).
const MAX_TRANSPORT_LINES: usize = 4;

/// How the host reaches Tor: directly, or through bridges. It words the console's lines.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// `""`, or ` through 2 bridges (obfs4, snowflake)`.
    through: String,
    bridged: bool,
}

impl Route {
    /// Through `bridges`, or directly when `None`. Bridges are counted, never shown: an
    /// address is what a censor looks for.
    pub(crate) fn new(bridges: Option<&Bridges>) -> Self {
        let Some(bridges) = bridges else {
            return Self {
                through: String::new(),
                bridged: false,
            };
        };
        let count = bridges.lines.len();
        let plural = if count == 1 { "" } else { "s" };
        let names = bridges.transport_names();
        let through = if names.is_empty() {
            format!(" through {count} bridge{plural}")
        } else {
            format!(" through {count} bridge{plural} ({})", names.join(", "))
        };
        Self {
            through,
            bridged: true,
        }
    }

    fn through(&self) -> &str {
        &self.through
    }

    /// What to do when Tor cannot be reached this way.
    fn advice(&self) -> &'static str {
        if self.bridged {
            "the bridges may be down, out of date or blocked: get new bridge lines from https://bridges.torproject.org (or try another transport; RUST_LOG=tor_ptmgr=debug,tor_chanmgr=debug shows Arti's details)"
        } else {
            "if this network blocks Tor, connect through bridges: `--bridge LINE`, or `bridges` in `[tor]` (see the README's Bridges section)"
        }
    }

    /// The console's one line about a network that Arti cannot get through.
    fn blocked_line(&self, reason: &str) -> String {
        format!(
            "[tor] cannot reach the Tor network{}: {reason}; {}",
            self.through(),
            self.advice()
        )
    }

    /// The console's one line about a pluggable transport that failed.
    fn transport_line(&self, failure: &str) -> String {
        format!(
            "[tor] a pluggable transport failed: {failure}; check its binary (`transports` in `[tor]`, or `--tor-transport`), or install its package again"
        )
    }

    /// The console's one line about a bootstrap that has not moved for a while.
    fn stalled_line(&self, percent: u32, waited: Duration) -> String {
        format!(
            "[tor] still connecting{} after {}, at {percent}%; {}",
            self.through(),
            humantime::format_duration(waited),
            self.advice()
        )
    }
}

/// Creates the Tor client and connects it to the network the way `route` says, showing
/// progress, within `timeout`.
pub(crate) async fn bootstrap(
    config: TorClientConfig,
    timeout: Duration,
    route: Route,
    console: &Console,
) -> anyhow::Result<Client> {
    let runtime = super::runtime::onion_runtime().context("cannot start the Tor client")?;
    let client = TorClient::with_runtime(runtime)
        .config(config)
        .create_unbootstrapped_async()
        .await
        .context("cannot start the Tor client")?;
    console.host(&format!(
        "[tor] connecting to the Tor network{}",
        route.through()
    ));
    let progress = {
        let console = console.clone();
        let mut events = client.bootstrap_events();
        let mut failures = crate::logging::transport_failures();
        let route = route.clone();
        tokio::spawn(async move {
            let mut shown: Option<(u32, Instant)> = None;
            let mut blocked = None;
            // The last step, when it was reached, and whether the console already said this
            // step takes long (or that the network is blocked, which says as much).
            let mut step = (0, tokio::time::Instant::now());
            let mut spoken = false;
            // Arti tries a failing transport again and again: each failure is shown once.
            let mut failed: Vec<String> = Vec::new();
            loop {
                let status = tokio::select! {
                    status = events.next() => match status {
                        Some(status) => status,
                        None => break,
                    },
                    failure = failures.recv() => {
                        if let Ok(failure) = failure
                            && !failed.contains(&failure)
                            && failed.len() < MAX_TRANSPORT_LINES
                        {
                            console.host(&route.transport_line(&failure));
                            failed.push(failure);
                        }
                        continue;
                    }
                    () = tokio::time::sleep_until(step.1 + STALL_AFTER), if !spoken => {
                        console.host(&route.stalled_line(step.0, STALL_AFTER));
                        spoken = true;
                        continue;
                    }
                };
                // Arti explains a blockage in many log lines (at debug, see logging.rs); the
                // user gets one line each time the reason changes.
                let blockage = status.blocked();
                let kind = blockage.as_ref().map(|b| b.kind().to_string());
                if kind != blocked {
                    if let Some(reason) = &blockage {
                        console.host(&route.blocked_line(&reason.to_string()));
                        spoken = true;
                    }
                    blocked = kind;
                }
                let percent = (status.as_frac() * 100.0).round() as u32;
                if percent != step.0 {
                    step = (percent, tokio::time::Instant::now());
                    spoken = blocked.is_some();
                }
                let due = match shown {
                    None => true,
                    Some((last, at)) => {
                        percent > last && (percent == 100 || at.elapsed() >= PROGRESS_EVERY)
                    }
                };
                if due && percent < 100 {
                    console.host(&format!("[tor] bootstrapping: {percent}%"));
                    shown = Some((percent, Instant::now()));
                }
            }
        })
    };
    let outcome = tokio::time::timeout(timeout, client.bootstrap()).await;
    progress.abort();
    match outcome {
        Ok(Ok(())) => {
            console.host(&format!(
                "[tor] bootstrapping: 100%, connected to the Tor network{}",
                route.through()
            ));
            Ok(client)
        }
        Ok(Err(err)) => Err(err).context(format!(
            "cannot connect to the Tor network{}",
            route.through()
        )),
        Err(_) => {
            let status = client.bootstrap_status();
            let stuck = (status.as_frac() * 100.0).round() as u32;
            let blocked = status
                .blocked()
                .map(|blockage| format!(" ({blockage})"))
                .unwrap_or_default();
            let check = if route.bridged {
                ""
            } else {
                "check the network connection (or the `[tor]` authorities and fallbacks); "
            };
            Err(anyhow!(
                "could not connect to the Tor network{} within {}: stuck at {stuck}%{blocked}; {check}{}; or raise `bootstrap_timeout` in `[tor]`",
                route.through(),
                humantime::format_duration(timeout),
                route.advice()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::{BridgeLine, Transport};

    fn bridges(transports: &[Option<&str>]) -> Bridges {
        Bridges {
            lines: transports
                .iter()
                .map(|t| BridgeLine {
                    line: "192.0.2.1:443 316E643333645F6D79216558614D3931657A5F5F".into(),
                    transport: t.map(str::to_owned),
                })
                .collect(),
            transports: vec![Transport {
                protocols: vec!["obfs4".into()],
                path: PathBuf::from("/usr/bin/obfs4proxy"),
                arguments: Vec::new(),
                used: true,
            }],
        }
    }

    #[test]
    fn without_bridges_the_lines_suggest_them() {
        let route = Route::new(None);
        let line = route.blocked_line("Our internet connection seems filtered");
        assert!(
            line.starts_with("[tor] cannot reach the Tor network: Our internet connection"),
            "{line}"
        );
        assert!(
            line.contains("`--bridge LINE`, or `bridges` in `[tor]`"),
            "{line}"
        );
        let line = route.stalled_line(10, STALL_AFTER);
        assert!(
            line.starts_with(
                "[tor] still connecting after 30s, at 10%; if this network blocks Tor"
            ),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn with_bridges_the_lines_name_them_without_their_addresses() {
        let one = bridges(&[Some("obfs4")]);
        let route = Route::new(Some(&one));
        let line = route.blocked_line("connection refused");
        assert!(
            line.starts_with("[tor] cannot reach the Tor network through 1 bridge (obfs4): connection refused; the bridges may be down"),
            "{line}"
        );
        assert!(!line.contains("192.0.2.1"), "{line}");
        let three = bridges(&[Some("obfs4"), None, Some("snowflake")]);
        assert_eq!(
            Route::new(Some(&three)).through(),
            " through 3 bridges (obfs4, snowflake)"
        );
        let direct = bridges(&[None]);
        assert_eq!(Route::new(Some(&direct)).through(), " through 1 bridge");
    }
}
