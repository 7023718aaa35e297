//! `[[channels]]`: the doors other programs knock on to reach an agent, such as a signed
//! webhook. Each names its kind, the agent that answers, the user whose identity the
//! agent runs as, the shared secret (`${VAR}`), and optionally where replies are posted
//! and how long that may take. Validation names the bad field (`channels.0.reply_url`);
//! strict mode refuses a plain-HTTP `reply_url` and a secret written into the file. It
//! never checks that the agent or the owner exist (the gateway does at start) and never
//! contacts a reply URL.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::common::{MIN_SECRET_BYTES, SecurityMode};
use super::issue::ConfigIssue;
use super::units::Seconds;
use crate::secret::Secret;

/// How long a reply POST may take when `reply_timeout` is not given.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// One `[[channels]]` table as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawChannel {
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) agent: String,
    pub(crate) owner: String,
    #[serde(serialize_with = "redacted")]
    pub(crate) secret: Option<Secret>,
    pub(crate) reply_url: Option<String>,
    pub(crate) reply_timeout: Seconds,
}

impl Default for RawChannel {
    fn default() -> Self {
        Self {
            name: String::new(),
            kind: String::new(),
            agent: String::new(),
            owner: String::new(),
            secret: None,
            reply_url: None,
            reply_timeout: Seconds(DEFAULT_REPLY_TIMEOUT),
        }
    }
}

/// Which protocol a channel speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKindName {
    /// `POST /hooks/{name}`, signed with HMAC-SHA256.
    Webhook,
}

impl ChannelKindName {
    pub fn parse(text: &str) -> Option<ChannelKindName> {
        match text {
            "webhook" => Some(ChannelKindName::Webhook),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKindName::Webhook => "webhook",
        }
    }
}

/// A validated `[[channels]]` entry.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKindName,
    pub agent: String,
    pub owner: String,
    pub secret: Secret,
    pub reply_url: Option<String>,
    pub reply_timeout: Duration,
}

/// The channel name rule, shared with channels made over the API.
pub fn valid_channel_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Why `url` cannot receive replies in `mode`, if it cannot.
pub fn reply_url_problem(url: &str, mode: SecurityMode) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest.and_then(|r| r.split(['/', '?', '#']).next());
    let valid = matches!(host, Some(h) if !h.is_empty() && !h.contains('@'))
        && url.len() <= 2048
        && !url.contains(|c: char| c.is_whitespace() || c.is_control())
        && !url.contains('#');
    if !valid {
        return Some(format!(
            "{:?} is not an http(s) URL such as https://example.com/aisopod-replies",
            url.chars().take(80).collect::<String>()
        ));
    }
    if mode == SecurityMode::Strict && !url.starts_with("https://") {
        return Some(
            "strict mode posts replies over https only: use an https:// URL (or set [security] mode = \"local\")"
                .into(),
        );
    }
    None
}

/// Why `secret` cannot sign a channel's deliveries, if it cannot.
pub fn channel_secret_problem(secret: &Secret) -> Option<String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Some(format!(
            "is shorter than {MIN_SECRET_BYTES} bytes: make one with `openssl rand -hex 32`"
        ));
    }
    if secret.len() > 256 || secret.expose().chars().any(|c| c.is_control() || c == ' ') {
        return Some("is longer than 256 bytes or holds spaces or control characters".into());
    }
    None
}

pub(crate) fn validate_channels(
    raw: Vec<RawChannel>,
    mode: SecurityMode,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<ChannelConfig> {
    let mut push = |key: String, message: String| issues.push(ConfigIssue { key, message });
    let mut channels: Vec<ChannelConfig> = Vec::new();
    for (index, channel) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("channels.{index}.{field}");
        let mut valid = true;
        if !valid_channel_name(&channel.name) {
            push(
                key("name"),
                format!(
                    "{:?} is not a valid channel name: use 1 to 32 lowercase letters, digits, '-' or '_', starting with a letter or digit",
                    channel.name.chars().take(40).collect::<String>()
                ),
            );
            valid = false;
        } else if channels.iter().any(|c| c.name == channel.name) {
            push(
                key("name"),
                format!("channel {:?} is defined twice", channel.name),
            );
            valid = false;
        }
        let kind = ChannelKindName::parse(&channel.kind);
        if kind.is_none() {
            push(
                key("kind"),
                format!(
                    "{:?} is not a channel kind: use \"webhook\"",
                    channel.kind.chars().take(40).collect::<String>()
                ),
            );
        }
        for (field, value) in [("agent", &channel.agent), ("owner", &channel.owner)] {
            if value.is_empty() || value.len() > 64 || value.chars().any(char::is_control) {
                push(
                    key(field),
                    format!("names no {field}: give the name of an existing {field}"),
                );
                valid = false;
            }
        }
        match &channel.secret {
            None => {
                push(
                    key("secret"),
                    "is missing: write secret = \"${VARIABLE}\" and set the variable".into(),
                );
                valid = false;
            }
            Some(secret) => {
                if let Some(problem) = channel_secret_problem(secret) {
                    push(key("secret"), problem);
                    valid = false;
                }
            }
        }
        if let Some(url) = &channel.reply_url
            && let Some(problem) = reply_url_problem(url, mode)
        {
            push(key("reply_url"), problem);
            valid = false;
        }
        let timeout = channel.reply_timeout.0;
        if timeout < Duration::from_secs(1) || timeout > Duration::from_secs(120) {
            push(
                key("reply_timeout"),
                format!(
                    "{} is out of range: must be between 1s and 2m",
                    humantime::format_duration(timeout)
                ),
            );
            valid = false;
        }
        if let (true, Some(kind), Some(secret)) = (valid, kind, channel.secret) {
            channels.push(ChannelConfig {
                name: channel.name,
                kind,
                agent: channel.agent,
                owner: channel.owner,
                secret,
                reply_url: channel.reply_url,
                reply_timeout: timeout,
            });
        }
    }
    channels
}

