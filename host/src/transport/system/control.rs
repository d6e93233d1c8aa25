//! One control connection to the system's tor: connect (port or socket), authenticate
//! (SAFECOOKIE, COOKIE, HASHEDPASSWORD, NULL, in that order of preference), send commands and
//! receive their replies in order, with asynchronous events on a channel of their own.
//!
//! A reader task owns the connection's read half: each reply goes to the oldest command
//! waiting for one (tor answers in order), each event (650) to the event channel. When the
//! connection ends or tor sends something that is not the protocol, the connection is *lost*:
//! every command waiting and every later one fails, and [`Control::lost`] fires, so the
//! transport can fail the tabs it published. Command lines may hold keys and passwords: they
//! are never logged, and errors name only the command's verb.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context as _, anyhow, bail};
use hmac::{Hmac, Mac as _};
use rand::TryRngCore as _;
use sha2::Sha256;
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
};
use tokio::sync::{broadcast, oneshot};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use super::reply::{self, MAX_LINE, Reply, ReplyParser};
use crate::config::{ControlAddr, ControlPassword};

/// The key of the HMAC tor sends to prove it knows the cookie (control-spec §3.24).
const SERVER_HASH_KEY: &[u8] = b"Tor safe cookie authentication server-to-controller hash";
/// The key of the HMAC the controller sends to prove it knows the cookie.
const CLIENT_HASH_KEY: &[u8] = b"Tor safe cookie authentication controller-to-server hash";
/// A tor cookie is 32 bytes.
const COOKIE_LEN: usize = 32;
/// The environment variable that holds the control password when the config does not.
pub(crate) const PASSWORD_VAR: &str = "ONIONHOST_TOR_CONTROL_PASSWORD";
/// Events kept for slow subscribers.
const EVENT_QUEUE: usize = 256;

type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// A control connection; cheap to clone, every clone the same connection.
#[derive(Clone)]
pub(crate) struct Control {
    inner: Arc<Inner>,
}

struct Inner {
    /// The write half; held while a command is queued and written, so that the order of the
    /// waiting replies is the order of the commands.
    writer: tokio::sync::Mutex<Writer>,
    waiting: Mutex<VecDeque<oneshot::Sender<Reply>>>,
    events: broadcast::Sender<Arc<Reply>>,
    lost: CancellationToken,
    why_lost: OnceLock<String>,
}

