//! The loopback transport of `--local-only`: each tab on its own 127.0.0.1 port; and the
//! serving of any listener's connections, which the system tor's transport shares.

use anyhow::Context as _;
use futures::StreamExt as _;
use onionhost_sdk::Visitor;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Connection, Incoming};
use crate::config::{TabConfig, show_time};
use crate::console::Console;

/// Listens on 127.0.0.1 at the tab's port (or a free one) and prints the tab's URL; with a
/// start time ahead, prints it first and listens only from then (see [`super::Transport::open`]).
pub(crate) async fn open(
    tab: &TabConfig,
    console: &Console,
    stopping: &CancellationToken,
) -> anyhow::Result<Option<Incoming>> {
    let mut port = tab.port.unwrap_or(0);
    let pending = super::pending_start(tab);
    if let Some(start) = pending {
        if port == 0 {
            // The address is printed before anything listens: a free port is chosen now and
            // taken at the start (on loopback, for development, a race here is acceptable).
            port = free_port().await?;
        }
        let url = format!("http://127.0.0.1:{port}/");
        console
            .tabs()
            .reachable(&tab.name, &url, None, Some(show_time(start)));
        console.tab(
            &tab.name,
            &format!(
                "not serving yet: reachable from {} at {url}",
                show_time(start)
            ),
        );
        if tab.qr {
            console.qr(&tab.name, "address", &url);
        }
        if !super::wait_for_start(start, stopping).await {
            return Ok(None);
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    console
        .tabs()
        .reachable(&tab.name, &format!("http://{addr}/"), None, None);
    console.tab(&tab.name, &format!("serving at http://{addr}/"));
    if tab.qr && pending.is_none() {
        console.qr(&tab.name, "address", &format!("http://{addr}/"));
    }
    Ok(Some(incoming(listener)))
}

/// A listener whose connections a tab serves: loopback TCP here, a Unix socket for the
/// system tor's onion services (`system.rs`). Each connection is its own visitor: neither
/// tells who connects.
pub(crate) trait Listener: Send + 'static {
    /// The connection's byte stream.
    type Io: super::Io;
    /// The next connection.
    fn accept(&self) -> impl Future<Output = std::io::Result<Self::Io>> + Send;
}

impl Listener for TcpListener {
    type Io = tokio::net::TcpStream;
    async fn accept(&self) -> std::io::Result<Self::Io> {
        let (stream, _peer) = TcpListener::accept(self).await?;
        // Small writes (chat lines, WebSocket frames) should leave at once.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

impl Listener for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    async fn accept(&self) -> std::io::Result<Self::Io> {
        let (stream, _peer) = tokio::net::UnixListener::accept(self).await?;
        Ok(stream)
    }
}

/// The connections of `listener`, each its own visitor, until the stream is dropped.
pub(crate) fn incoming(listener: impl Listener) -> Incoming {
    futures::stream::unfold(listener, |listener| async move {
        loop {
            match listener.accept().await {
                Ok(stream) => {
                    // Nothing here tells who connects: each connection is its own visitor.
                    return Some((Connection::new(stream, Visitor::unique()), listener));
                }
                Err(err) => {
                    // Running out of file descriptors must not end the tab: wait and retry.
                    tracing::warn!("accepting a connection failed: {err}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    })
    .boxed()
}

/// A loopback port free right now.
async fn free_port() -> anyhow::Result<u16> {
    let probe = TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("cannot find a free port on 127.0.0.1")?;
    Ok(probe
        .local_addr()
        .context("cannot read the listening address")?
        .port())
}
