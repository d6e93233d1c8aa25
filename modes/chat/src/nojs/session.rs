//! A member without JavaScript: a session named by an unguessable token in its URL, that
//! stays in the room while its page streams and for a grace period after (each form post
//! reloads the page), and keeps the lines the member has been shown since joining.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use onionhost_sdk::CancellationToken;
use onionhost_sdk::rate::RateLimiter;
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;

use crate::Chat;
use crate::protocol::ServerMessage;
use crate::room::{ActionError, Joined, Membership, RoomEvent, new_token};

/// How many lines a session keeps for its next page load. This is what a page with
/// JavaScript would still show on screen, so it is no history: it starts at the member's
/// join and goes when the member leaves.
const LOG_LINES: usize = 100;

/// How many pages may stream one session at once (the same URL open in several tabs).
const MAX_STREAMS: usize = 4;

/// Every session of one tab, by token.
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    /// The session with this token, if it is still in the room.
    pub(crate) fn get(&self, token: &str) -> Option<Arc<Session>> {
        lock(&self.map).get(token).cloned()
    }

    /// Ends a session: the member leaves the room (announced to everyone) and its pages
    /// stop streaming. Ending an ended session does nothing.
    pub(crate) fn end(&self, session: &Session) {
        lock(&self.map).remove(&session.token);
        session.ended.cancel();
        // Dropping the membership announces the departure.
        drop(lock(&session.membership).take());
    }
}

struct Log {
    lines: VecDeque<(u64, Line)>,
    next: u64,
}

/// A line of a session's page: the room's event, and how long after the member joined it
/// came. The page shows that time rather than the host's clock, which a page must not tell
/// (clock skew links an onion service to its machine: the host sends no `Date` either).
#[derive(Clone)]
pub(crate) struct Line {
    pub(crate) since_join: Duration,
    pub(crate) event: Arc<RoomEvent>,
}

struct Presence {
    /// Pages streaming this session now.
    streams: usize,
    /// When the last page stopped streaming, or the member last posted a form.
    since: Instant,
}

/// One member without JavaScript.
pub(crate) struct Session {
    /// The secret in the session's URLs.
    pub(crate) token: String,
    membership: Mutex<Option<Membership>>,
    log: Mutex<Log>,
    /// The number of the next line to be logged; pages wait on it for new lines.
    logged: watch::Sender<u64>,
    /// The session's own rate limit, on top of the visitor's.
    limit: RateLimiter,
    presence: Mutex<Presence>,
    presence_changed: Notify,
    /// Cancelled when the member has left.
    pub(crate) ended: CancellationToken,
    /// When the member joined; the lines' times count from it.
    joined_at: Instant,
}

/// A page streaming a session; dropping it (the visitor went away) starts the grace period.
pub(crate) struct Attached {
    session: Arc<Session>,
}

impl Session {
    /// Starts a session for a member who just joined, and the task that feeds it.
    pub(crate) fn start(chat: &Arc<Chat>, joined: Joined) -> Arc<Self> {
        let Joined {
            membership,
            events,
            name_refused,
            ..
        } = joined;
        let now = Instant::now();
        let session = Arc::new(Self {
            token: new_token(),
            membership: Mutex::new(Some(membership)),
            log: Mutex::new(Log {
                lines: VecDeque::new(),
                next: 0,
            }),
            logged: watch::Sender::new(0),
            limit: RateLimiter::new(chat.config.rate_limit.rate()),
            presence: Mutex::new(Presence {
                streams: 0,
                since: now,
            }),
            presence_changed: Notify::new(),
            ended: CancellationToken::new(),
            joined_at: now,
        });
        if let Some(err) = name_refused {
            session.push(Arc::new(RoomEvent::new(err.to_message())));
        }
        lock(&chat.sessions.map).insert(session.token.clone(), Arc::clone(&session));
        tokio::spawn(feed(Arc::clone(chat), Arc::clone(&session), events));
        session
    }

    /// The member's name, unless the session has ended.
    pub(crate) fn name(&self) -> Option<String> {
        lock(&self.membership).as_ref().and_then(Membership::name)
    }

    /// Does something as this member, within the member's rate limit.
    pub(crate) fn act(
        &self,
        action: impl FnOnce(&Membership) -> Result<(), ActionError>,
    ) -> Result<(), ActionError> {
        self.touch();
        if self.limit.check().is_err() {
            return Err(ActionError::RateLimited);
        }
        match &*lock(&self.membership) {
            Some(membership) => action(membership),
            None => Err(ActionError::Gone),
        }
    }

    /// Registers a page that streams this session; `None` if too many already do.
    pub(crate) fn attach(self: &Arc<Self>) -> Option<Attached> {
        let mut presence = lock(&self.presence);
        if presence.streams >= MAX_STREAMS {
            return None;
        }
        presence.streams += 1;
        drop(presence);
        self.presence_changed.notify_one();
        Some(Attached {
            session: Arc::clone(self),
        })
    }

    /// A page waits on this for lines after the ones it has shown.
    pub(crate) fn watch_log(&self) -> watch::Receiver<u64> {
        self.logged.subscribe()
    }

    /// The lines numbered `from` and later that are still kept, and the number of the next.
    pub(crate) fn lines_since(&self, from: u64) -> (Vec<Line>, u64) {
        let log = lock(&self.log);
        let lines = log
            .lines
            .iter()
            .filter(|(n, _)| *n >= from)
            .map(|(_, line)| line.clone())
            .collect();
        (lines, log.next)
    }

    /// The member is active (posted a form): restart the grace period.
    fn touch(&self) {
        lock(&self.presence).since = Instant::now();
        self.presence_changed.notify_one();
    }

    fn push(&self, event: Arc<RoomEvent>) {
        let line = Line {
            since_join: self.joined_at.elapsed(),
            event,
        };
        let mut log = lock(&self.log);
        let n = log.next;
        log.next += 1;
        log.lines.push_back((n, line));
        if log.lines.len() > LOG_LINES {
            log.lines.pop_front();
        }
        let next = log.next;
        drop(log);
        self.logged.send_replace(next);
    }

    /// When the member leaves if nothing happens: `None` while a page streams.
    fn leave_at(&self, grace: Duration) -> Option<Instant> {
        let presence = lock(&self.presence);
        (presence.streams == 0).then(|| presence.since + grace)
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let mut presence = lock(&self.session.presence);
        presence.streams = presence.streams.saturating_sub(1);
        if presence.streams == 0 {
            presence.since = Instant::now();
        }
        drop(presence);
        self.session.presence_changed.notify_one();
    }
}

/// Moves the room's events into the session's log until the member leaves: by the leave
/// form, by having no page streaming for the grace period, or because the tab stops.
async fn feed(
    chat: Arc<Chat>,
    session: Arc<Session>,
    mut events: broadcast::Receiver<Arc<RoomEvent>>,
) {
    let shutdown = chat.ctx.shutdown_token();
    let grace = chat.config.nojs_leave_after();
    loop {
        let leave_at = session.leave_at(grace);
        let expired = async {
            match leave_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = session.ended.cancelled() => break,
            () = session.presence_changed.notified() => {}
            () = expired => {
                if session.leave_at(grace).is_some_and(|at| at <= Instant::now()) {
                    break;
                }
            }
            event = events.recv() => match event {
                Ok(event) => session.push(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    session.push(Arc::new(RoomEvent::new(ServerMessage::Error {
                        code: "missed".to_owned(),
                        message: format!("{missed} lines were missed here."),
                    })));
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    chat.sessions.end(&session);
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent, so a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
