//! [`Watchdog`]: stops the processes a test harness started and removes their folder when the
//! test process ends, however it ends (a panic, a failed test, Ctrl-C, `SIGKILL`), since the
//! harnesses that live as long as the test process (the local Tor network, the browser) are
//! statics that are never dropped.
//!
//! The watchdog is a small shell holding the read end of a pipe whose write end only the test
//! process holds: the kernel closes it when that process ends, and the shell then stops the
//! processes it was told about (`SIGTERM`, then `SIGKILL` after 5 s) and removes the folder. A
//! process is stopped only while its command line names the folder, so a reused process id is
//! left alone.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, PoisonError};

use anyhow::{Context, Result};

/// A running watchdog for one folder.
pub struct Watchdog {
    stdin: Mutex<ChildStdin>,
}

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

impl Watchdog {
    /// Starts a watchdog that removes `dir` when the test process ends; `name` shows in `ps`.
    pub fn start(dir: &Path, name: &str) -> Result<Self> {
        // The Child handle is dropped without waiting: the watchdog must outlive this process.
        let (_child, stdin) = spawn(dir, name)?;
        Ok(Self {
            stdin: Mutex::new(stdin),
        })
    }

    /// Tells the watchdog to stop process `pid` too (its command line must name the folder).
    pub fn add(&self, pid: u32) -> Result<()> {
        let mut stdin = self.stdin.lock().unwrap_or_else(PoisonError::into_inner);
        writeln!(stdin, "{pid}").context("tell the watchdog about a process")
    }
}

fn spawn(dir: &Path, name: &str) -> Result<(Child, ChildStdin)> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG_SCRIPT)
        .arg(name)
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::spawn;

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
        let (mut watchdog, mut stdin) = spawn(&dir, "onionhost-test-watchdog").expect("watchdog");
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
}
