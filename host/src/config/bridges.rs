//! Bridges and pluggable transports: `[tor]`'s `bridges`, `use_bridges` and `transports`, and
//! the one-tab commands' `--bridge` and `--tor-transport`.
//!
//! A bridge line is checked by Arti's own parser (the one that will use it), so a line that
//! passes here is a line Arti takes. Every pluggable transport a bridge needs must resolve to
//! an executable file now, from a `transports` entry or from the binaries Debian ships
//! (looked up on `PATH`), so that a missing binary is a config error with its line, not a
//! bootstrap that never finishes. Bridges listed means bridges only: the host never falls
//! back to a direct connection (fail closed).

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use arti_client::config::{BridgeConfigBuilder, PtTransportName};
use serde::Deserialize;

use super::locate::{self, KeyPath, Problem};

/// Bridges in use: Tor is reached only through them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bridges {
    /// The bridge lines, at least one, each accepted by Arti's parser.
    pub(crate) lines: Vec<BridgeLine>,
    /// The pluggable transport binaries: every transport a bridge line names is served by one.
    pub(crate) transports: Vec<Transport>,
}

impl Bridges {
    /// The pluggable transports the bridges use (none for direct bridges), once each, in
    /// the order of the lines.
    pub(crate) fn transport_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for name in self.lines.iter().filter_map(|l| l.transport.as_deref()) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }
}

/// One bridge line, as written (less a leading `Bridge`, which Arti ignores too).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct BridgeLine {
    /// The line, for Arti's parser.
    pub(crate) line: String,
    /// Its pluggable transport; `None` for a bridge reached directly.
    pub(crate) transport: Option<String>,
}

impl fmt::Debug for BridgeLine {
    /// A bridge's address is what a censor wants to learn: debug output shows only the
    /// transport.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BridgeLine({})",
            self.transport.as_deref().unwrap_or("direct")
        )
    }
}

/// One pluggable transport binary and the protocols it provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transport {
    /// The transport protocols it is used for (`obfs4`, `snowflake`, ...).
    pub(crate) protocols: Vec<String>,
    /// The executable, an absolute path (or relative to the folder onionhost started in).
    pub(crate) path: PathBuf,
    /// Extra arguments for it.
    pub(crate) arguments: Vec<String>,
    /// Whether a bridge uses it (Arti then starts it at once, so that a broken binary shows
    /// up while connecting, not at the first circuit).
    pub(crate) used: bool,
}

/// The pluggable transport binaries Debian ships, and the protocols each provides; the first
/// one found on `PATH` that provides a protocol is used when no `transports` entry lists it.
const KNOWN: &[Known] = &[
    Known {
        binary: "lyrebird",
        protocols: &["obfs4", "meek_lite", "webtunnel"],
        package: "lyrebird",
    },
    Known {
        binary: "obfs4proxy",
        protocols: &["obfs4", "meek_lite"],
        package: "obfs4proxy",
    },
    Known {
        binary: "snowflake-client",
        protocols: &["snowflake"],
        package: "snowflake-client",
    },
];

/// A pluggable transport binary a distribution ships.
struct Known {
    binary: &'static str,
    protocols: &'static [&'static str],
    package: &'static str,
}

/// Where to get a binary for `protocol`, one of the known ones, for an error message.
fn packages_for(protocol: &str, first: &Known) -> String {
    match protocol {
        // Debian 12 packages obfs4proxy; later releases package its successor, lyrebird.
        "obfs4" | "meek_lite" => {
            "Debian's obfs4proxy package (apt-get install obfs4proxy; lyrebird in newer releases)"
                .to_owned()
        }
        "webtunnel" => "lyrebird 0.2 or later (Debian's lyrebird package; Debian 12's obfs4proxy has no webtunnel)".to_owned(),
        _ => format!(
            "Debian's {} package (apt-get install {})",
            first.package, first.package
        ),
    }
}

/// The `transports` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTransport {
    protocols: Vec<String>,
    #[serde(default)]
    path: Option<PathBuf>,
    #[serde(default)]
    arguments: Vec<String>,
}

/// Where a problem is: the place of a value in the config file or on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Bridge(usize),
    Transport(usize),
    TransportProtocol(usize, usize),
    TransportPath(usize),
    UseBridges,
}

/// Where the bridges came from, for the hints in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    File,
    CommandLine,
}

/// What the check needs from the system: the executables on `PATH`.
pub(crate) struct Search<'a> {
    /// The value of `PATH`.
    path: &'a OsStr,
    /// The folder relative `path`s are relative to (the config file's).
    base: Option<&'a Path>,
}

