//! The mode catalog: turns a tab's mode name (and plugin library, if it has one) into a
//! [`TabFactory`] that checks the tab's section and builds the tab.
//!
//! This is the one place where a built-in mode or a plugin is chosen. The config hands each
//! section here to be checked while it is read ([`SectionCheck`]); the supervisor asks here
//! for the factory of each tab it starts. A plugin's library is loaded once, at its first use,
//! and that load serves both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;

use axum::Router;
use futures::future::BoxFuture;
use onionhost_sdk::host::{DynMode, ModeFactory};
use onionhost_sdk::{ConfigError, ModeError, TabContext, axum};
use tokio_util::sync::CancellationToken;

use crate::config::{HostConfig, SectionCheck, SectionProblem};
use crate::transport::Connection;

/// A built tab, ready to serve connections.
pub(crate) trait TabService: Send + Sync {
    /// Serves one visitor connection. `stopping` asks for a graceful end (finish the requests
    /// in flight); `force_close` ends the connection at once.
    fn serve(
        &self,
        conn: Connection,
        stopping: CancellationToken,
        force_close: CancellationToken,
    ) -> BoxFuture<'static, ()>;
}

/// A mode the host can build tabs of: built in, or loaded from a plugin.
pub(crate) trait TabFactory: Send + Sync {
    /// Checks one tab's config section without building anything.
    fn check(&self, section: &toml::Value) -> Result<(), ConfigError>;

    /// The warnings of a valid section, for `onionhost check` (a plugin's are not asked
    /// across the library boundary: it reports them when its tab starts).
    fn warnings(&self, section: &toml::Value) -> Vec<String> {
        let _ = section;
        Vec::new()
    }

    /// Builds one tab from its config section.
    fn build(
        &self,
        section: toml::Value,
        ctx: TabContext,
    ) -> Result<Arc<dyn TabService>, ModeError>;
}

/// A built-in mode's tab: the mode's router, hardened, served in this process.
struct RouterService(Router);

impl TabService for RouterService {
    fn serve(
        &self,
        conn: Connection,
        stopping: CancellationToken,
        force_close: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        // The transport says who the connection is from: its onion circuit, or itself.
        let visitor = conn.visitor();
        Box::pin(onionhost_sdk::http::serve_connection(
            conn,
            self.0.clone(),
            visitor,
            stopping,
            force_close,
        ))
    }
}

/// A built-in mode as a [`TabFactory`].
struct Builtin(Box<dyn ModeFactory>);

impl TabFactory for Builtin {
    fn check(&self, section: &toml::Value) -> Result<(), ConfigError> {
        self.0.check(section.clone())
    }

    fn warnings(&self, section: &toml::Value) -> Vec<String> {
        self.0.warnings(section.clone())
    }

    fn build(
        &self,
        section: toml::Value,
        ctx: TabContext,
    ) -> Result<Arc<dyn TabService>, ModeError> {
        // Hardened by the sdk (`DynMode::build`), with the mode's Content-Security-Policy.
        let router = self.0.build(section, ctx)?;
        Ok(Arc::new(RouterService(router)))
    }
}

/// The modes this host can run: the built-in ones by name, and the plugins loaded so far.
pub(crate) struct Registry {
    modes: BTreeMap<String, Arc<Builtin>>,
    /// Plugins loaded so far, by mode and library path: the config check and the tab's start
    /// use the same load.
    plugins: Mutex<BTreeMap<(String, PathBuf), Arc<dyn TabFactory>>>,
}

impl Registry {
    /// Chat, receive, share and website.
    pub(crate) fn builtin() -> Self {
        Self::with(vec![
            Box::new(DynMode::<onionhost_chat::ChatMode>::new()),
            Box::new(DynMode::<onionhost_receive::ReceiveMode>::new()),
            Box::new(DynMode::<onionhost_share::ShareMode>::new()),
            Box::new(DynMode::<onionhost_website::WebsiteMode>::new()),
        ])
    }

    /// A registry of the given modes (tests use it to add modes of their own).
    pub(crate) fn with(factories: Vec<Box<dyn ModeFactory>>) -> Self {
        let modes = factories
            .into_iter()
            .map(|factory| (factory.name().to_owned(), Arc::new(Builtin(factory))))
            .collect();
        Self {
            modes,
            plugins: Mutex::new(BTreeMap::new()),
        }
    }

