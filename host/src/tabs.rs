//! What each tab is doing now: the host's status record, for `onionhost tabs` and the live view.
//!
//! The supervisor, the transports and the console's events keep it up to date; readers take a
//! cheap [`Tabs::snapshot`] and wait for the next change with [`Tabs::changes`]. It holds what
//! the console may show and nothing more: no chat message, no name, no file name unless the
//! tab reports one (a transfer's label, which a mode sends only when its config asks). A
//! private tab's client key is kept apart, in a [`ClientKey`] whose `Debug` hides it, and is
//! never serialized with the rest.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use onionhost_sdk::{Direction, TabEvent};
use serde::Serialize;
use tokio::sync::watch;
use zeroize::Zeroizing;

/// How many ended tabs are remembered (the oldest are forgotten first), so that a host whose
/// tabs come and go for weeks holds a bounded record.
const ENDED_KEPT: usize = 32;

/// How often a transfer's progress alone wakes those waiting for changes, at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Where a tab is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum State {
    /// Being built, or waiting for its start time (`why` says until when).
    Starting,
    /// Its onion service is being published.
    Publishing,
    /// Visitors can reach it.
    Serving,
    /// Stopping gracefully: no new visitors, transfers in flight finish.
    Stopping,
    /// Ended normally.
    Stopped,
    /// Ended with an error (`why`).
    Failed,
}

impl State {
    /// Whether the tab has ended.
    pub(crate) fn is_ended(self) -> bool {
        matches!(self, Self::Stopped | Self::Failed)
    }

    /// The word for it, as in `onionhost tabs list`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Publishing => "publishing",
            Self::Serving => "serving",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }
}

/// A private tab's client authorization key (base32), which visitors need. Its `Debug`
/// hides it; it is not serialized with the tab's status.
#[derive(Clone)]
pub(crate) struct ClientKey(Zeroizing<String>);

impl ClientKey {
    /// The key, for the user who asks for it (`tabs show`, the live view's key view).
    pub(crate) fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientKey(hidden)")
    }
}

/// One transfer in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TransferStatus {
    /// The tab's id for it.
    pub(crate) id: u64,
    /// Download or upload.
    pub(crate) direction: Direction,
    /// Bytes moved so far.
    pub(crate) bytes: u64,
    /// Its size, when known.
    pub(crate) total: Option<u64>,
    /// Bytes per second since it started.
    pub(crate) rate: u64,
}

/// What one tab is doing now.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TabStatus {
    /// The tab's name.
    pub(crate) name: String,
    /// Its mode.
    pub(crate) mode: String,
    /// Where it is in its life.
    pub(crate) state: State,
    /// Why it is in that state, when there is more to say: why it stops, stopped or failed;
    /// until when it waits to start.
    pub(crate) why: Option<String>,
    /// Its URL (`http://….onion/`, or `http://127.0.0.1:PORT/` with `--local-only`), once
    /// known.
    pub(crate) address: Option<String>,
    /// Whether visitors need a client key (a private onion service).
    pub(crate) private: bool,
    /// Whether it was added at run time (`onionhost tabs add`), not read from the config.
    pub(crate) added: bool,
    /// Visitors (chat members) present now, if the mode reports them.
    pub(crate) present: Option<usize>,
    /// Visitors with a connection open now, counted by the host for every mode, as far as
    /// the transport tells them apart: one per onion service circuit, one per loopback
    /// connection.
    pub(crate) visitors: usize,
    /// Transfers in flight.
    pub(crate) transfers: Vec<TransferStatus>,
    /// The client key of a private tab, once known. Never serialized.
    #[serde(skip)]
    pub(crate) client_key: Option<ClientKey>,
}

/// A transfer as recorded.
struct Transfer {
    id: u64,
    direction: Direction,
    bytes: u64,
    total: Option<u64>,
    started: Instant,
}

/// A tab as recorded.
struct Entry {
    status: TabStatus,
    transfers: Vec<Transfer>,
}

#[derive(Default)]
struct Record {
    /// In the order the tabs were started.
    entries: Vec<Entry>,
    /// When progress last woke the waiters.
    last_progress_notice: Option<Instant>,
}

