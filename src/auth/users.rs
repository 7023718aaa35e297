//! User accounts: names, password hashes, scopes, disabling and login lockout.
//!
//! Usernames are ASCII only (lowercase letters, digits, `.`, `_`, `-`; 1–32, starting
//! with a letter or digit) and folded to lowercase. Unicode confusables (a Cyrillic `а`
//! that looks like a Latin `a`) are refused rather than normalized, because no folding
//! catches them all. Each account has an `epoch`: every credential issued to it carries
//! the epoch, and bumping it (password change, disable, removal) revokes them all at once.
//!
//! Failed logins are counted per account *and client* (the client address, IPv6 per
//! /64, or a known client, below), so guessing from one address locks only that address
//! out of that account: after `lockout_threshold` failures in a row it is locked for
//! `lockout_duration`, doubling with each further lockout up to a day. The escalation
//! decays: every six quiet hours (no failure from that address) forgive one doubling,
//! and the count of failures restarts after a quiet `lockout_duration`.
//!
//! Guessing spread over many addresses is bounded per username by the guess budget
//! ([`crate::auth::throttle`]): clients the account does not know share a few password
//! checks per hour, and a try over the budget is refused as [`AccountError::Throttled`]
//! (never "wrong password") before any argon2 runs, for unknown names alike. Two kinds
//! of client are exempt, so guessers cannot hold the owner out:
//! - a *known client*: one that presents the token a successful login of this account
//!   gave it ([`KnownClient`]; bound to the account and its epoch). Its failures are
//!   counted under the token, so a stolen token buys only its own lockout;
//! - an address some account logged in from recently (its last
//!   [`MAX_KNOWN_ADDRESSES`]); for every name alike, so the exemption tells nothing about
//!   which accounts exist. Guessing from there meets the per-address lockout.
//!
//! `aisopod user unlock NAME` on the device ends every lockout and refills the budget.
//!
//! Every change of a stored account goes through [`Tree::update`] (compare-and-swap on
//! the record as stored now), so a slow login that read the account before argon2 can
//! never write back that old copy over a password change, a disable or a scope change.
//! This module never sees a password except to hand it to `password`, and never logs one.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::password::{PasswordError, Passwords};
use crate::auth::scopes::Scopes;
use crate::auth::throttle::GuessBudgets;
use crate::clock::{SharedClock, rfc3339};
use crate::config::AuthConfig;
use crate::secret::Secret;
use crate::store::{Store, StoreError, Tree, TreeName};

const MAX_LOCKOUT_SECS: i64 = 86_400;
/// Each this long without a failure from an address forgives one doubling of its lockout.
const ESCALATION_DECAY_SECS: i64 = 6 * 3600;
/// Addresses whose failures are remembered per account; the stalest unlocked go first.
const MAX_TRACKED_ADDRESSES: usize = 32;
/// Addresses an account remembers as familiar (successful logins), newest last.
const MAX_KNOWN_ADDRESSES: usize = 8;

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
    #[error(
        "too many sign-in attempts for this username from unknown clients; retry in {retry_after} s (a browser or app that signed in here before is not held up)"
    )]
    Throttled { retry_after: i64 },
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
    /// Bumped each time the account is disabled: API tokens made before stay revoked
    /// when it is enabled again.
    #[serde(default)]
    pub disablements: u64,
    /// Recent failed logins by address key (see [`address_key`]).
    #[serde(default)]
    pub guesses: BTreeMap<String, Guesses>,
    /// Address keys this account logged in from, exempt from the guess budget.
    #[serde(default)]
    pub known_addresses: Vec<String>,
    /// Unix seconds of the last password login, written at most hourly (see
    /// [`LAST_LOGIN_GRANULARITY`]); absent in records stored before it was kept.
    #[serde(default)]
    pub last_login: Option<i64>,
}

/// How stale `last_login` may get before a login writes it again: the audit asks about
/// 90 days, so an hour is plenty and most logins write nothing extra.
pub const LAST_LOGIN_GRANULARITY: i64 = 3600;

/// What a credential check needs of an account, decoded from the stored record without
/// its password hash, failed-login entries or known addresses (which a guesser can
/// fill), so the check's cost does not grow with them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountStanding {
    pub id: String,
    pub username: String,
    pub scopes: Scopes,
    pub disabled: bool,
    pub epoch: u64,
}

