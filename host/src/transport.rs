//! Transports: how a tab's visitors reach it. The seam between the host and the network.
//!
//! A transport turns a tab into a stream of visitor connections, each a plain byte stream.
//! Modes never see which transport serves them: the same router is served on a loopback TCP
//! connection (`--local-only`) and on an onion service stream.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use futures::stream::BoxStream;
use onionhost_sdk::Visitor;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

use crate::config::TabConfig;
use crate::console::Console;

pub(crate) mod local;
pub(crate) mod onion;
pub(crate) mod system;

/// A visitor's connection: any byte stream.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// One visitor connection: a boxed byte stream and who it comes from, as far as the transport
/// can tell: every stream of one onion service rendezvous circuit has the same [`Visitor`];
/// each loopback connection has its own.
pub(crate) struct Connection {
    io: Box<dyn Io>,
    visitor: Visitor,
}

impl Connection {
    /// A connection on `io` from `visitor`.
    pub(crate) fn new(io: impl Io, visitor: Visitor) -> Self {
        Self {
            io: Box::new(io),
            visitor,
        }
    }

    /// Who the connection comes from.
    pub(crate) fn visitor(&self) -> Visitor {
        self.visitor
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    // Forwarded so that hyper writes a response's head and body chunks in one `writev` on a
    // stream that can take them (loopback TCP, the system tor's Unix socket) instead of
    // copying them into one buffer first.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A tab's incoming connections. Dropping it stops listening (and takes the tab's onion
/// service down: no new rendezvous is accepted).
pub(crate) type Incoming = BoxStream<'static, Connection>;

/// The transport every tab of this host uses.
pub(crate) enum Transport {
    /// Loopback TCP, no Tor.
    Local,
    /// Each tab its own onion service, published by the embedded Arti.
    Onion(onion::OnionTransport),
    /// Each tab its own onion service, published by the system's tor.
    System(system::SystemTransport),
}

impl Transport {
    /// Whether this transport can carry a tab's notices to `url` (see [`crate::notice`]).
    /// Loopback URLs are reached directly: their connection never leaves the machine. Any
    /// other URL goes through Tor, so `--local-only`, which has no Tor, refuses it: a notice
    /// never goes over the open internet.
    pub(crate) fn check_notice_url(
        &self,
        url: &onionhost_sdk::notice::NoticeUrl,
    ) -> Result<(), String> {
        match self {
            _ if url.is_loopback() => Ok(()),
            Self::Local => Err(
                "with --local-only there is no Tor to send it through, and a notice never goes \
                 over the open internet: use a loopback URL (http://127.0.0.1:PORT/...), or run \
                 without --local-only"
                    .to_owned(),
            ),
            Self::Onion(_) | Self::System(_) => Ok(()),
        }
    }

    /// A connection for a notice to `url` (checked with [`Transport::check_notice_url`]):
    /// loopback TCP for a loopback URL, else a Tor stream from the host's Tor client (the
    /// embedded Arti, or the system tor's SOCKS port).
    pub(crate) async fn connect_notice(
        &self,
        url: &onionhost_sdk::notice::NoticeUrl,
    ) -> anyhow::Result<Box<dyn Io>> {
        use anyhow::Context as _;
        self.check_notice_url(url).map_err(anyhow::Error::msg)?;
        if url.is_loopback() {
            let host = if url.host().eq_ignore_ascii_case("localhost")
                || url.host().to_ascii_lowercase().ends_with(".localhost")
            {
                "127.0.0.1"
            } else {
                url.host()
            };
            let stream = tokio::net::TcpStream::connect((host, url.port()))
                .await
                .context("cannot connect")?;
            return Ok(Box::new(stream));
        }
        match self {
            Self::Local => Err(anyhow::anyhow!("no Tor to send it through")),
            Self::Onion(onion) => onion.connect(url.host(), url.port()).await,
            Self::System(system) => system.connect(url.host(), url.port()).await,
        }
    }

    /// Starts serving `tab`: listens and tells the user where the tab can be reached. A tab
    /// whose `auto_start` is ahead has its address (and client key) printed at once, with the
    /// time it becomes reachable, and nothing listens (no onion service is published) until
    /// then; `None` if the tab is stopped before.
    pub(crate) async fn open(
        &self,
        tab: &TabConfig,
        console: &Console,
        stopping: &CancellationToken,
    ) -> anyhow::Result<Option<Incoming>> {
        match self {
            Self::Local => local::open(tab, console, stopping).await,
            Self::Onion(onion) => onion.open(tab, console, stopping).await,
            Self::System(system) => system.open(tab, console, stopping).await,
        }
    }
}

/// The tab's start time, if it is still ahead.
fn pending_start(tab: &TabConfig) -> Option<SystemTime> {
    tab.timers.start.filter(|start| *start > SystemTime::now())
}

/// Waits until `start`; `false` if the tab was stopped first.
async fn wait_for_start(start: SystemTime, stopping: &CancellationToken) -> bool {
    let wait = start.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        () = stopping.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::IoSlice;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A connection writes vectored when its stream does (the default would say it cannot),
    /// and a vectored write arrives whole and in order.
    #[tokio::test]
    async fn vectored_writes_pass_through() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let (server, _) = accepted.unwrap();
        let mut conn = Connection::new(server, Visitor::unique());
        assert!(
            conn.is_write_vectored(),
            "a TCP stream takes vectored writes"
        );

        let whole = b"head body tail";
        let parts = [
            IoSlice::new(&whole[..5]),
            IoSlice::new(&whole[5..10]),
            IoSlice::new(&whole[10..]),
        ];
        let sent = conn.write_vectored(&parts).await.unwrap();
        assert!(sent > 0);
        conn.write_all(&whole[sent..]).await.unwrap();
        conn.shutdown().await.unwrap();
        let mut got = Vec::new();
        let mut client = client.unwrap();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, whole);
    }
}
