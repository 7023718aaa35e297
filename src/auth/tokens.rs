//! API tokens: long-lived, scoped credentials for programs (`aisp_<id>_<secret>`).
//!
//! A token belongs to the account that made it and can never carry a scope that account
//! lacks. It is shown once at creation; the store keeps only the SHA-256 of its secret.
//! Checking one is a hash and two lookups (token, owner), never argon2. A token dies with
//! its owner: removed or disabled accounts' tokens are refused, and a token made before
//! its account was last disabled stays dead when the account is enabled again (each
//! token carries the owner's `disablements` count from when it was made). Rotation
//! issues a new token with the same name, scopes and expiry and lets the old one live
//! for a grace period, never past its own expiry.
//!
//! A token may also carry [`TokenLimits`] (requests a minute, model tokens a day), set
//! when it is made and changed later by an administrator, or tightened by its owner.
//! This module stores and validates them; `gateway::quota` enforces them. A record
//! stored before limits existed loads as unlimited.

use serde::{Deserialize, Serialize};

use crate::auth::opaque;
use crate::auth::scopes::Scopes;
use crate::auth::users::{AccountError, Accounts, UserRecord};
use crate::clock::{SharedClock, rfc3339};
use crate::secret::Secret;
use crate::store::{Store, StoreError, Tree, TreeName};

pub const TOKEN_PREFIX: &str = "aisp";
/// `last_used` is written at most this often per token, so checks stay read-only.
const LAST_USED_GRANULARITY: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the API token is invalid, expired or revoked")]
    Invalid,
    #[error("a token cannot be given scopes its creator lacks: {0}")]
    ScopeNotHeld(String),
    #[error("invalid token name {0:?}: use 1-64 letters, digits, '.', '_' or '-'")]
    InvalidName(String),
    #[error("an active token named {0} already exists; revoke or rotate it")]
    NameTaken(String),
    #[error("no token {0}")]
    NotFound(String),
    #[error("{field} {problem}")]
    InvalidLimit {
        field: &'static str,
        problem: String,
    },
    #[error("token {0} is not yours; only an administrator may change another's token")]
    NotYours(String),
    #[error("only an administrator may raise or lift {field}; its owner may only lower it")]
    OnlyAdminLoosens { field: &'static str },
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stored token (without its secret, which is never stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub owner_id: String,
    pub scopes: Scopes,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    secret_hash: String,
    pub created: String,
    pub created_by: String,
    pub expires: Option<i64>,
    pub last_used: Option<i64>,
    /// The owner's [`UserRecord::disablements`] when the token was made.
    #[serde(default)]
    pub owner_disablements: u64,
    /// Absent in records stored before limits existed: unlimited.
    #[serde(flatten, default)]
    pub limits: TokenLimits,
}

/// Most requests a minute a limit may name (far above any gateway's own rate limit).
pub const MAX_REQUESTS_PER_MINUTE: u32 = 100_000;
/// Most model tokens a day a limit may name.
pub const MAX_TOKENS_PER_DAY: u64 = 1_000_000_000_000;

/// Optional limits on what one token may use; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenLimits {
    /// Requests a minute to the routes that call a model: a burst of this many, then
    /// one each `60 / n` seconds.
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// Prompt plus completion tokens in one UTC day, as usage records them.
    #[serde(default)]
    pub tokens_per_day: Option<u64>,
}

impl TokenLimits {
    pub fn is_unlimited(&self) -> bool {
        self.requests_per_minute.is_none() && self.tokens_per_day.is_none()
    }

    /// Refuses a limit of 0 or beyond the maximum, naming the field.
    pub fn validate(&self) -> Result<(), TokenError> {
        fn check(field: &'static str, value: Option<u64>, max: u64) -> Result<(), TokenError> {
            match value {
                Some(n) if n == 0 || n > max => Err(TokenError::InvalidLimit {
                    field,
                    problem: format!(
                        "must be between 1 and {max} (null or absent means no limit), not {n}"
                    ),
                }),
                _ => Ok(()),
            }
        }
        check(
            "requests_per_minute",
            self.requests_per_minute.map(u64::from),
            u64::from(MAX_REQUESTS_PER_MINUTE),
        )?;
        check("tokens_per_day", self.tokens_per_day, MAX_TOKENS_PER_DAY)
    }