impl Control {
    /// Connects to `addr` (not yet authenticated).
    pub(crate) async fn connect(addr: &ControlAddr) -> anyhow::Result<Self> {
        match addr {
            ControlAddr::Tcp(socket) => {
                let stream = tokio::net::TcpStream::connect(socket)
                    .await
                    .with_context(|| format!("cannot connect to tor's {addr}"))?;
                let _ = stream.set_nodelay(true);
                Ok(Self::over(stream))
            }
            ControlAddr::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .with_context(|| format!("cannot connect to tor's {addr}"))?;
                Ok(Self::over(stream))
            }
        }
    }

    /// A connection over any byte stream (a socket, or one end of a test's duplex pipe).
    pub(crate) fn over(stream: impl AsyncRead + AsyncWrite + Send + 'static) -> Self {
        let (read, write) = tokio::io::split(stream);
        let (events, _) = broadcast::channel(EVENT_QUEUE);
        let inner = Arc::new(Inner {
            writer: tokio::sync::Mutex::new(Box::new(write)),
            waiting: Mutex::new(VecDeque::new()),
            events,
            lost: CancellationToken::new(),
            why_lost: OnceLock::new(),
        });
        tokio::spawn(read_replies(BufReader::new(read), Arc::clone(&inner)));
        Self { inner }
    }

    /// Sends `line` (without CRLF) and returns tor's reply, whatever its code. `line` is
    /// never logged nor put in an error: it may hold a key or a password.
    pub(crate) async fn send(&self, line: &str) -> anyhow::Result<Reply> {
        let verb = line.split(' ').next().unwrap_or_default().to_owned();
        if line.contains(['\r', '\n']) {
            bail!("a {verb} command cannot hold a line break");
        }
        let (sender, receiver) = oneshot::channel();
        {
            let mut writer = self.inner.writer.lock().await;
            if self.inner.lost.is_cancelled() {
                return Err(self.lost_error());
            }
            lock(&self.inner.waiting).push_back(sender);
            let mut bytes = Zeroizing::new(Vec::with_capacity(line.len() + 2));
            bytes.extend_from_slice(line.as_bytes());
            bytes.extend_from_slice(b"\r\n");
            let written = async {
                writer.write_all(&bytes).await?;
                writer.flush().await
            }
            .await;
            if let Err(err) = written {
                self.inner.lose(format!("writing failed: {err}"));
                return Err(self.lost_error());
            }
        }
        tracing::debug!(command = %verb, "sent to tor's control port");
        receiver.await.map_err(|_| self.lost_error())
    }

    /// Sends `line` and returns its reply if tor accepted it (2xx), else an error with tor's
    /// message.
    pub(crate) async fn command(&self, line: &str) -> anyhow::Result<Reply> {
        let reply = self.send(line).await?;
        if !reply.is_ok() {
            let verb = line.split(' ').next().unwrap_or_default();
            bail!("tor refused {verb}: {reply}");
        }
        Ok(reply)
    }

    /// `GETINFO key`: its value.
    pub(crate) async fn getinfo(&self, key: &str) -> anyhow::Result<String> {
        let reply = self.command(&format!("GETINFO {key}")).await?;
        reply
            .value(key)
            .ok_or_else(|| anyhow!("tor's answer to GETINFO {key} has no value"))
    }

    /// The asynchronous events from now on (those asked for with SETEVENTS).
    pub(crate) fn events(&self) -> broadcast::Receiver<Arc<Reply>> {
        self.inner.events.subscribe()
    }

    /// Fires when the connection is lost.
    pub(crate) fn lost(&self) -> CancellationToken {
        self.inner.lost.clone()
    }

    /// Why the connection was lost (once it has been).
    pub(crate) fn why_lost(&self) -> String {
        self.inner
            .why_lost
            .get()
            .cloned()
            .unwrap_or_else(|| "it is open".to_owned())
    }

    fn lost_error(&self) -> anyhow::Error {
        anyhow!(
            "the control connection to the system's tor is lost: {}",
            self.why_lost()
        )
    }

    /// Authenticates with the best method tor offers: SAFECOOKIE, COOKIE, HASHEDPASSWORD
    /// (`password`, else the [`PASSWORD_VAR`] environment variable), NULL. Returns the method
    /// used and tor's version.
    pub(crate) async fn authenticate(
        &self,
        password: Option<&ControlPassword>,
    ) -> anyhow::Result<(&'static str, String)> {
        let info = self.command("PROTOCOLINFO 1").await?;
        let info = ProtocolInfo::read(&info)?;
        let from_env = || {
            std::env::var(PASSWORD_VAR)
                .ok()
                .filter(|p| !p.is_empty())
                .map(ControlPassword::new)
        };
        let password = password.cloned().or_else(from_env);
        let method = info.choose(password.is_some())?;
        let line = match method {
            Method::SafeCookie | Method::Cookie => {
                let path = info
                    .cookie_file
                    .as_deref()
                    .context("tor offers cookie authentication but names no cookie file")?;
                let cookie = read_cookie(Path::new(path))?;
                if method == Method::SafeCookie {
                    self.safe_cookie_line(&cookie).await?
                } else {
                    Zeroizing::new(format!("AUTHENTICATE {}", hex(&cookie)))
                }
            }
            Method::Password => {
                let password = password.context("no password")?;
                Zeroizing::new(format!("AUTHENTICATE {}", reply::quote(password.expose())))
            }
            Method::Null => Zeroizing::new("AUTHENTICATE".to_owned()),
        };
        let reply = self.send(&line).await?;
        if !reply.is_ok() {
            bail!(
                "tor refused the {} authentication: {reply}{}",
                method.name(),
                if method == Method::Password {
                    " (is the password right?)"
                } else {
                    ""
                }
            );
        }
        Ok((method.name(), info.version))
    }

    /// The AUTHENTICATE line of SAFECOOKIE: a challenge with a fresh nonce, tor's proof that
    /// it knows the cookie checked, then ours.
    async fn safe_cookie_line(&self, cookie: &[u8]) -> anyhow::Result<Zeroizing<String>> {
        let mut client_nonce = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut client_nonce)
            .context("the operating system's random number source failed")?;
        let reply = self
            .command(&format!("AUTHCHALLENGE SAFECOOKIE {}", hex(&client_nonce)))
            .await?;
        let args = reply::args(reply.first()).context("a malformed AUTHCHALLENGE reply")?;
        let decode = |key: &str| {
            reply::arg(&args, key)
                .and_then(|text| {
                    data_encoding::HEXUPPER_PERMISSIVE
                        .decode(text.as_bytes())
                        .ok()
                })
                .with_context(|| format!("tor's AUTHCHALLENGE reply has no {key}"))
        };
        let server_hash = decode("SERVERHASH")?;
        let server_nonce = decode("SERVERNONCE")?;
        let (expected, ours) = safe_cookie_hashes(cookie, &client_nonce, &server_nonce);
        expected.verify_slice(&server_hash).map_err(|_| {
            anyhow!(
                "tor's answer to the cookie challenge is wrong: whoever listens there does not \
                 know tor's cookie (another program on tor's port?)"
            )
        })?;
        Ok(Zeroizing::new(format!("AUTHENTICATE {}", hex(&ours))))
    }
}

