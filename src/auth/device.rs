//! The OAuth 2.0 device authorization grant (RFC 8628): how a CLI on another machine
//! gets tokens by having a signed-in person approve a short code.
//!
//! A client asks for a code pair: a long random `device_code` it keeps, and an 8-letter
//! `user_code` (consonants only, shown `XXXX-XXXX`, about 34 bits) that a person types
//! or scans at `/device`, where they sign in and approve or deny. The client polls with
//! its device code and gets `authorization_pending`, `slow_down` (polling faster than the
//! interval, which then grows by 5 s), `access_denied`, `expired_token`, or tokens limited
//! to the scopes the approver holds. Grants live only in memory: a restart ends them.
//! Guessing user codes is bounded by the HTTP layer's per-address limit on `/device`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use ring::rand::SecureRandom;
use subtle::ConstantTimeEq;

use crate::auth::opaque;
use crate::auth::scopes::Scopes;
use crate::clock::SharedClock;

/// RFC 8628 §6.1 suggests a consonant-only alphabet: no vowels, so no words.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const SLOW_DOWN_STEP: i64 = 5;
/// Pending grants kept at once; beyond this new requests are refused.
const MAX_PENDING: usize = 1024;
/// Pending grants one client address (an IPv4 address or IPv6 /64, as rate limits
/// count them) may hold, so that one client cannot fill `MAX_PENDING` for everyone.
pub const MAX_PENDING_PER_SOURCE: usize = 5;

/// The RFC's error codes for the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DevicePoll {
    #[error("authorization_pending")]
    AuthorizationPending,
    #[error("slow_down")]
    SlowDown,
    #[error("access_denied")]
    AccessDenied,
    #[error("expired_token")]
    ExpiredToken,
    #[error("invalid_grant")]
    InvalidGrant,
}

impl DevicePoll {
    pub fn description(self) -> &'static str {
        match self {
            DevicePoll::AuthorizationPending => "the code has not been approved yet",
            DevicePoll::SlowDown => "polling too fast; wait the interval between requests",
            DevicePoll::AccessDenied => "the request was denied",
            DevicePoll::ExpiredToken => "the device code expired; start again",
            DevicePoll::InvalidGrant => "unknown or already used device code",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    #[error("unknown or expired code")]
    UnknownCode,
    #[error("too many device sign-ins are pending; try again later")]
    Busy,
    #[error("too many device sign-ins are pending from this address; retry in {0} s")]
    SourceBusy(i64),
}

/// What a client gets back when it starts.
#[derive(Debug, Clone)]
pub struct Started {
    pub device_code: String,
    pub user_code: String,
    pub expires_in: i64,
    pub interval: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Pending,
    Approved { username: String, scopes: Scopes },
    Denied,
}

#[derive(Debug, Clone)]
struct Grant {
    device_code_hash: String,
    client_id: String,
    requested: Option<Scopes>,
    /// The client address (rate-limit key) that started it.
    source: IpAddr,
    expires: i64,
    interval: i64,
    /// When the client last polled, to the clock's precision: a poll just after a
    /// second boundary is no further from the last one than it really is.
    last_poll: Option<time::OffsetDateTime>,
    state: State,
}

/// An approved grant ready to be exchanged for tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    pub username: String,
    pub scopes: Scopes,
    pub client_id: String,
}

/// A pending request as the approval page shows it.
#[derive(Debug, Clone)]
pub struct PendingView {
    pub client_id: String,
    pub requested: Option<Scopes>,
}

#[derive(Debug)]
pub struct DeviceFlow {
    grants: Mutex<HashMap<String, Grant>>,
    clock: SharedClock,
    ttl: i64,
    interval: i64,
}

/// Uppercase, no separators: `bcdf-ghjk` and `BCDFGHJK` are the same code.
pub fn normalize_user_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

