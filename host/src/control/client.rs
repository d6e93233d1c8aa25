//! `onionhost tabs`: the command's side of the control socket. It finds the host (the one
//! socket in the control folder, or `--control PATH`), checks the protocol's version, sends
//! one request and prints the answer.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::protocol::{self, Hello, Request, Response, TabJson};
use crate::cli::{Setting, TabsAdd, TabsCommand};

/// `println!` for the answers, except that a reader who has gone (`onionhost tabs show NAME |
/// head -1`) ends the command quietly and successfully, as in ripgrep: printing to a closed
/// pipe is not this command's failure, and `println!` would panic on it.
macro_rules! out {
    ($($arg:tt)*) => {
        print_line(format_args!($($arg)*))
    };
}

/// How long the host may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `onionhost tabs COMMAND`.
pub(crate) fn run(control: Option<&Path>, command: TabsCommand) -> anyhow::Result<ExitCode> {
    // The arguments of a tab to add are read before the host is looked for: a usage error is
    // one whether a host runs or not, and exits 2 as a refused tab does.
    let added = match &command {
        TabsCommand::Add(add) => match added_table(add) {
            Ok(table) => Some(table),
            Err(err) => {
                eprintln!("error: {err:#}");
                return Ok(ExitCode::from(2));
            }
        },
        _ => None,
    };
    let path = match control {
        Some(path) => path.to_owned(),
        None => find_host()?,
    };
    let mut host = Connection::open(&path)?;
    match command {
        TabsCommand::List { json } => {
            let response = host.ask(&Request::List {})?;
            let tabs = response.tabs.unwrap_or_default();
            if json {
                for tab in &tabs {
                    out!("{}", Value::Object(tab.clone()));
                }
            } else if tabs.is_empty() {
                out!("no tabs");
            } else {
                print_table(&tabs);
            }
            Ok(ExitCode::SUCCESS)
        }
        TabsCommand::Show { name, qr } => {
            let response = host.ask(&Request::Show { name })?;
            let tab = response.tab.unwrap_or_default();
            show(&tab, response.key.as_deref(), qr);
            Ok(ExitCode::SUCCESS)
        }
        TabsCommand::Stop { name, no_wait } => {
            let response = host.ask(&Request::Stop {
                name,
                wait: !no_wait,
            })?;
            let tab = response.tab.unwrap_or_default();
            out!("{}: {}", text(&tab, "name"), state(&tab));
            Ok(ExitCode::SUCCESS)
        }
        TabsCommand::Add(add) => {
            let response = host.exchange(&Request::Add {
                tab: added.unwrap_or_default(),
                wait: !add.no_wait,
            })?;
            let tab = response.tab.clone().unwrap_or_default();
            if !response.ok {
                eprintln!("error: {}", response.error.as_deref().unwrap_or("refused"));
                // A tab refused by its checks is a usage error, as a bad config is.
                return Ok(ExitCode::from(if tab.is_empty() { 2 } else { 1 }));
            }
            out!("{}: {}", text(&tab, "name"), state(&tab));
            if let Some(address) = tab.get("address").and_then(Value::as_str) {
                out!("address: {address}");
            }
            if tab.get("private").and_then(Value::as_bool) == Some(true) {
                out!(
                    "a private tab: `onionhost tabs show {}` shows its client key",
                    text(&tab, "name")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The one host with a live socket in the control folder.
fn find_host() -> anyhow::Result<PathBuf> {
    let dir = super::default_dir();
    let mut live = Vec::new();
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let path = entry.path();
                let is_pid_socket = path.extension().is_some_and(|e| e == "sock")
                    && path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .is_some_and(|s| s.parse::<u32>().is_ok());
                // A socket nobody listens on is left by a host that has ended.
                if is_pid_socket && UnixStream::connect(&path).is_ok() {
                    live.push(path);
                }
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", dir.display())),
    }
    live.sort();
    match live.len() {
        0 => bail!(
            "no onionhost is running for this user (no control socket in {}); start one (`onionhost run`, `onionhost share`...), or give --control PATH",
            dir.display()
        ),
        1 => Ok(live.remove(0)),
        _ => bail!(
            "several onionhost hosts are running; choose one with --control PATH:\n{}",
            live.iter()
                .map(|p| format!("  {}", p.display()))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// A connection to a host, past its hello.
struct Connection {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Connection {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("cannot connect to the control socket {}", path.display()))?;
        stream.set_read_timeout(Some(HELLO_TIMEOUT))?;
        let writer = stream.try_clone()?;
        let mut connection = Self {
            reader: BufReader::new(stream),
            writer,
        };
        let line = connection.line()?;
        let hello: Hello = match serde_json::from_str(&line) {
            Ok(hello) => hello,
            Err(_) => {
                let refused: Response = serde_json::from_str(&line)
                    .context("the control socket's host does not speak onionhost's protocol")?;
                bail!(
                    "the host refused: {}",
                    refused.error.as_deref().unwrap_or("no reason given")
                );
            }
        };
        if hello.onionhost != protocol::VERSION {
            bail!(
                "the host (onionhost {}, pid {}) speaks control protocol {}, this onionhost {}: use the same version of onionhost",
                hello.version,
                hello.pid,
                hello.onionhost,
                protocol::VERSION
            );
        }
        // Answers may wait for a tab to be published through Tor, which takes its time.
        connection.reader.get_ref().set_read_timeout(None)?;
        Ok(connection)
    }

    fn line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        let read = (&mut self.reader)
            .take(protocol::MAX_LINE as u64 * 4)
            .read_line(&mut line)
            .context("cannot read from the host")?;
        if read == 0 {
            bail!("the host closed the control connection");
        }
        Ok(line)
    }

    /// Sends `request` and returns the response, whether it is a success or not.
    fn exchange(&mut self, request: &Request) -> anyhow::Result<Response> {
        let mut line = serde_json::to_string(request)?;
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .context("cannot write to the host")?;
        let answer = self.line()?;
        serde_json::from_str(&answer).context("the host's answer is not a response")
    }

    /// Sends `request`; a refusal is an error.
    fn ask(&mut self, request: &Request) -> anyhow::Result<Response> {
        let response = self.exchange(request)?;
        if !response.ok {
            bail!("{}", response.error.as_deref().unwrap_or("refused"));
        }
        Ok(response)
    }
}

/// The `[[tab]]` table of `onionhost tabs add` (and of the live view's form), with absolute
/// paths.
pub(crate) fn added_table(add: &TabsAdd) -> anyhow::Result<serde_json::Map<String, Value>> {
    let absolute = |path: &Path| -> anyhow::Result<String> {
        let path = std::path::absolute(path)
            .with_context(|| format!("{}: cannot make the path absolute", path.display()))?;
        path.to_str().map(str::to_owned).with_context(|| {
            format!(
                "{}: the path is not valid UTF-8, which onionhost cannot take; rename it",
                path.display()
            )
        })
    };
    let mut tab = serde_json::Map::new();
    tab.insert("name".into(), json!(add.name));
    tab.insert("mode".into(), json!(add.mode));
    if let Some(plugin) = &add.plugin {
        tab.insert("plugin".into(), json!(absolute(plugin)?));
    }
    if let Some(port) = add.port {
        tab.insert("port".into(), json!(port));
    }
    for (key, on) in [
        ("public", add.public),
        ("persistent", add.persistent),
        ("qr", add.qr),
    ] {
        if on {
            tab.insert(key.into(), json!(true));
        }
    }
    if let Some(at) = &add.auto_start {
        tab.insert("auto_start".into(), json!(at));
    }
    if let Some(at) = &add.auto_stop {
        tab.insert("auto_stop".into(), json!(at));
    }
    let mut section = serde_json::Map::new();
    if let Some(title) = &add.title {
        section.insert("title".into(), json!(title));
    }
    let paths = add
        .paths
        .iter()
        .map(|p| absolute(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    match add.mode.as_str() {
        "share" => {
            section.insert("paths".into(), json!(paths));
            if add.keep_sharing {
                section.insert("stop_after_first_download".into(), json!(false));
            }
        }
        "receive" | "website" => match paths.as_slice() {
            [] => {}
            [dir] => {
                section.insert("dir".into(), json!(dir));
            }
            _ => bail!("a {} tab takes one folder", add.mode),
        },
        _ if !paths.is_empty() => bail!(
            "a {} tab takes no paths (share takes files and folders, receive and website a folder)",
            add.mode
        ),
        _ => {}
    }
    if add.keep_sharing && add.mode != "share" {
        bail!("--keep-sharing is for share tabs");
    }
    if !section.is_empty() {
        tab.insert(add.mode.clone(), Value::Object(section));
    }
    for setting in &add.settings {
        set(&mut tab, setting)?;
    }
    Ok(tab)
}

/// Puts one `--set KEY=VALUE` into the tab's table. A key set already (by an option, the
/// paths or another `--set`) is refused rather than replaced, as a TOML file refuses it.
fn set(tab: &mut serde_json::Map<String, Value>, setting: &Setting) -> anyhow::Result<()> {
    let shown = setting.key.join(".");
    let Some((last, parents)) = setting.key.split_last() else {
        bail!("--set: the key is empty");
    };
    let mut table = tab;
    for (depth, part) in parents.iter().enumerate() {
        let entry = table
            .entry(part.clone())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        table = match entry {
            Value::Object(inner) => inner,
            _ => bail!(
                "--set {shown}: `{}` is set already, to a value that is not a table",
                parents[..=depth].join(".")
            ),
        };
    }
    if table.contains_key(last) {
        bail!(
            "--set {shown}: `{shown}` is set twice (by two --set, or by --set and an option or the paths); set it once"
        );
    }
    let value = json_of(&setting.value).with_context(|| format!("--set {shown}"))?;
    table.insert(last.clone(), value);
    Ok(())
}

/// A TOML value as the protocol's JSON carries it (the host reads it back into TOML).
fn json_of(value: &toml::Value) -> anyhow::Result<Value> {
    Ok(match value {
        toml::Value::String(text) => Value::String(text.clone()),
        toml::Value::Integer(n) => Value::from(*n),
        toml::Value::Float(x) => match serde_json::Number::from_f64(*x) {
            Some(x) => Value::Number(x),
            None => bail!("{x} is not a number the config takes"),
        },
        toml::Value::Boolean(on) => Value::Bool(*on),
        // The config's times are strings.
        toml::Value::Datetime(at) => Value::String(at.to_string()),
        toml::Value::Array(items) => {
            Value::Array(items.iter().map(json_of).collect::<anyhow::Result<_>>()?)
        }
        toml::Value::Table(table) => Value::Object(
            table
                .iter()
                .map(|(key, value)| Ok((key.clone(), json_of(value)?)))
                .collect::<anyhow::Result<_>>()?,
        ),
    })
}

fn text<'a>(tab: &'a TabJson, key: &str) -> &'a str {
    tab.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `serving`, or `failed: why`.
fn state(tab: &TabJson) -> String {
    match tab.get("why").and_then(Value::as_str) {
        Some(why) => format!("{}: {why}", text(tab, "state")),
        None => text(tab, "state").to_owned(),
    }
}

fn print_table(tabs: &[TabJson]) {
    let rows: Vec<[String; 4]> = tabs
        .iter()
        .map(|tab| {
            [
                text(tab, "name").to_owned(),
                text(tab, "mode").to_owned(),
                state(tab),
                text(tab, "address").to_owned(),
            ]
        })
        .collect();
    let header = ["NAME", "MODE", "STATE", "ADDRESS"].map(str::to_owned);
    let mut widths = [0; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect::<Vec<_>>()
            .join("  ");
        out!("{}", crate::console::printable(line.trim_end()));
    }
}

fn show(tab: &TabJson, key: Option<&str>, qr: bool) {
    let name = text(tab, "name");
    out!("{name}: {}", state(tab));
    let address = tab.get("address").and_then(Value::as_str);
    match address {
        Some(address) => out!("address: {address}"),
        None => out!("address: not known yet"),
    }
    if let Some(key) = key {
        out!("private key (give it to each visitor; Tor Browser asks for it): {key}");
    }
    if qr {
        for (what, text) in [("address", address), ("private key", key)] {
            let Some(text) = text else { continue };
            match crate::console::qr_lines(text) {
                Some(lines) => {
                    out!("{what} as a QR code:");
                    for line in lines {
                        out!("{line}");
                    }
                }
                None => out!("{what} is too long for a QR code"),
            }
        }
    }
}

/// Writes one line of the answer to standard output (see `out!`). Standard output is line
/// buffered, so the write of the newline is the flush and its error comes back here.
fn print_line(line: std::fmt::Arguments<'_>) {
    if let Err(err) = writeln!(std::io::stdout(), "{line}") {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write the answer: {err}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn setting(key: &str, value: toml::Value) -> Setting {
        Setting {
            key: key.split('.').map(str::to_owned).collect(),
            value,
        }
    }

    #[test]
    fn settings_go_where_the_config_has_them_and_are_set_once() {
        let mut tab = serde_json::Map::new();
        tab.insert("name".into(), json!("drop"));
        tab.insert("receive".into(), json!({"dir": "/srv/drop"}));
        set(
            &mut tab,
            &setting("proof_of_work", toml::Value::Boolean(false)),
        )
        .unwrap();
        let limit = setting(
            "receive.max_upload_size",
            toml::Value::String("1 GiB".into()),
        );
        set(&mut tab, &limit).unwrap();
        let burst = setting("chat.rate_limit.burst", toml::Value::Integer(5));
        set(&mut tab, &burst).unwrap();
        assert_eq!(
            Value::Object(tab.clone()),
            json!({
                "name": "drop",
                "proof_of_work": false,
                "receive": {"dir": "/srv/drop", "max_upload_size": "1 GiB"},
                "chat": {"rate_limit": {"burst": 5}},
            })
        );
        let err = set(&mut tab, &setting("name", toml::Value::Integer(1))).unwrap_err();
        assert!(err.to_string().contains("`name` is set twice"), "{err}");
        let err = set(&mut tab, &limit).unwrap_err();
        assert!(
            err.to_string()
                .contains("`receive.max_upload_size` is set twice"),
            "{err}"
        );
        let err = set(&mut tab, &setting("name.x", toml::Value::Integer(1))).unwrap_err();
        assert!(err.to_string().contains("`name` is set already"), "{err}");
    }

    #[test]
    fn toml_values_become_json_and_read_back_the_same() {
        let written: toml::Table = toml::from_str(
            r#"v = { n = 1, x = 1.5, on = true, list = ["a", 2], at = 2026-12-24T18:00:00 }"#,
        )
        .unwrap();
        let json = json_of(&written["v"]).unwrap();
        assert_eq!(
            json,
            json!({"n": 1, "x": 1.5, "on": true, "list": ["a", 2], "at": "2026-12-24T18:00:00"})
        );
        let back: toml::Value = serde_json::from_value(json).unwrap();
        assert_eq!(back["x"], toml::Value::Float(1.5));
        assert_eq!(back["n"], toml::Value::Integer(1));
        assert!(json_of(&toml::Value::Float(f64::NAN)).is_err());
    }
}
