//! The config file: TOML in, a checked and immutable [`HostConfig`] out.
//!
//! The host owns the keys of `[[tab]]` (name, mode, port, onion service options) and of
//! `[tor]`; each mode owns its section `[tab.<mode>]`, which the host hands to the mode to
//! parse. Every error names the file, the line and the key, and all of them are reported at
//! once.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::modes::Registry;

/// One checked tab of the config.
#[derive(Debug, Clone)]
pub(crate) struct TabConfig {
    /// The tab's name: unique, `[A-Za-z0-9_-]{1,32}`.
    pub(crate) name: String,
    /// The mode's name.
    pub(crate) mode: String,
    /// For a mode loaded from a shared library: the library's path.
    pub(crate) plugin: Option<PathBuf>,
    /// With `--local-only`: the port to listen on; `None` picks a free one.
    pub(crate) port: Option<u16>,
    /// Onion service options of this tab.
    pub(crate) onion: OnionTabOptions,
    /// The mode's own section, as the mode will parse it.
    pub(crate) section: toml::Value,
}

/// How a tab's onion service is published.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct OnionTabOptions {
    /// No client authorization: anyone with the address can connect.
    #[serde(default)]
    pub(crate) public: bool,
    /// Keep the service's keys on disk so that its address survives restarts.
    #[serde(default)]
    pub(crate) persistent: bool,
    /// Extra clients allowed in, as x25519 public keys (`descriptor:x25519:<base32>` or the
    /// bare base32 key).
    #[serde(default)]
    pub(crate) authorized_clients: Vec<String>,
    /// Ask visitors' Tor clients for proof of work when the service is under load.
    /// Defaults to on for public tabs.
    #[serde(default)]
    pub(crate) proof_of_work: Option<bool>,
    /// Limit on introduction requests per second at each introduction point.
    #[serde(default)]
    pub(crate) intro_rate_per_second: Option<u32>,
}

/// The whole checked config.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostConfig {
    /// The tabs, in file order.
    pub(crate) tabs: Vec<TabConfig>,
    /// The `[tor]` section.
    pub(crate) tor: TorConfig,
    /// The file it came from, for messages.
    pub(crate) source: Option<PathBuf>,
}

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
}

impl Default for TorConfig {
    fn default() -> Self {
        Self {
            state_dir: None,
            cache_dir: None,
            keys_dir: None,
            bootstrap_timeout: DEFAULT_BOOTSTRAP_TIMEOUT,
            network: None,
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

/// A path into a TOML document, for finding a line.
#[derive(Debug, Clone)]
enum Part {
    Key(String),
    Index(usize),
}

/// A problem found in `[tor]` or a network file: where, and what.
type Problem = (Vec<Part>, String);

/// Deserializes `value` into `T`, naming the offending key on error.
fn deserialize_at<T: serde::de::DeserializeOwned>(value: toml::Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let mut path: Vec<Part> = err
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(Part::Key(key.clone())),
                serde_path_to_error::Segment::Seq { index } => Some(Part::Index(*index)),
                _ => None,
            })
            .collect();
        let message = err.into_inner().message().trim_end().to_owned();
        // An unknown key is reported at its table; point at the key itself.
        if let Some(rest) = message.strip_prefix("unknown field `")
            && let Some((key, _)) = rest.split_once('`')
            && !matches!(path.last(), Some(Part::Key(last)) if last == key)
        {
            path.push(Part::Key(key.to_owned()));
        }
        let shown = shown_path(&path);
        let message = if shown.is_empty() {
            message
        } else {
            format!("`{shown}`: {message}")
        };
        (path, message)
    })
}

