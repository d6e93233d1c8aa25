//! A mode for onionhost's plugin tests, never for real use: its handlers panic on request, use
//! tokio (timers, spawned and blocking tasks, file I/O) inside the plugin's own runtime, and
//! stay in flight (a second, or forever) when the host stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use onionhost_sdk::axum::Router;
use onionhost_sdk::axum::extract::State;
use onionhost_sdk::axum::routing::get;
use onionhost_sdk::{BuildError, Mode, TabContext, TabEvent};
use serde::Deserialize;

/// `[tab.panicky]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PanickyConfig {
    /// Panic in `Mode::build`, to check that only this tab fails.
    pub panic_in_build: bool,
}

impl onionhost_sdk::ModeConfig for PanickyConfig {}

/// The test mode (`mode = "panicky"`).
pub struct Panicky {
    hits: Arc<AtomicU64>,
    ctx: TabContext,
}

impl Mode for Panicky {
    const NAME: &'static str = "panicky";
    type Config = PanickyConfig;

    fn build(config: PanickyConfig, ctx: TabContext) -> Result<Self, BuildError> {
        assert!(
            !config.panic_in_build,
            "panicky was asked to panic while starting"
        );
        Ok(Self {
            hits: Arc::new(AtomicU64::new(0)),
            ctx,
        })
    }

    fn router(self: Arc<Self>) -> Router {
        let hits = Arc::clone(&self.hits);
        Router::new()
            .route(
                "/",
                get(move || async move {
                    // Per-tab state: each tab counts its own requests.
                    format!("hits {}", hits.fetch_add(1, Ordering::Relaxed) + 1)
                }),
            )
            .route("/panic", get(panic))
            .route("/tokio", get(uses_tokio))
            .route("/slow", get(slow).with_state(self.ctx.clone()))
            .route("/hang", get(hang).with_state(self.ctx.clone()))
            .route("/stop", get(stop).with_state(self.ctx.clone()))
    }
}

/// Answers after a second, whatever happens meanwhile: a request in flight when the tab stops.
async fn slow(State(ctx): State<TabContext>) -> &'static str {
    ctx.report(TabEvent::Notice {
        message: "slow request started".to_owned(),
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    "slow done"
}

/// Never answers: a connection the host must close itself when its grace period is over.
async fn hang(State(ctx): State<TabContext>) -> &'static str {
    ctx.report(TabEvent::Notice {
        message: "hanging request started".to_owned(),
    });
    std::future::pending().await
}

/// Asks the host to stop this tab, as share does after its download.
async fn stop(State(ctx): State<TabContext>) -> &'static str {
    ctx.request_stop("asked to stop over HTTP");
    "stopping"
}

async fn panic() -> &'static str {
    panic!("panicky was asked to panic in a handler")
}

/// Every kind of tokio call that fails with "no reactor running" when a plugin's runtime
/// objects are handed to the host.
async fn uses_tokio() -> String {
    tokio::time::sleep(Duration::from_millis(5)).await;
    let spawned = tokio::spawn(async { 20 }).await.unwrap_or_default();
    let blocking = tokio::task::spawn_blocking(|| 22).await.unwrap_or_default();
    let root = tokio::fs::metadata("/")
        .await
        .map(|m| m.is_dir())
        .unwrap_or(false);
    format!("tokio {} {root}", spawned + blocking)
}

onionhost_sdk::export_mode!(Panicky);
