//! The `[tab.chat]` config section: its keys, their defaults and the ranges they must fall in.

use std::time::Duration;

use onionhost_sdk::ConfigError;
use onionhost_sdk::rate::Rate;
use serde::{Deserialize, Serialize};

/// The chat mode's own config section, `[tab.chat]`. Every key has a default, so a chat tab
/// needs no section at all.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatConfig {
    /// The room's title, shown at the top of the page and in the browser's tab.
    pub title: String,
    /// How many people may be in the room at once (with or without JavaScript).
    pub max_members: usize,
    /// The largest message a member may send, in bytes of UTF-8.
    pub max_message_bytes: usize,
    /// How fast one visitor may act in the room (join, send, rename...), over all of their
    /// connections and sessions together.
    pub rate_limit: RateLimitConfig,
    /// How fast the room takes in newcomers, all visitors together: each join and its later
    /// departure are announced to everyone, so this bounds those announcements.
    pub join_limit: JoinLimitConfig,
    /// How often the server pings each live connection, in seconds, so that an idle
    /// connection over Tor stays open and a dead one is noticed.
    pub keepalive_seconds: u64,
    /// How long a member without JavaScript stays in the room after their page stopped
    /// loading, in seconds. Each message they send reloads the page, so this must cover a
    /// page load over Tor.
    pub nojs_leave_after_seconds: u64,
}

/// A rate limit per visitor (what the host tells apart: a connection, or a Tor circuit),
/// and per session without JavaScript: `burst` actions at once, then `messages_per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Sustained rate of messages (and renames, joins...) per visitor.
    pub messages_per_minute: u32,
    /// How many may be sent in a quick burst before the sustained rate applies.
    pub burst: u32,
}

/// One rate limit for the whole room's joins: `burst` at once, then `joins_per_minute`. A member taken back by a reconnecting page does not count (nobody
/// sees it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct JoinLimitConfig {
    /// Sustained rate of joins, all visitors together.
    pub joins_per_minute: u32,
    /// How many may join at once; when absent, `max_members` or `joins_per_minute`, whichever
    /// is larger, so that an empty room can fill at once.
    pub burst: Option<u32>,
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
            join_limit: JoinLimitConfig::default(),
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

impl Default for JoinLimitConfig {
    fn default() -> Self {
        Self {
            joins_per_minute: 60,
            burst: None,
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
        check_range(
            "join_limit.joins_per_minute",
            self.join_limit.joins_per_minute,
            1,
            60_000,
        )?;
        if let Some(burst) = self.join_limit.burst {
            check_range("join_limit.burst", burst, 1, 100_000)?;
        }
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

impl RateLimitConfig {
    /// This limit as the sdk's [`Rate`].
    pub fn rate(self) -> Rate {
        Rate::per_minute(self.messages_per_minute).with_burst(self.burst)
    }
}

impl ChatConfig {
    /// The room-wide join limit as the sdk's [`Rate`], with [`ChatConfig::join_burst`].
    pub fn join_rate(&self) -> Rate {
        Rate::per_minute(self.join_limit.joins_per_minute).with_burst(self.join_burst())
    }

    /// The room-wide join limit's burst: [`JoinLimitConfig::burst`], or the larger of
    /// `max_members` and `joins_per_minute`.
    pub fn join_burst(&self) -> u32 {
        self.join_limit.burst.unwrap_or_else(|| {
            u32::try_from(self.max_members)
                .unwrap_or(u32::MAX)
                .max(self.join_limit.joins_per_minute)
        })
    }

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
            [join_limit]
            joins_per_minute = 9
            burst = 3
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
                join_limit: JoinLimitConfig {
                    joins_per_minute: 9,
                    burst: Some(3)
                },
                keepalive_seconds: 3,
                nojs_leave_after_seconds: 4,
            }
        );
    }

    #[test]
    fn the_join_burst_is_the_rooms_size_unless_set() {
        let config = parse("max_members = 500").unwrap();
        assert_eq!(config.join_burst(), 500);
        let config = parse("max_members = 5").unwrap();
        assert_eq!(config.join_burst(), 60, "a minute's worth in a small room");
        let config = parse("max_members = 500\n[join_limit]\nburst = 20").unwrap();
        assert_eq!(config.join_burst(), 20);
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
            (
                "[join_limit]\njoins_per_minute = 0",
                "join_limit.joins_per_minute",
            ),
            ("[join_limit]\nburst = 0", "join_limit.burst"),
            ("[join_limit]\nburst = 100001", "join_limit.burst"),
        ] {
            let err = parse(toml).unwrap_err();
            assert_eq!(err.key.join("."), key, "{toml}: {err}");
        }
        let long = format!("title = \"{}\"", "x".repeat(101));
        assert_eq!(parse(&long).unwrap_err().key, ["title"]);
        parse(&format!("title = \"{}\"", "x".repeat(100))).unwrap();
    }
}
