//! The modes a host knows: the built-in ones, and how a tab's mode becomes a service.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use futures::future::BoxFuture;
use onionhost_sdk::host::{DynMode, ModeFactory};
use onionhost_sdk::{ModeError, TabContext, Visitor, axum};
use tokio_util::sync::CancellationToken;

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
        Box::pin(onionhost_sdk::http::serve_connection(
            conn,
            self.0.clone(),
            // Until the transports say which circuit a connection came on, each connection
            // is its own visitor.
            Visitor::unique(),
            stopping,
            force_close,
        ))
    }
}

/// A built-in mode as a [`TabFactory`].
struct Builtin(Box<dyn ModeFactory>);

impl TabFactory for Builtin {
    fn build(
        &self,
        section: toml::Value,
        ctx: TabContext,
    ) -> Result<Arc<dyn TabService>, ModeError> {
        let router = self.0.build(section, ctx)?;
        Ok(Arc::new(RouterService(onionhost_sdk::http::harden(router))))
    }
}

/// The built-in modes, by name.
pub(crate) struct Registry {
    modes: BTreeMap<String, Arc<Builtin>>,
}

impl Registry {
    /// Chat, share and receive.
    pub(crate) fn builtin() -> Self {
        Self::with(vec![
            Box::new(DynMode::<onionhost_chat::ChatMode>::new()),
            Box::new(DynMode::<onionhost_receive::ReceiveMode>::new()),
            Box::new(DynMode::<onionhost_share::ShareMode>::new()),
        ])
    }

    /// A registry of the given modes (tests use it to add modes of their own).
    pub(crate) fn with(factories: Vec<Box<dyn ModeFactory>>) -> Self {
        let modes = factories
            .into_iter()
            .map(|factory| (factory.name().to_owned(), Arc::new(Builtin(factory))))
            .collect();
        Self { modes }
    }

    /// The mode called `name`, for checking a config section.
    pub(crate) fn get(&self, name: &str) -> Option<&dyn ModeFactory> {
        self.modes.get(name).map(|builtin| &*builtin.0)
    }

    /// The mode called `name`, for building tabs.
    pub(crate) fn factory(&self, name: &str) -> Option<Arc<dyn TabFactory>> {
        self.modes
            .get(name)
            .map(|builtin| Arc::clone(builtin) as Arc<dyn TabFactory>)
    }

    /// The names of the built-in modes.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.modes.keys().map(String::as_str)
    }
}
