//! The tab supervisor: starts every tab, keeps them isolated, and stops them all cleanly.
//!
//! Each tab runs in its own task with its own stop signal. A tab whose mode fails to build,
//! panics, or whose transport fails is marked failed and reported; the other tabs go on.
//! While it runs, a [`Handle`] adds tabs and stops one (the control socket's and the live
//! view's orders), and every tab's status is kept in [`Tabs`]. The host ends when every tab
//! has ended, as scripts expect (a share that stops after its first download ends the
//! process), unless it is kept open: asked by the caller (`keep_open`), or once a tab has been
//! added at run time; then it stays with no tab, like OnionShare's window, until the first
//! signal. The first Ctrl-C / SIGTERM stops every tab: no new
//! visitor gets in, transfers in flight run to their end (as OnionShare does, since a cut
//! download is lost), other connections get [`SHUTDOWN_GRACE`]; a second one closes every
//! connection at once.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use futures::StreamExt as _;
use onionhost_sdk::Visitor;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{HostConfig, TabConfig};
use crate::console::Console;
use crate::modes::{Registry, TabFactory};
use crate::tabs::Tabs;
use crate::transport::Transport;

/// How long, after the first Ctrl-C or SIGTERM, connections that carry no transfer (a page
/// being written, a request a mode keeps waiting) may run on. Transfers in flight are waited
/// for however long they take; once this has passed since the signal and since the last
/// transfer ended (its last bytes may still be on their way out), whatever is left is closed.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How the host's run ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Tabs that ended normally.
    pub(crate) stopped: usize,
    /// Tabs that failed (and were reported).
    pub(crate) failed: usize,
}

/// Everything a tab task needs from the host.
#[derive(Clone)]
struct Shared {
    transport: Arc<Transport>,
    console: Console,
    force_close: CancellationToken,
}

/// How many orders may wait for the supervisor.
const ORDERS_QUEUED: usize = 16;

/// What the supervisor is asked to do while it runs, through a [`Handle`].
enum Order {
    /// Start a tab.
    Add {
        tab: Box<TabConfig>,
        reply: oneshot::Sender<Result<(), OrderError>>,
    },
    /// Stop a tab gracefully.
    Stop {
        name: String,
        reason: String,
        reply: oneshot::Sender<Result<(), OrderError>>,
    },
}

/// Why the supervisor refused an order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OrderError {
    /// A running tab has that name (or one that differs only in case: their keys folders and
    /// console lines would be mistaken for each other).
    #[error("{}", duplicate(name, running))]
    Duplicate {
        /// The name asked for.
        name: String,
        /// The running tab's.
        running: String,
    },
    /// No running tab has that name.
    #[error("{}", no_such_tab(name, running))]
    NoSuchTab {
        /// The name asked for.
        name: String,
        /// The tabs that run.
        running: Vec<String>,
    },
    /// The host is stopping (or has stopped): it starts nothing any more.
    #[error("the host is stopping")]
    HostStopping,
}

fn duplicate(name: &str, running: &str) -> String {
    if name == running {
        format!("a tab named {name:?} is running already; choose another name")
    } else {
        format!(
            "tab name {name:?} differs only in case from the running tab {running:?}; choose another name"
        )
    }
}

