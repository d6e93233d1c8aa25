//! The config file: TOML in, a checked and immutable [`HostConfig`] out.
//!
//! The host owns the keys of `[[tab]]` (`tab.rs`: name, mode, plugin, port, onion service
//! options) and of `[tor]` (`tor.rs`); each mode owns its section `[tab.<mode>]`, which is
//! handed to the mode catalog to check ([`SectionCheck`]), so that this module imports nothing
//! else from the host and loads nothing. `locate.rs` finds the line of every key. Every error
//! names the file, the line and the key, and all of them are reported at once.

use std::fmt;
use std::path::Path;

use onionhost_sdk::ConfigError;
use serde::Deserialize;

mod bridges;
mod locate;
mod tab;
mod timer;
mod tor;

pub(crate) use bridges::Bridges;
use bridges::Search;
#[cfg(test)]
pub(crate) use bridges::{BridgeLine, Transport};

#[cfg(test)]
pub(crate) use tab::ClientKey;
pub(crate) use tab::{OnionTabOptions, TabConfig};
pub(crate) use timer::{TabTimers, show as show_time, show_stop};
#[cfg(test)]
pub(crate) use tor::{Authority, DEFAULT_BOOTSTRAP_TIMEOUT, Fallback};
pub(crate) use tor::{
    Backend, ControlAddr, ControlPassword, SystemTor, TorConfig, TorNetwork, with_tor_control,
};

/// The whole checked config.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostConfig {
    /// The tabs, in file order.
    pub(crate) tabs: Vec<TabConfig>,
    /// The `[tor]` section.
    pub(crate) tor: TorConfig,
}

/// What reading a config needs from the modes: a check of each tab's own section.
///
/// The mode catalog (`modes::Registry`) implements it; the trait lives here so that the
/// config depends on no other part of the host.
pub(crate) trait SectionCheck {
    /// Checks the section of a tab of mode `mode`, loaded from the library `plugin` (a path
    /// already resolved against the config file's folder) if it has one.
    fn check(
        &self,
        mode: &str,
        plugin: Option<&Path>,
        section: &toml::Value,
    ) -> Result<(), SectionProblem>;
}

/// Why a tab's section is refused.
#[derive(Debug)]
pub(crate) enum SectionProblem {
    /// No mode of that name: the message says which there are.
    UnknownMode(String),
    /// The mode refused its section.
    Section(ConfigError),
}

/// Everything wrong with a config file.
#[derive(Debug)]
pub(crate) struct ConfigErrors {
    file: String,
    errors: Vec<(Option<usize>, String)>,
}

impl ConfigErrors {
    fn new(file: &Path, errors: Vec<(Option<usize>, String)>) -> Self {
        Self {
            file: file.display().to_string(),
            errors,
        }
    }

    /// The errors, each with its line if it has one (tests check that every one has).
    #[cfg(test)]
    fn lines(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.errors.iter().map(|(line, _)| *line)
    }
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

/// The top level of a config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    tor: toml::Table,
    #[serde(default)]
    tab: Vec<toml::Table>,
}

/// Reads and checks a config file.
pub(crate) fn load(path: &Path, sections: &dyn SectionCheck) -> Result<HostConfig, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        ConfigErrors::new(
            path,
            vec![(None, format!("cannot read the config file: {err}"))],
        )
    })?;
    parse(&text, path, sections)
}

