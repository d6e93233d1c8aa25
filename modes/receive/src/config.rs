//! The `[tab.receive]` config section: its keys, their defaults and the ranges they must fall in.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use onionhost_sdk::notice::NoticeUrl;
use onionhost_sdk::{ByteSize, ConfigError};
use serde::{Deserialize, Serialize};

/// The receive mode's own config section, `[tab.receive]`. Every key has a default, so a
/// receive tab needs no section at all.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiveConfig {
    /// Where uploads are saved, one folder per upload. `~/` stands for the home folder.
    /// Default: `~/onionhost-received`. Created (mode 0700) if missing.
    pub dir: Option<PathBuf>,
    /// The most one upload (all its files and its message together) may weigh.
    pub max_upload_size: ByteSize,
    /// The most the folder may hold from uploads, this run's and earlier runs' (what earlier
    /// uploads left in `dir` is counted at start).
    pub max_total_size: ByteSize,
    /// Uploads are refused, or stopped, when the disk holding `dir` would have less free.
    pub min_free_space: ByteSize,
    /// The most files one upload may carry.
    pub max_files_per_upload: usize,
    /// Refuse files: visitors may only send a text message.
    pub disable_files: bool,
    /// Refuse text messages: visitors may only send files.
    pub disable_text: bool,
    /// The largest text message, in bytes of UTF-8.
    pub max_text_size: ByteSize,
    /// Show the names of received files on the console.
    pub show_file_names_in_console: bool,
    /// How many uploads may be in progress at once; more are refused with "busy".
    pub max_concurrent_uploads: usize,
    /// How many of those one visitor (one Tor circuit, or one connection on loopback) may
    /// hold, so that one visitor cannot take every slot.
    pub max_concurrent_uploads_per_visitor: usize,
    /// How many uploads the tab accepts per minute, in bursts of as many; more are refused
    /// with "try again later". Per tab.
    pub max_uploads_per_minute: u32,
    /// An upload that sends nothing for this long is abandoned (and removed), so that a
    /// stalled or malicious visitor cannot hold an upload slot for ever.
    pub upload_idle_timeout_seconds: u64,
    /// The slowest an upload may be, in bytes per second (0: no minimum), so that holding an
    /// upload slot costs bandwidth; see [`ReceiveConfig::upload_rate_grace_seconds`].
    pub min_upload_rate: ByteSize,
    /// How far, in seconds, an upload may fall behind `min_upload_rate`: at its start, and
    /// in any pause later.
    pub upload_rate_grace_seconds: u64,
    /// The page's title (the browser's tab and the page's heading).
    pub title: String,
    /// age X25519 recipients (`age1...`): when set, every upload is saved as one encrypted
    /// file for them, and nothing of it touches the disk in plaintext.
    pub encrypt_to: Vec<String>,
    /// A URL the host POSTs a short notice to after each complete upload, through the
    /// tab's own network path (Tor).
    pub webhook_url: Option<NoticeUrl>,
}

/// The largest text message that may be configured (16 MiB).
const MAX_TEXT_SIZE: u64 = 16 * 1024 * 1024;
/// The most files per upload that may be configured.
const MAX_FILES_PER_UPLOAD: usize = 100_000;
/// The most concurrent uploads that may be configured.
const MAX_CONCURRENT_UPLOADS: usize = 1024;

/// The highest `min_upload_rate` that may be configured: more would cut off ordinary Tor
/// circuits.
const MAX_MIN_UPLOAD_RATE: u64 = 1024 * 1024;

/// The longest title, in characters (as share's).
const MAX_TITLE_CHARS: usize = 200;
/// The most recipients `encrypt_to` may list: each adds a stanza to every upload's header.
const MAX_RECIPIENTS: usize = 64;

/// The page's title unless `title` says otherwise.
pub const DEFAULT_TITLE: &str = "onionhost receive";

/// The default folder, under the home folder.
pub const DEFAULT_DIR: &str = "~/onionhost-received";

impl Default for ReceiveConfig {
    fn default() -> Self {
        Self {
            dir: None,
            max_upload_size: ByteSize::gib(10),
            max_total_size: ByteSize::gib(50),
            min_free_space: ByteSize::gib(1),
            max_files_per_upload: 1000,
            disable_files: false,
            disable_text: false,
            max_text_size: ByteSize::kib(64),
            show_file_names_in_console: false,
            max_concurrent_uploads: 4,
            max_concurrent_uploads_per_visitor: 2,
            max_uploads_per_minute: 60,
            upload_idle_timeout_seconds: 120,
            min_upload_rate: ByteSize::kib(4),
            upload_rate_grace_seconds: 60,
            title: DEFAULT_TITLE.to_owned(),
            encrypt_to: Vec::new(),
            webhook_url: None,
        }
    }
}

