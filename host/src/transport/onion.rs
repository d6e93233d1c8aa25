//! The onion transport: every tab is its own Tor onion service, published by the Arti client
//! embedded in the host, and served straight on the onion service's streams.
//!
//! One Tor client per host ([`client`]), bootstrapped once before any tab starts. Each tab
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

mod client;
mod keys;
mod service;
mod streams;

pub(crate) use client::TorDirs;

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
        let client = client::bootstrap(config, tor.bootstrap_timeout, console).await?;
        Ok(Self {
            client,
            keys_dir: tor.keys_dir.clone(),
            tasks: TaskTracker::new(),
            cut: CancellationToken::new(),
        })
    }

    /// Publishes `tab` as its own onion service.
    pub(crate) async fn open(
        &self,
        tab: &TabConfig,
        console: &Console,
    ) -> anyhow::Result<Incoming> {
        let private = !tab.onion.public;
        let keys = if tab.onion.persistent {
            let dir = match &self.keys_dir {
                Some(dir) => dir.clone(),
                None => keys::default_keys_dir()?,
            }
            .join(&tab.name);
            let keys = keys::TabKeys::load_or_create(&dir, private)
                .context("cannot use the tab's persistent keys")?;
            console.tab(
                &tab.name,
                &format!("persistent: keys kept in {}", dir.display()),
            );
            keys
        } else {
            keys::TabKeys::generate(private)?
        };
        service::launch(
            &self.client,
            &tab.name,
            &tab.onion,
            &keys,
            console,
            &self.tasks,
            &self.cut,
        )
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
/// tor-hsservice 0.47 gives every onion service a blocking thread that expires queued
/// proof-of-work requests in an endless loop (`expire_old_requests_loop`) that nothing can
/// stop, not even dropping the service. When the runtime's timer goes down, that thread's sleep
/// panics with [`RUNTIME_SHUTTING_DOWN`], which printed one panic per tab at every clean exit.
/// The services and all our tasks have ended by now, so that panic, and only that one, is not
/// shown while the runtime goes down; any other panic still is.
pub(crate) fn shut_down(runtime: tokio::runtime::Runtime) {
    let show = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied());
        if message != Some(RUNTIME_SHUTTING_DOWN) {
            show(info);
        }
    }));
    drop(runtime);
    // Back to the standard hook, which is the one the host runs with.
    drop(std::panic::take_hook());
}
