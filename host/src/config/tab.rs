//! The keys of a `[[tab]]` that the host itself reads: its name, mode, plugin, port and onion
//! service options. The mode's own section is checked by the mode (through
//! [`SectionCheck`]), never read here.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::SystemTime;

use serde::Deserialize;
use tor_hscrypto::pk::HsClientDescEncKey;

use super::SectionCheck;
use super::locate::{self, KeyPath};
use super::timer::{self, StopAt, TabTimers, When};

/// One checked tab of the config.
#[derive(Debug, Clone)]
pub(crate) struct TabConfig {
    /// The tab's name: unique, `[A-Za-z0-9_-]{1,32}`.
    pub(crate) name: String,
    /// The mode's name.
    pub(crate) mode: String,
    /// For a mode loaded from a shared library: the library's path, already resolved against
    /// the config file's folder.
    pub(crate) plugin: Option<PathBuf>,
    /// With `--local-only`: the port to listen on; `None` picks a free one.
    pub(crate) port: Option<u16>,
    /// Onion service options of this tab.
    pub(crate) onion: OnionTabOptions,
    /// The mode's own section, as the mode will parse it.
    pub(crate) section: toml::Value,
    /// When the tab starts serving and when it stops (`auto_start`, `auto_stop`).
    pub(crate) timers: TabTimers,
    /// Print the tab's address (and client key) as QR codes on the console too.
    pub(crate) qr: bool,
}

/// How a tab's onion service is published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OnionTabOptions {
    /// No client authorization: anyone with the address can connect.
    pub(crate) public: bool,
    /// Keep the service's keys on disk so that its address survives restarts.
    pub(crate) persistent: bool,
    /// Extra clients allowed in.
    pub(crate) authorized_clients: Vec<ClientKey>,
    /// Ask visitors' Tor clients for proof of work when the service is under load.
    /// Defaults to on for public tabs.
    pub(crate) proof_of_work: Option<bool>,
    /// Limit on introduction requests per second at each introduction point.
    pub(crate) intro_rate_per_second: Option<u32>,
}

/// A client authorization public key (x25519), parsed once, when the config is read.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ClientKey(HsClientDescEncKey);

impl ClientKey {
    /// How a key must be written, for error messages.
    pub(crate) const FORMAT: &str = "`descriptor:x25519:<52 base32 characters>` or the bare key";

    /// A key as people write it: `descriptor:x25519:<base32>`, or the bare base32 key.
    pub(crate) fn parse(written: &str) -> Option<Self> {
        let written = written.trim();
        let key = if written.contains(':') {
            HsClientDescEncKey::from_str(written)
        } else {
            HsClientDescEncKey::from_str(&format!("descriptor:x25519:{written}"))
        };
        key.ok().map(Self)
    }

    /// The key, for the onion service's list of allowed clients.
    pub(crate) fn key(&self) -> &HsClientDescEncKey {
        &self.0
    }
}

impl fmt::Debug for ClientKey {
    /// Keys are never logged, not even public ones: they tell who may visit a tab.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientKey(..)")
    }
}

/// The longest tab name: it becomes the onion service's nickname.
const MAX_NAME_LEN: usize = 32;

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
    "auto_start",
    "auto_stop",
    "qr",
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
    #[serde(default)]
    auto_start: Option<String>,
    #[serde(default)]
    auto_stop: Option<String>,
    #[serde(default)]
    qr: bool,
}

/// Whether `name` may name a tab: 1 to 32 ASCII letters, digits, `-` or `_`.
pub(crate) fn valid_tab_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Checks the tabs of one config, one after the other (names and ports must differ).
pub(super) struct Tabs<'a> {
    names: HashSet<String>,
    lowercase_names: HashSet<String>,
    ports: HashSet<u16>,
    /// The config file's folder: relative plugin paths are relative to it.
    base: Option<&'a Path>,
    sections: &'a dyn SectionCheck,
}

impl<'a> Tabs<'a> {
    pub(super) fn new(base: Option<&'a Path>, sections: &'a dyn SectionCheck) -> Self {
        Self {
            names: HashSet::new(),
            lowercase_names: HashSet::new(),
            ports: HashSet::new(),
            base,
            sections,
        }
    }

