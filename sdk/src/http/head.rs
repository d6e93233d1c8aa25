//! Holding every request head to exactly [`MAX_REQUEST_HEAD`] bytes, and closing the
//! connection on a head that hyper would answer itself.
//!
//! hyper checks its own limit only between reads, so a head could grow to about twice its
//! buffer, and the 400/431 it writes for a malformed head carry none of the headers
//! [`super::harden`] sets. [`HeadLimit`] sees every byte the visitor sends: it counts each head
//! as it arrives, follows each request's body (`Content-Length` or chunked) to find the next
//! head, checks a complete head the way hyper will, and fails the read that would complete a
//! head that is too large or malformed. hyper then closes the connection without an answer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderName, Method};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest request head (request line and headers, with the blank line that ends them),
/// and the largest trailer section of a chunked body.
pub(super) const MAX_REQUEST_HEAD: usize = 32 * 1024;

/// The most header lines in a head, as hyper allows (more would be its own 431).
const MAX_HEADERS: usize = 100;

/// The longest chunk-size line of a chunked body (size and extensions).
const MAX_CHUNK_LINE: usize = 1024;

/// Where in the byte stream the visitor is.
#[derive(Debug)]
enum Framing {
    /// Reading a request head; `started` once past any blank lines before it.
    Head { started: bool },
    /// Inside a body with this many bytes left.
    Sized(u64),
    /// Reading a chunk-size line.
    ChunkSize,
    /// Inside a chunk with this many bytes left.
    ChunkData(u64),
    /// The line end after a chunk's data.
    ChunkEnd,
    /// The trailer section after the last chunk.
    Trailers,
    /// The connection was upgraded (WebSocket): its bytes are no longer HTTP.
    Upgraded,
}

/// An I/O stream that holds the visitor's request heads to the limit; see the module.
pub(super) struct HeadLimit<I> {
    io: I,
    framing: Framing,
    /// The bytes of the head, trailer section or chunk-size line being read.
    line: Vec<u8>,
    /// Whether the current line of the head or trailers is empty so far.
    line_empty: bool,
    /// Whether the last request asked for an upgrade: a `101` answer then ends HTTP.
    upgrade_asked: bool,
}

impl<I> HeadLimit<I> {
    pub(super) fn new(io: I) -> Self {
        Self {
            io,
            framing: Framing::Head { started: false },
            line: Vec::new(),
            line_empty: true,
            upgrade_asked: false,
        }
    }

    /// Follows `data`, just read from the visitor; an error means the connection must close.
    fn follow(&mut self, mut data: &[u8]) -> Result<(), &'static str> {
        while !data.is_empty() {
            match self.framing {
                Framing::Upgraded => return Ok(()),
                Framing::Sized(left) | Framing::ChunkData(left) => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    data = &data[take..];
                    let left = left - take as u64;
                    self.framing = match (&self.framing, left) {
                        (Framing::Sized(_), 0) => Framing::Head { started: false },
                        (Framing::Sized(_), _) => Framing::Sized(left),
                        (_, 0) => Framing::ChunkEnd,
                        (_, _) => Framing::ChunkData(left),
                    };
                }
                Framing::Head { started } => {
                    let byte = data[0];
                    data = &data[1..];
                    self.line.push(byte);
                    if !started && (byte == b'\r' || byte == b'\n') {
                        // hyper skips blank lines before a request; they count all the same.
                    } else if self.section_ends(byte) {
                        self.framing = self.request_ends()?;
                        self.line.clear();
                        continue;
                    } else {
                        self.framing = Framing::Head { started: true };
                    }
                    if self.line.len() >= MAX_REQUEST_HEAD {
                        return Err("a request head over the limit");
                    }
                }
                Framing::Trailers => {
                    let byte = data[0];
                    data = &data[1..];
                    self.line.push(byte);
                    if self.section_ends(byte) {
                        self.framing = Framing::Head { started: false };
                        self.line.clear();
                    } else if self.line.len() >= MAX_REQUEST_HEAD {
                        return Err("a trailer section over the limit");
                    }
                }
                Framing::ChunkSize => {
                    let byte = data[0];
                    data = &data[1..];
                    if byte != b'\n' {
                        self.line.push(byte);
                        if self.line.len() > MAX_CHUNK_LINE {
                            return Err("a chunk-size line over the limit");
                        }
                        continue;
                    }
                    let size = chunk_size(&self.line).ok_or("a malformed chunk size")?;
                    self.line.clear();
                    self.framing = if size == 0 {
                        self.line_empty = true;
                        Framing::Trailers
                    } else {
                        Framing::ChunkData(size)
                    };
                }
                Framing::ChunkEnd => {
                    let byte = data[0];
                    data = &data[1..];
                    match byte {
                        b'\r' => {}
                        b'\n' => self.framing = Framing::ChunkSize,
                        _ => return Err("a chunk without its line end"),
                    }
                }
            }
        }
        Ok(())
    }

    /// Follows the lines of a head or trailer section: whether `byte` ends it (a blank line).
    fn section_ends(&mut self, byte: u8) -> bool {
        match byte {
            b'\n' if self.line_empty => return true,
            b'\n' => self.line_empty = true,
            b'\r' => {}
            _ => self.line_empty = false,
        }
        false
    }

    /// A request head is complete in `line`: checks it as hyper will, and finds its body.
    fn request_ends(&mut self) -> Result<Framing, &'static str> {
        self.line_empty = true;
        let request = parse_head(&self.line)?;
        self.upgrade_asked = request.upgrade;
        Ok(request.body)
    }

    /// A response starts with `bytes`: a `101` to an upgrade request ends HTTP on this
    /// connection (the visitor sends nothing more until it has read it).
    fn answering(&mut self, bytes: &[u8]) {
        if self.upgrade_asked && bytes.starts_with(b"HTTP/1.1 101 ") {
            self.framing = Framing::Upgraded;
        }
    }
}

