//! The `[tor]` section and `--tor-network` files: which Tor the host uses (its embedded Arti,
//! or the system's tor through its control port), which Tor network Arti joins, and where
//! Arti keeps its files.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::bridges::{self, Bridges, RawTransport, Search};
use super::locate::{self, Lines, Problem};

/// How long Tor may take to connect before the host gives up, unless `[tor]` says otherwise.
pub(crate) const DEFAULT_BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(180);

/// The checked `[tor]` section: where Arti keeps its files, and which Tor network to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TorConfig {
    /// Arti's state directory; `None`: a private temporary one, removed on exit.
    pub(crate) state_dir: Option<PathBuf>,
    /// Arti's cache directory; `None`: a private temporary one, removed on exit.
    pub(crate) cache_dir: Option<PathBuf>,
    /// Where persistent tabs keep their keys; `None`: under the user's data directory.
    pub(crate) keys_dir: Option<PathBuf>,
    /// How long connecting to Tor may take before the host gives up.
    pub(crate) bootstrap_timeout: Duration,
    /// Another Tor network than the public one (a private or test network).
    pub(crate) network: Option<TorNetwork>,
    /// Bridges: when set, Tor is reached through them only.
    pub(crate) bridges: Option<Bridges>,
    /// Which Tor publishes the tabs.
    pub(crate) backend: Backend,
}

/// Which Tor publishes the tabs' onion services.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Backend {
    /// The Arti client embedded in the host.
    #[default]
    Arti,
    /// A tor already running on the system, through its control port or socket.
    System(SystemTor),
}

/// How to reach the system's tor (`backend = "system"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SystemTor {
    /// Its control port or control socket.
    pub(crate) control: ControlAddr,
    /// The password of `HashedControlPassword`, if the config gives one (else the
    /// `ONIONHOST_TOR_CONTROL_PASSWORD` environment variable is asked, when connecting).
    pub(crate) password: Option<ControlPassword>,
}

/// Where the system tor's control interface listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ControlAddr {
    /// A control port (`ControlPort`).
    Tcp(SocketAddr),
    /// A control socket (`ControlSocket`).
    Unix(PathBuf),
}

impl ControlAddr {
    /// Where Tails and Whonix (and C tor's default `ControlPort 9051`) listen.
    pub(crate) const DEFAULT: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9051);

    /// Reads `HOST:PORT` (an IP address or `localhost`), or the path of a control socket
    /// (absolute, relative with `./`, or written `unix:PATH`); `None` if it is neither.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Some(path) = text.strip_prefix("unix:") {
            return (!path.is_empty()).then(|| Self::Unix(PathBuf::from(path)));
        }
        if text.starts_with('/') || text.starts_with("./") || text.starts_with("../") {
            return Some(Self::Unix(PathBuf::from(text)));
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Some(Self::Tcp(addr));
        }
        let port = text.strip_prefix("localhost:")?.parse::<u16>().ok()?;
        Some(Self::Tcp(SocketAddr::from(([127, 0, 0, 1], port))))
    }
}

impl std::fmt::Display for ControlAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "control port {addr}"),
            Self::Unix(path) => write!(f, "control socket {}", path.display()),
        }
    }
}

/// A control port password. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ControlPassword(zeroize::Zeroizing<String>);

impl ControlPassword {
    /// Wraps `text`.
    pub(crate) fn new(text: String) -> Self {
        Self(zeroize::Zeroizing::new(text))
    }

    /// The password itself, to send to tor.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ControlPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlPassword(..)")
    }
}

impl Default for TorConfig {
    fn default() -> Self {
        Self {
            state_dir: None,
            cache_dir: None,
            keys_dir: None,
            bootstrap_timeout: DEFAULT_BOOTSTRAP_TIMEOUT,
            network: None,
            bridges: None,
            backend: Backend::Arti,
        }
    }
}

/// The directory authorities and fallback directories of a Tor network other than the
/// public one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TorNetwork {
    /// The authorities: at least one.
    pub(crate) authorities: Vec<Authority>,
    /// The first relays Arti asks for the directory: at least one.
    pub(crate) fallbacks: Vec<Fallback>,
}

/// One directory authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authority {
    /// Its v3 identity: the RSA fingerprint of its authority identity key.
    pub(crate) v3ident: [u8; 20],
    /// Its directory port.
    pub(crate) address: SocketAddr,
}

/// One fallback directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fallback {
    /// Its RSA identity fingerprint.
    pub(crate) rsa_identity: [u8; 20],
    /// Its ed25519 identity.
    pub(crate) ed_identity: [u8; 32],
    /// Its OR port.
    pub(crate) orport: SocketAddr,
}

/// The `[tor]` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTor {
    #[serde(default)]
    state_dir: Option<PathBuf>,
    #[serde(default)]
    cache_dir: Option<PathBuf>,
    #[serde(default)]
    keys_dir: Option<PathBuf>,
    #[serde(default)]
    bootstrap_timeout: Option<String>,
    #[serde(default)]
    authorities: Option<Vec<RawAuthority>>,
    #[serde(default)]
    fallbacks: Option<Vec<RawFallback>>,
    #[serde(default)]
    bridges: Option<Vec<String>>,
    #[serde(default)]
    use_bridges: Option<bool>,
    #[serde(default)]
    transports: Option<Vec<RawTransport>>,
    #[serde(default)]
    backend: Option<String>,
    #[serde(default)]
    control: Option<String>,
    #[serde(default)]
    control_password: Option<String>,
}

