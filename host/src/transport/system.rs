//! The system tor's transport (`backend = "system"`): every tab is its own onion service,
//! published by a tor already running on the system (Tails, Whonix, a tor service) through
//! its control port or socket, instead of the embedded Arti.
//!
//! One control connection per host ([`control`], replies parsed by [`reply`]), authenticated
//! once. Each tab is one `ADD_ONION` ([`service`]): a new key that tor discards
//! (`NEW:ED25519-V3`, `Flags=DiscardPK`) for an ephemeral tab, the tab's stored key for a
//! persistent one (kept as the embedded transport keeps it), `ClientAuthV3` with the tab's
//! client key for a private one. Tor forwards the service's port 80 to a Unix socket in a
//! private 0700 folder of the host, served like any listener (`local.rs`), so no TCP port is
//! open; only when tor cannot reach that folder (it runs as another user, or on another
//! machine, as on Tails and Whonix) does a tab listen on a 127.0.0.1 port, and the console
//! says so. The services belong to the control connection: `DEL_ONION` when a tab stops,
//! and tor removes them all if the host's connection ends. A lost connection fails every tab
//! it published, on the console.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Incoming;
use crate::config::{SystemTor, TabConfig, TorConfig};
use crate::console::Console;

mod control;
mod reply;
mod service;
mod socks;

use control::Control;

/// How long connecting to and authenticating with the control port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the system tor's bootstrap progress is asked while it connects.
const BOOTSTRAP_POLL: Duration = Duration::from_secs(1);

/// The ports a tab listens on when tor cannot use a Unix socket, in order: the range that
/// onion-grater profiles (Tails, Whonix) let an application forward an onion service to, so
/// that a profile need not allow every local port.
const TCP_PORTS: std::ops::RangeInclusive<u16> = 17600..=17659;

/// The longest Unix socket path (`sun_path` is 108 bytes with its NUL on Linux).
const MAX_SOCKET_PATH: usize = 100;

/// The system tor's transport: its control connection, and where tabs' streams arrive.
pub(crate) struct SystemTransport {
    control: Control,
    keys_dir: Option<PathBuf>,
    target: Target,
    /// Whether tor sends HS_DESC events (a control-port filter may hold them back): the
    /// address is printed once a descriptor is uploaded, or at once without them.
    events: bool,
    /// DEL_ONION commands of stopped tabs, which the host waits for before it exits.
    tasks: TaskTracker,
    /// The task that says on the console when the control connection is lost. A lost
    /// connection fails every tab, and the host then exits: it waits for this line first.
    loss_report: TaskTracker,
    /// Ends the loss report's wait once the host is exiting with the connection still up.
    exiting: CancellationToken,
}

/// Where tor sends a tab's streams.
enum Target {
    /// A Unix socket per tab in this private folder (removed on exit).
    Unix {
        dir: tempfile::TempDir,
        next: AtomicUsize,
    },
    /// A 127.0.0.1 port per tab.
    Tcp,
}

