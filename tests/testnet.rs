//! [`Testnet`]: a private Tor network on 127.0.0.1 (3 directory authorities, 5 relays and a C tor
//! client with a SOCKS port), started once per test process, so onion service tests run against
//! real Tor without touching the public network.
//!
//! The settings follow `/work/shared/TESTNET.md` (checked on the development machine): a 20 s
//! voting interval with the `hsdir_interval` consensus parameter set to match C tor's test
//! time period, every relay Stable and HSDir at once, equal bandwidth weights, and a start that
//! waits for the *full* consensus, because a service published to a smaller HSDir ring stays
//! unreachable for a while after the ring grows.
//!
//! Cold start (keys, 9 tor processes, full consensus, every node bootstrapped, the client holding
//! the full consensus) measured on the 2-core development machine: 48–66 s.
//!
//! Cleanup: every tor process runs with `__OwningControllerProcess <test pid>`, and a small
//! watchdog shell, holding the read end of a pipe whose write end only the test process holds,
//! stops the processes it was told about and removes the network's directory as soon as the
//! test process ends, however it ends. Directories of dead test processes are removed at start.

mod control;
mod socks;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail, ensure};
use data_encoding::{BASE32_NOPAD, BASE64, BASE64_NOPAD};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;

use self::control::Control;
pub use self::socks::SocksError;

/// The authorities' voting interval in seconds. C tor's onion service time period in a test
/// network is 24 intervals; the authorities publish the same length as `hsdir_interval` for
/// Arti, whose lower bound is 5 minutes.
const VOTING_INTERVAL_SECS: u64 = 20;
/// How long the network may take to reach a full consensus with every node bootstrapped.
const READY_DEADLINE: Duration = Duration::from_secs(180);
/// How long [`Testnet::connect`] keeps trying (onion services take a few seconds to publish).
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(120);
/// How long a control-port operation (reload, NEWNYM, waiting for a descriptor) may take.
const CONTROL_DEADLINE: Duration = Duration::from_secs(60);
/// How often a start-up condition is checked again.
const POLL: Duration = Duration::from_millis(250);
const AUTHORITIES: usize = 3;
const RELAYS: usize = 5;
const INSTALL_HINT: &str = "install Debian's tor package: apt-get install -y tor";
/// Lines of a tor log quoted in an error.
const TAIL_LINES: usize = 25;

/// A running local Tor network, shared by every test of the process (see [`Testnet::shared`]).
pub struct Testnet {
    tor: PathBuf,
    /// The directory of this network's nodes: `<tmp>/onionhost-testnet-<pid>/net<attempt>`.
    dir: PathBuf,
    /// The torrc lines every extra tor process needs to join this network.
    network_torrc: String,
    authorities: Vec<Node>,
    client: ClientControl,
    socks: SocketAddr,
    auth_dir: PathBuf,
    network_file: PathBuf,
    cold_start: Duration,
    /// The processes of the network; they live as long as the test process.
    _processes: Vec<TorProcess>,
    /// Serialises changes to the client's authorization keys and NEWNYM signals.
    control_lock: tokio::sync::Mutex<()>,
    services: AtomicUsize,
}