fn no_such_tab(name: &str, running: &[String]) -> String {
    if running.is_empty() {
        format!("no tab named {name:?} is running; no tab is")
    } else {
        format!(
            "no tab named {name:?} is running; the running tabs are {}",
            running
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// Orders to the running supervisor, and the tabs' status: what the control socket and the
/// live view use. Cheap to clone; the orders are carried out in the supervisor's task.
#[derive(Clone)]
pub(crate) struct Handle {
    orders: mpsc::Sender<Order>,
    tabs: Tabs,
}

/// The supervisor's end of its [`Handle`]s, given to [`run`].
pub(crate) struct Orders {
    receiver: mpsc::Receiver<Order>,
    keep_open: bool,
}

impl Orders {
    /// Keeps the host open when no tab runs (until the first signal), even before any tab
    /// was added at run time: for a host driven from its terminal.
    pub(crate) fn keeping_open(self) -> Self {
        Self {
            keep_open: true,
            ..self
        }
    }
}

/// A handle and the orders it sends, for the supervisor that `console` reports for.
pub(crate) fn handle(console: &Console) -> (Handle, Orders) {
    let (sender, receiver) = mpsc::channel(ORDERS_QUEUED);
    (
        Handle {
            orders: sender,
            tabs: console.tabs().clone(),
        },
        Orders {
            receiver,
            keep_open: false,
        },
    )
}

impl Handle {
    /// Starts `tab` (checked like a `[[tab]]`, see `config::check_added_tab`) as a run-time
    /// tab; returns once it is starting (its [`Tabs`] record exists), refused if a running tab
    /// has its name. Watch [`Handle::tabs`] to see it serve or fail.
    pub(crate) async fn add(&self, tab: TabConfig) -> Result<(), OrderError> {
        let (reply, answer) = oneshot::channel();
        self.order(Order::Add {
            tab: Box::new(tab),
            reply,
        })
        .await?;
        answer.await.unwrap_or(Err(OrderError::HostStopping))
    }

    /// Stops the running tab `name` gracefully, as its own stop request would (no new
    /// visitors; requests and transfers in flight finish), with `reason` on the console;
    /// returns once it is stopping. A tab that is stopping already is left as it is.
    pub(crate) async fn stop(&self, name: &str, reason: &str) -> Result<(), OrderError> {
        let (reply, answer) = oneshot::channel();
        self.order(Order::Stop {
            name: name.to_owned(),
            reason: reason.to_owned(),
            reply,
        })
        .await?;
        answer.await.unwrap_or(Err(OrderError::HostStopping))
    }

    /// What every tab is doing.
    pub(crate) fn tabs(&self) -> &Tabs {
        &self.tabs
    }

    async fn order(&self, order: Order) -> Result<(), OrderError> {
        self.orders
            .send(order)
            .await
            .map_err(|_| OrderError::HostStopping)
    }
}

/// The running tabs and what the supervisor needs to start more.
struct Supervisor<'r> {
    registry: &'r Registry,
    shared: Shared,
    shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
    /// Each running tab's name and stop token, by its task.
    running: HashMap<tokio::task::Id, (String, CancellationToken)>,
    summary: Summary,
    /// Whether the host stays when no tab runs.
    keep_open: bool,
}

impl Supervisor<'_> {
    /// Starts `tab` in a task of its own.
    fn spawn(&mut self, tab: TabConfig, added: bool) {
        let private = !tab.onion.public && !matches!(*self.shared.transport, Transport::Local);
        self.shared
            .console
            .tabs()
            .starting(&tab.name, &tab.mode, private, added);
        let name = tab.name.clone();
        let factory = self.registry.factory(&tab.mode, tab.plugin.as_deref());
        let stopping = self.shutdown.child_token();
        let task = run_tab(tab, factory, self.shared.clone(), stopping.clone());
        let id = self.tasks.spawn(task).id();
        self.running.insert(id, (name, stopping));
    }

    /// The running tab whose name is `name` or differs from it only in case.
    fn running_like(&self, name: &str) -> Option<&(String, CancellationToken)> {
        let folded = name.to_lowercase();
        self.running
            .values()
            .find(|(running, _)| running.to_lowercase() == folded)
    }

    fn running_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.running.values().map(|(n, _)| n.clone()).collect();
        names.sort();
        names
    }

    /// Carries out an order; `stopping` when the host stops (nothing new starts).
    fn order(&mut self, order: Order, stopping: bool) {
        match order {
            Order::Add { tab, reply } => {
                let answer = if stopping {
                    Err(OrderError::HostStopping)
                } else if let Some((running, _)) = self.running_like(&tab.name) {
                    Err(OrderError::Duplicate {
                        name: tab.name.clone(),
                        running: running.clone(),
                    })
                } else {
                    // A host whose tabs are chosen at run time is used like OnionShare's
                    // window: it stays when its tabs have ended.
                    self.keep_open = true;
                    self.spawn(*tab, true);
                    Ok(())
                };
                let _ = reply.send(answer);
            }
            Order::Stop {
                name,
                reason,
                reply,
            } => {
                let answer = match self.running.values().find(|(n, _)| *n == name) {
                    Some((_, token)) => {
                        stop_tab(&self.shared.console, &name, token, &reason);
                        Ok(())
                    }
                    None => Err(OrderError::NoSuchTab {
                        name,
                        running: self.running_names(),
                    }),
                };
                let _ = reply.send(answer);
            }
        }
    }

    /// Records a tab's end.
    fn finish(&mut self, joined: Result<(tokio::task::Id, anyhow::Result<()>), JoinError>) {
        let console = &self.shared.console;
        let (id, outcome) = match joined {
            Ok((id, outcome)) => (id, outcome),
            // run_tab contains its own panics; this is a bug in the supervisor itself.
            Err(err) => (err.id(), Err(anyhow!("its task ended abnormally: {err}"))),
        };
        let Some((name, _)) = self.running.remove(&id) else {
            console.host("a tab task the supervisor did not know ended");
            return;
        };
        match outcome {
            Ok(()) => {
                self.summary.stopped += 1;
                console.tabs().ended(&name, Ok(()));
                console.tab(&name, "stopped");
            }
            Err(err) => {
                self.summary.failed += 1;
                let why = format!("{err:#}");
                console.tab(&name, &format!("failed: {why}"));
                console.tabs().ended(&name, Err(why));
            }
        }
    }
}

/// Stops one tab gracefully for `reason`, once: the line on the console, its status, its token.
fn stop_tab(console: &Console, name: &str, token: &CancellationToken, reason: &str) {
    if !token.is_cancelled() {
        console.tabs().stopping(name, reason);
        console.tab(name, &format!("stopping: {reason}"));
        token.cancel();
    }
}

