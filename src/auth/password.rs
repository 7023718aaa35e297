//! Passwords: the policy a new password must meet, and argon2id hashing.
//!
//! The policy follows NIST SP 800-63B-4 for a password that is the only factor: a
//! minimum length (15 by default), a maximum of 128, no composition rules, no forced
//! rotation, and a check against common and easily guessed passwords. That check
//! ([`super::strength`]) knows the 10,000 most common passwords and the usual patterns,
//! and refuses anything it estimates at fewer than 10^10 guesses (which covers every
//! listed password, keyboard walks, repeats, sequences, dates and the username itself).
//! A running gateway makes the estimate in a short-lived child, so the list's table
//! never stays in its memory.
//!
//! Hashing is argon2id with parameters from config. It is CPU- and memory-heavy on
//! purpose, so it never runs on the async runtime or the shared blocking pool: a fixed
//! set of `max_concurrent_hashes` dedicated threads ([`HashPool`]) each owns one argon2
//! memory buffer, allocated once and reused for every hash and every verification. A
//! flood of logins therefore costs at most `max_concurrent_hashes` x `argon2_memory`,
//! once, instead of a fresh buffer per login that the allocator may keep resident
//! afterwards (glibc keeps such blocks in per-thread arenas). Async callers wait a
//! short while for a free worker and then get [`PasswordError::Busy`]. This module never
//! logs or returns a password.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::auth::strength::Estimator;
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

/// Work for a hashing thread: runs with that thread's argon2 memory.
type Job = Box<dyn FnOnce(&mut HashMemory) + Send>;

/// One hashing thread's argon2 memory: allocated on its first hash, then reused.
struct HashMemory {
    blocks: Vec<Block>,
    /// The size the pool was built for; a hash needing more (one stored under an older,
    /// larger setting) gets a buffer of its own that is freed after it.
    pool_blocks: usize,
}

impl HashMemory {
    fn for_params(&mut self, params: &Params) -> Option<&mut [Block]> {
        let needed = params.block_count();
        if needed > self.pool_blocks {
            return None;
        }
        if self.blocks.len() < self.pool_blocks {
            self.blocks = vec![Block::default(); self.pool_blocks];
        }
        self.blocks.get_mut(..needed)
    }
}

/// A fixed set of threads, each with its own reusable argon2 memory. The threads end
/// when the pool is dropped (the job channel closes).
#[derive(Debug)]
struct HashPool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl HashPool {
    fn start(threads: usize, pool_blocks: usize) -> Result<HashPool, PasswordError> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || {
                    let mut memory = HashMemory {
                        blocks: Vec::new(),
                        pool_blocks,
                    };
                    loop {
                        // Holding the lock only while waiting: one idle thread takes the
                        // next job, the others wait their turn.
                        let job = match receiver.lock() {
                            Ok(jobs) => jobs.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| {
                    PasswordError::Hashing(format!("cannot start a hashing thread: {e}"))
                })?;
        }
        Ok(HashPool {
            jobs: Mutex::new(sender),
        })
    }

    fn submit(&self, job: Job) -> Result<(), PasswordError> {
        self.jobs
            .lock()
            .map_err(|_| PasswordError::Hashing("the hashing pool is broken".into()))?
            .send(job)
            .map_err(|_| PasswordError::Hashing("the hashing pool has stopped".into()))
    }
}

/// Hashes and verifies passwords under the configured policy and cost.
#[derive(Debug, Clone)]
pub struct Passwords {
    config: PasswordConfig,
    slots: Arc<Semaphore>,
    /// Started on first use, so commands that never hash start no threads.
    pool: Arc<OnceLock<HashPool>>,
    /// A hash of a random password, verified against when a user does not exist so that
    /// the answer takes as long as for a real user. Made on first use, not at start.
    decoy: Arc<OnceLock<String>>,
    /// Login verifications started, for the figures that show the guess budget holds.
    verifications: Arc<std::sync::atomic::AtomicU64>,
    /// Where strength estimates are made; in-process until a gateway says otherwise.
    estimator: Arc<OnceLock<Estimator>>,
}

