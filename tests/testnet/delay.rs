//! Delaying TCP proxies: latency on every link of the network without `netem` (this kernel has
//! none). Each relay advertises one OR port, where a proxy listens, and listens itself on
//! another; the proxy holds every chunk it reads for the delay before writing it on, in both
//! directions, so every link between relays, and from a client to its guard, gets that much
//! latency each way.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Bytes read at a time, per direction.
const CHUNK: usize = 64 * 1024;
/// Chunks a direction holds while they wait for their time (64 KiB each at most).
const QUEUE: usize = 256;

/// The proxies of a network, on a runtime of their own; they stop when this is dropped.
pub(super) struct DelayProxies {
    runtime: Option<tokio::runtime::Runtime>,
    delay: Duration,
}

impl DelayProxies {
    pub(super) fn new(delay: Duration) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("testnet-delay")
            .enable_all()
            .build()
            .context("start the delay proxies' runtime")?;
        Ok(Self {
            runtime: Some(runtime),
            delay,
        })
    }

    /// The delay each way.
    pub(super) fn delay(&self) -> Duration {
        self.delay
    }

    /// Listens on a free port of 127.0.0.1 and forwards every connection to `target`, delayed;
    /// returns the port.
    pub(super) fn add(&self, target: SocketAddr) -> Result<u16> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("bind a proxy port")?;
        let port = listener.local_addr()?.port();
        self.add_on(listener, target)?;
        Ok(port)
    }

    /// [`DelayProxies::add`] on a listener already bound.
    pub(super) fn add_on(&self, listener: TcpListener, target: SocketAddr) -> Result<()> {
        listener.set_nonblocking(true)?;
        let delay = self.delay;
        let runtime = self
            .runtime
            .as_ref()
            .context("the delay proxies are stopped")?;
        let _guard = runtime.enter();
        let listener = tokio::net::TcpListener::from_std(listener)?;
        runtime.spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (in_r, in_w) = inbound.into_split();
                    let (out_r, out_w) = outbound.into_split();
                    tokio::join!(pump(in_r, out_w, delay), pump(out_r, in_w, delay));
                });
            }
        });
        Ok(())
    }

    /// Measures the round trip the proxies add: a small echo server behind a proxy, 5 one-byte
    /// round trips; returns the smallest (it should be twice the delay, plus loopback's few µs).
    pub(super) fn measure_round_trip(&self) -> Result<Duration> {
        let echo = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("bind an echo port")?;
        let echo_addr = echo.local_addr()?;
        std::thread::spawn(move || {
            if let Ok((mut conn, _)) = echo.accept() {
                let mut buf = [0u8; 1];
                while std::io::Read::read_exact(&mut conn, &mut buf).is_ok() {
                    if std::io::Write::write_all(&mut conn, &buf).is_err() {
                        break;
                    }
                }
            }
        });
        let port = self.add(echo_addr)?;
        let mut conn = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .context("connect to the echo proxy")?;
        conn.set_nodelay(true)?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let started = Instant::now();
            std::io::Write::write_all(&mut conn, b"x")?;
            let mut buf = [0u8; 1];
            std::io::Read::read_exact(&mut conn, &mut buf).context("echo through the proxy")?;
            best = best.min(started.elapsed());
        }
        ensure!(
            best >= 2 * self.delay,
            "a round trip through a delay proxy took {best:?}, less than twice its delay"
        );
        Ok(best)
    }
}

impl Drop for DelayProxies {
    fn drop(&mut self) {
        // A task blocked on a socket must not hold up the drop.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Copies one direction, each chunk written `delay` after it was read. The queue is bounded:
/// a slow reader on the far side slows the near side down as a link would.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(QUEUE);
    let read = async move {
        let mut buf = vec![0u8; CHUNK];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let due = tokio::time::Instant::now() + delay;
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    };
    let write = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}