    /// These limits after `change`.
    pub fn changed(self, change: LimitsChange) -> TokenLimits {
        TokenLimits {
            requests_per_minute: change.requests_per_minute.apply(self.requests_per_minute),
            tokens_per_day: change.tokens_per_day.apply(self.tokens_per_day),
        }
    }

    /// The first field that `new` raises or lifts compared with these limits.
    fn loosened_by(&self, new: &TokenLimits) -> Option<&'static str> {
        fn looser<T: Ord>(old: Option<T>, new: Option<T>) -> bool {
            match (old, new) {
                (Some(_), None) => true,
                (Some(old), Some(new)) => new > old,
                (None, _) => false,
            }
        }
        if looser(self.requests_per_minute, new.requests_per_minute) {
            Some("requests_per_minute")
        } else if looser(self.tokens_per_day, new.tokens_per_day) {
            Some("tokens_per_day")
        } else {
            None
        }
    }
}

/// A change to one limit: keep it (the field is absent), set it (a number) or lift it
/// (`null`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LimitChange<T> {
    #[default]
    Keep,
    Set(T),
    Lift,
}

impl<T> LimitChange<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, LimitChange::Keep)
    }

    fn apply(self, old: Option<T>) -> Option<T> {
        match self {
            LimitChange::Keep => old,
            LimitChange::Set(new) => Some(new),
            LimitChange::Lift => None,
        }
    }
}

impl<T: Serialize> Serialize for LimitChange<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LimitChange::Set(value) => s.serialize_some(value),
            LimitChange::Keep | LimitChange::Lift => s.serialize_none(),
        }
    }
}

/// Present fields only: an absent one is [`LimitChange::Keep`] through `#[serde(default)]`.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for LimitChange<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(d)?.map_or(LimitChange::Lift, LimitChange::Set))
    }
}

/// What a change of limits asks for, field by field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsChange {
    #[serde(default, skip_serializing_if = "LimitChange::is_keep")]
    pub requests_per_minute: LimitChange<u32>,
    #[serde(default, skip_serializing_if = "LimitChange::is_keep")]
    pub tokens_per_day: LimitChange<u64>,
}

/// How long a new token lives and what it may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenTerms {
    /// Seconds from now; `None` lives until revoked.
    pub ttl_secs: Option<i64>,
    pub limits: TokenLimits,
}

impl TokenTerms {
    /// Unlimited, ending after `ttl_secs` (or never).
    pub fn expiring(ttl_secs: Option<i64>) -> TokenTerms {
        TokenTerms {
            ttl_secs,
            limits: TokenLimits::default(),
        }
    }
}

/// Who changes a token's limits.
#[derive(Debug, Clone, Copy)]
pub enum LimitsChanger<'a> {
    /// An administrator: any change.
    Admin,
    /// The account of this name: only its own tokens, and only tighter.
    Owner(&'a str),
}

