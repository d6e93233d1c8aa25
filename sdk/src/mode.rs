//! The [`Mode`] trait: what every mode, built in or loaded as a plugin, implements.

use std::sync::Arc;

use axum::Router;
use serde::de::DeserializeOwned;

use crate::http::ContentSecurityPolicy;
use crate::{BuildError, ConfigError, TabContext};

/// A kind of tab: chat, share, receive, or a mode of your own.
///
/// # Lifecycle
///
/// 1. **Configure.** The host reads the tab's section of the config file (`[tab.<NAME>]`) into
///    [`Mode::Config`]. Unknown keys must be rejected (`#[serde(deny_unknown_fields)]`) and every
///    key should have a default, so that a tab with no section at all still starts. Then the
///    host calls [`ModeConfig::validate`], which checks values beyond their types. Any error
///    here stops the host before anything is served.
/// 2. **Build.** [`Mode::build`] makes one instance for one tab. Two tabs of the same mode get
///    two instances that share nothing. Do cheap, fallible set-up here (open a directory, walk
///    the shared files); report what you did with [`TabContext::report`].
/// 3. **Serve.** The host calls [`Mode::router`] once, with the instance in an [`Arc`], and
///    serves the router on the tab's transport until the tab stops. Give the `Arc` to the
///    router as its state (`.with_state(self)`): handlers extract `State<Arc<Self>>`, and no
///    wrapper struct is needed. The instance is kept alive at least as long as the router.
///    The host wraps the router in its hardening ([`crate::http::harden_with`]): security
///    headers on every response, with the Content-Security-Policy that
///    [`Mode::content_security_policy`] returns (the strict default unless the mode says
///    otherwise).
/// 4. **Stop.** When the host shuts down, or the tab is stopped (also by
///    [`TabContext::request_stop`]), [`TabContext::shutdown`] resolves. The host stops accepting
///    connections, lets requests in flight finish for a short grace period, then drops the
///    router and the instance. Clean up in `Drop` or in a task that awaits the shutdown signal.
///
/// A panic in a handler is caught: the visitor gets a 500 and the tab carries on. A panic in
/// [`Mode::build`] marks the tab failed; other tabs keep serving.
pub trait Mode: Sized + Send + Sync + 'static {
    /// The name used in config files (`mode = "chat"`) and on the console.
    const NAME: &'static str;

    /// The type of the mode's own config section, `[tab.<NAME>]`.
    type Config: ModeConfig;

    /// Builds the instance that serves one tab.
    fn build(config: Self::Config, ctx: TabContext) -> Result<Self, BuildError>;

    /// The HTTP application of this instance. Called once, after [`Mode::build`].
    fn router(self: Arc<Self>) -> Router;

    /// The Content-Security-Policy of every response of this instance's tab. Called once,
    /// after [`Mode::build`]. The default, and what nearly every mode wants, is the host's
    /// strict policy ([`crate::http::CONTENT_SECURITY_POLICY`]); a mode that serves pages it
    /// did not write (a website) may let its config replace it, or turn it off. A mode that
    /// turns it off says so on the console when the tab starts.
    fn content_security_policy(&self) -> ContentSecurityPolicy {
        ContentSecurityPolicy::Default
    }
}

/// A mode's config section: parsed with serde, then checked by [`ModeConfig::validate`].
///
/// A config with nothing to check beyond its types implements it with an empty body:
/// `impl ModeConfig for MyConfig {}`.
pub trait ModeConfig: DeserializeOwned + Send + 'static {
    /// Checks a parsed config beyond what its types say (ranges, paths that must exist...).
    ///
    /// Name the offending key in the error with [`ConfigError::at`].
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }

    /// What the user should know about a valid config before serving it (a safety that is
    /// turned off, say), one sentence each, starting with `warning: `. `onionhost check`
    /// prints them, and a mode that has any reports them when its tab starts
    /// ([`crate::TabEvent::Notice`]), so both say the same.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}