impl onionhost_sdk::ModeConfig for ReceiveConfig {
    /// Checks every value against its range; the error names the key and the allowed range.
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(dir) = &self.dir {
            if dir.as_os_str().is_empty() {
                return Err(ConfigError::at(
                    "dir",
                    "must not be empty; leave it out for the default folder",
                ));
            }
            let dir = self
                .upload_dir()
                .map_err(|err| ConfigError::at("dir", err))?;
            if dir.exists() && !dir.is_dir() {
                return Err(ConfigError::at(
                    "dir",
                    format!("{} exists and is not a folder", dir.display()),
                ));
            }
        }
        if self.max_upload_size.0 == 0 {
            return Err(ConfigError::at(
                "max_upload_size",
                "must be at least 1 byte",
            ));
        }
        if self.max_total_size.0 == 0 {
            return Err(ConfigError::at("max_total_size", "must be at least 1 byte"));
        }
        if self.max_text_size.0 == 0 || self.max_text_size.0 > MAX_TEXT_SIZE {
            return Err(ConfigError::at(
                "max_text_size",
                format!(
                    "must be between 1 byte and 16 MiB, not {}",
                    self.max_text_size
                ),
            ));
        }
        check_range(
            "max_files_per_upload",
            self.max_files_per_upload,
            1,
            MAX_FILES_PER_UPLOAD,
        )?;
        check_range(
            "max_concurrent_uploads",
            self.max_concurrent_uploads,
            1,
            MAX_CONCURRENT_UPLOADS,
        )?;
        check_range(
            "max_concurrent_uploads_per_visitor",
            self.max_concurrent_uploads_per_visitor,
            1,
            MAX_CONCURRENT_UPLOADS,
        )?;
        check_range(
            "max_uploads_per_minute",
            self.max_uploads_per_minute,
            1,
            100_000,
        )?;
        check_range(
            "upload_idle_timeout_seconds",
            self.upload_idle_timeout_seconds,
            1,
            3600,
        )?;
        if self.min_upload_rate.0 > MAX_MIN_UPLOAD_RATE {
            return Err(ConfigError::at(
                "min_upload_rate",
                format!(
                    "must be at most 1 MiB (a second), not {}; 0 for no minimum",
                    self.min_upload_rate
                ),
            ));
        }
        check_range(
            "upload_rate_grace_seconds",
            self.upload_rate_grace_seconds,
            1,
            3600,
        )?;
        onionhost_sdk::text::check_title(&self.title, MAX_TITLE_CHARS)
            .map_err(|err| ConfigError::at("title", err))?;
        self.recipients()?;
        if self.disable_files && self.disable_text {
            return Err(ConfigError::at(
                "disable_text",
                "files are disabled too, so the tab would accept nothing: enable one of them",
            ));
        }
        Ok(())
    }
}

impl ReceiveConfig {
    /// The folder uploads go to, with `~/` expanded.
    pub fn upload_dir(&self) -> Result<PathBuf, String> {
        let dir = self
            .dir
            .as_deref()
            .unwrap_or_else(|| Path::new(DEFAULT_DIR));
        let Ok(rest) = dir.strip_prefix("~") else {
            return Ok(dir.to_path_buf());
        };
        let home = std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .ok_or_else(|| {
                format!(
                    "{} starts with ~ but HOME is not set: give the folder's full path",
                    dir.display()
                )
            })?;
        Ok(PathBuf::from(home).join(rest))
    }

    /// The parsed [`ReceiveConfig::encrypt_to`] recipients (empty: uploads are saved as they
    /// are). A key that is not an age X25519 recipient is an error naming its place.
    pub fn recipients(&self) -> Result<Vec<age::x25519::Recipient>, ConfigError> {
        if self.encrypt_to.len() > MAX_RECIPIENTS {
            return Err(ConfigError::at(
                "encrypt_to",
                format!(
                    "lists {} recipients; at most {MAX_RECIPIENTS}",
                    self.encrypt_to.len()
                ),
            ));
        }
        self.encrypt_to
            .iter()
            .enumerate()
            .map(|(index, key)| {
                key.trim().parse::<age::x25519::Recipient>().map_err(|err| {
                    ConfigError::at(
                        &format!("encrypt_to.{index}"),
                        format!(
                            "is not an age X25519 recipient ({err}): give the public key that \
                             `age-keygen` prints, `age1` followed by 58 characters"
                        ),
                    )
                })
            })
            .collect()
    }

