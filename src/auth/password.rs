//! Passwords: the policy a new password must meet, and argon2id hashing.
//!
//! The policy follows NIST SP 800-63B-4 for a password that is the only factor: a
//! minimum length (15 by default), a maximum of 128, no composition rules, no forced
//! rotation, and a check against common and easily guessed passwords. That check uses
//! zxcvbn, whose embedded lists hold the 30,000 most common passwords, and refuses
//! anything it estimates at fewer than 10^10 guesses (which covers every listed password,
//! keyboard walks, repeats, sequences and the username itself).
//!
//! Hashing is argon2id with parameters from config. It is CPU- and memory-heavy on
//! purpose, so the async API runs it on the blocking pool and at most
//! `max_concurrent_hashes` at once; further callers wait a short while and then get
//! [`PasswordError::Busy`], so a flood of logins cannot exhaust memory. This module never
//! logs or returns a password.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::PasswordConfig;
use crate::secret::Secret;

/// How long a caller waits for a free hashing slot before getting `Busy`.
const HASH_QUEUE_WAIT: Duration = Duration::from_secs(5);
/// Estimated guesses below which a password is refused as too easy.
const MIN_GUESSES_LOG10: f64 = 10.0;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must be at least {0} characters long")]
    TooShort(usize),
    #[error("the password must be at most {0} characters long")]
    TooLong(usize),
    #[error(
        "this password is too common or too easy to guess; a few unrelated words make a good one"
    )]
    TooCommon,
    #[error("too many password checks are running; retry in a moment")]
    Busy,
    #[error("the stored password hash is damaged")]
    BadHash,
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Hashes and verifies passwords under the configured policy and cost.
#[derive(Debug, Clone)]
pub struct Passwords {
    config: PasswordConfig,
    slots: Arc<Semaphore>,
    /// A hash of a random password, verified against when a user does not exist so that
    /// the answer takes as long as for a real user. Made on first use, not at start.
    decoy: Arc<OnceLock<String>>,
}

impl Passwords {
    pub fn new(config: &PasswordConfig) -> Passwords {
        Passwords {
            config: config.clone(),
            slots: Arc::new(Semaphore::new(config.max_concurrent_hashes)),
            decoy: Arc::new(OnceLock::new()),
        }
    }

