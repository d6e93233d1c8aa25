//! The `[tab.share]` config section: its keys, their defaults and the checks they must pass.

use std::path::PathBuf;

use onionhost_sdk::ConfigError;
use serde::{Deserialize, Serialize};

/// The share mode's own config section, `[tab.share]`. Only `paths` is required.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShareConfig {
    /// The files and folders to share, in any mix. Each must exist when the tab starts, and
    /// every file and folder in them must be readable by the host's user.
    pub paths: Vec<PathBuf>,
    /// Stop the tab after the first complete download of a file or of the whole zip.
    pub stop_after_first_download: bool,
    /// Show the name of what is downloaded on the host's console.
    pub show_file_names_in_console: bool,
    /// The file name of the "download all" zip; by default the name of the one shared item
    /// followed by `.zip`, or `onionhost-share.zip` when several items are shared.
    pub zip_name: Option<String>,
    /// The page's title.
    pub title: String,
    /// How many downloads may run at once; more are refused with 503 until one ends.
    pub max_concurrent_downloads: usize,
}

impl Default for ShareConfig {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            stop_after_first_download: true,
            show_file_names_in_console: false,
            zip_name: None,
            title: "onionhost share".to_owned(),
            max_concurrent_downloads: 64,
        }
    }
}

/// The longest title or zip name, in characters.
const MAX_NAME_CHARS: usize = 200;
/// The most downloads that may be configured to run at once.
const MAX_CONCURRENT_DOWNLOADS: usize = 1_000;

impl onionhost_sdk::ModeConfig for ShareConfig {
    /// Checks every value; the error names the key and says how to fix it.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.paths.is_empty() {
            return Err(ConfigError::at(
                "paths",
                "list at least one file or folder to share, e.g. paths = [\"/home/me/report.pdf\"]",
            ));
        }
        for path in &self.paths {
            match std::fs::metadata(path) {
                Ok(meta) if meta.is_file() || meta.is_dir() => {}
                Ok(_) => {
                    return Err(ConfigError::at(
                        "paths",
                        format!("{} is neither a file nor a folder", path.display()),
                    ));
                }
                Err(err) => {
                    return Err(ConfigError::at(
                        "paths",
                        format!("cannot share {}: {err}", path.display()),
                    ));
                }
            }
        }
        // The whole walk, as the tab will do it: a file or folder the host's user cannot
        // read, anywhere in the share, stops the host here (exit status 2, nothing served)
        // rather than fail visitors later with 500s and broken zips.
        onionhost_sdk::files::Tree::of_items(&self.paths)
            .map_err(|err| ConfigError::at("paths", err.to_string()))?;
        check_name("title", &self.title)?;
        if let Some(zip_name) = &self.zip_name {
            check_name("zip_name", zip_name)?;
            if zip_name.contains(['/', '\\']) {
                return Err(ConfigError::at(
                    "zip_name",
                    "must be a file name, without `/` or `\\`",
                ));
            }
        }
        if !(1..=MAX_CONCURRENT_DOWNLOADS).contains(&self.max_concurrent_downloads) {
            return Err(ConfigError::at(
                "max_concurrent_downloads",
                format!(
                    "must be between 1 and {MAX_CONCURRENT_DOWNLOADS}, not {}",
                    self.max_concurrent_downloads
                ),
            ));
        }
        Ok(())
    }
}

fn check_name(key: &str, value: &str) -> Result<(), ConfigError> {
    // The sdk's one check, so that a title cannot disguise itself any more than a file name.
    onionhost_sdk::text::check_title(value, MAX_NAME_CHARS).map_err(|err| ConfigError::at(key, err))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(toml: &str) -> Result<ShareConfig, ConfigError> {
        let value = toml::Value::Table(toml::from_str(toml).unwrap());
        onionhost_sdk::testing::parse_config::<crate::ShareMode>(value)
    }

    #[test]
    fn paths_are_required() {
        let err = parse("").unwrap_err();
        assert_eq!(err.key, ["paths"]);
        assert!(err.message.contains("at least one"), "{err}");
        assert_eq!(parse("paths = []").unwrap_err().key, ["paths"]);
    }

    #[test]
    fn missing_paths_name_the_key_and_the_path() {
        let err = parse("paths = [\"/nonexistent/onionhost-share-test\"]").unwrap_err();
        assert_eq!(err.key, ["paths"]);
        assert!(
            err.message.contains("/nonexistent/onionhost-share-test"),
            "{err}"
        );
    }

    /// Regression (issue 9): `onionhost share ok.txt secret.txt` with `secret.txt`
    /// unreadable started anyway, then gave 500s and broken zips.
    ///
    /// The tests run as root, whom file modes do not stop; the kernel still refuses to
    /// open a write-only sysctl for reading, even to root, so that is the unreadable file
    /// here (for any other user it is unreadable too). Folders and files inside folders are
    /// covered end to end, with the host run as `nobody` (`tests/e2e/share.rs`).
    #[test]
    fn an_unreadable_file_is_a_config_error_that_names_it() {
        let secret = "/proc/sys/vm/drop_caches";
        assert!(
            std::fs::File::open(secret).is_err(),
            "{secret} must be unreadable for this test"
        );
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok.txt");
        std::fs::write(&ok, "fine").unwrap();
        let err = parse(&format!("paths = [{:?}, {secret:?}]", ok.to_str().unwrap())).unwrap_err();
        assert_eq!(err.key, ["paths"]);
        assert!(err.message.contains(secret), "{err}");
        assert!(err.message.contains("cannot read"), "{err}");
        // The readable one alone is fine.
        parse(&format!("paths = [{:?}]", ok.to_str().unwrap())).unwrap();
    }

    #[test]
    fn every_key_can_be_set() {
        let dir = tempfile::tempdir().unwrap();
        let dir_str = dir.path().to_str().unwrap();
        let config = parse(&format!(
            r#"
            paths = ["{dir_str}"]
            stop_after_first_download = false
            show_file_names_in_console = true
            zip_name = "all.zip"
            title = "Files"
            max_concurrent_downloads = 3
            "#
        ))
        .unwrap();
        assert_eq!(
            config,
            ShareConfig {
                paths: vec![dir.path().to_owned()],
                stop_after_first_download: false,
                show_file_names_in_console: true,
                zip_name: Some("all.zip".into()),
                title: "Files".into(),
                max_concurrent_downloads: 3,
            }
        );
        let defaults = parse(&format!("paths = [\"{dir_str}\"]")).unwrap();
        assert!(defaults.stop_after_first_download);
        assert!(!defaults.show_file_names_in_console);
    }

    #[test]
    fn bad_values_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let dir_str = dir.path().to_str().unwrap();
        for (line, key) in [
            ("zip_name = \"a/b.zip\"", "zip_name"),
            ("zip_name = \"\"", "zip_name"),
            ("title = \"a\\nb\"", "title"),
            ("title = \"a\\u202eb\"", "title"),
            ("title = \"a\\u200bb\"", "title"),
            ("zip_name = \"a\\u00a0b.zip\"", "zip_name"),
            ("max_concurrent_downloads = 0", "max_concurrent_downloads"),
            ("unknown = 1", "unknown"),
        ] {
            let err = parse(&format!("paths = [\"{dir_str}\"]\n{line}")).unwrap_err();
            assert_eq!(err.key.join("."), key, "{line}: {err}");
        }
    }
}
