//! Serving a tab's router on one connection, with the headers every response must carry.
//!
//! The host serves built-in modes with [`serve_connection`], and a plugin serves itself with the
//! same function inside its own runtime, so every tab gets the same hardening whatever loaded it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;

use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode, header};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

mod csp;
mod head;
mod origin;
mod percent;
mod visitor;

pub use csp::{
    CONTENT_SECURITY_POLICY, ContentSecurityPolicy, GeneratedPage, MAX_CUSTOM_POLICY_BYTES,
    mark_generated,
};
pub use percent::{PercentDecodeError, percent_decode, percent_encode_segment};
pub use visitor::Visitor;

use head::{HeadLimit, MAX_REQUEST_HEAD};

/// How long a visitor may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a visitor may take no bytes at all before the connection is closed. Without it a
/// visitor that stops reading holds its connection, and whatever its response holds (a share's
/// download slot and reading thread), for ever; a Tor circuit that stalls this long is gone
/// anyway, and a cut download resumes with `Range`.
const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Wraps a mode's router with the security headers, panic containment, `Cache-Control`, and
/// the refusal of cross-site requests.
///
/// The headers overwrite whatever the mode set, so a mode cannot weaken them by accident. A
/// request that can change state (any method but `GET`, `HEAD` and `OPTIONS`, and WebSocket
/// upgrades) gets 403 when its `Origin` is not the tab's own (`http://` and the `Host`),
/// is `null`, or `Sec-Fetch-Site` says `cross-site` or `same-site`; a request with neither
/// header (not a browser) is let in.
///
/// Every response carries the strict default [`CONTENT_SECURITY_POLICY`]; see
/// [`harden_with`] for a tab whose mode asks for another.
pub fn harden(router: Router) -> Router {
    harden_with(router, &ContentSecurityPolicy::Default)
}

/// [`harden`], with `policy` as the responses' Content-Security-Policy (none at all for
/// [`ContentSecurityPolicy::Off`]): the host applies what the tab's mode asks for
/// ([`crate::Mode::content_security_policy`]). A response marked [`GeneratedPage`] gets the
/// strict default [`CONTENT_SECURITY_POLICY`] whatever `policy` is. Every other header is the
/// same.
pub fn harden_with(router: Router, policy: &ContentSecurityPolicy) -> Router {
    let fixed = [
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
    let mut router = router
        .layer(axum::middleware::from_fn(origin::refuse_cross_site))
        .layer(CatchPanicLayer::custom(panic_response));
    for (name, value) in fixed {
        router = router.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ));
    }
    // A page the host generated gets the strict default whatever the tab's policy; every
    // other response the tab's (none at all, for `Off`: the header is left unset).
    let tabs = policy.header_value();
    let strict = HeaderValue::from_static(CONTENT_SECURITY_POLICY);
    router = router.layer(SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        move |response: &Response| {
            if response.extensions().get::<GeneratedPage>().is_some() {
                Some(strict.clone())
            } else {
                tabs.clone()
            }
        },
    ));
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
/// Every request of the connection carries `visitor` as a request extension (see
/// [`Visitor`]): the host passes the one of the connection's circuit.
///
/// When `stopping` is cancelled the connection ends gracefully: requests in flight finish (a
/// download runs to its end), no new request is read. When `force_close` is cancelled the
/// connection is dropped at once; the host does that after a grace period when it shuts down.
/// HTTP/1.1 is served, with WebSocket upgrades. A visitor that takes no bytes for two minutes
/// while a response waits to be written is disconnected.
///
/// HTTP/2 is refused: browsers speak it only over TLS, which an onion address does not need,
/// and its flow control lets a visitor that keeps reading the connection hold every response
/// on it (up to 200 at once) by granting no window, which no write timeout can see.
pub async fn serve_connection<I>(
    io: I,
    router: Router,
    visitor: Visitor,
    stopping: CancellationToken,
    force_close: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    serve_with_stall_limit(
        io,
        router,
        visitor,
        stopping,
        force_close,
        WRITE_STALL_TIMEOUT,
    )
    .await;
}

