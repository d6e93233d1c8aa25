//! The loopback transport of `--local-only`: each tab on its own 127.0.0.1 port.

use anyhow::Context as _;
use futures::StreamExt as _;
use onionhost_sdk::Visitor;
use tokio::net::TcpListener;

use super::{Connection, Incoming};
use crate::config::TabConfig;
use crate::console::Console;

/// Listens on 127.0.0.1 at the tab's port (or a free one) and prints the tab's URL.
pub(crate) async fn open(tab: &TabConfig, console: &Console) -> anyhow::Result<Incoming> {
    let port = tab.port.unwrap_or(0);
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    console.tab(&tab.name, &format!("serving at http://{addr}/"));
    let incoming = futures::stream::unfold(listener, |listener| async move {
        loop {
            match listener.accept().await {
                Ok((stream, _peer)) => {
                    // Small writes (chat lines, WebSocket frames) should leave at once.
                    let _ = stream.set_nodelay(true);
                    // Loopback tells nothing about who connects: each connection is its own visitor.
                    return Some((Connection::new(stream, Visitor::unique()), listener));
                }
                Err(err) => {
                    // Running out of file descriptors must not end the tab: wait and retry.
                    tracing::warn!("accepting a connection failed: {err}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(incoming.boxed())
}
