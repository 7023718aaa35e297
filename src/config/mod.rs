//! Configuration: the `config.toml` schema, `${VAR}` expansion, defaults and validation.
//!
//! The file is parsed in stages so that one run reports every mistake, each with its key
//! path: TOML syntax, then `${VAR}` expansion, then the schema (unknown keys and wrong
//! types), then values (ranges, combinations, strict-mode rules). The raw, file-facing
//! structs reject nothing silently; the validated [`Config`] is what the rest of the
//! product sees. This module never touches the network, the store or key material; it
//! reads the config file and the environment, and checks the permissions of key files
//! the config names.

pub mod agents;
mod channels;
mod common;
mod env;
pub mod hardware;
mod issue;
mod providers;
mod raw;
pub mod sandbox;
mod settings;
mod strict;
#[cfg(test)]
pub mod testing;
mod units;
mod validate;

pub use channels::{
    ChannelConfig, ChannelKindName, DEFAULT_REPLY_TIMEOUT, channel_secret_problem,
    reply_url_problem, valid_channel_name,
};
pub use common::*;
pub use env::{ApplianceEnvironment, Environment, ProcessEnvironment};
pub use issue::{ConfigError, ConfigIssue, ConfigSource};
pub use providers::{ProviderConfig, ProviderKindName};
pub use raw::schema_keys;
pub use settings::*;
pub use strict::key_file_problem;
pub use units::{CpuFraction, Seconds, Size, parse_duration, parse_size};
pub use validate::JWT_EXPIRY_ENV;

use std::path::{Path, PathBuf};

use env::expand_env;
use raw::deserialize_collecting;

/// Where the CLI looks for a config file when `--config` is not given.
pub const ETC_CONFIG: &str = "/etc/aisopod/config.toml";
/// Environment variable naming the config file.
pub const CONFIG_ENV: &str = "AISOPOD_CONFIG";
impl Config {
    /// Built-in defaults, as `gateway start` uses with no config file.
    pub fn defaults(env: &dyn Environment) -> Result<Config, ConfigError> {
        parse("", ConfigSource::Defaults, env)
    }
}

/// Finds the config file: `--config`, then `$AISOPOD_CONFIG`, then `/etc/aisopod/config.toml`
/// if it exists. `None` means built-in defaults.
pub fn locate(explicit: Option<&Path>, env: &dyn Environment) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    if let Some(path) = env.var(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let etc = Path::new(ETC_CONFIG);
    etc.exists().then(|| etc.to_path_buf())
}

/// A check that the owner of a table runs over its validated values, such as the command
/// filter's over `[tools.shell]`. Config cannot know those rules without importing the
/// modules above it, so the caller hands them in and their issues are reported with
/// config's own, in the same run. An owner also refuses the same mistakes when it is built.
pub type OwnerCheck<'a> = &'a dyn Fn(&Config) -> Vec<ConfigIssue>;

/// Loads the configuration from `path`, or the built-in defaults when `None`.
pub fn load(path: Option<&Path>, env: &dyn Environment) -> Result<Config, ConfigError> {
    load_checked(path, env, &[])
}

/// [`load`], with the owners' checks reported alongside config's own.
pub fn load_checked(
    path: Option<&Path>,
    env: &dyn Environment,
    checks: &[OwnerCheck<'_>],
) -> Result<Config, ConfigError> {
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            parse_checked(&text, ConfigSource::File(path.to_path_buf()), env, checks)
        }
        None => parse_checked("", ConfigSource::Defaults, env, checks),
    }
}

/// Parses and validates config text, reporting every problem found.
pub fn parse(
    text: &str,
    source: ConfigSource,
    env: &dyn Environment,
) -> Result<Config, ConfigError> {
    parse_checked(text, source, env, &[])
}

/// [`parse`], with the owners' checks reported alongside config's own.
pub fn parse_checked(
    text: &str,
    source: ConfigSource,
    env: &dyn Environment,
    checks: &[OwnerCheck<'_>],
) -> Result<Config, ConfigError> {
    let invalid = |issues| ConfigError::Invalid {
        origin: source.to_string(),
        issues,
    };
    let mut value: toml::Value = match text.parse::<toml::Table>() {
        Ok(table) => toml::Value::Table(table),
        Err(err) => {
            let message = err.message().to_string();
            let place = err
                .span()
                .map(|span| line_col(text, span.start))
                .map(|(line, col)| format!("line {line}, column {col}: "))
                .unwrap_or_default();
            return Err(invalid(vec![ConfigIssue {
                key: String::new(),
                message: format!("{place}invalid TOML: {message}"),
            }]));
        }
    };
    let mut issues = Vec::new();
    let literal_keys = providers::literal_keys(&value);
    let literal_secrets = channels::literal_secrets(&value);
    expand_env(&mut value, &mut Vec::new(), env, &mut issues);
    let unexpanded: Vec<String> = issues.iter().map(|issue| issue.key.clone()).collect();
    let raw = deserialize_collecting(value, &mut issues);
    let config = raw.and_then(|raw| validate::validate(raw, source.clone(), env, &mut issues));
    if let Some(config) = &config {
        if config.security.mode == SecurityMode::Strict {
            issues.extend(literal_keys.into_iter().map(providers::literal_key_issue));
            issues.extend(
                literal_secrets
                    .into_iter()
                    .map(channels::literal_secret_issue),
            );
        }
        for check in checks {
            issues.extend(check(config));
        }
    }
    // A value whose `${VAR}` could not be expanded is still its template text: what the
    // checks after expansion say of it (such as the length of "${TOKEN}") is not about
    // the user's value, so only the missing variable is reported for that key.
    let mut index = 0;
    issues.retain(|issue| {
        index += 1;
        index <= unexpanded.len() || !unexpanded.contains(&issue.key)
    });
    match config {
        Some(config) if issues.is_empty() => Ok(config),
        _ => Err(invalid(issues)),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests;