/// Runs every tab of `config`, and those `orders` add, until no tab runs (and the host is not
/// kept open: [`Orders::keeping_open`], or a tab was added at run time), or until `shutdown` is
/// cancelled: then every tab stops, and its connections finish; when `force_close` is
/// cancelled too, they are closed.
pub(crate) async fn run(
    config: HostConfig,
    registry: &Registry,
    transport: Transport,
    console: Console,
    shutdown: CancellationToken,
    force_close: CancellationToken,
    orders: Orders,
) -> Summary {
    // What closes the connections: the second signal, or the end of the first one's grace.
    let close = force_close.child_token();
    let mut supervisor = Supervisor {
        registry,
        shared: Shared {
            transport: Arc::new(transport),
            console: console.clone(),
            force_close: close.clone(),
        },
        shutdown: shutdown.clone(),
        tasks: JoinSet::new(),
        running: HashMap::new(),
        summary: Summary::default(),
        keep_open: orders.keep_open,
    };
    for tab in config.tabs {
        supervisor.spawn(tab, false);
    }
    let mut orders = orders.receiver;
    let mut orders_open = true;

    loop {
        if supervisor.tasks.is_empty() && !supervisor.keep_open {
            return supervisor.summary;
        }
        tokio::select! {
            joined = supervisor.tasks.join_next_with_id(), if !supervisor.tasks.is_empty() => {
                if let Some(joined) = joined {
                    supervisor.finish(joined);
                }
                if supervisor.tasks.is_empty() && supervisor.keep_open {
                    console.host(
                        "no tab is running; the host stays open for `onionhost tabs add` (Ctrl-C ends it)",
                    );
                }
            }
            order = orders.recv(), if orders_open => match order {
                Some(order) => supervisor.order(order, false),
                None => orders_open = false,
            },
            () = shutdown.cancelled() => break,
        }
    }

    // Each tab stops listening as soon as it sees the stop; what is left are the connections
    // already open.
    console.host("stopping every tab: no new visitors");
    for (name, _) in supervisor.running.values() {
        console.tabs().stopping(name, "the host is stopping");
    }
    let transfers = console.transfers_in_flight();
    if transfers > 0 && !force_close.is_cancelled() {
        console.host(&format!(
            "waiting for {transfers} transfer(s) in flight to finish; Ctrl-C (or SIGTERM) again stops at once"
        ));
    }
    let mut closing = false;
    let grace = async {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        console.transfers_ended().await;
        // A transfer ends when its mode has handed over its last byte, which may still be in
        // the HTTP connection's buffers and the transport's queues: the connections get the
        // grace again from then to deliver it (a finished response ends its connection by
        // itself). Regression: closing them at once cut the end of downloads that finished
        // after the grace (the e2e test `after_sigterm_no_new_visitor_gets_in_...` lost 32 KB).
        let ended = tokio::time::Instant::now();
        tokio::time::sleep_until(deadline.max(ended + SHUTDOWN_GRACE)).await;
        close.cancel();
    };
    tokio::pin!(grace);
    loop {
        tokio::select! {
            joined = supervisor.tasks.join_next_with_id() => match joined {
                Some(joined) => supervisor.finish(joined),
                None => return supervisor.summary,
            },
            order = orders.recv(), if orders_open => match order {
                Some(order) => supervisor.order(order, true),
                None => orders_open = false,
            },
            () = &mut grace, if !close.is_cancelled() => {}
            () = force_close.cancelled(), if !closing => {
                closing = true;
                console.host("stopping at once: closing every connection");
            }
        }
    }
}

/// Builds, serves and stops one tab. Panics anywhere in the tab's own code become errors.
async fn run_tab(
    tab: TabConfig,
    factory: anyhow::Result<Arc<dyn TabFactory>>,
    shared: Shared,
    stopping: CancellationToken,
) -> anyhow::Result<()> {
    let factory = factory?;
    let ctx = {
        let console = shared.console.clone();
        let stop_console = shared.console.clone();
        let name = tab.name.clone();
        let stop_name = tab.name.clone();
        let stop_token = stopping.clone();
        onionhost_sdk::host::context(
            tab.name.as_str(),
            stopping.clone(),
            move |event| console.event(&name, event),
            move |reason: String| stop_tab(&stop_console, &stop_name, &stop_token, &reason),
        )
    };
    // The tab's notices (webhooks) leave through the host's transport.
    let notifier = crate::notice::HostNotifier::new(
        &tab.name,
        Arc::clone(&shared.transport),
        shared.console.clone(),
    );
    let ctx = onionhost_sdk::host::with_notifier(ctx, Arc::new(notifier));
    let section = tab.section.clone();
    let tab_ctx = ctx.clone();
    let service = std::panic::catch_unwind(AssertUnwindSafe(|| factory.build(section, ctx)))
        .map_err(|panic| {
            anyhow!(
                "the {} mode panicked while starting: {}",
                tab.mode,
                panic_message(&*panic)
            )
        })?
        .with_context(|| format!("cannot start the {} mode", tab.mode))?;

    let Some(incoming) = shared
        .transport
        .open(&tab, &shared.console, &stopping)
        .await?
    else {
        // Stopped before its start time: nothing was ever served.
        return Ok(());
    };
    if let Some(after) = tab.timers.stop_after_start() {
        tokio::spawn(auto_stop(
            after,
            tab.name.clone(),
            shared.console.clone(),
            stopping.clone(),
        ));
    }
    let connections = TaskTracker::new();
    let visitors = Visitors::new(&tab.name, shared.console.tabs());
    serve(
        incoming,
        &*service,
        &connections,
        &visitors,
        &stopping,
        &shared.force_close,
    )
    .await?;
    // Requests in flight, and upgraded connections saying goodbye, finish; on a second
    // Ctrl-C, `force_close` cuts them.
    connections.close();
    connections.wait().await;
    tokio::select! {
        () = onionhost_sdk::host::guarded_tasks_ended(&tab_ctx) => {}
        () = shared.force_close.cancelled() => {}
    }
    Ok(())
}

