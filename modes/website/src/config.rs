//! The `[tab.website]` config section: its keys, their defaults and the checks they must pass.

use std::path::PathBuf;

use onionhost_sdk::ConfigError;
use onionhost_sdk::http::ContentSecurityPolicy;
use serde::{Deserialize, Serialize};

/// The website mode's own config section, `[tab.website]`. Only `dir` is required.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebsiteConfig {
    /// The folder served as the site. It must exist when the tab starts, and every file and
    /// folder in it must be readable by the host's user.
    pub dir: PathBuf,
    /// The title of the pages the mode makes itself: folder listings and error pages.
    pub title: String,
    /// The Content-Security-Policy of every response: `true` (the default) for the host's
    /// strict one, a string for a policy of your own, `false` for none at all.
    #[serde(with = "csp_key")]
    pub csp: ContentSecurityPolicy,
    /// Name the file on the console when a file that changed after the start is refused.
    pub show_file_names_in_console: bool,
    /// How many files may be sent at once; more are refused with 503 until one ends.
    pub max_concurrent_downloads: usize,
}

impl Default for WebsiteConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            title: "onionhost website".to_owned(),
            csp: ContentSecurityPolicy::Default,
            show_file_names_in_console: false,
            max_concurrent_downloads: 64,
        }
    }
}

/// The longest title, in characters.
const MAX_TITLE_CHARS: usize = 200;
/// The most downloads that may be configured to run at once.
const MAX_CONCURRENT_DOWNLOADS: usize = 1_000;

impl onionhost_sdk::ModeConfig for WebsiteConfig {
    /// Checks every value; the error names the key and says how to fix it.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.dir.as_os_str().is_empty() {
            return Err(ConfigError::at(
                "dir",
                "name the folder to serve as the site, e.g. dir = \"/home/me/site\"",
            ));
        }
        // The whole walk, as the tab will do it: a file or folder the host's user cannot
        // read stops the host here (exit status 2, nothing served), not visitors later.
        onionhost_sdk::files::Tree::of_folder(&self.dir)
            .map_err(|err| ConfigError::at("dir", err.to_string()))?;
        onionhost_sdk::text::check_title(&self.title, MAX_TITLE_CHARS)
            .map_err(|err| ConfigError::at("title", err))?;
        if let ContentSecurityPolicy::Custom(policy) = &self.csp {
            ContentSecurityPolicy::check_custom(policy)
                .map_err(|err| ConfigError::at("csp", format!("the policy {err}")))?;
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

    fn warnings(&self) -> Vec<String> {
        match self.csp {
            ContentSecurityPolicy::Off => vec![
                "warning: csp = false (--no-csp): pages are served without a \
                 Content-Security-Policy, so their scripts run and may load anything from \
                 anywhere, other sites included; serve only a site you trust"
                    .to_owned(),
            ],
            ContentSecurityPolicy::Default | ContentSecurityPolicy::Custom(_) => Vec::new(),
        }
    }
}

/// `csp` as the config writes it: `true` (the strict default), `false` (none) or a policy.
/// One key with one value, so a policy and `false` cannot both be given.
mod csp_key {
    use std::fmt;

    use onionhost_sdk::http::ContentSecurityPolicy;
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        policy: &ContentSecurityPolicy,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match policy {
            ContentSecurityPolicy::Default => serializer.serialize_bool(true),
            ContentSecurityPolicy::Off => serializer.serialize_bool(false),
            ContentSecurityPolicy::Custom(policy) => serializer.serialize_str(policy),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<ContentSecurityPolicy, D::Error> {
        deserializer.deserialize_any(Key)
    }

    struct Key;

    impl Visitor<'_> for Key {
        type Value = ContentSecurityPolicy;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(
                "a policy (a string such as \"default-src 'self'\"), true for the strict \
                 default, or false for none",
            )
        }

        fn visit_bool<E: de::Error>(self, on: bool) -> Result<Self::Value, E> {
            Ok(if on {
                ContentSecurityPolicy::Default
            } else {
                ContentSecurityPolicy::Off
            })
        }