/// A `--tor-network` file as written: only the network.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default)]
    authorities: Option<Vec<RawAuthority>>,
    #[serde(default)]
    fallbacks: Option<Vec<RawFallback>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthority {
    v3ident: String,
    address: SocketAddr,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFallback {
    rsa_identity: String,
    ed_identity: String,
    orport: SocketAddr,
}

/// Parses a hex fingerprint of `N` bytes (spaces allowed, as tor prints them).
fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = data_encoding::HEXUPPER_PERMISSIVE
        .decode(clean.to_ascii_uppercase().as_bytes())
        .ok()?;
    bytes.try_into().ok()
}

/// Checks the authorities and fallbacks of a network, as written in `[tor]` or a network file.
fn check_network(
    authorities: Option<Vec<RawAuthority>>,
    fallbacks: Option<Vec<RawFallback>>,
    problems: &mut Vec<Problem>,
) -> Option<TorNetwork> {
    let key = |name: &str, index: usize, field: &str| {
        vec![name.to_owned(), index.to_string(), field.to_owned()]
    };
    match (authorities, fallbacks) {
        (None, None) => None,
        (Some(_), None) => {
            problems.push((
                vec!["authorities".into()],
                "`authorities` without `fallbacks`: list the network's fallback directories too (its authorities will do)".into(),
            ));
            None
        }
        (None, Some(_)) => {
            problems.push((
                vec!["fallbacks".into()],
                "`fallbacks` without `authorities`: a network other than the public one needs both"
                    .into(),
            ));
            None
        }
        (Some(authorities), Some(fallbacks)) => {
            let before = problems.len();
            if authorities.is_empty() {
                problems.push((
                    vec!["authorities".into()],
                    "`authorities` is empty: list at least one, or leave both `authorities` and `fallbacks` out for the public Tor network".into(),
                ));
            }
            if fallbacks.is_empty() {
                problems.push((
                    vec!["fallbacks".into()],
                    "`fallbacks` is empty: list at least one".into(),
                ));
            }
            let mut network = TorNetwork {
                authorities: Vec::new(),
                fallbacks: Vec::new(),
            };
            for (i, raw) in authorities.into_iter().enumerate() {
                match hex_bytes::<20>(&raw.v3ident) {
                    Some(v3ident) => network.authorities.push(Authority {
                        v3ident,
                        address: raw.address,
                    }),
                    None => problems.push((
                        key("authorities", i, "v3ident"),
                        format!("`authorities[{i}].v3ident` must be 40 hex digits (the authority's v3 identity fingerprint)"),
                    )),
                }
            }
            for (i, raw) in fallbacks.into_iter().enumerate() {
                let rsa = hex_bytes::<20>(&raw.rsa_identity);
                if rsa.is_none() {
                    problems.push((
                        key("fallbacks", i, "rsa_identity"),
                        format!("`fallbacks[{i}].rsa_identity` must be 40 hex digits (the relay's RSA fingerprint)"),
                    ));
                }
                let ed = data_encoding::BASE64_NOPAD
                    .decode(raw.ed_identity.trim_end_matches('=').as_bytes())
                    .ok()
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
                if ed.is_none() {
                    problems.push((
                        key("fallbacks", i, "ed_identity"),
                        format!("`fallbacks[{i}].ed_identity` must be the base64 of the relay's 32-byte ed25519 identity"),
                    ));
                }
                if let (Some(rsa_identity), Some(ed_identity)) = (rsa, ed) {
                    network.fallbacks.push(Fallback {
                        rsa_identity,
                        ed_identity,
                        orport: raw.orport,
                    });
                }
            }
            (problems.len() == before).then_some(network)
        }
    }
}