/// A client that proved an earlier login of an account: what its token (verified by
/// `auth`) says. It counts only for that account, and only until the account's epoch
/// moves (password change, disable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownClient {
    pub uid: String,
    pub epoch: u64,
    /// The token's own id: the client's failures are counted under it.
    pub id: String,
}

impl KnownClient {
    fn vouches_for(&self, record: &UserRecord) -> bool {
        self.uid == record.id && self.epoch == record.epoch
    }

    /// The key its failed logins are counted under.
    fn key(&self) -> String {
        format!("client:{}", self.id)
    }
}

/// Failed logins from one address against one account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guesses {
    pub failures: u32,
    /// How many doublings the next lockout gets (decays, see [`ESCALATION_DECAY_SECS`]).
    pub level: u32,
    pub last_failure: i64,
    pub locked_until: Option<i64>,
}

impl Guesses {
    /// Applies the decay a quiet period since the last failure earned.
    fn settled(&self, now: i64, window: i64) -> Guesses {
        let quiet = (now - self.last_failure).max(0);
        let forgiven = u32::try_from(quiet / ESCALATION_DECAY_SECS).unwrap_or(u32::MAX);
        Guesses {
            failures: if quiet >= window { 0 } else { self.failures },
            level: self.level.saturating_sub(forgiven),
            ..self.clone()
        }
    }
}