    /// Checks one `[[tab]]`; each problem goes to `error` with its key inside the tab. The tab
    /// is returned when its own keys could be read, so that later tabs are checked against it.
    pub(super) fn check(
        &mut self,
        table: toml::Table,
        error: &mut dyn FnMut(KeyPath, String),
    ) -> Option<TabConfig> {
        let key = |parts: &[&str]| -> KeyPath { parts.iter().map(|p| (*p).to_owned()).collect() };
        let Some(mode) = table
            .get("mode")
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
        else {
            error(Vec::new(), "this tab has no `mode`: add e.g. `mode = \"chat\"` (chat, share, receive, or a plugin's mode)".into());
            return None;
        };
        let mut host_keys = toml::Table::new();
        let mut section = None;
        for (name, value) in table {
            if name == mode {
                section = Some(value);
            } else if HOST_TAB_KEYS.contains(&name.as_str()) {
                host_keys.insert(name, value);
            } else {
                error(
                    key(&[&name]),
                    format!(
                        "unknown key `{name}` in a `{mode}` tab: the tab's keys are {}, and the mode's own settings go in `[tab.{mode}]`",
                        HOST_TAB_KEYS.join(", ")
                    ),
                );
            }
        }
        let raw: RawTab = match locate::deserialize(toml::Value::Table(host_keys)) {
            Ok(raw) => raw,
            Err((path, message)) => {
                error(path, message);
                return None;
            }
        };
        if !valid_tab_name(&raw.name) {
            error(
                key(&["name"]),
                format!(
                    "tab name {:?} is not allowed: use 1 to {MAX_NAME_LEN} letters, digits, `-` or `_`",
                    raw.name
                ),
            );
        } else if !self.names.insert(raw.name.clone()) {
            error(
                key(&["name"]),
                format!(
                    "two tabs are named {:?}: give each tab its own name",
                    raw.name
                ),
            );
        } else if !self.lowercase_names.insert(raw.name.to_ascii_lowercase()) {
            // Each tab's onion service is named after the tab, and those names are lowercase.
            error(
                key(&["name"]),
                format!(
                    "tab name {:?} differs from another tab's only in upper/lower case: give each tab its own name",
                    raw.name
                ),
            );
        }
        if let Some(rate) = raw.intro_rate_per_second
            && !(1..=MAX_INTRO_RATE).contains(&rate)
        {
            error(
                key(&["intro_rate_per_second"]),
                format!(
                    "`intro_rate_per_second` must be 1 to {MAX_INTRO_RATE}: leave it out for the default"
                ),
            );
        }
        if raw.public && !raw.authorized_clients.is_empty() {
            error(
                key(&["authorized_clients"]),
                "`authorized_clients` on a public tab: a public tab lets everyone in; remove `authorized_clients` or set `public = false`".into(),
            );
        }
        if raw.authorized_clients.len() > MAX_AUTHORIZED_CLIENTS {
            error(
                key(&["authorized_clients"]),
                format!(
                    "more than {MAX_AUTHORIZED_CLIENTS} `authorized_clients`: the onion service descriptor cannot hold more keys"
                ),
            );
        }
        let mut authorized_clients = Vec::new();
        for (i, written) in raw.authorized_clients.iter().enumerate() {
            match ClientKey::parse(written) {
                Some(client) => authorized_clients.push(client),
                // The key is not echoed: a user who pasted a private key by mistake should not
                // find it in a terminal's scrollback.
                None => error(
                    vec!["authorized_clients".into(), i.to_string()],
                    format!(
                        "`authorized_clients[{i}]` is not an x25519 public key: write {}",
                        ClientKey::FORMAT
                    ),
                ),
            }
        }
        if let Some(port) = raw.port {
            if port == 0 {
                error(
                    key(&["port"]),
                    "port 0 is not allowed: leave `port` out to pick a free port".into(),
                );
            } else if !self.ports.insert(port) {
                error(
                    key(&["port"]),
                    format!("two tabs use port {port}: give each tab its own port"),
                );
            }
        }
        let timers = check_timers(
            raw.auto_start.as_deref(),
            raw.auto_stop.as_deref(),
            &mut |at, message| error(key(&[at]), message),
        );
        let section = section.unwrap_or_else(|| toml::Value::Table(toml::Table::new()));
        if !section.is_table() {
            error(
                key(&[&mode]),
                format!("`{mode}` must be a table: write its settings under `[tab.{mode}]`"),
            );
            return None;
        }
        let plugin = raw.plugin.map(|path| match self.base {
            Some(base) if path.is_relative() => base.join(path),
            _ => path,
        });
        if let Err(problem) = self.sections.check(&mode, plugin.as_deref(), &section) {
            match problem {
                super::SectionProblem::UnknownMode(message) => error(key(&["mode"]), message),
                super::SectionProblem::Section(err) => {
                    let mut path = vec![mode.clone()];
                    path.extend(err.key);
                    let shown = locate::shown(&path);
                    error(
                        path,
                        format!("tab {:?}, `{shown}`: {}", raw.name, err.message),
                    );
                }
            }
        }
        Some(TabConfig {
            name: raw.name,
            mode: raw.mode,
            plugin,
            port: raw.port,
            onion: OnionTabOptions {
                public: raw.public,
                persistent: raw.persistent,
                authorized_clients,
                proof_of_work: raw.proof_of_work,
                intro_rate_per_second: raw.intro_rate_per_second,
            },
            section,
            timers,
            qr: raw.qr,
        })
    }
}

/// Reads `auto_start` and `auto_stop`; each problem goes to `error` with its key.
fn check_timers(
    start: Option<&str>,
    stop: Option<&str>,
    error: &mut dyn FnMut(&str, String),
) -> TabTimers {
    let now = SystemTime::now();
    let mut timers = TabTimers::default();
    if let Some(written) = start {
        match timer::parse(written, now) {
            Ok(When::At(at)) => timers.start = Some(at),
            Ok(When::After(delay)) => timers.start = Some(now + delay),
            Err(message) => error("auto_start", format!("`auto_start`: {message}")),
        }
    }
    if let Some(written) = stop {
        match timer::parse(written, now) {
            Ok(When::After(delay)) => timers.stop = Some(StopAt::After(delay)),
            Ok(When::At(at)) => {
                if let Some(start) = timers.start
                    && at <= start
                {
                    error(
                        "auto_stop",
                        format!(
                            "`auto_stop` ({}) is not after `auto_start` ({}): give a later time, or a delay from the start such as \"2h\"",
                            timer::show(at),
                            timer::show(start)
                        ),
                    );
                } else {
                    timers.stop = Some(StopAt::At(at));
                }
            }
            Err(message) => error("auto_stop", format!("`auto_stop`: {message}")),
        }
    }
    timers
}
