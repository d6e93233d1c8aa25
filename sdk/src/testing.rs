//! Helpers for mode authors' tests: build a tab without a host, drive its router in memory.

use std::sync::{Arc, Mutex};

use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::host::{DynMode, ModeFactory as _};
use crate::notice::{NoticeError, NoticeUrl, Notifier};
use crate::{ConfigError, Mode, ModeError, TabContext, TabEvent, Visitor};

/// A tab built for a test, with everything it reported.
pub struct TestTab {
    /// The hardened router, as the host would serve it.
    pub router: Router,
    /// The tab's context (cancel [`TestTab::shutdown`] to stop it).
    pub ctx: TabContext,
    /// Cancelled to stop the tab.
    pub shutdown: CancellationToken,
    events: Arc<Mutex<Vec<TabEvent>>>,
    stop_requests: Arc<Mutex<Vec<String>>>,
    notices: Notices,
}

/// A [`Notifier`] for tests: it accepts every URL (or refuses all, see
/// [`Notices::refusing`]) and keeps every notice posted, URL and text, instead of sending it.
#[derive(Clone, Default)]
pub struct Notices {
    posted: Arc<Mutex<Vec<(String, String)>>>,
    refuse: Option<String>,
}

impl Notices {
    /// A notifier that refuses every URL with `why`, as a host does that cannot send there.
    pub fn refusing(why: &str) -> Self {
        Self {
            posted: Arc::default(),
            refuse: Some(why.to_owned()),
        }
    }

    /// Every notice posted so far: the URL and the text.
    pub fn posted(&self) -> Vec<(String, String)> {
        lock(&self.posted).clone()
    }
}

impl Notifier for Notices {
    fn check(&self, _url: &NoticeUrl) -> Result<(), NoticeError> {
        match &self.refuse {
            Some(why) => Err(NoticeError::Refused(why.clone())),
            None => Ok(()),
        }
    }

    fn post(&self, url: &NoticeUrl, text: &str) {
        lock(&self.posted).push((url.to_string(), text.to_owned()));
    }
}

impl TestTab {
    /// Builds a tab of mode `M` from a TOML section (e.g. `"title = \"x\""`).
    pub fn build<M: Mode>(section: &str) -> Result<Self, ModeError> {
        Self::build_with_notices::<M>(section, Notices::default())
    }

    /// Like [`TestTab::build`], with `notices` standing for the host's [`Notifier`].
    pub fn build_with_notices<M: Mode>(section: &str, notices: Notices) -> Result<Self, ModeError> {
        let section: toml::Value = toml::from_str::<toml::Table>(section)
            .map(toml::Value::Table)
            .map_err(|err| ConfigError::section(err.to_string()))?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let stop_requests = Arc::new(Mutex::new(Vec::new()));
        let shutdown = CancellationToken::new();
        let ctx = {
            let events = Arc::clone(&events);
            let stop_requests = Arc::clone(&stop_requests);
            TabContext::new(
                "test",
                shutdown.clone(),
                move |event| lock(&events).push(event),
                move |reason| lock(&stop_requests).push(reason),
            )
            .with_notifier(Arc::new(notices.clone()))
        };
        // Requests sent with `oneshot` come from one visitor, as on one connection, unless
        // the test inserts a `Visitor` of its own.
        let visitor = Visitor::unique();
        let router =
            DynMode::<M>::new()
                .build(section, ctx.clone())?
                .layer(axum::middleware::map_request(
                    move |mut request: axum::extract::Request| async move {
                        if request.extensions().get::<Visitor>().is_none() {
                            request.extensions_mut().insert(visitor);
                        }
                        request
                    },
                ));
        Ok(Self {
            router,
            ctx,
            shutdown,
            events,
            stop_requests,
            notices,
        })
    }

    /// Every notice the tab posted ([`TabContext::post_notice`]), URL and text.
    pub fn notices(&self) -> Vec<(String, String)> {
        self.notices.posted()
    }

    /// Every event reported so far.
    pub fn events(&self) -> Vec<TabEvent> {
        lock(&self.events).clone()
    }

    /// Every stop the tab asked for so far, with its reason.
    pub fn stop_requests(&self) -> Vec<String> {
        lock(&self.stop_requests).clone()
    }

    /// Serves the tab on a fresh loopback port, for tests that need a real socket
    /// (WebSockets). Returns the address; the server stops when the tab's shutdown is cancelled.
    pub async fn serve_on_loopback(&self) -> std::io::Result<std::net::SocketAddr> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let router = self.router.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        tokio::spawn(crate::http::serve_connection(
                            stream,
                            router.clone(),
                            Visitor::unique(),
                            shutdown.clone(),
                            shutdown.clone(),
                        ));
                    }
                    () = shutdown.cancelled() => break,
                }
            }
        });
        Ok(addr)
    }
}

/// The sdk's stand-in for a browser (`sdk/assets/fake-dom.js`), for testing a page's script
/// under node: elements with ids, text, classes and events, and a WebSocket, an
/// XMLHttpRequest and timers that the test drives by hand. See [`script_test`].
pub const FAKE_DOM_JS: &str = include_str!("../assets/fake-dom.js");

/// Runs `test`, JavaScript, under `node` (Debian's `nodejs`), after [`FAKE_DOM_JS`] (which
/// gives it `page`, `lines` and node's `assert`) and with `SCRIPTS`, the sources of
/// `scripts`, to run on a page: `page({ id: "tag", ... }, { child: "parent" }).run(...SCRIPTS)`.
/// Panics with node's output when the test fails, and says so when `node` is missing: a test
/// that needs it fails, it does not skip.
pub fn script_test(scripts: &[&str], test: &str) {
    let sources = serde_json::to_string(scripts).unwrap_or_else(|err| panic!("{err}"));
    let program = format!("{FAKE_DOM_JS}\nconst SCRIPTS = {sources};\n{test}\n");
    let output = std::process::Command::new("node")
        .arg("-e")
        .arg(&program)
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run node (Debian package nodejs; tests/run installs it): {err}")
        });
    assert!(
        output.status.success(),
        "the script test failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Parses and validates a config section of mode `M`, as the host does before it starts.
pub fn parse_config<M: Mode>(section: toml::Value) -> Result<M::Config, ConfigError> {
    crate::host::parse_config::<M>(section)
}

/// A tab context for testing parts of a mode without building it: `events` gets every
/// [`TabEvent`], `stop` every stop request, and the tab stops when `shutdown` is cancelled.
pub fn context(
    tab_name: &str,
    shutdown: CancellationToken,
    events: impl Fn(TabEvent) + Send + Sync + 'static,
    stop: impl Fn(String) + Send + Sync + 'static,
) -> TabContext {
    TabContext::new(tab_name, shutdown, events, stop)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
