//! Errors a mode returns to the host while it is configured and built.

use std::fmt;

/// A config section that cannot be used: a key of the wrong type, an unknown key, a bad value.
///
/// The host adds the file name and line; the mode says which key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The path of the offending key inside the mode's section (`["limits", "max_size"]`);
    /// empty when the error is about the section as a whole.
    pub key: Vec<String>,
    /// What is wrong, and how to fix it.
    pub message: String,
}

impl ConfigError {
    /// An error about the key `key` (a dotted path like `limits.max_size` is split).
    pub fn at(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key
                .split('.')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            message: message.into(),
        }
    }

    /// An error about the section as a whole.
    pub fn section(message: impl Into<String>) -> Self {
        Self {
            key: Vec::new(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "`{}`: {}", self.key.join("."), self.message)
        }
    }
}

/// A tab that could not be built from a valid config.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// An I/O operation failed; `action` says what the mode was doing.
    #[error("could not {action}")]
    Io {
        /// What the mode was doing, as a verb phrase ("open the upload directory").
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Any other reason, as a sentence for the user.
    #[error("{0}")]
    Other(String),
}

impl BuildError {
    /// Wraps an I/O error with what the mode was doing.
    pub fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            action: action.into(),
            source,
        }
    }
}

/// Either kind of error, as the host sees it when it builds a tab.
#[derive(Debug, thiserror::Error)]
pub enum ModeError {
    /// The config section is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The tab could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
}
