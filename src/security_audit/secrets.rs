//! The checks on secrets: the gateway's own (the static API token, the JWT secret,
//! channel secrets) must be long and not guessable; no secret may be used in two places
//! (a provider key, a channel secret and a token are each their own); none may be a
//! working API token; and none should sit in the config file in clear. Findings name
//! where a secret is used, never the secret.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::MIN_SECRET_BYTES;
use crate::secret::Secret;

use super::catalog::finding;
use super::findings::Finding;

/// A secret the audit compares, with where it is used.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Where it is used, as the owner knows it (`auth.token`, `provider openai`,
    /// `channel alerts`).
    pub label: String,
    pub secret: Secret,
    /// Whether the gateway's own strength rules apply (not to a provider's key, which
    /// the provider chose).
    pub own: bool,
}

impl Candidate {
    pub fn own(label: impl Into<String>, secret: Secret) -> Candidate {
        Candidate {
            label: label.into(),
            secret,
            own: true,
        }
    }

    pub fn foreign(label: impl Into<String>, secret: Secret) -> Candidate {
        Candidate {
            label: label.into(),
            secret,
            own: false,
        }
    }
}

/// Short, weak and reused secrets, and secrets that are API tokens (`token_matches`:
/// each candidate label that authenticates as a token, with the token's id).
pub fn check(candidates: &[Candidate], token_matches: &[(String, String)]) -> Vec<Finding> {
    let mut found = Vec::new();
    for candidate in candidates.iter().filter(|c| c.own && !c.secret.is_empty()) {
        let length = candidate.secret.len();
        if length < MIN_SECRET_BYTES {
            found.push(finding(
                "secret.short",
                format!(
                    "{} is {length} bytes long; at least {MIN_SECRET_BYTES} are required",
                    candidate.label
                ),
                "replace it with `aisopod auth gen-secret` (32 random bytes)",
            ));
        }
        if let Some(why) = weakness(candidate.secret.expose()) {
            found.push(finding(
                "secret.weak",
                format!("{} {why}", candidate.label),
                "replace it with `aisopod auth gen-secret` (32 random bytes)",
            ));
        }
    }
    let mut by_value: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for candidate in candidates.iter().filter(|c| !c.secret.is_empty()) {
        by_value
            .entry(candidate.secret.expose())
            .or_default()
            .push(&candidate.label);
    }
    for labels in by_value.values().filter(|labels| labels.len() > 1) {
        found.push(finding(
            "secret.reused",
            format!("the same secret is used by {}", labels.join(" and ")),
            "give each its own secret (`aisopod auth gen-secret`), and replace the one that is not a provider's key",
        ));
    }
    for (label, token_id) in token_matches {
        found.push(finding(
            "secret.equals_token",
            format!("{label} is the secret of API token {token_id}: whoever holds one holds the other"),
            format!("revoke the token (`aisopod auth revoke-token {token_id}`) and give {label} its own secret"),
        ));
    }
    found
}

/// Why a secret is easy to guess, if it is.
pub fn weakness(secret: &str) -> Option<&'static str> {
    const COMMON: [&str; 12] = [
        "password", "passwort", "changeme", "secret", "admin", "aisopod", "letmein", "123456",
        "qwerty", "default", "example", "token",
    ];
    let mut distinct: Vec<char> = secret.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 8 {
        return Some("uses fewer than 8 different characters");
    }
    let lower = secret.to_lowercase();
    let common: usize = COMMON
        .iter()
        .map(|word| lower.matches(word).count() * word.len())
        .sum();
    if common * 2 >= lower.len() {
        return Some("is made mostly of well-known words");
    }
    let chars: Vec<u32> = secret.chars().map(u32::from).collect();
    let steps = chars.windows(2).filter(|pair| match pair {
        [a, b] => b.wrapping_sub(*a) == 1 || a.wrapping_sub(*b) == 1,
        _ => false,
    });
    if chars.len() > 1 && steps.count() * 4 >= (chars.len() - 1) * 3 {
        return Some("is mostly a run of consecutive characters");
    }
    None
}