/// Checks the `[tor]` section; `search` finds pluggable transport binaries.
pub(super) fn check_tor(
    table: toml::Table,
    search: &Search<'_>,
) -> Result<TorConfig, Vec<Problem>> {
    let raw: RawTor = locate::deserialize(toml::Value::Table(table)).map_err(|p| vec![p])?;
    let mut problems = Vec::new();
    let mut tor = TorConfig {
        state_dir: raw.state_dir,
        cache_dir: raw.cache_dir,
        keys_dir: raw.keys_dir,
        ..TorConfig::default()
    };
    if let Some(text) = raw.bootstrap_timeout {
        match humantime::parse_duration(&text) {
            Ok(timeout) if timeout >= Duration::from_secs(1) => tor.bootstrap_timeout = timeout,
            _ => problems.push((
                vec!["bootstrap_timeout".into()],
                format!("`bootstrap_timeout` = {text:?} is not a duration of at least 1 s: write e.g. \"3 min\" or \"90s\""),
            )),
        }
    }
    let arti_only = [
        ("state_dir", tor.state_dir.is_some()),
        ("cache_dir", tor.cache_dir.is_some()),
        ("authorities", raw.authorities.is_some()),
        ("fallbacks", raw.fallbacks.is_some()),
        ("bridges", raw.bridges.is_some()),
        ("use_bridges", raw.use_bridges.is_some()),
        ("transports", raw.transports.is_some()),
    ];
    tor.network = check_network(raw.authorities, raw.fallbacks, &mut problems);
    match bridges::check_section(raw.bridges, raw.use_bridges, raw.transports, search) {
        Ok(found) => tor.bridges = found,
        Err(found) => problems.extend(found),
    }
    match raw.backend.as_deref() {
        None | Some("arti") => {
            for (key, given) in [
                ("control", raw.control.is_some()),
                ("control_password", raw.control_password.is_some()),
            ] {
                if given {
                    problems.push((
                        vec![key.into()],
                        format!("`{key}` is for the system's tor: add `backend = \"system\"`, or remove it"),
                    ));
                }
            }
        }
        Some("system") => {
            for (key, given) in arti_only {
                if given {
                    problems.push((vec![key.into()], arti_only_message(key)));
                }
            }
            let control = match raw.control.as_deref() {
                None => Some(ControlAddr::Tcp(ControlAddr::DEFAULT)),
                Some(text) => {
                    let found = ControlAddr::parse(text);
                    if found.is_none() {
                        problems.push((vec!["control".into()], control_message(text)));
                    }
                    found
                }
            };
            if let Some(control) = control {
                tor.backend = Backend::System(SystemTor {
                    control,
                    password: raw.control_password.map(ControlPassword::new),
                });
            }
        }
        Some(other) => problems.push((
            vec!["backend".into()],
            format!("`backend` = {other:?} is not a Tor backend: write \"arti\" (the embedded Tor, the default) or \"system\" (a tor already running here, through its control port)"),
        )),
    }
    if problems.is_empty() {
        Ok(tor)
    } else {
        Err(problems)
    }
}

/// Why `key`, an Arti setting, cannot be used with the system's tor.
fn arti_only_message(key: &str) -> String {
    let what = match key {
        "bridges" | "use_bridges" | "transports" => {
            "configure bridges in the system tor's torrc (`UseBridges 1`, `Bridge ...`, `ClientTransportPlugin ...`), where it uses them"
        }
        "authorities" | "fallbacks" => "the system tor's torrc chooses its network",
        _ => "the system's tor keeps its own files",
    };
    format!("`{key}` is for the embedded Arti, not `backend = \"system\"`: {what}; remove it here")
}

/// Why `text` is not a control address.
fn control_message(text: &str) -> String {
    format!(
        "`control` = {text:?} is neither HOST:PORT of a control port (e.g. \"127.0.0.1:9051\") nor the path of a control socket (e.g. \"/run/tor/control\")"
    )
}

/// Applies `--tor-control ADDR_OR_SOCKET_PATH`: the system's tor at that address publishes
/// the tabs, whatever the config's `backend` says (its `control_password` stays). Refused with
/// Arti settings that the system's tor would silently ignore (`--tor-network`, bridges).
pub(crate) fn with_tor_control(
    tor: &mut TorConfig,
    text: &str,
    tor_network: bool,
) -> Result<(), String> {
    let control = ControlAddr::parse(text)
        .ok_or_else(|| format!("--tor-control: {}", control_message(text)))?;
    if tor_network {
        return Err(
            "--tor-control and --tor-network: the system tor's torrc chooses its network; use one or the other".into(),
        );
    }
    if tor.bridges.is_some() {
        return Err(format!("--tor-control: {}", arti_only_message("bridges")));
    }
    let password = match std::mem::take(&mut tor.backend) {
        Backend::System(system) => system.password,
        Backend::Arti => None,
    };
    tor.backend = Backend::System(SystemTor { control, password });
    Ok(())
}

/// Checks the text of a `--tor-network` file: `authorities` and `fallbacks`, as in `[tor]`.
/// Each error has its line, when it has one.
pub(super) fn parse_network(text: &str) -> Result<TorNetwork, Vec<(Option<usize>, String)>> {
    let value: toml::Value = toml::from_str(text).map_err(|err| {
        let line = err.span().map(|span| locate::line_of(text, span.start));
        vec![(line, err.message().trim_end().to_owned())]
    })?;
    let lines = Lines::new(text);
    let at = |problems: Vec<Problem>| -> Vec<(Option<usize>, String)> {
        problems
            .into_iter()
            .map(|(path, message)| (lines.line(&path), message))
            .collect()
    };
    let raw: RawNetwork = locate::deserialize(value).map_err(|p| at(vec![p]))?;
    let mut problems = Vec::new();
    match check_network(raw.authorities, raw.fallbacks, &mut problems) {
        Some(network) => Ok(network),
        None if problems.is_empty() => Err(vec![(
            None,
            "no network in this file: it needs `authorities` and `fallbacks`".into(),
        )]),
        None => Err(at(problems)),
    }
}