async fn serve_with_stall_limit<I>(
    io: I,
    router: Router,
    visitor: Visitor,
    stopping: CancellationToken,
    force_close: CancellationToken,
    stall_limit: Duration,
) where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let io = StallLimit {
        io: HeadLimit::new(io),
        limit: stall_limit,
        stalled: None,
    };
    let service = TowerToHyperService::new(router.map_request(
        move |mut request: http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(visitor);
            request
        },
    ));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        // `Date` would tell every visitor the host's clock, and clock skew links an onion
        // service to the machine behind it.
        .auto_date_header(false)
        // A backstop: `HeadLimit` closes the connection before a head reaches this.
        .max_buf_size(MAX_REQUEST_HEAD);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
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

/// A connection whose writes fail once the visitor has taken nothing for `limit`: the timer
/// starts when a write or flush cannot go on, and any progress stops it.
struct StallLimit<I> {
    io: I,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<I> StallLimit<I> {
    /// Called when a write or flush is pending: an error once the stall has lasted too long.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the visitor took no bytes for too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<T>(
        &mut self,
        poll: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.pending(cx),
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for StallLimit<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for StallLimit<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.progress(poll, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.progress(poll, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        self.progress(poll, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_shutdown(cx);
        self.progress(poll, cx)
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use tokio::io::AsyncWriteExt;

    use super::*;

    /// A response that never ends, as a download to a visitor that stopped reading.
    fn endless() -> Router {
        harden(Router::new().route(
            "/",
            get(|| async {
                let chunk = axum::body::Bytes::from(vec![0u8; 64 * 1024]);
                let chunks =
                    futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
                Body::from_stream(chunks)
            }),
        ))
    }

    #[tokio::test]
    async fn a_visitor_that_stops_reading_is_disconnected() {
        let (mut visitor, server) = tokio::io::duplex(16 * 1024);
        let never = CancellationToken::new();
        let served = tokio::spawn(serve_with_stall_limit(
            server,
            endless(),
            Visitor::unique(),
            never.clone(),
            never,
            Duration::from_millis(300),
        ));
        visitor
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("request");
        // The visitor reads nothing; the connection must end on its own.
        tokio::time::timeout(Duration::from_secs(10), served)
            .await
            .expect("a stalled connection was held open")
            .expect("the connection task");
        drop(visitor);
    }

    #[tokio::test]
    async fn http2_is_refused_so_a_zero_window_cannot_hold_a_response() {
        use tokio::io::AsyncReadExt;
        let (mut visitor, server) = tokio::io::duplex(64 * 1024);
        let never = CancellationToken::new();
        let served = tokio::spawn(serve_with_stall_limit(
            server,
            endless(),
            Visitor::unique(),
            never.clone(),
            never,
            WRITE_STALL_TIMEOUT,
        ));
        // The HTTP/2 preface, SETTINGS with INITIAL_WINDOW_SIZE = 0, then `GET /` on stream 1:
        // served over HTTP/2, the response could never send a byte, and would wait for ever.
        let mut h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        h2.extend_from_slice(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
        h2.extend_from_slice(&[
            0, 0, 6, 1, 5, 0, 0, 0, 1, 0x82, 0x86, 0x84, 0x41, 0x01, b'x',
        ]);
        visitor.write_all(&h2).await.expect("request");
        // The visitor keeps reading, so nothing stalls on the socket; the connection must
        // end anyway.
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), visitor.read_to_end(&mut answer))
            .await
            .expect("an HTTP/2 connection was held open")
            .expect("read");
        tokio::time::timeout(Duration::from_secs(10), served)
            .await
            .expect("the connection task did not end")
            .expect("the connection task");
    }

    #[tokio::test]
    async fn a_slow_reader_that_keeps_reading_is_not_disconnected() {
        use tokio::io::AsyncReadExt;
        let (mut visitor, server) = tokio::io::duplex(16 * 1024);
        let stop = CancellationToken::new();
        let served = tokio::spawn(serve_with_stall_limit(
            server,
            endless(),
            Visitor::unique(),
            stop.clone(),
            stop.clone(),
            Duration::from_millis(300),
        ));
        visitor
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("request");
        // A little at a time, for several stall periods: each read is progress.
        let mut buf = [0u8; 1024];
        let until = tokio::time::Instant::now() + Duration::from_millis(1500);
        while tokio::time::Instant::now() < until {
            let n = visitor.read(&mut buf).await.expect("read");
            assert!(n > 0, "the server closed a connection that was reading");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!served.is_finished());
        stop.cancel();
    }

    /// Sends `request` raw through [`serve_connection`] and returns all the host answered.
    pub(super) async fn raw_exchange(router: Router, request: &[u8]) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let (mut visitor, server) = tokio::io::duplex(256 * 1024);
        let never = CancellationToken::new();
        let served = tokio::spawn(serve_connection(
            server,
            router,
            Visitor::unique(),
            never.clone(),
            never,
        ));
        visitor.write_all(request).await.expect("request");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), visitor.read_to_end(&mut answer))
            .await
            .expect("the connection was held open")
            .expect("read");
        tokio::time::timeout(Duration::from_secs(10), served)
            .await
            .expect("the connection task did not end")
            .expect("the connection task");
        answer
    }

