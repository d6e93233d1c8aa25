//! The `onionhost` binary: parse the command line, run the tabs, exit with a status.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use tokio_util::sync::CancellationToken;

mod cli;
mod config;
mod console;
mod logging;
mod modes;
mod notice;
mod plugin;
mod supervisor;
mod transport;

use cli::{Cli, Command, CommonArgs, TabArgs};
use config::{HostConfig, OnionTabOptions, TabConfig};
use console::Console;
use modes::Registry;
use transport::Transport;
use transport::onion::{OnionTransport, TorDirs};

/// Exit status for a config or usage error: nothing was started.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    let registry = Registry::builtin();
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
    match run(config, &common, &registry) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Applies `--tor-network FILE`: its authorities and fallbacks replace the config's.
fn with_tor_network(mut config: HostConfig, common: &CommonArgs) -> anyhow::Result<HostConfig> {
    if let Some(path) = &common.tor_network {
        config.tor.network = Some(config::load_network(path)?);
    }
    Ok(config)
}

/// Turns the command line into a checked config; `None` when the command was only a check.
fn host_config(
    command: Command,
    registry: &Registry,
) -> anyhow::Result<Option<(HostConfig, CommonArgs)>> {
    let one_tab = |mode: &str, tab: TabArgs, section: toml::Table| -> anyhow::Result<HostConfig> {
        let section = toml::Value::Table(section);
        registry
            .factory(mode, None)?
            .check(&section)
            .map_err(|err| anyhow::anyhow!("{err}"))?;
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
            }],
            ..HostConfig::default()
        })
    };
    Ok(Some(match command {
        Command::Run { config, common } => (config::load(&config, registry)?, common),
        Command::Check { config } => {
            let config = config::load(&config, registry)?;
            registry.check_plugins(&config)?;
            eprintln!("config is valid: {} tab(s)", config.tabs.len());
            return Ok(None);
        }
        Command::Chat { tab, common } => (one_tab("chat", tab, toml::Table::new())?, common),
        Command::Share {
            paths,
            keep_sharing,
            tab,
            common,
        } => {
            let mut section = toml::Table::new();
            let paths = paths
                .iter()
                .map(|p| p.to_str().map(|s| toml::Value::String(s.to_owned())))
                .collect::<Option<Vec<_>>>()
                .context("a path is not valid UTF-8")?;
            section.insert("paths".into(), toml::Value::Array(paths));
            if keep_sharing {
                section.insert(
                    "stop_after_first_download".into(),
                    toml::Value::Boolean(false),
                );
            }
            (one_tab("share", tab, section)?, common)
        }
        Command::Receive { dir, tab, common } => {
            let mut section = toml::Table::new();
            if let Some(dir) = dir {
                let dir = dir.to_str().context("the folder is not valid UTF-8")?;
                section.insert("dir".into(), toml::Value::String(dir.to_owned()));
            }
            (one_tab("receive", tab, section)?, common)
        }
    }))
}

/// Runs the tabs until they end or a signal comes.
fn run(config: HostConfig, common: &CommonArgs, registry: &Registry) -> anyhow::Result<ExitCode> {
    // Arti's temporary folder is removed only after the runtime (and so every Arti task that
    // might still write to it) has stopped: it is declared first, so it is dropped last.
    let mut tor_dirs: Option<TorDirs> = None;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async {
        let console = Console::default();
        // Signals are caught from here on, before anything slow starts (connecting to Tor).
        let shutdown = CancellationToken::new();
        let force_close = CancellationToken::new();
        tokio::spawn(watch_signals(shutdown.clone(), force_close.clone())?);
        let mut finished = None;
        let transport = if common.local_only {
            console
                .host("--local-only: serving on 127.0.0.1 without Tor; visitors are not anonymous");
            Transport::Local
        } else {
            let dirs = tor_dirs.insert(TorDirs::new(&config.tor)?);
            // Ctrl-C while connecting still ends the host, and still removes Arti's files.
            let starting = OnionTransport::start(&config.tor, dirs, &console);
            tokio::select! {
                transport = starting => {
                    let transport = transport?;
                    finished = Some(transport.finished(force_close.clone()));
                    Transport::Onion(transport)
                }
                () = shutdown.cancelled() => {
                    console.host("stopped while connecting to Tor");
                    return Ok(ExitCode::SUCCESS);
                }
            }
        };
        let tabs = config.tabs.len();
        let summary = supervisor::run(
            config,
            registry,
            transport,
            console,
            shutdown,
            force_close.clone(),
        )
        .await;
        if let Some(finished) = finished {
            // The onion services and their tasks end before the runtime goes down.
            finished.await;
        }
        Ok(if summary.failed == tabs && tabs > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    });
    // Before `tor_dirs` goes: the runtime, with every Arti task that might write there.
    transport::onion::shut_down(runtime);
    outcome
}

/// Catches Ctrl-C and SIGTERM from now on; the returned future cancels `shutdown` when the
/// first comes (tabs stop, transfers in flight finish) and `force_close` at the second
/// (everything stops at once).
fn watch_signals(
    shutdown: CancellationToken,
    force_close: CancellationToken,
) -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    Ok(async move {
        for token in [shutdown, force_close] {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            token.cancel();
        }
    })
}
