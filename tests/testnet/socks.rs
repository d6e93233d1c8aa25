//! A SOCKS5 client for tor's SocksPort (hostnames resolved by tor, as `socks5h`), with tor's
//! extended error codes kept so tests can tell "needs client authorization" from "not found".

use std::fmt;
use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A SOCKS5 reply code other than success, as tor's `ExtendedErrors` SocksPort flag sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocksError {
    /// The reply code (RFC 1928, or tor's 0xF0..=0xF7 onion service codes).
    pub code: u8,
}

impl SocksError {
    /// The onion service's descriptor was not found on the HSDirs (not published yet, or gone).
    pub const HS_DESC_NOT_FOUND: u8 = 0xF0;
    /// The descriptor asks for client authorization and tor holds no key for it.
    pub const HS_MISSING_CLIENT_AUTH: u8 = 0xF4;
    /// The descriptor asks for client authorization and tor's key does not decrypt it.
    pub const HS_BAD_CLIENT_AUTH: u8 = 0xF5;

    /// What the code means.
    pub fn meaning(self) -> &'static str {
        match self.code {
            0x01 => "general failure",
            0x02 => "connection not allowed by ruleset",
            0x03 => "network unreachable",
            0x04 => "host unreachable",
            0x05 => "connection refused by the destination (no listener on that port?)",
            0x06 => "TTL expired (tor's circuit or stream timed out)",
            0x07 => "command not supported",
            0x08 => "address type not supported",
            0xF0 => "onion service descriptor not found",
            0xF1 => "onion service descriptor is invalid",
            0xF2 => "onion service introduction failed",
            0xF3 => "onion service rendezvous failed",
            0xF4 => "onion service missing client authorization",
            0xF5 => "onion service wrong client authorization",
            0xF6 => "onion service address is invalid",
            0xF7 => "onion service introduction timed out",
            _ => "unknown reply code",
        }
    }

    /// Whether trying again can succeed without anything changing on the test's side: the
    /// service may still be publishing, or a circuit may have failed.
    pub fn is_transient(self) -> bool {
        matches!(self.code, 0x01 | 0x04 | 0x06 | 0xF0 | 0xF2 | 0xF3 | 0xF7)
    }
}

impl fmt::Display for SocksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tor's SOCKS reply {:#04x}: {}",
            self.code,
            self.meaning()
        )
    }
}

impl std::error::Error for SocksError {}

/// Opens a stream to `host:port` through the SOCKS5 proxy at `proxy`; a refusal by tor comes
/// back as a [`SocksError`] inside the error. With `isolation`, the stream is sent with that
/// SOCKS username (and password): tor's default `IsolateSOCKSAuth` then gives it circuits of
/// its own, so for an onion service a new rendezvous rather than one an earlier stream opened.
pub(crate) async fn connect(
    proxy: SocketAddr,
    host: &str,
    port: u16,
    isolation: Option<&str>,
) -> Result<TcpStream> {
    let mut stream = TcpStream::connect(proxy)
        .await
        .with_context(|| format!("connect to tor's SocksPort {proxy}"))?;
    // Greeting: version 5, one method: "no authentication", or "username/password".
    let method = if isolation.is_some() { 2 } else { 0 };
    stream
        .write_all(&[5, 1, method])
        .await
        .context("SOCKS greeting")?;
    let mut choice = [0u8; 2];
    stream
        .read_exact(&mut choice)
        .await
        .context("read SOCKS method")?;
    if choice != [5, method] {
        bail!("tor's SocksPort refused SOCKS method {method}: {choice:?}");
    }
    if let Some(name) = isolation {
        // RFC 1929: version 1, the username, the password (the same: tor only compares them).
        let len = u8::try_from(name.len()).context("isolation name longer than 255 bytes")?;
        let mut auth = vec![1, len];
        auth.extend_from_slice(name.as_bytes());
        auth.push(len);
        auth.extend_from_slice(name.as_bytes());
        stream.write_all(&auth).await.context("SOCKS username")?;
        let mut status = [0u8; 2];
        stream
            .read_exact(&mut status)
            .await
            .context("read SOCKS username status")?;
        if status[1] != 0 {
            bail!("tor's SocksPort refused the SOCKS username: {status:?}");
        }
    }
    let name = host.as_bytes();
    let len = u8::try_from(name.len()).context("host name longer than 255 bytes")?;
    let mut request = vec![5, 1, 0, 3, len];
    request.extend_from_slice(name);
    request.extend_from_slice(&port.to_be_bytes());
    stream
        .write_all(&request)
        .await
        .context("send SOCKS CONNECT")?;
    let mut head = [0u8; 4];
    stream
        .read_exact(&mut head)
        .await
        .context("read SOCKS reply (tor closed the connection)")?;
    if head[0] != 5 {
        bail!("not a SOCKS5 reply: {head:?}");
    }
    if head[1] != 0 {
        return Err(SocksError { code: head[1] }.into());
    }
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => usize::from(stream.read_u8().await.context("read SOCKS reply")?) + 2,
        other => bail!("bad address type {other} in SOCKS reply"),
    };
    let mut bound = vec![0u8; rest];
    stream
        .read_exact(&mut bound)
        .await
        .context("read SOCKS reply")?;
    Ok(stream)
}