    /// The factory of mode `mode`: the built-in one, or, with `plugin`, the mode of that
    /// library (loaded now if it was not yet). The error says why there is none.
    pub(crate) fn factory(
        &self,
        mode: &str,
        plugin: Option<&Path>,
    ) -> anyhow::Result<Arc<dyn TabFactory>> {
        let Some(path) = plugin else {
            return self
                .modes
                .get(mode)
                .map(|builtin| Arc::clone(builtin) as Arc<dyn TabFactory>)
                .with_context(|| self.unknown_mode(mode));
        };
        // A poisoned lock only means another tab's load panicked; the map is still whole.
        let mut plugins = self
            .plugins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (mode.to_owned(), path.to_owned());
        if let Some(factory) = plugins.get(&key) {
            return Ok(Arc::clone(factory));
        }
        let factory = crate::plugin::load(mode, path)?;
        plugins.insert(key, Arc::clone(&factory));
        Ok(factory)
    }

    /// Loads the library of every plugin tab of `config`; the error lists those that cannot be.
    ///
    /// `onionhost check` calls it so that a missing or incompatible plugin is reported before
    /// the user runs the config (`run` only fails those tabs, and starts the others).
    pub(crate) fn check_plugins(&self, config: &HostConfig) -> anyhow::Result<()> {
        let problems: Vec<String> = config
            .tabs
            .iter()
            .filter_map(|tab| {
                let path = tab.plugin.as_deref()?;
                self.factory(&tab.mode, Some(path))
                    .err()
                    .map(|err| format!("tab {:?}: {err:#}", tab.name))
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            anyhow::bail!(
                "{}\n(`onionhost run` would start the other tabs and report these as failed)",
                problems.join("\n")
            )
        }
    }

    /// Every tab's warnings ([`onionhost_sdk::ModeConfig::warnings`]), each line naming its
    /// tab, for `onionhost check`.
    pub(crate) fn warnings(&self, config: &HostConfig) -> Vec<String> {
        config
            .tabs
            .iter()
            .flat_map(|tab| {
                let warnings = self
                    .factory(&tab.mode, tab.plugin.as_deref())
                    .map(|factory| factory.warnings(&tab.section))
                    .unwrap_or_default();
                warnings
                    .into_iter()
                    .map(move |warning| format!("tab {:?}: {warning}", tab.name))
            })
            .collect()
    }

    /// Every mode a new tab can have: the built-in ones, then the plugins' loaded so far (with
    /// their library), for the live view's form.
    pub(crate) fn choices(&self) -> Vec<crate::console::form::ModeChoice> {
        let plugins = self
            .plugins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.modes
            .keys()
            .map(|mode| crate::console::form::ModeChoice {
                mode: mode.clone(),
                plugin: None,
            })
            .chain(
                plugins
                    .keys()
                    .map(|(mode, path)| crate::console::form::ModeChoice {
                        mode: mode.clone(),
                        plugin: Some(path.clone()),
                    }),
            )
            .collect()
    }

    fn unknown_mode(&self, mode: &str) -> String {
        format!(
            "unknown mode {mode:?}: the built-in modes are {}; for a mode from a shared library add `plugin = \"path/to/lib.so\"`",
            self.modes
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

impl SectionCheck for Registry {
    /// A plugin checks its own section (its library is loaded for that), so that its errors get
    /// a file and a line like a built-in mode's. A library that cannot be loaded is not a config
    /// error: `run` starts the other tabs and fails this one, `check` reports it through
    /// [`Registry::check_plugins`].
    fn check(
        &self,
        mode: &str,
        plugin: Option<&Path>,
        section: &toml::Value,
    ) -> Result<(), SectionProblem> {
        if plugin.is_none() && !self.modes.contains_key(mode) {
            return Err(SectionProblem::UnknownMode(self.unknown_mode(mode)));
        }
        let Ok(factory) = self.factory(mode, plugin) else {
            return Ok(());
        };
        factory.check(section).map_err(SectionProblem::Section)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn built_in_sections_are_checked_and_unknown_modes_named() {
        let registry = Registry::builtin();
        let empty = toml::Value::Table(toml::Table::new());
        assert!(registry.check("chat", None, &empty).is_ok());
        let mut bad = toml::Table::new();
        bad.insert("colour".into(), toml::Value::Integer(3));
        match registry.check("chat", None, &toml::Value::Table(bad)) {
            Err(SectionProblem::Section(err)) => assert_eq!(err.key, ["colour"]),
            other => panic!("{other:?}"),
        }
        match registry.check("teleport", None, &empty) {
            Err(SectionProblem::UnknownMode(message)) => assert!(
                message.contains("the built-in modes are chat, receive, share, website"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unloadable_plugin_is_not_a_section_error_but_check_reports_it() {
        let registry = Registry::builtin();
        let missing = Path::new("/nonexistent/libnothing.so");
        let empty = toml::Value::Table(toml::Table::new());
        assert!(registry.check("nothing", Some(missing), &empty).is_ok());
        let err = registry.factory("nothing", Some(missing)).err().unwrap();
        assert!(
            format!("{err:#}").contains("cannot load the plugin"),
            "{err:#}"
        );
    }
}
