//! Serving a tab's router on one connection, with the headers every response must carry.
//!
//! The host serves built-in modes with [`serve_connection`], and a plugin serves itself with the
//! same function inside its own runtime, so every tab gets the same hardening whatever loaded it.

use std::time::Duration;

use axum::Router;

use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode, header};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

/// The Content-Security-Policy of every response: no inline script, no framing, no foreign
/// resources.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; frame-ancestors 'none'; \
     form-action 'self'; base-uri 'self'";

/// How long a visitor may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest request head (request line and headers) a visitor may send.
const MAX_REQUEST_HEAD: usize = 32 * 1024;

/// Wraps a mode's router with the security headers, panic containment and `Cache-Control`.
///
/// The headers overwrite whatever the mode set, so a mode cannot weaken them by accident.
pub fn harden(router: Router) -> Router {
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    let mut router = router.layer(CatchPanicLayer::custom(panic_response));
    for (name, value) in fixed {
        router = router.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router.layer(SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    ))
}

/// What a visitor sees when a handler panics. The panic's message stays on the host.
fn panic_response(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::warn!("a request handler panicked; the visitor got a 500");
    (StatusCode::INTERNAL_SERVER_ERROR, "Internal error\n").into_response()
}

/// Serves `router` (already [`harden`]ed) on one connection until the visitor closes it.
///
/// When `stopping` is cancelled the connection ends gracefully: requests in flight finish (a
/// download runs to its end), no new request is read. When `force_close` is cancelled the
/// connection is dropped at once; the host does that after a grace period when it shuts down.
/// HTTP/1.1 (with WebSocket upgrades) and HTTP/2 are both accepted.
pub async fn serve_connection<I>(
    io: I,
    router: Router,
    stopping: CancellationToken,
    force_close: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let service = TowerToHyperService::new(router);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_REQUEST_HEAD);
    builder
        .http2()
        .max_header_list_size(MAX_REQUEST_HEAD as u32);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(err) = result {
                tracing::debug!("connection ended with an error: {err}");
            }
            return;
        }
        () = stopping.cancelled() => {}
        () = force_close.cancelled() => return,
    }
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        _ = conn => {}
        () = force_close.cancelled() => tracing::debug!("a connection was closed before its requests finished"),
    }
}

/// A plain-text error for a visitor: the status and one sentence, nothing from the host.
pub fn plain_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}
