//! User accounts: names, password hashes, scopes, disabling and login lockout.
//!
//! Usernames are ASCII only (lowercase letters, digits, `.`, `_`, `-`; 1–32, starting
//! with a letter or digit) and folded to lowercase. Unicode confusables (a Cyrillic `а`
//! that looks like a Latin `a`) are refused rather than normalized, because no folding
//! catches them all. Each account has an `epoch`: every credential issued to it carries
//! the epoch, and bumping it (password change, disable, removal) revokes them all at once.
//!
//! Failed logins are counted per account. After `lockout_threshold` failures in a row the
//! account is locked for `lockout_duration`, doubling with each further lockout (capped
//! at a day). An attacker can therefore keep an account locked, but never take it: the
//! owner ends a lockout at the console with `aisopod user unlock NAME`, which needs local
//! access to the device. This module never sees a password except to hand it to
//! `password`, and never logs one.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::password::{PasswordError, Passwords};
use crate::auth::scopes::Scopes;
use crate::clock::{SharedClock, rfc3339};
use crate::config::AuthConfig;
use crate::secret::Secret;
use crate::store::{Store, StoreError, Tree, TreeName};

const MAX_LOCKOUT_SECS: i64 = 86_400;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(
        "invalid username {0:?}: use 1-32 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    InvalidUsername(String),
    #[error("a user named {0} already exists")]
    Exists(String),
    #[error("no user named {0}")]
    NotFound(String),
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error(
        "this account is locked after repeated failed logins until {until}; the owner can run `aisopod user unlock` on the device"
    )]
    Locked { until: String },
    #[error("this account is disabled")]
    Disabled,
    #[error("refusing to remove or disable the last enabled administrator")]
    LastAdmin,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stored account. Never serialized to clients as is: see [`UserView`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub scopes: Scopes,
    pub disabled: bool,
    pub created: String,
    /// Bumped to revoke every credential issued to this account.
    pub epoch: u64,
    pub failed_logins: u32,
    pub lockouts: u32,
    pub locked_until: Option<i64>,
}

/// What clients and the CLI see of an account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub scopes: Scopes,
    pub disabled: bool,
    pub created: String,
    pub locked_until: Option<String>,
}

impl UserRecord {
    pub fn view(&self) -> UserView {
        UserView {
            id: self.id.clone(),
            username: self.username.clone(),
            scopes: self.scopes,
            disabled: self.disabled,
            created: self.created.clone(),
            locked_until: self
                .locked_until
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
                .map(rfc3339),
        }
    }
}

/// Folds a username to its stored form, refusing anything outside the allowed set.
pub fn normalize_username(name: &str) -> Result<String, AccountError> {
    let folded = name.trim().to_ascii_lowercase();
    let valid = (1..=32).contains(&folded.len())
        && folded
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && folded.starts_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(folded)
    } else {
        Err(AccountError::InvalidUsername(
            name.chars().take(64).collect(),
        ))
    }
}

/// Random hex identifier of `bytes` bytes.
pub fn random_id(bytes: usize) -> String {
    use ring::rand::SecureRandom;
    let mut buf = vec![0u8; bytes];
    // The system RNG does not fail on Linux once booted; a zero id would still be unique
    // enough to be caught by insert_new.
    let _ = ring::rand::SystemRandom::new().fill(&mut buf);
    hex::encode(buf)
}

/// The account service.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Store,
    users: std::sync::Arc<Tree<String, UserRecord>>,
    passwords: Passwords,
    clock: SharedClock,
    lockout_threshold: u32,
    lockout_secs: i64,
}

impl Accounts {
    pub fn open(
        store: &Store,
        passwords: Passwords,
        clock: SharedClock,
        config: &AuthConfig,
    ) -> Result<Accounts, AccountError> {
        Ok(Accounts {
            store: store.clone(),
            users: std::sync::Arc::new(store.tree(TreeName::Users)?),
            passwords,
            clock,
            lockout_threshold: config.lockout_threshold,
            lockout_secs: i64::try_from(config.lockout_duration.as_secs()).unwrap_or(900),
        })
    }

    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn get(&self, username: &str) -> Result<Option<UserRecord>, AccountError> {
        let name = normalize_username(username)?;
        Ok(self.users.get(&name)?)
    }

    fn require(&self, username: &str) -> Result<UserRecord, AccountError> {
        self.get(username)?
            .ok_or_else(|| AccountError::NotFound(username.to_string()))
    }

    pub fn list(&self) -> Result<Vec<UserRecord>, AccountError> {
        self.users
            .iter_from(None)
            .map(|entry| entry.map(|(_, user)| user).map_err(AccountError::from))
            .collect()
    }