/// `authorities[0].v3ident`.
fn shown_path(path: &[Part]) -> String {
    let mut shown = String::new();
    for part in path {
        match part {
            Part::Key(key) => {
                if !shown.is_empty() {
                    shown.push('.');
                }
                shown.push_str(key);
            }
            Part::Index(i) => shown.push_str(&format!("[{i}]")),
        }
    }
    shown
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
        vec![
            Part::Key(name.to_owned()),
            Part::Index(index),
            Part::Key(field.to_owned()),
        ]
    };
    match (authorities, fallbacks) {
        (None, None) => None,
        (Some(_), None) => {
            problems.push((
                vec![Part::Key("authorities".into())],
                "`authorities` without `fallbacks`: list the network's fallback directories too (its authorities will do)".into(),
            ));
            None
        }
        (None, Some(_)) => {
            problems.push((
                vec![Part::Key("fallbacks".into())],
                "`fallbacks` without `authorities`: a network other than the public one needs both"
                    .into(),
            ));
            None
        }
        (Some(authorities), Some(fallbacks)) => {
            let before = problems.len();
            if authorities.is_empty() {
                problems.push((
                    vec![Part::Key("authorities".into())],
                    "`authorities` is empty: list at least one, or leave both `authorities` and `fallbacks` out for the public Tor network".into(),
                ));
            }
            if fallbacks.is_empty() {
                problems.push((
                    vec![Part::Key("fallbacks".into())],
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

/// Checks the `[tor]` section.
fn check_tor(table: toml::Table) -> Result<TorConfig, Vec<Problem>> {
    let raw: RawTor = deserialize_at(toml::Value::Table(table)).map_err(|p| vec![p])?;
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
                vec![Part::Key("bootstrap_timeout".into())],
                format!("`bootstrap_timeout` = {text:?} is not a duration of at least 1 s: write e.g. \"3 min\" or \"90s\""),
            )),
        }
    }
    tor.network = check_network(raw.authorities, raw.fallbacks, &mut problems);
    if problems.is_empty() {
        Ok(tor)
    } else {
        Err(problems)
    }
}

/// Reads a `--tor-network` file: `authorities` and `fallbacks`, as in `[tor]`.
pub(crate) fn load_network(path: &Path) -> Result<TorNetwork, ConfigErrors> {
    let file = path.display().to_string();
    let fail = |errors| ConfigErrors {
        file: file.clone(),
        errors,
    };
    let text = std::fs::read_to_string(path).map_err(|err| {
        fail(vec![(
            None,
            format!("cannot read the Tor network file: {err}"),
        )])
    })?;
    let value: toml::Value = toml::from_str(&text).map_err(|err| {
        let line = err.span().map(|span| line_of(&text, span.start));
        fail(vec![(line, err.message().trim_end().to_owned())])
    })?;
    let spans = Spans::new(&text);
    let at = |problems: Vec<Problem>| {
        fail(
            problems
                .into_iter()
                .map(|(path, message)| (spans.line_at(&[], &path), message))
                .collect(),
        )
    };
    let raw: RawNetwork = deserialize_at(value).map_err(|p| at(vec![p]))?;
    let mut problems = Vec::new();
    match check_network(raw.authorities, raw.fallbacks, &mut problems) {
        Some(network) => Ok(network),
        None if problems.is_empty() => Err(fail(vec![(
            None,
            "no network in this file: it needs `authorities` and `fallbacks`".into(),
        )])),
        None => Err(at(problems)),
    }
}

/// Everything wrong with a config file.
#[derive(Debug)]
pub(crate) struct ConfigErrors {
    file: String,
    errors: Vec<(Option<usize>, String)>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (line, message)) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match line {
                Some(line) => write!(f, "{}:{line}: {message}", self.file)?,
                None => write!(f, "{}: {message}", self.file)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Largest `intro_rate_per_second` (the burst, 8 times the rate, must fit Tor's limit).
const MAX_INTRO_RATE: u32 = 100_000;

/// Most `authorized_clients` of a tab, with the host's own client key: Arti's descriptor holds
/// about 160 client keys.
const MAX_AUTHORIZED_CLIENTS: usize = 150;

/// The keys of `[[tab]]` that the host itself reads.
const HOST_TAB_KEYS: &[&str] = &[
    "name",
    "mode",
    "plugin",
    "port",
    "public",
    "persistent",
    "authorized_clients",
    "proof_of_work",
    "intro_rate_per_second",
];

/// The host's own keys of a tab, with their types. Unknown keys were refused before, by name.
#[derive(Debug, Deserialize)]
struct RawTab {
    name: String,
    mode: String,
    #[serde(default)]
    plugin: Option<PathBuf>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    persistent: bool,
    #[serde(default)]
    authorized_clients: Vec<String>,
    #[serde(default)]
    proof_of_work: Option<bool>,
    #[serde(default)]
    intro_rate_per_second: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    tor: toml::Table,
    #[serde(default)]
    tab: Vec<toml::Table>,
}

/// Reads and checks a config file.
pub(crate) fn load(path: &Path, registry: &Registry) -> Result<HostConfig, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|err| ConfigErrors {
        file: file.clone(),
        errors: vec![(None, format!("cannot read the config file: {err}"))],
    })?;
    let mut config = parse(&text, &file, registry)?;
    // Relative directories in `[tor]` are relative to the config file, not to wherever the
    // host happens to be started.
    if let Some(base) = path.parent() {
        for dir in [
            &mut config.tor.state_dir,
            &mut config.tor.cache_dir,
            &mut config.tor.keys_dir,
        ] {
            if let Some(relative) = dir.as_mut().filter(|d| d.is_relative()) {
                *relative = base.join(&*relative);
            }
        }
    }
    config.source = Some(path.to_owned());
    Ok(config)
}

/// Checks the text of a config file; `file` names it in messages.
pub(crate) fn parse(
    text: &str,
    file: &str,
    registry: &Registry,
) -> Result<HostConfig, ConfigErrors> {
    let mut errors = Vec::new();
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            let line = err.span().map(|span| line_of(text, span.start));
            errors.push((line, err.message().trim_end().to_owned()));
            return Err(ConfigErrors {
                file: file.to_owned(),
                errors,
            });
        }
    };
    let spans = Spans::new(text);
    let tor = match check_tor(raw.tor) {
        Ok(tor) => tor,
        Err(problems) => {
            for (path, message) in problems {
                errors.push((spans.line_at(&["tor"], &path), format!("[tor] {message}")));
            }
            TorConfig::default()
        }
    };
    if raw.tab.is_empty() {
        errors.push((
            None,
            "no tabs: add at least one `[[tab]]` table with `name` and `mode`".to_owned(),
        ));
    }
    let mut names = HashSet::new();
    let mut nicknames = HashSet::new();
    let mut ports = HashSet::new();
    let mut tabs = Vec::new();
    for (index, table) in raw.tab.into_iter().enumerate() {
        let mut error = |key: &[&str], message: String| {
            errors.push((spans.line(index, key), message));
        };
        let Some(mode) = table
            .get("mode")
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
        else {
            error(&[], "this tab has no `mode`: add e.g. `mode = \"chat\"` (chat, share, receive, or a plugin's mode)".into());
            continue;
        };
        let mut host_keys = toml::Table::new();
        let mut section = None;
        for (key, value) in table {
            if key == mode {
                section = Some(value);
            } else if HOST_TAB_KEYS.contains(&key.as_str()) {
                host_keys.insert(key, value);
            } else {
                error(
                    &[&key],
                    format!(
                        "unknown key `{key}` in a `{mode}` tab: the tab's keys are {}, and the mode's own settings go in `[tab.{mode}]`",
                        HOST_TAB_KEYS.join(", ")
                    ),
                );
            }
        }
        let raw_tab: RawTab = match serde_path_to_error_like(host_keys) {
            Ok(raw_tab) => raw_tab,
            Err((key, message)) => {
                let key: Vec<&str> = key.iter().map(String::as_str).collect();
                error(&key, message);
                continue;
            }
        };
        let name_ok = !raw_tab.name.is_empty()
            && raw_tab.name.len() <= 32
            && raw_tab
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            error(
                &["name"],
                format!(
                    "tab name {:?} is not allowed: use 1 to 32 letters, digits, `-` or `_`",
                    raw_tab.name
                ),
            );
        } else if !names.insert(raw_tab.name.clone()) {
            error(
                &["name"],
                format!(
                    "two tabs are named {:?}: give each tab its own name",
                    raw_tab.name
                ),
            );
        } else if !nicknames.insert(raw_tab.name.to_ascii_lowercase()) {
            // Each tab's onion service is named after the tab, and those names are lowercase.
            error(
                &["name"],
                format!(
                    "tab name {:?} differs from another tab's only in upper/lower case: give each tab its own name",
                    raw_tab.name
                ),
            );
        }
        if let Some(rate) = raw_tab.intro_rate_per_second
            && !(1..=MAX_INTRO_RATE).contains(&rate)
        {
            error(
                &["intro_rate_per_second"],
                format!(
                    "`intro_rate_per_second` must be 1 to {MAX_INTRO_RATE}: leave it out for the default"
                ),
            );
        }
        if raw_tab.public && !raw_tab.authorized_clients.is_empty() {
            error(
                &["authorized_clients"],
                "`authorized_clients` on a public tab: a public tab lets everyone in; remove `authorized_clients` or set `public = false`".into(),
            );
        }
        if raw_tab.authorized_clients.len() > MAX_AUTHORIZED_CLIENTS {
            error(
                &["authorized_clients"],
                format!(
                    "more than {MAX_AUTHORIZED_CLIENTS} `authorized_clients`: the onion service descriptor cannot hold more keys"
                ),
            );
        }
        for (i, key) in raw_tab.authorized_clients.iter().enumerate() {
            if crate::transport::onion::parse_client_key(key).is_none() {
                error(
                    &["authorized_clients"],
                    format!(
                        "`authorized_clients[{i}]` is not an x25519 public key: write `descriptor:x25519:<52 base32 characters>` or the bare key"
                    ),
                );
            }
        }
        if let Some(port) = raw_tab.port {
            if port == 0 {
                error(
                    &["port"],
                    "port 0 is not allowed: leave `port` out to pick a free port".into(),
                );
            } else if !ports.insert(port) {
                error(
                    &["port"],
                    format!("two tabs use port {port}: give each tab its own port"),
                );
            }
        }
        let section = section.unwrap_or_else(|| toml::Value::Table(toml::Table::new()));
        if !section.is_table() {
            error(
                &[&mode],
                format!("`{mode}` must be a table: write its settings under `[tab.{mode}]`"),
            );
            continue;
        }
        let checked = match (&raw_tab.plugin, registry.get(&mode)) {
            // The plugin checks its own section now (loading its library), so that its errors
            // get a file and a line too; a library that cannot be loaded fails only its tab.
            (Some(path), _) => {
                crate::plugin::check_section(&mode, path, Path::new(file).parent(), &section)
            }
            (None, Some(factory)) => factory.check(section.clone()),
            (None, None) => {
                error(
                    &["mode"],
                    format!(
                        "unknown mode {mode:?}: the built-in modes are {}; for a mode from a shared library add `plugin = \"path/to/lib.so\"`",
                        registry.names().collect::<Vec<_>>().join(", ")
                    ),
                );
                Ok(())
            }
        };
        if let Err(err) = checked {
            let mut key: Vec<&str> = vec![&mode];
            key.extend(err.key.iter().map(String::as_str));
            let shown = if err.key.is_empty() {
                mode.clone()
            } else {
                format!("{mode}.{}", err.key.join("."))
            };
            error(
                &key,
                format!("tab {:?}, `{shown}`: {}", raw_tab.name, err.message),
            );
        }
        tabs.push(TabConfig {
            name: raw_tab.name,
            mode: raw_tab.mode,
            plugin: raw_tab.plugin,
            port: raw_tab.port,
            onion: OnionTabOptions {
                public: raw_tab.public,
                persistent: raw_tab.persistent,
                authorized_clients: raw_tab.authorized_clients,
                proof_of_work: raw_tab.proof_of_work,
                intro_rate_per_second: raw_tab.intro_rate_per_second,
            },
            section,
        });
    }
    if errors.is_empty() {
        Ok(HostConfig {
            tabs,
            tor,
            source: None,
        })
    } else {
        Err(ConfigErrors {
            file: file.to_owned(),
            errors,
        })
    }
}

