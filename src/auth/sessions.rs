//! Sessions: access tokens, refresh tokens that rotate on every use, and logout.
//!
//! A login starts a *family*. Each refresh token may be used once: using it marks it
//! spent and hands out a new pair in the same family. Presenting a spent token means it
//! was stolen (or raced); the whole family is revoked and the caller is told so, to be
//! audited. Two refreshes racing with the same token are treated the same way: exactly
//! one compare-and-swap can win, and the loser revokes the family. Refresh tokens carry
//! the account's epoch, so a password change, disable or removal ends them too. Logout
//! (with the refresh token, the access token, or both) revokes the whole family and
//! denies the access token's `jti` until it would have expired.
//!
//! An access token is only as good as its login: every check asks whether its family
//! still stands, so a logout or a detected reuse ends the access tokens of that login at
//! once, not when they expire. The answer is cached in memory (the check stays within
//! microseconds); a revocation writes the store first and then the cache, under the
//! lock that fills the cache, so a stale "alive" can never be cached after it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::auth::jwt::{Audience, Claims, Jwt, JwtError};
use crate::auth::opaque;
use crate::auth::scopes::Scopes;
use crate::auth::users::{AccountError, AccountStanding, Accounts, UserRecord};
use crate::clock::{SharedClock, rfc3339};
use crate::ids::random_id;
use crate::secret::Secret;
use crate::store::{Store, StoreError, Tree, TreeName};

