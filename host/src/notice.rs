//! The host's side of the sdk's notices (`onionhost_sdk::notice`): a tab's webhook POSTs, sent
//! through the host's transport, so that a notice leaves the way the tab is served: through
//! Tor for onion tabs, and never over the open internet with `--local-only`.
//!
//! Each notice is one HTTP/1.1 `POST` on a fresh connection (a Tor stream for onion tabs; a
//! loopback connection for a loopback URL), bounded by [`TIMEOUT`]. Sending never delays the
//! request that asked for it: it runs in a task of its own, at most [`MAX_IN_FLIGHT`] per tab;
//! a notice asked for while that many are on their way is dropped, and the console counts
//! them. A failure is one console line. The URL is the user's own config: it appears on the
//! console (standard output), never in the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use onionhost_sdk::notice::{NoticeError, NoticeUrl, Notifier};
use tokio::sync::Semaphore;

use crate::console::Console;
use crate::transport::{Io, Transport};

/// How long one notice may take, connection included. Reaching an onion service the first
/// time (its descriptor, an introduction, a rendezvous) takes seconds, sometimes tens of them.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);

/// Notices of one tab on their way at once, at most.
pub(crate) const MAX_IN_FLIGHT: usize = 4;

/// Sends one tab's notices.
pub(crate) struct HostNotifier<C> {
    tab: Arc<str>,
    connector: Arc<C>,
    console: Console,
    in_flight: Arc<Semaphore>,
    dropped: AtomicU64,
}

/// How a notice's connection is made: the host's transport, or a test's fake.
pub(crate) trait Connect: Send + Sync + 'static {
    /// Whether notices to `url` can be sent this way (checked when the tab starts).
    fn check(&self, url: &NoticeUrl) -> Result<(), String>;

    /// A connection to `url`'s host and port.
    fn connect<'a>(
        &'a self,
        url: &'a NoticeUrl,
    ) -> impl Future<Output = anyhow::Result<Box<dyn Io>>> + Send + 'a;
}

impl Connect for Transport {
    fn check(&self, url: &NoticeUrl) -> Result<(), String> {
        self.check_notice_url(url)
    }

    async fn connect(&self, url: &NoticeUrl) -> anyhow::Result<Box<dyn Io>> {
        self.connect_notice(url).await
    }
}

impl<C: Connect> HostNotifier<C> {
    /// The notifier of the tab `tab`.
    pub(crate) fn new(tab: &str, connector: Arc<C>, console: Console) -> Self {
        Self {
            tab: tab.into(),
            connector,
            console,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            dropped: AtomicU64::new(0),
        }
    }
}

impl<C: Connect> Notifier for HostNotifier<C> {
    fn check(&self, url: &NoticeUrl) -> Result<(), NoticeError> {
        self.connector.check(url).map_err(NoticeError::Refused)
    }

