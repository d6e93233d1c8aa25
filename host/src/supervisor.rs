//! The tab supervisor: starts every tab, keeps them isolated, and stops them all cleanly.
//!
//! Each tab runs in its own task with its own stop signal. A tab whose mode fails to build,
//! panics, or whose transport fails is marked failed and reported; the other tabs go on. The
//! host ends when every tab has ended, or on Ctrl-C / SIGTERM.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use futures::StreamExt as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{HostConfig, TabConfig};
use crate::console::Console;
use crate::modes::{Registry, TabFactory};
use crate::transport::Transport;

/// How long requests in flight may run on after Ctrl-C or SIGTERM.
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

/// Runs every tab of `config` until they all end or `shutdown` is cancelled.
pub(crate) async fn run(
    config: HostConfig,
    registry: &Registry,
    transport: Transport,
    console: Console,
    shutdown: CancellationToken,
) -> Summary {
    let shared = Shared {
        transport: Arc::new(transport),
        console: console.clone(),
        force_close: CancellationToken::new(),
    };
    let mut tabs = JoinSet::new();
    for tab in config.tabs {
        let name = tab.name.clone();
        let factory = registry.factory(&tab.mode, tab.plugin.as_deref());
        let stopping = shutdown.child_token();
        let task = run_tab(tab, factory, shared.clone(), stopping);
        tabs.spawn(async move { (name, task.await) });
    }

    let mut summary = Summary::default();
    let mut finish =
        |console: &Console,
         joined: Result<(String, anyhow::Result<()>), tokio::task::JoinError>| {
            match joined {
                Ok((name, Ok(()))) => {
                    summary.stopped += 1;
                    console.tab(&name, "stopped");
                }
                Ok((name, Err(err))) => {
                    summary.failed += 1;
                    console.tab(&name, &format!("failed: {err:#}"));
                }
                Err(err) => {
                    // run_tab contains its own panics; this is a bug in the supervisor itself.
                    summary.failed += 1;
                    console.host(&format!("a tab task ended abnormally: {err}"));
                }
            }
        };
    loop {
        tokio::select! {
            joined = tabs.join_next() => match joined {
                Some(joined) => finish(&console, joined),
                None => return summary,
            },
            () = shutdown.cancelled() => break,
        }
    }

    console.host("stopping every tab");
    let force_close = shared.force_close.clone();
    let grace = tokio::spawn(async move {
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        force_close.cancel();
    });
    while let Some(joined) = tabs.join_next().await {
        finish(&console, joined);
    }
    grace.abort();
    summary
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
            move |reason| {
                if !stop_token.is_cancelled() {
                    stop_console.tab(&stop_name, &format!("stopping: {reason}"));
                    stop_token.cancel();
                }
            },
        )
    };
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

    let mut incoming = shared.transport.open(&tab, &shared.console).await?;
    let connections = TaskTracker::new();
    loop {
        tokio::select! {
            biased;
            () = stopping.cancelled() => break,
            conn = incoming.next() => match conn {
                Some(conn) => {
                    connections.spawn(service.serve(conn, stopping.clone(), shared.force_close.clone()));
                }
                None => {
                    stopping.cancel();
                    connections.close();
                    connections.wait().await;
                    anyhow::bail!("the tab's listener ended unexpectedly");
                }
            },
        }
    }
    // Requests in flight, and upgraded connections saying goodbye, finish before the tab's
    // address goes away; the grace period bounds both.
    connections.close();
    connections.wait().await;
    tokio::select! {
        () = onionhost_sdk::host::guarded_tasks_ended(&tab_ctx) => {}
        () = shared.force_close.cancelled() => {}
    }
    drop(incoming);
    Ok(())
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

    use std::time::Instant;

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
                run(config, &registry, Transport::Local, console, shutdown).await
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
                run(config, &registry, Transport::Local, console, shutdown).await
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
}