    /// [`ReceiveConfig::upload_idle_timeout_seconds`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.upload_idle_timeout_seconds)
    }

    /// [`ReceiveConfig::upload_rate_grace_seconds`] as a duration.
    pub fn upload_rate_grace(&self) -> Duration {
        Duration::from_secs(self.upload_rate_grace_seconds)
    }
}

fn check_range<T>(key: &str, value: T, min: T, max: T) -> Result<(), ConfigError>
where
    T: PartialOrd + fmt::Display,
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

    fn parse(toml: &str) -> Result<ReceiveConfig, ConfigError> {
        let value = toml::Value::Table(toml::from_str(toml).unwrap());
        onionhost_sdk::testing::parse_config::<crate::ReceiveMode>(value)
    }

    #[test]
    fn an_empty_section_gives_the_defaults() {
        assert_eq!(parse("").unwrap(), ReceiveConfig::default());
        ReceiveConfig::default().validate().unwrap();
    }

    /// Sizes are the sdk's `ByteSize` (its own tests cover the parser): integers or strings
    /// with units.
    #[test]
    fn sizes_are_integers_or_strings_with_units() {
        let config = parse("max_upload_size = 2048\nmax_total_size = \"3 GiB\"").unwrap();
        assert_eq!(config.max_upload_size, ByteSize(2048));
        assert_eq!(config.max_total_size, ByteSize::gib(3));
    }

    #[test]
    fn bad_sizes_name_the_key() {
        for (toml, key) in [
            ("max_upload_size = \"lots\"", "max_upload_size"),
            ("max_total_size = -5", "max_total_size"),
            ("min_free_space = \"1 XB\"", "min_free_space"),
            ("max_upload_size = 0", "max_upload_size"),
            ("max_total_size = 0", "max_total_size"),
            ("max_text_size = 0", "max_text_size"),
            ("max_text_size = \"17 MiB\"", "max_text_size"),
            ("max_files_per_upload = 0", "max_files_per_upload"),
            ("max_concurrent_uploads = 0", "max_concurrent_uploads"),
            ("max_uploads_per_minute = 0", "max_uploads_per_minute"),
            (
                "max_concurrent_uploads_per_visitor = 0",
                "max_concurrent_uploads_per_visitor",
            ),
            ("min_upload_rate = \"2 MiB\"", "min_upload_rate"),
            ("min_upload_rate = \"fast\"", "min_upload_rate"),
            ("upload_rate_grace_seconds = 0", "upload_rate_grace_seconds"),
            (
                "upload_idle_timeout_seconds = 0",
                "upload_idle_timeout_seconds",
            ),
            ("disable_files = true\ndisable_text = true", "disable_text"),
            ("dir = \"\"", "dir"),
            ("title = \"\"", "title"),
            ("title = \"a\\u202eb\"", "title"),
            ("title = \"a\\nb\"", "title"),
            ("encrypt_to = [\"age1nope\"]", "encrypt_to.0"),
            ("encrypt_to = \"age1\"", "encrypt_to"),
            (
                "encrypt_to = [\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\", \"ssh-ed25519 AAAA\"]",
                "encrypt_to.1",
            ),
            ("webhook_url = \"https://example.org/\"", "webhook_url"),
            ("webhook_url = \"ftp://example.org/\"", "webhook_url"),
            ("webhook_url = 3", "webhook_url"),
            (
                "show_file_names_in_console = 1",
                "show_file_names_in_console",
            ),
        ] {
            let err = parse(toml).unwrap_err();
            assert_eq!(err.key.join("."), key, "{toml}: {err}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = parse("max_size = 3").unwrap_err();
        assert!(err.message.contains("max_size"), "{err}");
    }

    #[test]
    fn a_dir_that_is_a_file_is_refused() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let toml = format!("dir = {:?}", file.path().to_str().unwrap());
        assert_eq!(parse(&toml).unwrap_err().key, ["dir"]);
    }

    #[test]
    fn the_default_dir_is_under_home() {
        let dir = ReceiveConfig::default().upload_dir().unwrap();
        assert!(dir.ends_with("onionhost-received"), "{}", dir.display());
        assert!(!dir.starts_with("~"));
    }
}
