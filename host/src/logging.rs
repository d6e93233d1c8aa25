//! The host's log on stderr: what `RUST_LOG` selects, under caps that no directive can lift.
//!
//! The log is for diagnosis; the console (stdout) is the user interface. Two rules hold
//! whatever `RUST_LOG` says:
//! - the libraries that see visitors' bytes never log below info: at debug and trace they
//!   print WebSocket frames (chat messages, names), headers and form fields;
//! - Arti's lines are details, shown only when debug is asked for its target, and then marked
//!   as debug: the console already says in one line what a user needs to know (bootstrap
//!   progress, a blocked network, an onion service in trouble).
//!
//! Colour only when stderr is a terminal, `NO_COLOR` is unset and there is no live view.
//! While the live view owns the terminal, the lines go to its pane instead of stderr (written
//! there, they would tear the screen it draws).
//!
//! One kind of Arti event also reaches the console: a pluggable transport that fails
//! (`tor_ptmgr`'s warnings, which Arti reports nowhere else), through
//! [`transport_failures`], so that the bootstrap can say so in one line. Another reaches the
//! onion services: the descriptor publisher's upload results ([`publications`]), which Arti's
//! status reports only once every time period's upload is done (and, on a network with one
//! time period, never).

use std::fmt;
use std::io::IsTerminal as _;
use std::sync::OnceLock;

use tokio::sync::broadcast;

use crate::console::pane::{Pane, Source};

use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::{EnvFilter, FilterFn, LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

/// What is logged when `RUST_LOG` is unset: onionhost's own lines from info up, the
/// libraries' warnings.
const DEFAULT_DIRECTIVES: &str = "warn,onionhost=info,onionhost_sdk=info";

/// Libraries whose debug and trace logs carry what visitors send.
const PRIVATE_TARGETS: &[&str] = &[
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "axum",
    "multer",
    "tower_http",
];

/// What the pluggable transport manager warns about, for the console (see
/// [`transport_failures`]). Only the events' messages travel: tor-ptmgr knows transport
/// binaries, never bridge addresses.
static TRANSPORT_FAILURES: OnceLock<broadcast::Sender<String>> = OnceLock::new();

/// The failures of pluggable transports (launch failures, a binary that exits), as Arti's
/// messages, from now on.
pub(crate) fn transport_failures() -> broadcast::Receiver<String> {
    TRANSPORT_FAILURES
        .get_or_init(|| broadcast::channel(16).0)
        .subscribe()
}

/// Whether an event is a pluggable transport failure that the console shows: tor-ptmgr's
/// own warnings (its modules repeat them in other words, `tor_ptmgr::managed` for one).
fn is_transport_failure(meta: &Metadata<'_>) -> bool {
    meta.is_event() && meta.target() == "tor_ptmgr" && *meta.level() <= Level::WARN
}

/// Sends the message of each transport failure to [`transport_failures`].
struct TransportFailures;

impl<S: Subscriber> tracing_subscriber::Layer<S> for TransportFailures {
    fn on_event(&self, event: &Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if let Some(sender) = TRANSPORT_FAILURES.get() {
            // Nobody listening (the host is not bootstrapping) is fine.
            let _ = sender.send(message.0);
        }
    }
}

/// The module of Arti's onion service descriptor publisher (tor-hsservice 0.47), whose events
/// [`publications`] reads.
const PUBLISHER: &str = "tor_hsservice::publish::reactor";

/// What Arti's descriptor publisher of one onion service (by its nickname) said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Publication {
    /// It started uploading the descriptor for one time period (to every HsDir of its ring).
    Started {
        /// The service's nickname.
        nickname: String,
    },
    /// The upload for one time period ended: `ok` of `total` HsDirs hold the descriptor.
    Uploaded {
        /// The service's nickname.
        nickname: String,
        /// HsDirs that accepted the descriptor.
        ok: usize,
        /// HsDirs it was uploaded to.
        total: usize,
    },
}

/// The publisher events that [`publications`] carries: they name the service by nickname and
/// give counts, never an address or a relay.
static PUBLICATIONS: OnceLock<broadcast::Sender<Publication>> = OnceLock::new();

