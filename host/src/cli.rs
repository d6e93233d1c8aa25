//! The command line: what a user can ask `onionhost` to do.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Host anonymous, ephemeral chat rooms and file drops as Tor onion services.
#[derive(Debug, Parser)]
#[command(name = "onionhost", version, about, long_about = None)]
pub(crate) struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command accepts.
#[derive(Debug, Clone, Args)]
pub(crate) struct CommonArgs {
    /// Serve every tab on 127.0.0.1 without Tor (for development and tests only: visitors
    /// are not anonymous and nothing is reachable from other machines).
    #[arg(long, global = true)]
    pub(crate) local_only: bool,
    /// Use another Tor network than the public one: a TOML file with `authorities` and
    /// `fallbacks`, as in the config's `[tor]` section (it replaces those keys).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) tor_network: Option<PathBuf>,
    /// Publish the tabs through the tor already running on this system (Tails, Whonix, a
    /// tor service) instead of the embedded one: its control port (HOST:PORT, e.g.
    /// 127.0.0.1:9051) or control socket (a path, e.g. /run/tor/control). Same as
    /// `backend = "system"` and `control` in the config's `[tor]`.
    #[arg(
        long,
        global = true,
        value_name = "ADDR_OR_SOCKET_PATH",
        conflicts_with = "local_only"
    )]
    pub(crate) tor_control: Option<String>,
    /// Print plain lines even when stdout is a terminal, instead of the live view.
    #[arg(long, global = true)]
    pub(crate) plain: bool,
    /// Where this host's control socket listens, for `onionhost tabs` (default:
    /// $XDG_RUNTIME_DIR/onionhost/PID.sock, else a private folder under the temp folder).
    /// Not Tor's control port: that is --tor-control.
    #[arg(
        long,
        global = true,
        value_name = "SOCKET_PATH",
        conflicts_with = "no_control"
    )]
    pub(crate) control: Option<PathBuf>,
    /// Open no control socket: `onionhost tabs` cannot reach this host.
    #[arg(long, global = true)]
    pub(crate) no_control: bool,
}

/// What `onionhost tabs` does.
#[derive(Debug, Subcommand)]
pub(crate) enum TabsCommand {
    /// List the tabs: name, mode, state (and why), address.
    List {
        /// One JSON object per tab and line.
        #[arg(long)]
        json: bool,
    },
    /// Show a tab's address and, for a private tab, its client key.
    Show {
        /// The tab's name.
        name: String,
        /// Also as QR codes.
        #[arg(long)]
        qr: bool,
    },
    /// Stop a tab gracefully (transfers in flight finish); waits until it has stopped.
    Stop {
        /// The tab's name.
        name: String,
        /// Return once it is stopping.
        #[arg(long)]
        no_wait: bool,
    },
    /// Start a tab, checked as a `[[tab]]` of the config would be; waits until it serves
    /// (or fails, or waits for its --auto-start time). It lives until stopped or the host
    /// ends, and never changes the config file.
    Add(TabsAdd),
}