/// The `channels.N.secret` keys whose value is written in the file itself rather than
/// taken from `${VAR}`; read from the file's text before expansion.
pub(crate) fn literal_secrets(value: &toml::Value) -> Vec<String> {
    let Some(toml::Value::Array(channels)) = value.get("channels") else {
        return Vec::new();
    };
    channels
        .iter()
        .enumerate()
        .filter_map(|(index, channel)| match channel.get("secret") {
            Some(toml::Value::String(text)) if !text.contains("${") => {
                Some(format!("channels.{index}.secret"))
            }
            _ => None,
        })
        .collect()
}

/// Strict mode's refusal of a channel secret written into the file.
pub(crate) fn literal_secret_issue(key: String) -> ConfigIssue {
    ConfigIssue {
        key,
        message: "strict mode refuses a channel secret written into the config file: write secret = \"${VARIABLE}\" and set the variable (or set [security] mode = \"local\")".into(),
    }
}

fn redacted<S: serde::Serializer>(value: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_some("***"),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

    fn raw(name: &str, reply_url: Option<&str>) -> RawChannel {
        RawChannel {
            name: name.into(),
            kind: "webhook".into(),
            agent: "helper".into(),
            owner: "owner".into(),
            secret: Some(Secret::new(SECRET)),
            reply_url: reply_url.map(str::to_string),
            ..RawChannel::default()
        }
    }

    #[test]
    fn a_good_channel_is_accepted() {
        let mut issues = Vec::new();
        let channels = validate_channels(
            vec![raw("ci", Some("https://example.com/r"))],
            SecurityMode::Strict,
            &mut issues,
        );
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(channels.len(), 1);
        assert_eq!(channels[0].kind, ChannelKindName::Webhook);
        assert_eq!(channels[0].reply_timeout, DEFAULT_REPLY_TIMEOUT);
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut issues = Vec::new();
        let mut bad = raw("Bad Name", Some("ftp://x"));
        bad.kind = "telegram".into();
        bad.secret = Some(Secret::new("short"));
        bad.agent = String::new();
        bad.reply_timeout = Seconds(Duration::from_secs(600));
        let channels = validate_channels(vec![bad], SecurityMode::Local, &mut issues);
        assert!(channels.is_empty());
        let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
        for key in [
            "channels.0.name",
            "channels.0.kind",
            "channels.0.agent",
            "channels.0.secret",
            "channels.0.reply_url",
            "channels.0.reply_timeout",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
    }

    #[test]
    fn strict_mode_wants_https_replies_and_local_mode_allows_http() {
        let mut issues = Vec::new();
        validate_channels(
            vec![raw("ci", Some("http://127.0.0.1:9/r"))],
            SecurityMode::Strict,
            &mut issues,
        );
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].key, "channels.0.reply_url");
        assert!(issues[0].message.contains("https"), "{}", issues[0].message);
        let mut issues = Vec::new();
        validate_channels(
            vec![raw("ci", Some("http://127.0.0.1:9/r"))],
            SecurityMode::Local,
            &mut issues,
        );
        assert!(issues.is_empty(), "{issues:?}");
    }

    #[test]
    fn a_name_used_twice_is_refused() {
        let mut issues = Vec::new();
        let channels = validate_channels(
            vec![raw("ci", None), raw("ci", None)],
            SecurityMode::Local,
            &mut issues,
        );
        assert_eq!(channels.len(), 1);
        assert_eq!(issues[0].key, "channels.1.name");
    }
}