impl Passwords {
    pub fn new(config: &PasswordConfig) -> Passwords {
        Passwords {
            config: config.clone(),
            slots: Arc::new(Semaphore::new(config.max_concurrent_hashes)),
            pool: Arc::new(OnceLock::new()),
            decoy: Arc::new(OnceLock::new()),
            verifications: Arc::default(),
            estimator: Arc::new(OnceLock::new()),
        }
    }

    /// Makes every later strength estimate (of this value and its clones) in a child
    /// running `helper`, so the password list's table never stays in this process. Set
    /// once.
    pub fn estimate_in(&self, helper: PathBuf) {
        let _ = self.estimator.set(Estimator::Helper(helper));
    }

    fn pool(&self) -> Result<&HashPool, PasswordError> {
        if let Some(pool) = self.pool.get() {
            return Ok(pool);
        }
        let params = self.params()?;
        let started = HashPool::start(
            self.config.max_concurrent_hashes.max(1),
            params.block_count(),
        )?;
        // A racing caller may have started one first; ours then ends with its channel.
        Ok(self.pool.get_or_init(|| started))
    }

    fn decoy(&self, memory: &mut HashMemory) -> Result<String, PasswordError> {
        if let Some(decoy) = self.decoy.get() {
            return Ok(decoy.clone());
        }
        let random = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng).to_string();
        let hash = self.hash_with(random.as_bytes(), memory)?;
        Ok(self.decoy.get_or_init(|| hash).clone())
    }

    fn params(&self) -> Result<Params, PasswordError> {
        Params::new(
            self.config.argon2_memory_kib,
            self.config.argon2_iterations,
            self.config.argon2_parallelism,
            None,
        )
        .map_err(|e| PasswordError::Hashing(e.to_string()))
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
        // The estimate's cost grows with length; it reads at most 128 characters.
        let estimator = self.estimator.get().unwrap_or(&Estimator::InProcess);
        if estimator.guesses_log10(password, context) < MIN_GUESSES_LOG10 {
            return Err(PasswordError::TooCommon);
        }
        Ok(())
    }

    /// An argon2id PHC string for `password` (blocking; see [`Passwords::hash_async`]).
    pub fn hash(&self, password: &Secret) -> Result<String, PasswordError> {
        let this = self.clone();
        let password = password.clone();
        self.run_blocking(move |memory| this.hash_with(password.expose().as_bytes(), memory))
    }

    /// True when `password` matches `phc` (blocking). The parameters in `phc` apply, so
    /// hashes made under older settings still verify.
    pub fn verify(&self, password: &Secret, phc: &str) -> Result<bool, PasswordError> {
        let this = self.clone();
        let password = password.clone();
        let phc = phc.to_string();
        self.run_blocking(move |memory| {
            this.verify_with(password.expose().as_bytes(), &phc, memory)
        })
    }

    fn hash_with(&self, password: &[u8], memory: &mut HashMemory) -> Result<String, PasswordError> {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let params = self.params()?;
        let mut salt_bytes = [0u8; 64];
        let salt_raw = salt
            .decode_b64(&mut salt_bytes)
            .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        let output = compute(
            Algorithm::Argon2id,
            Version::V0x13,
            &params,
            password,
            salt_raw,
            params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN),
            memory,
        )?;
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params)
                .map_err(|e| PasswordError::Hashing(e.to_string()))?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok(phc.to_string())
    }

    fn verify_with(
        &self,
        password: &[u8],
        phc: &str,
        memory: &mut HashMemory,
    ) -> Result<bool, PasswordError> {
        let parsed = PasswordHash::new(phc).map_err(|_| PasswordError::BadHash)?;
        if parsed.algorithm != argon2::ARGON2ID_IDENT {
            return Err(PasswordError::BadHash);
        }
        let Some(expected) = parsed.hash else {
            return Err(PasswordError::BadHash);
        };
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(|_| PasswordError::BadHash)?
            .unwrap_or_default();
        let params = Params::try_from(&parsed).map_err(|_| PasswordError::BadHash)?;
        let salt = parsed.salt.ok_or(PasswordError::BadHash)?;
        let mut salt_bytes = [0u8; 64];
        let salt_raw = salt
            .decode_b64(&mut salt_bytes)
            .map_err(|_| PasswordError::BadHash)?;
        let output = compute(
            Algorithm::Argon2id,
            version,
            &params,
            password,
            salt_raw,
            expected.len(),
            memory,
        )?;
        // `Output`'s equality is constant-time.
        Ok(output == expected)
    }

    /// Verifies against `phc`, or against a decoy when there is no user, so both take
    /// the same time; `None` always answers false.
    pub async fn verify_async(
        &self,
        password: Secret,
        phc: Option<String>,
    ) -> Result<bool, PasswordError> {
        self.verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let known = phc.is_some();
        let this = self.clone();
        let matched = self
            .run_bounded(move |memory| {
                let phc = match phc {
                    Some(phc) => phc,
                    None => this.decoy(memory)?,
                };
                this.verify_with(password.expose().as_bytes(), &phc, memory)
            })
            .await?;
        Ok(known && matched)
    }

    /// How many login verifications ([`Passwords::verify_async`]) were started.
    pub fn verifications(&self) -> u64 {
        self.verifications
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn hash_async(&self, password: Secret) -> Result<String, PasswordError> {
        let this = self.clone();
        self.run_bounded(move |memory| this.hash_with(password.expose().as_bytes(), memory))
            .await
    }

    /// Runs `work` on a hashing thread and waits (blocking) for it. For commands and
    /// admin paths; request handlers use the bounded async API.
    fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut HashMemory) -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.pool()?.submit(Box::new(move |memory| {
            let _ = reply.send(work(memory));
        }))?;
        answer
            .recv()
            .map_err(|_| PasswordError::Hashing("the hashing thread stopped".into()))?
    }

    async fn run_bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut HashMemory) -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = tokio::time::timeout(HASH_QUEUE_WAIT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Busy)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        // The permit travels with the job, so a caller that gives up (a dropped
        // connection) does not free its slot before the hash is done: the queue stays
        // bounded by the number of slots.
        self.pool()?.submit(Box::new(move |memory| {
            let _permit = permit;
            let _ = reply.send(work(memory));
        }))?;
        answer
            .await
            .map_err(|_| PasswordError::Hashing("the hashing thread stopped".into()))?
    }
}