impl TokenRecord {
    /// The record as listed: everything but the secret hash.
    pub fn listed(&self) -> TokenRecord {
        TokenRecord {
            secret_hash: String::new(),
            ..self.clone()
        }
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The token service.
#[derive(Debug)]
pub struct ApiTokens {
    tree: Tree<String, TokenRecord>,
    accounts: Accounts,
    store: Store,
    clock: SharedClock,
    /// Counts revocations, so long-lived connections re-check their token at once.
    revoked: tokio::sync::watch::Sender<u64>,
}

impl ApiTokens {
    pub fn open(
        store: &Store,
        accounts: Accounts,
        clock: SharedClock,
    ) -> Result<ApiTokens, TokenError> {
        Ok(ApiTokens {
            tree: store.tree(TreeName::Tokens)?,
            accounts,
            store: store.clone(),
            clock,
            revoked: tokio::sync::watch::channel(0).0,
        })
    }

    /// Changes whenever a token is revoked.
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revoked.subscribe()
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// Tokens that still work: unexpired, and their owner standing behind them.
    fn active(&self) -> Result<Vec<TokenRecord>, TokenError> {
        let now = self.now();
        let mut active = Vec::new();
        for token in self.list()? {
            if self.owner_if_usable(&token, now)?.is_some() {
                active.push(token);
            }
        }
        Ok(active)
    }

    /// The owner of `record` if the token is usable at `now`: unexpired, its owner the
    /// same account, enabled, and not disabled since the token was made.
    fn owner_if_usable(
        &self,
        record: &TokenRecord,
        now: i64,
    ) -> Result<Option<UserRecord>, TokenError> {
        if record.expires.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        Ok(self.accounts.get(&record.owner)?.filter(|owner| {
            owner.id == record.owner_id
                && !owner.disabled
                && owner.disablements == record.owner_disablements
        }))
    }

    /// Makes a token owned by `owner`; `holder_scopes` are the scopes of whoever asks
    /// (the owner's session, or an admin), and bound what the token may carry.
    pub fn create(
        &self,
        owner: &UserRecord,
        name: &str,
        scopes: Scopes,
        holder_scopes: Scopes,
        terms: TokenTerms,
        created_by: &str,
    ) -> Result<(Secret, TokenRecord), TokenError> {
        let TokenTerms { ttl_secs, limits } = terms;
        limits.validate()?;
        if !valid_name(name) {
            return Err(TokenError::InvalidName(name.chars().take(80).collect()));
        }
        let ceiling = Scopes::from_iter(owner.scopes.iter().filter(|s| holder_scopes.allows(*s)));
        if !Scopes::grantable_by(scopes, ceiling) || scopes.is_empty() {
            let missing: Vec<&str> = scopes
                .iter()
                .filter(|s| !ceiling.allows(*s))
                .map(|s| s.as_str())
                .collect();
            return Err(TokenError::ScopeNotHeld(missing.join(",")));
        }
        if self.active()?.iter().any(|t| t.name == name) {
            return Err(TokenError::NameTaken(name.to_string()));
        }
        self.insert(owner, name, scopes, ttl_secs, limits, created_by)
    }

    fn insert(
        &self,
        owner: &UserRecord,
        name: &str,
        scopes: Scopes,
        ttl_secs: Option<i64>,
        limits: TokenLimits,
        created_by: &str,
    ) -> Result<(Secret, TokenRecord), TokenError> {
        let minted = opaque::mint(TOKEN_PREFIX);
        let record = TokenRecord {
            id: minted.id.clone(),
            name: name.to_string(),
            owner: owner.username.clone(),
            owner_id: owner.id.clone(),
            scopes,
            secret_hash: minted.secret_hash,
            created: rfc3339(self.clock.now()),
            created_by: created_by.to_string(),
            expires: ttl_secs.map(|ttl| self.now() + ttl),
            last_used: None,
            owner_disablements: owner.disablements,
            limits,
        };
        self.tree.insert(&record.id, &record)?;
        self.store.sync()?;
        Ok((minted.plaintext, record.listed()))
    }

    /// Checks a presented token; the owner must still exist and be enabled.
    pub fn authenticate(&self, presented: &str) -> Result<(TokenRecord, UserRecord), TokenError> {
        let (id, secret) = opaque::parse(TOKEN_PREFIX, presented).ok_or(TokenError::Invalid)?;
        let record = self.tree.get(&id.to_string())?.ok_or(TokenError::Invalid)?;
        if !opaque::matches(secret, &record.secret_hash) {
            return Err(TokenError::Invalid);
        }
        let now = self.now();
        let owner = self
            .owner_if_usable(&record, now)?
            .ok_or(TokenError::Invalid)?;
        let stale = |r: &TokenRecord| r.last_used.is_none_or(|t| now - t >= LAST_USED_GRANULARITY);
        if stale(&record) {
            // Only the one field, on the record as stored now (a rotation may have cut
            // its expiry meanwhile). Not synced: losing a last-used time is harmless.
            let _ = self.tree.update(&record.id, |current| {
                Ok::<_, TokenError>(stale(current).then(|| TokenRecord {
                    last_used: Some(now),
                    ..current.clone()
                }))
            });
        }
        Ok((record.listed(), owner))
    }

    /// The stored token whose secret `presented` is, if any, found without touching its
    /// record (no last-used time is written): the security audit asks this of secrets
    /// that must never be tokens.
    pub fn identify(&self, presented: &str) -> Result<Option<TokenRecord>, TokenError> {
        let Some((id, secret)) = opaque::parse(TOKEN_PREFIX, presented) else {
            return Ok(None);
        };
        let Some(record) = self.tree.get(&id.to_string())? else {
            return Ok(None);
        };
        Ok(opaque::matches(secret, &record.secret_hash).then(|| record.listed()))
    }

    /// Whether `presented` is the plaintext of a stored API token, usable or not; like
    /// [`Self::identify`] it changes nothing.
    pub fn is_token(&self, presented: &str) -> Result<bool, TokenError> {
        Ok(self.identify(presented)?.is_some())
    }

    /// Whether the token `id` is still usable: not revoked, not expired, owner enabled.
    pub fn is_active(&self, id: &str) -> Result<bool, TokenError> {
        let Some(record) = self.tree.get(&id.to_string())? else {
            return Ok(false);
        };
        Ok(self.owner_if_usable(&record, self.now())?.is_some())
    }

    pub fn list(&self) -> Result<Vec<TokenRecord>, TokenError> {
        self.tree
            .iter_from(None)
            .map(|entry| entry.map(|(_, t)| t.listed()).map_err(TokenError::from))
            .collect()
    }

    pub fn revoke(&self, id: &str) -> Result<TokenRecord, TokenError> {
        let record = self
            .tree
            .get(&id.to_string())?
            .ok_or_else(|| TokenError::NotFound(id.to_string()))?;
        self.tree.remove(&record.id)?;
        self.store.sync()?;
        self.revoked
            .send_modify(|count| *count = count.wrapping_add(1));
        Ok(record.listed())
    }

    /// Issues a replacement for the active token named `name`, expiring when the old one
    /// would have; the old one stays valid for `grace_secs`, but never past its own
    /// expiry.
    pub fn rotate(
        &self,
        name: &str,
        grace_secs: i64,
        created_by: &str,
    ) -> Result<(Secret, TokenRecord), TokenError> {
        let now = self.now();
        let old = self
            .active()?
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| TokenError::NotFound(name.to_string()))?;
        let owner = self
            .owner_if_usable(&old, now)?
            .ok_or(TokenError::Invalid)?;
        let grace_end = now.saturating_add(grace_secs.max(0));
        let cut = self.tree.update(&old.id, |current| {
            let end = current.expires.map_or(grace_end, |e| e.min(grace_end));
            Ok::<_, TokenError>((current.expires != Some(end)).then(|| TokenRecord {
                expires: Some(end),
                ..current.clone()
            }))
        })?;
        if cut.is_none() {
            // Revoked while we looked.
            return Err(TokenError::NotFound(name.to_string()));
        }
        // The replacement ends when the old token would have: rotating is not renewing.
        let ttl = old.expires.map(|e| e - now);
        self.insert(&owner, name, old.scopes, ttl, old.limits, created_by)
    }

    /// The limits of token `id`; `None` when there is no such token.
    pub fn limits(&self, id: &str) -> Result<Option<TokenLimits>, TokenError> {
        Ok(self.tree.get(&id.to_string())?.map(|record| record.limits))
    }

    /// Changes the limits of token `id`. An owner may change only their own token, and
    /// only tighten it; whoever is refused learns nothing of other accounts' tokens.
    pub fn set_limits(
        &self,
        id: &str,
        change: LimitsChange,
        by: LimitsChanger<'_>,
    ) -> Result<TokenRecord, TokenError> {
        let not_yours = || TokenError::NotYours(id.chars().take(64).collect());
        let record = match self.tree.get(&id.to_string())? {
            Some(record) => record,
            None if matches!(by, LimitsChanger::Admin) => {
                return Err(TokenError::NotFound(id.to_string()));
            }
            None => return Err(not_yours()),
        };
        if let LimitsChanger::Owner(name) = by {
            let owner = self.accounts.get(name)?;
            if record.owner != name || owner.is_none_or(|o| o.id != record.owner_id) {
                return Err(not_yours());
            }
        }
        // Judged on the record as stored at the swap: a concurrent change cannot let an
        // owner's "tightening" loosen what an administrator just set.
        let updated = self.tree.update(&record.id, |current| {
            let limits = current.limits.changed(change);
            limits.validate()?;
            if let (LimitsChanger::Owner(_), Some(field)) =
                (by, current.limits.loosened_by(&limits))
            {
                return Err(TokenError::OnlyAdminLoosens { field });
            }
            Ok(Some(TokenRecord {
                limits,
                ..current.clone()
            }))
        })?;
        let updated = updated.ok_or_else(|| TokenError::NotFound(id.to_string()))?;
        self.store.sync()?;
        Ok(updated.listed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing;
    use crate::clock::ManualClock;

    fn fixture() -> (testing::Fixture, ApiTokens, Accounts, ManualClock) {
        let fixture = testing::fixture("");
        let (accounts, clock) = (fixture.accounts.clone(), fixture.clock.clone());
        let pw = Secret::new("walrus cinnamon lantern quietly");
        accounts.create("admin", &pw, Scopes::all()).unwrap();
        accounts
            .create(
                "carol",
                &pw,
                Scopes::parse_list("chat:read,chat:write").unwrap(),
            )
            .unwrap();
        let tokens =
            ApiTokens::open(&fixture.store, accounts.clone(), fixture.shared.clone()).unwrap();
        (fixture, tokens, accounts, clock)
    }

    #[test]
    fn tokens_authenticate_are_scoped_and_never_exceed_their_creator() {
        let (_dir, tokens, accounts, _) = fixture();
        let carol = accounts.get("carol").unwrap().unwrap();
        let read = Scopes::parse_list("chat:read").unwrap();
        let (secret, record) = tokens
            .create(
                &carol,
                "bot",
                read,
                carol.scopes,
                TokenTerms::expiring(None),
                "carol",
            )
            .unwrap();
        assert!(secret.expose().starts_with("aisp_"));
        let (checked, owner) = tokens.authenticate(secret.expose()).unwrap();
        assert_eq!(checked.id, record.id);
        assert_eq!(owner.username, "carol");
        assert_eq!(checked.scopes, read);
        let too_much = tokens.create(
            &carol,
            "root",
            Scopes::all(),
            carol.scopes,
            TokenTerms::expiring(None),
            "carol",
        );
        assert!(matches!(too_much, Err(TokenError::ScopeNotHeld(s)) if s == "admin"));
        assert!(matches!(
            tokens.create(
                &carol,
                "bot",
                read,
                carol.scopes,
                TokenTerms::expiring(None),
                "carol"
            ),
            Err(TokenError::NameTaken(_))
        ));
        assert!(matches!(
            tokens.create(
                &carol,
                "bad name",
                read,
                carol.scopes,
                TokenTerms::expiring(None),
                "carol"
            ),
            Err(TokenError::InvalidName(_))
        ));
        let listed = serde_json::to_string(&tokens.list().unwrap()).unwrap();
        assert!(!listed.contains("secret_hash") && !listed.contains(secret.expose()));
    }

    #[test]
    fn identify_names_the_token_of_a_secret_without_marking_it_used() {
        let (_dir, tokens, accounts, _) = fixture();
        let carol = accounts.get("carol").unwrap().unwrap();
        let read = Scopes::parse_list("chat:read").unwrap();
        let (secret, record) = tokens
            .create(
                &carol,
                "bot",
                read,
                carol.scopes,
                TokenTerms::expiring(None),
                "carol",
            )
            .unwrap();
        let found = tokens.identify(secret.expose()).unwrap().unwrap();
        assert_eq!(found.id, record.id);
        assert_eq!(found.last_used, None);
        assert_eq!(tokens.list().unwrap()[0].last_used, None);
        let mut wrong = secret.expose().to_string();
        let last = if wrong.ends_with('A') { "B" } else { "A" };
        wrong.replace_range(wrong.len() - 1.., last);
        assert!(tokens.identify(&wrong).unwrap().is_none());
        assert!(tokens.identify("sk-not-a-token").unwrap().is_none());
    }

    #[test]
    fn expiry_revocation_and_owner_removal_end_a_token() {
        let (_dir, tokens, accounts, clock) = fixture();
        let admin = accounts.get("admin").unwrap().unwrap();
        let carol = accounts.get("carol").unwrap().unwrap();
        let (short, _) = tokens
            .create(
                &carol,
                "short",
                carol.scopes,
                Scopes::all(),
                TokenTerms::expiring(Some(60)),
                "admin",
            )
            .unwrap();
        let (long, long_record) = tokens
            .create(
                &carol,
                "long",
                carol.scopes,
                Scopes::all(),
                TokenTerms::expiring(None),
                "admin",
            )
            .unwrap();
        clock.advance(time::Duration::seconds(61));
        assert!(matches!(
            tokens.authenticate(short.expose()),
            Err(TokenError::Invalid)
        ));
        assert!(tokens.authenticate(long.expose()).is_ok());
        accounts.set_disabled("carol", true).unwrap();
        assert!(tokens.authenticate(long.expose()).is_err());
        accounts.set_disabled("carol", false).unwrap();
        tokens.revoke(&long_record.id).unwrap();
        assert!(tokens.authenticate(long.expose()).is_err());
        let (own, _) = tokens
            .create(
                &admin,
                "ops",
                Scopes::all(),
                Scopes::all(),
                TokenTerms::expiring(None),
                "admin",
            )
            .unwrap();
        assert!(tokens.authenticate(own.expose()).is_ok());
        // A forged secret for a real id fails.
        let id = opaque::parse(TOKEN_PREFIX, own.expose()).unwrap().0;
        let forged = format!("aisp_{id}_{}", "A".repeat(43));
        assert!(tokens.authenticate(&forged).is_err());
    }

    #[test]
    fn tokens_stay_revoked_when_a_disabled_account_is_enabled_again() {
        let (_dir, tokens, accounts, _) = fixture();
        let carol = accounts.get("carol").unwrap().unwrap();
        let (old, old_record) = tokens
            .create(
                &carol,
                "ci",
                carol.scopes,
                carol.scopes,
                TokenTerms::expiring(None),
                "carol",
            )
            .unwrap();
        accounts.set_disabled("carol", true).unwrap();
        assert!(tokens.authenticate(old.expose()).is_err());
        accounts.set_disabled("carol", false).unwrap();
        assert!(matches!(
            tokens.authenticate(old.expose()),
            Err(TokenError::Invalid)
        ));
        assert!(!tokens.is_active(&old_record.id).unwrap());
        // Nor can the dead token be rotated back to life; its name is free again.
        assert!(matches!(
            tokens.rotate("ci", 60, "carol"),
            Err(TokenError::NotFound(_))
        ));
        let carol = accounts.get("carol").unwrap().unwrap();
        let (new, _) = tokens
            .create(
                &carol,
                "ci",
                carol.scopes,
                carol.scopes,
                TokenTerms::expiring(None),
                "carol",
            )
            .unwrap();
        assert!(tokens.authenticate(new.expose()).is_ok());
    }

    #[test]
    fn rotation_never_extends_a_token_beyond_its_own_expiry() {
        let (_dir, tokens, accounts, clock) = fixture();
        let carol = accounts.get("carol").unwrap().unwrap();
        let (old, _) = tokens
            .create(
                &carol,
                "ci",
                carol.scopes,
                carol.scopes,
                TokenTerms::expiring(Some(600)),
                "carol",
            )
            .unwrap();
        // A grace of an hour on a token with ten minutes left.
        let (new, record) = tokens.rotate("ci", 3600, "carol").unwrap();
        let old_end = 1_800_000_000 + 600;
        assert_eq!(
            record.expires,
            Some(old_end),
            "the replacement is no renewal"
        );
        clock.advance(time::Duration::seconds(599));
        assert!(tokens.authenticate(old.expose()).is_ok());
        assert!(tokens.authenticate(new.expose()).is_ok());
        clock.advance(time::Duration::seconds(1));
        assert!(tokens.authenticate(old.expose()).is_err());
        assert!(tokens.authenticate(new.expose()).is_err());
    }

    #[test]
    fn rotation_overlaps_for_the_grace_period() {
        let (_dir, tokens, accounts, clock) = fixture();
        let carol = accounts.get("carol").unwrap().unwrap();
        let (old, _) = tokens
            .create(
                &carol,
                "ci",
                carol.scopes,
                carol.scopes,
                TokenTerms::expiring(None),
                "carol",
            )
            .unwrap();
        let (new, record) = tokens.rotate("ci", 3600, "carol").unwrap();
        assert_eq!(record.name, "ci");
        assert!(tokens.authenticate(old.expose()).is_ok());
        assert!(tokens.authenticate(new.expose()).is_ok());
        clock.advance(time::Duration::seconds(3601));
        assert!(tokens.authenticate(old.expose()).is_err());
        assert!(tokens.authenticate(new.expose()).is_ok());
        assert!(matches!(
            tokens.rotate("nope", 60, "carol"),
            Err(TokenError::NotFound(_))
        ));
    }

    #[test]
    fn limits_are_validated_by_field_kept_by_rotation_and_only_admins_loosen_them() {
        let (_dir, tokens, accounts, _) = fixture();
        let carol = accounts.get("carol").unwrap().unwrap();
        let terms = |rpm, tpd| TokenTerms {
            ttl_secs: None,
            limits: TokenLimits {
                requests_per_minute: rpm,
                tokens_per_day: tpd,
            },
        };
        for (rpm, tpd, field) in [
            (Some(0), None, "requests_per_minute"),
            (
                Some(MAX_REQUESTS_PER_MINUTE + 1),
                None,
                "requests_per_minute",
            ),
            (None, Some(0), "tokens_per_day"),
        ] {
            match tokens.create(
                &carol,
                "bot",
                carol.scopes,
                carol.scopes,
                terms(rpm, tpd),
                "carol",
            ) {
                Err(err @ TokenError::InvalidLimit { .. }) => {
                    assert!(err.to_string().starts_with(field), "{err}")
                }
                other => panic!("{rpm:?} {tpd:?}: {other:?}"),
            }
        }
        assert!(tokens.list().unwrap().is_empty(), "nothing half-made");
        let (_, record) = tokens
            .create(
                &carol,
                "bot",
                carol.scopes,
                carol.scopes,
                terms(Some(60), None),
                "carol",
            )
            .unwrap();
        assert_eq!(record.limits.requests_per_minute, Some(60));
        let change = |rpm, tpd| LimitsChange {
            requests_per_minute: rpm,
            tokens_per_day: tpd,
        };
        let owner = LimitsChanger::Owner("carol");
        // The owner tightens, and sets a limit that was not there.
        let tighter = tokens
            .set_limits(
                &record.id,
                change(LimitChange::Set(10), LimitChange::Set(5000)),
                owner,
            )
            .unwrap();
        assert_eq!(
            tighter.limits,
            TokenLimits {
                requests_per_minute: Some(10),
                tokens_per_day: Some(5000)
            }
        );
        for (loosen, field) in [
            (
                change(LimitChange::Set(11), LimitChange::Keep),
                "requests_per_minute",
            ),
            (
                change(LimitChange::Keep, LimitChange::Lift),
                "tokens_per_day",
            ),
        ] {
            assert!(matches!(
                tokens.set_limits(&record.id, loosen, owner),
                Err(TokenError::OnlyAdminLoosens { field: f }) if f == field
            ));
        }
        assert!(matches!(
            tokens.set_limits(
                &record.id,
                change(LimitChange::Set(1), LimitChange::Keep),
                LimitsChanger::Owner("admin")
            ),
            Err(TokenError::NotYours(_))
        ));
        assert!(
            matches!(
                tokens.set_limits(
                    "nope",
                    change(LimitChange::Set(1), LimitChange::Keep),
                    owner
                ),
                Err(TokenError::NotYours(_))
            ),
            "an owner cannot tell a missing token from another's"
        );
        let lifted = tokens
            .set_limits(
                &record.id,
                change(LimitChange::Lift, LimitChange::Keep),
                LimitsChanger::Admin,
            )
            .unwrap();
        assert_eq!(lifted.limits.requests_per_minute, None);
        assert_eq!(lifted.limits.tokens_per_day, Some(5000));
        let (_, rotated) = tokens.rotate("bot", 60, "carol").unwrap();
        assert_eq!(rotated.limits, lifted.limits, "rotation keeps the limits");
        assert_eq!(tokens.limits(&rotated.id).unwrap(), Some(lifted.limits));
        // A record stored before limits existed loads as unlimited.
        let old: TokenRecord = serde_json::from_value(serde_json::json!({
            "id": "tok1", "name": "ci", "owner": "carol", "owner_id": "u1",
            "scopes": ["chat:read"], "created": "2026-01-01T00:00:00Z",
            "created_by": "console", "expires": null, "last_used": null
        }))
        .unwrap();
        assert!(old.limits.is_unlimited());
        let listed = serde_json::to_value(lifted).unwrap();
        assert_eq!(listed["requests_per_minute"], serde_json::Value::Null);
        assert_eq!(listed["tokens_per_day"], 5000);
    }
}
