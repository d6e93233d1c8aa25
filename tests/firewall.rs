//! [`Firewall`]: nftables rules that refuse the TCP connections one user id opens to a list
//! of ports, and count them, so a test can run a process as that user and prove where it
//! connected. Rules live in a table of their own, removed when the value is dropped (also
//! when the test fails); tables of test processes that are gone are removed at the next start.
//!
//! It needs root and the `nft` tool (Debian's nftables package); without them a test that
//! uses it fails and says so.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail, ensure};

/// The first of the user ids handed out by [`test_uid`]: far above any real account.
const UID_BASE: u32 = 0x4000_0000;

/// A user id of its own for each call, in this test process only: no account has it, and
/// no other test process (a pid apart) gets the same.
pub fn test_uid() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    UID_BASE + std::process::id() * 16 + NEXT.fetch_add(1, Ordering::Relaxed) % 16
}

/// An nftables table with the rules of one user id; removed on drop.
pub struct Firewall {
    nft: PathBuf,
    table: String,
}

impl Firewall {
    /// Rejects (with a TCP reset) every connection that processes of `uid` open to one of
    /// `refused` on any address, counting the attempts, and counts the connections they open
    /// to one of `watched`.
    pub fn new(uid: u32, refused: &[u16], watched: &[u16]) -> Result<Self> {
        ensure!(
            nix::unistd::geteuid().is_root(),
            "this test runs a process as another user and firewalls it with nftables: run it as root"
        );
        ensure!(
            !refused.is_empty() && !watched.is_empty(),
            "no ports to filter"
        );
        let nft = crate::tools::find_tool("nft", "nftables", "this test")?;
        remove_stale_tables(&nft);
        let table = format!("onionhost_test_{}_{uid}", std::process::id());
        let ports = |list: &[u16]| {
            list.iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        // Only a connection's first packet (SYN without ACK) is counted and refused: the
        // counters then count connection attempts.
        let rules = format!(
            "table inet {table} {{\n\
             counter refused {{ }}\n\
             counter watched {{ }}\n\
             chain out {{\n\
             type filter hook output priority 0; policy accept;\n\
             meta skuid {uid} tcp dport {{ {} }} tcp flags & (syn | ack) == syn counter name \"refused\" reject with tcp reset\n\
             meta skuid {uid} tcp dport {{ {} }} tcp flags & (syn | ack) == syn counter name \"watched\"\n\
             }}\n}}\n",
            ports(refused),
            ports(watched)
        );
        run_nft(&nft, &["-f", "-"], Some(&rules)).context("install the test's nftables rules")?;
        Ok(Self { nft, table })
    }

    /// How many connections to the refused ports were attempted (and refused).
    pub fn refused(&self) -> Result<u64> {
        self.counter("refused")
    }

    /// How many connections to the watched ports were opened.
    pub fn watched(&self) -> Result<u64> {
        self.counter("watched")
    }

    fn counter(&self, name: &str) -> Result<u64> {
        let out = run_nft(
            &self.nft,
            &["list", "counter", "inet", &self.table, name],
            None,
        )?;
        let packets = out
            .split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok());
        packets.with_context(|| format!("no packet count in nft's output: {out}"))
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        let _ = run_nft(&self.nft, &["delete", "table", "inet", &self.table], None);
    }
}

/// Runs `nft ARGS` (with `input` on its standard input); its standard output.
fn run_nft(nft: &PathBuf, args: &[&str], input: Option<&str>) -> Result<String> {
    let mut child = Command::new(nft)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run {}", nft.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.unwrap_or_default().as_bytes())
            .context("write to nft")?;
    }
    let out = child.wait_with_output().context("wait for nft")?;
    if !out.status.success() {
        bail!(
            "nft {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Removes the tables of test processes that are gone (a test killed before its drop ran).
fn remove_stale_tables(nft: &PathBuf) {
    let Ok(list) = run_nft(nft, &["list", "tables"], None) else {
        return;
    };
    for name in list
        .lines()
        .filter_map(|l| l.trim().strip_prefix("table inet onionhost_test_"))
    {
        let Some(pid) = name.split('_').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
            == Err(nix::errno::Errno::ESRCH);
        if gone {
            let table = format!("onionhost_test_{name}");
            let _ = run_nft(nft, &["delete", "table", "inet", &table], None);
        }
    }
}