pub const REFRESH_PREFIX: &str = "aisr";
/// The [`Claims::sid`] prefix of tokens that belong to a login session.
pub const FAMILY_SID: &str = "family:";
/// Families whose state is cached; past this the cache starts over from the store.
const MAX_CACHED_FAMILIES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the refresh token is invalid or expired")]
    InvalidRefresh,
    #[error("a refresh token was used twice; every session of this login was ended")]
    Reused { username: String, family: String },
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Jwt(#[from] JwtError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a login or refresh answers (OAuth 2.0 token response).
#[derive(Debug, Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RefreshRecord {
    id: String,
    family: String,
    username: String,
    user_id: String,
    epoch: u64,
    scopes: Scopes,
    secret_hash: String,
    created: String,
    expires: i64,
    used: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Family {
    username: String,
    user_id: String,
    created: String,
    revoked: bool,
}

/// The session service.
#[derive(Debug)]
pub struct Sessions {
    jwt: Arc<Jwt>,
    accounts: Accounts,
    refresh: Tree<String, RefreshRecord>,
    families: Tree<String, Family>,
    denied: Tree<String, i64>,
    /// Whether each recently checked family stands (see the module comment).
    alive: Mutex<HashMap<String, bool>>,
    store: Store,
    clock: SharedClock,
    /// Counts ended logins, so long-lived connections re-check their session at once.
    ended: tokio::sync::watch::Sender<u64>,
    access_ttl: i64,
    refresh_ttl: i64,
}

impl Sessions {
    pub fn open(
        store: &Store,
        jwt: Arc<Jwt>,
        accounts: Accounts,
        clock: SharedClock,
        access_ttl: std::time::Duration,
        refresh_ttl: std::time::Duration,
    ) -> Result<Sessions, SessionError> {
        Ok(Sessions {
            jwt,
            accounts,
            refresh: store.tree(TreeName::Sessions)?,
            families: store.tree(TreeName::Families)?,
            denied: store.tree(TreeName::Revoked)?,
            alive: Mutex::new(HashMap::new()),
            store: store.clone(),
            clock,
            ended: tokio::sync::watch::channel(0).0,
            access_ttl: i64::try_from(access_ttl.as_secs()).unwrap_or(3600),
            refresh_ttl: i64::try_from(refresh_ttl.as_secs()).unwrap_or(7 * 86_400),
        })
    }

    pub fn access_ttl(&self) -> i64 {
        self.access_ttl
    }

    /// Seconds a refresh token lives.
    pub fn refresh_ttl(&self) -> i64 {
        self.refresh_ttl
    }

    /// Starts a session for an authenticated user.
    pub fn login(&self, user: &UserRecord) -> Result<TokenPair, SessionError> {
        self.login_scoped(user, user.scopes)
    }

    /// Starts a session limited to `scopes` (those the user does not hold are dropped).
    pub fn login_scoped(
        &self,
        user: &UserRecord,
        scopes: Scopes,
    ) -> Result<TokenPair, SessionError> {
        let scopes = Scopes::from_iter(scopes.iter().filter(|s| user.scopes.allows(*s)));
        let family = random_id(16);
        self.families.insert(
            &family,
            &Family {
                username: user.username.clone(),
                user_id: user.id.clone(),
                created: rfc3339(self.clock.now()),
                revoked: false,
            },
        )?;
        self.pair(user, &family, scopes)
    }

    fn pair(
        &self,
        user: &UserRecord,
        family: &str,
        scopes: Scopes,
    ) -> Result<TokenPair, SessionError> {
        let (access, _) = self.jwt.issue_bound(
            Audience::Session,
            &user.username,
            &user.id,
            user.epoch,
            scopes,
            self.access_ttl,
            Some(format!("{FAMILY_SID}{family}")),
        )?;
        let minted = opaque::mint(REFRESH_PREFIX);
        let record = RefreshRecord {
            id: minted.id.clone(),
            family: family.to_string(),
            username: user.username.clone(),
            user_id: user.id.clone(),
            epoch: user.epoch,
            scopes,
            secret_hash: minted.secret_hash,
            created: rfc3339(self.clock.now()),
            expires: self.clock.now().unix_timestamp() + self.refresh_ttl,
            used: false,
        };
        self.refresh.insert(&record.id, &record)?;
        self.store.sync()?;
        Ok(TokenPair {
            access_token: access,
            refresh_token: minted.plaintext.expose().to_string(),
            token_type: "Bearer",
            expires_in: self.access_ttl,
        })
    }

    /// Exchanges a refresh token for a new pair, spending it.
    pub fn refresh(&self, token: &Secret) -> Result<(TokenPair, UserRecord), SessionError> {
        let (id, secret) =
            opaque::parse(REFRESH_PREFIX, token.expose()).ok_or(SessionError::InvalidRefresh)?;
        let record = self
            .refresh
            .get(&id.to_string())?
            .ok_or(SessionError::InvalidRefresh)?;
        if !opaque::matches(secret, &record.secret_hash) {
            return Err(SessionError::InvalidRefresh);
        }
        let family = self
            .families
            .get(&record.family)?
            .ok_or(SessionError::InvalidRefresh)?;
        if family.revoked {
            return Err(SessionError::InvalidRefresh);
        }
        if record.used {
            self.revoke_family(&record.family)?;
            return Err(SessionError::Reused {
                username: record.username,
                family: record.family,
            });
        }
        if record.expires <= self.clock.now().unix_timestamp() {
            return Err(SessionError::InvalidRefresh);
        }
        let user = self
            .accounts
            .get(&record.username)?
            .ok_or(SessionError::InvalidRefresh)?;
        if user.id != record.user_id || user.epoch != record.epoch || user.disabled {
            return Err(SessionError::InvalidRefresh);
        }
        let spent = RefreshRecord {
            used: true,
            ..record.clone()
        };
        if !self.refresh.compare_and_swap(&record.id, &record, &spent)? {
            self.revoke_family(&record.family)?;
            return Err(SessionError::Reused {
                username: record.username,
                family: record.family,
            });
        }
        let scopes = Scopes::from_iter(record.scopes.iter().filter(|s| user.scopes.allows(*s)));
        let pair = self.pair(&user, &record.family, scopes)?;
        Ok((pair, user))
    }

    fn revoke_family(&self, family: &str) -> Result<(), SessionError> {
        let revoked = self.families.update(&family.to_string(), |record| {
            Ok::<_, SessionError>((!record.revoked).then(|| Family {
                revoked: true,
                ..record.clone()
            }))
        })?;
        if revoked.is_some() {
            self.store.sync()?;
        }
        self.lock_alive().insert(family.to_string(), false);
        self.ended
            .send_modify(|count| *count = count.wrapping_add(1));
        Ok(())
    }

    /// Changes whenever a login ends (logout, a revoked family).
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.ended.subscribe()
    }

    fn lock_alive(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.alive.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the login a refresh token or an access token belongs to: its whole family,
    /// so the refresh token dies with the access token. Unknown tokens are ignored, so
    /// logout always succeeds from the client's point of view.
    pub fn logout(
        &self,
        refresh: Option<&Secret>,
        access: Option<&Claims>,
    ) -> Result<Option<String>, SessionError> {
        let mut username = None;
        if let Some((id, secret)) = refresh.and_then(|t| opaque::parse(REFRESH_PREFIX, t.expose()))
            && let Some(record) = self.refresh.get(&id.to_string())?
            && opaque::matches(secret, &record.secret_hash)
        {
            self.revoke_family(&record.family)?;
            username = Some(record.username);
        }
        if let Some(claims) = access {
            if let Some(family) = claims
                .sid
                .as_deref()
                .and_then(|sid| sid.strip_prefix(FAMILY_SID))
            {
                self.revoke_family(family)?;
            }
            self.denied.insert(&claims.jti, &claims.exp)?;
            self.store.sync()?;
            self.ended
                .send_modify(|count| *count = count.wrapping_add(1));
            username.get_or_insert(claims.sub.clone());
        }
        Ok(username)
    }

    /// Verifies an access token and that its account still stands behind it.
    pub fn check_access(&self, token: &str) -> Result<(Claims, AccountStanding), SessionError> {
        let claims = self.jwt.verify(token, Audience::Session)?;
        if self.denied.get(&claims.jti)?.is_some() {
            return Err(SessionError::Jwt(JwtError::Invalid(
                "the session has ended".into(),
            )));
        }
        let user = self
            .accounts
            .standing(&claims.sub)?
            .ok_or(SessionError::InvalidRefresh)?;
        if user.id != claims.uid || user.epoch != claims.epoch || user.disabled {
            return Err(SessionError::Jwt(JwtError::Invalid(
                "the account's credentials were revoked".into(),
            )));
        }
        // Every session token belongs to a login; one that names none is not ours.
        let family = claims
            .sid
            .as_deref()
            .and_then(|sid| sid.strip_prefix(FAMILY_SID))
            .unwrap_or_default();
        if !self.family_alive(family)? {
            return Err(SessionError::Jwt(JwtError::Invalid(
                "the login this token belongs to has ended".into(),
            )));
        }
        Ok((claims, user))
    }

    /// Whether the login session `family` still stands (not logged out, not revoked).
    pub fn family_alive(&self, family: &str) -> Result<bool, SessionError> {
        if let Some(alive) = self.lock_alive().get(family) {
            return Ok(*alive);
        }
        // Read the store under the lock, so a revocation cannot slip in between the
        // read and the cache fill and leave "alive" cached after it.
        let mut cache = self.lock_alive();
        let alive = self
            .families
            .get(&family.to_string())?
            .is_some_and(|record| !record.revoked);
        if cache.len() >= MAX_CACHED_FAMILIES {
            cache.clear();
        }
        cache.insert(family.to_string(), alive);
        Ok(alive)
    }

    /// Spends a one-time token's `jti` until `exp`; false if it was spent before.
    pub fn spend_once(&self, jti: &str, exp: i64) -> Result<bool, SessionError> {
        let fresh = self.denied.insert_new(&jti.to_string(), &exp)?;
        if fresh {
            self.store.sync()?;
        }
        Ok(fresh)
    }

    /// Drops denylist entries and spent or expired refresh records past their expiry.
    pub fn prune(&self) -> Result<usize, SessionError> {
        let now = self.clock.now().unix_timestamp();
        let mut removed = 0;
        let expired: Vec<String> = self
            .denied
            .iter_from(None)
            .filter_map(Result::ok)
            .filter(|(_, exp)| *exp <= now)
            .map(|(jti, _)| jti)
            .collect();
        for jti in expired {
            removed += usize::from(self.denied.remove(&jti)?);
        }
        let stale: Vec<String> = self
            .refresh
            .iter_from(None)
            .filter_map(Result::ok)
            .filter(|(_, r)| r.expires <= now)
            .map(|(id, _)| id)
            .collect();
        for id in stale {
            removed += usize::from(self.refresh.remove(&id)?);
        }
        self.store.sync()?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing;
    use crate::clock::ManualClock;

    const PW: &str = "walrus cinnamon lantern quietly";

    fn fixture() -> (testing::Fixture, Sessions, Accounts, ManualClock) {
        let fixture = testing::fixture("");
        let jwt = Arc::new(
            Jwt::open(
                &fixture.store,
                fixture.secrets.clone(),
                None,
                fixture.shared.clone(),
            )
            .unwrap(),
        );
        let sessions = Sessions::open(
            &fixture.store,
            jwt,
            fixture.accounts.clone(),
            fixture.shared.clone(),
            std::time::Duration::from_secs(3600),
            std::time::Duration::from_secs(7 * 86_400),
        )
        .unwrap();
        let (accounts, clock) = (fixture.accounts.clone(), fixture.clock.clone());
        accounts
            .create("alice", &Secret::new(PW), Scopes::all())
            .unwrap();
        (fixture, sessions, accounts, clock)
    }

    #[test]
    fn refresh_rotates_and_reuse_revokes_the_family() {
        let (_dir, sessions, accounts, _) = fixture();
        let user = accounts.get("alice").unwrap().unwrap();
        let first = sessions.login(&user).unwrap();
        assert_eq!(first.token_type, "Bearer");
        assert!(first.refresh_token.starts_with("aisr_"));
        let (second, _) = sessions
            .refresh(&Secret::new(first.refresh_token.clone()))
            .unwrap();
        assert_ne!(second.refresh_token, first.refresh_token);
        // Replaying the spent token revokes the family: the newer token dies too.
        assert!(matches!(
            sessions.refresh(&Secret::new(first.refresh_token)),
            Err(SessionError::Reused { .. })
        ));
        assert!(matches!(
            sessions.refresh(&Secret::new(second.refresh_token)),
            Err(SessionError::InvalidRefresh)
        ));
        // Another login is unaffected.
        let other = sessions.login(&user).unwrap();
        assert!(sessions.refresh(&Secret::new(other.refresh_token)).is_ok());
    }

    #[test]
    fn reuse_and_logout_end_every_access_token_of_the_login() {
        let (_dir, sessions, accounts, _) = fixture();
        let user = accounts.get("alice").unwrap().unwrap();
        let first = sessions.login(&user).unwrap();
        let (second, _) = sessions
            .refresh(&Secret::new(first.refresh_token.clone()))
            .unwrap();
        let other = sessions.login(&user).unwrap();
        assert!(sessions.check_access(&second.access_token).is_ok());
        assert!(matches!(
            sessions.refresh(&Secret::new(first.refresh_token)),
            Err(SessionError::Reused { .. })
        ));
        // Both access tokens of the revoked login die at once, not in an hour.
        assert!(sessions.check_access(&first.access_token).is_err());
        assert!(sessions.check_access(&second.access_token).is_err());
        assert!(sessions.check_access(&other.access_token).is_ok());

        // Logout with only the access token ends the whole login, refresh token too.
        let (claims, _) = sessions.check_access(&other.access_token).unwrap();
        sessions.logout(None, Some(&claims)).unwrap();
        assert!(sessions.check_access(&other.access_token).is_err());
        assert!(matches!(
            sessions.refresh(&Secret::new(other.refresh_token)),
            Err(SessionError::InvalidRefresh)
        ));
        // A session token that names no login is refused.
        let (unbound, _) = sessions
            .jwt
            .issue(
                Audience::Session,
                "alice",
                &user.id,
                user.epoch,
                user.scopes,
                60,
            )
            .unwrap();
        assert!(sessions.check_access(&unbound).is_err());
    }

    #[test]
    fn racing_refreshes_let_exactly_one_win() {
        let (_dir, sessions, accounts, _) = fixture();
        let user = accounts.get("alice").unwrap().unwrap();
        let pair = sessions.login(&user).unwrap();
        let sessions = Arc::new(sessions);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let sessions = sessions.clone();
                let token = pair.refresh_token.clone();
                std::thread::spawn(move || sessions.refresh(&Secret::new(token)).is_ok())
            })
            .collect();
        let wins = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(wins, 1, "{wins} refreshes won with one token");
    }

    #[test]
    fn logout_ends_refresh_and_access_and_password_change_ends_everything() {
        let (_dir, sessions, accounts, clock) = fixture();
        let user = accounts.get("alice").unwrap().unwrap();
        let pair = sessions.login(&user).unwrap();
        let (claims, _) = sessions.check_access(&pair.access_token).unwrap();
        sessions
            .logout(
                Some(&Secret::new(pair.refresh_token.clone())),
                Some(&claims),
            )
            .unwrap();
        assert!(sessions.check_access(&pair.access_token).is_err());
        assert!(sessions.refresh(&Secret::new(pair.refresh_token)).is_err());

        let pair = sessions.login(&user).unwrap();
        accounts
            .set_password("alice", &Secret::new("plinth-ocarina-sleet-mural"))
            .unwrap();
        assert!(sessions.check_access(&pair.access_token).is_err());
        assert!(sessions.refresh(&Secret::new(pair.refresh_token)).is_err());

        let user = accounts.get("alice").unwrap().unwrap();
        let pair = sessions.login(&user).unwrap();
        clock.advance(time::Duration::days(8));
        assert!(matches!(
            sessions.refresh(&Secret::new(pair.refresh_token)),
            Err(SessionError::InvalidRefresh)
        ));
        assert!(sessions.prune().unwrap() >= 1);
    }

    #[test]
    fn malformed_refresh_tokens_are_refused() {
        let (_dir, sessions, _, _) = fixture();
        for bad in [
            "",
            "aisr_",
            "aisp_0123456789abcdef_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "aisr_0123456789abcdef_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ] {
            assert!(
                matches!(
                    sessions.refresh(&Secret::new(bad)),
                    Err(SessionError::InvalidRefresh)
                ),
                "{bad}"
            );
        }
    }
}