impl<'a> Search<'a> {
    /// Looks binaries up in `path` (a `PATH` value); relative paths are relative to `base`.
    pub(crate) fn new(path: &'a OsStr, base: Option<&'a Path>) -> Self {
        Self { path, base }
    }

    /// `name` on `PATH`, if it is there as an executable file.
    fn on_path(&self, name: &str) -> Option<PathBuf> {
        std::env::split_paths(self.path)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(name))
            .find(|candidate| executable(candidate))
    }

    /// A configured `path`: a bare name is looked up on `PATH`, anything else is a file
    /// (relative to the config file's folder).
    fn resolve(&self, path: &Path) -> Result<PathBuf, String> {
        let shown = path.display();
        if path.components().count() == 1
            && !path.is_absolute()
            && let Some(name) = path.to_str()
        {
            return self
                .on_path(name)
                .ok_or_else(|| format!("`{name}` is not on PATH: give its full path"));
        }
        let full = match self.base {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_owned(),
        };
        match std::fs::metadata(&full) {
            Err(err) => Err(format!("cannot use `{shown}`: {err}")),
            Ok(meta) if !meta.is_file() => Err(format!("`{shown}` is not a file")),
            Ok(_) if !executable(&full) => Err(format!("`{shown}` is not executable")),
            Ok(_) => Ok(full),
        }
    }
}

