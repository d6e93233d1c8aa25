//! [`TabContext`]: what the host gives each mode instance.

use std::fmt;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::TabEvent;
use crate::notice::{NoticeError, NoticeUrl, Notifier};

type EventFn = dyn Fn(TabEvent) + Send + Sync;
type StopFn = dyn Fn(String) + Send + Sync;

/// The host's side of one tab, as its mode instance sees it.
///
/// Cheap to clone: clone it into the tasks and handlers that need it.
#[derive(Clone)]
pub struct TabContext {
    tab_name: Arc<str>,
    shutdown: CancellationToken,
    events: Arc<EventFn>,
    stop: Arc<StopFn>,
    tasks: TaskTracker,
    /// What sends the tab's notices (webhooks), when the host gives it a way.
    notifier: Option<Arc<dyn Notifier>>,
}

/// Held by a task that outlives its HTTP exchange (a WebSocket after the upgrade); the host
/// waits for every guard to be dropped, up to its grace period, before the tab ends. Get one
/// with [`TabContext::task_guard`].
#[derive(Debug)]
pub struct TaskGuard(#[allow(dead_code)] TaskTrackerToken);

impl TabContext {
    /// Makes a context: see [`crate::host::context`] and [`crate::testing::context`].
    pub(crate) fn new(
        tab_name: impl Into<Arc<str>>,
        shutdown: CancellationToken,
        events: impl Fn(TabEvent) + Send + Sync + 'static,
        stop: impl Fn(String) + Send + Sync + 'static,
    ) -> Self {
        Self {
            tab_name: tab_name.into(),
            shutdown,
            events: Arc::new(events),
            stop: Arc::new(stop),
            tasks: TaskTracker::new(),
            notifier: None,
        }
    }

    /// This context, with `notifier` sending its notices (see [`crate::host::with_notifier`]).
    pub(crate) fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// The tab's name from the config (`name = "..."`), for display.
    pub fn tab_name(&self) -> &str {
        &self.tab_name
    }

    /// Resolves when the tab is stopping. Long-lived tasks (WebSocket loops, streamed
    /// responses) should select on it and end.
    pub async fn shutdown(&self) {
        self.shutdown.cancelled().await;
    }

    /// Whether the tab is stopping.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// A token cancelled when the tab stops, for code that wants to own one.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// A guard for a task the host cannot see: an upgraded connection (WebSocket) leaves the
    /// HTTP server's hands, so without a guard the host could stop before the task has said
    /// goodbye to its visitor. Take it before the upgrade and hold it until the task ends.
    pub fn task_guard(&self) -> TaskGuard {
        TaskGuard(self.tasks.token())
    }

    /// Resolves when no [`TaskGuard`] is held any more (see [`crate::host`]).
    pub(crate) async fn guarded_tasks_ended(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Reports an event to the host's console.
    pub fn report(&self, event: TabEvent) {
        (self.events)(event);
    }

    /// Whether the host can send this tab's notices to `url` (see [`crate::notice`]). Call it
    /// when the tab is built, so that a URL the host cannot honour fails the tab at start.
    pub fn check_notice_url(&self, url: &NoticeUrl) -> Result<(), NoticeError> {
        match &self.notifier {
            Some(notifier) => notifier.check(url),
            None => Err(NoticeError::Unsupported),
        }
    }

    /// Asks the host to POST `text` to `url` in the background, through the tab's own network
    /// path (see [`crate::notice`]). Never waits and never fails: a notice that cannot be sent
    /// is one line on the host's console. `text` must carry nothing a visitor sent.
    pub fn post_notice(&self, url: &NoticeUrl, text: &str) {
        if let Some(notifier) = &self.notifier {
            notifier.post(url, text);
        }
    }

    /// Asks the host to stop this tab (e.g. share after the first complete download).
    ///
    /// The reason is shown on the console. The host then cancels the shutdown signal;
    /// requests in flight get a grace period to finish.
    pub fn request_stop(&self, reason: impl Into<String>) {
        (self.stop)(reason.into());
    }
}

impl fmt::Debug for TabContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TabContext")
            .field("tab_name", &self.tab_name)
            .field("shutting_down", &self.shutdown.is_cancelled())
            .finish_non_exhaustive()
    }
}
