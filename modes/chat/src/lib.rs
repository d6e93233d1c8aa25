#![doc = include_str!("../README.md")]

mod config;
mod message;
mod names;
mod nojs;
mod page;
mod protocol;
mod room;
mod ws;

#[cfg(test)]
mod test_support;

use std::sync::Arc;

use onionhost_sdk::axum::Router;
use onionhost_sdk::axum::extract::DefaultBodyLimit;
use onionhost_sdk::axum::routing::{get, post};
use onionhost_sdk::{BuildError, Mode, TabContext};
use tokio::sync::Semaphore;

pub use config::{ChatConfig, JoinLimitConfig, RateLimitConfig};

// Built as a `cdylib` with `--features plugin`, the chat mode is also a plugin.
#[cfg(feature = "plugin")]
onionhost_sdk::export_mode!(ChatMode);

use onionhost_sdk::http::Visitor;
use onionhost_sdk::rate::KeyedRateLimiter;
use room::Room;

/// The chat mode: one ephemeral room per tab (`mode = "chat"`). An instance is everything
/// one chat tab's handlers share; two tabs never share any of it.
pub struct ChatMode {
    config: ChatConfig,
    room: Arc<Room>,
    sessions: nojs::Sessions,
    /// Bounds open WebSockets, joined or not, so that sockets that never join cannot
    /// pile up beyond the room's size.
    connections: Arc<Semaphore>,
    /// Each visitor's rate limit, over all of their connections and sessions.
    visitors: KeyedRateLimiter<Visitor>,
    ctx: TabContext,
}

/// The instance, as the handlers name it.
type Chat = ChatMode;

/// The fewest visitors with a rate limit of their own that a room keeps apart before it refuses
/// newcomers' actions (each costs a few dozen bytes).
const MAX_VISITORS: usize = 64 * 1024;

impl Mode for ChatMode {
    const NAME: &'static str = "chat";

    type Config = ChatConfig;

    fn build(config: ChatConfig, ctx: TabContext) -> Result<Self, BuildError> {
        let room = Arc::new(Room::new(&config, ctx.clone()));
        // Room for every member, plus pages reconnecting and sockets not yet joined.
        let connections = config.max_members + config.max_members / 2 + 16;
        // Visitors who acted recently: a few per connection slot, or the room's largest size.
        let visitors = KeyedRateLimiter::new(
            config.rate_limit.rate(),
            (connections * 4).max(MAX_VISITORS),
        );
        Ok(Self {
            config,
            room,
            sessions: nojs::Sessions::default(),
            connections: Arc::new(Semaphore::new(connections)),
            visitors,
            ctx,
        })
    }

    fn router(self: Arc<Self>) -> Router {
        // A form body is URL-encoded: up to three bytes per byte of text, plus the field name.
        let max_form_bytes = self.config.max_message_bytes * 3 + 1024;
        Router::new()
            .route("/", get(page::index))
            .route("/chat.js", page::SCRIPT.get())
            .route("/chat.css", page::STYLE.get())
            .route("/ws", get(ws::upgrade))
            .route("/nojs", get(nojs::join_page))
            .route("/nojs/join", post(nojs::join))
            .route("/nojs/{token}", get(nojs::stream))
            .route("/nojs/{token}/send", post(nojs::send))
            .route("/nojs/{token}/rename", post(nojs::rename))
            .route("/nojs/{token}/leave", post(nojs::leave))
            .fallback(page::not_found)
            .layer(DefaultBodyLimit::max(max_form_bytes))
            .with_state(self)
    }
}