/// The key failed logins are counted under: the address, IPv4-mapped IPv6 folded to
/// IPv4, and IPv6 by /64 (one host usually holds a whole /64).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", std::net::Ipv6Addr::from(prefix))
            }
        },
    }
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
    fn locked_until(&self, key: &str, now: i64) -> Option<i64> {
        self.guesses
            .get(key)
            .and_then(|g| g.locked_until)
            .filter(|until| *until > now)
    }

    pub fn view(&self) -> UserView {
        UserView {
            id: self.id.clone(),
            username: self.username.clone(),
            scopes: self.scopes,
            disabled: self.disabled,
            created: self.created.clone(),
            locked_until: self
                .guesses
                .values()
                .filter_map(|g| g.locked_until)
                .max()
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

/// The account service.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Store,
    users: std::sync::Arc<Tree<String, UserRecord>>,
    passwords: Passwords,
    clock: SharedClock,
    lockout_threshold: u32,
    lockout_secs: i64,
    budgets: std::sync::Arc<GuessBudgets>,
    /// Tests hold a login between its password check and its write-back here.
    #[cfg(test)]
    pause: std::sync::Arc<std::sync::Mutex<Option<testing_pause::Pause>>>,
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
            budgets: std::sync::Arc::default(),
            #[cfg(test)]
            pause: std::sync::Arc::default(),
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

    /// The fields of `username`'s account a credential check needs (see
    /// [`AccountStanding`]), read fresh from the store.
    pub fn standing(&self, username: &str) -> Result<Option<AccountStanding>, AccountError> {
        let name = normalize_username(username)?;
        Ok(self.users.get_part(&name)?)
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
            id: crate::ids::random_id(16),
            username: name.clone(),
            password_hash: self.passwords.hash(password)?,
            scopes,
            disabled: false,
            created: rfc3339(self.clock.now()),
            epoch: 1,
            disablements: 0,
            guesses: BTreeMap::new(),
            known_addresses: Vec::new(),
            last_login: None,
        };
        if !self.users.insert_new(&name, &record)? {
            return Err(AccountError::Exists(name));
        }
        self.store.sync()?;
        Ok(record)
    }

    /// The one way a stored account changes: `change` edits the record as stored now
    /// (and may run again if another writer got in first); `Ok(false)` leaves it as is.
    /// The change is on disk when this returns.
    fn update(
        &self,
        username: &str,
        change: impl FnMut(&mut UserRecord) -> Result<bool, AccountError>,
    ) -> Result<UserRecord, AccountError> {
        self.update_with(username, Durability::Synced, change)
    }

    fn update_with(
        &self,
        username: &str,
        durability: Durability,
        mut change: impl FnMut(&mut UserRecord) -> Result<bool, AccountError>,
    ) -> Result<UserRecord, AccountError> {
        let name = normalize_username(username)?;
        let mut changed = false;
        let record = self
            .users
            .update(&name, |current| {
                let mut next = current.clone();
                changed = change(&mut next)?;
                Ok::<_, AccountError>(changed.then_some(next))
            })?
            .ok_or_else(|| AccountError::NotFound(username.to_string()))?;
        if changed && durability == Durability::Synced {
            self.store.sync()?;
        }
        Ok(record)
    }

    /// Sets a new password (blocking) and revokes every credential the user holds.
    pub fn set_password(
        &self,
        username: &str,
        password: &Secret,
    ) -> Result<UserRecord, AccountError> {
        let name = normalize_username(username)?;
        self.passwords.check_policy(password, &[&name])?;
        let hash = self.passwords.hash(password)?;
        self.update(&name, |record| {
            record.password_hash.clone_from(&hash);
            record.epoch += 1;
            Ok(true)
        })
    }

    /// Disables or enables an account; disabling revokes every credential it holds
    /// (sessions and refresh tokens by epoch, API tokens by `disablements`), for good.
    pub fn set_disabled(&self, username: &str, disabled: bool) -> Result<UserRecord, AccountError> {
        self.update(username, |record| {
            if disabled && !record.disabled {
                if self.is_last_admin(record)? {
                    return Err(AccountError::LastAdmin);
                }
                record.epoch += 1;
                record.disablements += 1;
            }
            record.disabled = disabled;
            Ok(true)
        })
    }

    pub fn set_scopes(&self, username: &str, scopes: Scopes) -> Result<UserRecord, AccountError> {
        self.update(username, |record| {
            if !scopes.allows(crate::auth::scopes::Scope::Admin) && self.is_last_admin(record)? {
                return Err(AccountError::LastAdmin);
            }
            record.scopes = scopes;
            record.epoch += 1;
            Ok(true)
        })
    }

    pub fn remove(&self, username: &str) -> Result<UserRecord, AccountError> {
        let record = self
            .get(username)?
            .ok_or_else(|| AccountError::NotFound(username.to_string()))?;
        if self.is_last_admin(&record)? {
            return Err(AccountError::LastAdmin);
        }
        self.users.remove(&record.username)?;
        self.store.sync()?;
        Ok(record)
    }

    /// Ends every lockout of the account and refills its guess budget.
    pub fn unlock(&self, username: &str) -> Result<UserRecord, AccountError> {
        let record = self.update(username, |record| {
            record.guesses.clear();
            Ok(true)
        })?;
        self.budgets.refill(&record.username);
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

    /// Checks a username and password tried from `from`, by `client` if it presented a
    /// valid known-client token. Unknown users, wrong passwords and locked addresses all
    /// take one password verification, so timing does not tell them apart; a try over
    /// the guess budget takes none and is refused alike for every name.
    pub async fn authenticate(
        &self,
        username: &str,
        password: Secret,
        from: IpAddr,
        client: Option<&KnownClient>,
    ) -> Result<UserRecord, AccountError> {
        let address = address_key(from);
        let now = self.clock.now().unix_timestamp();
        let name = normalize_username(username).ok();
        let lookup = || {
            name.as_ref()
                .map(|n| self.users.get(n))
                .transpose()
                .map(Option::flatten)
        };
        // Without a token, the budget is judged before the account is even looked up, so
        // a refusal takes the same steps for every name and its timing cannot tell
        // whether an account exists. (Only a login of an existing account makes a token.)
        let mut record = match client {
            Some(_) => lookup()?,
            None => None,
        };
        // A known client whose own failures locked it is back among the unknown ones, so
        // a stolen token buys its holder no more than `lockout_threshold` guesses.
        let client = client.filter(|c| {
            record
                .as_ref()
                .is_some_and(|r| c.vouches_for(r) && r.locked_until(&c.key(), now).is_none())
        });
        let budgeted = match (&name, client) {
            (Some(name), None) if !self.familiar(&address)? => Some(name),
            _ => None,
        };
        if let Some(name) = budgeted {
            self.budgets
                .spend(name, now)
                .map_err(|retry_after| AccountError::Throttled { retry_after })?;
        }
        if record.is_none() {
            record = lookup()?;
        }
        let key = client.map_or_else(|| address.clone(), KnownClient::key);
        let locked = record.as_ref().and_then(|r| r.locked_until(&key, now));
        let verified_hash = record.as_ref().map(|r| r.password_hash.clone());
        let matched = self
            .passwords
            .verify_async(password, verified_hash.clone())
            .await?;
        #[cfg(test)]
        testing_pause::wait(&self.pause).await;
        let Some(record) = record else {
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
            self.note_failure(&record.username, &key, now)?;
            return Err(AccountError::InvalidCredentials);
        }
        if let Some(name) = budgeted {
            self.budgets.refund(name);
        }
        // Judge the success against the account as it is now: a password changed or an
        // account disabled while argon2 ran wins over this login.
        self.update(&record.username, |current| {
            if current.id != record.id || Some(&current.password_hash) != verified_hash.as_ref() {
                return Err(AccountError::InvalidCredentials);
            }
            if current.disabled {
                return Err(AccountError::Disabled);
            }
            let forget = current.guesses.remove(&key).is_some();
            let familiar = current.known_addresses.last() == Some(&address);
            if !familiar {
                current.known_addresses.retain(|k| *k != address);
                current.known_addresses.push(address.clone());
                let excess = current
                    .known_addresses
                    .len()
                    .saturating_sub(MAX_KNOWN_ADDRESSES);
                current.known_addresses.drain(..excess);
            }
            let stale = current
                .last_login
                .is_none_or(|t| now - t >= LAST_LOGIN_GRANULARITY);
            if stale {
                current.last_login = Some(now);
            }
            Ok(forget || !familiar || stale)
        })
    }

    /// Whether some account logged in from `address` recently. Asked for every name
    /// alike (not only for the account tried), so that the exemption from the guess
    /// budget never tells whether an account exists.
    fn familiar(&self, address: &str) -> Result<bool, AccountError> {
        for entry in self.users.iter_from(None) {
            let (_, user) = entry?;
            if user.known_addresses.iter().any(|k| k == address) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn note_failure(&self, username: &str, key: &str, now: i64) -> Result<(), AccountError> {
        let (threshold, base) = (self.lockout_threshold, self.lockout_secs);
        self.update_with(username, Durability::Background, |record| {
            let mut entry = record
                .guesses
                .get(key)
                .map(|g| g.settled(now, base))
                .unwrap_or_default();
            entry.failures += 1;
            entry.last_failure = now;
            if entry.failures >= threshold {
                let factor = 1i64 << entry.level.min(16);
                entry.locked_until = Some(now + base.saturating_mul(factor).min(MAX_LOCKOUT_SECS));
                entry.level = entry.level.saturating_add(1);
                entry.failures = 0;
            }
            record.guesses.insert(key.to_string(), entry);
            while record.guesses.len() > MAX_TRACKED_ADDRESSES {
                // Forget the stalest address, preferring one that is not locked.
                let stalest = record
                    .guesses
                    .iter()
                    .min_by_key(|(_, g)| (g.locked_until.is_some_and(|t| t > now), g.last_failure))
                    .map(|(k, _)| k.clone());
                match stalest {
                    Some(k) => record.guesses.remove(&k),
                    None => break,
                };
            }
            Ok(true)
        })?;
        Ok(())
    }
}

/// When a change of a stored account must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Before the caller goes on (credentials, scopes, the account's state).
    Synced,
    /// With the store's next flush (well under a second). For what a failed or throttled
    /// login notes: waiting for fsync there would make a wrong password for an existing
    /// account measurably slower than one for an unknown name, telling a guesser which
    /// accounts exist. A crash loses at most the last moment's failure counts.
    Background,
}

#[cfg(test)]
mod testing_pause {
    //! Holds a login between its password check and its write-back, so tests can change
    //! the account in between (a slow hash, made deterministic).

    use std::sync::Mutex;

    use tokio::sync::oneshot;

    /// Sends when a login reached the pause; the login waits for the second to fire.
    pub type Pause = (oneshot::Sender<()>, oneshot::Receiver<()>);

    pub async fn wait(slot: &Mutex<Option<Pause>>) {
        let taken = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((reached, release)) = taken {
            let _ = reached.send(());
            let _ = release.await;
        }
    }
}

#[cfg(test)]
mod tests;