impl SystemTransport {
    /// Connects to the system's tor, authenticates, and waits (up to `[tor]
    /// bootstrap_timeout`) until it has bootstrapped.
    pub(crate) async fn start(
        tor: &TorConfig,
        system: &SystemTor,
        console: &Console,
    ) -> anyhow::Result<Self> {
        console.host(&format!(
            "[tor] using the system's tor through its {}",
            system.control
        ));
        let control = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let control = Control::connect(&system.control).await?;
            let (method, version) = control.authenticate(system.password.as_ref()).await?;
            console.host(&format!(
                "[tor] connected to tor {version} ({method} authentication)"
            ));
            anyhow::Ok(control)
        })
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "tor's {} did not answer within {CONNECT_TIMEOUT:?}",
                system.control
            )
        })?
        .context(
            "cannot use the system's tor (is it running, with `ControlPort` or `ControlSocket` \
             and `CookieAuthentication 1` in its torrc?)",
        )?;
        wait_for_bootstrap(&control, tor.bootstrap_timeout, console).await?;
        let events = control.send("SETEVENTS HS_DESC").await?.is_ok();
        if !events {
            console.host(
                "[tor] the system's tor does not report onion service publication: each address is printed at once, and may take a minute to be reachable",
            );
        }
        let target = choose_target(&control, console).await;
        let loss_report = TaskTracker::new();
        let exiting = CancellationToken::new();
        loss_report.spawn(report_loss(
            control.clone(),
            console.clone(),
            exiting.clone(),
        ));
        loss_report.close();
        Ok(Self {
            control,
            keys_dir: tor.keys_dir.clone(),
            target,
            events,
            tasks: TaskTracker::new(),
            loss_report,
            exiting,
        })
    }

    /// Publishes `tab` as its own onion service; with a start time ahead, prints its address
    /// (and client key) first and publishes only from then (see [`super::Transport::open`]).
    pub(crate) async fn open(
        &self,
        tab: &TabConfig,
        console: &Console,
        stopping: &CancellationToken,
    ) -> anyhow::Result<Option<Incoming>> {
        anyhow::ensure!(
            tab.onion.intro_rate_per_second.is_none(),
            "`intro_rate_per_second` cannot be set with the system's tor: its control port cannot set an introduction rate limit for one onion service"
        );
        let keys = super::onion::tab_keys(tab, self.keys_dir.as_deref(), console)?;
        let pending = super::pending_start(tab);
        if let Some(start) = pending {
            super::onion::announce_pending(&tab.name, &keys, start, tab.qr, console)?;
            if !super::wait_for_start(start, stopping).await {
                return Ok(None);
            }
        }
        let (incoming, target, socket) = self.listen().await?;
        // An ephemeral tab whose address is already out (a start time) must be published
        // with that key; tor keeps no copy of it either way (it only returns keys it made,
        // and DiscardPK asks it not to).
        let key = if tab.onion.persistent || pending.is_some() {
            service::Key::Given(keys.identity_base64())
        } else {
            service::Key::New
        };
        let request = service::AddOnion {
            key,
            clients: service::client_keys(&keys, &tab.onion),
            target,
            proof_of_work: tab.onion.proof_of_work == Some(true),
        };
        service::publish(
            service::Publication {
                control: &self.control,
                name: &tab.name,
                request,
                keys: &keys,
                qr: tab.qr && pending.is_none(),
                events: self.events,
                socket,
                tasks: &self.tasks,
            },
            incoming,
            console,
        )
        .await
        .map(Some)
    }

    /// A listener for one more tab: its connections, tor's `Port=80,<target>` target, and
    /// the socket file to remove when the tab stops.
    async fn listen(&self) -> anyhow::Result<(Incoming, String, Option<PathBuf>)> {
        match &self.target {
            Target::Unix { dir, next } => {
                let path = dir
                    .path()
                    .join(format!("{}.sock", next.fetch_add(1, Ordering::Relaxed)));
                let listener = tokio::net::UnixListener::bind(&path)
                    .with_context(|| format!("cannot listen on {}", path.display()))?;
                let target = format!("unix:{}", path.display());
                Ok((super::local::incoming(listener), target, Some(path)))
            }
            Target::Tcp => {
                let listener = tcp_listener().await?;
                let addr = listener
                    .local_addr()
                    .context("cannot read the listening address")?;
                Ok((super::local::incoming(listener), addr.to_string(), None))
            }
        }
    }

    /// A stream through the system tor's SOCKS port to `host:port`, for a tab's notices.
    pub(crate) async fn connect(
        &self,
        host: &str,
        port: u16,
    ) -> anyhow::Result<Box<dyn super::Io>> {
        let listeners = self
            .control
            .getinfo("net/listeners/socks")
            .await
            .context("cannot ask the system's tor for its SOCKS port")?;
        socks::connect(&listeners, host, port).await
    }

    /// A handle that waits until every stopped tab's DEL_ONION has been answered (or at once
    /// when `force_close` is cancelled): the host waits for it before it exits.
    pub(crate) fn finished(
        &self,
        force_close: CancellationToken,
    ) -> impl Future<Output = ()> + use<> {
        let tasks = self.tasks.clone();
        let loss_report = self.loss_report.clone();
        let exiting = self.exiting.clone();
        async move {
            tasks.close();
            tokio::select! {
                () = tasks.wait() => {}
                () = force_close.cancelled() => {}
            }
            exiting.cancel();
            loss_report.wait().await;
        }
    }
}

/// Says on the console that the control connection to tor is lost, once it is; ends quietly
/// when `exiting` fires first. A loss already there when `exiting` fires is still said: the
/// tabs it failed are what made the host exit.
async fn report_loss(control: Control, console: Console, exiting: CancellationToken) {
    let lost = control.lost();
    tokio::select! {
        biased;
        () = lost.cancelled() => console.host(&format!(
            "[tor] lost the control connection to the system's tor ({}): the onion services it published are gone, and every tab still published through it fails",
            control.why_lost()
        )),
        () = exiting.cancelled() => {}
    }
}

/// A 127.0.0.1 listener on the first free port of [`TCP_PORTS`], else on any free port.
async fn tcp_listener() -> anyhow::Result<tokio::net::TcpListener> {
    for port in TCP_PORTS {
        if let Ok(listener) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            return Ok(listener);
        }
    }
    tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("cannot listen on 127.0.0.1")
}

/// Waits until the system's tor has bootstrapped, showing its progress. A control-port
/// filter that refuses the question (or answers it always done) is taken at its word.
async fn wait_for_bootstrap(
    control: &Control,
    limit: Duration,
    console: &Console,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut shown = None;
    loop {
        let phase = match control.getinfo("status/bootstrap-phase").await {
            Ok(phase) => phase,
            Err(err) if control.lost().is_cancelled() => return Err(err),
            Err(err) => {
                tracing::debug!("no bootstrap status from tor: {err:#}");
                return Ok(());
            }
        };
        let progress = reply::args(&phase)
            .and_then(|args| reply::arg(&args, "PROGRESS")?.parse::<u8>().ok())
            .unwrap_or(0);
        if progress >= 100 {
            if shown.is_some() {
                console.host("[tor] the system's tor has bootstrapped");
            }
            return Ok(());
        }
        if shown != Some(progress) {
            shown = Some(progress);
            console.host(&format!(
                "[tor] the system's tor is connecting to the Tor network: {progress}%"
            ));
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the system's tor did not finish connecting to the Tor network within {} (it is at {progress}%): look at its log",
            humantime::format_duration(limit)
        );
        tokio::time::sleep(BOOTSTRAP_POLL).await;
    }
}

