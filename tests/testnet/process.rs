//! The tor processes of the network and what outlives them: the cleanup watchdog, the
//! network directory, free ports, private files and log tails.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use super::TAIL_LINES;

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

/// Finds a tool on PATH or where Debian installs it (`/usr/sbin` is not on every PATH); the
/// error names the Debian package that has it.
pub(super) fn find_tool(name: &str, package: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!(
                "the local Tor test network needs `{name}`: install Debian's {package} package: \
                 apt-get install -y {package}"
            )
        })
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

pub(super) static WATCHDOG: OnceLock<Mutex<ChildStdin>> = OnceLock::new();

/// Stops the tor processes it was given (those whose command line names the network's
/// directory, so a reused pid is left alone) and removes the directory, once its standard
/// input closes, which happens when the test process ends, however it ends.
const WATCHDOG_SCRIPT: &str = r#"
dir=$1
pids=
while read -r pid; do pids="$pids $pid"; done
ours() { grep -qaF "$dir" "/proc/$1/cmdline" 2>/dev/null; }
for pid in $pids; do ours "$pid" && kill -TERM "$pid" 2>/dev/null; done
for _ in $(seq 50); do
  alive=
  for pid in $pids; do ours "$pid" && alive=1; done
  [ -z "$alive" ] && break
  sleep 0.1
done
for pid in $pids; do ours "$pid" && kill -KILL "$pid" 2>/dev/null; done
rm -rf "$dir"
"#;

pub(super) fn watchdog_start(dir: &Path) -> Result<()> {
    if WATCHDOG.get().is_some() {
        return Ok(());
    }
    // The Child handle is dropped without waiting: the watchdog must outlive this process.
    let (_child, stdin) = spawn_watchdog(dir)?;
    let _ = WATCHDOG.set(Mutex::new(stdin));
    Ok(())
}

fn spawn_watchdog(dir: &Path) -> Result<(Child, ChildStdin)> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG_SCRIPT)
        .arg("onionhost-testnet-watchdog")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group, so a Ctrl-C that ends the tests does not end it first.
        .process_group(0)
        .spawn()
        .context("start the cleanup watchdog (sh)")?;
    let stdin = child.stdin.take().context("watchdog stdin")?;
    Ok((child, stdin))
}

pub(super) fn watchdog_add(pid: u32) -> Result<()> {
    let watchdog = WATCHDOG.get().context("the watchdog is not running")?;
    let mut stdin = watchdog.lock().unwrap_or_else(PoisonError::into_inner);
    writeln!(stdin, "{pid}").context("tell the watchdog about a tor process")
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::{find_tool, spawn_watchdog};

    #[test]
    fn the_watchdog_stops_its_processes_and_removes_the_directory_when_its_pipe_closes() {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let file = dir.join("log");
        std::fs::write(&file, "").expect("write");
        // Stands in for a tor process: long-lived, with the directory in its command line.
        let mut ours = Command::new("tail")
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn tail");
        // Not started under the directory: the watchdog must leave it alone.
        let mut other = Command::new("tail")
            .args(["-f", "/dev/null"])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn tail");
        let (mut watchdog, mut stdin) = spawn_watchdog(&dir).expect("watchdog");
        writeln!(stdin, "{}\n{}", ours.id(), other.id()).expect("tell the watchdog");
        // What happens when the test process ends: the pipe's write end closes.
        drop(stdin);

        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = watchdog.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "the watchdog did not finish");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success());
        assert!(
            ours.try_wait().expect("wait").is_some(),
            "the process under the directory still runs"
        );
        assert!(!dir.exists(), "the directory is still there");
        assert!(
            other.try_wait().expect("wait").is_none(),
            "the watchdog stopped a process that was not under its directory"
        );
        let _ = other.kill();
        let _ = other.wait();
    }

    #[test]
    fn a_missing_tool_says_how_to_install_it() {
        let err = find_tool("onionhost-no-such-tor-tool", "tor")
            .expect_err("found a tool that is not there");
        let message = format!("{err:#}");
        assert!(message.contains("apt-get install -y tor"), "{message}");
    }
}