/// What a complete request head says about what follows it.
struct Head {
    body: Framing,
    upgrade: bool,
}

/// Checks a complete head as hyper does, so that hyper never answers one itself.
fn parse_head(bytes: &[u8]) -> Result<Head, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Complete(len)) if len == bytes.len() => {}
        _ => return Err("a malformed request head"),
    }
    let method = Method::from_bytes(request.method.unwrap_or_default().as_bytes())
        .map_err(|_| "a malformed method")?;
    http::Uri::try_from(request.path.unwrap_or_default()).map_err(|_| "a malformed target")?;
    let http_11 = request.version == Some(1);
    let mut chunked = None;
    let mut length: Option<u64> = None;
    let mut upgrade = method == Method::CONNECT;
    for header in request.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| "a bad name")?;
        if name == http::header::TRANSFER_ENCODING {
            if !http_11 {
                return Err("Transfer-Encoding in HTTP/1.0");
            }
            // As hyper: the last coding of the last line decides.
            let last = header
                .value
                .rsplit(|&b| b == b',')
                .next()
                .unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name == http::header::CONTENT_LENGTH {
            for value in header.value.split(|&b| b == b',') {
                let value = value.trim_ascii();
                if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                    return Err("a malformed Content-Length");
                }
                let value = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or("a malformed Content-Length")?;
                if length.is_some_and(|known| known != value) {
                    return Err("differing Content-Lengths");
                }
                length = Some(value);
            }
        } else if name == http::header::UPGRADE {
            upgrade = true;
        }
    }
    let body = match (chunked, length) {
        (Some(false), _) => return Err("a body neither sized nor chunked"),
        (Some(true), _) => Framing::ChunkSize,
        (None, Some(length)) if length > 0 => Framing::Sized(length),
        (None, _) => Framing::Head { started: false },
    };
    Ok(Head { body, upgrade })
}

/// The size of a chunk-size line (hex digits, then optional `;extensions`), CR included.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line.split(|&b| b == b';').next()?.trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

