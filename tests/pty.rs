//! [`PtyHost`]: the `onionhost` binary in a pseudo-terminal of its own, as a user runs it in
//! a terminal, and the screen it draws there, read back by a terminal emulator (`vt100`).
//!
//! The host gets a new session whose controlling terminal is the pseudo-terminal (`setsid
//! --ctty`, util-linux), so that what it opens as `/dev/tty` is that terminal too, never the
//! one the tests run in.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::host::{DEADLINE, onionhost_bin};

/// The size of the tests' terminal.
pub const ROWS: u16 = 40;
/// The size of the tests' terminal.
pub const COLS: u16 = 140;

/// The end of a synchronized update (`CSI ? 2026 l`): the live view ends each frame with it.
const FRAME_END: &[u8] = b"\x1b[?2026l";

struct Screen {
    parser: vt100::Parser,
    /// The screen as the last whole frame of the live view left it, while the view has the
    /// alternate screen: a frame is written in many pieces, and a test must never see one
    /// half-drawn.
    frame: Option<String>,
    /// How much of [`FRAME_END`] the bytes read so far end with.
    matched: usize,
}

impl Screen {
    /// Feeds what the host wrote to the terminal emulator, keeping the last whole frame.
    fn process(&mut self, bytes: &[u8]) {
        let mut from = 0;
        for (at, &byte) in bytes.iter().enumerate() {
            self.matched = if byte == FRAME_END[self.matched] {
                self.matched + 1
            } else {
                usize::from(byte == FRAME_END[0])
            };
            if self.matched == FRAME_END.len() {
                self.matched = 0;
                self.parser.process(&bytes[from..=at]);
                from = at + 1;
                self.frame = Some(self.parser.screen().contents());
            }
        }
        self.parser.process(&bytes[from..]);
        if !self.parser.screen().alternate_screen() {
            self.frame = None;
        }
    }

    /// What a person would see: the last whole frame of the live view (nothing before the
    /// first is whole), or the ordinary screen.
    fn contents(&self) -> String {
        if self.parser.screen().alternate_screen() {
            self.frame.clone().unwrap_or_default()
        } else {
            self.parser.screen().contents()
        }
    }
}

/// A running `onionhost` in a pseudo-terminal.
pub struct PtyHost {
    child: Option<Child>,
    /// The terminal's side the tests type into (the master).
    keyboard: File,
    /// The host's side, kept to read the terminal's modes once the host has exited.
    terminal: Option<OwnedFd>,
    screen: Arc<(Mutex<Screen>, Condvar)>,
    /// A private directory for this host's config and data, removed on drop.
    pub dir: tempfile::TempDir,
}

/// What a host in a pseudo-terminal left behind.
#[derive(Debug)]
pub struct PtyStopped {
    /// Its exit status.
    pub status: ExitStatus,
    /// The screen as it was left (the ordinary one, once the live view gave it back).
    pub screen: String,
    /// Whether the terminal is back in its ordinary modes: line editing and echo on, the
    /// alternate screen left, the cursor shown, bracketed paste off.
    pub restored: bool,
}

impl PtyHost {
    /// Runs `onionhost ARGS` in a new pseudo-terminal ([`ROWS`] × [`COLS`]), in `dir`, with
    /// extra environment variables.
    pub fn spawn_in(dir: tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        Self::spawn_sized(dir, args, env, ROWS, COLS)
    }