/// The upload results of every onion service's descriptor publisher, from now on. Arti 0.47
/// says them only in its log (trace: "spawning upload task", debug: "descriptor uploaded
/// successfully to N/M HSDirs", both with the service's nickname); if a later Arti words them
/// otherwise, nothing arrives here and the services fall back on the reachability check.
pub(crate) fn publications() -> broadcast::Receiver<Publication> {
    PUBLICATIONS
        .get_or_init(|| broadcast::channel(64).0)
        .subscribe()
}

/// The publication an event of the publisher reports, from its message and nickname.
fn publication(message: &str, nickname: String) -> Option<Publication> {
    if message == "spawning upload task" {
        return Some(Publication::Started { nickname });
    }
    let counts = message
        .strip_prefix("descriptor uploaded successfully to ")?
        .strip_suffix(" HSDirs")?;
    let (ok, total) = counts.split_once('/')?;
    Some(Publication::Uploaded {
        nickname,
        ok: ok.parse().ok()?,
        total: total.parse().ok()?,
    })
}

/// Sends what the publisher's events report to [`publications`].
struct Publications;

impl<S: Subscriber> tracing_subscriber::Layer<S> for Publications {
    fn on_event(&self, event: &Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            message: String,
            nickname: Option<String>,
        }
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                match field.name() {
                    "message" => self.message = format!("{value:?}"),
                    "nickname" => self.nickname = Some(format!("{value:?}")),
                    _ => {}
                }
            }
        }
        let Some(sender) = PUBLICATIONS.get() else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let Some(nickname) = fields.nickname
            && let Some(publication) = publication(&fields.message, nickname)
        {
            // No service listening (none is starting) is fine.
            let _ = sender.send(publication);
        }
    }
}

/// Whether `target` is one of Arti's crates.
fn is_arti(target: &str) -> bool {
    target.starts_with("tor_") || target.starts_with("arti_")
}

/// The cap on the libraries that see visitors' bytes: at most info, whatever else is asked.
fn private_cap() -> Targets {
    PRIVATE_TARGETS.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |cap, target| cap.with_target(*target, LevelFilter::INFO),
    )
}

/// The directives in effect: `RUST_LOG`, or the default when it is unset or invalid.
fn directives() -> String {
    match std::env::var("RUST_LOG") {
        Ok(value) if EnvFilter::try_new(&value).is_ok() => value,
        _ => DEFAULT_DIRECTIVES.to_owned(),
    }
}

/// Whether an Arti event passes: its target must be selected at debug (what Arti says is a
/// detail, whatever level Arti gave it).
fn arti_selected(selected: &Targets, meta: &Metadata<'_>) -> bool {
    selected.would_enable(meta.target(), &Level::DEBUG)
}

/// Whether a span or event passes to the Arti layer: an Arti event whose target is selected
/// at debug. Never a span: [`Demoted`] prints no span context, and an enabled span costs every
/// call of an `#[instrument]`ed Arti function a registry entry and its formatted fields.
/// tor-proto instruments its per-cell paths (`circuit/cell_sender.rs`, the channel and
/// circuit reactors), so enabled spans cost CPU on every relay cell of every download.
fn arti_enabled(selected: &Targets, meta: &Metadata<'_>) -> bool {
    is_arti(meta.target()) && meta.is_event() && arti_selected(selected, meta)
}

/// The layer that prints Arti's events (see [`arti_enabled`]) as debug lines.
fn arti_layer<S>(selected: Targets, ansi: bool, output: Output) -> impl tracing_subscriber::Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(output)
        .with_ansi(ansi)
        .event_format(Demoted)
        .with_filter(FilterFn::new(move |meta| arti_enabled(&selected, meta)))
}

/// Where the log's lines go: stderr, or `pane` while it is open.
#[derive(Clone)]
struct Output(Option<Pane>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Output {
    type Writer = OutputWriter;

    fn make_writer(&'a self) -> OutputWriter {
        OutputWriter {
            pane: self.0.clone(),
            line: Vec::new(),
        }
    }
}

/// One event's text, written to its place when the event is formatted (on drop).
struct OutputWriter {
    pane: Option<Pane>,
    line: Vec<u8>,
}

impl std::io::Write for OutputWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for OutputWriter {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        if self
            .pane
            .as_ref()
            .is_some_and(|pane| pane.push(Source::Log, &text))
        {
            return;
        }
        // Nowhere else to report a failed write of the log.
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), &self.line);
    }
}