    fn post(&self, url: &NoticeUrl, text: &str) {
        let Ok(permit) = Arc::clone(&self.in_flight).try_acquire_owned() else {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            self.console.tab(
                &self.tab,
                &format!(
                    "webhook notice not sent: {MAX_IN_FLIGHT} are still on their way \
                     ({dropped} dropped so far)"
                ),
            );
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (tab, connector, console) = (
            Arc::clone(&self.tab),
            Arc::clone(&self.connector),
            self.console.clone(),
        );
        let (url, text) = (url.clone(), text.to_owned());
        runtime.spawn(async move {
            let _permit = permit;
            let sent = tokio::time::timeout(TIMEOUT, async {
                let io = connector.connect(&url).await?;
                send(io, &url, &text).await
            })
            .await;
            let failure = match sent {
                Ok(Ok(())) => return,
                Ok(Err(err)) => format!("{err:#}"),
                Err(_) => format!("no answer within {} s", TIMEOUT.as_secs()),
            };
            console.tab(&tab, &format!("webhook notice to {url} failed: {failure}"));
        });
    }
}

/// POSTs `text` to `url` on `io`; an answer other than 2xx is an error.
pub(crate) async fn send(io: Box<dyn Io>, url: &NoticeUrl, text: &str) -> anyhow::Result<()> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .context("HTTP handshake")?;
    // No User-Agent: it would only tell the receiver which software sent the notice.
    let request = hyper::Request::post(url.path_and_query())
        .header(hyper::header::HOST, url.authority())
        .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(text.to_owned())))
        .context("build the request")?;
    let answer = async {
        let response = sender.send_request(request).await.context("send")?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(anyhow!("the server answered {status}"))
        }
    };
    tokio::select! {
        result = answer => result,
        ended = connection => match ended {
            Ok(()) => Err(anyhow!("the connection closed before an answer")),
            Err(err) => Err(anyhow::Error::new(err).context("connection")),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use http_body_util::BodyExt as _;
    use hyper::service::service_fn;

    use super::*;

    /// Received by the fake server: method, path, headers, body.
    type Seen = Arc<Mutex<Vec<(String, String, hyper::HeaderMap, String)>>>;

    /// A connector whose every connection is served in memory by a tiny HTTP server that
    /// answers `status`, or that refuses to connect, or never answers.
    struct Fake {
        seen: Seen,
        status: u16,
        refuse: bool,
        hang: bool,
        connections: AtomicU64,
    }

    impl Fake {
        fn new(status: u16) -> Self {
            Self {
                seen: Seen::default(),
                status,
                refuse: false,
                hang: false,
                connections: AtomicU64::new(0),
            }
        }
    }

    impl Connect for Fake {
        fn check(&self, url: &NoticeUrl) -> Result<(), String> {
            if url.host() == "refused.example" {
                Err("not that one".into())
            } else {
                Ok(())
            }
        }

        async fn connect(&self, _url: &NoticeUrl) -> anyhow::Result<Box<dyn Io>> {
            self.connections.fetch_add(1, Ordering::Relaxed);
            if self.refuse {
                return Err(anyhow!("connection refused"));
            }
            let (ours, theirs) = tokio::io::duplex(4096);
            if self.hang {
                // Keeps the other end open and silent.
                tokio::spawn(async move {
                    let _theirs = theirs;
                    std::future::pending::<()>().await;
                });
                return Ok(Box::new(ours));
            }
            let (seen, status) = (Arc::clone(&self.seen), self.status);
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let seen = Arc::clone(&seen);
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        seen.lock().unwrap().push((
                            parts.method.to_string(),
                            parts.uri.to_string(),
                            parts.headers,
                            String::from_utf8(body.to_vec()).unwrap(),
                        ));
                        let mut response = hyper::Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(theirs), service)
                    .await;
            });
            Ok(Box::new(ours))
        }
    }

    fn url(text: &str) -> NoticeUrl {
        text.parse().unwrap()
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_notice_is_one_post_with_the_text_and_no_user_agent() {
        let fake = Arc::new(Fake::new(200));
        let console = Console::default();
        let notifier = HostNotifier::new("tips", Arc::clone(&fake), console.clone());
        notifier.post(&url("http://abc.onion:8080/hook?k=1"), "1 file submitted");
        until("the notice arrives", || {
            !fake.seen.lock().unwrap().is_empty()
        })
        .await;
        let seen = fake.seen.lock().unwrap().clone();
        let (method, path, headers, body) = &seen[0];
        assert_eq!((method.as_str(), path.as_str()), ("POST", "/hook?k=1"));
        assert_eq!(headers["host"], "abc.onion:8080");
        assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
        assert!(!headers.contains_key("user-agent"));
        assert_eq!(body, "1 file submitted");
        // Success says nothing.
        until("the task ends", || {
            notifier.in_flight.available_permits() == MAX_IN_FLIGHT
        })
        .await;
        assert_eq!(console.lines(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_failure_is_one_console_line() {
        for (fake, expected) in [
            (Fake::new(500), "the server answered 500"),
            (
                Fake {
                    refuse: true,
                    ..Fake::new(200)
                },
                "connection refused",
            ),
        ] {
            let console = Console::default();
            let notifier = HostNotifier::new("tips", Arc::new(fake), console.clone());
            notifier.post(&url("http://abc.onion/"), "a message submitted");
            until("the failure is shown", || !console.lines().is_empty()).await;
            let lines = console.lines();
            assert_eq!(lines.len(), 1, "{lines:?}");
            assert!(
                lines[0].starts_with("[tips] webhook notice to http://abc.onion/ failed: "),
                "{lines:?}"
            );
            assert!(lines[0].contains(expected), "{lines:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_times_out_and_notices_beyond_the_bound_are_dropped() {
        let fake = Arc::new(Fake {
            hang: true,
            ..Fake::new(200)
        });
        let console = Console::default();
        let notifier = HostNotifier::new("tips", Arc::clone(&fake), console.clone());
        for _ in 0..MAX_IN_FLIGHT + 2 {
            notifier.post(&url("http://abc.onion/"), "1 file submitted");
        }
        // The bound holds: two dropped, counted; the others are waiting.
        let lines = console.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[1].contains("(2 dropped so far)"), "{lines:?}");
        tokio::time::sleep(TIMEOUT + Duration::from_secs(1)).await;
        until("the timeouts are shown", || {
            console.lines().len() == 2 + MAX_IN_FLIGHT
        })
        .await;
        assert!(console.lines()[2].contains("no answer within 60 s"));
        assert_eq!(
            fake.connections.load(Ordering::Relaxed),
            MAX_IN_FLIGHT as u64
        );
        // Room again.
        assert_eq!(notifier.in_flight.available_permits(), MAX_IN_FLIGHT);
    }

    #[test]
    fn local_only_sends_to_loopback_urls_only_never_over_the_internet() {
        for ok in ["http://127.0.0.1:9/", "http://localhost/x", "http://[::1]/"] {
            assert_eq!(Transport::Local.check_notice_url(&url(ok)), Ok(()), "{ok}");
        }
        for refused in [
            "http://abc.onion/",
            "http://example.org/",
            "http://10.0.0.1/",
        ] {
            let err = Transport::Local
                .check_notice_url(&url(refused))
                .unwrap_err();
            assert!(err.contains("--local-only"), "{refused}: {err}");
        }
    }

    #[tokio::test]
    async fn a_loopback_url_is_reached_directly() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = tokio::spawn(async move { listener.accept().await.map(drop) });
        let io = Transport::Local
            .connect_notice(&url(&format!("http://localhost:{port}/")))
            .await;
        assert!(io.is_ok());
        accepted.await.unwrap().unwrap();
        assert!(
            Transport::Local
                .connect_notice(&url("http://example.org/"))
                .await
                .is_err()
        );
    }

    #[test]
    fn the_connector_decides_which_urls_can_be_used() {
        let notifier = HostNotifier::new("t", Arc::new(Fake::new(200)), Console::default());
        assert!(notifier.check(&url("http://abc.onion/")).is_ok());
        assert_eq!(
            notifier.check(&url("http://refused.example/")),
            Err(NoticeError::Refused("not that one".into()))
        );
    }
}