/// The options of `onionhost tabs add`: a `[[tab]]`'s keys.
#[derive(Debug, Args)]
pub(crate) struct TabsAdd {
    /// The mode (chat, share, receive, website, or a plugin's).
    #[arg(long)]
    pub(crate) mode: String,
    /// The tab's name (1 to 32 letters, digits, `-` or `_`), unused by the running tabs.
    #[arg(long)]
    pub(crate) name: String,
    /// share: the files and folders; receive: the folder for uploads; website: its folder.
    pub(crate) paths: Vec<PathBuf>,
    /// The shared library of a plugin's mode.
    #[arg(long, value_name = "LIBRARY")]
    pub(crate) plugin: Option<PathBuf>,
    /// With --local-only: the port to listen on (default: any free port).
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// Let anyone with the address in, without a client authorization key.
    #[arg(long)]
    pub(crate) public: bool,
    /// Keep the onion service's keys, so that the address survives a restart.
    #[arg(long)]
    pub(crate) persistent: bool,
    /// Print the address (and key) as QR codes on the host's console too.
    #[arg(long)]
    pub(crate) qr: bool,
    /// share: keep sharing after the first complete download.
    #[arg(long)]
    pub(crate) keep_sharing: bool,
    /// The title of the tab's pages.
    #[arg(long, value_name = "TEXT")]
    pub(crate) title: Option<String>,
    /// When to start serving, as `auto_start` in a `[[tab]]` (a time, or a delay like "10m").
    #[arg(long, value_name = "WHEN")]
    pub(crate) auto_start: Option<String>,
    /// When to stop, as `auto_stop` in a `[[tab]]`.
    #[arg(long, value_name = "WHEN")]
    pub(crate) auto_stop: Option<String>,
    /// Set any other key of the `[[tab]]`, written as in the config file (repeatable).
    ///
    /// The tab's own keys (e.g. `proof_of_work=false`, `intro_rate_per_second=10`,
    /// `authorized_clients=["descriptor:x25519:..."]`), or the mode's settings under the
    /// mode's name, as in `[tab.MODE]` (e.g. `receive.max_upload_size="1 GiB"`,
    /// `chat.rate_limit.messages_per_minute=30`, a plugin mode's keys alike). VALUE is read
    /// as TOML (a number, true or false, "quoted text", an [array] or {inline = "table"});
    /// anything else, dates and times too, is taken as the text written. The tab is checked
    /// as the config checks it, with the same messages; a key set twice (by two --set, or by
    /// --set and an option or the paths) is refused. Paths are used as written: give them
    /// absolute, the host's working folder is not yours.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = Setting::parse)]
    pub(crate) settings: Vec<Setting>,
    /// Return once the tab is starting, without waiting for it to serve.
    #[arg(long)]
    pub(crate) no_wait: bool,
}

/// One `--set KEY=VALUE` of `onionhost tabs add`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Setting {
    /// The key's path inside the `[[tab]]` (`receive.max_upload_size`: two parts).
    pub(crate) key: Vec<String>,
    /// The value.
    pub(crate) value: toml::Value,
}

impl Setting {
    /// Reads `KEY=VALUE`: KEY a dotted path of bare TOML keys, VALUE a TOML value, else the
    /// text as written (a TOML date or time is taken as text too: the config's times, such as
    /// `auto_start`, are strings).
    fn parse(written: &str) -> Result<Self, String> {
        let example = "e.g. `proof_of_work=false` or `receive.max_upload_size=\"1 GiB\"`";
        let Some((key, value)) = written.split_once('=') else {
            return Err(format!("write KEY=VALUE, {example}"));
        };
        let key = key.trim();
        let bare = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !key.split('.').all(bare) {
            return Err(format!(
                "{key:?} is not a key: write it as in a `[[tab]]` of the config, its parts (letters, digits, `_`, `-`) joined by `.`, {example}"
            ));
        }
        let value = match value.parse::<toml::Value>() {
            Ok(toml::Value::Datetime(_)) | Err(_) => toml::Value::String(value.to_owned()),
            Ok(value) => value,
        };
        Ok(Self {
            key: key.split('.').map(str::to_owned).collect(),
            value,
        })
    }
}