    /// As [`PtyHost::spawn_in`], in a terminal of `rows` × `cols`.
    pub fn spawn_sized(
        dir: tempfile::TempDir,
        args: &[&str],
        env: &[(&str, &str)],
        rows: u16,
        cols: u16,
    ) -> Result<Self> {
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).context("openpty")?;
        // The host must not hold the master side (std closes its own descriptors on exec,
        // `openpty` does not).
        nix::fcntl::fcntl(
            &pty.master,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .context("close-on-exec")?;
        let mut cmd = Command::new("setsid");
        cmd.arg("--ctty")
            .arg(onionhost_bin())
            .args(args)
            .current_dir(dir.path())
            .env("TERM", "xterm-256color")
            .env("RUST_LOG", "debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::from(pty.slave.try_clone()?))
            .stdout(Stdio::from(pty.slave.try_clone()?))
            .stderr(Stdio::from(pty.slave.try_clone()?));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().context("spawn setsid --ctty onionhost")?;
        let screen = Arc::new((
            Mutex::new(Screen {
                parser: vt100::Parser::new(rows, cols, 0),
                frame: None,
                matched: 0,
            }),
            Condvar::new(),
        ));
        let mut reader = File::from(pty.master.try_clone()?);
        let shared = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0; 8192];
            // Ends with an error (EIO) once no process holds the host's side any more.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                let (lock, cvar) = &*shared;
                let mut screen = lock
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                screen.process(&buf[..n]);
                cvar.notify_all();
            }
        });
        Ok(Self {
            child: Some(child),
            keyboard: File::from(pty.master),
            terminal: Some(pty.slave),
            screen,
            dir,
        })
    }

    /// What the screen shows now, row by row.
    pub fn screen(&self) -> String {
        self.lock().contents()
    }

    /// Waits until the screen shows a match of `pattern` and returns its captures.
    pub fn wait_for_screen(&self, pattern: &str) -> Result<Vec<String>> {
        let re = regex::Regex::new(pattern).context("bad pattern")?;
        let screen = self.wait_until(&format!("/{pattern}/"), |screen| re.is_match(screen))?;
        let caps = re.captures(&screen).context("matched")?;
        Ok(caps
            .iter()
            .map(|m| m.map(|m| m.as_str().to_owned()).unwrap_or_default())
            .collect())
    }

    /// Waits until `ok` holds for what the screen shows (`what` says what for the error) and
    /// returns the screen.
    pub fn wait_until(&self, what: &str, ok: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + DEADLINE;
        let (_, cvar) = &*self.screen;
        let mut screen = self.lock();
        loop {
            let contents = screen.contents();
            if ok(&contents) {
                return Ok(contents);
            }
            let now = Instant::now();
            if now >= deadline {
                bail!("the screen never showed {what}:\n{contents}");
            }
            screen = cvar
                .wait_timeout(screen, deadline - now)
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .0;
        }
    }

    /// Types `keys` (bytes as a terminal sends them: `b"q"`, `b"\x03"` for Ctrl-C, `b"\r"`
    /// for Enter).
    pub fn type_keys(&mut self, keys: &[u8]) -> Result<()> {
        self.keyboard.write_all(keys).context("type")?;
        self.keyboard.flush().context("type")
    }

    /// Waits for the process to exit on its own (with a deadline).
    pub fn wait_exit(mut self) -> Result<PtyStopped> {
        let mut child = self.child.take().context("already stopped")?;
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                bail!("onionhost did not exit in time:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let terminal = self.terminal.take().context("already stopped")?;
        let modes = nix::sys::termios::tcgetattr(&terminal).context("tcgetattr")?;
        let line_mode = modes
            .local_flags
            .contains(nix::sys::termios::LocalFlags::ICANON | nix::sys::termios::LocalFlags::ECHO);
        // Everything the host wrote has been read once the reader sees the end; it does once
        // the last holder of the host's side (this one, the host gone) closes it.
        drop(terminal);
        let (lock, cvar) = &*self.screen;
        let mut screen = lock.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let settle = Instant::now() + Duration::from_secs(2);
        while Arc::strong_count(&self.screen) > 1 && Instant::now() < settle {
            let (guard, _) = cvar
                .wait_timeout(screen, Duration::from_millis(50))
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            screen = guard;
        }
        let parsed = screen.parser.screen();
        Ok(PtyStopped {
            status,
            screen: parsed.contents(),
            restored: line_mode
                && !parsed.alternate_screen()
                && !parsed.hide_cursor()
                && !parsed.bracketed_paste(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Screen> {
        self.screen
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for PtyHost {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