impl Inner {
    /// Marks the connection lost (the first reason wins) and fails every waiting command.
    fn lose(&self, why: String) {
        let _ = self.why_lost.set(why);
        self.lost.cancel();
        lock(&self.waiting).clear();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reads replies until the connection ends, handing each to its command or to the events.
async fn read_replies(mut reader: impl tokio::io::AsyncBufRead + Unpin, inner: Arc<Inner>) {
    let mut parser = ReplyParser::default();
    let mut line = Vec::new();
    let why = loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 2)
            .read_until(b'\n', &mut line)
            .await;
        match read {
            Ok(0) => break "tor closed it".to_owned(),
            Ok(_) => {}
            Err(err) => break format!("reading failed: {err}"),
        }
        if line.last() != Some(&b'\n') {
            break "tor sent a line that is too long or cut off".to_owned();
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let reply = match parser.line(text) {
            Ok(Some(reply)) => reply,
            Ok(None) => continue,
            Err(err) => break err.to_string(),
        };
        if reply.code == 650 {
            let _ = inner.events.send(Arc::new(reply));
            continue;
        }
        let Some(waiting) = lock(&inner.waiting).pop_front() else {
            break "tor sent a reply to no command".to_owned();
        };
        let _ = waiting.send(reply);
    };
    tracing::debug!("the control connection to tor ended: {why}");
    inner.lose(why);
}

/// Authentication methods, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    SafeCookie,
    Cookie,
    Password,
    Null,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Self::SafeCookie => "SAFECOOKIE",
            Self::Cookie => "COOKIE",
            Self::Password => "HASHEDPASSWORD",
            Self::Null => "NULL",
        }
    }
}

/// What PROTOCOLINFO says.
#[derive(Debug, PartialEq, Eq)]
struct ProtocolInfo {
    methods: Vec<String>,
    cookie_file: Option<String>,
    version: String,
}

impl ProtocolInfo {
    fn read(reply: &Reply) -> anyhow::Result<Self> {
        let mut info = Self {
            methods: Vec::new(),
            cookie_file: None,
            version: "(unknown version)".to_owned(),
        };
        for line in &reply.lines {
            let args = reply::args(&line.text).context("a malformed PROTOCOLINFO reply")?;
            match args.first().map(|a| (a.key.as_deref(), a.value.as_str())) {
                Some((None, "AUTH")) => {
                    if let Some(methods) = reply::arg(&args, "METHODS") {
                        info.methods = methods.split(',').map(str::to_owned).collect();
                    }
                    info.cookie_file = reply::arg(&args, "COOKIEFILE").map(str::to_owned);
                }
                Some((None, "VERSION")) => {
                    if let Some(version) = reply::arg(&args, "Tor") {
                        version.clone_into(&mut info.version);
                    }
                }
                _ => {}
            }
        }
        Ok(info)
    }

