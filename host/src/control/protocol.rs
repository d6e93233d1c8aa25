//! The control socket's protocol: JSON lines, versioned. Each side writes one JSON object per
//! line; the host speaks first with its [`Hello`], then answers each request with one
//! response, in order.

use serde::{Deserialize, Serialize};

use crate::tabs::TabStatus;

/// The protocol's version, in the host's hello (`"onionhost": 1`). A change that an older
/// client would misread gets a new number.
pub(crate) const VERSION: u32 = 1;

/// The longest line either side accepts (a request holding a tab with many paths fits).
pub(crate) const MAX_LINE: usize = 256 * 1024;

/// What the host says first.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// The protocol's version, [`VERSION`].
    pub(crate) onionhost: u32,
    /// The host's program version.
    pub(crate) version: String,
    /// The host's process id.
    pub(crate) pid: u32,
}

/// A request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Request {
    /// Every tab: `{"ok":true,"tabs":[TabStatus...]}`.
    List {},
    /// One tab, with a private tab's client key: `{"ok":true,"tab":TabStatus,"key":"..."}`
    /// (no `key` for a public tab, or before the key is known).
    Show {
        /// The tab.
        name: String,
    },
    /// Start a tab: `tab` holds what a `[[tab]]` would, with absolute paths. With `wait`,
    /// the answer comes once it serves, waits for its start time, or has ended.
    Add {
        /// The `[[tab]]` table, as JSON.
        tab: serde_json::Map<String, serde_json::Value>,
        /// Answer once the tab serves or has failed.
        #[serde(default)]
        wait: bool,
    },
    /// Stop a tab gracefully. With `wait`, the answer comes once it has ended.
    Stop {
        /// The tab.
        name: String,
        /// Answer once it has ended.
        #[serde(default)]
        wait: bool,
    },
}

/// A response: `ok`, and either what was asked for or `error` (for a refused tab, every
/// problem, one per line of `error`; for a tab that failed to start, its `tab` too).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Response {
    /// Whether the request was carried out.
    pub(crate) ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// `list`: every tab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tabs: Option<Vec<TabJson>>,
    /// `show`, `add`, `stop`: the tab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tab: Option<TabJson>,
    /// `show`: a private tab's client key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key: Option<String>,
}

/// A tab's status as the protocol carries it (the serialized [`TabStatus`]).
pub(crate) type TabJson = serde_json::Map<String, serde_json::Value>;

impl Response {
    /// A refusal.
    pub(crate) fn error(message: impl Into<String>) -> Self {
        Self {
            error: Some(message.into()),
            ..Self::default()
        }
    }

    /// Success with one tab.
    pub(crate) fn with_tab(status: &TabStatus) -> Self {
        Self {
            ok: true,
            tab: Some(tab_json(status)),
            ..Self::default()
        }
    }
}

/// `status` as JSON (without its key, which is never serialized).
pub(crate) fn tab_json(status: &TabStatus) -> TabJson {
    match serde_json::to_value(status) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => TabJson::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn requests_read_as_documented() {
        let add: Request = serde_json::from_str(
            r#"{"request":"add","tab":{"name":"a","mode":"chat"},"wait":true}"#,
        )
        .unwrap();
        assert!(matches!(add, Request::Add { wait: true, .. }));
        let list: Request = serde_json::from_str(r#"{"request":"list"}"#).unwrap();
        assert!(matches!(list, Request::List {}));
        assert!(serde_json::from_str::<Request>(r#"{"request":"list","x":1}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"request":"reboot"}"#).is_err());
        let error = serde_json::to_string(&Response::error("no")).unwrap();
        assert_eq!(error, r#"{"ok":false,"error":"no"}"#);
    }
}
