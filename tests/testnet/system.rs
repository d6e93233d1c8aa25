//! A "system" tor for the tests of onionhost's `backend = "system"`: one more C tor client of
//! the network, run as a distribution's tor service runs, with a control socket (for the
//! host), a control port (for the test's own questions), cookie authentication and a SOCKS
//! port. Each test starts its own (a few seconds on the running network) and can kill it; the
//! one that runs as another user, as Debian's tor service does (`User debian-tor`), is shared
//! by the tests that need it ([`Testnet::system_tor_of_another_user`]).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::network::common_torrc;
use super::process::{TorProcess, create_private_dir, free_ports, read_lossy, tail};
use super::{ClientControl, POLL, Testnet};

/// How long the system tor may take to bootstrap on the running network.
const START_DEADLINE: Duration = Duration::from_secs(90);

/// The user the Debian tor package creates and runs its tor service as.
const TOR_USER: &str = "debian-tor";

/// A C tor of the network with a control socket; stopped (killed) on drop.
pub struct SystemTor {
    socket: PathBuf,
    control: ClientControl,
    socks: SocketAddr,
    process: TorProcess,
}

impl SystemTor {
    /// Its control socket (`ControlSocket`, cookie authentication), for `--tor-control`.
    pub fn control_socket(&self) -> &Path {
        &self.socket
    }

    /// Its control port (cookie authentication too).
    pub fn control_port(&self) -> SocketAddr {
        self.control.addr
    }

    /// Its SOCKS port.
    pub fn socks_addr(&self) -> SocketAddr {
        self.socks
    }

    /// Whether this tor hosts an onion service at `onion` (with or without `.onion`) and has
    /// made its descriptor (`GETINFO hs/service/desc/id/<address>` on a control connection of
    /// the test's own, which sees the services of every connection).
    pub async fn hosts(&self, onion: &str) -> Result<bool> {
        let label = super::onion_label(onion)?;
        let control = self.control.clone();
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut connection = control.control(deadline)?;
            match connection.command(&format!("GETINFO hs/service/desc/id/{label}"), deadline) {
                Ok(_) => Ok(true),
                // 552: no such service; 551: tor has no descriptor for it (any more).
                Err(err)
                    if [" 551 ", " 552 "]
                        .iter()
                        .any(|c| format!("{err:#}").contains(c)) =>
                {
                    Ok(false)
                }
                Err(err) => Err(err),
            }
        })
        .await
        .context("the control thread panicked")?
    }

    /// Kills the tor process at once (SIGKILL): every control connection ends.
    pub fn kill(&mut self) {
        self.process.stop();
    }

    /// Its log, for error messages.
    pub fn log_tail(&self) -> String {
        tail(&self.process.log())
    }
}

impl Testnet {
    /// Starts a C tor of this network with a control socket, a control port, cookie
    /// authentication and a SOCKS port; returns once it has bootstrapped.
    pub async fn system_tor(&'static self) -> Result<SystemTor> {
        tokio::task::spawn_blocking(move || self.start_system_tor(None))
            .await
            .context("the thread starting the system tor panicked")?
    }

    /// A system tor like [`Testnet::system_tor`] that runs as the user `debian-tor`, as
    /// Debian's tor service does: started as root with `User debian-tor`, it drops to that
    /// user once its ports are open, so it can reach no folder private to root. Started at
    /// the first call and shared by every later one (it runs as long as the test process);
    /// a failed start is tried again by the next caller. The tests must run as root.
    pub async fn system_tor_of_another_user(&'static self) -> Result<&'static SystemTor> {
        self.other_user_tor
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(move || self.start_system_tor(Some(TOR_USER)))
                    .await
                    .context("the thread starting the system tor panicked")?
            })
            .await
    }

    fn start_system_tor(&self, user: Option<&str>) -> Result<SystemTor> {
        let n = self.services.fetch_add(1, Ordering::Relaxed);
        let nick = format!("system{n}");
        let dir = self.dir.join(&nick);
        if let Some(user) = user {
            self.dir_for_user(&dir, user)?;
        }
        let ports = free_ports(2)?;
        let control = SocketAddr::from((Ipv4Addr::LOCALHOST, ports[0]));
        let socks = SocketAddr::from((Ipv4Addr::LOCALHOST, ports[1]));
        let socket = dir.join("control.sock");
        let cookie = dir.join("control_auth_cookie");
        let mut torrc = common_torrc(&dir, &nick, &self.network_torrc);
        let _ = write!(
            torrc,
            "SocksPort {socks}\nControlPort {control}\nControlSocket {}\n\
             CookieAuthentication 1\nCookieAuthFile {}\n",
            socket.display(),
            cookie.display()
        );
        if let Some(user) = user {
            let _ = writeln!(torrc, "User {user}");
        }
        let mut process = TorProcess::spawn(&self.tor, &nick, &dir, &torrc)?;
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            process.check_alive()?;
            if read_lossy(&process.log()).contains("Bootstrapped 100%") && socket.exists() {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "the system tor did not bootstrap within {START_DEADLINE:?}; its log:\n{}",
                    tail(&process.log())
                );
            }
            std::thread::sleep(POLL);
        }
        Ok(SystemTor {
            socket,
            control: ClientControl {
                addr: control,
                cookie,
                log: dir.join("notice.log"),
            },
            socks,
            process,
        })
    }

    /// Makes `dir` a tor data directory for `user` (owned by it, 0700), and lets that user
    /// pass through the network's folders above it (0711: it can list none of them, and every
    /// node's own folder stays 0700).
    fn dir_for_user(&self, dir: &Path, user: &str) -> Result<()> {
        ensure!(
            nix::unistd::geteuid().is_root(),
            "a tor that runs as another user needs the tests to run as root (tests/run does)"
        );
        let account = nix::unistd::User::from_name(user)
            .with_context(|| format!("look up the user {user}"))?
            .with_context(|| {
                format!("no user {user} on this machine (Debian's `tor` package creates it)")
            })?;
        create_private_dir(dir)?;
        std::os::unix::fs::chown(dir, Some(account.uid.as_raw()), Some(account.gid.as_raw()))
            .with_context(|| format!("give {} to {user}", dir.display()))?;
        for folder in [self.dir.as_path(), self.dir.parent().unwrap_or(&self.dir)] {
            std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o711))
                .with_context(|| format!("open {} for passing through", folder.display()))?;
        }
        Ok(())
    }
}
