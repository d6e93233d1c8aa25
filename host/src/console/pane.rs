//! The live view's log pane: the console's lines and the log's, kept in memory (the last
//! [`KEPT`]) for the view to draw while it owns the terminal. While the pane is closed (before
//! the view takes the terminal, after it gives it back) nothing is kept: the lines go to
//! stdout and stderr as without a view.
//!
//! Nothing here reaches a disk. Each line is made printable when it comes in (a control
//! character drawn into the view would be sent to the terminal as it is).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// How many lines the pane keeps; older ones are forgotten.
const KEPT: usize = 1000;

/// Where a line of the pane comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The console (the user interface: what a plain console would print on stdout).
    Console,
    /// The log (what would go to stderr).
    Log,
}

/// One line of the pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// Where it comes from.
    pub(crate) source: Source,
    /// The line, printable.
    pub(crate) text: String,
}

#[derive(Default)]
struct Lines {
    /// Whether the view shows the pane, so that lines go here.
    open: bool,
    lines: VecDeque<Line>,
    /// Bumped at every line, so that the view redraws only when something came.
    version: u64,
}

/// The pane's lines, shared by those who write them and the view. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Pane(Arc<Mutex<Lines>>);

impl Pane {
    /// Adds `text`, one line per line of it, if the pane is open; `false` if it is closed
    /// (the caller prints the text itself).
    pub(crate) fn push(&self, source: Source, text: &str) -> bool {
        let mut lines = self.lock();
        if !lines.open {
            return false;
        }
        for line in text.lines() {
            if lines.lines.len() == KEPT {
                lines.lines.pop_front();
            }
            lines.lines.push_back(Line {
                source,
                text: super::printable(line.trim_end_matches('\r')),
            });
        }
        lines.version = lines.version.wrapping_add(1);
        true
    }

    /// Opens or closes the pane: lines go here only while it is open.
    pub(crate) fn set_open(&self, open: bool) {
        self.lock().open = open;
    }

    /// The last `n` lines, oldest first.
    pub(crate) fn last(&self, n: usize) -> Vec<Line> {
        let lines = self.lock();
        let skip = lines.lines.len().saturating_sub(n);
        lines.lines.iter().skip(skip).cloned().collect()
    }

    /// A number that changes whenever a line comes.
    pub(crate) fn version(&self) -> u64 {
        self.lock().version
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lines> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pane_keeps_the_last_lines_printable() {
        let pane = Pane::default();
        assert!(!pane.push(Source::Log, "closed"));
        assert!(pane.last(1).is_empty());
        pane.set_open(true);
        let before = pane.version();
        assert!(pane.push(Source::Log, "one\ntwo\x1b[2J\r\n"));
        assert_ne!(pane.version(), before);
        for n in 0..KEPT {
            pane.push(Source::Console, &format!("line {n}"));
        }
        let last = pane.last(2);
        assert_eq!(last[0].text, format!("line {}", KEPT - 2));
        assert_eq!(last[1].source, Source::Console);
        assert_eq!(pane.last(usize::MAX).len(), KEPT);
        let pane = Pane::default();
        pane.set_open(true);
        pane.push(Source::Log, "one\ntwo\x1b[2J\r\n");
        assert_eq!(
            pane.last(5),
            [
                Line {
                    source: Source::Log,
                    text: "one".into()
                },
                Line {
                    source: Source::Log,
                    text: "two\\u{1b}[2J".into()
                }
            ]
        );
    }
}