        fn visit_str<E: de::Error>(self, policy: &str) -> Result<Self::Value, E> {
            Ok(ContentSecurityPolicy::Custom(policy.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(toml: &str) -> Result<WebsiteConfig, ConfigError> {
        let value = toml::Value::Table(toml::from_str(toml).unwrap());
        onionhost_sdk::testing::parse_config::<crate::WebsiteMode>(value)
    }

    fn site() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_owned();
        (dir, path)
    }

    #[test]
    fn dir_is_required_and_must_be_a_folder() {
        let err = parse("").unwrap_err();
        assert_eq!(err.key, ["dir"]);
        assert!(err.message.contains("name the folder"), "{err}");
        let err = parse("dir = \"/nonexistent/onionhost-website\"").unwrap_err();
        assert_eq!(err.key, ["dir"]);
        assert!(
            err.message.contains("/nonexistent/onionhost-website"),
            "{err}"
        );
        let (dir, _) = site();
        let file = dir.path().join("index.html");
        std::fs::write(&file, "x").unwrap();
        let err = parse(&format!("dir = {:?}", file.to_str().unwrap())).unwrap_err();
        assert!(err.message.contains("is not a folder"), "{err}");
    }

    #[test]
    fn every_key_can_be_set() {
        let (dir, path) = site();
        let config = parse(&format!(
            r#"
            dir = "{path}"
            title = "My site"
            csp = "default-src 'self' 'unsafe-inline'"
            show_file_names_in_console = true
            max_concurrent_downloads = 3
            "#
        ))
        .unwrap();
        assert_eq!(
            config,
            WebsiteConfig {
                dir: dir.path().to_owned(),
                title: "My site".into(),
                csp: ContentSecurityPolicy::Custom("default-src 'self' 'unsafe-inline'".into()),
                show_file_names_in_console: true,
                max_concurrent_downloads: 3,
            }
        );
        let defaults = parse(&format!("dir = \"{path}\"")).unwrap();
        assert_eq!(defaults.csp, ContentSecurityPolicy::Default);
        assert_eq!(defaults.title, "onionhost website");
    }

    #[test]
    fn csp_is_a_policy_true_or_false() {
        let (_dir, path) = site();
        let csp = |value: &str| parse(&format!("dir = \"{path}\"\ncsp = {value}")).map(|c| c.csp);
        assert_eq!(csp("true").unwrap(), ContentSecurityPolicy::Default);
        assert_eq!(csp("false").unwrap(), ContentSecurityPolicy::Off);
        assert_eq!(
            csp("\"img-src *\"").unwrap(),
            ContentSecurityPolicy::Custom("img-src *".into())
        );
        for bad in [
            "3",
            "[\"a\"]",
            "\"\"",
            "\"a\\nb\"",
            "\"default-src 'sélf'\"",
        ] {
            let err = csp(bad).unwrap_err();
            assert_eq!(err.key, ["csp"], "{bad}: {err}");
        }
        let err = csp("3").unwrap_err();
        assert!(err.message.contains("true for the strict default"), "{err}");
        let err = csp(&format!("\"{}\"", "a".repeat(5000))).unwrap_err();
        assert!(err.message.contains("at most 4096"), "{err}");
    }

    /// The one-tab command writes the config as a section with serde: every `csp` value
    /// comes back as it went.
    #[test]
    fn the_section_round_trips() {
        let (dir, _) = site();
        for csp in [
            ContentSecurityPolicy::Default,
            ContentSecurityPolicy::Off,
            ContentSecurityPolicy::Custom("img-src 'self' \"q\"\\".into()),
        ] {
            let config = WebsiteConfig {
                dir: dir.path().to_owned(),
                csp,
                ..WebsiteConfig::default()
            };
            let section = onionhost_sdk::host::section(&config).unwrap();
            let back = onionhost_sdk::testing::parse_config::<crate::WebsiteMode>(section);
            // The custom policy above holds no control character, so it passes the check.
            assert_eq!(back.unwrap(), config);
        }
    }

    /// `examples/onionhost.toml` shows every key of `[tab.website]`: its section parses, with
    /// its every key set (the folder made here, since its `dir` is relative).
    #[test]
    fn the_example_configs_section_parses() {
        let example = include_str!("../../../examples/onionhost.toml");
        let config: toml::Table = toml::from_str(example).unwrap();
        let tabs = config["tab"].as_array().unwrap();
        let tab = tabs
            .iter()
            .find(|tab| tab["mode"].as_str() == Some("website"))
            .expect("the example has a website tab");
        let mut section = tab["website"].as_table().unwrap().clone();
        let keys: Vec<&str> = section.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "csp",
                "dir",
                "max_concurrent_downloads",
                "show_file_names_in_console",
                "title"
            ],
            "the example shows every key"
        );
        assert_eq!(section["dir"].as_str(), Some("site"));
        let (_dir, path) = site();
        section.insert("dir".into(), toml::Value::String(path));
        let parsed =
            onionhost_sdk::testing::parse_config::<crate::WebsiteMode>(toml::Value::Table(section))
                .unwrap();
        assert_eq!(parsed.csp, ContentSecurityPolicy::Default);
    }

    #[test]
    fn bad_values_name_their_key() {
        let (_dir, path) = site();
        for (line, key) in [
            ("title = \"\"", "title"),
            ("title = \"a\\u202eb\"", "title"),
            ("max_concurrent_downloads = 0", "max_concurrent_downloads"),
            (
                "max_concurrent_downloads = 1001",
                "max_concurrent_downloads",
            ),
            ("colour = 1", "colour"),
        ] {
            let err = parse(&format!("dir = \"{path}\"\n{line}")).unwrap_err();
            assert_eq!(err.key.join("."), key, "{line}: {err}");
        }
    }
}
