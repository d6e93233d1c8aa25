//! A minimal, blocking client of tor's control protocol: enough to authenticate with the cookie,
//! send commands, and wait for asynchronous events.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// One authenticated control connection to a tor process.
pub(crate) struct Control {
    reader: BufReader<TcpStream>,
    /// Event lines (`650 ...` without the code) read while waiting for a command's reply.
    events: VecDeque<String>,
}

impl Control {
    /// Connects to `addr` and authenticates with the cookie in `cookie`, before `deadline`.
    pub(crate) fn connect(addr: SocketAddr, cookie: &Path, deadline: Instant) -> Result<Self> {
        let cookie = std::fs::read(cookie)
            .with_context(|| format!("read tor's control cookie {}", cookie.display()))?;
        let timeout = remaining(deadline)?.min(Duration::from_secs(5));
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .with_context(|| format!("connect to tor's control port {addr}"))?;
        let mut control = Self {
            reader: BufReader::new(stream),
            events: VecDeque::new(),
        };
        let hex: String = cookie.iter().map(|b| format!("{b:02x}")).collect();
        control.command(&format!("AUTHENTICATE {hex}"), deadline)?;
        Ok(control)
    }

    /// Sends `line` and returns the lines of its successful reply (codes stripped).
    ///
    /// Errors never repeat the command's arguments: some of them carry keys.
    pub(crate) fn command(&mut self, line: &str, deadline: Instant) -> Result<Vec<String>> {
        let verb = line.split(' ').next().unwrap_or_default().to_owned();
        self.reader
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .with_context(|| format!("send {verb} to tor's control port"))?;
        loop {
            let (code, lines) = self
                .read_reply(deadline)
                .with_context(|| format!("read tor's answer to {verb}"))?;
            if code == 650 {
                self.events.extend(lines);
                continue;
            }
            if !(200..300).contains(&code) {
                bail!(
                    "tor's control port refused {verb}: {code} {}",
                    lines.join(" ")
                );
            }
            return Ok(lines);
        }
    }

    /// Waits for an event line for which `wanted` is true (events queued earlier count too).
    pub(crate) fn wait_event(
        &mut self,
        what: &str,
        wanted: impl Fn(&str) -> bool,
        deadline: Instant,
    ) -> Result<String> {
        loop {
            if let Some(pos) = self.events.iter().position(|e| wanted(e)) {
                return Ok(self.events.remove(pos).unwrap_or_default());
            }
            self.events.clear();
            let (code, lines) = self
                .read_reply(deadline)
                .with_context(|| format!("wait for tor's event {what}"))?;
            if code == 650 {
                self.events.extend(lines);
            }
        }
    }

    fn read_reply(&mut self, deadline: Instant) -> Result<(u16, Vec<String>)> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line(deadline)?;
            let (Some(code), Some(sep)) = (line.get(..3), line.as_bytes().get(3)) else {
                bail!("malformed control reply line {line:?}");
            };
            let code: u16 = code
                .parse()
                .with_context(|| format!("malformed control reply line {line:?}"))?;
            lines.push(line[4..].to_owned());
            match sep {
                b' ' => return Ok((code, lines)),
                b'-' => {}
                b'+' => loop {
                    let data = self.read_line(deadline)?;
                    if data == "." {
                        break;
                    }
                    let data = data.strip_prefix('.').unwrap_or(&data).to_owned();
                    lines.push(data);
                },
                _ => bail!("malformed control reply line {line:?}"),
            }
        }
    }

    fn read_line(&mut self, deadline: Instant) -> Result<String> {
        self.reader
            .get_ref()
            .set_read_timeout(Some(remaining(deadline)?))?;
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => bail!("tor closed the control connection"),
            Ok(_) => Ok(line.trim_end_matches(['\r', '\n']).to_owned()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                bail!("timed out")
            }
            Err(e) => Err(e).context("read from tor's control port"),
        }
    }
}

/// The time left before `deadline`, or an error once it has passed.
fn remaining(deadline: Instant) -> Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        bail!("timed out");
    }
    Ok(left)
}
