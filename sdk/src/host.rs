//! What only the host (and the sdk's own plugin export) uses: type erasure over [`Mode`], and
//! making and closing a [`TabContext`]. Hidden from the docs a mode author reads; a mode never
//! needs any of it (tests use [`crate::testing`]).

use std::marker::PhantomData;
use std::sync::Arc;

use axum::{Extension, Router};
use tokio_util::sync::CancellationToken;

use crate::{ConfigError, Mode, ModeConfig, ModeError, TabContext, TabEvent};

/// A mode with its types erased: parses a config section and builds a tab's router.
pub trait ModeFactory: Send + Sync {
    /// The mode's name ([`Mode::NAME`]).
    fn name(&self) -> &str;

    /// Parses and validates a config section without building anything.
    fn check(&self, section: toml::Value) -> Result<(), ConfigError>;

    /// The warnings of a valid section ([`ModeConfig::warnings`]); none for a section that
    /// does not parse (its [`ModeFactory::check`] says why).
    fn warnings(&self, section: toml::Value) -> Vec<String> {
        let _ = section;
        Vec::new()
    }

    /// Parses, validates and builds one tab; returns the router to serve, hardened
    /// ([`crate::http::harden_with`], with the mode's Content-Security-Policy), so that
    /// whoever serves it (the host, a plugin's export, a test) serves the same headers.
    ///
    /// The instance is kept alive by the router and dropped with it.
    fn build(&self, section: toml::Value, ctx: TabContext) -> Result<Router, ModeError>;
}

/// The [`ModeFactory`] of the mode `M`.
pub struct DynMode<M>(PhantomData<fn() -> M>);

impl<M: Mode> DynMode<M> {
    /// The factory of `M`.
    pub fn new() -> Self {
        Self(PhantomData)
    }

    /// The factory of `M`, boxed for a registry.
    pub fn boxed() -> Box<dyn ModeFactory> {
        Box::new(Self::new())
    }
}

impl<M: Mode> Default for DynMode<M> {
    fn default() -> Self {
        Self::new()
    }
}

/// The keys of a serde path, from the outermost: the one mapping of config errors to their key,
/// for mode sections here and for the host's own tables.
pub fn key_path(path: &serde_path_to_error::Path) -> Vec<String> {
    path.iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
            serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
            serde_path_to_error::Segment::Unknown => None,
        })
        .collect()
}

/// The config section of a mode's typed config, for a tab the host builds without a config
/// file (the one-tab commands): every value is serialized by serde, none is written as TOML
/// text by hand, so a path with quotes, backslashes or newlines arrives as it is. A value TOML
/// cannot hold (a path that is not UTF-8) is an error, never a changed value.
pub fn section<C: serde::Serialize>(config: &C) -> Result<toml::Value, ConfigError> {
    toml::Value::try_from(config).map_err(|err| ConfigError {
        key: Vec::new(),
        message: format!("cannot be written as a config section: {err}"),
    })
}

/// Parses a mode's config section and validates it.
pub fn parse_config<M: Mode>(section: toml::Value) -> Result<M::Config, ConfigError> {
    let config: M::Config = serde_path_to_error::deserialize(section).map_err(|err| {
        let key = key_path(err.path());
        ConfigError {
            key,
            message: err.into_inner().to_string(),
        }
    })?;
    config.validate()?;
    Ok(config)
}

impl<M: Mode> ModeFactory for DynMode<M> {
    fn name(&self) -> &str {
        M::NAME
    }

    fn check(&self, section: toml::Value) -> Result<(), ConfigError> {
        parse_config::<M>(section).map(drop)
    }

    fn warnings(&self, section: toml::Value) -> Vec<String> {
        parse_config::<M>(section)
            .map(|config| config.warnings())
            .unwrap_or_default()
    }

    fn build(&self, section: toml::Value, ctx: TabContext) -> Result<Router, ModeError> {
        let config = parse_config::<M>(section)?;
        let instance = Arc::new(M::build(config, ctx)?);
        let policy = instance.content_security_policy();
        // The extension keeps the instance alive as long as the router, even if the mode's
        // router holds only parts of it.
        let router = Arc::clone(&instance).router().layer(Extension(instance));
        Ok(crate::http::harden_with(router, &policy))
    }
}

/// Makes a tab's context.
///
/// `events` receives every [`TabEvent`] the tab reports; `stop` is called with a reason when
/// the tab asks to be stopped; `shutdown` is cancelled when the tab stops.
pub fn context(
    tab_name: impl Into<Arc<str>>,
    shutdown: CancellationToken,
    events: impl Fn(TabEvent) + Send + Sync + 'static,
    stop: impl Fn(String) + Send + Sync + 'static,
) -> TabContext {
    TabContext::new(tab_name, shutdown, events, stop)
}

/// `ctx` with `notifier` sending its notices ([`TabContext::post_notice`]); without one, a
/// tab cannot send any ([`crate::notice::NoticeError::Unsupported`]).
pub fn with_notifier(
    ctx: TabContext,
    notifier: std::sync::Arc<dyn crate::notice::Notifier>,
) -> TabContext {
    ctx.with_notifier(notifier)
}

/// Resolves when no [`crate::TaskGuard`] of `ctx` is held any more. The host calls it once
/// the tab is stopping.
pub async fn guarded_tasks_ended(ctx: &TabContext) {
    ctx.guarded_tasks_ended().await;
}