    /// The best method offered that can be used.
    fn choose(&self, have_password: bool) -> anyhow::Result<Method> {
        let offers = |name: &str| self.methods.iter().any(|m| m == name);
        let cookie = self.cookie_file.is_some();
        if offers("SAFECOOKIE") && cookie {
            Ok(Method::SafeCookie)
        } else if offers("COOKIE") && cookie {
            Ok(Method::Cookie)
        } else if offers("HASHEDPASSWORD") && have_password {
            Ok(Method::Password)
        } else if offers("NULL") {
            Ok(Method::Null)
        } else if offers("HASHEDPASSWORD") {
            bail!(
                "tor's control port wants a password (HashedControlPassword): set \
                 `control_password` in [tor] or the {PASSWORD_VAR} environment variable"
            )
        } else {
            bail!(
                "tor's control port offers no authentication onionhost can use (it offers: {})",
                self.methods.join(", ")
            )
        }
    }
}

/// Reads tor's cookie file.
fn read_cookie(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let cookie = std::fs::read(path).map(Zeroizing::new).map_err(|err| {
        let hint = if err.kind() == std::io::ErrorKind::PermissionDenied {
            " (tor's cookie is readable by its group: on Debian, `sudo adduser $USER debian-tor` and log in again)"
        } else {
            ""
        };
        anyhow!(
            "cannot read tor's control cookie {}: {err}{hint}",
            path.display()
        )
    })?;
    if cookie.len() != COOKIE_LEN {
        bail!(
            "{} is not a tor control cookie ({} bytes, not {COOKIE_LEN})",
            path.display(),
            cookie.len()
        );
    }
    Ok(cookie)
}

