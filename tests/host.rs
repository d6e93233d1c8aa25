//! [`TestHost`]: one `onionhost` process started by a test, on 127.0.0.1 ports it picks itself.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a test waits for the host to print something it expects.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The path of the `onionhost` binary, built once per test run.
pub fn onionhost_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // `cargo test` does not build another package's binary for us, so build it once here.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "onionhost", "--bin", "onionhost"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("could not run cargo to build the onionhost binary");
        assert!(status.success(), "building the onionhost binary failed");
        let exe = std::env::current_exe().expect("no path for the test binary");
        // target/<profile>/deps/e2e-HASH -> target/<profile>/onionhost
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary outside target/");
        dir.join("onionhost")
    })
}

#[derive(Default)]
struct Captured {
    stdout: String,
    stderr: String,
    closed: usize,
}

/// A running `onionhost` process and everything it has printed so far.
pub struct TestHost {
    child: Option<Child>,
    captured: Arc<(Mutex<Captured>, Condvar)>,
    /// A private directory for this host's config and data, removed on drop.
    pub dir: tempfile::TempDir,
}

/// What a stopped host left behind.
#[derive(Debug)]
pub struct Stopped {
    /// Its exit status.
    pub status: ExitStatus,
    /// All it printed on stdout.
    pub stdout: String,
    /// All it printed on stderr.
    pub stderr: String,
}

/// What a host listens on (see [`TestHost::listening`]).
#[derive(Debug, Default)]
pub struct Listening {
    /// Its TCP (IPv4) listeners.
    pub tcp: Vec<std::net::SocketAddr>,
    /// The paths of its Unix socket listeners (empty for an unnamed or abstract one).
    pub unix: Vec<PathBuf>,
}

impl TestHost {
    /// Runs `onionhost ARGS` (add `--local-only` yourself where wanted).
    pub fn spawn(args: &[&str]) -> Result<Self> {
        let dir = tempfile::tempdir().context("temp dir")?;
        Self::spawn_in(dir, args, &[])
    }

    /// Runs `onionhost run --config <dir>/onionhost.toml --local-only` with `config` as the file.
    pub fn with_config(config: &str) -> Result<Self> {
        let dir = tempfile::tempdir().context("temp dir")?;
        let path = dir.path().join("onionhost.toml");
        std::fs::write(&path, config).context("write config")?;
        let path = path.to_str().context("utf-8 path")?.to_owned();
        Self::spawn_in(dir, &["run", "--config", &path, "--local-only"], &[])
    }

    /// Runs `onionhost ARGS` with extra environment variables (an empty value unsets one),
    /// in `dir`.
    pub fn spawn_in(dir: tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        Self::spawn_with(dir, args, env, None)
    }

    /// [`TestHost::spawn_in`] as the user and group id `uid` (the test must run as root):
    /// `dir` must then be readable by that user, and whatever the host writes (`TMPDIR`,
    /// `HOME`) must point to folders it owns.
    pub fn spawn_as(
        dir: tempfile::TempDir,
        args: &[&str],
        env: &[(&str, &str)],
        uid: u32,
    ) -> Result<Self> {
        Self::spawn_with(dir, args, env, Some(uid))
    }