/// Checks the text of the config file at `file`: `file` names it in messages, and relative
/// paths in it (plugins, `[tor]` directories) are relative to its folder.
pub(crate) fn parse(
    text: &str,
    file: &Path,
    sections: &dyn SectionCheck,
) -> Result<HostConfig, ConfigErrors> {
    let raw: RawConfig = toml::from_str(text).map_err(|err| {
        let line = err.span().map(|span| locate::line_of(text, span.start));
        ConfigErrors::new(file, vec![(line, err.message().trim_end().to_owned())])
    })?;
    let base = file.parent().filter(|dir| !dir.as_os_str().is_empty());
    let lines = locate::Lines::new(text);
    let mut errors = Vec::new();
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let mut tor = match tor::check_tor(raw.tor, &Search::new(&path_var, base)) {
        Ok(tor) => tor,
        Err(problems) => {
            for (path, message) in problems {
                let path: Vec<String> = std::iter::once("tor".to_owned()).chain(path).collect();
                errors.push((lines.line(&path), format!("[tor] {message}")));
            }
            TorConfig::default()
        }
    };
    // Relative directories in `[tor]` are relative to the config file, not to wherever the
    // host happens to be started.
    if let Some(base) = base {
        for dir in [&mut tor.state_dir, &mut tor.cache_dir, &mut tor.keys_dir] {
            if let Some(relative) = dir.as_mut().filter(|d| d.is_relative()) {
                *relative = base.join(&*relative);
            }
        }
        if let Backend::System(SystemTor {
            control: ControlAddr::Unix(path),
            ..
        }) = &mut tor.backend
            && path.is_relative()
        {
            *path = base.join(&*path);
        }
    }
    if raw.tab.is_empty() {
        errors.push((
            None,
            "no tabs: add at least one `[[tab]]` table with `name` and `mode`".to_owned(),
        ));
    }
    let mut checker = tab::Tabs::new(base, sections);
    let mut tabs = Vec::new();
    for (index, table) in raw.tab.into_iter().enumerate() {
        let mut error = |key: Vec<String>, message: String| {
            let path: Vec<String> = ["tab".to_owned(), index.to_string()]
                .into_iter()
                .chain(key)
                .collect();
            errors.push((lines.line(&path), message));
        };
        let before = tabs.len();
        tabs.extend(checker.check(table, &mut error));
        if let Some(tab) = tabs.get(before) {
            check_for_backend(tab, &tor.backend, &mut error);
        }
    }
    if errors.is_empty() {
        Ok(HostConfig { tabs, tor })
    } else {
        Err(ConfigErrors::new(file, errors))
    }
}

/// What a tab cannot ask of `backend`; each problem goes to `error` with its key.
fn check_for_backend(
    tab: &TabConfig,
    backend: &Backend,
    error: &mut dyn FnMut(Vec<String>, String),
) {
    // ADD_ONION has no keyword for the introduction rate limit (C tor's
    // `HiddenServiceEnableIntroDoSDefense` is a torrc option), and a defence asked for must
    // not be silently absent.
    if matches!(backend, Backend::System(_)) && tab.onion.intro_rate_per_second.is_some() {
        error(
            vec!["intro_rate_per_second".to_owned()],
            "`intro_rate_per_second` cannot be set with `backend = \"system\"`: tor's control port cannot set an introduction rate limit for one onion service; remove it here (`proof_of_work` works)".to_owned(),
        );
    }
}

/// Checks a tab added at run time (`onionhost tabs add`, the live view): `table` holds what a
/// `[[tab]]` of the config would, and gets the same checks and the same messages (without a
/// file and line: it has none), for a host whose Tor is `backend`. Its paths (`plugin`, the
/// mode's) must be absolute: the host's working folder is not the caller's. Whether its name
/// is free is the supervisor's to say, which knows the running tabs.
pub(crate) fn check_added_tab(
    table: toml::Table,
    sections: &dyn SectionCheck,
    backend: &Backend,
) -> Result<TabConfig, Vec<String>> {
    let mut errors = Vec::new();
    let mut error = |_key: Vec<String>, message: String| errors.push(message);
    let tab = tab::Tabs::new(None, sections).check(table, &mut error);
    if let Some(tab) = &tab {
        check_for_backend(tab, backend, &mut error);
        if tab.plugin.as_deref().is_some_and(Path::is_relative) {
            error(
                vec!["plugin".to_owned()],
                "`plugin` must be an absolute path for a tab added at run time".to_owned(),
            );
        }
    }
    match tab {
        Some(tab) if errors.is_empty() => Ok(tab),
        _ => Err(errors),
    }
}

/// Checks the `--bridge` and `--tor-transport` options of a one-tab command; pluggable
/// transport binaries are looked up on `PATH`.
pub(crate) fn command_line_bridges(
    lines: &[String],
    transports: &[String],
) -> Result<Option<Bridges>, anyhow::Error> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    bridges::from_command_line(lines, transports, &Search::new(&path_var, None))
        .map_err(|errors| anyhow::anyhow!("{}", errors.join("\n")))
}