/// Dotted keys of the config file whose values are secrets written in clear (not taken
/// from the environment with `${VAR}`). Empty when the file cannot be read or parsed:
/// loading the configuration has already reported that.
pub fn inline_in_config(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(table) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    walk(&toml::Value::Table(table), String::new(), &mut keys);
    keys
}

fn walk(value: &toml::Value, at: String, keys: &mut Vec<String>) {
    let join = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    match value {
        toml::Value::Table(table) => {
            for (key, inner) in table {
                if let toml::Value::String(text) = inner
                    && is_secret_key(key)
                    && !text.is_empty()
                    && !text.contains("${")
                {
                    keys.push(join(key));
                } else {
                    walk(inner, join(key), keys);
                }
            }
        }
        toml::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                walk(item, join(&index.to_string()), keys);
            }
        }
        _ => {}
    }
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key == "token"
        || key == "api_key"
        || key == "password"
        || key.ends_with("_secret")
        || key == "secret"
}

/// Inline secrets as a finding (the keys, never the values).
pub fn inline_finding(path: &Path, keys: &[String]) -> Option<Finding> {
    (!keys.is_empty()).then(|| {
        finding(
            "secret.inline_in_config",
            format!("{} holds {} in clear", path.display(), keys.join(", ")),
            "write `${VAR}` instead and set the variable in the service's environment file (systemd EnvironmentFile=, mode 0600)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(found: &[Finding]) -> Vec<&str> {
        found.iter().map(|f| f.id.as_str()).collect()
    }

    const GOOD: &str = "q9Zp3xL0vT7mKc2RwYb8NsHd4JfGa6Ue";

    #[test]
    fn a_generated_secret_passes_and_guessable_ones_do_not() {
        assert_eq!(weakness(GOOD), None);
        assert!(weakness("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").is_some());
        assert!(weakness("changeme-changeme-password-secret").is_some());
        assert!(weakness("abcdefghijklmnopqrstuvwxyz0123456789").is_some());
        assert!(weakness("ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210").is_some());
    }

    #[test]
    fn short_and_weak_apply_to_own_secrets_only() {
        let found = check(
            &[
                Candidate::own("auth.token", Secret::new("short")),
                Candidate::foreign("provider openai", Secret::new("sk-1")),
                Candidate::own("auth.jwt_secret", Secret::new(GOOD)),
            ],
            &[],
        );
        assert_eq!(ids(&found), ["secret.short", "secret.weak"]);
        assert!(found.iter().all(|f| f.evidence.starts_with("auth.token")));
        assert!(found.iter().all(|f| !f.evidence.contains("short ")));
    }

    #[test]
    fn reuse_and_token_equality_name_the_places_never_the_secret() {
        let found = check(
            &[
                Candidate::foreign("provider openai", Secret::new(GOOD)),
                Candidate::own("channel alerts", Secret::new(GOOD)),
            ],
            &[("provider openai".into(), "tok123".into())],
        );
        assert_eq!(ids(&found), ["secret.reused", "secret.equals_token"]);
        assert!(
            found[0]
                .evidence
                .contains("provider openai and channel alerts")
        );
        assert!(found[1].fix.contains("revoke-token tok123"));
        assert!(
            found
                .iter()
                .all(|f| !f.evidence.contains(GOOD) && !f.fix.contains(GOOD))
        );
    }

    #[test]
    fn inline_secrets_in_the_file_are_named_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[auth]\ntoken = \"abc\"\njwt_secret = \"${JWT}\"\n\
             [[providers]]\nname = \"o\"\napi_key = \"sk-live\"\n",
        )
        .unwrap();
        assert_eq!(
            inline_in_config(&path),
            ["auth.token", "providers.0.api_key"]
        );
        let f = inline_finding(&path, &inline_in_config(&path)).unwrap();
        assert!(!f.evidence.contains("sk-live"));
        std::fs::write(&path, "[auth]\njwt_secret = \"${JWT}\"\n").unwrap();
        assert!(inline_in_config(&path).is_empty());
        assert!(inline_finding(&path, &[]).is_none());
    }
}
