//! The `[tab.chat]` config section: its keys, their defaults and the ranges they must fall in.

use std::time::Duration;

use onionhost_sdk::ConfigError;
use serde::Deserialize;

/// The chat mode's own config section, `[tab.chat]`. Every key has a default, so a chat tab
/// needs no section at all.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatConfig {
    /// The room's title, shown at the top of the page and in the browser's tab.
    pub title: String,
    /// How many people may be in the room at once (with or without JavaScript).
    pub max_members: usize,
    /// The largest message a member may send, in bytes of UTF-8.
    pub max_message_bytes: usize,
    /// How fast one connection may send messages and renames.
    pub rate_limit: RateLimitConfig,
    /// How often the server pings each live connection, in seconds, so that an idle
    /// connection over Tor stays open and a dead one is noticed.
    pub keepalive_seconds: u64,
    /// How long a member without JavaScript stays in the room after their page stopped
    /// loading, in seconds. Each message they send reloads the page, so this must cover a
    /// page load over Tor.
    pub nojs_leave_after_seconds: u64,
}

/// A token bucket per connection: `burst` actions at once, refilled at `messages_per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Sustained rate of messages (and renames) per connection.
    pub messages_per_minute: u32,
    /// How many may be sent in a quick burst before the sustained rate applies.
    pub burst: u32,
}

/// The longest title, in characters.
const MAX_TITLE_CHARS: usize = 100;
/// The most members a room may be configured for; beyond this one process is the wrong tool.
const MAX_MEMBERS: usize = 100_000;
/// The largest message size that may be configured (64 KiB).
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            title: "onionhost chat".to_owned(),
            max_members: 200,
            max_message_bytes: 4096,
            rate_limit: RateLimitConfig::default(),
            keepalive_seconds: 20,
            nojs_leave_after_seconds: 30,
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            messages_per_minute: 30,
            burst: 10,
        }
    }
}

impl onionhost_sdk::ModeConfig for ChatConfig {
    /// Checks every value against its range; the error names the key and the allowed range.
    fn validate(&self) -> Result<(), ConfigError> {
        let title_chars = self.title.chars().count();
        if self.title.trim().is_empty() || title_chars > MAX_TITLE_CHARS {
            return Err(ConfigError::at(
                "title",
                format!("must be 1 to {MAX_TITLE_CHARS} characters long, not {title_chars}"),
            ));
        }
        if self.title.chars().any(char::is_control) {
            return Err(ConfigError::at(
                "title",
                "must not contain control characters such as newlines or tabs",
            ));
        }
        check_range("max_members", self.max_members, 1, MAX_MEMBERS)?;
        check_range(
            "max_message_bytes",
            self.max_message_bytes,
            1,
            MAX_MESSAGE_BYTES,
        )?;
        check_range(
            "rate_limit.messages_per_minute",
            self.rate_limit.messages_per_minute,
            1,
            60_000,
        )?;
        check_range("rate_limit.burst", self.rate_limit.burst, 1, 10_000)?;
        check_range("keepalive_seconds", self.keepalive_seconds, 1, 300)?;
        check_range(
            "nojs_leave_after_seconds",
            self.nojs_leave_after_seconds,
            1,
            3600,
        )?;
        Ok(())
    }
}

impl ChatConfig {
    /// [`ChatConfig::keepalive_seconds`] as a duration.
    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(self.keepalive_seconds)
    }

    /// [`ChatConfig::nojs_leave_after_seconds`] as a duration.
    pub fn nojs_leave_after(&self) -> Duration {
        Duration::from_secs(self.nojs_leave_after_seconds)
    }

    /// The largest WebSocket message the server accepts: a `send` request whose text is
    /// [`ChatConfig::max_message_bytes`] long with every byte escaped in JSON (`\u00XX`, six
    /// bytes), plus room for the envelope. Anything larger cannot be a valid request.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_message_bytes * 6 + 1024
    }
}

fn check_range<T>(key: &str, value: T, min: T, max: T) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display,
{
    if value < min || value > max {
        return Err(ConfigError::at(
            key,
            format!("must be between {min} and {max}, not {value}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use onionhost_sdk::ModeConfig as _;

    use super::*;

    fn parse(toml: &str) -> Result<ChatConfig, ConfigError> {
        let value = toml::Value::Table(toml::from_str(toml).unwrap());
        onionhost_sdk::testing::parse_config::<crate::ChatMode>(value)
    }

    #[test]
    fn an_empty_section_gives_the_defaults() {
        assert_eq!(parse("").unwrap(), ChatConfig::default());
        ChatConfig::default().validate().unwrap();
    }

    #[test]
    fn every_key_can_be_set() {
        let config = parse(
            r#"
            title = "Room"
            max_members = 5
            max_message_bytes = 100
            keepalive_seconds = 3
            nojs_leave_after_seconds = 4
            [rate_limit]
            messages_per_minute = 7
            burst = 2
            "#,
        )
        .unwrap();
        assert_eq!(
            config,
            ChatConfig {
                title: "Room".into(),
                max_members: 5,
                max_message_bytes: 100,
                rate_limit: RateLimitConfig {
                    messages_per_minute: 7,
                    burst: 2
                },
                keepalive_seconds: 3,
                nojs_leave_after_seconds: 4,
            }
        );
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = parse("titel = \"x\"").unwrap_err();
        assert!(err.message.contains("titel"), "{err}");
        let err = parse("[rate_limit]\nper_minute = 3").unwrap_err();
        assert_eq!(err.key.first().map(String::as_str), Some("rate_limit"));
        assert!(err.message.contains("per_minute"), "{err}");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let err = parse("max_members = \"many\"").unwrap_err();
        assert_eq!(err.key, ["max_members"]);
    }

    #[test]
    fn out_of_range_values_name_the_key() {
        for (toml, key) in [
            ("max_members = 0", "max_members"),
            ("max_members = 100001", "max_members"),
            ("max_message_bytes = 0", "max_message_bytes"),
            ("max_message_bytes = 65537", "max_message_bytes"),
            ("keepalive_seconds = 0", "keepalive_seconds"),
            ("keepalive_seconds = 301", "keepalive_seconds"),
            ("nojs_leave_after_seconds = 0", "nojs_leave_after_seconds"),
            ("title = \"\"", "title"),
            ("title = \"  \"", "title"),
            ("title = \"a\\nb\"", "title"),
            (
                "[rate_limit]\nmessages_per_minute = 0",
                "rate_limit.messages_per_minute",
            ),
            ("[rate_limit]\nburst = 0", "rate_limit.burst"),
        ] {
            let err = parse(toml).unwrap_err();
            assert_eq!(err.key.join("."), key, "{toml}: {err}");
        }
        let long = format!("title = \"{}\"", "x".repeat(101));
        assert_eq!(parse(&long).unwrap_err().key, ["title"]);
        parse(&format!("title = \"{}\"", "x".repeat(100))).unwrap();
    }
}