/// Reads a `--tor-network` file: `authorities` and `fallbacks`, as in `[tor]`.
pub(crate) fn load_network(path: &Path) -> Result<TorNetwork, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        ConfigErrors::new(
            path,
            vec![(None, format!("cannot read the Tor network file: {err}"))],
        )
    })?;
    tor::parse_network(&text).map_err(|errors| ConfigErrors::new(path, errors))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    /// The catalog, as the config sees it: one mode, `chat`, whose section may hold `title`.
    struct Modes;

    impl SectionCheck for Modes {
        fn check(
            &self,
            mode: &str,
            plugin: Option<&Path>,
            section: &toml::Value,
        ) -> Result<(), SectionProblem> {
            if plugin.is_some() {
                return Ok(());
            }
            if mode != "chat" {
                return Err(SectionProblem::UnknownMode(format!(
                    "unknown mode {mode:?}: the built-in modes are chat"
                )));
            }
            match section
                .as_table()
                .and_then(|t| t.keys().find(|k| *k != "title"))
            {
                Some(key) => Err(SectionProblem::Section(ConfigError::at(
                    key,
                    format!("unknown field `{key}`"),
                ))),
                None => Ok(()),
            }
        }
    }

    fn errors(text: &str) -> String {
        parse(text, Path::new("test.toml"), &Modes)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn two_tabs_of_one_mode_parse() {
        let config = parse(
            "[[tab]]\nname = \"a\"\nmode = \"chat\"\n[[tab]]\nname = \"b\"\nmode = \"chat\"\nport = 9000\n",
            Path::new("test.toml"),
            &Modes,
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
        let config = parse(&text, Path::new("test.toml"), &Modes).unwrap();
        assert_eq!(config.tor.state_dir, Some(PathBuf::from("/var/lib/x")));
        assert_eq!(config.tor.bootstrap_timeout, Duration::from_secs(90));
        let network = config.tor.network.unwrap();
        assert_eq!(network.authorities[0].v3ident, [0xab; 20]);
        assert_eq!(network.fallbacks[0].ed_identity, [7; 32]);
        assert_eq!(network.fallbacks[0].orport.port(), 5000);
    }

    #[test]
    fn no_tor_section_means_the_public_network() {
        let config = parse(TAB, Path::new("test.toml"), &Modes).unwrap();
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
    fn bridge_problems_name_their_lines_and_keys() {
        let text = format!(
            "{TAB}[tor]\nuse_bridges = false\nbridges = [\n  \"198.51.100.7:9001 7DD62766BF2052432051D7B7E08A22F7E34A4543\",\n  \"obfs4 192.0.2.1:443\",\n]\ntransports = [\n  {{ protocols = [\"obfs4\"], path = \"/nonexistent/lyrebird\" }},\n  {{ protocols = [\"obfs4\"], colour = 1 }},\n]\n"
        );
        // A serde error stops the section's check before the bridges are looked at.
        let err = errors(&text);
        assert!(
            err.starts_with("test.toml:12: [tor] `transports[1].colour`: unknown field"),
            "{err}"
        );
        let err = errors(&text.replace(", colour = 1", ""));
        for expected in [
            "test.toml:5: [tor] `use_bridges`: `use_bridges = false`, but `bridges` lists bridges",
            "test.toml:8: [tor] `bridges[1]`: not a bridge line: ",
            "test.toml:11: [tor] `transports[0].path`: cannot use `/nonexistent/lyrebird`",
        ] {
            assert!(err.contains(expected), "{expected}\n{err}");
        }
    }

    #[test]
    fn the_system_backend_parses_with_a_port_a_socket_or_the_default() {
        let parse_tor = |tor: &str| {
            parse(
                &format!("[tor]\n{tor}\n{TAB}"),
                Path::new("/etc/onionhost/test.toml"),
                &Modes,
            )
            .unwrap()
            .tor
            .backend
        };
        let system = |control: ControlAddr| {
            Backend::System(SystemTor {
                control,
                password: None,
            })
        };
        assert_eq!(parse_tor(""), Backend::Arti);
        assert_eq!(parse_tor("backend = \"arti\""), Backend::Arti);
        assert_eq!(
            parse_tor("backend = \"system\""),
            system(ControlAddr::Tcp("127.0.0.1:9051".parse().unwrap()))
        );
        assert_eq!(
            parse_tor("backend = \"system\"\ncontrol = \"localhost:9151\""),
            system(ControlAddr::Tcp("127.0.0.1:9151".parse().unwrap()))
        );
        assert_eq!(
            parse_tor("backend = \"system\"\ncontrol = \"unix:/run/tor/control\""),
            system(ControlAddr::Unix("/run/tor/control".into()))
        );
        // A relative socket path is relative to the config file.
        assert_eq!(
            parse_tor("backend = \"system\"\ncontrol = \"./tor/control\""),
            system(ControlAddr::Unix("/etc/onionhost/./tor/control".into()))
        );
        let Backend::System(with_password) =
            parse_tor("backend = \"system\"\ncontrol_password = \"hunter2\"")
        else {
            panic!("not the system backend");
        };
        assert_eq!(
            with_password.password.as_ref().map(ControlPassword::expose),
            Some("hunter2")
        );
        assert!(
            !format!("{with_password:?}").contains("hunter2"),
            "Debug shows no password"
        );
    }

    #[test]
    fn system_backend_problems_name_their_lines_and_keys() {
        let err = errors(&format!(
            "{TAB}[tor]\nbackend = \"systemd\"\ncontrol = \"/run/tor/control\"\n"
        ));
        assert!(
            err.contains("test.toml:5: [tor] `backend` = \"systemd\" is not a Tor backend"),
            "{err}"
        );
        let err = errors(&format!("{TAB}[tor]\ncontrol = \"/run/tor/control\"\n"));
        assert!(
            err.contains("test.toml:5: [tor] `control` is for the system's tor"),
            "{err}"
        );
        let err = errors(&format!(
            "{TAB}[tor]\nbackend = \"system\"\ncontrol = \"tor:9051\"\nstate_dir = \"/x\"\nbridges = [\"198.51.100.7:9001 7DD62766BF2052432051D7B7E08A22F7E34A4543\"]\n"
        ));
        for expected in [
            "test.toml:6: [tor] `control` = \"tor:9051\" is neither HOST:PORT",
            "test.toml:7: [tor] `state_dir` is for the embedded Arti",
            "test.toml:8: [tor] `bridges` is for the embedded Arti, not `backend = \"system\"`: configure bridges in the system tor's torrc",
        ] {
            assert!(err.contains(expected), "{expected}\n{err}");
        }
        let err = errors(&format!(
            "[tor]\nbackend = \"system\"\n{TAB}intro_rate_per_second = 10\n"
        ));
        assert!(
            err.contains(
                "test.toml:6: `intro_rate_per_second` cannot be set with `backend = \"system\"`"
            ),
            "{err}"
        );
    }

    #[test]
    fn tor_control_on_the_command_line_selects_the_system_tor() {
        let mut tor = TorConfig::default();
        with_tor_control(&mut tor, "/run/tor/control", false).unwrap();
        assert_eq!(
            tor.backend,
            Backend::System(SystemTor {
                control: ControlAddr::Unix("/run/tor/control".into()),
                password: None,
            })
        );
        let err = with_tor_control(&mut TorConfig::default(), "nowhere", false).unwrap_err();
        assert!(
            err.starts_with("--tor-control: `control` = \"nowhere\""),
            "{err}"
        );
        let err = with_tor_control(&mut TorConfig::default(), "127.0.0.1:9051", true).unwrap_err();
        assert!(err.contains("--tor-network"), "{err}");
        let mut bridged = TorConfig {
            bridges: command_line_bridges(
                &["198.51.100.7:9001 7DD62766BF2052432051D7B7E08A22F7E34A4543".to_owned()],
                &[],
            )
            .unwrap(),
            ..TorConfig::default()
        };
        let err = with_tor_control(&mut bridged, "127.0.0.1:9051", false).unwrap_err();
        assert!(err.contains("torrc"), "{err}");
    }

    #[test]
    fn a_direct_bridge_needs_no_transport() {
        let config = parse(
            &format!("{TAB}[tor]\nbridges = [\"198.51.100.7:9001 7DD62766BF2052432051D7B7E08A22F7E34A4543\"]\n"),
            Path::new("test.toml"),
            &Modes,
        )
        .unwrap();
        let bridges = config.tor.bridges.unwrap();
        assert_eq!(bridges.lines.len(), 1);
        assert!(bridges.transports.is_empty());
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
            Path::new("test.toml"),
            &Modes,
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
    fn relative_plugin_paths_are_relative_to_the_config_file() {
        let text = "[[tab]]\nname = \"a\"\nmode = \"x\"\nplugin = \"plugins/libx.so\"\n\
                    [[tab]]\nname = \"b\"\nmode = \"x\"\nplugin = \"/opt/libx.so\"\n";
        let config = parse(text, Path::new("/etc/onionhost/hosts.toml"), &Modes).unwrap();
        assert_eq!(
            config.tabs[0].plugin.as_deref(),
            Some(Path::new("/etc/onionhost/plugins/libx.so"))
        );
        assert_eq!(
            config.tabs[1].plugin.as_deref(),
            Some(Path::new("/opt/libx.so"))
        );
        let config = parse(text, Path::new("hosts.toml"), &Modes).unwrap();
        assert_eq!(
            config.tabs[0].plugin.as_deref(),
            Some(Path::new("plugins/libx.so"))
        );
    }

    #[test]
    fn an_added_tab_gets_the_checks_and_messages_of_a_config_tab() {
        let table = |text: &str| -> toml::Table { toml::from_str(text).unwrap() };
        let tab = check_added_tab(
            table("name = \"a\"\nmode = \"chat\"\npublic = true\n[chat]\ntitle = \"x\"\n"),
            &Modes,
            &Backend::Arti,
        )
        .unwrap();
        assert!(tab.onion.public);
        assert_eq!(tab.section.get("title").unwrap().as_str(), Some("x"));
        let err = check_added_tab(
            table("name = \"a b\"\nmode = \"chat\"\nport = 0\n[chat]\ncolour = 1\n"),
            &Modes,
            &Backend::Arti,
        )
        .unwrap_err();
        assert_eq!(err.len(), 3, "{err:?}");
        assert!(
            err[0].starts_with("tab name \"a b\" is not allowed"),
            "{err:?}"
        );
        assert!(err[1].starts_with("port 0 is not allowed"), "{err:?}");
        assert!(err[2].contains("`chat.colour`: unknown field"), "{err:?}");
        let err = check_added_tab(
            table("name = \"a\"\nmode = \"teleport\"\n"),
            &Modes,
            &Backend::Arti,
        )
        .unwrap_err();
        assert!(err[0].starts_with("unknown mode \"teleport\""), "{err:?}");
        let err = check_added_tab(
            table("name = \"a\"\nmode = \"x\"\nplugin = \"libx.so\"\n"),
            &Modes,
            &Backend::Arti,
        )
        .unwrap_err();
        assert!(err[0].contains("absolute path"), "{err:?}");
    }

    #[test]
    fn empty_config_is_refused() {
        assert!(errors("").contains("no tabs"));
    }

    #[test]
    fn a_bad_client_key_is_refused_without_echoing_it() {
        let err = errors(
            "[[tab]]\nname = \"a\"\nmode = \"chat\"\nauthorized_clients = [\n  \"descriptor:x25519:SECRETISH\",\n  \"descriptor:ed25519:AAAA\",\n]\n",
        );
        assert!(
            err.contains("test.toml:5: `authorized_clients[0]` is not an x25519 public key"),
            "{err}"
        );
        assert!(
            err.contains("test.toml:6: `authorized_clients[1]` is not an x25519 public key"),
            "{err}"
        );
        assert!(!err.contains("SECRETISH"), "{err}");
        assert!(ClientKey::parse("descriptor:ed25519:AAAA").is_none());
    }

    /// The config parser sees text a user may have pasted from anywhere: whatever a value
    /// holds, parsing never panics, and every error it reports about a tab's keys or `[tor]`
    /// carries a line.
    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// `text` as a TOML basic string, escaped so that the document stays valid TOML.
        fn quoted(text: &str) -> String {
            toml::Value::String(text.to_owned()).to_string()
        }

        fn all_errors_have_lines(text: &str) -> Result<(), TestCaseError> {
            if let Err(errors) = parse(text, Path::new("p.toml"), &Modes) {
                for line in errors.lines() {
                    prop_assert!(line.is_some(), "an error without a line: {errors}");
                }
            }
            Ok(())
        }

        proptest! {
            #[test]
            fn durations_never_panic_and_errors_have_lines(value in any::<String>()) {
                all_errors_have_lines(&format!(
                    "[tor]\nbootstrap_timeout = {}\n[[tab]]\nname = \"a\"\nmode = \"chat\"\n",
                    quoted(&value)
                ))?;
            }

            #[test]
            fn duration_like_text_never_panics(value in "[0-9 ]{0,30}(ns|us|ms|s|min|h|d|w|M|y|years)?") {
                all_errors_have_lines(&format!(
                    "[tor]\nbootstrap_timeout = {}\n[[tab]]\nname = \"a\"\nmode = \"chat\"\n",
                    quoted(&value)
                ))?;
            }

            #[test]
            fn tab_names_never_panic_and_errors_have_lines(name in any::<String>()) {
                let text = format!("[[tab]]\nname = {}\nmode = \"chat\"\n", quoted(&name));
                match parse(&text, Path::new("p.toml"), &Modes) {
                    Ok(config) => prop_assert!(tab::valid_tab_name(&config.tabs[0].name)),
                    Err(errors) => {
                        prop_assert!(!tab::valid_tab_name(&name));
                        prop_assert!(errors.lines().all(|line| line == Some(2)), "{errors}");
                    }
                }
            }

            #[test]
            fn client_keys_never_panic_and_errors_have_lines(
                key in prop_oneof![
                    any::<String>(),
                    "(descriptor:x25519:)?[A-Za-z2-7=:]{0,60}",
                ],
            ) {
                let text = format!(
                    "[[tab]]\nname = \"a\"\nmode = \"chat\"\nauthorized_clients = [{}]\n",
                    quoted(&key)
                );
                match parse(&text, Path::new("p.toml"), &Modes) {
                    Ok(config) => prop_assert_eq!(config.tabs[0].onion.authorized_clients.len(), 1),
                    Err(errors) => {
                        prop_assert!(ClientKey::parse(&key).is_none());
                        prop_assert!(errors.lines().all(|line| line == Some(4)), "{errors}");
                    }
                }
            }

            #[test]
            fn any_value_of_a_host_key_never_panics(
                key in prop::sample::select(vec![
                    "name", "mode", "plugin", "port", "public", "persistent",
                    "authorized_clients", "proof_of_work", "intro_rate_per_second",
                ]),
                value in prop_oneof![
                    any::<i64>().prop_map(|n| n.to_string()),
                    any::<String>().prop_map(|s| quoted(&s)),
                    any::<bool>().prop_map(|b| b.to_string()),
                    Just("[1, \"x\", { a = 1 }]".to_owned()),
                    Just("{ deep = { er = [] } }".to_owned()),
                ],
            ) {
                let mut lines = vec!["[[tab]]".to_owned()];
                if key != "name" { lines.push("name = \"a\"".into()); }
                if key != "mode" { lines.push("mode = \"chat\"".into()); }
                lines.push(format!("{key} = {value}"));
                all_errors_have_lines(&lines.join("\n"))?;
            }

            #[test]
            fn bridge_lines_never_panic_and_errors_have_lines(
                line in prop_oneof![
                    any::<String>(),
                    "(Bridge )?(obfs4|snowflake|x)? ?[0-9.:\\[\\]a-f]{0,20} [0-9A-F]{0,42}( [a-z]{1,5}=[A-Za-z0-9+/=]{0,8}){0,3}",
                ],
            ) {
                all_errors_have_lines(&format!(
                    "[tor]\nbridges = [{}]\n[[tab]]\nname = \"a\"\nmode = \"chat\"\n",
                    quoted(&line)
                ))?;
            }

            #[test]
            fn arbitrary_text_never_panics(text in any::<String>()) {
                let _ = parse(&text, Path::new("p.toml"), &Modes);
            }
        }
    }
}