    fn decoy(&self) -> Result<String, PasswordError> {
        if let Some(decoy) = self.decoy.get() {
            return Ok(decoy.clone());
        }
        let random = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng).to_string();
        let hash = self.hash(&Secret::new(random))?;
        Ok(self.decoy.get_or_init(|| hash).clone())
    }

    fn argon2(&self) -> Result<Argon2<'static>, PasswordError> {
        let params = Params::new(
            self.config.argon2_memory_kib,
            self.config.argon2_iterations,
            self.config.argon2_parallelism,
            None,
        )
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Checks a new password against the policy. `context` holds words the password must
    /// not be built from (the username).
    pub fn check_policy(&self, password: &Secret, context: &[&str]) -> Result<(), PasswordError> {
        let length = password.expose().chars().count();
        if length < self.config.min_length {
            return Err(PasswordError::TooShort(self.config.min_length));
        }
        if length > self.config.max_length {
            return Err(PasswordError::TooLong(self.config.max_length));
        }
        // zxcvbn's cost grows with length; the length cap above bounds it.
        if zxcvbn::zxcvbn(password.expose(), context).guesses_log10() < MIN_GUESSES_LOG10 {
            return Err(PasswordError::TooCommon);
        }
        Ok(())
    }

    /// An argon2id PHC string for `password` (blocking; see [`Passwords::hash_async`]).
    pub fn hash(&self, password: &Secret) -> Result<String, PasswordError> {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        self.argon2()?
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| PasswordError::Hashing(e.to_string()))
    }

    /// True when `password` matches `phc` (blocking). The parameters in `phc` apply, so
    /// hashes made under older settings still verify.
    pub fn verify(&self, password: &Secret, phc: &str) -> Result<bool, PasswordError> {
        let parsed = PasswordHash::new(phc).map_err(|_| PasswordError::BadHash)?;
        if parsed.hash.is_none() || parsed.algorithm.as_str() != "argon2id" {
            return Err(PasswordError::BadHash);
        }
        match self
            .argon2()?
            .verify_password(password.expose().as_bytes(), &parsed)
        {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::Password) => Ok(false),
            Err(e) => Err(PasswordError::Hashing(e.to_string())),
        }
    }

    /// Verifies against `phc`, or against a decoy when there is no user, so both take
    /// the same time; `None` always answers false.
    pub async fn verify_async(
        &self,
        password: Secret,
        phc: Option<String>,
    ) -> Result<bool, PasswordError> {
        let known = phc.is_some();
        let this = self.clone();
        let matched = self
            .run_bounded(move || {
                let phc = match phc {
                    Some(phc) => phc,
                    None => this.decoy()?,
                };
                this.verify(&password, &phc)
            })
            .await?;
        Ok(known && matched)
    }

    pub async fn hash_async(&self, password: Secret) -> Result<String, PasswordError> {
        let this = self.clone();
        self.run_bounded(move || this.hash(&password)).await
    }

    async fn run_bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = tokio::time::timeout(HASH_QUEUE_WAIT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Busy)?;

        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| PasswordError::Hashing(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters for tests only: hashing at full strength would make the suite slow.
    pub fn fast_config() -> PasswordConfig {
        PasswordConfig {
            min_length: 15,
            max_length: 128,
            argon2_memory_kib: 8 * 1024,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            max_concurrent_hashes: 1,
        }
    }

    #[test]
    fn policy_enforces_length_and_refuses_common_or_guessable_passwords() {
        let passwords = Passwords::new(&fast_config());
        let check = |p: &str| passwords.check_policy(&Secret::new(p), &["alice"]);
        assert_eq!(check("short one"), Err(PasswordError::TooShort(15)));
        assert_eq!(check(&"x".repeat(129)), Err(PasswordError::TooLong(128)));
        for weak in [
            "passwordpassword",
            "123456789012345",
            "qwertyuiopasdfgh",
            "aaaaaaaaaaaaaaaa",
            "abcdefghijklmnop",
            "alicealicealice1",
            "iloveyouiloveyou",
            "1qaz2wsx3edc4rfv",
        ] {
            assert_eq!(
                check(weak),
                Err(PasswordError::TooCommon),
                "{weak} accepted"
            );
        }
        for strong in [
            "correct horse battery staple",
            "plinth-ocarina-sleet-mural",
            "Tz8#kq!2vW9@pLr0",
        ] {
            assert_eq!(check(strong), Ok(()), "{strong} refused");
        }
        // No composition rules: a long lowercase passphrase is fine.
        assert_eq!(check("walrus cinnamon lantern quietly"), Ok(()));
        // Unicode counts by character, not byte.
        assert_eq!(check("ñandú-sobre-el-hielo-azul"), Ok(()));
    }

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let passwords = Passwords::new(&fast_config());
        let secret = Secret::new("walrus cinnamon lantern quietly");
        let first = passwords.hash(&secret).unwrap();
        let second = passwords.hash(&secret).unwrap();
        assert!(
            first.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"),
            "{first}"
        );
        assert_ne!(first, second, "salts must differ");
        assert!(passwords.verify(&secret, &first).unwrap());
        assert!(
            !passwords
                .verify(&Secret::new("walrus cinnamon lantern quietlY"), &first)
                .unwrap()
        );
        for damaged in [
            "$argon2id$garbage",
            "not a hash",
            "",
            "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        ] {
            assert_eq!(
                passwords.verify(&secret, damaged),
                Err(PasswordError::BadHash),
                "{damaged}"
            );
        }
        assert!(!first.contains("walrus"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_users_verify_against_a_decoy_and_never_match() {
        let passwords = Passwords::new(&fast_config());
        assert!(
            !passwords
                .verify_async(Secret::new("anything at all really"), None)
                .await
                .unwrap()
        );
        let hash = passwords
            .hash_async(Secret::new("walrus cinnamon lantern quietly"))
            .await
            .unwrap();
        assert!(
            passwords
                .verify_async(Secret::new("walrus cinnamon lantern quietly"), Some(hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_hashes_is_bounded() {
        let passwords = Passwords::new(&fast_config());
        let slot = passwords.slots.clone().acquire_owned().await.unwrap();
        let started = std::time::Instant::now();
        let result = passwords
            .hash_async(Secret::new("walrus cinnamon lantern quietly"))
            .await;
        assert_eq!(result, Err(PasswordError::Busy));
        assert!(started.elapsed() >= HASH_QUEUE_WAIT);
        drop(slot);
        assert!(
            passwords
                .hash_async(Secret::new("walrus cinnamon lantern quietly"))
                .await
                .is_ok()
        );
    }
}