impl<I: AsyncRead + Unpin> AsyncRead for HeadLimit<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll
            && let Err(why) = self.follow(&buf.filled()[before..])
        {
            // hyper must not see the bytes that would complete the head.
            buf.set_filled(before);
            tracing::debug!("closing a connection: {why}");
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, why)));
        }
        poll
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for HeadLimit<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.answering(buf);
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            self.answering(first);
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::Router;
    use axum::extract::ws::{Message, WebSocketUpgrade};
    use axum::response::Response;
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_util::sync::CancellationToken;

    use super::MAX_REQUEST_HEAD;
    use crate::http::tests::raw_exchange;
    use crate::http::{Visitor, harden, serve_connection};

    fn router() -> Router {
        harden(
            Router::new()
                .route("/", get(|| async { "page" }))
                .route("/post", post(|body: String| async move { body })),
        )
    }

    /// A `GET` whose head is exactly `len` bytes long.
    fn head_of(len: usize) -> Vec<u8> {
        let start = "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-pad: ";
        let end = "\r\n\r\n";
        let pad = len - start.len() - end.len();
        format!("{start}{}{end}", "a".repeat(pad)).into_bytes()
    }

    /// Regression (issue 9, receive): request heads over the documented 32 KiB were accepted
    /// up to 40-70 kB. A head of exactly the limit is served; one byte more is not.
    #[tokio::test]
    async fn a_head_of_the_limit_is_served_and_one_byte_more_is_not() {
        let answer = raw_exchange(router(), &head_of(MAX_REQUEST_HEAD)).await;
        assert!(answer.starts_with(b"HTTP/1.1 200 "), "{answer:?}");
        let answer = raw_exchange(router(), &head_of(MAX_REQUEST_HEAD + 1)).await;
        assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
        let answer = raw_exchange(router(), &head_of(3 * MAX_REQUEST_HEAD / 2)).await;
        assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    }

    /// Heads after bodies on a kept-alive connection are counted too: the limit follows each
    /// body (sized or chunked, with trailers) to the next head.
    #[tokio::test]
    async fn heads_after_bodies_are_counted_too() {
        let bodies = "POST /post HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello\
             POST /post HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n\
             3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nx-trailer: y\r\n\r\n";
        let mut request = bodies.as_bytes().to_vec();
        request.extend_from_slice(&head_of(MAX_REQUEST_HEAD));
        let answer = String::from_utf8(raw_exchange(router(), &request).await).expect("text");
        assert_eq!(answer.matches("HTTP/1.1 200 ").count(), 3, "{answer}");
        assert!(answer.contains("hello") && answer.contains("abc0123456789abcdef"));

        let mut request = bodies.as_bytes().to_vec();
        request.extend_from_slice(&head_of(MAX_REQUEST_HEAD + 1));
        let answer = String::from_utf8(raw_exchange(router(), &request).await).expect("text");
        assert_eq!(answer.matches("HTTP/1.1 ").count(), 2, "{answer}");
    }

    /// Regression (issue 9, headers on every answer): the 400s and 431s hyper wrote itself
    /// (bad request line, bad header name, too many headers, a bad length) carried none of the
    /// security headers. Such a head now closes the connection without an answer.
    #[tokio::test]
    async fn heads_hyper_would_answer_itself_are_closed_without_an_answer() {
        let many = format!(
            "GET / HTTP/1.1\r\nhost: x\r\n{}\r\n",
            "a: b\r\n".repeat(100)
        );
        for head in [
            "GET / HTTP/1.1\r\nbad name: x\r\n\r\n",
            "GET\x01 / HTTP/1.1\r\nhost: x\r\n\r\n",
            "GET /a b HTTP/1.1\r\nhost: x\r\n\r\n",
            "GET / HTTP/9.9\r\nhost: x\r\n\r\n",
            "POST /post HTTP/1.1\r\ncontent-length: x\r\n\r\n",
            "POST /post HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
            "POST /post HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n",
            "POST /post HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
            many.as_str(),
        ] {
            let answer = raw_exchange(router(), head.as_bytes()).await;
            assert!(
                answer.is_empty(),
                "{head:?} got {}",
                String::from_utf8_lossy(&answer)
            );
        }
    }

    async fn echo(ws: WebSocketUpgrade) -> Response {
        ws.on_upgrade(|mut socket| async move {
            while let Some(Ok(message)) = socket.recv().await {
                if let Message::Binary(_) = message
                    && socket.send(message).await.is_err()
                {
                    break;
                }
            }
        })
    }

    /// After a `101`, the connection's bytes are WebSocket frames, which the head limit must
    /// not count: a 40 kB message goes through.
    #[tokio::test]
    async fn an_upgraded_connection_is_not_held_to_the_head_limit() {
        let (mut visitor, server) = tokio::io::duplex(256 * 1024);
        let never = CancellationToken::new();
        let router = harden(Router::new().route("/ws", get(echo)));
        tokio::spawn(serve_connection(
            server,
            router,
            Visitor::unique(),
            never.clone(),
            never,
        ));
        visitor
            .write_all(
                b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\
                  sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            )
            .await
            .expect("handshake");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            visitor.read_exact(&mut byte).await.expect("the 101");
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101 "), "{head:?}");
        let payload = vec![b'z'; 40_000];
        // A binary frame, masked with a zero key so the payload goes as it is.
        let mut frame = vec![0x82, 0x80 | 126];
        frame.extend_from_slice(&u16::try_from(payload.len()).expect("short").to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(&payload);
        visitor.write_all(&frame).await.expect("frame");
        let mut echoed = vec![0u8; 4 + payload.len()];
        tokio::time::timeout(Duration::from_secs(10), visitor.read_exact(&mut echoed))
            .await
            .expect("no echo")
            .expect("the echo");
        assert_eq!(echoed[..2], [0x82, 126]);
        assert!(echoed[4..] == payload[..]);
    }
}