impl DeviceFlow {
    pub fn new(clock: SharedClock, ttl: Duration, interval: Duration) -> DeviceFlow {
        DeviceFlow {
            grants: Mutex::new(HashMap::new()),
            clock,
            ttl: i64::try_from(ttl.as_secs()).unwrap_or(600),
            interval: i64::try_from(interval.as_secs()).unwrap_or(5),
        }
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Grant>> {
        self.grants.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a grant for `client_id`, optionally asking for fewer scopes, for a client
    /// at `source` (its rate-limit key).
    pub fn start(
        &self,
        client_id: &str,
        requested: Option<Scopes>,
        source: IpAddr,
    ) -> Result<Started, DeviceError> {
        let now = self.now();
        let mut grants = self.lock();
        grants.retain(|_, g| g.expires > now);
        let from_source: Vec<i64> = grants
            .values()
            .filter(|g| g.source == source && g.state == State::Pending)
            .map(|g| g.expires)
            .collect();
        if from_source.len() >= MAX_PENDING_PER_SOURCE {
            let first_free = from_source.iter().copied().min().unwrap_or(now);
            return Err(DeviceError::SourceBusy((first_free - now).max(1)));
        }
        if grants.len() >= MAX_PENDING {
            return Err(DeviceError::Busy);
        }
        let user_code = loop {
            let mut bytes = [0u8; 8];
            let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
            let code: String = bytes
                .iter()
                .filter_map(|b| USER_CODE_ALPHABET.get(usize::from(*b) % USER_CODE_ALPHABET.len()))
                .map(|c| char::from(*c))
                .collect();
            if !grants.contains_key(&code) {
                break code;
            }
        };
        let device = opaque::mint("aisd");
        grants.insert(
            user_code.clone(),
            Grant {
                device_code_hash: device.secret_hash,
                client_id: client_id.to_string(),
                requested,
                source,
                expires: now + self.ttl,
                interval: self.interval,
                last_poll: None,
                state: State::Pending,
            },
        );
        let grouped = format!(
            "{}-{}",
            user_code.get(..4).unwrap_or_default(),
            user_code.get(4..).unwrap_or_default()
        );
        Ok(Started {
            device_code: device.plaintext.expose().to_string(),
            user_code: grouped,
            expires_in: self.ttl,
            interval: self.interval,
        })
    }

    /// The pending request behind a user code, for the approval page.
    pub fn pending(&self, user_code: &str) -> Result<PendingView, DeviceError> {
        let now = self.now();
        let grants = self.lock();
        let grant = grants
            .get(&normalize_user_code(user_code))
            .filter(|g| g.expires > now && g.state == State::Pending)
            .ok_or(DeviceError::UnknownCode)?;
        Ok(PendingView {
            client_id: grant.client_id.clone(),
            requested: grant.requested,
        })
    }

    /// Records the approver's decision. Approved scopes are the requested ones the
    /// approver holds (all the approver's scopes when none were requested).
    pub fn decide(
        &self,
        user_code: &str,
        approver: &str,
        approver_scopes: Scopes,
        allow: bool,
    ) -> Result<(), DeviceError> {
        let now = self.now();
        let mut grants = self.lock();
        let grant = grants
            .get_mut(&normalize_user_code(user_code))
            .filter(|g| g.expires > now && g.state == State::Pending)
            .ok_or(DeviceError::UnknownCode)?;
        grant.state = if allow {
            let scopes = match grant.requested {
                Some(requested) => {
                    Scopes::from_iter(requested.iter().filter(|s| approver_scopes.allows(*s)))
                }
                None => approver_scopes,
            };
            State::Approved {
                username: approver.to_string(),
                scopes,
            }
        } else {
            State::Denied
        };
        Ok(())
    }

    /// One poll of the token endpoint.
    pub fn poll(&self, device_code: &str) -> Result<Approved, DevicePoll> {
        let at = self.clock.now();
        let now = at.unix_timestamp();
        let secret = opaque::parse("aisd", device_code)
            .map(|(_, secret)| secret)
            .ok_or(DevicePoll::InvalidGrant)?;
        let hash = opaque::hash(secret);
        let mut grants = self.lock();
        let key = grants
            .iter()
            .find(|(_, g)| bool::from(g.device_code_hash.as_bytes().ct_eq(hash.as_bytes())))
            .map(|(k, _)| k.clone())
            .ok_or(DevicePoll::InvalidGrant)?;
        let grant = grants.get_mut(&key).ok_or(DevicePoll::InvalidGrant)?;
        if grant.expires <= now {
            grants.remove(&key);
            return Err(DevicePoll::ExpiredToken);
        }
        let too_fast = grant
            .last_poll
            .is_some_and(|last| at - last < time::Duration::seconds(grant.interval));
        grant.last_poll = Some(at);
        match grant.state.clone() {
            State::Denied => {
                grants.remove(&key);
                Err(DevicePoll::AccessDenied)
            }
            State::Approved { username, scopes } => {
                let client_id = grant.client_id.clone();
                grants.remove(&key);
                Ok(Approved {
                    username,
                    scopes,
                    client_id,
                })
            }
            State::Pending if too_fast => {
                grant.interval += SLOW_DOWN_STEP;
                Err(DevicePoll::SlowDown)
            }
            State::Pending => Err(DevicePoll::AuthorizationPending),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    const HOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 10));

    #[test]
    fn one_address_cannot_hold_every_pending_grant() {
        let (flow, clock) = flow();
        let other = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 11));
        for _ in 0..MAX_PENDING_PER_SOURCE {
            flow.start("flood", None, HOST).unwrap();
        }
        assert_eq!(
            flow.start("flood", None, HOST).unwrap_err(),
            DeviceError::SourceBusy(600)
        );
        // Another address still gets a code, and it works.
        let started = flow.start("cli", None, other).unwrap();
        assert!(flow.pending(&started.user_code).is_ok());
        // Once the flood's grants expire, its address is served again.
        clock.advance(time::Duration::seconds(601));
        assert!(flow.start("cli", None, HOST).is_ok());
    }

