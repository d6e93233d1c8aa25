//! The pastebin's config section, `[tab.pastebin]`.

use onionhost_sdk::{ByteSize, ConfigError};
use serde::Deserialize;

/// The largest paste the config may allow.
const MAX_PASTE_BYTES_LIMIT: ByteSize = ByteSize(1024 * 1024);

/// The most pastes the config may allow at once.
const MAX_PASTES_LIMIT: usize = 10_000;

/// The longest a paste may be kept: one day.
const KEEP_MINUTES_LIMIT: u64 = 24 * 60;

/// `[tab.pastebin]`: every key has a default, so a tab with no section starts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PastebinConfig {
    /// The page's title.
    pub title: String,
    /// The largest paste (at most 1 MiB): a number of bytes or a size such as `"64 KiB"`.
    pub max_paste_bytes: ByteSize,
    /// How many pastes are kept at once; when full, new pastes are refused.
    pub max_pastes: usize,
    /// How many pastes may be created per minute, all visitors together (onion service
    /// visitors cannot be told apart, so the limit is the tab's).
    pub max_pastes_per_minute: usize,
    /// The longest a visitor may ask a paste to be kept, in minutes (at most a day); the
    /// form offers shorter times too.
    pub keep_minutes: u64,
}

impl Default for PastebinConfig {
    fn default() -> Self {
        Self {
            title: "Pastebin".to_owned(),
            max_paste_bytes: ByteSize(64 * 1024),
            max_pastes: 100,
            max_pastes_per_minute: 30,
            keep_minutes: 60,
        }
    }
}

impl onionhost_sdk::ModeConfig for PastebinConfig {
    /// Checks values beyond their types.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.title.chars().count() > 100 {
            return Err(ConfigError::at("title", "use at most 100 characters"));
        }
        // The sdk's one list of characters that can disguise text (controls, bidi overrides,
        // invisible ones): a title is shown to every visitor.
        if let Some(c) = self
            .title
            .chars()
            .find(|&c| onionhost_sdk::text::is_disguising(c))
        {
            return Err(ConfigError::at(
                "title",
                format!(
                    "remove the character {}: it can disguise text",
                    onionhost_sdk::text::show(&c.to_string())
                ),
            ));
        }
        if !(ByteSize(1)..=MAX_PASTE_BYTES_LIMIT).contains(&self.max_paste_bytes) {
            return Err(ConfigError::at(
                "max_paste_bytes",
                format!("use a size from 1 to {MAX_PASTE_BYTES_LIMIT}"),
            ));
        }
        if !(1..=MAX_PASTES_LIMIT).contains(&self.max_pastes) {
            return Err(ConfigError::at(
                "max_pastes",
                format!("use a number from 1 to {MAX_PASTES_LIMIT}"),
            ));
        }
        if !(1..=MAX_PASTES_LIMIT).contains(&self.max_pastes_per_minute) {
            return Err(ConfigError::at(
                "max_pastes_per_minute",
                format!("use a number from 1 to {MAX_PASTES_LIMIT}"),
            ));
        }
        if !(1..=KEEP_MINUTES_LIMIT).contains(&self.keep_minutes) {
            return Err(ConfigError::at(
                "keep_minutes",
                format!("use a number of minutes from 1 to {KEEP_MINUTES_LIMIT} (one day)"),
            ));
        }
        Ok(())
    }
}

impl PastebinConfig {
    /// The expiry times the form offers, in minutes: common ones up to `keep_minutes`, and
    /// `keep_minutes` itself.
    pub(crate) fn expiry_choices(&self) -> Vec<u64> {
        let mut choices: Vec<u64> = [5, 60, 24 * 60]
            .into_iter()
            .filter(|&minutes| minutes < self.keep_minutes)
            .collect();
        choices.push(self.keep_minutes);
        choices
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_choices_never_exceed_the_limit() {
        let config = PastebinConfig {
            keep_minutes: 90,
            ..PastebinConfig::default()
        };
        assert_eq!(config.expiry_choices(), [5, 60, 90]);
        let config = PastebinConfig {
            keep_minutes: 5,
            ..PastebinConfig::default()
        };
        assert_eq!(config.expiry_choices(), [5]);
    }

    #[test]
    fn a_title_that_can_disguise_text_is_refused() {
        let config = PastebinConfig {
            title: "Paste\u{202e}txt".to_owned(),
            ..PastebinConfig::default()
        };
        let err = onionhost_sdk::ModeConfig::validate(&config).expect_err("refused");
        assert!(err.to_string().contains("U+202E"), "{err}");
    }
}
