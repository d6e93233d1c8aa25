//! The config file: TOML in, a checked and immutable [`HostConfig`] out.
//!
//! The host owns the keys of `[[tab]]` (name, mode, port, onion service options) and of
//! `[tor]`; each mode owns its section `[tab.<mode>]`, which the host hands to the mode to
//! parse. Every error names the file, the line and the key, and all of them are reported at
//! once.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

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
    /// The `[tor]` section, as written (the onion transport checks it).
    pub(crate) tor: toml::Table,
    /// The file it came from, for messages.
    pub(crate) source: Option<PathBuf>,
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
    if raw.tab.is_empty() {
        errors.push((
            None,
            "no tabs: add at least one `[[tab]]` table with `name` and `mode`".to_owned(),
        ));
    }
    let mut names = HashSet::new();
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
            tor: raw.tor,
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

    #[test]
    fn empty_config_is_refused() {
        assert!(errors("").contains("no tabs"));
    }
}