/// Sets up the log on stderr; with `pane` (a live view may show), in the pane while it is
/// open.
pub(crate) fn init(pane: Option<Pane>) {
    let live = pane.is_some();
    let output = Output(pane);
    let directives = directives();
    // NO_COLOR counts when it is set and not empty (no-color.org).
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    let ansi = std::io::stderr().is_terminal() && !no_color && !live;
    // Targets reads the same `target=level` syntax; span and field filters, which it does
    // not know, only make it more permissive here, and the EnvFilter still applies.
    let selected: Targets = directives
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::WARN));
    let env =
        || EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new(DEFAULT_DIRECTIVES));

    // The cap is a filter of its own after the EnvFilter, so a more specific directive
    // (`tungstenite::protocol=trace`) cannot lift it.
    let ours = tracing_subscriber::fmt::layer()
        .with_writer(output.clone())
        .with_ansi(ansi)
        .with_filter(env())
        .with_filter(private_cap())
        .with_filter(FilterFn::new(|meta| !is_arti(meta.target())));
    let arti = arti_layer(selected, ansi, output);
    let failures = TransportFailures.with_filter(FilterFn::new(is_transport_failure));
    // A static filter (the publisher's events come from a handful of call sites, none per
    // cell), and events only: no span of the publisher is entered for it.
    let publications = Publications
        .with_filter(FilterFn::new(|meta| meta.is_event()))
        .with_filter(Targets::new().with_target(PUBLISHER, LevelFilter::TRACE));
    tracing_subscriber::registry()
        .with(ours)
        .with(arti)
        .with(failures)
        .with(publications)
        .init();
    // The `log` crate's records (tungstenite's among them) reach tracing through tracing-log,
    // which passes whatever the registry's level hint allows; the Arti layer's filter is
    // dynamic, so that hint was TRACE, and every `log::trace!` of the WebSocket library was
    // built and filtered for each frame: 6% of the chat server's CPU at 10,000 members
    // (BENCHMARKS.md). Only `ours` prints `log` records (Arti logs through tracing, the
    // transport failures too), so no record beyond what its EnvFilter selects can be printed.
    log::set_max_level(
        env()
            .max_level_hint()
            .map_or(log::LevelFilter::Trace, as_log),
    );
}

