//! The tor processes of the network and what outlives them: the cleanup watchdog (the
//! shared [`Watchdog`]), the network directory, free ports, private files and log tails.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use super::TAIL_LINES;
use crate::watchdog::Watchdog;

/// A tor process started by the harness; killed on drop (the network's own processes are
/// never dropped: the watchdog ends them with the test process).
pub(super) struct TorProcess {
    name: String,
    dir: PathBuf,
    child: Child,
}

impl TorProcess {
    pub(super) fn spawn(tor: &Path, name: &str, dir: &Path, torrc: &str) -> Result<Self> {
        create_private_dir(dir)?;
        let path = dir.join("torrc");
        std::fs::write(&path, torrc).with_context(|| format!("write {}", path.display()))?;
        let output = std::fs::File::create(dir.join("stdout.log")).context("create stdout.log")?;
        let child = Command::new(tor)
            .arg("--defaults-torrc")
            .arg(dir.join("..").join("torrc-defaults"))
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(output.try_clone().context("dup stdout.log")?)
            .stderr(output)
            .spawn()
            .with_context(|| format!("run {}", tor.display()))?;
        let process = Self {
            name: name.to_owned(),
            dir: dir.to_owned(),
            child,
        };
        watchdog_add(process.child.id())?;
        Ok(process)
    }

    /// Its notice log, or what it printed before the log was opened.
    pub(super) fn log(&self) -> PathBuf {
        let log = self.dir.join("notice.log");
        if std::fs::metadata(&log).is_ok_and(|m| m.len() > 0) {
            log
        } else {
            self.dir.join("stdout.log")
        }
    }

    pub(super) fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("wait for tor")? {
            bail!(
                "tor process {} exited ({status}); its log:\n{}",
                self.name,
                tail(&self.log())
            );
        }
        Ok(())
    }

    pub(super) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TorProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Finds a tool the network needs; the error names the Debian package that has it.
pub(super) fn find_tool(name: &str, package: &str) -> Result<PathBuf> {
    crate::tools::find_tool(name, package, "the local Tor test network")
}

/// `<tmp>/onionhost-testnet-<pid>`, created fresh; directories left by test processes that
/// are gone are removed first.
pub(super) fn process_dir() -> Result<PathBuf> {
    let tmp = std::env::temp_dir();
    let ours = std::process::id();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("onionhost-testnet-"))
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let dead = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                == Err(nix::errno::Errno::ESRCH);
            if dead {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = tmp.join(format!("onionhost-testnet-{ours}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    create_private_dir(&dir)?;
    Ok(dir)
}

/// Stops the tor processes and removes the network's directory when the test process ends.
static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();

pub(super) fn watchdog_start(dir: &Path) -> Result<()> {
    if WATCHDOG.get().is_some() {
        return Ok(());
    }
    let _ = WATCHDOG.set(Watchdog::start(dir, "onionhost-testnet-watchdog")?);
    Ok(())
}

pub(super) fn watchdog_add(pid: u32) -> Result<()> {
    WATCHDOG
        .get()
        .context("the watchdog is not running")?
        .add(pid)
}

/// `count` distinct free TCP ports on 127.0.0.1 (bound together, then released).
pub(super) fn free_ports(count: usize) -> Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .context("find free ports")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

pub(super) fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("create {}", dir.display()))
}

pub(super) fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

pub(super) fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last lines of a log, for error messages.
pub(super) fn tail(path: &Path) -> String {
    let text = read_lossy(path);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    if lines.is_empty() {
        format!("({} is empty or missing)", path.display())
    } else {
        lines[start..].join("\n")
    }
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