/// Stops the tab `after` this long (its `auto_stop`), the way a tab asks to be stopped: no
/// new visitors, requests and transfers in flight finish (a share's download, a receive's
/// upload), chat members are told the room has stopped. Ends at once if the tab stops first.
async fn auto_stop(after: Duration, tab: String, console: Console, stopping: CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(after) => {
            let reason = format!(
                "its auto-stop timer ran out ({})",
                humantime::format_duration(Duration::from_secs(after.as_secs().max(1)))
            );
            stop_tab(&console, &tab, &stopping, &reason);
        }
        () = stopping.cancelled() => {}
    }
}

/// Hands the tab's connections to `service` until the tab stops, then stops listening at once:
/// `incoming` is dropped on return, so that a new visitor is refused rather than accepted and
/// left waiting while the connections already open finish.
async fn serve(
    mut incoming: crate::transport::Incoming,
    service: &dyn crate::modes::TabService,
    connections: &TaskTracker,
    visitors: &Visitors,
    stopping: &CancellationToken,
    force_close: &CancellationToken,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            biased;
            () = stopping.cancelled() => break,
            conn = incoming.next() => match conn {
                Some(conn) => {
                    let here = visitors.arrived(conn.visitor());
                    let served = service.serve(conn, stopping.clone(), force_close.clone());
                    connections.spawn(async move {
                        served.await;
                        drop(here);
                    });
                }
                None => {
                    stopping.cancel();
                    drop(incoming);
                    connections.close();
                    connections.wait().await;
                    anyhow::bail!("the tab's listener ended unexpectedly");
                }
            },
        }
    }
    drop(incoming);
    Ok(())
}

/// The visitors of one tab with a connection open, told apart as the transport tells them
/// (one per onion circuit, one per loopback connection), counted into the tab's status.
#[derive(Clone)]
struct Visitors {
    tab: Arc<str>,
    tabs: Tabs,
    open: Arc<std::sync::Mutex<HashMap<Visitor, usize>>>,
}

impl Visitors {
    fn new(tab: &str, tabs: &Tabs) -> Self {
        Self {
            tab: tab.into(),
            tabs: tabs.clone(),
            open: Arc::default(),
        }
    }

    /// A connection from `visitor` opened; it counts until the returned guard is dropped.
    fn arrived(&self, visitor: Visitor) -> VisitorHere {
        self.change(|open| *open.entry(visitor).or_default() += 1);
        VisitorHere {
            visitors: self.clone(),
            visitor,
        }
    }

    fn change(&self, change: impl FnOnce(&mut HashMap<Visitor, usize>)) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = open.len();
        change(&mut open);
        if open.len() != before {
            self.tabs.visitors(&self.tab, open.len());
        }
    }
}

/// One open connection of a visitor, counted while it lives.
struct VisitorHere {
    visitors: Visitors,
    visitor: Visitor,
}