/// A Unix socket target in a private folder when tor can reach it: it runs as this user on
/// this machine and sees that folder. Otherwise a 127.0.0.1 port per tab, said on the console.
async fn choose_target(control: &Control, console: &Console) -> Target {
    let dir = match socket_dir() {
        Ok(dir) => dir,
        Err(err) => {
            tracing::debug!("no private folder for the sockets: {err:#}");
            console.host(&tcp_fallback_line(
                "onionhost could not make a private folder for the sockets",
            ));
            return Target::Tcp;
        }
    };
    let reason = match control.getinfo("process/pid").await {
        Ok(pid) => match pid.trim().parse::<u32>() {
            Ok(pid) => tor_can_reach(pid, dir.path()).err(),
            Err(_) => Some("the system's tor does not say which process it is"),
        },
        Err(err) => {
            tracing::debug!("no process id from tor: {err:#}");
            Some(
                "the system's tor does not say which process it is (a control-port filter, or another machine)",
            )
        }
    };
    match reason {
        None => Target::Unix {
            dir,
            next: AtomicUsize::new(0),
        },
        Some(reason) => {
            console.host(&tcp_fallback_line(reason));
            Target::Tcp
        }
    }
}

/// The console line that says the tabs listen on 127.0.0.1 ports, and why.
fn tcp_fallback_line(reason: &str) -> String {
    format!(
        "[tor] {reason}, so tor cannot open a Unix socket in onionhost's private folder: each tab listens on a 127.0.0.1 port instead, which other programs on this machine can connect to"
    )
}

/// A private folder (0700) for the tabs' sockets, under `XDG_RUNTIME_DIR` if set (a tmpfs
/// only this user can enter), else the temporary folder; its path must be short and plain
/// enough to be a tor `unix:` target.
fn socket_dir() -> anyhow::Result<tempfile::TempDir> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute() && dir.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("onionhost-")
        .tempdir_in(&base)
        .with_context(|| format!("cannot make a folder in {}", base.display()))?;
    // Private whatever the umask: only this user may connect to the tabs' sockets.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private", dir.path().display()))?;
    let plain = dir.path().to_str().is_some_and(|path| {
        path.len() + "/999999.sock".len() <= MAX_SOCKET_PATH
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
    });
    anyhow::ensure!(
        plain,
        "{} is too long or has characters a tor target cannot hold",
        dir.path().display()
    );
    Ok(dir)
}

/// Whether the tor process `pid` can connect to sockets in `dir`: it runs as this user and
/// sees `dir` (its root and mounts, through `/proc/<pid>/root`, are those of this process).
fn tor_can_reach(pid: u32, dir: &Path) -> Result<(), &'static str> {
    let proc = Path::new("/proc").join(pid.to_string());
    let ours = std::fs::metadata("/proc/self").map_err(|_| "/proc cannot be read")?;
    let theirs = std::fs::metadata(&proc)
        .map_err(|_| "the system's tor runs on another machine or in another container")?;
    if ours.uid() != theirs.uid() {
        return Err("the system's tor runs as another user");
    }
    let seen = proc.join("root").join(dir.strip_prefix("/").unwrap_or(dir));
    if std::fs::metadata(seen).is_err() {
        return Err("the system's tor does not see onionhost's private folder (a private /tmp?)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The host exits once the lost connection has failed every tab: the loss is still said,
    /// however the two wake-ups are ordered; a host exiting with tor still there says nothing.
    #[tokio::test]
    async fn a_loss_is_said_even_when_the_host_is_already_exiting() {
        let (ours, theirs) = tokio::io::duplex(1024);
        let control = Control::over(ours);
        drop(theirs);
        control.lost().cancelled().await;
        let console = Console::default();
        let exiting = CancellationToken::new();
        exiting.cancel();
        report_loss(control, console.clone(), exiting.clone()).await;
        assert_eq!(
            console.lines(),
            [
                "[tor] lost the control connection to the system's tor (tor closed it): the onion services it published are gone, and every tab still published through it fails"
            ]
        );

        let (ours, _theirs) = tokio::io::duplex(1024);
        let quiet = Console::default();
        report_loss(Control::over(ours), quiet.clone(), exiting).await;
        assert!(quiet.lines().is_empty(), "{:?}", quiet.lines());
    }

    #[test]
    fn this_process_can_reach_its_own_folder_and_not_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        tor_can_reach(std::process::id(), dir.path()).unwrap();
        assert!(tor_can_reach(std::process::id(), &dir.path().join("missing")).is_err());
        assert!(tor_can_reach(u32::MAX, dir.path()).is_err());
    }

    #[test]
    fn the_socket_folder_is_private_and_plain() {
        let dir = socket_dir().unwrap();
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
