//! An obfs4 bridge on the network, started at the first test that asks for it (see
//! [`Testnet::obfs4_bridge`]), so that the network's start stays as fast for every other test.
//!
//! It is one more C tor relay with `BridgeRelay 1` and Debian's `obfs4proxy` as its server
//! transport: it publishes no descriptor (bridges are not in the consensus), listens for obfs4
//! on a port of its own, and serves its descriptor only to clients that reach it.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::network::common_torrc;
use super::process::{TorProcess, find_tool, free_ports, read_lossy, tail};
use super::{POLL, Testnet};

/// How long the bridge may take to bootstrap and open its obfs4 port.
const BRIDGE_DEADLINE: Duration = Duration::from_secs(90);

/// The network's obfs4 bridge; it runs as long as the test process.
pub struct Obfs4Bridge {
    line: String,
    or_port: u16,
    obfs4_port: u16,
    started_in: Duration,
    _process: TorProcess,
}

impl Obfs4Bridge {
    /// Its bridge line, as bridges.torproject.org hands them out:
    /// `obfs4 127.0.0.1:<obfs4 port> <fingerprint> cert=<cert> iat-mode=0`.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// Its plain OR port, which a client that uses its obfs4 line never needs to reach.
    pub fn or_port(&self) -> u16 {
        self.or_port
    }

    /// The port obfs4proxy listens on for the bridge.
    pub fn obfs4_port(&self) -> u16 {
        self.obfs4_port
    }

    /// How long the bridge took to start (bootstrapped, obfs4 port open).
    pub fn started_in(&self) -> Duration {
        self.started_in
    }
}

impl Testnet {
    /// The network's obfs4 bridge, started at the first call (about 5-20 s) and shared by
    /// every later one; a failed start is tried again by the next caller.
    pub async fn obfs4_bridge(&'static self) -> Result<&'static Obfs4Bridge> {
        self.bridge
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(move || self.start_bridge())
                    .await
                    .context("the thread starting the bridge panicked")?
            })
            .await
    }

    fn start_bridge(&self) -> Result<Obfs4Bridge> {
        let started = Instant::now();
        let obfs4proxy = find_tool("obfs4proxy", "obfs4proxy")?;
        let dir = self.dir.join("bridge");
        let ports = free_ports(2)?;
        let (or_port, obfs4_port) = (ports[0], ports[1]);
        let mut torrc = common_torrc(&dir, "bridge", &self.network_torrc);
        let _ = write!(
            torrc,
            "SocksPort 0\nORPort 127.0.0.1:{or_port}\nAddress 127.0.0.1\n\
             ContactInfo onionhost-testnet\nBridgeRelay 1\nPublishServerDescriptor 0\n\
             ServerTransportPlugin obfs4 exec {}\n\
             ServerTransportListenAddr obfs4 127.0.0.1:{obfs4_port}\nExtORPort auto\n",
            obfs4proxy.display()
        );
        let mut process = TorProcess::spawn(&self.tor, "bridge", &dir, &torrc)?;
        let deadline = Instant::now() + BRIDGE_DEADLINE;
        let template = dir.join("pt_state").join("obfs4_bridgeline.txt");
        let waiting = loop {
            process.check_alive()?;
            let log = read_lossy(&process.log());
            let why = if !log.contains("Bootstrapped 100%") {
                "it has not bootstrapped"
            } else if !template.exists() {
                "obfs4proxy has not written pt_state/obfs4_bridgeline.txt"
            } else if TcpStream::connect_timeout(
                &SocketAddr::from((Ipv4Addr::LOCALHOST, obfs4_port)),
                Duration::from_secs(1),
            )
            .is_err()
            {
                "its obfs4 port does not accept connections"
            } else {
                break None;
            };
            if Instant::now() >= deadline {
                break Some(why);
            }
            std::thread::sleep(POLL);
        };
        if let Some(why) = waiting {
            bail!(
                "the obfs4 bridge did not start within {BRIDGE_DEADLINE:?}: {why}; its log:\n{}",
                tail(&process.log())
            );
        }
        let fingerprint = std::fs::read_to_string(dir.join("fingerprint"))
            .context("read the bridge's fingerprint file")?;
        let fingerprint = fingerprint
            .split_whitespace()
            .nth(1)
            .context("no fingerprint in the bridge's fingerprint file")?
            .to_owned();
        // The template is `Bridge obfs4 <IP ADDRESS>:<PORT> <FINGERPRINT> cert=... iat-mode=0`.
        let template = std::fs::read_to_string(&template).context("read obfs4_bridgeline.txt")?;
        let cert = template
            .lines()
            .find(|l| l.starts_with("Bridge obfs4 "))
            .and_then(|l| l.split_whitespace().find(|w| w.starts_with("cert=")))
            .context("no cert= in obfs4_bridgeline.txt")?
            .to_owned();
        Ok(Obfs4Bridge {
            line: format!("obfs4 127.0.0.1:{obfs4_port} {fingerprint} {cert} iat-mode=0"),
            or_port,
            obfs4_port,
            started_in: started.elapsed(),
            _process: process,
        })
    }
}
