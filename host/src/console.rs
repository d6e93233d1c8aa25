//! The console: what the host tells its user on standard output, tab by tab.
//!
//! This is the user interface, not a log: it shows tab addresses, events and why a tab
//! stopped. It never shows message contents, usernames or keys; file names only when a mode
//! was asked to report them.

#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use onionhost_sdk::{Direction, TabEvent, TransferOutcome};

use crate::tabs::Tabs;

pub(crate) mod form;
pub(crate) mod live;
pub(crate) mod pane;
mod qr;
mod rows;
mod show;

use pane::{Pane, Source};

/// How often one transfer's progress is shown at most, and how long a transfer runs before
/// its first progress line: a short transfer gets only its start and end lines, and a long
/// one on a service's log (stdout not a terminal) one line per 10 s, not a stream of them.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What the live view's pane shows in place of a client key.
const KEY_HIDDEN: &str = "(hidden here: select the tab, Enter, then k shows it)";

/// Progress of one transfer, for rates.
struct Transfer {
    started: Instant,
    last_shown: Instant,
    total: Option<u64>,
    direction: Direction,
}

/// Prints lines for the user. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Console {
    transfers: Arc<Mutex<HashMap<(String, u64), Transfer>>>,
    /// How many transfers are in flight, for those who wait for none to be.
    in_flight: Arc<tokio::sync::watch::Sender<usize>>,
    /// The live view's pane, where lines go instead of stdout while the view is open.
    pane: Option<Pane>,
    /// What each tab is doing now, fed by the same calls that print.
    tabs: Tabs,
    /// In tests: every line printed, to assert on.
    #[cfg(test)]
    captured: Arc<Mutex<Vec<String>>>,
}

impl Console {
    /// A console whose lines go to `pane` while the live view has it open, and to stdout
    /// otherwise.
    pub(crate) fn with_pane(pane: Pane) -> Self {
        Self {
            pane: Some(pane),
            ..Self::default()
        }
    }

    /// What each tab is doing now: its status record, which the supervisor and the
    /// transports keep and this console's events feed.
    pub(crate) fn tabs(&self) -> &Tabs {
        &self.tabs
    }

    /// Prints a line about the host as a whole.
    pub(crate) fn host(&self, message: &str) {
        self.print(message);
    }

    /// Prints a line about one tab.
    ///
    /// Tabs (plugins among them) supply part of these lines: their notices, stop reasons and
    /// folders. Shown as they are, a control character could rewrite the terminal (an escape
    /// sequence, a carriage return over an earlier line) and a bidi override could disguise
    /// the line, so both are shown by their code point.
    pub(crate) fn tab(&self, tab: &str, message: &str) {
        self.print(&format!("[{}] {}", printable(tab), printable(message)));
    }

    /// Prints `text` (a tab's address or client key) as a QR code, after a line saying what it
    /// is. Only here, on the console: a QR code shows what it encodes.
    pub(crate) fn qr(&self, tab: &str, what: &str, text: &str) {
        match qr::render(text) {
            Some(lines) => {
                self.tab(tab, &format!("{what} as a QR code:"));
                for line in lines {
                    self.print(&line);
                }
            }
            None => self.tab(tab, &format!("{what} is too long for a QR code")),
        }
    }

    fn print(&self, line: &str) {
        #[cfg(test)]
        self.captured
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line.to_owned());
        if self
            .pane
            .as_ref()
            .is_some_and(|pane| pane.push(Source::Console, &self.without_keys(line)))
        {
            return;
        }
        let mut out = std::io::stdout().lock();
        // A closed stdout must not take the host down: the tabs keep serving.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// `line` with every tab's client key hidden, for the live view's pane: there the key is
    /// shown only on request (the show view's `k`), not to whoever sees the screen. The
    /// transports record a tab's key (`Tabs::reachable`) before they print its lines.
    fn without_keys(&self, line: &str) -> String {
        let mut line = line.to_owned();
        for tab in self.tabs.snapshot() {
            if let Some(key) = tab.client_key.as_ref().map(|k| k.expose().to_owned())
                && !key.is_empty()
                && line.contains(&key)
            {
                line = line.replace(&key, KEY_HIDDEN);
            }
        }
        line
    }