/// argon2 into a pooled buffer, or into a buffer of its own when a stored hash needs
/// more memory than the pool holds.
fn compute(
    algorithm: Algorithm,
    version: Version,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    output_len: usize,
    memory: &mut HashMemory,
) -> Result<Output, PasswordError> {
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let fail = |e: argon2::Error| argon2::password_hash::Error::from(e);
    Output::init_with(output_len, |out| match memory.for_params(params) {
        Some(blocks) => argon2
            .hash_password_into_with_memory(password, salt, out, blocks)
            .map_err(fail),
        None => argon2.hash_password_into(password, salt, out).map_err(fail),
    })
    .map_err(|e| PasswordError::Hashing(e.to_string()))
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

    #[test]
    fn hashes_made_with_more_or_less_memory_than_the_pool_still_verify() {
        let pooled = Passwords::new(&fast_config());
        let secret = Secret::new("walrus cinnamon lantern quietly");
        for kib in [1024, 16 * 1024] {
            let older = Passwords::new(&PasswordConfig {
                argon2_memory_kib: kib,
                ..fast_config()
            });
            let hash = older.hash(&secret).unwrap();
            assert!(pooled.verify(&secret, &hash).unwrap(), "{hash}");
            assert!(!pooled.verify(&Secret::new("walrus"), &hash).unwrap());
        }
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