/// The HMAC tor must send (to be verified) and the hash we send, for SAFECOOKIE.
fn safe_cookie_hashes(
    cookie: &[u8],
    client_nonce: &[u8],
    server_nonce: &[u8],
) -> (Hmac<Sha256>, Vec<u8>) {
    let mac = |key: &[u8]| {
        let mut mac = <Hmac<Sha256>>::new_from_slice(key).unwrap_or_else(|_| {
            // HMAC takes keys of any length.
            unreachable!("HMAC refused a key")
        });
        mac.update(cookie);
        mac.update(client_nonce);
        mac.update(server_nonce);
        mac
    };
    (
        mac(SERVER_HASH_KEY),
        mac(CLIENT_HASH_KEY).finalize().into_bytes().to_vec(),
    )
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, DuplexStream};

    use super::*;

    /// A fake tor on the other end of a pipe: reads our lines, writes what the test says.
    struct FakeTor {
        lines: tokio::io::Lines<BufReader<tokio::io::ReadHalf<DuplexStream>>>,
        write: tokio::io::WriteHalf<DuplexStream>,
    }

    impl FakeTor {
        fn new() -> (Control, Self) {
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            let (read, write) = tokio::io::split(theirs);
            (
                Control::over(ours),
                Self {
                    lines: BufReader::new(read).lines(),
                    write,
                },
            )
        }

        async fn expect(&mut self) -> String {
            self.lines.next_line().await.unwrap().unwrap()
        }

        async fn say(&mut self, text: &str) {
            self.write.write_all(text.as_bytes()).await.unwrap();
        }
    }

    #[tokio::test]
    async fn replies_go_to_their_commands_in_order_and_events_aside() {
        let (control, mut tor) = FakeTor::new();
        let mut events = control.events();
        let first = tokio::spawn({
            let control = control.clone();
            async move { control.getinfo("version").await }
        });
        assert_eq!(tor.expect().await, "GETINFO version");
        let second = tokio::spawn({
            let control = control.clone();
            async move { control.command("DEL_ONION abc").await }
        });
        assert_eq!(tor.expect().await, "DEL_ONION abc");
        tor.say("650 HS_DESC UPLOADED abc UNKNOWN x\r\n250-version=0.4.9.11\r\n250 OK\r\n552 Unknown onion service id\r\n")
            .await;
        assert_eq!(first.await.unwrap().unwrap(), "0.4.9.11");
        let err = second.await.unwrap().unwrap_err().to_string();
        assert_eq!(
            err, "tor refused DEL_ONION: 552 Unknown onion service id",
            "the error names the verb and tor's reason only"
        );
        assert!(
            events
                .recv()
                .await
                .unwrap()
                .first()
                .starts_with("HS_DESC UPLOADED abc")
        );
    }

    #[tokio::test]
    async fn a_closed_connection_fails_waiting_and_later_commands_and_fires_lost() {
        let (control, mut tor) = FakeTor::new();
        let waiting = tokio::spawn({
            let control = control.clone();
            async move { control.command("GETINFO version").await }
        });
        tor.expect().await;
        drop(tor);
        control.lost().cancelled().await;
        let err = waiting.await.unwrap().unwrap_err().to_string();
        assert!(err.contains("lost: tor closed it"), "{err}");
        let err = control.command("GETINFO version").await.unwrap_err();
        assert!(err.to_string().contains("lost"), "{err}");
    }

    #[tokio::test]
    async fn a_reply_to_no_command_is_a_lost_connection() {
        let (control, mut tor) = FakeTor::new();
        tor.say("250 OK\r\n").await;
        control.lost().cancelled().await;
        assert_eq!(control.why_lost(), "tor sent a reply to no command");
    }

    #[tokio::test]
    async fn a_line_break_in_a_command_is_refused_without_sending() {
        let (control, _tor) = FakeTor::new();
        let err = control
            .command("ADD_ONION x\r\nSIGNAL HALT")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("line break"), "{err}");
    }

    fn info(methods: &str, cookie: bool) -> ProtocolInfo {
        ProtocolInfo {
            methods: methods.split(',').map(str::to_owned).collect(),
            cookie_file: cookie.then(|| "/c".to_owned()),
            version: "x".to_owned(),
        }
    }

    #[test]
    fn the_best_method_is_chosen() {
        assert_eq!(
            info("COOKIE,SAFECOOKIE", true).choose(false).unwrap(),
            Method::SafeCookie
        );
        assert_eq!(info("COOKIE", true).choose(true).unwrap(), Method::Cookie);
        assert_eq!(
            info("HASHEDPASSWORD,SAFECOOKIE", false)
                .choose(true)
                .unwrap(),
            Method::Password
        );
        assert_eq!(info("NULL", false).choose(true).unwrap(), Method::Null);
        let err = info("HASHEDPASSWORD", false).choose(false).unwrap_err();
        assert!(err.to_string().contains(PASSWORD_VAR), "{err}");
        assert!(info("", false).choose(true).is_err());
    }

    #[test]
    fn protocolinfo_is_read() {
        let mut parser = ReplyParser::default();
        let mut reply = None;
        for line in [
            "250-PROTOCOLINFO 1",
            "250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE=\"/run/tor/control.authcookie\"",
            "250-VERSION Tor=\"0.4.9.11\"",
            "250 OK",
        ] {
            reply = parser.line(line).unwrap();
        }
        let info = ProtocolInfo::read(&reply.unwrap()).unwrap();
        assert_eq!(info.methods, ["COOKIE", "SAFECOOKIE"]);
        assert_eq!(
            info.cookie_file.as_deref(),
            Some("/run/tor/control.authcookie")
        );
        assert_eq!(info.version, "0.4.9.11");
    }

    /// The whole SAFECOOKIE exchange against a fake tor that checks our hash as tor does.
    #[tokio::test]
    async fn safe_cookie_authenticates_and_checks_tors_proof() {
        for honest in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let cookie_path = dir.path().join("cookie");
            let cookie = [7u8; 32];
            std::fs::write(&cookie_path, cookie).unwrap();
            let (control, mut tor) = FakeTor::new();
            let auth = tokio::spawn(async move { control.authenticate(None).await });
            assert_eq!(tor.expect().await, "PROTOCOLINFO 1");
            tor.say(&format!(
                "250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE={}\r\n250-VERSION Tor=\"0.4.9.11\"\r\n250 OK\r\n",
                reply::quote(cookie_path.to_str().unwrap())
            ))
            .await;
            let challenge = tor.expect().await;
            let nonce = challenge.strip_prefix("AUTHCHALLENGE SAFECOOKIE ").unwrap();
            let client_nonce = data_encoding::HEXLOWER.decode(nonce.as_bytes()).unwrap();
            assert_eq!(client_nonce.len(), 32);
            let server_nonce = [9u8; 32];
            let (server, client) = safe_cookie_hashes(&cookie, &client_nonce, &server_nonce);
            let server_hash = if honest {
                server.finalize().into_bytes().to_vec()
            } else {
                vec![0; 32]
            };
            tor.say(&format!(
                "250 AUTHCHALLENGE SERVERHASH={} SERVERNONCE={}\r\n",
                data_encoding::HEXUPPER.encode(&server_hash),
                data_encoding::HEXUPPER.encode(&server_nonce)
            ))
            .await;
            if honest {
                assert_eq!(tor.expect().await, format!("AUTHENTICATE {}", hex(&client)));
                tor.say("250 OK\r\n").await;
                let (method, version) = auth.await.unwrap().unwrap();
                assert_eq!((method, version.as_str()), ("SAFECOOKIE", "0.4.9.11"));
            } else {
                let err = auth.await.unwrap().unwrap_err().to_string();
                assert!(err.contains("does not know tor's cookie"), "{err}");
            }
        }
    }

    #[tokio::test]
    async fn a_password_is_sent_quoted_and_a_refusal_does_not_echo_it() {
        let (control, mut tor) = FakeTor::new();
        let auth = tokio::spawn(async move {
            let password = ControlPassword::new("se\"cret".to_owned());
            control.authenticate(Some(&password)).await
        });
        tor.expect().await;
        tor.say("250-PROTOCOLINFO 1\r\n250-AUTH METHODS=HASHEDPASSWORD\r\n250 OK\r\n")
            .await;
        assert_eq!(tor.expect().await, "AUTHENTICATE \"se\\\"cret\"");
        tor.say("515 Authentication failed: Password did not match HashedControlPassword value from configuration\r\n")
            .await;
        let err = auth.await.unwrap().unwrap_err().to_string();
        assert!(
            err.contains("515") && err.contains("password right"),
            "{err}"
        );
        assert!(!err.contains("se\"cret") && !err.contains("cret"), "{err}");
    }

    #[tokio::test]
    async fn cookie_and_null_authentication() {
        let dir = tempfile::tempdir().unwrap();
        let cookie_path = dir.path().join("cookie");
        std::fs::write(&cookie_path, [1u8; 32]).unwrap();
        let (control, mut tor) = FakeTor::new();
        let auth = tokio::spawn(async move { control.authenticate(None).await });
        tor.expect().await;
        tor.say(&format!(
            "250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE COOKIEFILE={}\r\n250 OK\r\n",
            reply::quote(cookie_path.to_str().unwrap())
        ))
        .await;
        assert_eq!(
            tor.expect().await,
            format!("AUTHENTICATE {}", "01".repeat(32))
        );
        tor.say("250 OK\r\n").await;
        assert_eq!(auth.await.unwrap().unwrap().0, "COOKIE");

        let (control, mut tor) = FakeTor::new();
        let auth = tokio::spawn(async move { control.authenticate(None).await });
        tor.expect().await;
        tor.say("250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250 OK\r\n")
            .await;
        assert_eq!(tor.expect().await, "AUTHENTICATE");
        tor.say("250 OK\r\n").await;
        assert_eq!(auth.await.unwrap().unwrap().0, "NULL");
    }

    #[test]
    fn a_cookie_of_the_wrong_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cookie");
        std::fs::write(&path, [1u8; 5]).unwrap();
        let err = read_cookie(&path).unwrap_err().to_string();
        assert!(err.contains("5 bytes"), "{err}");
    }
}
