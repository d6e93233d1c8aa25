//! The `onionhost` binary: parse the command line, run the tabs, exit with a status.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser as _;
use tokio_util::sync::CancellationToken;

mod cli;
mod config;
mod console;
mod control;
mod logging;
mod modes;
mod notice;
mod plugin;
mod supervisor;
mod tabs;
mod transport;

use cli::{Cli, Command, CommonArgs, TabArgs};
use config::{HostConfig, OnionTabOptions, TabConfig, TabTimers, TorConfig};
use console::Console;
use console::live::{Controls, LiveView, TabOrders};
use modes::Registry;
use onionhost_sdk::host::section;
use onionhost_sdk::http::ContentSecurityPolicy;
use transport::Transport;
use transport::onion::{OnionTransport, TorDirs};
use transport::system::SystemTransport;

/// Exit status for a config or usage error: nothing was started.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Tabs { control, command } = cli.command {
        return match control::client::run(control.as_deref(), command) {
            Ok(code) => code,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    // The live view's pane, when the console may be one: the log goes there while it is open.
    let pane = cli
        .command
        .common()
        .is_some_and(|common| console::live::wanted(common.plain))
        .then(console::pane::Pane::default);
    logging::init(pane.clone());
    let registry = std::sync::Arc::new(Registry::builtin());
    let (config, common) = match host_config(cli.command, &registry) {
        Ok(Some(found)) => found,
        Ok(None) => return ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let config = match with_tor_network(config, &common) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match run(config, &common, &registry, pane) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Applies `--tor-network FILE` (its authorities and fallbacks replace the config's) and
/// `--tor-control ADDR` (the system's tor publishes the tabs).
fn with_tor_network(mut config: HostConfig, common: &CommonArgs) -> anyhow::Result<HostConfig> {
    if let Some(path) = &common.tor_network {
        anyhow::ensure!(
            !matches!(config.tor.backend, config::Backend::System(_)),
            "--tor-network: the config's `backend = \"system\"` uses the system's tor, whose torrc chooses its network"
        );
        config.tor.network = Some(config::load_network(path)?);
    }
    if let Some(control) = &common.tor_control {
        config::with_tor_control(&mut config.tor, control, common.tor_network.is_some())
            .map_err(anyhow::Error::msg)?;
    }
    Ok(config)
}

/// Turns the command line into a checked config; `None` when the command was only a check.
fn host_config(
    command: Command,
    registry: &Registry,
) -> anyhow::Result<Option<(HostConfig, CommonArgs)>> {
    let one_tab = |mode: &str,
                   tab: TabArgs,
                   section: Result<toml::Value, onionhost_sdk::ConfigError>|
     -> anyhow::Result<HostConfig> {
        let section = section.map_err(|err| anyhow::anyhow!("{err}"))?;
        let timers = TabTimers::from_seconds(tab.auto_start_timer, tab.auto_stop_timer).map_err(
            |problem| anyhow::anyhow!("--auto-start-timer / --auto-stop-timer: {problem}"),
        )?;
        registry
            .factory(mode, None)?
            .check(&section)
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        let bridges = config::command_line_bridges(&tab.bridge, &tab.tor_transport)?;
        Ok(HostConfig {
            tabs: vec![TabConfig {
                name: mode.to_owned(),
                mode: mode.to_owned(),
                plugin: None,
                port: tab.port,
                onion: OnionTabOptions {
                    public: tab.public,
                    persistent: tab.persistent,
                    ..OnionTabOptions::default()
                },
                section,
                timers,
                qr: tab.qr,
            }],
            tor: TorConfig {
                bridges,
                ..TorConfig::default()
            },
        })
    };
    Ok(Some(match command {
        Command::Run { config, common } => (config::load(&config, registry)?, common),
        Command::Tabs { .. } => anyhow::bail!("`onionhost tabs` starts no host"),
        Command::Check { config } => {
            let config = config::load(&config, registry)?;
            registry.check_plugins(&config)?;
            eprintln!("config is valid: {} tab(s)", config.tabs.len());
            match &config.tor.backend {
                config::Backend::Arti => eprintln!("tor: the embedded Arti"),
                config::Backend::System(system) => eprintln!(
                    "tor: the system's tor, through its {}{}",
                    system.control,
                    if system.password.is_some() {
                        " (with the config's control_password)"
                    } else {
                        ""
                    }
                ),
            }
            for warning in registry.warnings(&config) {
                eprintln!("{warning}");
            }
            for tab in &config.tabs {
                if let Some(start) = tab.timers.start {
                    eprintln!("tab {:?} starts at {}", tab.name, config::show_time(start));
                }
                if let Some(stop) = tab.timers.stop {
                    eprintln!("tab {:?} stops {}", tab.name, config::show_stop(stop));
                }
            }
            return Ok(None);
        }
        Command::Chat { tab, common } => {
            let mut config = onionhost_chat::ChatConfig::default();
            if let Some(title) = &tab.title {
                config.title.clone_from(title);
            }
            (one_tab("chat", tab, section(&config))?, common)
        }
        Command::Share {
            paths,
            keep_sharing,
            tab,
            common,
        } => {
            for path in &paths {
                text_path(path)?;
            }
            let mut config = onionhost_share::ShareConfig {
                paths,
                stop_after_first_download: !keep_sharing,
                ..onionhost_share::ShareConfig::default()
            };
            if let Some(title) = &tab.title {
                config.title.clone_from(title);
            }
            (one_tab("share", tab, section(&config))?, common)
        }
        Command::Receive { dir, tab, common } => {
            if let Some(dir) = &dir {
                text_path(dir)?;
            }
            let mut config = onionhost_receive::ReceiveConfig {
                dir,
                ..onionhost_receive::ReceiveConfig::default()
            };
            if let Some(title) = &tab.title {
                config.title.clone_from(title);
            }
            (one_tab("receive", tab, section(&config))?, common)
        }
        Command::Website {
            dir,
            csp,
            no_csp,
            tab,
            common,
        } => {
            text_path(&dir)?;
            let csp = match (csp, no_csp) {
                (Some(policy), _) => ContentSecurityPolicy::Custom(policy),
                (None, true) => ContentSecurityPolicy::Off,
                (None, false) => ContentSecurityPolicy::Default,
            };
            let mut config = onionhost_website::WebsiteConfig {
                dir,
                csp,
                ..onionhost_website::WebsiteConfig::default()
            };
            if let Some(title) = &tab.title {
                config.title.clone_from(title);
            }
            (one_tab("website", tab, section(&config))?, common)
        }
    }))
}

/// Refuses a path that a config section cannot hold: TOML text is UTF-8, and a changed path
/// (lossy conversion) would serve or write somewhere else than the user asked.
fn text_path(path: &std::path::Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        path.to_str().is_some(),
        "{}: the path is not valid UTF-8, which onionhost cannot take; rename it",
        path.display()
    );
    Ok(())
}

/// Runs the tabs until they end or a signal comes; with `pane`, in the live view.
fn run(
    config: HostConfig,
    common: &CommonArgs,
    registry: &std::sync::Arc<Registry>,
    pane: Option<console::pane::Pane>,
) -> anyhow::Result<ExitCode> {
    // The live view, once it runs: dropped (the terminal given back) before the runtime goes
    // down and before `main` prints an error.
    let mut view: Option<LiveView> = None;
    // Arti's temporary folder is removed only after the runtime (and so every Arti task that
    // might still write to it) has stopped: it is declared first, so it is dropped last.
    let mut tor_dirs: Option<TorDirs> = None;
    let embedded_arti =
        !common.local_only && !matches!(config.tor.backend, config::Backend::System(_));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = worker_threads(
        embedded_arti,
        std::env::var_os("TOKIO_WORKER_THREADS").is_some(),
    ) {
        builder.worker_threads(workers);
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    tracing::debug!(
        "async runtime worker threads: {}",
        runtime.metrics().num_workers()
    );
    let outcome = runtime.block_on(async {
        let console = pane
            .clone()
            .map_or_else(Console::default, Console::with_pane);
        let (handle, mut orders) = supervisor::handle(&console);
        // How the control socket and the live view check a tab added at run time.
        let check: control::Check = {
            let registry = Arc::clone(registry);
            let backend = config.tor.backend.clone();
            Arc::new(move |table| config::check_added_tab(table, &*registry, &backend))
        };
        // The control socket opens first: `onionhost tabs list` sees the tabs while Tor
        // connects. The host refuses to start when it cannot open it safely.
        let control = if common.no_control {
            None
        } else {
            let socket = control::ControlSocket::open(common.control.as_deref())?;
            tracing::debug!("control socket at {}", socket.path().display());
            Some(tokio::spawn(
                socket.serve(handle.clone(), Arc::clone(&check)),
            ))
        };
        // Signals are caught from here on, before anything slow starts (connecting to Tor).
        let controls = Controls {
            shutdown: CancellationToken::new(),
            force_close: CancellationToken::new(),
        };
        let (shutdown, force_close) = (controls.shutdown.clone(), controls.force_close.clone());
        tokio::spawn(watch_signals(controls.clone())?);
        if let Some(pane) = pane {
            let tab_orders = TabOrders {
                handle: handle.clone(),
                check,
                registry: Arc::clone(registry),
                runtime: tokio::runtime::Handle::current(),
            };
            view = LiveView::start(console.clone(), pane, controls, tab_orders);
            // A host driven from its terminal stays open when its tabs have ended (the user
            // can open another with `n`), until `q` or Ctrl-C.
            if view.is_some() {
                orders = orders.keeping_open();
            }
        }
        let mut finished: Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> = None;
        if !common.local_only {
            // Connecting can take a while: the config's tabs are listed (`tabs list`, the
            // live view's rows) as starting, and why, from now.
            let why = match config.tor.backend {
                config::Backend::System(_) => "connecting to the system's tor",
                _ => "connecting to Tor",
            };
            for tab in &config.tabs {
                console
                    .tabs()
                    .waiting(&tab.name, &tab.mode, !tab.onion.public, why);
            }
        }
        let transport = if common.local_only {
            console
                .host("--local-only: serving on 127.0.0.1 without Tor; visitors are not anonymous");
            Transport::Local
        } else if let config::Backend::System(system) = &config.tor.backend {
            let starting = SystemTransport::start(&config.tor, system, &console);
            tokio::select! {
                transport = starting => {
                    let transport = transport?;
                    finished = Some(Box::pin(transport.finished(force_close.clone())));
                    Transport::System(transport)
                }
                () = shutdown.cancelled() => {
                    console.host("stopped while connecting to the system's tor");
                    return Ok(ExitCode::SUCCESS);
                }
            }
        } else {
            let dirs = tor_dirs.insert(TorDirs::new(&config.tor)?);
            // Ctrl-C while connecting still ends the host, and still removes Arti's files.
            let starting = OnionTransport::start(&config.tor, dirs, &console);
            tokio::select! {
                transport = starting => {
                    let transport = transport?;
                    finished = Some(Box::pin(transport.finished(force_close.clone())));
                    Transport::Onion(transport)
                }
                () = shutdown.cancelled() => {
                    console.host("stopped while connecting to Tor");
                    return Ok(ExitCode::SUCCESS);
                }
            }
        };
        drop(handle);
        let summary = supervisor::run(
            config,
            registry,
            transport,
            console,
            shutdown,
            force_close.clone(),
            orders,
        )
        .await;
        if let Some(control) = control {
            // Its socket file goes with it.
            control.abort();
            let _ = control.await;
        }
        if let Some(finished) = finished {
            // The onion services and their tasks end before the runtime goes down.
            finished.await;
        }
        // A failure when every tab failed (none ever stopped normally).
        Ok(if summary.failed > 0 && summary.stopped == 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    });
    drop(view);
    // Before `tor_dirs` goes: the runtime, with every Arti task that might write there.
    transport::onion::shut_down(runtime);
    outcome
}

/// How many worker threads the host's runtime gets, if not tokio's default (one per core, or
/// `TOKIO_WORKER_THREADS`, which always decides when it is set).
///
/// With the embedded Arti, one. Every cell of a visitor's stream goes from the task that
/// writes the response to Arti's circuit reactor and on to its channel reactor; with two
/// workers these wake each other across threads for about every cell (some 2,000 context
/// switches per MiB sent against some 50 with one). Measured over the local Tor test network
/// (BENCHMARKS.md, "Over Tor"): one worker takes 30-48% less CPU per MiB downloaded (14%
/// uploaded), at the same or better throughput and the same chat latency over Tor. Without
/// Arti (`--local-only`, or tabs published by the system's tor) nothing passes cells between
/// tasks, and a chat with thousands of members on loopback uses every core: tokio's default
/// stays.
fn worker_threads(embedded_arti: bool, set_by_environment: bool) -> Option<usize> {
    (embedded_arti && !set_by_environment).then_some(1)
}

/// Catches Ctrl-C and SIGTERM from now on; the returned future cancels `shutdown` when the
/// first comes (tabs stop, transfers in flight finish) and `force_close` at the second
/// (everything stops at once). The live view's Ctrl-C key counts as one of them.
fn watch_signals(controls: Controls) -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    Ok(async move {
        while !controls.force_close.is_cancelled() {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            controls.interrupt();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::worker_threads;

    #[test]
    fn one_worker_with_the_embedded_arti_unless_the_environment_says() {
        assert_eq!(worker_threads(true, false), Some(1));
        // TOKIO_WORKER_THREADS decides when it is set, and tokio reads it itself.
        assert_eq!(worker_threads(true, true), None);
        // --local-only, or the system's tor: tokio's default (one per core).
        assert_eq!(worker_threads(false, false), None);
        assert_eq!(worker_threads(false, true), None);
    }
}
