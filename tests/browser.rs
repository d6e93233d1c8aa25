//! The browser of the end-to-end tests: Debian's `chromium`, headless, driven over the
//! DevTools protocol (`chromiumoxide`). One browser per test process, started by the first
//! test that opens a [`Page`]; every page gets a fresh incognito browser context of its own,
//! so tests share nothing (cookies, storage, cache) and run in parallel.
//!
//! The browser is a static that is never dropped: a [`Watchdog`] stops it by its process id
//! and removes its temporary profile when the test process ends, however it ends. Its
//! DevTools connection is served by a thread of its own with its own runtime, since each
//! `#[tokio::test]` has a runtime that ends with the test.
//!
//! Use from a test:
//!
//! ```no_run
//! # async fn example(url: &str) -> anyhow::Result<()> {
//! use onionhost_tests::browser::{Options, Page};
//! let page = Page::open(Options::phone().without_javascript()).await?;
//! page.goto(url).await?;
//! page.fill("#name", "ann").await?;
//! page.click("button[type=submit]").await?;
//! page.wait_for_text(".log", "ann joined").await?;
//! page.assert_clean(url); // no console error, no CSP violation, only same-origin requests
//! page.close().await;
//! # Ok(())
//! # }
//! ```

mod audit;
mod page;
mod records;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use chromiumoxide::handler::HandlerConfig;
use futures::StreamExt;

pub use audit::{Audit, FocusRing};
pub use page::Page;

use crate::tools::find_tool;
use crate::watchdog::Watchdog;

/// How long a page waits for what a test expects (an element, a text, a condition).
pub const WAIT: Duration = Duration::from_secs(30);

/// How long the browser may take to start and open its DevTools port.
const LAUNCH_DEADLINE: Duration = Duration::from_secs(60);

/// The flags the browser runs with: headless, no sandbox (the tests run as root, where
/// Chromium's sandbox refuses to start), and nothing that talks to the network on its own
/// (updates, sync, field trials, QUIC probes): the only traffic is to the tabs under test.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-quic",
    "--mute-audio",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
];

/// The browser, its connection and what stops it.
struct Shared {
    browser: chromiumoxide::Browser,
    /// The runtime serving the DevTools connection, for work that must outlive a test's
    /// runtime (closing a page dropped by a failing test).
    runtime: tokio::runtime::Handle,
    /// Keeps the process reaped if it dies; the watchdog stops it when the tests end.
    _process: Child,
    _watchdog: Watchdog,
}

/// The browser, started once per test process; later calls (from any test or runtime) wait
/// for that start and share it. A failed start is reported to every caller.
async fn shared() -> Result<&'static Shared> {
    static BROWSER: OnceLock<Result<Shared, String>> = OnceLock::new();
    if let Some(shared) = BROWSER.get() {
        return shared.as_ref().map_err(|e| anyhow!("{e}"));
    }
    // The start blocks for a second or two; a thread of its own keeps it out of whichever
    // test's runtime asked first.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let shared = BROWSER.get_or_init(|| launch().map_err(|e| format!("{e:#}")));
        let _ = tx.send(shared);
    });
    let shared = rx
        .await
        .context("the thread starting the browser panicked")?;
    shared
        .as_ref()
        .map_err(|e| anyhow!("starting the browser failed: {e}"))
}

/// Starts chromium on a fresh profile, connects to it and serves the connection on a thread
/// that lives as long as the test process.
fn launch() -> Result<Shared> {
    let chromium = find_tool("chromium", "chromium", "the browser tests")?;
    let profile = tempfile::Builder::new()
        .prefix("onionhost-browser-")
        .tempdir()
        .context("create the browser's profile folder")?
        .keep();
    let watchdog = Watchdog::start(&profile, "onionhost-browser-watchdog")?;
    let log = std::fs::File::create(profile.join("chromium.log")).context("create chromium.log")?;
    let mut process = Command::new(&chromium)
        .args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("dup chromium.log")?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("run {}", chromium.display()))?;
    watchdog.add(process.id())?;
    let url = devtools_url(&profile, &mut process)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("the browser's runtime")?;
    let config = HandlerConfig {
        // Each page sets its own viewport (see `Options`).
        viewport: None,
        request_timeout: WAIT,
        ..HandlerConfig::default()
    };
    let (browser, mut handler) = runtime
        .block_on(chromiumoxide::Browser::connect_with_config(url, config))
        .context("connect to the browser's DevTools port")?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("browser-connection".into())
        .spawn(move || {
            runtime.block_on(async move {
                // Errors are per message (an event of a closed page, say); the stream ends
                // only with the connection.
                while handler.next().await.is_some() {}
            });
        })
        .context("start the browser's connection thread")?;
    Ok(Shared {
        browser,
        runtime: handle,
        _process: process,
        _watchdog: watchdog,
    })
}

/// Waits for the `DevToolsActivePort` file chromium writes into its profile once it listens
/// (`--remote-debugging-port=0` picks a free port), and returns the browser's WebSocket URL.
fn devtools_url(profile: &Path, process: &mut Child) -> Result<String> {
    let file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + LAUNCH_DEADLINE;
    loop {
        // Two lines: the port, then the browser target's path.
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Some((port, path)) = text.split_once('\n')
            && path.starts_with("/devtools/browser/")
        {
            return Ok(format!("ws://127.0.0.1:{}{}", port.trim(), path.trim()));
        }
        let log = || std::fs::read_to_string(profile.join("chromium.log")).unwrap_or_default();
        if let Some(status) = process.try_wait().context("wait for chromium")? {
            bail!("chromium exited at start ({status}):\n{}", log());
        }
        if Instant::now() >= deadline {
            bail!(
                "chromium did not open its DevTools port within {LAUNCH_DEADLINE:?}:\n{}",
                log()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The size and kind of screen a page is shown on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// 1280 × 800, a mouse, a desktop browser's user agent.
    Desktop,
    /// 390 × 844 at 3 device pixels per CSS pixel, touch, a phone browser's user agent
    /// (the size of a common phone held upright).
    Phone,
}

/// How a page is opened.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The screen.
    pub device: Device,
    /// Whether the page's scripts run (off: Tor Browser's "Safest" level).
    pub javascript: bool,
    /// Whether the page is told the system prefers a dark colour scheme.
    pub dark: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self::desktop()
    }
}

impl Options {
    /// A desktop screen, JavaScript on, the light colour scheme.
    pub fn desktop() -> Self {
        Self {
            device: Device::Desktop,
            javascript: true,
            dark: false,
        }
    }

    /// A phone screen, JavaScript on, the light colour scheme.
    pub fn phone() -> Self {
        Self {
            device: Device::Phone,
            ..Self::desktop()
        }
    }

    /// The same with JavaScript off.
    pub fn without_javascript(self) -> Self {
        Self {
            javascript: false,
            ..self
        }
    }

    /// The same with the dark colour scheme.
    pub fn dark(self) -> Self {
        Self { dark: true, ..self }
    }
}

/// Where screenshots of failing tests go: `target/browser-screenshots/`.
fn screenshot_dir() -> PathBuf {
    // target/<profile>/deps/e2e-HASH -> target/
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_owned()))
        .unwrap_or_else(std::env::temp_dir)
        .join("browser-screenshots")
}
