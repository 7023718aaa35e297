//! The first-run claim: how the first owner account is made without default passwords.
//!
//! While no account exists, each gateway start makes a one-time claim code (80 random
//! bits, base32, shown as `XXXX-XXXX-XXXX-XXXX`) and shows it on the console (and, later,
//! the device's display). Whoever presents it first, within its lifetime, creates the
//! owner account. The code is compared in constant time, works once, and is replaced at
//! the next start; the HTTP layer rate-limits attempts. It lives only in memory.

use std::sync::Mutex;
use std::time::Duration;

use ring::rand::SecureRandom;
use subtle::ConstantTimeEq;

use crate::clock::SharedClock;

/// RFC 4648 base32 alphabet.
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const CODE_CHARS: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClaimError {
    #[error("this gateway has already been claimed")]
    AlreadyClaimed,
    #[error("the claim code is wrong or expired; restart the gateway for a new one")]
    WrongCode,
}

#[derive(Debug)]
struct Pending {
    code: String,
    grouped: String,
    expires: i64,
}

/// The pending claim, if any.
#[derive(Debug)]
pub struct Claim {
    pending: Mutex<Option<Pending>>,
    clock: SharedClock,
    ttl: Duration,
}

/// Uppercases and drops separators, so `abcd-efgh ijkl` matches `ABCDEFGHIJKL`.
fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

impl Claim {
    pub fn new(clock: SharedClock, ttl: Duration) -> Claim {
        Claim {
            pending: Mutex::new(None),
            clock,
            ttl,
        }
    }

    /// Makes a new code, replacing any earlier one, and returns it grouped for reading.
    pub fn start(&self) -> String {
        let mut bytes = [0u8; CODE_CHARS];
        let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
        let code: String = bytes
            .iter()
            .filter_map(|b| ALPHABET.get(usize::from(b & 31)).map(|c| char::from(*c)))
            .collect();
        let grouped = code
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("-");
        let expires =
            self.clock.now().unix_timestamp() + i64::try_from(self.ttl.as_secs()).unwrap_or(3600);
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(Pending {
            code,
            grouped: grouped.clone(),
            expires,
        });
        grouped
    }

    /// The pending code, grouped, while it is valid (for the console and the display).
    pub fn current(&self) -> Option<String> {
        let now = self.clock.now().unix_timestamp();
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending
            .as_ref()
            .filter(|p| p.expires > now)
            .map(|p| p.grouped.clone())
    }

    pub fn is_pending(&self) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Consumes the code if `presented` matches and it has not expired. `create` runs
    /// while the claim is held, so two racing claims cannot both succeed; if it fails the
    /// code stays usable.
    pub fn redeem<T, E>(
        &self,
        presented: &str,
        create: impl FnOnce() -> Result<T, E>,
    ) -> Result<Result<T, E>, ClaimError> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let Some(current) = pending.as_ref() else {
            return Err(ClaimError::AlreadyClaimed);
        };
        let matches: bool = normalize(presented)
            .as_bytes()
            .ct_eq(current.code.as_bytes())
            .into();
        if !matches || current.expires <= self.clock.now().unix_timestamp() {
            return Err(ClaimError::WrongCode);
        }
        let created = create();
        if created.is_ok() {
            *pending = None;
        }
        Ok(created)
    }

    /// Withdraws the code (an owner was made another way, such as the console).
    pub fn cancel(&self) {
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    fn claim() -> (Claim, ManualClock) {
        let clock =
            ManualClock::new(time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap());
        (
            Claim::new(Arc::new(clock.clone()), Duration::from_secs(3600)),
            clock,
        )
    }

    #[test]
    fn a_code_is_80_bits_grouped_and_works_once() {
        let (claim, _) = claim();
        let code = claim.start();
        assert_eq!(code.len(), 19);
        assert!(
            code.split('-')
                .all(|g| g.len() == 4 && g.bytes().all(|b| ALPHABET.contains(&b)))
        );
        assert_eq!(
            claim.redeem("AAAA-AAAA-AAAA-AAAA", || Ok::<_, ()>(())),
            Err(ClaimError::WrongCode)
        );
        assert_eq!(
            claim.redeem(&code.to_lowercase().replace('-', " "), || Ok::<_, ()>(1)),
            Ok(Ok(1))
        );
        assert_eq!(
            claim.redeem(&code, || Ok::<_, ()>(2)),
            Err(ClaimError::AlreadyClaimed)
        );
        assert_ne!(claim.start(), code, "a new start makes a new code");
    }

    #[test]
    fn an_expired_code_is_refused_and_a_failed_creation_keeps_it() {
        let (claim, clock) = claim();
        let code = claim.start();
        assert_eq!(
            claim.redeem(&code, || Err::<(), _>("weak password")),
            Ok(Err("weak password"))
        );
        assert!(claim.is_pending());
        clock.advance(time::Duration::seconds(3601));
        assert_eq!(
            claim.redeem(&code, || Ok::<_, ()>(())),
            Err(ClaimError::WrongCode)
        );
    }
}