/// The `log` crate's name for a level filter.
fn as_log(level: LevelFilter) -> log::LevelFilter {
    match level {
        LevelFilter::OFF => log::LevelFilter::Off,
        LevelFilter::ERROR => log::LevelFilter::Error,
        LevelFilter::WARN => log::LevelFilter::Warn,
        LevelFilter::INFO => log::LevelFilter::Info,
        LevelFilter::DEBUG => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

/// Prints an Arti event as a debug line, its own level in lowercase after the target.
struct Demoted;

impl<S, N> FormatEvent<S, N> for Demoted
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let now = humantime::format_rfc3339_micros(std::time::SystemTime::now());
        let level = meta.level().as_str().to_ascii_lowercase();
        write!(writer, "{now} DEBUG {}: ({level}) ", meta.target())?;
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_private_cap_holds_for_sub_targets() {
        let cap = private_cap();
        for target in [
            "tungstenite::protocol",
            "hyper::proto::h1::io",
            "axum::rejection",
        ] {
            assert!(!cap.would_enable(target, &Level::DEBUG), "{target}");
            assert!(cap.would_enable(target, &Level::INFO), "{target}");
        }
        assert!(cap.would_enable("onionhost::supervisor", &Level::TRACE));
    }

    #[test]
    fn transport_failures_reach_the_console_and_nothing_else_does() {
        let mut failures = transport_failures();
        let subscriber = tracing_subscriber::registry()
            .with(TransportFailures.with_filter(FilterFn::new(is_transport_failure)));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "tor_ptmgr", "PT for obfs4 failed to launch: PT binary gone");
            tracing::info!(target: "tor_ptmgr", "Launching pluggable transport");
            tracing::warn!(target: "tor_ptmgr::managed", "Spawning PT failed");
            tracing::warn!(target: "tor_guardmgr::guard", "Could not connect to guard");
        });
        assert_eq!(
            failures.try_recv().expect("the failure"),
            "PT for obfs4 failed to launch: PT binary gone"
        );
        assert!(
            failures.try_recv().is_err(),
            "more than the failure came through"
        );
    }

    #[test]
    fn the_publishers_upload_results_reach_the_services() {
        let mut publications = publications();
        let subscriber = tracing_subscriber::registry().with(
            Publications
                .with_filter(FilterFn::new(|meta| meta.is_event()))
                .with_filter(Targets::new().with_target(PUBLISHER, LevelFilter::TRACE)),
        );
        let nickname = "share";
        tracing::subscriber::with_default(subscriber, || {
            // As tor-hsservice 0.47 writes them (publish/reactor.rs).
            tracing::trace!(target: PUBLISHER, nickname=%nickname, time_period=?(1, 2), "spawning upload task");
            tracing::trace!(target: PUBLISHER, nickname=%nickname, "starting descriptor upload task...");
            tracing::debug!(target: PUBLISHER, nickname=%nickname, time_period=?(1, 2),
                "descriptor uploaded successfully to {}/{} HSDirs", 7, 8);
            // Another module, or no nickname: not a publication.
            tracing::debug!(target: "tor_hsservice::ipt_mgr", nickname=%nickname,
                "descriptor uploaded successfully to {}/{} HSDirs", 8, 8);
            tracing::debug!(target: PUBLISHER, "descriptor uploaded successfully to {}/{} HSDirs", 8, 8);
        });
        let nickname = nickname.to_owned();
        assert_eq!(
            publications.try_recv().expect("the start"),
            Publication::Started {
                nickname: nickname.clone()
            }
        );
        assert_eq!(
            publications.try_recv().expect("the result"),
            Publication::Uploaded {
                nickname,
                ok: 7,
                total: 8
            }
        );
        assert!(publications.try_recv().is_err(), "more came through");
        assert_eq!(
            publication("descriptor uploaded successfully to x/8 HSDirs", "a".into()),
            None
        );
    }

    #[test]
    fn arti_spans_are_never_enabled_and_its_events_only_when_selected() {
        let selected: Targets = "info,tor_proto=debug".parse().expect("directives");
        let subscriber =
            tracing_subscriber::registry().with(arti_layer(selected, false, Output(None)));
        tracing::subscriber::with_default(subscriber, || {
            // The spans of tor-proto's per-cell paths, at any level, and with the target
            // selected: none is made.
            assert!(
                tracing::trace_span!(target: "tor_proto::circuit::cell_sender", "poll_ready")
                    .is_disabled()
            );
            assert!(tracing::info_span!(target: "tor_proto", "reactor").is_disabled());
            assert!(tracing::error_span!(target: "tor_hsservice", "publish").is_disabled());
            // Its events pass where its target is selected at debug, whatever their level.
            assert!(tracing::event_enabled!(target: "tor_proto::circuit", Level::TRACE));
            assert!(!tracing::event_enabled!(target: "tor_hsservice", Level::WARN));
            assert!(!tracing::event_enabled!(target: "onionhost", Level::WARN));
        });
    }

    #[test]
    fn arti_needs_debug_for_its_target() {
        let default: Targets = DEFAULT_DIRECTIVES.parse().expect("directives");
        let debug: Targets = "info,tor_guardmgr=debug".parse().expect("directives");
        assert!(!default.would_enable("tor_guardmgr::guard", &Level::DEBUG));
        assert!(debug.would_enable("tor_guardmgr::guard", &Level::DEBUG));
        assert!(!debug.would_enable("tor_chanmgr", &Level::DEBUG));
        assert!(is_arti("tor_hsservice::pow") && is_arti("arti_client"));
        assert!(!is_arti("onionhost") && !is_arti("tokio"));
    }
}
