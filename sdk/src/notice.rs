//! Notices to a URL of the user's (a webhook): a mode asks, the host sends.
//!
//! A mode never opens a connection of its own: it would not know whether the tab is served
//! over Tor, and a connection it opened could leave over the open internet. So the host sends
//! a notice for it, through the tab's own network path: the host's Tor client (`.onion` URLs
//! included), or, with `--local-only`, loopback only. A mode calls
//! [`TabContext::check_notice_url`](crate::TabContext::check_notice_url) when it is built (a URL
//! the host cannot honour fails the tab at start, never later) and
//! [`TabContext::post_notice`](crate::TabContext::post_notice) when something happened.
//!
//! A notice is a short sentence the mode wrote (`"2 files and a message submitted"`), sent as
//! the body of an HTTP `POST` (`text/plain`). It must never carry what a visitor sent: names,
//! sizes, contents. Sending never waits and never fails the caller: the host sends in the
//! background with a short timeout, keeps at most a few notices in flight (later ones are
//! dropped and counted on the console), and a failure is one console line.
//!
//! Plugins do not get notices yet (the plugin ABI has no callback for them): in a plugin,
//! [`check_notice_url`](crate::TabContext::check_notice_url) answers
//! [`NoticeError::Unsupported`], so a plugin's tab configured with a URL fails at start with a
//! clear error.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// The longest URL accepted, in bytes.
const MAX_URL_LEN: usize = 2048;

/// A URL notices can be sent to: `http://host[:port][/path][?query]`, checked when the config
/// is read. Onion services need no TLS (Tor encrypts end to end), so plain `http` is what
/// `.onion` URLs use; `https` is refused until the host can verify certificates.
#[derive(Clone, PartialEq, Eq)]
pub struct NoticeUrl {
    text: String,
    host: String,
    port: u16,
    path: String,
}

impl NoticeUrl {
    /// The host name or address (`xyz.onion`, `example.org`, `127.0.0.1`; IPv6 without
    /// brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (80 unless the URL says otherwise).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path and query, at least `/`.
    pub fn path_and_query(&self) -> &str {
        &self.path
    }

    /// The `Host` header's value: the authority as the URL gives it.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Whether the host is this machine: `localhost`, `127.0.0.0/8` or `::1`.
    pub fn is_loopback(&self) -> bool {
        let host = self.host.to_ascii_lowercase();
        host == "localhost"
            || host.ends_with(".localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// Why a string is not a [`NoticeUrl`]; the message says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadNoticeUrl(String);

impl FromStr for NoticeUrl {
    type Err = BadNoticeUrl;

    fn from_str(text: &str) -> Result<Self, BadNoticeUrl> {
        let bad = |why: &str| BadNoticeUrl(format!("{why}, e.g. \"http://xyz...onion/hook\""));
        if text.len() > MAX_URL_LEN {
            return Err(bad(&format!(
                "is longer than {MAX_URL_LEN} bytes: give a shorter URL"
            )));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("must not contain spaces or control characters"));
        }
        let uri: http::Uri = text
            .parse()
            .map_err(|err| bad(&format!("is not a URL ({err})")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(bad(
                    "uses https, which onionhost cannot send yet: use an onion service's \
                     http:// URL (Tor encrypts it end to end)",
                ));
            }
            _ => return Err(bad("must start with http://")),
        }
        let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad(
                "must not carry a user name or password (user@host): put a secret in the path",
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        let path = uri
            .path_and_query()
            .map_or("/", |path| path.as_str())
            .to_owned();
        Ok(Self {
            text: text.to_owned(),
            host,
            port: authority.port_u16().unwrap_or(80),
            path: if path.is_empty() {
                "/".to_owned()
            } else {
                path
            },
        })
    }
}

impl<'de> Deserialize<'de> for NoticeUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// As the text the user wrote (the one-tab commands pass their section as TOML).
impl serde::Serialize for NoticeUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// The URL as the user wrote it. It is the user's own config, fine on their console; the
/// host never writes it to the log.
impl fmt::Display for NoticeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for NoticeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A URL may carry a secret token in its path: debug output shows only its host.
        f.debug_struct("NoticeUrl")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// Why the host cannot send notices to a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    /// The host gives this tab no way to send notices (a plugin's tab, for now).
    #[error("this host cannot send notices for this tab (plugins cannot send them yet)")]
    Unsupported,
    /// The host could send notices, but not to this URL (e.g. a URL on the internet with
    /// `--local-only`); the message says why.
    #[error("{0}")]
    Refused(String),
}

/// The host's side: what sends notices for a tab. A mode never implements it; tests can (see
/// [`crate::testing::TestTab::notices`]).
pub trait Notifier: Send + Sync + 'static {
    /// Whether this host can send notices to `url`, checked when the tab is built.
    fn check(&self, url: &NoticeUrl) -> Result<(), NoticeError>;

    /// Sends `text` to `url` in the background. Never waits and never fails the caller.
    fn post(&self, url: &NoticeUrl, text: &str);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn onion_and_loopback_urls_parse() {
        let url: NoticeUrl = "http://abcdef.onion/hook?t=1".parse().unwrap();
        assert_eq!(
            (url.host(), url.port(), url.path_and_query()),
            ("abcdef.onion", 80, "/hook?t=1")
        );
        assert_eq!(url.authority(), "abcdef.onion");
        assert!(!url.is_loopback());
        let url: NoticeUrl = "http://127.0.0.1:8080".parse().unwrap();
        assert_eq!((url.port(), url.path_and_query()), (8080, "/"));
        assert_eq!(url.authority(), "127.0.0.1:8080");
        assert!(url.is_loopback());
        let url: NoticeUrl = "http://[::1]:9/x".parse().unwrap();
        assert_eq!((url.host(), url.authority()), ("::1", "[::1]:9".to_owned()));
        assert!(url.is_loopback());
        assert!(
            "http://localhost/"
                .parse::<NoticeUrl>()
                .unwrap()
                .is_loopback()
        );
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("https://example.org/", "https"),
            ("ftp://example.org/", "http://"),
            ("example.org/hook", "http://"),
            ("http://user:pw@example.org/", "password"),
            ("http:///path", "URL"),
            ("http://exa mple.org/", "spaces"),
            ("", "URL"),
        ] {
            let err = url.parse::<NoticeUrl>().unwrap_err().to_string();
            assert!(err.contains(why), "{url:?}: {err}");
        }
        let long = format!("http://example.org/{}", "a".repeat(MAX_URL_LEN));
        assert!(long.parse::<NoticeUrl>().is_err());
    }

    #[test]
    fn debug_shows_no_path() {
        let url: NoticeUrl = "http://example.org/secret-token".parse().unwrap();
        assert!(!format!("{url:?}").contains("secret"));
        assert_eq!(url.to_string(), "http://example.org/secret-token");
    }
}