impl Drop for VisitorHere {
    fn drop(&mut self) {
        let visitor = self.visitor;
        self.visitors.change(|open| {
            if let Some(n) = open.get_mut(&visitor) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&visitor);
                }
            }
        });
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::{Duration, Instant};

    use onionhost_sdk::axum::Router;
    use onionhost_sdk::axum::routing::get;
    use onionhost_sdk::host::DynMode;
    use onionhost_sdk::{BuildError, Mode, ModeConfig, TabContext};
    use serde::Deserialize;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::config::OnionTabOptions;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoConfig {}

    impl ModeConfig for NoConfig {}

    /// Answers `GET /` with its tab's name.
    struct Hello(String);

    impl Mode for Hello {
        const NAME: &'static str = "hello";
        type Config = NoConfig;
        fn build(_: NoConfig, ctx: TabContext) -> Result<Self, BuildError> {
            Ok(Self(ctx.tab_name().to_owned()))
        }
        fn router(self: Arc<Self>) -> Router {
            let name = self.0.clone();
            Router::new()
                .route("/", get(move || async move { name }))
                .route("/panic", get(panic_handler))
        }
    }

    async fn panic_handler() -> &'static str {
        panic!("handler panic")
    }

    /// Panics while it is built.
    struct Broken;

    impl Mode for Broken {
        const NAME: &'static str = "broken";
        type Config = NoConfig;
        fn build(_: NoConfig, _: TabContext) -> Result<Self, BuildError> {
            panic!("broken on purpose")
        }
        fn router(self: Arc<Self>) -> Router {
            Router::new()
        }
    }

    fn tab(name: &str, mode: &str) -> TabConfig {
        TabConfig {
            name: name.into(),
            mode: mode.into(),
            plugin: None,
            port: None,
            onion: OnionTabOptions::default(),
            section: toml::Value::Table(toml::Table::new()),
            timers: crate::config::TabTimers::default(),
            qr: false,
        }
    }

    /// Polls the console until `tab` prints its URL.
    async fn url_of(console: &Console, tab: &str) -> String {
        let prefix = format!("[{tab}] serving at http://");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(line) = console.lines().iter().find(|l| l.starts_with(&prefix)) {
                return line[prefix.len()..].trim_end_matches('/').to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "{tab} never served: {:?}",
                console.lines()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn get_text(addr: &str, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn a_tab_that_panics_does_not_stop_the_others() {
        let registry = Registry::with(vec![DynMode::<Hello>::boxed(), DynMode::<Broken>::boxed()]);
        let config = HostConfig {
            tabs: vec![
                tab("one", "hello"),
                tab("bad", "broken"),
                tab("two", "hello"),
            ],
            ..HostConfig::default()
        };
        let console = Console::default();
        let shutdown = CancellationToken::new();
        let host = {
            let console = console.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let (_handle, orders) = handle(&console);
                run(
                    config,
                    &registry,
                    Transport::Local,
                    console,
                    shutdown,
                    CancellationToken::new(),
                    orders,
                )
                .await
            })
        };
        let one = url_of(&console, "one").await;
        let two = url_of(&console, "two").await;

        // A panic inside a handler is a 500 for that visitor; the tab keeps serving.
        assert!(get_text(&one, "/panic").await.starts_with("HTTP/1.1 500"));
        let after = get_text(&one, "/").await;
        assert!(
            after.starts_with("HTTP/1.1 200") && after.ends_with("one"),
            "{after}"
        );
        assert!(get_text(&two, "/").await.ends_with("two"));
        assert!(
            console
                .lines()
                .iter()
                .any(|l| l.starts_with("[bad] failed:") && l.contains("panicked"))
        );

        shutdown.cancel();
        let summary = host.await.unwrap();
        assert_eq!(
            summary,
            Summary {
                stopped: 2,
                failed: 1
            }
        );
    }

    #[tokio::test]
    async fn a_tab_can_ask_to_stop_and_the_others_go_on() {
        struct StopsOnRequest(TabContext);
        impl Mode for StopsOnRequest {
            const NAME: &'static str = "stopper";
            type Config = NoConfig;
            fn build(_: NoConfig, ctx: TabContext) -> Result<Self, BuildError> {
                Ok(Self(ctx))
            }
            fn router(self: Arc<Self>) -> Router {
                let ctx = self.0.clone();
                Router::new().route(
                    "/",
                    get(move || async move {
                        ctx.request_stop("asked to");
                        "bye"
                    }),
                )
            }
        }
        let registry = Registry::with(vec![
            DynMode::<Hello>::boxed(),
            DynMode::<StopsOnRequest>::boxed(),
        ]);
        let config = HostConfig {
            tabs: vec![tab("stays", "hello"), tab("goes", "stopper")],
            ..HostConfig::default()
        };
        let console = Console::default();
        let shutdown = CancellationToken::new();
        let host = {
            let console = console.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let (_handle, orders) = handle(&console);
                run(
                    config,
                    &registry,
                    Transport::Local,
                    console,
                    shutdown,
                    CancellationToken::new(),
                    orders,
                )
                .await
            })
        };
        let goes = url_of(&console, "goes").await;
        let stays = url_of(&console, "stays").await;
        // The request that asks for the stop still gets its whole answer.
        assert!(get_text(&goes, "/").await.ends_with("bye"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !console.lines().iter().any(|l| l == "[goes] stopped") {
            assert!(Instant::now() < deadline, "{:?}", console.lines());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            console
                .lines()
                .iter()
                .any(|l| l == "[goes] stopping: asked to")
        );
        assert!(get_text(&stays, "/").await.ends_with("stays"));
        shutdown.cancel();
        assert_eq!(
            host.await.unwrap(),
            Summary {
                stopped: 2,
                failed: 0
            }
        );
    }

    /// Streams `a`, then `b` once the test releases tab `name`'s download; `/stop` asks the tab
    /// to stop.
    struct Slow(TabContext);

    /// What each slow tab's download waits for, by tab name.
    fn release(tab: &str) -> Arc<tokio::sync::Notify> {
        static RELEASES: std::sync::LazyLock<
            std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Notify>>>,
        > = std::sync::LazyLock::new(Default::default);
        Arc::clone(RELEASES.lock().unwrap().entry(tab.to_owned()).or_default())
    }

    impl Mode for Slow {
        const NAME: &'static str = "slow";
        type Config = NoConfig;
        fn build(_: NoConfig, ctx: TabContext) -> Result<Self, BuildError> {
            Ok(Self(ctx))
        }
        fn router(self: Arc<Self>) -> Router {
            use onionhost_sdk::axum::body::{Body, Bytes};
            use onionhost_sdk::{Direction, TabEvent, TransferOutcome};
            let download = self.0.clone();
            let stop = self.0.clone();
            Router::new()
                .route(
                    "/slow",
                    get(move || async move {
                        let release = release(download.tab_name());
                        download.report(TabEvent::TransferStarted {
                            id: 1,
                            direction: Direction::Download,
                            total_bytes: Some(2),
                            label: None,
                        });
                        let first = futures::stream::once(async {
                            Ok::<_, std::io::Error>(Bytes::from_static(b"a"))
                        });
                        let second = futures::stream::once(async move {
                            release.notified().await;
                            download.report(TabEvent::TransferFinished {
                                id: 1,
                                bytes: 2,
                                outcome: TransferOutcome::Completed,
                                saved_to: None,
                            });
                            Ok(Bytes::from_static(b"b"))
                        });
                        Body::from_stream(first.chain(second))
                    }),
                )
                .route(
                    "/stop",
                    get(move || async move {
                        stop.request_stop("asked to");
                        "bye"
                    }),
                )
                .route("/hang", get(std::future::pending::<&'static str>))
        }
    }

    /// Starts a host of one slow tab called `name`; returns its address and the host task.
    async fn slow_host(
        name: &str,
        console: &Console,
        shutdown: &CancellationToken,
        force_close: &CancellationToken,
    ) -> (String, tokio::task::JoinHandle<Summary>) {
        let registry = Registry::with(vec![DynMode::<Slow>::boxed()]);
        let config = HostConfig {
            tabs: vec![tab(name, "slow")],
            ..HostConfig::default()
        };
        let host = {
            let (console, shutdown, force_close) =
                (console.clone(), shutdown.clone(), force_close.clone());
            tokio::spawn(async move {
                let (_handle, orders) = handle(&console);
                run(
                    config,
                    &registry,
                    Transport::Local,
                    console,
                    shutdown,
                    force_close,
                    orders,
                )
                .await
            })
        };
        (url_of(console, name).await, host)
    }

    /// Sends `GET /slow` and reads until the first chunk (`a`) has arrived.
    async fn start_download(addr: &str) -> (tokio::net::TcpStream, Vec<u8>) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        while !got.ends_with(b"\r\na\r\n") {
            let mut buf = [0; 1024];
            let n = stream.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "the download ended early: {:?}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
        (stream, got)
    }

    /// Reads the rest of a chunked response (up to its last chunk) or until the connection ends.
    async fn rest_of(stream: &mut tokio::net::TcpStream) -> String {
        let mut got = Vec::new();
        while !got.ends_with(b"0\r\n\r\n") {
            let mut buf = [0; 1024];
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    /// Regression: a share tab stopping after its first download kept listening while another
    /// download was in flight, so a new visitor was accepted and then got no answer until that
    /// download ended. A stopping tab stops listening at once.
    #[tokio::test]
    async fn a_stopping_tab_refuses_new_connections_at_once() {
        let console = Console::default();
        let (shutdown, force_close) = (CancellationToken::new(), CancellationToken::new());
        let (addr, host) = slow_host("refuses", &console, &shutdown, &force_close).await;
        let (mut download, _) = start_download(&addr).await;
        assert!(get_text(&addr, "/stop").await.ends_with("bye"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // A listener nobody accepts from can leave a connect hanging once its backlog fills.
            let connect = tokio::net::TcpStream::connect(&addr);
            match tokio::time::timeout(Duration::from_secs(1), connect).await {
                Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused => break,
                other => {
                    assert!(
                        Instant::now() < deadline,
                        "a stopping tab still takes connections: {other:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        // The download in flight still runs to its end.
        release("refuses").notify_one();
        assert!(rest_of(&mut download).await.contains("\r\nb\r\n"));
        shutdown.cancel();
        assert_eq!(
            host.await.unwrap(),
            Summary {
                stopped: 1,
                failed: 0
            }
        );
    }

    /// Waits until the tab's status shows `n` visitors.
    async fn wait_visitors(console: &Console, tab: &str, n: usize) {
        let mut changes = console.tabs().changes();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = console.tabs().snapshot();
            let visitors = now.iter().find(|t| t.name == tab).map(|t| t.visitors);
            if visitors == Some(n) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "never {n} visitors: {visitors:?}");
            let _ = tokio::time::timeout(left, changes.changed()).await;
        }
    }

    #[tokio::test]
    async fn the_visitors_with_a_connection_open_are_counted_for_every_mode() {
        let console = Console::default();
        let (shutdown, force_close) = (CancellationToken::new(), CancellationToken::new());
        let (addr, host) = slow_host("counted", &console, &shutdown, &force_close).await;
        wait_visitors(&console, "counted", 0).await;
        // On loopback each connection is a visitor of its own, counted from its accept to its
        // end, whether it has asked for anything yet or not.
        let (download, _) = start_download(&addr).await;
        let idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
        wait_visitors(&console, "counted", 2).await;
        drop(idle);
        wait_visitors(&console, "counted", 1).await;
        shutdown.cancel();
        release("counted").notify_one();
        drop(download);
        host.await.unwrap();
        wait_visitors(&console, "counted", 0).await;
    }

    /// Regression: Ctrl-C or SIGTERM cut every download with more than 10 s left (a fixed
    /// grace). The first signal waits for transfers in flight however long they take, and
    /// says so.
    #[tokio::test]
    async fn the_first_signal_waits_for_transfers_in_flight() {
        let console = Console::default();
        let (shutdown, force_close) = (CancellationToken::new(), CancellationToken::new());
        let (addr, host) = slow_host("waits", &console, &shutdown, &force_close).await;
        let (mut download, _) = start_download(&addr).await;
        // Time stands still unless nothing else can run; then it jumps to the next timer,
        // so an hour passes at once unless something is waiting for less.
        tokio::time::pause();
        shutdown.cancel();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!host.is_finished(), "{:?}", console.lines());
        assert!(
            console.lines().iter().any(|l| l
                == "waiting for 1 transfer(s) in flight to finish; Ctrl-C (or SIGTERM) again stops at once"),
            "{:?}",
            console.lines()
        );
        tokio::time::resume();
        release("waits").notify_one();
        assert!(rest_of(&mut download).await.contains("\r\nb\r\n"));
        assert_eq!(
            host.await.unwrap(),
            Summary {
                stopped: 1,
                failed: 0
            }
        );
    }

    /// A connection that carries no transfer (a request a mode never answers) does not hold
    /// the host after the first signal for more than the grace.
    #[tokio::test]
    async fn the_first_signal_closes_what_is_not_a_transfer_after_the_grace() {
        let console = Console::default();
        let (shutdown, force_close) = (CancellationToken::new(), CancellationToken::new());
        let (addr, host) = slow_host("hangs", &console, &shutdown, &force_close).await;
        let mut hanging = tokio::net::TcpStream::connect(&addr).await.unwrap();
        hanging
            .write_all(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        // The tab has taken the connection once a later one is answered.
        assert!(
            get_text(&addr, "/nothing")
                .await
                .starts_with("HTTP/1.1 404")
        );
        tokio::time::pause();
        let stopping = tokio::time::Instant::now();
        shutdown.cancel();
        assert_eq!(
            host.await.unwrap(),
            Summary {
                stopped: 1,
                failed: 0
            }
        );
        assert!(stopping.elapsed() >= SHUTDOWN_GRACE);
        let mut rest = Vec::new();
        let _ = hanging.read_to_end(&mut rest).await;
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    }

    /// The second Ctrl-C or SIGTERM closes the connections still open at once.
    #[tokio::test]
    async fn the_second_signal_stops_at_once() {
        let console = Console::default();
        let (shutdown, force_close) = (CancellationToken::new(), CancellationToken::new());
        let (addr, host) = slow_host("cuts", &console, &shutdown, &force_close).await;
        let (mut download, _) = start_download(&addr).await;
        shutdown.cancel();
        force_close.cancel();
        assert_eq!(
            host.await.unwrap(),
            Summary {
                stopped: 1,
                failed: 0
            }
        );
        assert!(!rest_of(&mut download).await.contains("\r\nb\r\n"));
        assert!(
            console
                .lines()
                .iter()
                .any(|l| l == "stopping at once: closing every connection"),
            "{:?}",
            console.lines()
        );
    }
    /// Waits until tab `name`'s status satisfies `done`.
    async fn wait_status(tabs: &Tabs, name: &str, done: impl Fn(&crate::tabs::TabStatus) -> bool) {
        let mut changes = tabs.changes();
        let wait = async {
            loop {
                if tabs.get(name).as_ref().is_some_and(&done) {
                    return;
                }
                changes.changed().await.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .unwrap_or_else(|_| panic!("{name}: {:?}", tabs.get(name)));
    }

    #[tokio::test]
    async fn tabs_come_and_go_at_run_time_and_the_host_stays() {
        use crate::tabs::State;
        let registry = Registry::with(vec![DynMode::<Hello>::boxed(), DynMode::<Broken>::boxed()]);
        let config = HostConfig {
            tabs: vec![tab("first", "hello")],
            ..HostConfig::default()
        };
        let console = Console::default();
        let shutdown = CancellationToken::new();
        let (handle, orders) = handle(&console);
        let host = {
            let console = console.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                run(
                    config,
                    &registry,
                    Transport::Local,
                    console,
                    shutdown,
                    CancellationToken::new(),
                    orders,
                )
                .await
            })
        };
        let first = url_of(&console, "first").await;
        handle.add(tab("second", "hello")).await.unwrap();
        let second = url_of(&console, "second").await;
        assert!(get_text(&second, "/").await.ends_with("second"));
        let status = handle.tabs().get("second").unwrap();
        assert_eq!(status.state, State::Serving);
        assert!(status.added);
        assert_eq!(status.address, Some(format!("http://{second}/")));
        assert!(!status.private, "a loopback tab has no client key");

        // A name that is taken, even in another case, is refused and nothing else changes.
        assert_eq!(
            handle.add(tab("first", "hello")).await,
            Err(OrderError::Duplicate {
                name: "first".into(),
                running: "first".into()
            })
        );
        let err = handle.add(tab("FIRST", "hello")).await.unwrap_err();
        assert!(err.to_string().contains("differs only in case"), "{err}");

        // A tab that fails to start fails alone.
        handle.add(tab("bad", "broken")).await.unwrap();
        wait_status(handle.tabs(), "bad", |s| s.state == State::Failed).await;
        let why = handle.tabs().get("bad").unwrap().why.unwrap();
        assert!(why.contains("panicked"), "{why}");
        assert!(get_text(&first, "/").await.ends_with("first"));

        // Stop one gracefully: the other keeps serving.
        handle.stop("first", "asked in a test").await.unwrap();
        wait_status(handle.tabs(), "first", |s| s.state == State::Stopped).await;
        assert_eq!(
            handle.tabs().get("first").unwrap().why.as_deref(),
            Some("asked in a test")
        );
        assert!(
            console
                .lines()
                .iter()
                .any(|l| l == "[first] stopping: asked in a test")
        );
        assert!(get_text(&second, "/").await.ends_with("second"));
        let err = handle.stop("first", "again").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "no tab named \"first\" is running; the running tabs are \"second\""
        );
        // Its name is free again.
        handle.add(tab("first", "hello")).await.unwrap();
        wait_status(handle.tabs(), "first", |s| s.state == State::Serving).await;

        // With tabs added at run time, the host stays when none runs any more.
        handle.stop("first", "done").await.unwrap();
        handle.stop("second", "done").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !console
            .lines()
            .iter()
            .any(|l| l.starts_with("no tab is running; the host stays open"))
        {
            assert!(Instant::now() < deadline, "{:?}", console.lines());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!host.is_finished());
        handle.add(tab("third", "hello")).await.unwrap();
        wait_status(handle.tabs(), "third", |s| s.state == State::Serving).await;
        shutdown.cancel();
        assert_eq!(
            host.await.unwrap(),
            Summary {
                stopped: 4,
                failed: 1
            }
        );
        assert_eq!(
            handle.add(tab("late", "hello")).await,
            Err(OrderError::HostStopping)
        );
        assert_eq!(handle.tabs().get("third").unwrap().state, State::Stopped);
    }

    #[tokio::test]
    async fn without_orders_the_host_ends_with_its_last_tab() {
        let registry = Registry::with(vec![DynMode::<Broken>::boxed()]);
        let config = HostConfig {
            tabs: vec![tab("bad", "broken")],
            ..HostConfig::default()
        };
        let console = Console::default();
        let (handle, orders) = handle(&console);
        let summary = tokio::time::timeout(
            Duration::from_secs(20),
            run(
                config,
                &registry,
                Transport::Local,
                console,
                CancellationToken::new(),
                CancellationToken::new(),
                orders,
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            summary,
            Summary {
                stopped: 0,
                failed: 1
            }
        );
        assert_eq!(
            handle.tabs().get("bad").unwrap().state,
            crate::tabs::State::Failed
        );
    }

    #[tokio::test]
    async fn a_host_kept_open_stays_when_its_last_tab_fails() {
        let registry = Registry::with(vec![DynMode::<Hello>::boxed(), DynMode::<Broken>::boxed()]);
        let config = HostConfig {
            tabs: vec![tab("bad", "broken")],
            ..HostConfig::default()
        };
        let console = Console::default();
        let shutdown = CancellationToken::new();
        let (handle, orders) = handle(&console);
        let host = {
            let (console, shutdown) = (console.clone(), shutdown.clone());
            tokio::spawn(async move {
                run(
                    config,
                    &registry,
                    Transport::Local,
                    console,
                    shutdown,
                    CancellationToken::new(),
                    orders.keeping_open(),
                )
                .await
            })
        };
        wait_status(handle.tabs(), "bad", |s| {
            s.state == crate::tabs::State::Failed
        })
        .await;
        handle.add(tab("good", "hello")).await.unwrap();
        let good = url_of(&console, "good").await;
        assert!(get_text(&good, "/").await.ends_with("good"));
        assert!(!host.is_finished());
        shutdown.cancel();
        assert_eq!(
            host.await.unwrap(),
            Summary {
                stopped: 1,
                failed: 1
            }
        );
    }
}