/// The status of every tab, shared by whoever updates or reads it. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Tabs {
    record: Arc<Mutex<Record>>,
    /// Bumped at every change.
    changes: Arc<watch::Sender<u64>>,
}

impl Default for Tabs {
    fn default() -> Self {
        Self {
            record: Arc::default(),
            changes: Arc::new(watch::Sender::new(0)),
        }
    }
}

impl Tabs {
    /// Every tab, running or ended (the most recent [`ENDED_KEPT`] ended ones), in the order
    /// they were started.
    pub(crate) fn snapshot(&self) -> Vec<TabStatus> {
        let record = self.lock();
        let now = Instant::now();
        record.entries.iter().map(|e| e.snapshot(now)).collect()
    }

    /// The tab called `name` (the running one, if an ended one had that name too).
    pub(crate) fn get(&self, name: &str) -> Option<TabStatus> {
        let record = self.lock();
        record
            .entries
            .iter()
            .rev()
            .find(|e| e.status.name == name)
            .map(|e| e.snapshot(Instant::now()))
    }

    /// A receiver that sees every change: `changed().await` returns after the next one.
    /// Progress of transfers wakes it at most every [`PROGRESS_EVERY`].
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// A new tab starts (its record replaces that of an ended tab with its name).
    pub(crate) fn starting(&self, name: &str, mode: &str, private: bool, added: bool) {
        self.update(|record| {
            record.entries.retain(|e| e.status.name != name);
            record.entries.push(Entry {
                status: TabStatus {
                    name: name.to_owned(),
                    mode: mode.to_owned(),
                    state: State::Starting,
                    why: None,
                    address: None,
                    private,
                    added,
                    present: None,
                    visitors: 0,
                    transfers: Vec::new(),
                    client_key: None,
                },
                transfers: Vec::new(),
            });
            let ended = record
                .entries
                .iter()
                .filter(|e| e.status.state.is_ended())
                .count();
            let mut forget = ended.saturating_sub(ENDED_KEPT);
            record.entries.retain(|e| {
                let drop = forget > 0 && e.status.state.is_ended();
                forget -= usize::from(drop);
                !drop
            });
        });
    }

    /// A tab of the config, before the host can start it: `why` says what it waits for
    /// (connecting to Tor). Its start ([`Tabs::starting`]) replaces this record.
    pub(crate) fn waiting(&self, name: &str, mode: &str, private: bool, why: &str) {
        self.starting(name, mode, private, false);
        self.set(name, |status| status.why = Some(why.to_owned()));
    }

    /// The tab's onion service is being published.
    pub(crate) fn publishing(&self, name: &str) {
        self.set(name, |status| {
            if !status.state.is_ended() && status.state != State::Stopping {
                status.state = State::Publishing;
            }
        });
    }

    /// The tab's address (and client key) is known, and visitors can reach it from `until`
    /// (`None`: now, it serves).
    pub(crate) fn reachable(
        &self,
        name: &str,
        url: &str,
        client_key: Option<&Zeroizing<String>>,
        until: Option<String>,
    ) {
        self.set(name, |status| {
            status.address = Some(url.to_owned());
            status.client_key = client_key.map(|key| ClientKey(key.clone()));
            if status.state.is_ended() || status.state == State::Stopping {
                return;
            }
            match until {
                Some(until) => {
                    status.state = State::Starting;
                    status.why = Some(format!("reachable from {until}"));
                }
                None => {
                    status.state = State::Serving;
                    status.why = None;
                }
            }
        });
    }

    /// The tab stops gracefully, for `why`.
    pub(crate) fn stopping(&self, name: &str, why: &str) {
        self.set(name, |status| {
            if !status.state.is_ended() {
                status.state = State::Stopping;
                status.why = Some(why.to_owned());
            }
        });
    }