    fn spawn_with(
        dir: tempfile::TempDir,
        args: &[&str],
        env: &[(&str, &str)],
        uid: Option<u32>,
    ) -> Result<Self> {
        let mut cmd = Command::new(onionhost_bin());
        if let Some(uid) = uid {
            use std::os::unix::process::CommandExt as _;
            // Supplementary groups are dropped too (std does when root sets a uid).
            cmd.uid(uid).gid(uid);
        }
        cmd.args(args)
            .current_dir(dir.path())
            .env("RUST_LOG", "debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            // An empty value unsets the variable (NO_COLOR, say, which is set by default).
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let mut child = cmd.spawn().context("spawn onionhost")?;
        let captured = Arc::new((Mutex::new(Captured::default()), Condvar::new()));
        let out = child.stdout.take().context("stdout")?;
        let err = child.stderr.take().context("stderr")?;
        spawn_reader(out, Arc::clone(&captured), false);
        spawn_reader(err, Arc::clone(&captured), true);
        Ok(Self {
            child: Some(child),
            captured,
            dir,
        })
    }

    /// Waits until stdout or stderr contains a match of `pattern` and returns its captures.
    pub fn wait_for(&self, pattern: &str) -> Result<Vec<String>> {
        let re = regex::Regex::new(pattern).context("bad pattern")?;
        let deadline = Instant::now() + DEADLINE;
        let (lock, cvar) = &*self.captured;
        let mut guard = lock.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        loop {
            for text in [&guard.stdout, &guard.stderr] {
                if let Some(caps) = re.captures(text) {
                    return Ok(caps
                        .iter()
                        .map(|m| m.map(|m| m.as_str().to_owned()).unwrap_or_default())
                        .collect());
                }
            }
            let now = Instant::now();
            if now >= deadline || guard.closed == 2 {
                bail!(
                    "onionhost never printed /{pattern}/\n--- stdout\n{}\n--- stderr\n{}",
                    guard.stdout,
                    guard.stderr
                );
            }
            guard = cvar
                .wait_timeout(guard, deadline - now)
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .0;
        }
    }

    /// The URL of tab `name`, once the host prints that it serves it.
    pub fn url(&self, tab: &str) -> Result<String> {
        let caps = self.wait_for(&format!(
            r"\[{}\] serving at (http://127\.0\.0\.1:\d+/)",
            regex::escape(tab)
        ))?;
        Ok(caps[1].clone())
    }

    /// Everything printed so far (stdout then stderr).
    pub fn output(&self) -> String {
        let guard = self
            .captured
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        format!("{}{}", guard.stdout, guard.stderr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The sockets the host listens on now, read from `/proc`: its open socket inodes
    /// (`/proc/<pid>/fd`) matched against the listening TCP (IPv4) and Unix sockets of the
    /// network namespace (`/proc/net/tcp`, `/proc/net/unix`).
    pub fn listening(&self) -> Result<Listening> {
        let mut inodes = std::collections::HashSet::new();
        let fds = format!("/proc/{}/fd", self.pid());
        for fd in std::fs::read_dir(&fds).with_context(|| format!("read {fds}"))? {
            let Ok(target) = std::fs::read_link(fd?.path()) else {
                continue;
            };
            if let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
            {
                inodes.insert(inode.to_owned());
            }
        }
        let mut listening = Listening::default();
        let tcp = std::fs::read_to_string("/proc/net/tcp").context("read /proc/net/tcp")?;
        for line in tcp.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is hex `ADDR:PORT` (the address in host byte order); 0A is LISTEN.
            if fields.len() > 9 && fields[3] == "0A" && inodes.contains(fields[9]) {
                let (addr, port) = fields[1]
                    .split_once(':')
                    .context("a /proc/net/tcp address")?;
                let addr = std::net::Ipv4Addr::from(u32::from_be(u32::from_str_radix(addr, 16)?));
                let port = u16::from_str_radix(port, 16)?;
                listening.tcp.push(std::net::SocketAddr::from((addr, port)));
            }
        }
        let unix = std::fs::read_to_string("/proc/net/unix").context("read /proc/net/unix")?;
        for line in unix.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Flags 00010000 is __SO_ACCEPTCON: a listening socket.
            if fields.len() > 6 && fields[3] == "00010000" && inodes.contains(fields[6]) {
                listening
                    .unix
                    .push(fields.get(7).map(PathBuf::from).unwrap_or_default());
            }
        }
        Ok(listening)
    }

    /// Sends SIGTERM and waits for the process to exit (with a deadline).
    pub fn stop(self) -> Result<Stopped> {
        self.terminate()?;
        self.wait_exit()
    }

    /// Sends SIGTERM (the user's first Ctrl-C) and returns at once, for a test that watches
    /// what the host does while it stops; [`TestHost::wait_exit`] then waits for the end.
    pub fn terminate(&self) -> Result<()> {
        let child = self.child.as_ref().context("already stopped")?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id())?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).context("SIGTERM")
    }

    /// Waits for the process to exit on its own (with a deadline).
    pub fn wait_exit(mut self) -> Result<Stopped> {
        let mut child = self.child.take().context("already stopped")?;
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                bail!("onionhost did not exit in time\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // Wait for the readers to see end-of-file so that the output is complete.
        let (lock, cvar) = &*self.captured;
        let mut guard = lock.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        while guard.closed < 2 {
            let (g, timeout) = cvar
                .wait_timeout(guard, Duration::from_secs(10))
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            guard = g;
            if timeout.timed_out() {
                break;
            }
        }
        Ok(Stopped {
            status,
            stdout: guard.stdout.clone(),
            stderr: guard.stderr.clone(),
        })
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_reader(
    stream: impl std::io::Read + Send + 'static,
    captured: Arc<(Mutex<Captured>, Condvar)>,
    is_stderr: bool,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line).unwrap_or(0);
            let (lock, cvar) = &*captured;
            let mut guard = lock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if n == 0 {
                guard.closed += 1;
                cvar.notify_all();
                return;
            }
            if is_stderr {
                guard.stderr.push_str(&line);
            } else {
                guard.stdout.push_str(&line);
            }
            cvar.notify_all();
        }
    });
}

/// The body of `GET url` as text, for tests that read a tab's page; panics on any failure.
pub async fn page_text(url: &str) -> String {
    reqwest::get(url)
        .await
        .unwrap_or_else(|err| panic!("GET {url}: {err}"))
        .text()
        .await
        .unwrap_or_else(|err| panic!("the body of {url}: {err}"))
}
