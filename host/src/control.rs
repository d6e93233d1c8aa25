//! The control socket: a Unix socket in the user's private runtime folder through which
//! `onionhost tabs` lists, shows, adds and stops the tabs of a running host.
//!
//! Only the same user gets in: the folder is 0700 (an existing one must be ours and 0700,
//! else the host refuses to start), the socket 0600, and each connection's peer uid is
//! checked (`SO_PEERCRED`). At most [`MAX_CONNECTIONS`] at once, lines of at most
//! [`protocol::MAX_LINE`], [`REQUESTS_PER_MINUTE`] requests a minute per connection (in
//! bursts of [`REQUEST_BURST`]); requests may be pipelined. Nothing listens on a network
//! port. The protocol is in `protocol.rs`, the command's side in `client.rs`.

use std::collections::VecDeque;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use futures::{SinkExt as _, StreamExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec, LinesCodecError};
use tokio_util::sync::CancellationToken;

use crate::config::TabConfig;
use crate::supervisor::Handle;
use crate::tabs::{State, TabStatus};

pub(crate) mod client;
pub(crate) mod protocol;

use protocol::{Hello, Request, Response};

/// Most control connections at once.
pub(crate) const MAX_CONNECTIONS: usize = 8;

/// Requests a minute on one connection, after a first burst of [`REQUEST_BURST`]: enough for
/// any script, and a loop gone wild on one connection costs the host little. A request past
/// it is answered with the limiter's "too many requests" and the connection stays open.
const REQUESTS_PER_MINUTE: u32 = 600;

/// Requests one connection may send at once.
const REQUEST_BURST: u32 = 60;

/// How a run-time tab is checked (`config::check_added_tab` with the host's modes and Tor).
pub(crate) type Check = Arc<dyn Fn(toml::Table) -> Result<TabConfig, Vec<String>> + Send + Sync>;

/// The folder of the control sockets: `$XDG_RUNTIME_DIR/onionhost`, else
/// `<temp>/onionhost-<uid>`.
pub(crate) fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir.join("onionhost"),
        _ => std::env::temp_dir().join(format!("onionhost-{}", nix::unistd::getuid())),
    }
}

/// Creates `dir` 0700, or checks that the existing one is a folder of ours with mode 0700.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            // The umask may have taken bits away; it cannot have added any, but be exact.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => {
            return Err(err).with_context(|| format!("cannot create {}", dir.display()));
        }
    }
    let meta =
        std::fs::symlink_metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let uid = nix::unistd::getuid().as_raw();
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o777 != 0o700 {
        bail!(
            "{} is not a private folder of this user (it must be a folder owned by uid {uid} with mode 0700; it is {} owned by uid {} with mode {:o}): onionhost will not put its control socket there; remove it, or choose another place with --control PATH (or --no-control)",
            dir.display(),
            if meta.is_dir() {
                "a folder"
            } else {
                "not a folder"
            },
            meta.uid(),
            meta.mode() & 0o777,
        );
    }
    Ok(())
}

/// The host's listening control socket; dropping it removes the socket file.
pub(crate) struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    /// Listens at `chosen` (`--control`), else at `<default_dir>/<pid>.sock`. A socket file
    /// left there by a host that has ended is replaced; a live one is refused.
    pub(crate) fn open(chosen: Option<&Path>) -> anyhow::Result<Self> {
        let path = match chosen {
            Some(path) => path.to_owned(),
            None => {
                let dir = default_dir();
                private_dir(&dir)?;
                dir.join(format!("{}.sock", std::process::id()))
            }
        };
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            use std::os::unix::fs::FileTypeExt as _;
            if !meta.file_type().is_socket() {
                bail!(
                    "--control {}: there is a file there that is not a socket; choose another path",
                    path.display()
                );
            }
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                bail!(
                    "--control {}: another onionhost listens there; choose another path",
                    path.display()
                );
            }
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove the old socket {}", path.display()))?;
        }
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("cannot listen on the control socket {}", path.display()))?;
        let socket = Self { listener, path };
        std::fs::set_permissions(&socket.path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot set the mode of {}", socket.path.display()))?;
        Ok(socket)
    }

    /// Where it listens.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Answers connections until dropped.
    pub(crate) async fn serve(self, handle: Handle, check: Check) {
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let closed = CancellationToken::new();
        let _close_all = closed.clone().drop_guard();
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                continue;
            };
            let slot = Arc::clone(&slots).try_acquire_owned();
            let (handle, check, closed) = (handle.clone(), Arc::clone(&check), closed.clone());
            tokio::spawn(async move {
                let Ok(_slot) = slot else {
                    refuse(stream, "too many control connections; try again later").await;
                    return;
                };
                tokio::select! {
                    () = connection(stream, handle, check) => {}
                    () = closed.cancelled() => {}
                }
            });
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes one error line and closes.
async fn refuse(stream: UnixStream, why: &str) {
    let mut out = FramedWrite::new(stream, LinesCodec::new());
    if let Ok(line) = serde_json::to_string(&Response::error(why)) {
        let _ = out.send(line).await;
    }
}

