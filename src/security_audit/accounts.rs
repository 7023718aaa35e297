//! The checks on credentials that people hold: API tokens that never expire, admin
//! tokens nobody has used for 90 days, and accounts that have not logged in for 90
//! days. It reads the records it is given; it never revokes or disables anything.

use crate::auth::scopes::Scope;
use crate::auth::tokens::TokenRecord;

use super::catalog::finding;
use super::findings::Finding;

/// How long unused admin tokens and accounts without a login may sit (90 days).
pub const STALE_AFTER_SECS: i64 = 90 * 86_400;

/// What the audit needs of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFacts {
    pub username: String,
    pub disabled: bool,
    /// Unix seconds.
    pub created: Option<i64>,
    /// Unix seconds of the last password login, if one was recorded.
    pub last_login: Option<i64>,
}

/// Unix seconds of an RFC 3339 time, as records store it.
pub fn unix_of(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

fn days(secs: i64) -> i64 {
    secs / 86_400
}

/// Findings for the live tokens among `tokens` at `now`.
pub fn tokens(tokens: &[TokenRecord], now: i64) -> Vec<Finding> {
    let mut found = Vec::new();
    for token in tokens {
        if token.expires.is_some_and(|at| at <= now) {
            continue;
        }
        let who = format!(
            "token {} ({}) of {}, scopes {}",
            token.name, token.id, token.owner, token.scopes
        );
        if token.expires.is_none() {
            found.push(finding(
                "token.no_expiry",
                format!("{who}, never expires"),
                format!(
                    "make a replacement with `aisopod auth create-token --expires 90d`, move its users over, then `aisopod auth revoke-token {}`",
                    token.id
                ),
            ));
        }
        if token.scopes.allows(Scope::Admin) {
            let since = token.last_used.or_else(|| unix_of(&token.created));
            if let Some(since) = since
                && now - since >= STALE_AFTER_SECS
            {
                let what = if token.last_used.is_some() {
                    "last used"
                } else {
                    "never used, made"
                };
                found.push(finding(
                    "token.admin_unused",
                    format!("{who}, {what} {} days ago", days(now - since)),
                    format!(
                        "revoke it if nothing needs it: `aisopod auth revoke-token {}`",
                        token.id
                    ),
                ));
            }
        }
    }
    found
}

/// Findings for the enabled accounts among `accounts` at `now`.
pub fn accounts(accounts: &[AccountFacts], now: i64) -> Vec<Finding> {
    let mut found = Vec::new();
    for account in accounts.iter().filter(|a| !a.disabled) {
        let Some(since) = account.last_login.or(account.created) else {
            continue;
        };
        if now - since >= STALE_AFTER_SECS {
            let what = if account.last_login.is_some() {
                "last logged in"
            } else {
                "has never logged in; made"
            };
            found.push(finding(
                "account.inactive",
                format!(
                    "account {} {what} {} days ago",
                    account.username,
                    days(now - since)
                ),
                format!(
                    "disable it if it is no longer needed: `aisopod user disable {}`",
                    account.username
                ),
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 2_000_000_000;
    const DAY: i64 = 86_400;

    fn token(id: &str, scopes: &str, expires: Option<i64>, last_used: Option<i64>) -> TokenRecord {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": format!("n-{id}"), "owner": "owner", "owner_id": "u1",
            "scopes": scopes.split(',').collect::<Vec<_>>(), "created": "2033-01-01T00:00:00Z", "created_by": "console",
            "expires": expires, "last_used": last_used
        }))
        .unwrap()
    }

    fn ids(found: &[Finding]) -> Vec<&str> {
        found.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn tokens_without_expiry_and_idle_admin_tokens_are_found() {
        let found = tokens(
            &[
                token("fresh", "admin", Some(NOW + DAY), Some(NOW - DAY)),
                token("forever", "chat:read", None, Some(NOW)),
                token("idle", "admin", Some(NOW + DAY), Some(NOW - 91 * DAY)),
                token("expired", "admin", Some(NOW - 1), None),
            ],
            NOW,
        );
        assert_eq!(ids(&found), ["token.no_expiry", "token.admin_unused"]);
        assert!(found[0].evidence.contains("(forever)"));
        assert!(found[1].evidence.contains("last used 91 days ago"));
        assert!(found[1].fix.contains("revoke-token idle"));
    }

    #[test]
    fn a_never_used_admin_token_counts_from_its_creation() {
        let created = unix_of("2033-01-01T00:00:00Z").unwrap();
        let young = tokens(
            &[token("t", "admin", Some(NOW * 2), None)],
            created + 89 * DAY,
        );
        assert!(young.is_empty());
        let old = tokens(
            &[token("t", "admin", Some(NOW * 2), None)],
            created + 90 * DAY,
        );
        assert_eq!(ids(&old), ["token.admin_unused"]);
        assert!(old[0].evidence.contains("never used"));
    }

    #[test]
    fn accounts_without_a_recent_login_are_found_unless_disabled() {
        let facts = |name: &str, disabled, created, last_login| AccountFacts {
            username: name.into(),
            disabled,
            created: Some(created),
            last_login,
        };
        let found = accounts(
            &[
                facts("active", false, NOW - 400 * DAY, Some(NOW - DAY)),
                facts("gone", false, NOW - 400 * DAY, Some(NOW - 120 * DAY)),
                facts("never", false, NOW - 95 * DAY, None),
                facts("new", false, NOW - DAY, None),
                facts("off", true, NOW - 400 * DAY, None),
            ],
            NOW,
        );
        assert_eq!(ids(&found), ["account.inactive", "account.inactive"]);
        assert!(
            found[0]
                .evidence
                .contains("gone last logged in 120 days ago")
        );
        assert!(found[1].evidence.contains("never has never logged in"));
    }
}
