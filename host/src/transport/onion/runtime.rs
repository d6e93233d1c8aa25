//! The runtime the host's Arti client runs on: Arti's own tokio runtime, except that every TCP
//! connection it opens has `TCP_NODELAY` set.
//!
//! Arti 0.47 never sets `TCP_NODELAY` (there is no `nodelay` anywhere in tor-rtcompat,
//! tor-chanmgr or tor-proto), so on its channel sockets Nagle's algorithm holds a second small
//! write until the guard has ACKed the first. A response written as a head and a small body
//! then waited for that ACK: 55.8 ms against 15.8 ms with the option set from outside, on the
//! local test network (BENCHMARKS.md, "Nagle on Arti's relay sockets"). Arti batches cells
//! itself and flushes when it means to send, so Nagle only adds that wait. Remove this module
//! once Arti sets the option itself.
//!
//! Every TCP connection Arti makes goes through [`NoDelayTcp::connect`]: channels to relays,
//! guards and bridges (tor-chanmgr's default transport), and the one to a pluggable transport's
//! or a proxy's local SOCKS port (tor-chanmgr's `proxied.rs`). The stream it returns is
//! tor-rtcompat's own tokio stream, so TLS and `StreamOps::set_tcp_notsent_lowat` (which Arti's
//! channel reactor calls for KIST) work exactly as before. Only the embedded Arti uses this;
//! `--local-only` and the system tor's transport never do.

use std::io;
use std::net::SocketAddr;

use async_trait::async_trait;
use tor_rtcompat::{
    CompoundRuntime, NetStreamProvider, PreferredRuntime, RuntimeSubstExt as _, TcpConnectOptions,
    TcpListenOptions,
};

/// Arti's preferred runtime with [`NoDelayTcp`] in place of its TCP provider.
pub(crate) type OnionRuntime = CompoundRuntime<
    PreferredRuntime,
    PreferredRuntime,
    PreferredRuntime,
    NoDelayTcp,
    PreferredRuntime,
    PreferredRuntime,
    PreferredRuntime,
>;

/// The runtime for the host's Tor client, on the current tokio runtime.
pub(crate) fn onion_runtime() -> io::Result<OnionRuntime> {
    let preferred = PreferredRuntime::current()?;
    Ok(preferred.with_tcp_provider(NoDelayTcp(preferred.clone())))
}

/// The stream type of Arti's tokio TCP provider (its module is private; this names it).
type ArtiTcpStream = <PreferredRuntime as NetStreamProvider<SocketAddr>>::Stream;

/// Arti's tokio TCP provider, except that [`connect`](NetStreamProvider::connect) sets
/// `TCP_NODELAY` on the socket; listening is left to Arti's provider.
#[derive(Clone, Debug)]
pub(crate) struct NoDelayTcp(PreferredRuntime);

#[async_trait]
impl NetStreamProvider<SocketAddr> for NoDelayTcp {
    type Stream = ArtiTcpStream;
    type Listener = <PreferredRuntime as NetStreamProvider<SocketAddr>>::Listener;
    type ConnectOptions = TcpConnectOptions;
    type ListenOptions = TcpListenOptions;

    async fn connect(
        &self,
        addr: &SocketAddr,
        options: &Self::ConnectOptions,
    ) -> io::Result<Self::Stream> {
        Ok(connect_nodelay(addr, options).await?.into())
    }

    async fn listen(
        &self,
        addr: &SocketAddr,
        options: &Self::ListenOptions,
    ) -> io::Result<Self::Listener> {
        self.0.listen(addr, options).await
    }
}

/// Connects to `addr` as tor-rtcompat's tokio provider does (a non-blocking, close-on-exec
/// socket with the buffer sizes `options` asks for, set before `connect` as tcp(7) requires),
/// with `TCP_NODELAY` set.
async fn connect_nodelay(
    addr: &SocketAddr,
    options: &TcpConnectOptions,
) -> io::Result<tokio::net::TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    let common = options.common();
    if let Some(size) = *common.send_buffer_size() {
        socket.set_send_buffer_size(buffer_size(size)?)?;
    }
    if let Some(size) = *common.recv_buffer_size() {
        socket.set_recv_buffer_size(buffer_size(size)?)?;
    }
    socket.set_nodelay(true)?;
    socket.connect(*addr).await
}

/// A buffer size as `setsockopt` takes it.
fn buffer_size(size: usize) -> io::Result<u32> {
    u32::try_from(size).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "buffer too big"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{AsyncReadExt as _, AsyncWriteExt as _};
    use tor_rtcompat::StreamOps as _;

    /// A listener on a free loopback port, and its address.
    async fn loopback_listener() -> (tokio::net::TcpListener, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        (listener, addr)
    }

    /// Regression test for the ~40 ms Nagle wait of a response written in two pieces over
    /// Arti's channels: the sockets Arti connects through the host's runtime have
    /// `TCP_NODELAY`.
    #[tokio::test]
    async fn arti_connections_have_nodelay() {
        let (_listener, addr) = loopback_listener().await;
        let stream = connect_nodelay(&addr, &TcpConnectOptions::default())
            .await
            .expect("connect");
        assert!(stream.nodelay().expect("nodelay"));
    }

    /// Arti's channel reactor sets `TCP_NOTSENT_LOWAT` on every channel (KIST), so the
    /// runtime's streams must still support it; and bytes go through both ways.
    #[tokio::test]
    async fn the_runtime_connects_and_keeps_notsent_lowat() {
        let (listener, addr) = loopback_listener().await;
        let runtime = onion_runtime().expect("runtime");
        let options = TcpConnectOptions::default();
        let (stream, accepted) = tokio::join!(
            NetStreamProvider::<SocketAddr>::connect(&runtime, &addr, &options),
            listener.accept()
        );
        let mut stream = stream.expect("connect");
        let (mut peer, _) = accepted.expect("accept");
        stream.set_tcp_notsent_lowat(16_384).expect("notsent_lowat");
        stream.write_all(b"ping").await.expect("write");
        stream.flush().await.expect("flush");
        let mut got = [0; 4];
        tokio::io::AsyncReadExt::read_exact(&mut peer, &mut got)
            .await
            .expect("read");
        assert_eq!(&got, b"ping");
        tokio::io::AsyncWriteExt::write_all(&mut peer, b"pong")
            .await
            .expect("write back");
        stream.read_exact(&mut got).await.expect("read back");
        assert_eq!(&got, b"pong");
    }
}