    fn flow() -> (DeviceFlow, ManualClock) {
        let clock =
            ManualClock::new(time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap());
        (
            DeviceFlow::new(
                Arc::new(clock.clone()),
                Duration::from_secs(600),
                Duration::from_secs(5),
            ),
            clock,
        )
    }

    #[test]
    fn polls_a_moment_apart_across_a_second_boundary_are_too_fast() {
        let clock =
            ManualClock::new(time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap());
        let flow = DeviceFlow::new(
            Arc::new(clock.clone()),
            Duration::from_secs(600),
            Duration::from_secs(1),
        );
        clock.advance(time::Duration::milliseconds(999));
        let started = flow.start("cli", None, HOST).unwrap();
        assert_eq!(
            flow.poll(&started.device_code),
            Err(DevicePoll::AuthorizationPending)
        );
        clock.advance(time::Duration::milliseconds(2));
        assert_eq!(flow.poll(&started.device_code), Err(DevicePoll::SlowDown));
        // The interval grew to 6 s; a poll 5.9 s later is still too fast.
        clock.advance(time::Duration::milliseconds(5_900));
        assert_eq!(flow.poll(&started.device_code), Err(DevicePoll::SlowDown));
    }

    #[test]
    fn the_grant_answers_as_rfc_8628_says() {
        let (flow, clock) = flow();
        let started = flow.start("cli", None, HOST).unwrap();
        assert_eq!(started.user_code.len(), 9);
        assert!(
            started
                .user_code
                .chars()
                .filter(|c| *c != '-')
                .all(|c| USER_CODE_ALPHABET.contains(&(c as u8)))
        );
        assert_eq!(
            flow.poll(&started.device_code),
            Err(DevicePoll::AuthorizationPending)
        );
        assert_eq!(flow.poll(&started.device_code), Err(DevicePoll::SlowDown));
        clock.advance(time::Duration::seconds(11));
        assert_eq!(
            flow.poll(&started.device_code),
            Err(DevicePoll::AuthorizationPending)
        );
        let chat = Scopes::parse_list("chat:read,chat:write").unwrap();
        flow.decide(&started.user_code.to_lowercase(), "carol", chat, true)
            .unwrap();
        let approved = flow.poll(&started.device_code).unwrap();
        assert_eq!(
            (approved.username.as_str(), approved.scopes),
            ("carol", chat)
        );
        assert_eq!(
            flow.poll(&started.device_code),
            Err(DevicePoll::InvalidGrant),
            "a device code works once"
        );
    }

    #[test]
    fn denial_expiry_and_scope_limits() {
        let (flow, clock) = flow();
        let denied = flow.start("cli", None, HOST).unwrap();
        flow.decide(&denied.user_code, "carol", Scopes::all(), false)
            .unwrap();
        assert_eq!(
            flow.poll(&denied.device_code),
            Err(DevicePoll::AccessDenied)
        );

        let asked = flow
            .start(
                "cli",
                Some(Scopes::parse_list("chat:read,admin").unwrap()),
                HOST,
            )
            .unwrap();
        flow.decide(
            &asked.user_code,
            "carol",
            Scopes::parse_list("chat:read").unwrap(),
            true,
        )
        .unwrap();
        assert_eq!(
            flow.poll(&asked.device_code).unwrap().scopes,
            Scopes::parse_list("chat:read").unwrap()
        );

        let late = flow.start("cli", None, HOST).unwrap();
        clock.advance(time::Duration::seconds(601));
        assert_eq!(
            flow.decide(&late.user_code, "carol", Scopes::all(), true),
            Err(DeviceError::UnknownCode)
        );
        assert_eq!(flow.poll(&late.device_code), Err(DevicePoll::ExpiredToken));
        assert_eq!(flow.poll("aisd_garbage"), Err(DevicePoll::InvalidGrant));
        assert_eq!(
            flow.decide("BBBB-BBBB", "carol", Scopes::all(), true),
            Err(DeviceError::UnknownCode)
        );
    }
}
