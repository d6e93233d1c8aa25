//! The WebSocket protocol: the JSON a page sends and the JSON it receives (see the README).

use serde::{Deserialize, Serialize};

/// A request from a page. Unknown types and unknown fields are refused, so a request cannot
/// smuggle in a sender name or anything else the server would have to ignore.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum ClientRequest {
    /// Enter the room. `name` is the name wanted (a random one if absent or refused);
    /// `resume` is the token from an earlier `welcome`, to take the name back after a
    /// reconnect while the server still holds the old connection.
    Join {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        resume: Option<String>,
    },
    /// Say something to everyone.
    Send { text: String },
    /// Change one's own name.
    Rename { name: String },
    /// Leave the room (closing the connection does the same). A struct variant, so that
    /// unknown fields are refused here too (serde ignores them on unit variants).
    Leave {},
}

/// What the server sends. Room events (`joined`, `left`, `renamed`, `message`) go to every
/// member in the same order; `welcome` and `error` only to the connection concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ServerMessage {
    /// The join succeeded: who you are, who is here (you included), and the room's limits.
    Welcome {
        you: String,
        resume: String,
        members: Vec<String>,
        title: String,
        max_message_bytes: usize,
    },
    /// Someone entered the room.
    Joined { name: String },
    /// Someone left the room.
    Left { name: String },
    /// Someone changed their name.
    Renamed { from: String, to: String },
    /// Someone said something.
    Message { from: String, text: String },
    /// A request of yours was refused; the room carries on.
    Error { code: String, message: String },
}

impl ServerMessage {
    /// The message as a JSON text frame.
    pub(crate) fn to_json(&self) -> String {
        // Serialising a value made only of strings, numbers and lists cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// Parses a request; the error is a sentence for the sender only (it may quote their input).
pub(crate) fn parse_request(text: &str) -> Result<ClientRequest, String> {
    serde_json::from_str(text).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!(
            parse_request(r#"{"type":"join"}"#).unwrap(),
            ClientRequest::Join {
                name: None,
                resume: None
            }
        );
        assert_eq!(
            parse_request(r#"{"type":"join","name":"ann","resume":"abc"}"#).unwrap(),
            ClientRequest::Join {
                name: Some("ann".into()),
                resume: Some("abc".into())
            }
        );
        assert_eq!(
            parse_request(r#"{"type":"send","text":"hi"}"#).unwrap(),
            ClientRequest::Send { text: "hi".into() }
        );
        assert_eq!(
            parse_request(r#"{"type":"rename","name":"bo"}"#).unwrap(),
            ClientRequest::Rename { name: "bo".into() }
        );
        assert_eq!(
            parse_request(r#"{"type":"leave"}"#).unwrap(),
            ClientRequest::Leave {}
        );
    }

    #[test]
    fn a_request_cannot_carry_a_sender_or_a_victim() {
        // Sending as someone else, or announcing their departure, is not expressible.
        for bad in [
            r#"{"type":"send","text":"hi","from":"bob"}"#,
            r#"{"type":"leave","name":"bob"}"#,
            r#"{"type":"rename","name":"x","from":"bob"}"#,
            r#"{"type":"left","name":"bob"}"#,
            r#"{"type":"message","from":"bob","text":"hi"}"#,
        ] {
            assert!(parse_request(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn malformed_requests_are_refused() {
        for bad in [
            "",
            "null",
            "[]",
            "{}",
            r#"{"type":"send"}"#,
            r#"{"type":"send","text":5}"#,
        ] {
            assert!(parse_request(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn server_messages_have_a_type_tag() {
        let json = ServerMessage::Renamed {
            from: "a".into(),
            to: "b".into(),
        }
        .to_json();
        assert_eq!(json, r#"{"type":"renamed","from":"a","to":"b"}"#);
    }
}
