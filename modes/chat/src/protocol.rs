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
    /// The join succeeded: who you are, how many are here and the first of them (see
    /// [`crate::room::LISTED_MEMBERS`]), and the room's limits.
    Welcome {
        you: String,
        resume: String,
        present: usize,
        members: Vec<String>,
        title: String,
        max_message_bytes: usize,
    },
    /// Someone entered the room.
    Joined { name: String },
    /// Someone left the room.
    Left { name: String },
    /// Many came or went at once: the arrivals and departures of one tick in one event (see
    /// [`crate::room`]), the first of them named, then who is here now.
    Presence {
        joined: Vec<String>,
        left: Vec<String>,
        more: usize,
        present: usize,
        members: Vec<String>,
    },
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
    // serde also reads a tagged enum from an array (`["send", "hi"]`); the protocol is
    // objects only, so that there is one way to write each request.
    if !text.trim_start().starts_with('{') {
        return Err("a request is a JSON object with a \"type\"".to_owned());
    }
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
            // Found by the property tests: serde reads a tagged enum from an array too.
            r#"["send","hi"]"#,
            r#" ["join"]"#,
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

    mod properties {
        use proptest::prelude::*;
        use serde_json::{Value, json};

        use super::*;

        /// Text that a hostile page might send: any characters, with JSON's own syntax and
        /// escapes over-represented.
        fn wild_text() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                any::<char>().prop_map(String::from),
                prop::sample::select(vec![
                    "{", "}", "[", "]", "\"", ":", ",", "\\", "\\u0000", "\\ud800", "type", "join",
                    "send", "rename", "leave", "null", "1e999", " ",
                ])
                .prop_map(String::from),
            ];
            prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
        }

        /// Any JSON value, a few levels deep.
        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<String>().prop_map(Value::from),
                prop::sample::select(vec!["join", "send", "rename", "leave", "welcome"])
                    .prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                    prop::collection::btree_map(
                        prop::sample::select(vec!["type", "name", "text", "resume", "from"])
                            .prop_map(String::from),
                        inner,
                        0..4
                    )
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
                ]
            })
        }

        proptest! {
            /// Whatever a page sends, parsing answers (a request or a sentence) and never
            /// panics.
            #[test]
            fn parsing_never_panics(text in wild_text()) {
                let _ = parse_request(&text);
            }

            /// A request that parses names only the fields of its type: a JSON object whose
            /// keys are all known to that type, so nothing (a sender, a victim) rides along.
            #[test]
            fn parsed_requests_carry_only_their_own_fields(value in json_value()) {
                let Ok(request) = parse_request(&value.to_string()) else {
                    return Ok(());
                };
                let object = value.as_object().expect("only objects parse");
                let allowed: &[&str] = match request {
                    ClientRequest::Join { .. } => &["type", "name", "resume"],
                    ClientRequest::Send { .. } => &["type", "text"],
                    ClientRequest::Rename { .. } => &["type", "name"],
                    ClientRequest::Leave {} => &["type"],
                };
                prop_assert!(object.keys().all(|k| allowed.contains(&k.as_str())), "{value}");
            }

            /// Every field a page can fill comes through exactly, whatever it contains.
            #[test]
            fn valid_requests_keep_their_text(text in any::<String>(), other in any::<String>()) {
                let parse = |v: Value| parse_request(&v.to_string());
                prop_assert_eq!(
                    parse(json!({"type": "send", "text": text})),
                    Ok(ClientRequest::Send { text: text.clone() })
                );
                prop_assert_eq!(
                    parse(json!({"type": "rename", "name": text})),
                    Ok(ClientRequest::Rename { name: text.clone() })
                );
                prop_assert_eq!(
                    parse(json!({"type": "join", "name": text, "resume": other})),
                    Ok(ClientRequest::Join { name: Some(text), resume: Some(other) })
                );
            }

            /// What the server sends is one line of valid JSON with no raw control
            /// characters, and decodes to the same message.
            #[test]
            fn server_messages_encode_faithfully(from in any::<String>(), text in any::<String>()) {
                for message in [
                    ServerMessage::Message { from: from.clone(), text: text.clone() },
                    ServerMessage::Renamed { from: from.clone(), to: text.clone() },
                    ServerMessage::Error { code: from.clone(), message: text.clone() },
                ] {
                    let json = message.to_json();
                    prop_assert!(!json.chars().any(char::is_control), "{json:?}");
                    let back: ServerMessage = serde_json::from_str(&json).expect("valid JSON");
                    prop_assert_eq!(back, message);
                }
            }
        }
    }
}
