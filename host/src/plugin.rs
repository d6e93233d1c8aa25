//! Plugins: modes loaded at run time from shared libraries, served like built-in modes.
//!
//! A tab with `plugin = "path/to/libx.so"` loads the library (`library.rs` checks its ABI
//! header first) when the config is read, through the mode catalog (`modes.rs`), to have the
//! plugin check the tab's section; when the tab starts, the same load asks the plugin to build the tab
//! (`tab.rs`), and hands it each visitor connection as one end of a socket pair, copying bytes
//! between the visitor and the other end (`pump.rs`). The plugin runs its own async runtime;
//! only plain data crosses the boundary. A load or build error fails only that tab. See
//! ARCHITECTURE.md, "Plugins".

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Weak};

use anyhow::{Context as _, bail};
use futures::future::BoxFuture;
use onionhost_sdk::{ConfigError, ModeError, TabContext};
use tokio_util::sync::CancellationToken;

use crate::modes::{TabFactory, TabService};
use crate::transport::Connection;

#[allow(unsafe_code)] // the FFI boundary: every unsafe block says why it holds
mod library;
mod pump;
#[allow(unsafe_code)] // the FFI boundary: every unsafe block says why it holds
mod tab;

use library::Plugin;
use tab::PluginTab;

/// Loads the library at `path` (already resolved against the config file's folder) and
/// checks that it is the plugin of mode `mode`.
pub(crate) fn load(mode: &str, path: &Path) -> anyhow::Result<Arc<dyn TabFactory>> {
    let plugin = library::open(path)
        .with_context(|| format!("cannot load the plugin {}", path.display()))?;
    if plugin.mode != mode {
        bail!(
            "the plugin {} is the `{}` mode, but the tab says mode = {mode:?}: write mode = {:?} \
             and put its settings under [tab.{}]",
            plugin.path.display(),
            plugin.mode,
            plugin.mode,
            plugin.mode
        );
    }
    Ok(Arc::new(PluginFactory(Arc::new(plugin))))
}

/// A tab's section as the TOML document a plugin parses.
fn section_text(section: &toml::Value) -> Result<String, ConfigError> {
    match section {
        toml::Value::Table(table) => toml::to_string(table).map_err(|err| {
            ConfigError::section(format!("cannot pass the section to the plugin: {err}"))
        }),
        _ => Err(ConfigError::section("the mode's section must be a table")),
    }
}

/// A loaded plugin as a [`TabFactory`].
struct PluginFactory(Arc<Plugin>);

impl TabFactory for PluginFactory {
    /// The plugin's own `check_config`: its errors carry the key, so that the config can show
    /// their line.
    fn check(&self, section: &toml::Value) -> Result<(), ConfigError> {
        let text = section_text(section)?;
        tab::check_config(self.0.functions, &text).map_err(|err| match err {
            ModeError::Config(err) => err,
            ModeError::Build(err) => ConfigError::section(err.to_string()),
        })
    }

    fn build(
        &self,
        section: toml::Value,
        ctx: TabContext,
    ) -> Result<Arc<dyn TabService>, ModeError> {
        let config_toml = section_text(&section)?;
        let shutdown = ctx.shutdown_token();
        let tab = Arc::new(PluginTab::create(self.0.functions, &config_toml, ctx)?);
        // The plugin's own tasks watch its tab's shutdown signal: forward ours, also for a tab
        // that never gets a connection. A weak reference, so that this task never keeps a
        // finished tab alive.
        let weak: Weak<PluginTab> = Arc::downgrade(&tab);
        tokio::spawn(async move {
            shutdown.cancelled().await;
            if let Some(tab) = weak.upgrade() {
                tab.stop();
            }
        });
        Ok(Arc::new(PluginService(tab)))
    }
}

/// A plugin's tab as a [`TabService`]: each connection goes to the plugin over a socket pair.
struct PluginService(Arc<PluginTab>);

impl TabService for PluginService {
    fn serve(
        &self,
        conn: Connection,
        _stopping: CancellationToken,
        force_close: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        // The graceful stop reaches the plugin through `PluginFactory::build`'s forwarder.
        let tab = Arc::clone(&self.0);
        Box::pin(async move {
            let ours = match hand_over(&tab) {
                Ok(ours) => ours,
                Err(err) => {
                    tracing::warn!("a plugin tab could not take a connection: {err:#}");
                    return;
                }
            };
            tokio::select! {
                () = pump::pump(conn, ours) => {}
                () = force_close.cancelled() => tab.force_close(),
            }
        })
    }
}

/// Makes a socket pair, gives one end to the plugin and returns the other.
fn hand_over(tab: &PluginTab) -> anyhow::Result<tokio::net::UnixStream> {
    let (ours, theirs) =
        std::os::unix::net::UnixStream::pair().context("cannot create a socket pair")?;
    ours.set_nonblocking(true)
        .context("cannot make the socket non-blocking")?;
    let ours = tokio::net::UnixStream::from_std(ours).context("cannot register the socket")?;
    tab.serve(OwnedFd::from(theirs))
        .map_err(|()| anyhow::anyhow!("the plugin refused the connection"))?;
    Ok(ours)
}