/// Whether `path` is a file someone may execute.
fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Checks bridge lines and transports from wherever they came; problems are returned with
/// their place, without the place's name.
fn check(
    lines: &[String],
    use_bridges: Option<bool>,
    raw_transports: Vec<RawTransport>,
    search: &Search<'_>,
    source: Source,
) -> Result<Option<Bridges>, Vec<(Place, String)>> {
    let mut problems = Vec::new();
    match (use_bridges, lines.is_empty()) {
        (Some(false), false) => problems.push((
            Place::UseBridges,
            "`use_bridges = false`, but `bridges` lists bridges: bridge lines mean the network must not see a direct connection to Tor, so onionhost never ignores them; remove them (or comment them out) to connect directly, or remove `use_bridges`".to_owned(),
        )),
        (Some(true), true) => problems.push((
            Place::UseBridges,
            "`use_bridges = true`, but `bridges` lists none: add bridge lines (from https://bridges.torproject.org or Tor Browser, see the README's Bridges section)".to_owned(),
        )),
        _ => {}
    }

    let mut bridges = Vec::new();
    for (i, text) in lines.iter().enumerate() {
        match check_line(text) {
            Ok(line) => bridges.push((i, line)),
            Err(message) => problems.push((Place::Bridge(i), message)),
        }
    }

    let mut transports = Vec::new();
    for (i, raw) in raw_transports.into_iter().enumerate() {
        let before = problems.len();
        if raw.protocols.is_empty() {
            problems.push((
                Place::Transport(i),
                "`protocols` is empty: list the transports this binary provides, e.g. [\"obfs4\"]"
                    .to_owned(),
            ));
        }
        for (j, protocol) in raw.protocols.iter().enumerate() {
            if let Err(err) = protocol.parse::<PtTransportName>() {
                problems.push((
                    Place::TransportProtocol(i, j),
                    format!("{protocol:?} is not a transport name: {err}"),
                ));
            }
        }
        let path = match &raw.path {
            Some(path) => search.resolve(path).map_err(|message| {
                problems.push((Place::TransportPath(i), message));
            }),
            // Which binary serves the protocols can only be told once they are valid.
            None if problems.len() > before => Err(()),
            None => default_binary(&raw.protocols, search).map_err(|message| {
                problems.push((Place::Transport(i), message));
            }),
        };
        if let Ok(path) = path
            && problems.len() == before
        {
            transports.push(Transport {
                protocols: raw.protocols,
                path,
                arguments: raw.arguments,
                used: false,
            });
        }
    }

    // Every transport a bridge names needs a binary: a `transports` entry, else a known one
    // on PATH.
    for (i, line) in &bridges {
        let Some(protocol) = &line.transport else {
            continue;
        };
        if let Some(transport) = transports
            .iter_mut()
            .find(|t| t.protocols.contains(protocol))
        {
            transport.used = true;
            continue;
        }
        match default_binary(std::slice::from_ref(protocol), search) {
            Ok(path) => match transports.iter_mut().find(|t| t.path == path) {
                Some(transport) => {
                    transport.protocols.push(protocol.clone());
                    transport.used = true;
                }
                None => transports.push(Transport {
                    protocols: vec![protocol.clone()],
                    path,
                    arguments: Vec::new(),
                    used: true,
                }),
            },
            Err(message) => {
                let add = match source {
                    Source::File => format!(
                        "add `transports = [{{ protocols = [\"{protocol}\"], path = \"/path/to/its/binary\" }}]` to `[tor]`"
                    ),
                    Source::CommandLine => {
                        format!("add `--tor-transport {protocol}=/path/to/its/binary`")
                    }
                };
                let known = KNOWN
                    .iter()
                    .any(|k| k.protocols.contains(&protocol.as_str()));
                let message = if known {
                    format!("the bridge uses the `{protocol}` transport, and {message}; or {add}")
                } else {
                    format!(
                        "the bridge uses the `{protocol}` transport, which no `transports` entry lists and onionhost knows no binary for: {add}"
                    )
                };
                problems.push((Place::Bridge(*i), message));
            }
        }
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    if bridges.is_empty() {
        return Ok(None);
    }
    Ok(Some(Bridges {
        lines: bridges.into_iter().map(|(_, line)| line).collect(),
        transports,
    }))
}

/// Checks one bridge line with Arti's parser.
fn check_line(text: &str) -> Result<BridgeLine, String> {
    const LOOKS: &str = "a bridge line looks like `obfs4 192.0.2.1:443 <40 hex digits> cert=... iat-mode=0` or `192.0.2.1:9001 <40 hex digits>`";
    let builder: BridgeConfigBuilder = text
        .parse()
        .map_err(|err| format!("not a bridge line: {err}; {LOOKS}"))?;
    builder
        .build()
        .map_err(|err| format!("not a usable bridge line: {err}; {LOOKS}"))?;
    let transport = builder
        .get_transport()
        .filter(|t| !matches!(*t, "" | "-" | "bridge"))
        .map(str::to_owned);
    Ok(BridgeLine {
        line: text.trim().to_owned(),
        transport,
    })
}

/// The known binary on `PATH` that provides every one of `protocols`.
fn default_binary(protocols: &[String], search: &Search<'_>) -> Result<PathBuf, String> {
    let candidates: Vec<&Known> = KNOWN
        .iter()
        .filter(|k| protocols.iter().all(|p| k.protocols.contains(&p.as_str())))
        .collect();
    if let Some(found) = candidates.iter().find_map(|k| search.on_path(k.binary)) {
        return Ok(found);
    }
    let listed = protocols
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let binaries = candidates
        .iter()
        .map(|k| format!("`{}`", k.binary))
        .collect::<Vec<_>>()
        .join(" or ");
    Err(match (protocols, candidates.first()) {
        ([one], Some(first)) => format!(
            "no {binaries} is on PATH: install {}",
            packages_for(one, first)
        ),
        (_, Some(_)) => format!(
            "no `path` is given, and no {binaries} is on PATH: give the path of the binary for {listed}"
        ),
        (_, None) => format!(
            "no `path` is given, and onionhost knows no binary for {listed}: give the path of the one that provides it"
        ),
    })
}

/// Checks `[tor]`'s bridge keys; each problem has the key path under `[tor]` and a message
/// that starts with that key.
pub(super) fn check_section(
    lines: Option<Vec<String>>,
    use_bridges: Option<bool>,
    transports: Option<Vec<RawTransport>>,
    search: &Search<'_>,
) -> Result<Option<Bridges>, Vec<Problem>> {
    let lines = lines.unwrap_or_default();
    check(
        &lines,
        use_bridges,
        transports.unwrap_or_default(),
        search,
        Source::File,
    )
    .map_err(|problems| {
        problems
            .into_iter()
            .map(|(place, message)| {
                let path: KeyPath = match place {
                    Place::Bridge(i) => vec!["bridges".into(), i.to_string()],
                    Place::Transport(i) => vec!["transports".into(), i.to_string()],
                    Place::TransportProtocol(i, j) => vec![
                        "transports".into(),
                        i.to_string(),
                        "protocols".into(),
                        j.to_string(),
                    ],
                    Place::TransportPath(i) => {
                        vec!["transports".into(), i.to_string(), "path".into()]
                    }
                    Place::UseBridges => vec!["use_bridges".into()],
                };
                let message = format!("`{}`: {message}", locate::shown(&path));
                (path, message)
            })
            .collect()
    })
}

/// Checks `--bridge LINE` and `--tor-transport PROTOCOLS=PATH` of a one-tab command.
pub(crate) fn from_command_line(
    lines: &[String],
    transports: &[String],
    search: &Search<'_>,
) -> Result<Option<Bridges>, Vec<String>> {
    let mut problems = Vec::new();
    let mut raw = Vec::new();
    for (i, text) in transports.iter().enumerate() {
        match text.split_once('=') {
            Some((protocols, path)) if !protocols.is_empty() && !path.is_empty() => {
                raw.push(RawTransport {
                    protocols: protocols.split(',').map(str::to_owned).collect(),
                    path: Some(PathBuf::from(path)),
                    arguments: Vec::new(),
                });
            }
            _ => problems.push(format!(
                "--tor-transport #{}: {text:?} is not PROTOCOLS=PATH (e.g. obfs4=/usr/bin/obfs4proxy)",
                i + 1
            )),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if lines.is_empty() && !transports.is_empty() {
        return Err(vec![
            "--tor-transport without --bridge: a transport only serves bridges".to_owned(),
        ]);
    }
    check(lines, None, raw, search, Source::CommandLine).map_err(|problems| {
        problems
            .into_iter()
            .map(|(place, message)| match place {
                Place::Bridge(i) => format!("--bridge #{}: {message}", i + 1),
                Place::Transport(i) | Place::TransportProtocol(i, _) | Place::TransportPath(i) => {
                    format!("--tor-transport #{}: {message}", i + 1)
                }
                Place::UseBridges => message,
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// A bridge line of the shape bridges.torproject.org hands out (made up).
    pub(crate) const OBFS4: &str = "obfs4 192.0.2.55:38114 316E643333645F6D79216558614D3931657A5F5F cert=YXJlIGZyZXF1ZW50bHkgZnVsbCBvZiBsaXR0bGUgbWVzc2FnZXMgeW91IGNhbiBmaW5kLg iat-mode=0";
    const DIRECT: &str = "198.51.100.7:9001 7DD62766BF2052432051D7B7E08A22F7E34A4543";
    const SNOWFLAKE: &str = "snowflake 192.0.2.3:80 2B280B23E1107BB62ABFC40DDCC8824814F80A72 fingerprint=2B280B23E1107BB62ABFC40DDCC8824814F80A72 url=https://snowflake-broker.example/ front=cdn.example ice=stun:stun.example:3478";

    /// A folder standing in for `PATH`, holding executables of these names.
    fn bin_dir(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for name in names {
            let path = dir.path().join(name);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    fn lines(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| (*l).to_owned()).collect()
    }

    #[test]
    fn an_obfs4_bridge_uses_the_obfs4proxy_on_path() {
        let bin = bin_dir(&["obfs4proxy", "snowflake-client"]);
        let search = Search::new(bin.path().as_os_str(), None);
        let bridges = check(
            &lines(&[OBFS4, DIRECT, SNOWFLAKE]),
            None,
            Vec::new(),
            &search,
            Source::File,
        )
        .unwrap()
        .unwrap();
        assert_eq!(bridges.lines.len(), 3);
        assert_eq!(bridges.lines[1].transport, None);
        assert_eq!(bridges.transport_names(), ["obfs4", "snowflake"]);
        assert_eq!(bridges.transports.len(), 2);
        assert_eq!(bridges.transports[0].path, bin.path().join("obfs4proxy"));
        assert_eq!(bridges.transports[0].protocols, ["obfs4"]);
        assert_eq!(
            bridges.transports[1].path,
            bin.path().join("snowflake-client")
        );
        assert!(bridges.transports.iter().all(|t| t.used));
    }

    #[test]
    fn lyrebird_is_preferred_and_serves_every_protocol_it_knows() {
        let bin = bin_dir(&["obfs4proxy", "lyrebird"]);
        let search = Search::new(bin.path().as_os_str(), None);
        let meek = "meek_lite 192.0.2.18:80 BE776A53492E1E044A26F17306E1BC46A55A1625 url=https://meek.example/ front=front.example";
        let bridges = check(
            &lines(&[OBFS4, meek]),
            None,
            Vec::new(),
            &search,
            Source::File,
        )
        .unwrap()
        .unwrap();
        assert_eq!(bridges.transports.len(), 1);
        assert_eq!(bridges.transports[0].path, bin.path().join("lyrebird"));
        assert_eq!(bridges.transports[0].protocols, ["obfs4", "meek_lite"]);
    }

    #[test]
    fn a_leading_bridge_word_is_accepted_as_in_a_torrc() {
        let search = Search::new(OsStr::new(""), None);
        let bridges = check(
            &lines(&[&format!("Bridge {DIRECT}")]),
            None,
            Vec::new(),
            &search,
            Source::File,
        )
        .unwrap()
        .unwrap();
        assert_eq!(bridges.lines[0].transport, None);
        assert!(bridges.transports.is_empty());
    }

    #[test]
    fn no_bridges_means_a_direct_connection() {
        let search = Search::new(OsStr::new(""), None);
        assert_eq!(
            check(&[], None, Vec::new(), &search, Source::File).unwrap(),
            None
        );
        assert_eq!(
            check(&[], Some(false), Vec::new(), &search, Source::File).unwrap(),
            None
        );
    }

    #[test]
    fn malformed_lines_carry_arti_s_reason() {
        let search = Search::new(OsStr::new(""), None);
        for (line, reason) in [
            ("", "Bridge line was empty"),
            ("obfs4 192.0.2.1:443", "identity"),
            ("192.0.2.1:443 nothex", "nothex"),
            (
                "obfs4 192.0.2.1:443 316E643333645F6D79216558614D3931657A5F5F cert",
                "cert",
            ),
            (
                "300.1.1.1:443 316E643333645F6D79216558614D3931657A5F5F",
                "300.1.1.1:443",
            ),
        ] {
            let problems =
                check(&lines(&[line]), None, Vec::new(), &search, Source::File).unwrap_err();
            assert_eq!(problems.len(), 1, "{line:?}: {problems:?}");
            let (place, message) = &problems[0];
            assert_eq!(*place, Place::Bridge(0));
            assert!(message.starts_with("not a"), "{line:?}: {message}");
            assert!(message.contains(reason), "{line:?}: {message}");
        }
    }

    #[test]
    fn a_transport_without_binary_names_the_package() {
        let empty = bin_dir(&[]);
        let search = Search::new(empty.path().as_os_str(), None);
        let problems = check(
            &lines(&[DIRECT, OBFS4, SNOWFLAKE]),
            None,
            Vec::new(),
            &search,
            Source::File,
        )
        .unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].0, Place::Bridge(1));
        assert!(
            problems[0]
                .1
                .contains("`lyrebird` or `obfs4proxy` is on PATH")
                && problems[0].1.contains("apt-get install obfs4proxy")
                && problems[0]
                    .1
                    .contains("transports = [{ protocols = [\"obfs4\"]"),
            "{}",
            problems[0].1
        );
        assert_eq!(problems[1].0, Place::Bridge(2));
        assert!(
            problems[1].1.contains("apt-get install snowflake-client"),
            "{}",
            problems[1].1
        );
        let problems = check(
            &lines(&[OBFS4]),
            None,
            Vec::new(),
            &search,
            Source::CommandLine,
        )
        .unwrap_err();
        assert!(
            problems[0].1.contains("--tor-transport obfs4=/path"),
            "{problems:?}"
        );
    }

    #[test]
    fn an_unknown_transport_needs_an_entry() {
        let bin = bin_dir(&["obfs4proxy"]);
        let search = Search::new(bin.path().as_os_str(), None);
        let line = "fancy 192.0.2.1:443 316E643333645F6D79216558614D3931657A5F5F key=value";
        let problems = check(&lines(&[line]), None, Vec::new(), &search, Source::File).unwrap_err();
        assert!(
            problems[0]
                .1
                .contains("`fancy` transport, which no `transports` entry lists"),
            "{problems:?}"
        );
        let transports = vec![RawTransport {
            protocols: vec!["fancy".into()],
            path: Some(bin.path().join("obfs4proxy")),
            arguments: vec!["-enableLogging".into()],
        }];
        let bridges = check(&lines(&[line]), None, transports, &search, Source::File)
            .unwrap()
            .unwrap();
        assert_eq!(bridges.transports[0].arguments, ["-enableLogging"]);
        assert!(bridges.transports[0].used);
    }

    #[test]
    fn a_configured_transport_must_be_an_executable_file() {
        let bin = bin_dir(&["obfs4proxy"]);
        let plain = bin.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        let search = Search::new(bin.path().as_os_str(), Some(bin.path()));
        let entry = |path: &str| RawTransport {
            protocols: vec!["obfs4".into()],
            path: Some(PathBuf::from(path)),
            arguments: Vec::new(),
        };
        for (path, reason) in [
            (
                "/nonexistent/lyrebird",
                "cannot use `/nonexistent/lyrebird`",
            ),
            ("plain", "`plain` is not on PATH"),
            ("./plain", "`./plain` is not executable"),
            ("/", "`/` is not a file"),
        ] {
            let problems = check(
                &lines(&[OBFS4]),
                None,
                vec![entry(path)],
                &search,
                Source::File,
            )
            .unwrap_err();
            assert_eq!(problems[0].0, Place::TransportPath(0), "{path}");
            assert!(problems[0].1.contains(reason), "{path}: {problems:?}");
        }
        // A bare name is looked up on PATH; a relative path is relative to the config file.
        let bridges = check(
            &lines(&[OBFS4]),
            None,
            vec![entry("obfs4proxy")],
            &search,
            Source::File,
        )
        .unwrap()
        .unwrap();
        assert_eq!(bridges.transports[0].path, bin.path().join("obfs4proxy"));
        let bridges = check(
            &lines(&[OBFS4]),
            None,
            vec![entry("./obfs4proxy")],
            &search,
            Source::File,
        )
        .unwrap()
        .unwrap();
        assert_eq!(bridges.transports[0].path, bin.path().join("./obfs4proxy"));
    }

    #[test]
    fn bridges_listed_but_disabled_are_refused() {
        let search = Search::new(OsStr::new(""), None);
        let problems = check(
            &lines(&[DIRECT]),
            Some(false),
            Vec::new(),
            &search,
            Source::File,
        )
        .unwrap_err();
        assert_eq!(problems[0].0, Place::UseBridges);
        assert!(problems[0].1.contains("never ignores them"), "{problems:?}");
        let problems = check(&[], Some(true), Vec::new(), &search, Source::File).unwrap_err();
        assert!(problems[0].1.contains("lists none"), "{problems:?}");
    }

    #[test]
    fn transport_entries_are_checked() {
        let bin = bin_dir(&["snowflake-client"]);
        let search = Search::new(bin.path().as_os_str(), None);
        let raw = |protocols: &[&str]| RawTransport {
            protocols: protocols.iter().map(|p| (*p).to_owned()).collect(),
            path: None,
            arguments: Vec::new(),
        };
        let problems = check(
            &[],
            None,
            vec![
                raw(&[]),
                raw(&["bad name"]),
                raw(&["obfs4"]),
                raw(&["snowflake"]),
            ],
            &search,
            Source::File,
        )
        .unwrap_err();
        let places: Vec<Place> = problems.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            places,
            [
                Place::Transport(0),
                Place::TransportProtocol(1, 0),
                Place::Transport(2),
            ],
            "{problems:?}"
        );
        assert!(
            problems[2].1.contains("apt-get install obfs4proxy"),
            "{problems:?}"
        );
    }

    #[test]
    fn command_line_bridges_are_checked_and_named_by_position() {
        let bin = bin_dir(&["obfs4proxy"]);
        let search = Search::new(bin.path().as_os_str(), None);
        let bridges = from_command_line(&lines(&[OBFS4]), &[], &search)
            .unwrap()
            .unwrap();
        assert_eq!(bridges.transports[0].path, bin.path().join("obfs4proxy"));
        let errors = from_command_line(&lines(&[OBFS4, "nonsense"]), &[], &search).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("--bridge #2: not a bridge line"),
            "{errors:?}"
        );
        let custom = format!("fancy={}", bin.path().join("obfs4proxy").display());
        let line = "fancy 192.0.2.1:443 316E643333645F6D79216558614D3931657A5F5F";
        let bridges = from_command_line(&lines(&[line]), &[custom], &search)
            .unwrap()
            .unwrap();
        assert_eq!(bridges.transports[0].protocols, ["fancy"]);
        let errors = from_command_line(&lines(&[line]), &lines(&["fancy"]), &search).unwrap_err();
        assert!(errors[0].starts_with("--tor-transport #1"), "{errors:?}");
        let errors =
            from_command_line(&[], &lines(&["obfs4=/usr/bin/obfs4proxy"]), &search).unwrap_err();
        assert!(errors[0].contains("without --bridge"), "{errors:?}");
    }

    #[test]
    fn debug_output_hides_the_bridge_address() {
        let search = Search::new(OsStr::new(""), None);
        let bridges = check(&lines(&[DIRECT]), None, Vec::new(), &search, Source::File)
            .unwrap()
            .unwrap();
        let shown = format!("{bridges:?}");
        assert!(!shown.contains("198.51.100.7"), "{shown}");
        assert!(shown.contains("BridgeLine(direct)"), "{shown}");
    }
}
