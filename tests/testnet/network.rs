//! Starting the network: keys, torrc files, tor processes, and the wait for a full consensus;
//! also the C tor onion services of [`Testnet::c_tor_onion_service`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use data_encoding::BASE64_NOPAD;

use super::control::Control;
use super::delay::DelayProxies;
use super::process::{
    TorProcess, create_private_dir, find_tool, free_ports, process_dir, read_lossy, tail, unix_now,
    watchdog_start, write_private,
};
use super::{
    AUTHORITIES, CONTROL_DEADLINE, CTorOnionService, ClientControl, NetworkOptions, POLL,
    READY_DEADLINE, RELAYS, Testnet, VOTING_INTERVAL_SECS,
};

impl Testnet {
    /// Starts the network in a fresh `<tmp>/onionhost-testnet-<pid>` and waits until it is
    /// ready (see [`Testnet::shared`]).
    pub(super) fn start() -> Result<Testnet> {
        Self::start_with(&NetworkOptions::default())
    }

    /// A network of its own with other settings (see [`NetworkOptions`]), started and waited
    /// for as the shared one: for the benchmarks (`bench/overtor`), in a process of their own.
    pub fn start_with(options: &NetworkOptions) -> Result<Testnet> {
        let tor = find_tool("tor", "tor")?;
        let gencert = find_tool("tor-gencert", "tor")?;
        let base = process_dir()?;
        watchdog_start(&base)?;
        let mut attempt = 1;
        loop {
            match Self::start_in(&tor, &gencert, &base.join(format!("net{attempt}")), options) {
                // Ports are picked free and released before tor binds them, so another
                // process can take one in between; a fresh set of ports fixes that.
                Err(e) if attempt < 3 && format!("{e:#}").contains("Could not bind") => {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn start_in(
        tor: &Path,
        gencert: &Path,
        dir: &Path,
        options: &NetworkOptions,
    ) -> Result<Testnet> {
        let started = Instant::now();
        create_private_dir(dir)?;
        ensure!(
            options
                .consensus_params
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_= -".contains(c)),
            "consensus parameters are `name=value` words"
        );
        let delay = options.link_delay.map(DelayProxies::new).transpose()?;
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
            match &delay {
                // The advertised port is the proxy's; tor listens on another, behind it.
                Some(proxies) => {
                    let listen = free_ports(1)?[0];
                    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, listen));
                    let proxy = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, node.or_port))
                        .with_context(|| {
                            format!("Could not bind the proxy port {}", node.or_port)
                        })?;
                    proxies.add_on(proxy, target)?;
                    let _ = write!(
                        torrc,
                        "ORPort 127.0.0.1:{} NoListen\nORPort 127.0.0.1:{listen} NoAdvertise\n",
                        node.or_port
                    );
                }
                None => {
                    let _ = writeln!(torrc, "ORPort 127.0.0.1:{}", node.or_port);
                }
            }
            torrc.push_str("SocksPort 0\nAddress 127.0.0.1\nContactInfo onionhost-testnet\n");
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
                     ConsensusParams hsdir_interval={hsdir_minutes} {}\n\
                     AuthDirVoteStableGuaranteeMinUptime 0 seconds\n\
                     AuthDirVoteStableGuaranteeMTBF 0 seconds\n\
                     AuthDirMaxServersPerAddr 0\n\
                     V3BandwidthsFile {}\n",
                    options.consensus_params.trim(),
                    bandwidth_file.display()
                );
            }
            processes.push(TorProcess::spawn(tor, &node.nick, &node.dir, &torrc)?);
        }

        // The client starts once the authorities publish the full consensus: started earlier,
        // its downloads back off while there is none and it bootstraps ~15 s later.
        let mut startup = Startup::new();
        startup.wait(&nodes, &mut processes, None)?;
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

        startup.wait(&nodes, &mut processes, Some(&client))?;
        let timeline = startup.timeline;

        let mut ports: Vec<u16> = nodes
            .iter()
            .flat_map(|n| std::iter::once(n.or_port).chain(n.dir_port))
            .collect();
        ports.extend([socks.port(), control.port()]);
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
            timeline,
            _processes: processes,
            control_lock: tokio::sync::Mutex::new(()),
            services: AtomicUsize::new(0),
            ports,
            bridge: tokio::sync::OnceCell::new(),
            delay,
            other_user_tor: tokio::sync::OnceCell::new(),
        };
        std::fs::write(&net.network_file, net.network_toml()).context("write network.toml")?;
        net.cold_start = started.elapsed();
        Ok(net)
    }

    /// The blocking part of [`Testnet::c_tor_onion_service`].
    pub(super) fn start_service(
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
             HiddenServiceDir {}\nHiddenServicePort {port} {target}\nDisableNetwork 1\n",
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
            // The network is switched on only once the harness listens for the upload event,
            // so the event cannot pass unseen.
            control.command("SETEVENTS HS_DESC", deadline)?;
            control.command("SETCONF DisableNetwork=0", deadline)?;
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

pub(super) fn common_torrc(dir: &Path, nick: &str, network_torrc: &str) -> String {
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
pub(super) struct Node {
    pub(super) nick: String,
    pub(super) dir: PathBuf,
    pub(super) or_port: u16,
    pub(super) dir_port: Option<u16>,
    /// RSA identity fingerprint, 40 hex digits.
    pub(super) fingerprint: String,
    /// ed25519 master identity, base64 without padding.
    pub(super) ed_identity: String,
    /// Authorities only: the v3 identity (fingerprint of the authority identity key).
    pub(super) v3ident: Option<String>,
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

/// The progress of a start: when it began, its deadline, and what it waited for.
struct Startup {
    started: Instant,
    deadline: Instant,
    timeline: String,
    last_stage: String,
}

impl Startup {
    fn new() -> Self {
        let started = Instant::now();
        Self {
            started,
            deadline: started + READY_DEADLINE,
            timeline: String::new(),
            last_stage: String::new(),
        }
    }

    /// Polls until the authorities publish the full consensus and, with a client, until the
    /// network is ready (see [`Testnet::shared`]), or the deadline passes; notes each stage
    /// in the timeline (see [`Testnet::timeline`]).
    fn wait(
        &mut self,
        nodes: &[Node],
        processes: &mut [TorProcess],
        client: Option<&ClientControl>,
    ) -> Result<()> {
        let deadline = self.deadline;
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
                let Some(client) = client else {
                    return Ok(None);
                };
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
                Ok(None) => {
                    let stage = if client.is_some() {
                        "ready"
                    } else {
                        "full consensus"
                    };
                    let _ = writeln!(
                        self.timeline,
                        "{:5.1}s {stage}",
                        self.started.elapsed().as_secs_f64()
                    );
                    return Ok(());
                }
                Ok(Some(waiting)) => waiting,
                Err(e) => {
                    control = None;
                    let log =
                        client.map_or_else(|| authority.dir.join("notice.log"), |c| c.log.clone());
                    (format!("{e:#}"), log)
                }
            };
            // The first words say which stage it waits for; details (flags, errors) vary.
            let stage: String = why.split(' ').take(4).collect::<Vec<_>>().join(" ");
            if stage != self.last_stage {
                let _ = writeln!(
                    self.timeline,
                    "{:5.1}s {why}",
                    self.started.elapsed().as_secs_f64()
                );
                self.last_stage = stage;
            }
            if Instant::now() >= deadline {
                bail!(
                    "the local Tor network was not ready after {READY_DEADLINE:?}: {why}\n\
                 what it waited for, since the processes started:\n{}\n\
                 log {}:\n{}",
                    self.timeline,
                    log.display(),
                    tail(&log)
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

/// GETs the current microdescriptor consensus from an authority's DirPort.
fn fetch_consensus(dir_port: u16) -> Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, dir_port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{Node, missing_flags};

    fn node(nick: &str) -> Node {
        Node::new(&PathBuf::from("/nonexistent"), nick.to_owned(), 1, None)
    }

    #[test]
    fn a_consensus_is_full_only_when_every_node_is_running_and_hsdir() {
        let nodes = [node("auth0"), node("relay0")];
        let partial = "r auth0 AAAA x\ns Authority HSDir Running V2Dir Valid\n\
                       r relay0 BBBB x\ns Fast Running Valid\n";
        let missing = missing_flags(partial, &nodes).expect("relay0 lacks HSDir");
        assert!(missing.contains("relay0"), "{missing}");
        let short = "r auth0 AAAA x\ns HSDir Running\n";
        assert_eq!(
            missing_flags(short, &nodes).as_deref(),
            Some("does not list relay0")
        );
        let full =
            "r auth0 AAAA x\ns HSDir Running\nr relay0 BBBB x\nm abc\ns Guard HSDir Running\n";
        assert_eq!(missing_flags(full, &nodes), None);
    }
}