/// Options of the one-tab commands (`chat`, `share`, `receive`, `website`).
#[derive(Debug, Clone, Args)]
pub(crate) struct TabArgs {
    /// With --local-only: the port to listen on (default: any free port).
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// Let anyone with the address in, without a client authorization key.
    #[arg(long)]
    pub(crate) public: bool,
    /// Keep the onion service's keys, so that the address survives a restart.
    #[arg(long)]
    pub(crate) persistent: bool,
    /// Also print the address (and, for a private tab, the client key) as QR codes, for a
    /// phone to scan.
    #[arg(long)]
    pub(crate) qr: bool,
    /// Start serving this many seconds from now; the address is printed at once, but nothing
    /// is reachable (no onion service is published) until then.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) auto_start_timer: Option<u64>,
    /// Stop this many seconds after the tab starts serving (transfers in flight finish).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) auto_stop_timer: Option<u64>,
    /// The title of the tab's pages.
    #[arg(long, value_name = "TEXT")]
    pub(crate) title: Option<String>,
    /// Reach Tor only through this bridge (repeatable): a bridge line such as
    /// "obfs4 192.0.2.1:443 FINGERPRINT cert=... iat-mode=0", from bridges.torproject.org or
    /// Tor Browser. Its pluggable transport binary is looked up on PATH.
    #[arg(long, value_name = "LINE")]
    pub(crate) bridge: Vec<String>,
    /// The binary of a pluggable transport for --bridge, when it is not the one on PATH
    /// (repeatable): PROTOCOLS=PATH, e.g. "obfs4,meek_lite=/opt/lyrebird".
    #[arg(long, value_name = "PROTOCOLS=PATH")]
    pub(crate) tor_transport: Vec<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run every tab of a config file at once.
    Run {
        /// The TOML config file.
        #[arg(long, short)]
        config: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Start one anonymous chat room.
    Chat {
        #[command(flatten)]
        tab: TabArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Share files and folders for download.
    Share {
        /// The files and folders to share.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Keep sharing after the first complete download.
        #[arg(long)]
        keep_sharing: bool,
        #[command(flatten)]
        tab: TabArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Receive files and messages into a folder.
    Receive {
        /// Where uploads are saved (default: the receive mode's default folder).
        dir: Option<PathBuf>,
        #[command(flatten)]
        tab: TabArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Serve a static website from a folder (its index.html, or a listing of it).
    Website {
        /// The folder served as the site.
        dir: PathBuf,
        /// The Content-Security-Policy of every response, instead of the strict default
        /// (e.g. "default-src 'self'; style-src 'self' 'unsafe-inline'").
        #[arg(long, value_name = "POLICY", conflicts_with = "no_csp")]
        csp: Option<String>,
        /// Send no Content-Security-Policy at all: the site's scripts may then load anything,
        /// from anywhere (a warning is printed when the tab starts).
        #[arg(long)]
        no_csp: bool,
        #[command(flatten)]
        tab: TabArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// List, show, add or stop the tabs of a running host, through its control socket.
    Tabs {
        /// The host's control socket: needed when several hosts run, or when the host was
        /// started with --control.
        #[arg(long, global = true, value_name = "SOCKET_PATH")]
        control: Option<PathBuf>,
        #[command(subcommand)]
        command: TabsCommand,
    },
    /// Check a config file and report every error, without starting anything.
    Check {
        /// The TOML config file.
        #[arg(long, short)]
        config: PathBuf,
    },
}

impl Command {
    /// The options every command that runs tabs has (`check` and `tabs` run none).
    pub(crate) fn common(&self) -> Option<&CommonArgs> {
        match self {
            Self::Run { common, .. }
            | Self::Chat { common, .. }
            | Self::Share { common, .. }
            | Self::Receive { common, .. }
            | Self::Website { common, .. } => Some(common),
            Self::Check { .. } | Self::Tabs { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn set(written: &str) -> Setting {
        Setting::parse(written).unwrap()
    }

    #[test]
    fn a_setting_is_a_dotted_key_and_a_toml_value_or_text() {
        let limit = set("receive.max_upload_size=1 GiB");
        assert_eq!(limit.key, ["receive", "max_upload_size"]);
        assert_eq!(limit.value, toml::Value::String("1 GiB".into()));
        assert_eq!(
            set("proof_of_work=false").value,
            toml::Value::Boolean(false)
        );
        assert_eq!(set("chat.max_members=10").value, toml::Value::Integer(10));
        assert_eq!(
            set(r#"title="true""#).value,
            toml::Value::String("true".into())
        );
        assert_eq!(set("title=a=b").value, toml::Value::String("a=b".into()));
        assert_eq!(set("title=").value, toml::Value::String(String::new()));
        let list = set(r#"authorized_clients=["a", "b"]"#).value;
        assert_eq!(list.as_array().map(Vec::len), Some(2));
        assert!(set("x={a = 1}").value.is_table());
        // A time as the config writes it stays the text written.
        assert_eq!(
            set("auto_start=2026-12-24 18:00").value,
            toml::Value::String("2026-12-24 18:00".into())
        );
        // Not a whole TOML document: a second line is text, not another key.
        assert_eq!(
            set("title=1\nport = 2").value,
            toml::Value::String("1\nport = 2".into())
        );
    }

    #[test]
    fn a_setting_without_a_key_is_refused() {
        for bad in ["title", "=1", "a..b=1", ".a=1", "a b=1", "\"a\"=1"] {
            let err = Setting::parse(bad).unwrap_err();
            assert!(
                err.contains("KEY=VALUE") || err.contains("is not a key"),
                "{bad}: {err}"
            );
        }
    }
}
