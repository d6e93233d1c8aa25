//! Copies bytes between a visitor's connection and the host's end of a plugin's socket.
//!
//! This is the price of the C boundary: every byte of a plugin's tab is copied once more, in
//! the host, between the transport's connection and a local socket pair.

use tokio::io::{AsyncWriteExt as _, split};
use tokio::net::UnixStream;

use crate::transport::Connection;

/// Pumps both ways until the plugin closes its side, or the visitor's side fails.
///
/// The connection is over when the plugin, which speaks HTTP on it, closes it: a visitor who
/// half-closes (sends EOF) still gets the rest of the answer, and a visitor who stays silent
/// does not keep the connection open after the plugin is done with it.
pub(crate) async fn pump(visitor: Connection, plugin: UnixStream) {
    let (mut visitor_read, mut visitor_write) = split(visitor);
    let (mut plugin_read, mut plugin_write) = plugin.into_split();
    let upstream = async {
        let copied = tokio::io::copy(&mut visitor_read, &mut plugin_write).await;
        let _ = plugin_write.shutdown().await;
        copied
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut plugin_read, &mut visitor_write).await;
        let _ = visitor_write.shutdown().await;
    };
    tokio::pin!(upstream, downstream);
    let mut upstream_open = true;
    loop {
        tokio::select! {
            () = &mut downstream => return,
            copied = &mut upstream, if upstream_open => {
                upstream_open = false;
                if copied.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::AsyncReadExt as _;

    use super::*;

    #[tokio::test]
    async fn bytes_flow_both_ways_and_a_half_close_still_gets_the_answer() {
        let (visitor, host_side) = tokio::io::duplex(64);
        let (plugin_end, mut plugin) = UnixStream::pair().unwrap();
        let pumping = tokio::spawn(pump(
            Connection::new(host_side, onionhost_sdk::Visitor::unique()),
            plugin_end,
        ));
        let (mut visitor_read, mut visitor_write) = split(visitor);

        visitor_write.write_all(b"question").await.unwrap();
        visitor_write.shutdown().await.unwrap();
        let mut asked = Vec::new();
        plugin.read_to_end(&mut asked).await.unwrap();
        assert_eq!(asked, b"question");

        plugin.write_all(b"answer").await.unwrap();
        drop(plugin);
        let mut answer = Vec::new();
        visitor_read.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"answer");
        pumping.await.unwrap();
    }

    #[tokio::test]
    async fn a_silent_visitor_does_not_outlive_the_plugin_closing() {
        let (_visitor, host_side) = tokio::io::duplex(64);
        let (plugin_end, plugin) = UnixStream::pair().unwrap();
        let pumping = tokio::spawn(pump(
            Connection::new(host_side, onionhost_sdk::Visitor::unique()),
            plugin_end,
        ));
        drop(plugin);
        tokio::time::timeout(std::time::Duration::from_secs(10), pumping)
            .await
            .expect("the pump ends when the plugin closes")
            .unwrap();
    }
}