/// One client: its uid checked, the hello, then its requests in order.
async fn connection(stream: UnixStream, handle: Handle, check: Check) {
    let ours = nix::unistd::getuid().as_raw();
    if stream.peer_cred().map(|cred| cred.uid()).ok() != Some(ours) {
        refuse(
            stream,
            "this control socket is for the user who runs the host only",
        )
        .await;
        return;
    }
    let (read, write) = stream.into_split();
    let mut lines = FramedRead::new(read, LinesCodec::new_with_max_length(protocol::MAX_LINE));
    let mut out = FramedWrite::new(write, LinesCodec::new());
    let hello = Hello {
        onionhost: protocol::VERSION,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        pid: std::process::id(),
    };
    if send(&mut out, &hello).await.is_err() {
        return;
    }
    let limiter = onionhost_sdk::rate::RateLimiter::new(
        onionhost_sdk::rate::Rate::per_minute(REQUESTS_PER_MINUTE).with_burst(REQUEST_BURST),
    );
    let mut pending = VecDeque::new();
    loop {
        let next = match pending.pop_front() {
            Some(next) => Some(next),
            None => lines.next().await,
        };
        let line = match next {
            Some(Ok(line)) => line,
            Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                let _ = send(
                    &mut out,
                    &Response::error(format!(
                        "a request line is longer than {} bytes",
                        protocol::MAX_LINE
                    )),
                )
                .await;
                return;
            }
            Some(Err(_)) | None => return,
        };
        let response = if let Err(limited) = limiter.check() {
            Response::error(limited.to_string())
        } else {
            match serde_json::from_str::<Request>(&line) {
                Ok(request) => {
                    let answering = answer(request, &handle, &check);
                    match read_ahead(answering, &mut lines, &mut pending).await {
                        Some(response) => response,
                        None => return,
                    }
                }
                Err(err) => Response::error(format!("not a request: {err}")),
            }
        };
        if send(&mut out, &response).await.is_err() {
            return;
        }
    }
}

/// Requests read ahead while one is answered, at most: more wait in the socket's buffer.
const READ_AHEAD: usize = 4;

/// Waits for `answering` while reading the lines that come meanwhile into `pending`, so that
/// a client that goes away ends the wait (`None`), and one that sends its next requests before
/// this answer (pipelining) gets each answered in its turn.
async fn read_ahead<R>(
    answering: impl Future<Output = Response>,
    lines: &mut FramedRead<R, LinesCodec>,
    pending: &mut VecDeque<Result<String, LinesCodecError>>,
) -> Option<Response>
where
    R: tokio::io::AsyncRead + Unpin,
{
    let mut answering = std::pin::pin!(answering);
    loop {
        // After a line too long nothing more is read: the connection closes once it is answered.
        let reading = pending.len() < READ_AHEAD && pending.back().is_none_or(Result::is_ok);
        tokio::select! {
            biased;
            response = &mut answering => return Some(response),
            next = lines.next(), if reading => match next {
                Some(Ok(line)) => pending.push_back(Ok(line)),
                Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                    pending.push_back(Err(LinesCodecError::MaxLineLengthExceeded));
                }
                Some(Err(_)) | None => return None,
            },
        }
    }
}