    /// How many transfers (downloads, uploads) have started and not finished, in every tab.
    pub(crate) fn transfers_in_flight(&self) -> usize {
        self.transfers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Returns once no transfer is in flight.
    pub(crate) async fn transfers_ended(&self) {
        let mut in_flight = self.in_flight.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = in_flight.wait_for(|count| *count == 0).await;
    }

    /// Shows an event a tab reported.
    pub(crate) fn event(&self, tab: &str, event: TabEvent) {
        self.event_at(tab, event, Instant::now());
    }

    /// [`Console::event`], as seen at `now` (tests pass another time).
    fn event_at(&self, tab: &str, event: TabEvent, now: Instant) {
        self.tabs.event(tab, &event);
        let mut transfers = self
            .transfers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let line = match event {
            TabEvent::VisitorJoined { present } => format!("someone joined ({present} present)"),
            TabEvent::VisitorLeft { present } => format!("someone left ({present} present)"),
            TabEvent::TransferStarted {
                id,
                direction,
                total_bytes,
                label,
            } => {
                transfers.insert(
                    (tab.to_owned(), id),
                    Transfer {
                        started: now,
                        last_shown: now,
                        total: total_bytes,
                        direction,
                    },
                );
                let size = total_bytes
                    .map(|n| format!(" ({})", human_bytes(n)))
                    .unwrap_or_default();
                let label = label.map(|l| format!(" {l:?}")).unwrap_or_default();
                format!("{} #{id}{label} started{size}", noun(direction))
            }
            TabEvent::TransferProgress { id, bytes } => {
                let Some(transfer) = transfers.get_mut(&(tab.to_owned(), id)) else {
                    return;
                };
                if now.duration_since(transfer.last_shown) < PROGRESS_EVERY {
                    return;
                }
                transfer.last_shown = now;
                let of = transfer
                    .total
                    .filter(|&total| total > 0)
                    .map(|total| {
                        let percent = u128::from(bytes.min(total)) * 100 / u128::from(total);
                        format!(" of {} ({percent}%)", human_bytes(total))
                    })
                    .unwrap_or_default();
                format!(
                    "{} #{id}: {}{of}, {}/s",
                    noun(transfer.direction),
                    human_bytes(bytes),
                    human_bytes(rate(bytes, now.duration_since(transfer.started)))
                )
            }
            TabEvent::TransferFinished {
                id,
                bytes,
                outcome,
                saved_to,
            } => {
                let transfer = transfers.remove(&(tab.to_owned(), id));
                let direction = transfer
                    .as_ref()
                    .map_or(Direction::Download, |t| t.direction);
                let elapsed = transfer.map_or(Duration::ZERO, |t| now.duration_since(t.started));
                let how = match outcome {
                    TransferOutcome::Completed => "finished",
                    TransferOutcome::Cancelled => "cancelled",
                    TransferOutcome::Failed => "failed",
                };
                // A failure is the host's side: say so, so that nobody blames the visitor.
                let why = match (outcome, direction) {
                    (TransferOutcome::Failed, Direction::Download) => {
                        "; a shared file changed, was deleted or could not be read after \
                         sharing started"
                    }
                    (TransferOutcome::Failed, Direction::Upload) => {
                        "; the host could not finish it"
                    }
                    _ => "",
                };
                let saved = saved_to
                    .map(|s| format!(", saved in {s}"))
                    .unwrap_or_default();
                format!(
                    "{} #{id} {how}: {} in {:.1} s ({}/s){saved}{why}",
                    noun(direction),
                    human_bytes(bytes),
                    elapsed.as_secs_f64(),
                    human_bytes(rate(bytes, elapsed))
                )
            }
            TabEvent::Notice { message } => message,
            other => format!("{other:?}"),
        };
        self.in_flight.send_replace(transfers.len());
        drop(transfers);
        self.tab(tab, &line);
    }
}

/// `text` as QR code lines (see `qr.rs`); `None` if it is too long for one.
pub(crate) fn qr_lines(text: &str) -> Option<Vec<String>> {
    qr::render(text)
}

#[cfg(test)]
impl Console {
    /// Every line printed so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.captured
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// `text` with control characters and the invisible characters that reorder or hide text
/// (`onionhost_sdk::text::is_disguising`) shown as `\u{..}`, so that one line of the console
/// stays one honest line.
pub(crate) fn printable(text: &str) -> String {
    // The sdk's one list of characters that can disguise text.
    let hidden = onionhost_sdk::text::is_disguising;
    if !text.chars().any(hidden) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if hidden(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn noun(direction: Direction) -> &'static str {
    match direction {
        Direction::Download => "download",
        Direction::Upload => "upload",
    }
}

pub(crate) fn rate(bytes: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        bytes
    } else {
        (bytes as f64 / secs) as u64
    }
}

/// `1536` -> `1.5 KiB`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use onionhost_sdk::{Direction, TabEvent, TransferOutcome};

    use super::{Console, human_bytes};

