//! `GET /p/{id}/live`: a WebSocket telling a paste's page how many people view it right now.

use std::sync::Arc;

use onionhost_sdk::axum::extract::ws::rejection::WebSocketUpgradeRejection;
use onionhost_sdk::axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use onionhost_sdk::axum::extract::{Path, State};
use onionhost_sdk::axum::http::StatusCode;
use onionhost_sdk::axum::response::{IntoResponse, Response};

use crate::pages::error_page;
use crate::store::Paste;

/// The most live views of one paste at once.
const MAX_VIEWERS: usize = 200;

/// The most live views of all pastes of a tab at once.
pub(crate) const MAX_LIVE_VIEWS: usize = 1000;

/// The largest message a viewer may send (they have nothing to say; anything else is refused).
const MAX_INCOMING: usize = 1024;

/// Upgrades to a WebSocket that receives the viewer count, as decimal text, on every change.
pub(crate) async fn viewers(
    State(state): State<Arc<crate::State>>,
    Path(id): Path<String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let title = &state.config.title;
    // Opened as a page rather than by the paste's script: say so in a page.
    let Ok(upgrade) = upgrade else {
        return error_page(
            title,
            StatusCode::BAD_REQUEST,
            "This address is the live viewer count of a paste's page: open the paste itself.",
        );
    };
    // A paste to burn has no live view: its page does not show it until it is destroyed.
    let Some(paste) = state
        .store
        .get(&id)
        .filter(|paste| !paste.burn_after_reading)
    else {
        return error_page(title, StatusCode::NOT_FOUND, "No such paste.");
    };
    let Ok(permit) = Arc::clone(&state.live_views).try_acquire_owned() else {
        return error_page(
            title,
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many live views are open on this pastebin.",
        );
    };
    let mut joined = false;
    paste.viewers.send_if_modified(|count| {
        joined = *count < MAX_VIEWERS;
        if joined {
            *count += 1;
        }
        joined
    });
    if !joined {
        return error_page(
            title,
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many people are viewing this paste live.",
        );
    }
    let ctx = state.ctx.clone();
    // The host waits for the goodbye of a live view when the tab stops.
    let guard = ctx.task_guard();
    upgrade
        .max_message_size(MAX_INCOMING)
        .on_upgrade(move |socket| async move {
            watch(socket, &paste, ctx).await;
            paste.viewers.send_modify(|count| *count -= 1);
            drop(permit);
            drop(guard);
        })
        .into_response()
}

/// Sends the count until the viewer leaves or the tab stops.
async fn watch(mut socket: WebSocket, paste: &Paste, ctx: onionhost_sdk::TabContext) {
    let mut count = paste.viewers.subscribe();
    count.mark_changed();
    loop {
        tokio::select! {
            changed = count.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = count.borrow_and_update().to_string();
                if socket.send(Message::Text(now.into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                // A close, an error, or a message nobody asked for ends the view.
                _ => return,
            },
            () = ctx.shutdown() => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
        }
    }
}