    /// Creates an account (blocking: hashes the password).
    pub fn create(
        &self,
        username: &str,
        password: &Secret,
        scopes: Scopes,
    ) -> Result<UserRecord, AccountError> {
        let name = normalize_username(username)?;
        self.passwords.check_policy(password, &[&name])?;
        let record = UserRecord {
            id: random_id(16),
            username: name.clone(),
            password_hash: self.passwords.hash(password)?,
            scopes,
            disabled: false,
            created: rfc3339(self.clock.now()),
            epoch: 1,
            failed_logins: 0,
            lockouts: 0,
            locked_until: None,
        };
        if !self.users.insert_new(&name, &record)? {
            return Err(AccountError::Exists(name));
        }
        self.store.sync()?;
        Ok(record)
    }

    fn save(&self, record: &UserRecord) -> Result<(), AccountError> {
        self.users.insert(&record.username, record)?;
        self.store.sync()?;
        Ok(())
    }

    /// Sets a new password (blocking) and revokes every credential the user holds.
    pub fn set_password(
        &self,
        username: &str,
        password: &Secret,
    ) -> Result<UserRecord, AccountError> {
        let mut record = self.require(username)?;
        self.passwords.check_policy(password, &[&record.username])?;
        record.password_hash = self.passwords.hash(password)?;
        record.epoch += 1;
        record.failed_logins = 0;
        record.locked_until = None;
        self.save(&record)?;
        Ok(record)
    }

    /// Disables or enables an account; disabling revokes every credential it holds.
    pub fn set_disabled(&self, username: &str, disabled: bool) -> Result<UserRecord, AccountError> {
        let mut record = self.require(username)?;
        if disabled && self.is_last_admin(&record)? {
            return Err(AccountError::LastAdmin);
        }
        if disabled && !record.disabled {
            record.epoch += 1;
        }
        record.disabled = disabled;
        self.save(&record)?;
        Ok(record)
    }

    pub fn set_scopes(&self, username: &str, scopes: Scopes) -> Result<UserRecord, AccountError> {
        let mut record = self.require(username)?;
        if !scopes.allows(crate::auth::scopes::Scope::Admin) && self.is_last_admin(&record)? {
            return Err(AccountError::LastAdmin);
        }
        record.scopes = scopes;
        record.epoch += 1;
        self.save(&record)?;
        Ok(record)
    }

    pub fn remove(&self, username: &str) -> Result<UserRecord, AccountError> {
        let record = self.require(username)?;
        if self.is_last_admin(&record)? {
            return Err(AccountError::LastAdmin);
        }
        self.users.remove(&record.username)?;
        self.store.sync()?;
        Ok(record)
    }

    /// Ends a lockout and resets the failure count.
    pub fn unlock(&self, username: &str) -> Result<UserRecord, AccountError> {
        let mut record = self.require(username)?;
        record.failed_logins = 0;
        record.lockouts = 0;
        record.locked_until = None;
        self.save(&record)?;
        Ok(record)
    }

    fn is_last_admin(&self, record: &UserRecord) -> Result<bool, AccountError> {
        let admin = crate::auth::scopes::Scope::Admin;
        if record.disabled || !record.scopes.allows(admin) {
            return Ok(false);
        }
        let others = self
            .list()?
            .into_iter()
            .filter(|u| u.username != record.username && !u.disabled && u.scopes.allows(admin))
            .count();
        Ok(others == 0)
    }

    /// Checks a username and password. Unknown users, wrong passwords and locked accounts
    /// all take one password verification, so timing does not tell them apart.
    pub async fn authenticate(
        &self,
        username: &str,
        password: Secret,
    ) -> Result<UserRecord, AccountError> {
        let record = normalize_username(username)
            .ok()
            .map(|n| self.users.get(&n))
            .transpose()?
            .flatten();
        let now = self.clock.now().unix_timestamp();
        let locked = record
            .as_ref()
            .and_then(|r| r.locked_until)
            .filter(|until| *until > now);
        let matched = self
            .passwords
            .verify_async(password, record.as_ref().map(|r| r.password_hash.clone()))
            .await?;
        let Some(mut record) = record else {
            return Err(AccountError::InvalidCredentials);
        };
        if let Some(until) = locked {
            return Err(AccountError::Locked {
                until: OffsetDateTime::from_unix_timestamp(until)
                    .map(rfc3339)
                    .unwrap_or_default(),
            });
        }
        if !matched {
            self.note_failure(&mut record, now)?;
            return Err(AccountError::InvalidCredentials);
        }
        if record.disabled {
            return Err(AccountError::Disabled);
        }
        if record.failed_logins > 0 || record.locked_until.is_some() {
            record.failed_logins = 0;
            record.locked_until = None;
            self.save(&record)?;
        }
        Ok(record)
    }