/// Deserializes the host's keys of a tab, naming the offending key on error.
fn serde_path_to_error_like(keys: toml::Table) -> Result<RawTab, (Vec<String>, String)> {
    serde_path_to_error::deserialize(toml::Value::Table(keys)).map_err(|err| {
        let key = err.path().iter().filter_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            _ => None,
        });
        let key: Vec<String> = key.collect();
        let inner = err.into_inner();
        let message = inner.message().trim_end();
        let message = match key.first() {
            Some(first) => format!("`{first}`: {message}"),
            None => message.to_owned(),
        };
        (key, message)
    })
}

/// Finds the line of a key inside the `index`th `[[tab]]`.
struct Spans {
    text: String,
    doc: Option<toml_edit::Document<String>>,
}

impl Spans {
    fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            doc: toml_edit::Document::parse(text.to_owned()).ok(),
        }
    }

    /// The 1-based line of `tab[index].key...`, or of the deepest part of it that exists.
    fn line(&self, index: usize, key: &[&str]) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let tab = doc
            .as_table()
            .get("tab")?
            .as_array_of_tables()?
            .get(index)?;
        let mut best = tab.span().map(|span| span.start);
        let mut table: &dyn toml_edit::TableLike = tab;
        for part in key {
            let Some((found, item)) = table.get_key_value(part) else {
                break;
            };
            if let Some(span) = found.span().or_else(|| item.span()) {
                best = Some(span.start);
            }
            match item.as_table_like() {
                Some(inner) => table = inner,
                None => break,
            }
        }
        best.map(|offset| line_of(&self.text, offset))
    }
}