    /// Stdout that is not a terminal (a service's log) gets a transfer's start and end, and
    /// progress only for a transfer that lasts, one line per 10 s at most, with no name.
    #[test]
    fn progress_lines_come_only_for_long_transfers_and_at_most_every_10_s() {
        let console = Console::default();
        let start = Instant::now();
        let at = |secs: f64| start + Duration::from_secs_f64(secs);
        console.event_at(
            "t",
            TabEvent::TransferStarted {
                id: 1,
                direction: Direction::Download,
                total_bytes: Some(100 << 20),
                label: None,
            },
            start,
        );
        // Progress as a mode reports it, four times a second, for 25 s.
        for quarter in 1..100_u32 {
            console.event_at(
                "t",
                TabEvent::TransferProgress {
                    id: 1,
                    bytes: u64::from(quarter) << 20,
                },
                at(f64::from(quarter) / 4.0),
            );
        }
        console.event_at(
            "t",
            TabEvent::TransferFinished {
                id: 1,
                bytes: 100 << 20,
                outcome: TransferOutcome::Completed,
                saved_to: None,
            },
            at(25.0),
        );
        let lines = console.lines();
        assert_eq!(
            lines,
            [
                "[t] download #1 started (100.0 MiB)",
                "[t] download #1: 40.0 MiB of 100.0 MiB (40%), 4.0 MiB/s",
                "[t] download #1: 80.0 MiB of 100.0 MiB (80%), 4.0 MiB/s",
                "[t] download #1 finished: 100.0 MiB in 25.0 s (4.0 MiB/s)",
            ]
        );

        // A short one: its start and end only.
        let console = Console::default();
        console.event_at(
            "t",
            TabEvent::TransferStarted {
                id: 2,
                direction: Direction::Upload,
                total_bytes: None,
                label: None,
            },
            start,
        );
        for quarter in 1..36_u32 {
            console.event_at(
                "t",
                TabEvent::TransferProgress {
                    id: 2,
                    bytes: u64::from(quarter) << 10,
                },
                at(f64::from(quarter) / 4.0),
            );
        }
        console.event_at(
            "t",
            TabEvent::TransferFinished {
                id: 2,
                bytes: 36 << 10,
                outcome: TransferOutcome::Completed,
                saved_to: None,
            },
            at(9.0),
        );
        assert_eq!(console.lines().len(), 2, "{:?}", console.lines());
    }

    /// The live view's pane never holds a client key: it is shown on request only.
    #[test]
    fn the_pane_hides_client_keys() {
        let pane = super::Pane::default();
        pane.set_open(true);
        let console = Console::with_pane(pane.clone());
        console.tabs().starting("t", "chat", true, false);
        let key = zeroize::Zeroizing::new("SECRETKEY234".to_owned());
        console
            .tabs()
            .reachable("t", "http://x.onion/", Some(&key), None);
        console.tab("t", "private key (give it to each visitor): SECRETKEY234");
        console.tab("t", "C tor line: x:descriptor:x25519:SECRETKEY234");
        let shown: Vec<String> = pane.last(2).into_iter().map(|l| l.text).collect();
        assert_eq!(
            shown,
            [
                format!(
                    "[t] private key (give it to each visitor): {}",
                    super::KEY_HIDDEN
                ),
                format!("[t] C tor line: x:descriptor:x25519:{}", super::KEY_HIDDEN),
            ]
        );
    }

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn what_a_tab_reports_cannot_rewrite_the_terminal() {
        let console = Console::default();
        console.event(
            "t",
            TabEvent::Notice {
                message: "a\x1b[2J\rb\nc\u{202E}d".to_owned(),
            },
        );
        console.event(
            "t",
            TabEvent::TransferFinished {
                id: 1,
                bytes: 0,
                outcome: TransferOutcome::Completed,
                saved_to: Some("/in/x\x1b]0;title\x07".to_owned()),
            },
        );
        console.tab("t", "stopping: why\nforged line");
        let lines = console.lines();
        assert_eq!(lines[0], "[t] a\\u{1b}[2J\\u{d}b\\u{a}c\\u{202e}d");
        assert!(
            lines[1].ends_with("saved in /in/x\\u{1b}]0;title\\u{7}"),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2], "[t] stopping: why\\u{a}forged line");
        for line in &lines {
            assert!(!line.chars().any(char::is_control), "{line:?}");
        }
    }

    /// Regression (issue 9): a download the host could not finish (the shared file changed
    /// or became unreadable) was shown as "cancelled", which blames the visitor.
    #[test]
    fn a_failed_download_says_why_and_not_cancelled() {
        let console = Console::default();
        console.event(
            "t",
            TabEvent::TransferFinished {
                id: 7,
                bytes: 10,
                outcome: TransferOutcome::Failed,
                saved_to: None,
            },
        );
        let line = &console.lines()[0];
        assert!(
            line.starts_with("[t] download #7 failed: 10 B in "),
            "{line}"
        );
        assert!(
            line.ends_with(
                "; a shared file changed, was deleted or could not be read after sharing started"
            ),
            "{line}"
        );
        assert!(!line.contains("cancelled"), "{line}");
    }

    #[test]
    fn ordinary_lines_are_unchanged() {
        let console = Console::default();
        console.tab("t", "sharing 3 file(s), 1.5 KiB in all – ünïcode 日本");
        assert_eq!(
            console.lines(),
            ["[t] sharing 3 file(s), 1.5 KiB in all – ünïcode 日本"]
        );
    }
}