    /// The tab ended: stopped (keeping the reason it was stopped for), or failed with the
    /// error.
    pub(crate) fn ended(&self, name: &str, outcome: Result<(), String>) {
        self.update(|record| {
            let Some(entry) = record.running_mut(name) else {
                return;
            };
            entry.transfers.clear();
            entry.status.present = None;
            entry.status.visitors = 0;
            match outcome {
                Ok(()) => entry.status.state = State::Stopped,
                Err(why) => {
                    entry.status.state = State::Failed;
                    entry.status.why = Some(why);
                }
            }
        });
    }

    /// Records what a tab reported: visitors present, transfers.
    pub(crate) fn event(&self, name: &str, event: &TabEvent) {
        let mut record = self.lock();
        let Some(entry) = record.running_mut(name) else {
            return;
        };
        let mut notify = true;
        match *event {
            TabEvent::VisitorJoined { present } | TabEvent::VisitorLeft { present } => {
                entry.status.present = Some(present);
            }
            TabEvent::TransferStarted {
                id,
                direction,
                total_bytes,
                ..
            } => {
                entry.transfers.retain(|t| t.id != id);
                entry.transfers.push(Transfer {
                    id,
                    direction,
                    bytes: 0,
                    total: total_bytes,
                    started: Instant::now(),
                });
            }
            TabEvent::TransferProgress { id, bytes } => {
                if let Some(transfer) = entry.transfers.iter_mut().find(|t| t.id == id) {
                    transfer.bytes = bytes;
                }
                let now = Instant::now();
                notify = record
                    .last_progress_notice
                    .is_none_or(|last| now.duration_since(last) >= PROGRESS_EVERY);
                if notify {
                    record.last_progress_notice = Some(now);
                }
            }
            TabEvent::TransferFinished { id, .. } => {
                entry.transfers.retain(|t| t.id != id);
            }
            _ => notify = false,
        }
        drop(record);
        if notify {
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// `visitors` visitors have a connection open to the tab now.
    pub(crate) fn visitors(&self, name: &str, visitors: usize) {
        self.set(name, |status| status.visitors = visitors);
    }

    fn set(&self, name: &str, change: impl FnOnce(&mut TabStatus)) {
        self.update(|record| {
            if let Some(entry) = record.running_mut(name) {
                change(&mut entry.status);
            }
        });
    }

    fn update(&self, change: impl FnOnce(&mut Record)) {
        change(&mut self.lock());
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Record {
    /// The latest record of `name` (the one that may still run).
    fn running_mut(&mut self, name: &str) -> Option<&mut Entry> {
        self.entries
            .iter_mut()
            .rev()
            .find(|e| e.status.name == name)
    }
}

impl Entry {
    fn snapshot(&self, now: Instant) -> TabStatus {
        let mut status = self.status.clone();
        status.transfers = self
            .transfers
            .iter()
            .map(|t| TransferStatus {
                id: t.id,
                direction: t.direction,
                bytes: t.bytes,
                total: t.total,
                rate: crate::console::rate(t.bytes, now.duration_since(t.started)),
            })
            .collect();
        status
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use onionhost_sdk::TransferOutcome;

    use super::*;

    #[test]
    fn a_tab_goes_through_its_states() {
        let tabs = Tabs::default();
        tabs.starting("files", "share", true, false);
        assert_eq!(tabs.get("files").unwrap().state, State::Starting);
        tabs.publishing("files");
        assert_eq!(tabs.get("files").unwrap().state, State::Publishing);
        let key = Zeroizing::new("KEY".to_owned());
        tabs.reachable("files", "http://x.onion/", Some(&key), None);
        let status = tabs.get("files").unwrap();
        assert_eq!(status.state, State::Serving);
        assert_eq!(status.address.as_deref(), Some("http://x.onion/"));
        assert_eq!(status.client_key.as_ref().unwrap().expose(), "KEY");
        assert!(status.private);
        tabs.stopping("files", "after the first download");
        // A late announcement does not make a stopping tab serving again.
        tabs.reachable("files", "http://x.onion/", None, None);
        assert_eq!(tabs.get("files").unwrap().state, State::Stopping);
        tabs.ended("files", Ok(()));
        let status = tabs.get("files").unwrap();
        assert_eq!(status.state, State::Stopped);
        assert_eq!(status.state.as_str(), "stopped");
        assert_eq!(status.why.as_deref(), Some("after the first download"));
    }

    #[test]
    fn the_key_is_never_serialized_nor_debug_printed() {
        let tabs = Tabs::default();
        tabs.starting("a", "chat", true, true);
        let key = Zeroizing::new("SECRETKEY".to_owned());
        tabs.reachable("a", "http://x.onion/", Some(&key), None);
        let status = tabs.get("a").unwrap();
        let json = serde_json::to_string(&status).unwrap();
        assert!(!json.contains("SECRETKEY"), "{json}");
        assert!(json.contains(r#""state":"serving""#), "{json}");
        assert!(!format!("{status:?}").contains("SECRETKEY"));
    }

    #[test]
    fn a_pending_start_says_until_when() {
        let tabs = Tabs::default();
        tabs.starting("later", "chat", false, false);
        tabs.reachable("later", "http://127.0.0.1:1/", None, Some("12:00".into()));
        let status = tabs.get("later").unwrap();
        assert_eq!(status.state, State::Starting);
        assert_eq!(status.why.as_deref(), Some("reachable from 12:00"));
        assert!(status.address.is_some());
    }

    #[test]
    fn events_give_visitors_and_transfers() {
        let tabs = Tabs::default();
        tabs.starting("t", "share", false, false);
        tabs.event("t", &TabEvent::VisitorJoined { present: 2 });
        tabs.event(
            "t",
            &TabEvent::TransferStarted {
                id: 4,
                direction: Direction::Download,
                total_bytes: Some(100),
                label: None,
            },
        );
        tabs.event("t", &TabEvent::TransferProgress { id: 4, bytes: 40 });
        let status = tabs.get("t").unwrap();
        assert_eq!(status.present, Some(2));
        assert_eq!(status.transfers.len(), 1);
        assert_eq!(status.transfers[0].bytes, 40);
        assert_eq!(status.transfers[0].total, Some(100));
        tabs.event(
            "t",
            &TabEvent::TransferFinished {
                id: 4,
                bytes: 100,
                outcome: TransferOutcome::Completed,
                saved_to: None,
            },
        );
        assert!(tabs.get("t").unwrap().transfers.is_empty());
        // Events of a tab nobody knows change nothing.
        tabs.event("ghost", &TabEvent::VisitorJoined { present: 1 });
        assert_eq!(tabs.snapshot().len(), 1);
    }

    #[test]
    fn a_failure_keeps_why_and_a_new_tab_of_that_name_replaces_it() {
        let tabs = Tabs::default();
        tabs.starting("a", "chat", false, false);
        tabs.starting("b", "chat", false, false);
        tabs.ended("a", Err("cannot listen".into()));
        let status = tabs.get("a").unwrap();
        assert_eq!(status.state, State::Failed);
        assert_eq!(status.why.as_deref(), Some("cannot listen"));
        tabs.starting("a", "share", false, true);
        let names: Vec<_> = tabs.snapshot().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(tabs.get("a").unwrap().state, State::Starting);
    }

    #[test]
    fn only_the_latest_ended_tabs_are_kept() {
        let tabs = Tabs::default();
        tabs.starting("running", "chat", false, false);
        for n in 0..ENDED_KEPT + 5 {
            let name = format!("t{n}");
            tabs.starting(&name, "chat", false, false);
            tabs.ended(&name, Ok(()));
        }
        tabs.starting("last", "chat", false, false);
        let snapshot = tabs.snapshot();
        assert_eq!(snapshot.len(), ENDED_KEPT + 2);
        assert_eq!(snapshot[0].name, "running");
        assert_eq!(snapshot[1].name, "t5");
    }

    #[tokio::test]
    async fn waiters_see_changes() {
        let tabs = Tabs::default();
        let mut changes = tabs.changes();
        changes.mark_unchanged();
        let waiter = tokio::spawn(async move {
            changes.changed().await.unwrap();
        });
        tabs.starting("a", "chat", false, false);
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