    fn page() -> Router {
        harden(Router::new().route("/", get(|| async { "page" })))
    }

    /// The policy a mode asks for replaces the strict default, or is left out, and nothing
    /// else changes: a mode can choose its Content-Security-Policy, not drop the other headers.
    #[tokio::test]
    async fn harden_with_sets_the_policy_asked_for_and_only_that() {
        let answer = |policy: ContentSecurityPolicy| async move {
            let router = harden_with(Router::new().route("/", get(|| async { "page" })), &policy);
            let answer = raw_exchange(
                router,
                b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            )
            .await;
            String::from_utf8(answer)
                .expect("text")
                .to_ascii_lowercase()
        };
        let strict = answer(ContentSecurityPolicy::Default).await;
        assert!(
            strict.contains(&format!(
                "content-security-policy: {CONTENT_SECURITY_POLICY}"
            )),
            "{strict}"
        );
        let own = answer(ContentSecurityPolicy::Custom("img-src *".into())).await;
        assert!(
            own.contains("content-security-policy: img-src *\r\n"),
            "{own}"
        );
        let off = answer(ContentSecurityPolicy::Off).await;
        assert!(!off.contains("content-security-policy"), "{off}");
        // A page the host generated keeps the strict default under any policy.
        for policy in [
            ContentSecurityPolicy::Default,
            ContentSecurityPolicy::Custom("default-src 'none'".into()),
            ContentSecurityPolicy::Off,
        ] {
            let router = harden_with(
                Router::new().route(
                    "/",
                    get(|| async { mark_generated("listing".into_response()) }),
                ),
                &policy,
            );
            let answer = raw_exchange(
                router,
                b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            )
            .await;
            let answer = String::from_utf8(answer)
                .expect("text")
                .to_ascii_lowercase();
            assert_eq!(
                answer.matches("content-security-policy:").count(),
                1,
                "{policy:?}: {answer}"
            );
            assert!(
                answer.contains(&format!(
                    "content-security-policy: {CONTENT_SECURITY_POLICY}\r\n"
                )),
                "{policy:?}: {answer}"
            );
        }
        for answer in [strict, own, off] {
            for header in ["x-frame-options: deny", "x-content-type-options: nosniff"] {
                assert!(answer.contains(header), "{header}: {answer}");
            }
        }
    }

    /// Regression (issue 9, headers on every answer): every response carried `Date`, which
    /// tells any visitor the host's clock.
    #[tokio::test]
    async fn no_response_carries_date() {
        let answer = raw_exchange(
            page(),
            b"GET / HTTP/1.1\r\nhost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        let answer = String::from_utf8(answer).expect("text");
        assert_eq!(answer.matches("HTTP/1.1 200").count(), 1, "{answer}");
        assert_eq!(answer.matches("HTTP/1.1 404").count(), 1, "{answer}");
        assert!(
            !answer.to_ascii_lowercase().contains("\r\ndate:"),
            "{answer}"
        );
    }
}