impl Testnet {
    /// Starts the network once per test process and returns it; later calls (from any test or
    /// runtime) wait for that start and share it. Ready means: the authorities' consensus lists
    /// every relay `Running` and `HSDir`, every relay and the client logged `Bootstrapped 100%`,
    /// and the client holds that full consensus. A failed start is reported to every caller.
    pub async fn shared() -> Result<&'static Testnet> {
        static NET: OnceLock<Result<Testnet, String>> = OnceLock::new();
        if let Some(net) = NET.get() {
            return net.as_ref().map_err(|e| anyhow!("{e}"));
        }
        // The start blocks for about a minute; a thread of its own keeps it out of whichever
        // test's runtime asked first.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let net = NET.get_or_init(|| Testnet::start().map_err(|e| format!("{e:#}")));
            let _ = tx.send(net);
        });
        let net = rx
            .await
            .context("the thread starting the local Tor network panicked")?;
        net.as_ref()
            .map_err(|e| anyhow!("starting the local Tor network failed: {e}"))
    }

    /// A TOML file for the host's `--tor-network FILE` flag:
    ///
    /// ```toml
    /// authorities = [ { v3ident = "<40 hex>", address = "127.0.0.1:<dirport>" }, ... ]
    /// fallbacks = [ { rsa_identity = "<40 hex>", ed_identity = "<base64>", orport = "127.0.0.1:<orport>" }, ... ]
    /// ```
    ///
    /// `ed_identity` is the 32-byte ed25519 master identity in standard base64 *without*
    /// padding (43 characters, as in Arti's own fallback list). The fallbacks are the
    /// authorities only: relays answer 404 for a while after each consensus, which slows
    /// Arti's bootstrap from under 1 s to ~16 s.
    pub fn network_file(&self) -> &Path {
        &self.network_file
    }

    /// The network as a host config's `[tor]` section (starts with `"[tor]\n"`).
    pub fn tor_section(&self) -> String {
        format!("[tor]\n{}", self.network_toml())
    }

    /// The C tor client's SOCKS5 port (hostnames resolved by tor; `ExtendedErrors` is on, so
    /// onion service failures come back as tor's 0xF0..=0xF7 reply codes).
    pub fn socks_addr(&self) -> SocketAddr {
        self.socks
    }

    /// How long the network took to start (keys, processes, full consensus).
    pub fn cold_start(&self) -> Duration {
        self.cold_start
    }

    /// Lets the C tor client reach the private onion service `onion_host` (with or without
    /// `.onion`) with the x25519 private key `private_key_base32`: writes
    /// `<addr>:descriptor:x25519:<key>` to `<addr>.auth_private` in the client's
    /// `ClientOnionAuthDir`, makes tor reload it (SIGHUP via the control port), waits until the
    /// control port shows that key for the address, then sends NEWNYM (and waits for it) so no
    /// descriptor or circuit fetched without the key is reused.
    pub async fn authorize(&self, onion_host: &str, private_key_base32: &str) -> Result<()> {
        let addr = onion_label(onion_host)?;
        let key = private_key_base32.trim();
        let raw = BASE32_NOPAD
            .decode(key.trim_end_matches('=').to_ascii_uppercase().as_bytes())
            .map_err(|_| anyhow!("the client authorization key is not base32"))?;
        ensure!(
            raw.len() == 32,
            "the client authorization key is {} bytes, not 32",
            raw.len()
        );
        let _guard = self.control_lock.lock().await;
        let path = self.auth_dir.join(format!("{addr}.auth_private"));
        write_private(&path, &format!("{addr}:descriptor:x25519:{key}\n"))?;
        let expected = BASE64.encode(&raw);
        self.client
            .clone()
            .blocking(move |client| client.reload_auth(&addr, Some(&expected)))
            .await
    }

    /// Undoes [`Testnet::authorize`]: removes the key file, reloads tor until the control port
    /// no longer shows a key for the address, and sends NEWNYM so cached descriptors and
    /// circuits are dropped.
    pub async fn deauthorize(&self, onion_host: &str) -> Result<()> {
        let addr = onion_label(onion_host)?;
        let _guard = self.control_lock.lock().await;
        let path = self.auth_dir.join(format!("{addr}.auth_private"));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("remove {}", path.display())),
        }
        self.client
            .clone()
            .blocking(move |client| client.reload_auth(&addr, None))
            .await
    }

    /// Opens a TCP stream to `host:port` through the client's SOCKS port, trying again until
    /// [`CONNECT_DEADLINE`] while tor's answer is transient (descriptor not yet published,
    /// introduction or rendezvous failed). A final refusal such as missing client
    /// authorization is returned at once; the error then holds a [`SocksError`]
    /// (`err.downcast_ref::<SocksError>()`).
    pub async fn connect(&self, host: &str, port: u16) -> Result<tokio::net::TcpStream> {
        self.connect_within(host, port, CONNECT_DEADLINE).await
    }

    /// [`Testnet::connect`] with another deadline.
    pub async fn connect_within(
        &self,
        host: &str,
        port: u16,
        limit: Duration,
    ) -> Result<tokio::net::TcpStream> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut attempts = 0u32;
        let mut last: Option<SocksError> = None;
        loop {
            attempts += 1;
            let Ok(result) =
                tokio::time::timeout_at(deadline, socks::connect(self.socks, host, port)).await
            else {
                break;
            };
            let err = match result {
                Ok(stream) => return Ok(stream),
                Err(err) => err,
            };
            let Some(refusal) = err.downcast_ref::<SocksError>().copied() else {
                return Err(err.context(format!("connect to {host}:{port} through tor")));
            };
            if !refusal.is_transient() {
                return Err(err.context(format!("connect to {host}:{port} through tor")));
            }
            last = Some(refusal);
            if matches!(refusal.code, 0xF0 | 0xF2 | 0xF7) {
                // Tor has asked every HSDir (or tried every introduction point) and will not
                // ask again for a long time; NEWNYM clears that memory.
                self.newnym().await?;
            } else {
                // A circuit failed; pause briefly so retries do not spin.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
        }
        let last = last.map_or_else(|| "none".to_owned(), |e| e.to_string());
        bail!(
            "could not connect to {host}:{port} through tor within {limit:?} ({attempts} \
             attempts, last refusal: {last}); tor client log:\n{}",
            tail(&self.client.log)
        )
    }

    /// HTTP/1.1 GET of an `http://` URL through tor; returns the status and the body.
    pub async fn get(&self, url: &str) -> Result<(u16, Vec<u8>)> {
        let deadline = tokio::time::Instant::now() + CONNECT_DEADLINE + Duration::from_secs(60);
        let parsed = reqwest::Url::parse(url).with_context(|| format!("bad URL {url}"))?;
        ensure!(parsed.scheme() == "http", "only http:// URLs: {url}");
        let host = parsed.host_str().context("URL without host")?.to_owned();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let stream = self.connect(&host, port).await?;
        let exchange = async {
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .context("HTTP handshake")?;
            tokio::spawn(conn);
            let path = match parsed.query() {
                Some(q) => format!("{}?{q}", parsed.path()),
                None => parsed.path().to_owned(),
            };
            let request = hyper::Request::get(path)
                .header(hyper::header::HOST, &host)
                .body(Empty::<Bytes>::new())
                .context("build request")?;
            let response = sender.send_request(request).await.context("send request")?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .context("read body")?
                .to_bytes();
            anyhow::Ok((status, body.to_vec()))
        };
        tokio::time::timeout_at(deadline, exchange)
            .await
            .map_err(|_| anyhow!("GET {url} through tor timed out"))?
            .with_context(|| format!("GET {url} through tor"))
    }

    /// Starts a C tor onion service on this network, in its own tor process, forwarding its
    /// virtual `port` to `target`; with `authorized_clients` (x25519 public keys in base32),
    /// only those clients can fetch its descriptor. Returns once tor has uploaded a descriptor.
    /// The process stops when the returned value is dropped.
    pub async fn c_tor_onion_service(
        &'static self,
        port: u16,
        target: SocketAddr,
        authorized_clients: &[String],
    ) -> Result<CTorOnionService> {
        let clients = authorized_clients.to_vec();
        tokio::task::spawn_blocking(move || self.start_service(port, target, &clients))
            .await
            .context("the thread starting the onion service panicked")?
    }

    fn network_toml(&self) -> String {
        let mut out = String::from("authorities = [\n");
        for a in &self.authorities {
            let _ = writeln!(
                out,
                "  {{ v3ident = \"{}\", address = \"127.0.0.1:{}\" }},",
                a.v3ident.as_deref().unwrap_or_default(),
                a.dir_port.unwrap_or_default()
            );
        }
        out.push_str("]\nfallbacks = [\n");
        for a in &self.authorities {
            let _ = writeln!(
                out,
                "  {{ rsa_identity = \"{}\", ed_identity = \"{}\", orport = \"127.0.0.1:{}\" }},",
                a.fingerprint, a.ed_identity, a.or_port
            );
        }
        out.push_str("]\n");
        out
    }

    async fn newnym(&self) -> Result<()> {
        let _guard = self.control_lock.lock().await;
        self.client
            .clone()
            .blocking(|client| {
                let deadline = Instant::now() + CONTROL_DEADLINE;
                let mut control = client.control(deadline)?;
                client.newnym(&mut control, deadline)
            })
            .await
    }

    fn start() -> Result<Testnet> {
        let tor = find_tool("tor")?;
        let gencert = find_tool("tor-gencert")?;
        let base = process_dir()?;
        watchdog_start(&base)?;
        let mut attempt = 1;
        loop {
            match Self::start_in(&tor, &gencert, &base.join(format!("net{attempt}"))) {
                // Ports are picked free and released before tor binds them, so another
                // process can take one in between; a fresh set of ports fixes that.
                Err(e) if attempt < 3 && format!("{e:#}").contains("Could not bind") => {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn start_in(tor: &Path, gencert: &Path, dir: &Path) -> Result<Testnet> {
        let started = Instant::now();
        create_private_dir(dir)?;
        let ports = free_ports(2 * AUTHORITIES + RELAYS + 2)?;
        let mut ports = ports.into_iter();
        let mut next_port = || ports.next().context("not enough ports");
        let mut nodes = Vec::new();
        for i in 0..AUTHORITIES {
            nodes.push(Node::new(
                dir,
                format!("auth{i}"),
                next_port()?,
                Some(next_port()?),
            ));
        }
        for i in 0..RELAYS {
            nodes.push(Node::new(dir, format!("relay{i}"), next_port()?, None));
        }
        let socks = SocketAddr::from((Ipv4Addr::LOCALHOST, next_port()?));
        let control = SocketAddr::from((Ipv4Addr::LOCALHOST, next_port()?));

        let empty = dir.join("torrc-defaults");
        std::fs::write(&empty, "").context("write an empty torrc-defaults")?;
        std::thread::scope(|scope| {
            let jobs: Vec<_> = nodes
                .iter_mut()
                .map(|node| scope.spawn(|| node.make_keys(tor, gencert)))
                .collect();
            jobs.into_iter().try_for_each(|job| {
                job.join()
                    .map_err(|_| anyhow!("a key generation thread panicked"))?
            })
        })?;

        let bandwidth_file = dir.join("bandwidth");
        let mut bandwidths = format!("{}\n", unix_now());
        for node in &nodes {
            let _ = writeln!(bandwidths, "node_id=${} bw=1000", node.fingerprint);
        }
        std::fs::write(&bandwidth_file, bandwidths).context("write the bandwidth file")?;

        let mut network_torrc = String::from("UseDefaultFallbackDirs 0\n");
        for node in nodes.iter().filter(|n| n.v3ident.is_some()) {
            let _ = writeln!(
                network_torrc,
                "DirAuthority {} orport={} no-v2 v3ident={} 127.0.0.1:{} {}",
                node.nick,
                node.or_port,
                node.v3ident.as_deref().unwrap_or_default(),
                node.dir_port.unwrap_or_default(),
                node.fingerprint
            );
        }
        network_torrc.push_str(COMMON_TORRC);

        let mut processes = Vec::new();
        for node in &nodes {
            let mut torrc = common_torrc(&node.dir, &node.nick, &network_torrc);
            let _ = write!(
                torrc,
                "SocksPort 0\nORPort 127.0.0.1:{}\nAddress 127.0.0.1\n\
                 ContactInfo onionhost-testnet\n",
                node.or_port
            );
            if let Some(dir_port) = node.dir_port {
                let interval = VOTING_INTERVAL_SECS;
                let hsdir_minutes = 24 * interval / 60;
                let _ = write!(
                    torrc,
                    "DirPort 127.0.0.1:{dir_port}\n\
                     AuthoritativeDirectory 1\nV3AuthoritativeDirectory 1\n\
                     TestingV3AuthInitialVotingInterval {interval}\n\
                     V3AuthVotingInterval {interval}\n\
                     TestingV3AuthInitialVoteDelay 4\nTestingV3AuthInitialDistDelay 4\n\
                     V3AuthVoteDelay 4\nV3AuthDistDelay 4\n\
                     ConsensusParams hsdir_interval={hsdir_minutes}\n\
                     AuthDirVoteStableGuaranteeMinUptime 0 seconds\n\
                     AuthDirVoteStableGuaranteeMTBF 0 seconds\n\
                     AuthDirMaxServersPerAddr 0\n\
                     V3BandwidthsFile {}\n",
                    bandwidth_file.display()
                );
            }
            processes.push(TorProcess::spawn(tor, &node.nick, &node.dir, &torrc)?);
        }

        let client_dir = dir.join("client");
        create_private_dir(&client_dir)?;
        let auth_dir = client_dir.join("onion_auth");
        create_private_dir(&auth_dir)?;
        let cookie = client_dir.join("control_auth_cookie");
        let mut torrc = common_torrc(&client_dir, "client", &network_torrc);
        let _ = write!(
            torrc,
            "SocksPort {socks} ExtendedErrors\nControlPort {control}\n\
             CookieAuthentication 1\nCookieAuthFile {}\nClientOnionAuthDir {}\n",
            cookie.display(),
            auth_dir.display()
        );
        processes.push(TorProcess::spawn(tor, "client", &client_dir, &torrc)?);
        let client = ClientControl {
            addr: control,
            cookie,
            log: client_dir.join("notice.log"),
        };

        wait_until_ready(
            &nodes,
            &mut processes,
            &client,
            Instant::now() + READY_DEADLINE,
        )?;

        let mut net = Testnet {
            tor: tor.to_owned(),
            dir: dir.to_owned(),
            network_torrc,
            authorities: nodes.into_iter().filter(|n| n.v3ident.is_some()).collect(),
            client,
            socks,
            auth_dir,
            network_file: dir.join("network.toml"),
            cold_start: Duration::ZERO,
            _processes: processes,
            control_lock: tokio::sync::Mutex::new(()),
            services: AtomicUsize::new(0),
        };
        std::fs::write(&net.network_file, net.network_toml()).context("write network.toml")?;
        net.cold_start = started.elapsed();
        Ok(net)
    }

    fn start_service(
        &self,
        port: u16,
        target: SocketAddr,
        clients: &[String],
    ) -> Result<CTorOnionService> {
        let n = self.services.fetch_add(1, Ordering::Relaxed);
        let nick = format!("service{n}");
        let dir = self.dir.join(&nick);
        create_private_dir(&dir)?;
        let hs_dir = dir.join("hs");
        create_private_dir(&hs_dir)?;
        if !clients.is_empty() {
            let auth = hs_dir.join("authorized_clients");
            create_private_dir(&auth)?;
            for (i, key) in clients.iter().enumerate() {
                write_private(
                    &auth.join(format!("client{i}.auth")),
                    &format!("descriptor:x25519:{}\n", key.trim()),
                )?;
            }
        }
        let control = SocketAddr::from((Ipv4Addr::LOCALHOST, free_ports(1)?[0]));
        let cookie = dir.join("control_auth_cookie");
        let mut torrc = common_torrc(&dir, &nick, &self.network_torrc);
        let _ = write!(
            torrc,
            "SocksPort 0\nControlPort {control}\nCookieAuthentication 1\nCookieAuthFile {}\n\
             HiddenServiceDir {}\nHiddenServicePort {port} {target}\n",
            cookie.display(),
            hs_dir.display()
        );
        let mut process = TorProcess::spawn(&self.tor, &nick, &dir, &torrc)?;
        let deadline = Instant::now() + CONTROL_DEADLINE;
        let service = ClientControl {
            addr: control,
            cookie,
            log: dir.join("notice.log"),
        };
        let waited = (|| {
            let mut control = loop {
                process.check_alive()?;
                match service.control(deadline) {
                    Ok(control) => break control,
                    Err(e) if Instant::now() >= deadline => return Err(e),
                    Err(_) => std::thread::sleep(POLL),
                }
            };
            control.command("SETEVENTS HS_DESC", deadline)?;
            let hostname = std::fs::read_to_string(hs_dir.join("hostname"))
                .context("read the onion service's hostname file")?;
            control.wait_event(
                "HS_DESC UPLOADED",
                |e| e.starts_with("HS_DESC UPLOADED "),
                deadline,
            )?;
            anyhow::Ok(hostname.trim().to_owned())
        })();
        match waited {
            Ok(onion_host) => Ok(CTorOnionService {
                onion_host,
                process,
                dir,
            }),
            Err(e) => Err(e.context(format!(
                "the C tor onion service did not publish its descriptor; its log:\n{}",
                tail(&process.log())
            ))),
        }
    }
}

/// A C tor onion service started by [`Testnet::c_tor_onion_service`]; stopped on drop.
pub struct CTorOnionService {
    onion_host: String,
    process: TorProcess,
    dir: PathBuf,
}

impl CTorOnionService {
    /// Its address, `<56 base32 characters>.onion`.
    pub fn onion_host(&self) -> &str {
        &self.onion_host
    }
}

impl Drop for CTorOnionService {
    fn drop(&mut self) {
        self.process.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Settings shared by every node (TESTNET.md): a test network on 127.0.0.1 over IPv4 only,
/// whose relays all become Guard and HSDir at once and never act as exits.
const COMMON_TORRC: &str = "\
TestingTorNetwork 1
AssumeReachable 1
PathsNeededToBuildCircuits 0.67
TestingDirAuthVoteGuard *
TestingDirAuthVoteHSDir *
TestingMinExitFlagThreshold 0
V3AuthNIntervalsValid 2
ClientUseIPv6 0
AddressDisableIPv6 1
ExitRelay 0
ExitPolicy reject *:*
ShutdownWaitLength 0
RunAsDaemon 0
Sandbox 0
";

fn common_torrc(dir: &Path, nick: &str, network_torrc: &str) -> String {
    format!(
        "# Written by onionhost's local Tor test network (tests/testnet.rs).\n\
         DataDirectory {}\nNickname {nick}\nLog notice file {}\n\
         __OwningControllerProcess {}\n{network_torrc}",
        dir.display(),
        dir.join("notice.log").display(),
        std::process::id()
    )
}

/// One authority or relay and its identities.
struct Node {
    nick: String,
    dir: PathBuf,
    or_port: u16,
    dir_port: Option<u16>,
    /// RSA identity fingerprint, 40 hex digits.
    fingerprint: String,
    /// ed25519 master identity, base64 without padding.
    ed_identity: String,
    /// Authorities only: the v3 identity (fingerprint of the authority identity key).
    v3ident: Option<String>,
}

impl Node {
    fn new(net_dir: &Path, nick: String, or_port: u16, dir_port: Option<u16>) -> Self {
        Self {
            dir: net_dir.join(&nick),
            nick,
            or_port,
            dir_port,
            fingerprint: String::new(),
            ed_identity: String::new(),
            v3ident: None,
        }
    }

    /// Creates the node's keys offline: the authority keys with tor-gencert, the relay
    /// identities with `tor --list-fingerprint`.
    fn make_keys(&mut self, tor: &Path, gencert: &Path) -> Result<()> {
        let keys = self.dir.join("keys");
        create_private_dir(&self.dir)?;
        create_private_dir(&keys)?;
        if let Some(dir_port) = self.dir_port {
            let mut child = Command::new(gencert)
                .args(["--create-identity-key", "-m", "12", "-a"])
                .arg(format!("127.0.0.1:{dir_port}"))
                .args(["--passphrase-fd", "0"])
                .current_dir(&keys)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("run {}", gencert.display()))?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin
                    .write_all(b"onionhost-testnet\n")
                    .context("give tor-gencert its passphrase")?;
            }
            let out = child.wait_with_output().context("wait for tor-gencert")?;
            ensure!(
                out.status.success(),
                "tor-gencert failed for {}: {}",
                self.nick,
                String::from_utf8_lossy(&out.stderr)
            );
            let cert = std::fs::read_to_string(keys.join("authority_certificate"))
                .context("read the authority certificate")?;
            let v3ident = cert
                .lines()
                .find_map(|l| l.strip_prefix("fingerprint "))
                .context("no fingerprint in the authority certificate")?;
            self.v3ident = Some(v3ident.trim().to_owned());
        }
        let torrc = self.dir.join("torrc-keys");
        std::fs::write(
            &torrc,
            format!(
                "DataDirectory {}\nNickname {}\nORPort 127.0.0.1:{}\nAddress 127.0.0.1\n\
                 SocksPort 0\nDisableNetwork 1\nLog err stderr\n",
                self.dir.display(),
                self.nick,
                self.or_port
            ),
        )
        .context("write a torrc for key generation")?;
        let out = Command::new(tor)
            .arg("--defaults-torrc")
            .arg(self.dir.join("..").join("torrc-defaults"))
            .arg("-f")
            .arg(&torrc)
            .arg("--list-fingerprint")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {} --list-fingerprint", tor.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success(),
            "tor --list-fingerprint failed for {}: {stdout}{}",
            self.nick,
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{} ", self.nick)))
            .with_context(|| format!("no fingerprint in tor's output: {stdout}"))?;
        self.fingerprint = line.split_whitespace().collect();
        ensure!(
            self.fingerprint.len() == 40,
            "unexpected fingerprint {:?}",
            self.fingerprint
        );
        let ed = std::fs::read(keys.join("ed25519_master_id_public_key"))
            .context("read ed25519_master_id_public_key")?;
        ensure!(
            ed.len() == 64,
            "ed25519_master_id_public_key is not 64 bytes"
        );
        self.ed_identity = BASE64_NOPAD.encode(&ed[32..]);
        std::fs::remove_file(&torrc).context("remove the key generation torrc")?;
        Ok(())
    }
}

/// A tor process started by the harness; killed on drop (the network's own processes are
/// never dropped: the watchdog ends them with the test process).
struct TorProcess {
    name: String,
    dir: PathBuf,
    child: Child,
}

impl TorProcess {
    fn spawn(tor: &Path, name: &str, dir: &Path, torrc: &str) -> Result<Self> {
        create_private_dir(dir)?;
        let path = dir.join("torrc");
        std::fs::write(&path, torrc).with_context(|| format!("write {}", path.display()))?;
        let output = std::fs::File::create(dir.join("stdout.log")).context("create stdout.log")?;
        let child = Command::new(tor)
            .arg("--defaults-torrc")
            .arg(dir.join("..").join("torrc-defaults"))
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(output.try_clone().context("dup stdout.log")?)
            .stderr(output)
            .spawn()
            .with_context(|| format!("run {}", tor.display()))?;
        let process = Self {
            name: name.to_owned(),
            dir: dir.to_owned(),
            child,
        };
        watchdog_add(process.child.id())?;
        Ok(process)
    }

    /// Its notice log, or what it printed before the log was opened.
    fn log(&self) -> PathBuf {
        let log = self.dir.join("notice.log");
        if std::fs::metadata(&log).is_ok_and(|m| m.len() > 0) {
            log
        } else {
            self.dir.join("stdout.log")
        }
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("wait for tor")? {
            bail!(
                "tor process {} exited ({status}); its log:\n{}",
                self.name,
                tail(&self.log())
            );
        }
        Ok(())
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TorProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The way to the C tor client's control port (cheap to clone into a blocking thread).
#[derive(Clone)]
struct ClientControl {
    addr: SocketAddr,
    cookie: PathBuf,
    log: PathBuf,
}

impl ClientControl {
    fn control(&self, deadline: Instant) -> Result<Control> {
        Control::connect(self.addr, &self.cookie, deadline)
    }

    async fn blocking(self, job: impl FnOnce(&Self) -> Result<()> + Send + 'static) -> Result<()> {
        tokio::task::spawn_blocking(move || job(&self))
            .await
            .context("a control port thread panicked")?
    }

    /// Makes tor reload its configuration until the control port shows `expected` (base64 of
    /// the key) for `addr` (or no key when `None`), then sends NEWNYM.
    fn reload_auth(&self, addr: &str, expected: Option<&str>) -> Result<()> {
        let deadline = Instant::now() + CONTROL_DEADLINE;
        let mut control = self.control(deadline)?;
        let expected = expected.map(|k| k.trim_end_matches('='));
        control.command("SIGNAL RELOAD", deadline)?;
        loop {
            let lines = control.command(&format!("ONION_CLIENT_AUTH_VIEW {addr}"), deadline)?;
            let shown = lines.iter().find_map(|line| {
                let mut words = line.split(' ');
                (words.next() == Some("CLIENT") && words.next() == Some(addr))
                    .then(|| words.next())
                    .flatten()
                    .and_then(|k| k.strip_prefix("x25519:"))
                    .map(|k| k.trim_end_matches('='))
            });
            if shown == expected {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "tor did not {} the client authorization key of {addr} after a reload; its log:\n{}",
                if expected.is_some() { "load" } else { "drop" },
                tail(&self.log)
            );
            std::thread::sleep(POLL);
        }
        self.newnym(&mut control, deadline)
    }

    /// Sends NEWNYM (tor forgets onion service descriptors, HSDir and introduction point
    /// failures, and uses new circuits) and waits until tor has done it: tor delays a NEWNYM
    /// that comes within 10 s of the last one.
    fn newnym(&self, control: &mut Control, deadline: Instant) -> Result<()> {
        control.command("SETEVENTS SIGNAL", deadline)?;
        control.command("SIGNAL NEWNYM", deadline)?;
        control
            .wait_event("SIGNAL NEWNYM", |e| e == "SIGNAL NEWNYM", deadline)
            .with_context(|| format!("tor did not act on NEWNYM; its log:\n{}", tail(&self.log)))?;
        Ok(())
    }
}

/// Polls until the network is ready (see [`Testnet::shared`]) or `deadline` passes.
fn wait_until_ready(
    nodes: &[Node],
    processes: &mut [TorProcess],
    client: &ClientControl,
    deadline: Instant,
) -> Result<()> {
    let authority = nodes
        .iter()
        .find(|n| n.dir_port.is_some())
        .context("no authority")?;
    let mut control: Option<Control> = None;
    loop {
        for process in processes.iter_mut() {
            process
                .check_alive()
                .context("a tor process died while the network started")?;
        }
        let waiting = (|| -> Result<Option<(String, PathBuf)>> {
            let auth_log = authority.dir.join("notice.log");
            let consensus = match fetch_consensus(authority.dir_port.unwrap_or_default()) {
                Ok(text) => text,
                Err(e) => return Ok(Some((format!("no consensus yet ({e:#})"), auth_log))),
            };
            if let Some(missing) = missing_flags(&consensus, nodes) {
                return Ok(Some((format!("the consensus {missing}"), auth_log)));
            }
            for node in nodes {
                let log = node.dir.join("notice.log");
                if !read_lossy(&log).contains("Bootstrapped 100%") {
                    return Ok(Some((format!("{} has not bootstrapped", node.nick), log)));
                }
            }
            if !read_lossy(&client.log).contains("Bootstrapped 100%") {
                return Ok(Some((
                    "the client has not bootstrapped".into(),
                    client.log.clone(),
                )));
            }
            let control = match &mut control {
                Some(c) => c,
                None => control.insert(client.control(deadline)?),
            };
            let ns = control.command("GETINFO ns/all", deadline)?.join("\n");
            if let Some(missing) = missing_flags(&ns, nodes) {
                return Ok(Some((
                    format!("the client's consensus {missing}"),
                    client.log.clone(),
                )));
            }
            Ok(None)
        })();
        let (why, log) = match waiting {
            Ok(None) => return Ok(()),
            Ok(Some(waiting)) => waiting,
            Err(e) => {
                control = None;
                (format!("{e:#}"), client.log.clone())
            }
        };
        if Instant::now() >= deadline {
            bail!(
                "the local Tor network was not ready after {READY_DEADLINE:?}: {why}; log {}:\n{}",
                log.display(),
                tail(&log)
            );
        }
        std::thread::sleep(POLL);
    }
}

/// GETs the current microdescriptor consensus from an authority's DirPort.
fn fetch_consensus(dir_port: u16) -> Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, dir_port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(
        b"GET /tor/status-vote/current/consensus-microdesc HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.lines().next().unwrap_or_default();
    ensure!(status.contains(" 200"), "the authority answered {status:?}");
    Ok(text)
}

/// Says which node a consensus (or the client's `ns/all`) lacks, or lists without `Running`
/// or `HSDir`.
fn missing_flags(consensus: &str, nodes: &[Node]) -> Option<String> {
    let mut flags: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut current = None;
    for line in consensus.lines() {
        if let Some(rest) = line.strip_prefix("r ") {
            current = rest.split(' ').next();
        } else if let (Some(rest), Some(nick)) = (line.strip_prefix("s "), current) {
            flags.insert(nick, rest.split(' ').collect());
        }
    }
    nodes
        .iter()
        .find_map(|node| match flags.get(node.nick.as_str()) {
            None => Some(format!("does not list {}", node.nick)),
            Some(f) if !(f.contains(&"Running") && f.contains(&"HSDir")) => Some(format!(
                "lists {} as {} (waiting for Running and HSDir)",
                node.nick,
                f.join(" ")
            )),
            Some(_) => None,
        })
}

/// `abc...xyz.onion` or `abc...xyz` -> `abc...xyz`, checked to be a v3 onion address.
fn onion_label(host: &str) -> Result<String> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let label = host.strip_suffix(".onion").unwrap_or(&host);
    ensure!(
        label.len() == 56
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)),
        "not a v3 onion address: {host:?}"
    );
    Ok(label.to_owned())
}

/// Finds a tor tool on PATH or where Debian installs it (`/usr/sbin` is not on every PATH).
fn find_tool(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("the local Tor test network needs `{name}`: {INSTALL_HINT}"))
}

/// `<tmp>/onionhost-testnet-<pid>`, created fresh; directories left by test processes that
/// are gone are removed first.
fn process_dir() -> Result<PathBuf> {
    let tmp = std::env::temp_dir();
    let ours = std::process::id();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("onionhost-testnet-"))
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let dead = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                == Err(nix::errno::Errno::ESRCH);
            if dead {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = tmp.join(format!("onionhost-testnet-{ours}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    create_private_dir(&dir)?;
    Ok(dir)
}

static WATCHDOG: OnceLock<Mutex<ChildStdin>> = OnceLock::new();

/// Stops the tor processes it was given (those whose command line names the network's
/// directory, so a reused pid is left alone) and removes the directory, once its standard
/// input closes, which happens when the test process ends, however it ends.
const WATCHDOG_SCRIPT: &str = r#"
dir=$1
pids=
while read -r pid; do pids="$pids $pid"; done
ours() { grep -qaF "$dir" "/proc/$1/cmdline" 2>/dev/null; }
for pid in $pids; do ours "$pid" && kill -TERM "$pid" 2>/dev/null; done
for _ in $(seq 50); do
  alive=
  for pid in $pids; do ours "$pid" && alive=1; done
  [ -z "$alive" ] && break
  sleep 0.1
done
for pid in $pids; do ours "$pid" && kill -KILL "$pid" 2>/dev/null; done
rm -rf "$dir"
"#;

fn watchdog_start(dir: &Path) -> Result<()> {
    if WATCHDOG.get().is_some() {
        return Ok(());
    }
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG_SCRIPT)
        .arg("onionhost-testnet-watchdog")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group, so a Ctrl-C that ends the tests does not end it first.
        .process_group(0)
        .spawn()
        .context("start the cleanup watchdog (sh)")?;
    let stdin = child.stdin.take().context("watchdog stdin")?;
    let _ = WATCHDOG.set(Mutex::new(stdin));
    Ok(())
}

fn watchdog_add(pid: u32) -> Result<()> {
    let watchdog = WATCHDOG.get().context("the watchdog is not running")?;
    let mut stdin = watchdog.lock().unwrap_or_else(PoisonError::into_inner);
    writeln!(stdin, "{pid}").context("tell the watchdog about a tor process")
}

/// `count` distinct free TCP ports on 127.0.0.1 (bound together, then released).
fn free_ports(count: usize) -> Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .context("find free ports")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("create {}", dir.display()))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last lines of a log, for error messages.
fn tail(path: &Path) -> String {
    let text = read_lossy(path);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    if lines.is_empty() {
        format!("({} is empty or missing)", path.display())
    } else {
        lines[start..].join("\n")
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
