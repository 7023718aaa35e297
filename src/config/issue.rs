//! What went wrong with a configuration and where it came from: one issue per key, the
//! error that carries them, and the source named in messages. Every other file of
//! `config` builds on these; this one imports none of them.

use std::fmt;
use std::path::PathBuf;

/// One problem with the configuration, tied to the key that causes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key path, such as `server.bind`; empty for the file as a whole.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin} has {} error(s):\n{}", issues.len(), list(issues))]
    Invalid {
        origin: String,
        issues: Vec<ConfigIssue>,
    },
}

impl ConfigError {
    /// Every issue, for callers that print them one per line.
    pub fn issues(&self) -> Vec<ConfigIssue> {
        match self {
            ConfigError::Read { .. } => vec![ConfigIssue {
                key: String::new(),
                message: self.to_string(),
            }],
            ConfigError::Invalid { issues, .. } => issues.clone(),
        }
    }
}

fn list(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(|issue| format!("  - {issue}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where the configuration came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    Defaults,
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::File(path) => write!(f, "{}", path.display()),
            ConfigSource::Defaults => f.write_str("built-in defaults"),
        }
    }
}
