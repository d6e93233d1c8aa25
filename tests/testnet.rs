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
//! the full consensus), measured on the 2-core development machine: 39–48 s in most runs (5–12 s
//! of key generation, 20–31 s to the first consensus that lists every relay, 3–13 s until every
//! node has bootstrapped; [`Testnet::timeline`] shows the stages), up to ~110 s while other
//! builds load both cores. The network is started once per test *process*: `cargo test` runs
//! every test of the `e2e` binary in one process, so they share it (`cargo nextest`, one
//! process per test, would start one each).
//!
//! Use from a test:
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use onionhost_tests::testnet::Testnet;
//! let net = Testnet::shared().await?;
//! // Point the host at the network: `--tor-network <file>`, or `net.tor_section()` in its config.
//! let file = net.network_file();
//! # let onion = "";
//! # let key = "";
//! // Reach a private onion service with the key the host printed:
//! net.authorize(onion, key).await?;
//! let (status, body) = net.get(&format!("http://{onion}/")).await?;
//! // The same with curl, as a visitor would:
//! let (status, body) = net.curl(&format!("http://{onion}/")).await?;
//! // Or any protocol over a raw stream (e.g. a WebSocket with tokio_tungstenite::client_async):
//! let stream = net.connect(onion, 80).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Cleanup: every tor process runs with `__OwningControllerProcess <test pid>`, and a small
//! watchdog shell, holding the read end of a pipe whose write end only the test process holds,
//! stops the processes it was told about and removes the network's directory as soon as the
//! test process ends, however it ends. Directories of dead test processes are removed at start.

mod bridge;
mod control;
mod delay;
mod network;
mod process;
mod socks;
mod system;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use data_encoding::{BASE32_NOPAD, BASE64};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;

pub use self::bridge::Obfs4Bridge;
use self::control::Control;
use self::delay::DelayProxies;
use self::network::Node;
use self::process::{TorProcess, tail, write_private};
pub use self::socks::SocksError;
pub use self::system::SystemTor;

/// The authorities' voting interval in seconds. C tor's onion service time period in a test
/// network is 24 intervals; the authorities publish the same length as `hsdir_interval` for
/// Arti, whose lower bound is 5 minutes.
const VOTING_INTERVAL_SECS: u64 = 20;
/// How long the network may take to reach a full consensus with every node bootstrapped.
const READY_DEADLINE: Duration = Duration::from_secs(180);
/// How long [`Testnet::connect`] keeps trying (onion services take a few seconds to publish).
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(120);
/// How long one SOCKS connection attempt of [`Testnet::connect`] may take.
const ATTEMPT_DEADLINE: Duration = Duration::from_secs(30);
/// How long a control-port operation (reload, NEWNYM, waiting for a descriptor) may take.
const CONTROL_DEADLINE: Duration = Duration::from_secs(60);
/// How often a start-up condition is checked again.
const POLL: Duration = Duration::from_millis(250);
const AUTHORITIES: usize = 3;
const RELAYS: usize = 5;
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
    timeline: String,
    /// The processes of the network; they live as long as the test process.
    _processes: Vec<TorProcess>,
    /// Serialises changes to the client's authorization keys and NEWNYM signals.
    control_lock: tokio::sync::Mutex<()>,
    services: AtomicUsize,
    /// Every TCP port the network's tor processes listen on (OR, Dir, SOCKS and control).
    ports: Vec<u16>,
    /// The obfs4 bridge, started by the first test that needs it.
    bridge: tokio::sync::OnceCell<Obfs4Bridge>,
    /// The delaying proxies in front of every OR port, when the network has a link delay.
    delay: Option<DelayProxies>,
    /// The system tor that runs as another user, started by the first test that needs it.
    other_user_tor: tokio::sync::OnceCell<SystemTor>,
}

/// Settings of a network started with [`Testnet::start_with`]; the default is the tests'
/// network ([`Testnet::shared`]).
#[derive(Debug, Clone, Default)]
pub struct NetworkOptions {
    /// Latency added on every link, each way: each relay and authority advertises an OR port
    /// where a delaying TCP proxy listens (`ORPort A NoListen`) and listens behind it on
    /// another (`ORPort B NoAdvertise`), so links between relays and from any client to its
    /// first hop carry it (this kernel has no `netem`).
    pub link_delay: Option<Duration>,
    /// More consensus parameters, `name=value` separated by spaces (e.g. `cc_alg=2`), published
    /// by the authorities after `hsdir_interval`.
    pub consensus_params: String,
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

    /// Every TCP port on 127.0.0.1 that the network's authorities, relays and client listen
    /// on (OR ports, directory ports, the client's SOCKS and control ports); the bridge's are
    /// not among them.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// The torrc lines a tor process needs to join this network (the authorities, no
    /// fallbacks, the test network settings); add `DataDirectory` and its own ports.
    pub fn network_torrc(&self) -> &str {
        &self.network_torrc
    }

    /// The tor binary the network runs.
    pub fn tor_binary(&self) -> &Path {
        &self.tor
    }