async fn send<W>(
    out: &mut FramedWrite<W, LinesCodec>,
    message: &impl serde::Serialize,
) -> anyhow::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    out.send(serde_json::to_string(message)?).await?;
    Ok(())
}

/// Carries out one request.
/// A run-time tab's `[[tab]]` table (as JSON), checked: the tab, or the config's messages.
/// `onionhost tabs add` and the live view's form both come this way.
pub(crate) fn checked(
    check: &Check,
    tab: serde_json::Map<String, serde_json::Value>,
) -> Result<TabConfig, Vec<String>> {
    match serde_json::from_value::<toml::Table>(serde_json::Value::Object(tab)) {
        Ok(table) => check(table),
        Err(err) => Err(vec![format!("not a [[tab]] table: {err}")]),
    }
}

async fn answer(request: Request, handle: &Handle, check: &Check) -> Response {
    let tabs = handle.tabs();
    match request {
        Request::List {} => Response {
            ok: true,
            tabs: Some(tabs.snapshot().iter().map(protocol::tab_json).collect()),
            ..Response::default()
        },
        Request::Show { name } => match tabs.get(&name) {
            Some(status) => Response {
                key: status.client_key.as_ref().map(|k| k.expose().to_owned()),
                ..Response::with_tab(&status)
            },
            None => Response::error(format!("no tab is named {name:?}")),
        },
        Request::Add { tab, wait } => {
            let tab = match checked(check, tab) {
                Ok(tab) => tab,
                Err(errors) => return Response::error(errors.join("\n")),
            };
            let name = tab.name.clone();
            if let Err(err) = handle.add(tab).await {
                return Response::error(err.to_string());
            }
            let done = |s: &TabStatus| {
                !wait
                    || s.state == State::Serving
                    || s.state.is_ended()
                    || (s.state == State::Starting && s.address.is_some())
            };
            let status = wait_for(handle, &name, done).await;
            if status.state == State::Failed {
                Response {
                    error: Some(format!(
                        "tab {name:?} failed: {}",
                        status.why.as_deref().unwrap_or("")
                    )),
                    ..Response::with_tab(&status)
                }
                .not_ok()
            } else {
                Response::with_tab(&status)
            }
        }
        Request::Stop { name, wait } => {
            if let Err(err) = handle.stop(&name, "asked with `onionhost tabs stop`").await {
                return Response::error(err.to_string());
            }
            let status = wait_for(handle, &name, |s| !wait || s.state.is_ended()).await;
            Response::with_tab(&status)
        }
    }
}

impl Response {
    fn not_ok(self) -> Self {
        Self { ok: false, ..self }
    }
}

/// Waits until tab `name`'s status satisfies `done` (or it is forgotten) and returns it.
async fn wait_for(handle: &Handle, name: &str, done: impl Fn(&TabStatus) -> bool) -> TabStatus {
    let tabs = handle.tabs();
    let mut changes = tabs.changes();
    loop {
        let status = tabs.get(name);
        match status {
            Some(status) if done(&status) => return status,
            Some(status) => {
                if changes.changed().await.is_err() {
                    return status;
                }
            }
            None => {
                // Forgotten: only if 32 tabs ended since, and then it has ended too.
                return TabStatus {
                    name: name.to_owned(),
                    mode: String::new(),
                    state: State::Stopped,
                    why: None,
                    address: None,
                    private: false,
                    added: true,
                    present: None,
                    visitors: 0,
                    transfers: Vec::new(),
                    client_key: None,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_folder_must_be_ours_and_private() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("onionhost");
        private_dir(&dir).unwrap();
        let meta = std::fs::metadata(&dir).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700);
        private_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = private_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("with mode 755"), "{err}");
        let file = base.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(private_dir(&file).is_err());
        let link = base.path().join("link");
        std::os::unix::fs::symlink(base.path(), &link).unwrap();
        assert!(private_dir(&link).is_err());
    }
}
