//! An ephemeral pastebin: an onionhost mode written outside the host, loaded as a plugin.
//!
//! Visitors paste text and get an unguessable link to it. Pastes live in memory only, for a
//! time the visitor picks (up to the tab's limit), optionally burned after the first reading,
//! and vanish with the tab. A paste's page shows, live over a WebSocket, how many people are
//! looking at it right now. See the README for the config keys and how to load it.

mod config;
mod live;
mod pages;
mod store;

use std::sync::Arc;

use tokio::sync::Semaphore;

use onionhost_sdk::axum::Router;
use onionhost_sdk::axum::extract::DefaultBodyLimit;
use onionhost_sdk::axum::routing::{get, post};
use onionhost_sdk::{BuildError, Mode, TabContext, TabEvent};

pub use config::PastebinConfig;

use store::Store;

/// The pastebin mode (`mode = "pastebin"`). An instance is what one tab's handlers share;
/// two tabs share nothing.
pub struct Pastebin {
    config: PastebinConfig,
    store: Store,
    /// Live views open in the whole tab, bounded by [`live::MAX_LIVE_VIEWS`].
    live_views: Arc<Semaphore>,
    ctx: TabContext,
}

/// The instance, as the handlers name it.
type State = Pastebin;

impl Mode for Pastebin {
    const NAME: &'static str = "pastebin";

    type Config = PastebinConfig;

    fn build(config: PastebinConfig, ctx: TabContext) -> Result<Self, BuildError> {
        let store = Store::new(config.max_pastes, config.max_pastes_per_minute);
        ctx.report(TabEvent::Notice {
            message: format!(
                "pastebin ready: pastes up to {}, kept at most {} minutes, at most {} at once",
                config.max_paste_bytes, config.keep_minutes, config.max_pastes
            ),
        });
        Ok(Self {
            config,
            store,
            live_views: Arc::new(Semaphore::new(live::MAX_LIVE_VIEWS)),
            ctx,
        })
    }

    fn router(self: Arc<Self>) -> Router {
        // Expired pastes are dropped by a task of the tab, not only when someone asks for them,
        // so that nothing stays in memory longer than promised.
        tokio::spawn(store::purge_expired(Arc::clone(&self)));
        // A form body is URL-encoded: up to three bytes per byte of text, plus the field name.
        let max_form_bytes =
            usize::try_from(self.config.max_paste_bytes.0).unwrap_or(usize::MAX / 4) * 3 + 1024;
        Router::new()
            .route("/", get(pages::index))
            .route(
                "/paste",
                post(pages::create).layer(DefaultBodyLimit::max(max_form_bytes)),
            )
            .route("/p/{id}", get(pages::show))
            .route(
                "/p/{id}/read",
                post(pages::read).layer(DefaultBodyLimit::max(1024)),
            )
            .route("/p/{id}/raw", get(pages::raw))
            .route("/p/{id}/live", get(live::viewers))
            .route("/live.js", pages::LIVE_JS.get())
            .fallback(pages::fallback)
            .with_state(self)
    }
}

onionhost_sdk::export_mode!(Pastebin);