impl Spans {
    /// The 1-based line of `prefix...path...` (or of the deepest part of it that exists),
    /// through tables, arrays and inline tables.
    fn line_at(&self, prefix: &[&str], path: &[Part]) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let mut item = doc.as_item().clone();
        let mut best = None;
        let parts = prefix
            .iter()
            .map(|key| Part::Key((*key).to_owned()))
            .chain(path.iter().cloned());
        for part in parts {
            let next = match (&part, &item) {
                (Part::Key(key), item) => {
                    let Some(table) = item.as_table_like() else {
                        break;
                    };
                    let Some((found, next)) = table.get_key_value(key) else {
                        break;
                    };
                    best = found.span().or_else(|| next.span()).or(best);
                    next.clone()
                }
                (Part::Index(i), toml_edit::Item::ArrayOfTables(tables)) => {
                    let Some(table) = tables.get(*i) else { break };
                    best = table.span().or(best);
                    toml_edit::Item::Table(table.clone())
                }
                (Part::Index(i), toml_edit::Item::Value(toml_edit::Value::Array(array))) => {
                    let Some(value) = array.get(*i) else { break };
                    best = value.span().or(best);
                    toml_edit::Item::Value(value.clone())
                }
                _ => break,
            };
            item = next;
        }
        best.map(|span| line_of(&self.text, span.start))
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn errors(text: &str) -> String {
        parse(text, "test.toml", &Registry::builtin())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn two_tabs_of_one_mode_parse() {
        let config = parse(
            "[[tab]]\nname = \"a\"\nmode = \"chat\"\n[[tab]]\nname = \"b\"\nmode = \"chat\"\nport = 9000\n",
            "test.toml",
            &Registry::builtin(),
        )
        .unwrap();
        assert_eq!(config.tabs.len(), 2);
        assert_eq!(config.tabs[1].port, Some(9000));
    }

    #[test]
    fn unknown_tab_key_names_line_and_key() {
        let text = "[[tab]]\nname = \"a\"\nmode = \"chat\"\ncolour = 3\n";
        let err = errors(text);
        assert!(
            err.starts_with("test.toml:4: unknown key `colour`"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_names_are_refused() {
        let text =
            "[[tab]]\nname = \"a\"\nmode = \"chat\"\n\n[[tab]]\nname = \"a\"\nmode = \"chat\"\n";
        let err = errors(text);
        assert!(
            err.contains("test.toml:6: two tabs are named \"a\""),
            "{err}"
        );
    }

    #[test]
    fn wrong_type_names_line() {
        let err = errors("[[tab]]\nname = \"a\"\nmode = \"chat\"\nport = \"eighty\"\n");
        assert!(
            err.starts_with("test.toml:4: `port`: invalid type"),
            "{err}"
        );
    }

    #[test]
    fn unknown_mode_is_refused() {
        let err = errors("[[tab]]\nname = \"a\"\nmode = \"teleport\"\n");
        assert!(
            err.contains("test.toml:3: unknown mode \"teleport\""),
            "{err}"
        );
    }

    #[test]
    fn syntax_error_names_line() {
        let err = errors("[[tab]]\nname = \"a\nmode = \"chat\"\n");
        assert!(err.starts_with("test.toml:2:"), "{err}");
    }

    const TAB: &str = "[[tab]]\nname = \"a\"\nmode = \"chat\"\n";

    #[test]
    fn tor_section_parses() {
        let text = format!(
            "[tor]\nstate_dir = \"/var/lib/x\"\nbootstrap_timeout = \"90s\"\n\
             authorities = [ {{ v3ident = \"{ident}\", address = \"127.0.0.1:7000\" }} ]\n\
             fallbacks = [ {{ rsa_identity = \"{ident}\", ed_identity = \"{ed}\", orport = \"127.0.0.1:5000\" }} ]\n{TAB}",
            ident = "AB".repeat(20),
            ed = data_encoding::BASE64_NOPAD.encode(&[7u8; 32]),
        );
        let config = parse(&text, "test.toml", &Registry::builtin()).unwrap();
        assert_eq!(config.tor.state_dir, Some(PathBuf::from("/var/lib/x")));
        assert_eq!(config.tor.bootstrap_timeout, Duration::from_secs(90));
        let network = config.tor.network.unwrap();
        assert_eq!(network.authorities[0].v3ident, [0xab; 20]);
        assert_eq!(network.fallbacks[0].ed_identity, [7; 32]);
        assert_eq!(network.fallbacks[0].orport.port(), 5000);
    }

    #[test]
    fn no_tor_section_means_the_public_network() {
        let config = parse(TAB, "test.toml", &Registry::builtin()).unwrap();
        assert_eq!(config.tor, TorConfig::default());
        assert_eq!(config.tor.bootstrap_timeout, DEFAULT_BOOTSTRAP_TIMEOUT);
    }

    #[test]
    fn unknown_tor_key_names_line_and_key() {
        let err = errors(&format!(
            "{TAB}\n[tor]\nstate_dir = \"/x\"\nsocks_port = 9050\n"
        ));
        assert!(
            err.starts_with("test.toml:7: [tor] `socks_port`: unknown field"),
            "{err}"
        );
    }

    #[test]
    fn bad_tor_values_name_their_lines() {
        let text = format!(
            "{TAB}[tor]\nbootstrap_timeout = \"soon\"\nauthorities = [\n  {{ v3ident = \"xyz\", address = \"127.0.0.1:1\" }},\n]\nfallbacks = []\n"
        );
        let err = errors(&text);
        assert!(
            err.contains("test.toml:5: [tor] `bootstrap_timeout`"),
            "{err}"
        );
        assert!(
            err.contains("test.toml:7: [tor] `authorities[0].v3ident` must be 40 hex"),
            "{err}"
        );
        assert!(
            err.contains("test.toml:9: [tor] `fallbacks` is empty"),
            "{err}"
        );
        let err = errors(&format!(
            "{TAB}[tor]\nauthorities = [ {{ v3ident = \"00\", address = \"nowhere\" }} ]\n"
        ));
        assert!(
            err.contains("test.toml:5: [tor] `authorities[0].address`"),
            "{err}"
        );
    }

    #[test]
    fn authorities_need_fallbacks() {
        let text = format!(
            "{TAB}[tor]\nauthorities = [ {{ v3ident = \"{}\", address = \"127.0.0.1:1\" }} ]\n",
            "00".repeat(20)
        );
        assert!(errors(&text).contains("`authorities` without `fallbacks`"));
    }

    #[test]
    fn network_file_loads_and_refuses_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net.toml");
        let good = format!(
            "authorities = [ {{ v3ident = \"{ident}\", address = \"127.0.0.1:7000\" }} ]\n\
             fallbacks = [ {{ rsa_identity = \"{ident}\", ed_identity = \"{ed}\", orport = \"127.0.0.1:5000\" }} ]\n",
            ident = "01".repeat(20),
            ed = data_encoding::BASE64.encode(&[9u8; 32]),
        );
        std::fs::write(&path, &good).unwrap();
        let network = load_network(&path).unwrap();
        assert_eq!(network.fallbacks[0].ed_identity, [9; 32]);
        std::fs::write(&path, format!("{good}state_dir = \"/x\"\n")).unwrap();
        let err = load_network(&path).unwrap_err().to_string();
        assert!(
            err.contains("net.toml:3: `state_dir`: unknown field"),
            "{err}"
        );
    }

    #[test]
    fn onion_options_are_checked_with_their_lines() {
        let err = errors(
            "[[tab]]\nname = \"a\"\nmode = \"chat\"\nintro_rate_per_second = 0\nauthorized_clients = [\"descriptor:x25519:nope\"]\n",
        );
        assert!(
            err.contains("test.toml:4: `intro_rate_per_second` must be 1 to"),
            "{err}"
        );
        assert!(
            err.contains("test.toml:5: `authorized_clients[0]` is not an x25519 public key"),
            "{err}"
        );
        let key = format!("descriptor:x25519:{}", "A".repeat(52));
        let err = errors(&format!(
            "[[tab]]\nname = \"a\"\nmode = \"chat\"\npublic = true\nauthorized_clients = [\"{key}\"]\n"
        ));
        assert!(
            err.contains("test.toml:5: `authorized_clients` on a public tab"),
            "{err}"
        );
        let config = parse(
            &format!("[[tab]]\nname = \"a\"\nmode = \"chat\"\nauthorized_clients = [\"{key}\", \"{}a\"]\n", "b".repeat(51)),
            "test.toml",
            &Registry::builtin(),
        )
        .unwrap();
        assert_eq!(config.tabs[0].onion.authorized_clients.len(), 2);
    }

    #[test]
    fn tab_names_must_differ_in_more_than_case() {
        let err = errors(
            "[[tab]]\nname = \"a\"\nmode = \"chat\"\n[[tab]]\nname = \"A\"\nmode = \"chat\"\n",
        );
        assert!(err.contains("test.toml:5: tab name \"A\" differs"), "{err}");
    }

    #[test]
    fn empty_config_is_refused() {
        assert!(errors("").contains("no tabs"));
    }
}
