//! A SOCKS5 CONNECT through the system tor's SOCKS port (RFC 1928, no authentication, the
//! host name resolved by tor): how a tab's notices leave with `backend = "system"`.

use anyhow::{Context as _, anyhow, bail};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::reply;
use crate::transport::Io;

/// Connects to `host:port` through the first of tor's SOCKS `listeners` (the value of
/// `GETINFO net/listeners/socks`: quoted `HOST:PORT` or `unix:PATH`, space separated).
pub(super) async fn connect(listeners: &str, host: &str, port: u16) -> anyhow::Result<Box<dyn Io>> {
    let first = reply::args(listeners)
        .and_then(|args| args.into_iter().next())
        .map(|arg| arg.value)
        .context(
            "the system's tor has no SOCKS port (`SocksPort` in its torrc) to send notices through",
        )?;
    if let Some(path) = first.strip_prefix("unix:") {
        let mut stream = tokio::net::UnixStream::connect(path)
            .await
            .with_context(|| format!("cannot connect to tor's SOCKS socket {path}"))?;
        handshake(&mut stream, host, port).await?;
        Ok(Box::new(stream))
    } else {
        let mut stream = tokio::net::TcpStream::connect(first.as_str())
            .await
            .with_context(|| format!("cannot connect to tor's SOCKS port {first}"))?;
        handshake(&mut stream, host, port).await?;
        Ok(Box::new(stream))
    }
}

/// The SOCKS5 greeting and CONNECT request for `host:port`, up to tor's reply.
async fn handshake(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    host: &str,
    port: u16,
) -> anyhow::Result<()> {
    let name = u8::try_from(host.len())
        .ok()
        .filter(|len| *len > 0)
        .ok_or_else(|| anyhow!("the host name is not 1 to 255 bytes long"))?;
    stream.write_all(&[5, 1, 0]).await?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice).await?;
    if choice != [5, 0] {
        bail!("tor's SOCKS port wants an authentication onionhost does not offer");
    }
    let mut request = vec![5, 1, 0, 3, name];
    request.extend_from_slice(host.as_bytes());
    request.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&request).await?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await?;
    if head[0] != 5 {
        bail!("tor's SOCKS port answered with another protocol");
    }
    if head[1] != 0 {
        bail!("tor could not connect ({})", refusal(head[1]));
    }
    let rest = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len).await?;
            usize::from(len[0])
        }
        _ => bail!("tor's SOCKS reply has an unknown address type"),
    };
    let mut bound = vec![0u8; rest + 2];
    stream.read_exact(&mut bound).await?;
    Ok(())
}

/// What a SOCKS5 reply code means (tor's extended codes included).
fn refusal(code: u8) -> &'static str {
    match code {
        1 => "general failure",
        2 => "not allowed by tor's exit policy",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "timed out",
        0xF0 => "onion service descriptor not found",
        0xF2 => "onion service introduction failed",
        0xF4 => "onion service wants client authorization",
        _ => "refused",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A fake SOCKS server on a loopback port: checks the request, answers `code`.
    async fn fake_tor(code: u8) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut greeting = [0u8; 3];
            stream.read_exact(&mut greeting).await.unwrap();
            assert_eq!(greeting, [5, 1, 0]);
            stream.write_all(&[5, 0]).await.unwrap();
            let mut head = [0u8; 5];
            stream.read_exact(&mut head).await.unwrap();
            let mut name = vec![0u8; usize::from(head[4]) + 2];
            stream.read_exact(&mut name).await.unwrap();
            stream
                .write_all(&[5, code, 0, 1, 127, 0, 0, 1, 0, 80])
                .await
                .unwrap();
            if code == 0 {
                stream.write_all(b"hello").await.unwrap();
            }
            name
        });
        (format!("\"{addr}\""), task)
    }

    #[tokio::test]
    async fn connects_by_name_through_the_first_listener() {
        let (listeners, tor) = fake_tor(0).await;
        let mut stream = connect(
            &format!("{listeners} \"unix:/nowhere\""),
            "example.org",
            8080,
        )
        .await
        .unwrap();
        let mut hello = [0u8; 5];
        stream.read_exact(&mut hello).await.unwrap();
        assert_eq!(&hello, b"hello");
        let mut expected = b"example.org".to_vec();
        expected.extend_from_slice(&8080u16.to_be_bytes());
        assert_eq!(tor.await.unwrap(), expected);
    }

    #[tokio::test]
    async fn a_refusal_says_why() {
        let (listeners, _tor) = fake_tor(5).await;
        let err = connect(&listeners, "example.org", 80).await.err().unwrap();
        assert!(err.to_string().contains("connection refused"), "{err}");
    }

    #[tokio::test]
    async fn no_socks_port_is_an_error_that_says_so() {
        let err = connect("", "example.org", 80).await.err().unwrap();
        assert!(err.to_string().contains("SocksPort"), "{err}");
    }
}