    fn note_failure(&self, record: &mut UserRecord, now: i64) -> Result<(), AccountError> {
        // Re-read so concurrent failures are all counted.
        if let Some(current) = self.users.get(&record.username)? {
            *record = current;
        }
        record.failed_logins += 1;
        if record.failed_logins >= self.lockout_threshold {
            let factor = 1i64 << record.lockouts.min(10);
            let secs = (self.lockout_secs * factor).min(MAX_LOCKOUT_SECS);
            record.locked_until = Some(now + secs);
            record.lockouts += 1;
            record.failed_logins = 0;
        }
        self.save(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing;
    use crate::clock::ManualClock;

    fn fixture() -> (testing::Fixture, Accounts, ManualClock) {
        let fixture = testing::fixture("lockout_threshold = 3\nlockout_duration = \"10m\"");
        let (accounts, clock) = (fixture.accounts.clone(), fixture.clock.clone());
        (fixture, accounts, clock)
    }

    const PW: &str = "walrus cinnamon lantern quietly";

    #[test]
    fn usernames_are_folded_and_confusables_refused() {
        assert_eq!(normalize_username("  Alice.B ").unwrap(), "alice.b");
        for bad in [
            "",
            "-lead",
            "a b",
            "аlice",
            "ａlice",
            "x".repeat(33).as_str(),
            "a/b",
            "a\u{0}",
        ] {
            assert!(normalize_username(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn create_authenticate_and_refuse_wrong_or_unknown_alike() {
        let (_dir, accounts, _) = fixture();
        accounts
            .create("Alice", &Secret::new(PW), Scopes::all())
            .unwrap();
        assert!(matches!(
            accounts.create("alice", &Secret::new(PW), Scopes::all()),
            Err(AccountError::Exists(_))
        ));
        let user = accounts
            .authenticate("ALICE", Secret::new(PW))
            .await
            .unwrap();
        assert_eq!(user.username, "alice");
        let wrong = accounts
            .authenticate("alice", Secret::new("wrong password entirely"))
            .await
            .unwrap_err();
        let unknown = accounts
            .authenticate("mallory", Secret::new(PW))
            .await
            .unwrap_err();
        assert_eq!(wrong.to_string(), unknown.to_string());
        assert!(!user.password_hash.contains(PW));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn repeated_failures_lock_the_account_growing_and_unlock_ends_it() {
        let (_dir, accounts, clock) = fixture();
        accounts
            .create("owner", &Secret::new(PW), Scopes::all())
            .unwrap();
        for _ in 0..3 {
            let _ = accounts
                .authenticate("owner", Secret::new("not the password at all"))
                .await;
        }
        // Even the right password is refused while locked.
        assert!(matches!(
            accounts.authenticate("owner", Secret::new(PW)).await,
            Err(AccountError::Locked { .. })
        ));
        clock.advance(time::Duration::minutes(11));
        accounts
            .authenticate("owner", Secret::new(PW))
            .await
            .unwrap();
        for _ in 0..3 {
            let _ = accounts
                .authenticate("owner", Secret::new("not the password at all"))
                .await;
        }
        clock.advance(time::Duration::minutes(11));
        assert!(
            matches!(
                accounts.authenticate("owner", Secret::new(PW)).await,
                Err(AccountError::Locked { .. })
            ),
            "the second lockout lasts 20 minutes"
        );
        accounts.unlock("owner").unwrap();
        accounts
            .authenticate("owner", Secret::new(PW))
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_change_disable_and_removal_revoke_by_epoch() {
        let (_dir, accounts, _) = fixture();
        accounts
            .create("owner", &Secret::new(PW), Scopes::all())
            .unwrap();
        let bob = accounts
            .create(
                "bob",
                &Secret::new(PW),
                Scopes::parse_list("chat:read").unwrap(),
            )
            .unwrap();
        let changed = accounts
            .set_password("bob", &Secret::new("plinth-ocarina-sleet-mural"))
            .unwrap();
        assert!(changed.epoch > bob.epoch);
        assert!(accounts.authenticate("bob", Secret::new(PW)).await.is_err());
        let disabled = accounts.set_disabled("bob", true).unwrap();
        assert!(disabled.epoch > changed.epoch);
        assert!(matches!(
            accounts
                .authenticate("bob", Secret::new("plinth-ocarina-sleet-mural"))
                .await,
            Err(AccountError::Disabled)
        ));
        assert!(matches!(
            accounts.set_disabled("owner", true),
            Err(AccountError::LastAdmin)
        ));
        assert!(matches!(
            accounts.remove("owner"),
            Err(AccountError::LastAdmin)
        ));
        accounts.remove("bob").unwrap();
        assert!(accounts.get("bob").unwrap().is_none());
        assert!(matches!(
            accounts.create("weak", &Secret::new("passwordpassword"), Scopes::all()),
            Err(AccountError::Password(_))
        ));
    }
}