    /// The delay each way on every link ([`NetworkOptions::link_delay`]) and the round trip
    /// measured through one of the proxies (5 one-byte echoes, the fastest); `None` without.
    pub fn link_delay(&self) -> Result<Option<(Duration, Duration)>> {
        self.delay
            .as_ref()
            .map(|proxies| Ok((proxies.delay(), proxies.measure_round_trip()?)))
            .transpose()
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

    /// What the start waited for and when (seconds since the tor processes started), one
    /// stage a line: shows where a slow start spent its time.
    pub fn timeline(&self) -> &str {
        &self.timeline
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
        self.connect_isolated(host, port, None, limit).await
    }

    /// [`Testnet::connect_within`] as a visitor of its own: with `isolation`, tor builds new
    /// circuits for this stream (a new rendezvous, for an onion service) instead of reusing
    /// those of earlier streams with another or no isolation name.
    pub async fn connect_isolated(
        &self,
        host: &str,
        port: u16,
        isolation: Option<&str>,
        limit: Duration,
    ) -> Result<tokio::net::TcpStream> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut attempts = 0u32;
        let mut last: Option<SocksError> = None;
        loop {
            attempts += 1;
            // One attempt is bounded on its own too: a SOCKS request whose descriptor fetch was
            // cancelled by another test's NEWNYM could otherwise wait for tor's 2 min timeout.
            let attempt_deadline = deadline.min(tokio::time::Instant::now() + ATTEMPT_DEADLINE);
            let result = match tokio::time::timeout_at(
                attempt_deadline,
                socks::connect(self.socks, host, port, isolation),
            )
            .await
            {
                Ok(result) => result,
                Err(_) if attempt_deadline < deadline => continue,
                Err(_) => break,
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
            let again = last == Some(refusal);
            last = Some(refusal);
            if again && matches!(refusal.code, 0xF0 | 0xF2 | 0xF7) {
                // Twice in a row: tor has asked every HSDir (or tried every introduction
                // point) and will not ask again for a long time; NEWNYM clears that memory.
                // Once may only mean another test's NEWNYM cancelled this fetch, and NEWNYM is
                // shared and rate-limited, so it is kept for when it is needed.
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
            .map_err(|_| {
                anyhow!(
                    "GET {url} through tor timed out; tor client log:\n{}",
                    tail(&self.client.log)
                )
            })?
            .with_context(|| format!("GET {url} through tor"))
    }

    /// The same GET with curl through the client's SOCKS port (`--socks5-hostname`, as a
    /// visitor would use it): first waits with [`Testnet::connect`] until the service answers,
    /// since curl does not retry tor's transient refusals.
    pub async fn curl(&self, url: &str) -> Result<(u16, Vec<u8>)> {
        let parsed = reqwest::Url::parse(url).with_context(|| format!("bad URL {url}"))?;
        let host = parsed.host_str().context("URL without host")?.to_owned();
        let port = parsed.port_or_known_default().unwrap_or(80);
        drop(self.connect(&host, port).await?);
        let curl = process::find_tool("curl", "curl")?;
        let socks = self.socks.to_string();
        let url = url.to_owned();
        let log = self.client.log.clone();
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(&curl)
                .args(["--silent", "--show-error", "--max-time", "120"])
                .args(["--socks5-hostname", &socks, "--output", "-"])
                .args(["--write-out", "\n%{http_code}", &url])
                .stdin(std::process::Stdio::null())
                .output()
                .with_context(|| format!("run {}", curl.display()))?;
            ensure!(
                out.status.success(),
                "curl {url} through tor failed ({}): {}; tor client log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                tail(&log)
            );
            // --write-out appends "\n<status>" right after the body.
            let mut body = out.stdout;
            let split = body
                .iter()
                .rposition(|&b| b == b'\n')
                .context("no status in curl's output")?;
            let status = std::str::from_utf8(&body[split + 1..])
                .ok()
                .and_then(|s| s.trim().parse::<u16>().ok())
                .context("no status in curl's output")?;
            body.truncate(split);
            Ok((status, body))
        })
        .await
        .context("the curl thread panicked")?
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
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || job(&self))
            .await
            .context("a control port thread panicked")?
            .map_err(|e| e.context(format!("tor client log:\n{}", tail(&log))))
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
                "tor did not {} the client authorization key of {addr} after a reload",
                if expected.is_some() { "load" } else { "drop" },
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
            .context("tor did not act on NEWNYM")?;
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::onion_label;

    #[test]
    fn onion_addresses_are_accepted_with_or_without_the_suffix() {
        let label = "a".repeat(52) + "2345";
        assert_eq!(onion_label(&format!("{label}.onion")).expect("with"), label);
        assert_eq!(
            onion_label(&label.to_ascii_uppercase()).expect("upper"),
            label
        );
        assert!(onion_label("example.com").is_err());
        assert!(onion_label(&format!("{}.onion", "a".repeat(16))).is_err());
    }
}
