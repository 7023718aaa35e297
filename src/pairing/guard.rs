//! Limits on guessing that per-address limits cannot see: wrong pairing secrets from
//! many addresses at once (a distributed guesser), and floods of claim polls. Both run on
//! the gateway's injected clock (governor's GCRA with the clock adapted), so tests move
//! time instead of sleeping. This module only counts; the pairing service decides what
//! a refusal means and the routes turn it into a 429.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::clock::SharedClock;

/// Claims checked against an open offer, from every address together: a burst of
/// [`CLAIM_BURST`], then [`CLAIMS_PER_MINUTE`]. An honest phone makes one claim per
/// offer; an offer living its longest (10 minutes) thus faces at most 110 guesses of its
/// 2^80 secrets, however many addresses guess.
pub const CLAIMS_PER_MINUTE: u32 = 10;
pub const CLAIM_BURST: u32 = 10;
/// Polls of claims from one address (the page polls every 2 s).
pub const POLLS_PER_MINUTE: u32 = 60;
pub const POLL_BURST: u32 = 20;
/// Addresses the poll limiter remembers before it forgets those that are idle.
const MAX_POLLERS: usize = 4096;

/// The gateway's clock as governor reads it: nanoseconds since the Unix epoch.
#[derive(Debug, Clone)]
struct Ticks(SharedClock);

impl Clock for Ticks {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let nanos = self.0.now().unix_timestamp_nanos();
        Nanos::from(u64::try_from(nanos).unwrap_or(0))
    }
}

type Global = RateLimiter<NotKeyed, InMemoryState, Ticks, NoOpMiddleware<Nanos>>;
type PerAddress = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, Ticks, NoOpMiddleware<Nanos>>;

fn quota(per_minute: u32, burst: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

/// The pairing service's own limiters.
#[derive(Debug)]
pub struct Guard {
    ticks: Ticks,
    claims: Global,
    polls: PerAddress,
}

impl Guard {
    pub fn new(clock: SharedClock) -> Guard {
        let ticks = Ticks(clock);
        Guard {
            claims: RateLimiter::direct_with_clock(
                quota(CLAIMS_PER_MINUTE, CLAIM_BURST),
                ticks.clone(),
            ),
            polls: RateLimiter::new(
                quota(POLLS_PER_MINUTE, POLL_BURST),
                DefaultKeyedStateStore::default(),
                ticks.clone(),
            ),
            ticks,
        }
    }

    /// Spends one of the claims every address shares; `Err(wait)` when none is left.
    pub fn claim(&self) -> Result<(), Duration> {
        self.claims
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.ticks.now()))
    }

    /// Spends one poll of `from` (an address as the server counts clients);
    /// `Err(wait)` when it has polled too often.
    pub fn poll(&self, from: IpAddr) -> Result<(), Duration> {
        if self.polls.len() >= MAX_POLLERS {
            self.polls.retain_recent();
            self.polls.shrink_to_fit();
        }
        self.polls
            .check_key(&from)
            .map_err(|not_until| not_until.wait_time_from(self.ticks.now()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn claims_are_shared_by_every_address_and_come_back_with_time() {
        let clock = Arc::new(ManualClock::new(
            time::macros::datetime!(2026-01-01 12:00 UTC),
        ));
        let guard = Guard::new(clock.clone());
        for _ in 0..CLAIM_BURST {
            guard.claim().unwrap();
        }
        let wait = guard.claim().unwrap_err();
        assert_eq!(wait, Duration::from_secs(6));
        clock.advance(time::Duration::seconds(6));
        guard.claim().unwrap();
        assert!(guard.claim().is_err());
    }

    #[test]
    fn polls_are_counted_per_address() {
        let clock = Arc::new(ManualClock::new(
            time::macros::datetime!(2026-01-01 12:00 UTC),
        ));
        let guard = Guard::new(clock.clone());
        let flood: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..POLL_BURST {
            guard.poll(flood).unwrap();
        }
        assert!(guard.poll(flood).is_err());
        guard.poll("192.0.2.2".parse().unwrap()).unwrap();
        clock.advance(time::Duration::seconds(1));
        guard.poll(flood).unwrap();
    }
}
