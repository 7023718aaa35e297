//! Per-API-token limits: requests a minute and model tokens a UTC day.
//!
//! [`Quota::admit`] is the one check. The server calls it before every request that
//! can reach a model (the `/v1/*` routes, posting a chat message, `/ws` `chat.send`)
//! when the caller came with an API token that has [`TokenLimits`]. Requests a minute
//! are a GCRA bucket on the injected clock (a burst of `n`, then one every `60 / n`
//! seconds, as OpenAI's own limits refill); tokens a day are the prompt and completion
//! tokens [`Usage`] counted for that token on the current UTC day, so a request that
//! starts under the limit finishes and the next one is refused. Per token it keeps one
//! instant and the audit window of its last refusal; only tokens with limits are kept,
//! and only while their bucket is refilling, so the map stays as small as the set of
//! limited tokens in use. This module never speaks HTTP and never writes the audit log:
//! a refusal says whether it is the first of its window, and the caller records it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use time::{Date, OffsetDateTime, UtcOffset};

use crate::auth::tokens::TokenLimits;
use crate::gateway::usage::{Usage, UsageError, UsageFilter};

const NANOS_PER_MINUTE: i128 = 60_000_000_000;
const NANOS_PER_SECOND: i128 = 1_000_000_000;
/// Above this many remembered tokens, those whose bucket is full again are forgotten.
const PRUNE_ABOVE: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error(transparent)]
    Exceeded(#[from] QuotaExceeded),
    #[error(transparent)]
    Usage(#[from] UsageError),
}

/// Which of a token's limits refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    RequestsPerMinute,
    TokensPerDay,
}

impl Limit {
    /// The field that sets it, as the API and the CLI name it.
    pub fn field(self) -> &'static str {
        match self {
            Limit::RequestsPerMinute => "requests_per_minute",
            Limit::TokensPerDay => "tokens_per_day",
        }
    }

    fn index(self) -> usize {
        match self {
            Limit::RequestsPerMinute => 0,
            Limit::TokensPerDay => 1,
        }
    }
}

/// A refusal: which limit, how far it is used, and when a retry can succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct QuotaExceeded {
    pub limit: Limit,
    /// The limit's value.
    pub allowed: u64,
    /// Tokens used today (`TokensPerDay`); the requests of the minute (`RequestsPerMinute`).
    pub used: u64,
    /// Until the next request can be admitted (whole seconds, at least one).
    pub retry_after: Duration,
    /// `Some(n)` when this refusal is the first of its window (the minute, or the UTC
    /// day) and is to be audited, `n` refusals having gone unrecorded before it.
    pub audit: Option<u64>,
}

impl QuotaExceeded {
    fn describe(&self) -> String {
        let secs = self.retry_after.as_secs();
        match self.limit {
            Limit::RequestsPerMinute => format!(
                "this API token's limit of {} requests a minute is reached; retry in {secs} s",
                self.allowed
            ),
            Limit::TokensPerDay => format!(
                "this API token's limit of {} model tokens a day is used up ({} used today, UTC); retry in {secs} s, after midnight UTC",
                self.allowed, self.used
            ),
        }
    }
}

/// What is kept per limited token.
#[derive(Debug, Clone, Copy)]
struct TokenState {
    /// GCRA's theoretical arrival time, in nanoseconds since the Unix epoch.
    tat: i128,
    /// Per [`Limit`]: the window of the last audited refusal and the refusals since.
    audited: [(Option<i64>, u64); 2],
}

/// The limits' state for one gateway.
#[derive(Debug, Default)]
pub struct Quota {
    tokens: Mutex<HashMap<String, TokenState>>,
}

impl Quota {
    pub fn new() -> Quota {
        Quota::default()
    }

    /// Admits one request of token `token` with `limits` at `now`, or says which limit
    /// refuses and for how long. An admitted request counts against requests a minute;
    /// a refused one does not.
    pub fn admit(
        &self,
        usage: &Usage,
        token: &str,
        limits: &TokenLimits,
        now: OffsetDateTime,
    ) -> Result<(), QuotaError> {
        let now_nanos = now.unix_timestamp_nanos();
        if let Some(allowed) = limits.tokens_per_day {
            let day = now.to_offset(UtcOffset::UTC).date();
            let used = used_on(usage, token, day)?;
            if used >= allowed {
                let midnight = day.next_day().map_or(i128::MAX, |d| {
                    d.midnight().assume_utc().unix_timestamp_nanos()
                });
                return Err(self
                    .refused(
                        token,
                        Limit::TokensPerDay,
                        i64::from(day.to_julian_day()),
                        allowed,
                        used,
                        midnight.saturating_sub(now_nanos),
                    )
                    .into());
            }
        }
        if let Some(per_minute) = limits.requests_per_minute {
            let per_minute = i128::from(per_minute.max(1));
            let interval = NANOS_PER_MINUTE / per_minute;
            // Ahead of now by at most this much, the bucket still holds a request.
            let tolerance = NANOS_PER_MINUTE - interval;
            let mut tokens = self.lock();
            let state = tokens.entry(token.to_string()).or_insert(TokenState {
                tat: now_nanos,
                audited: [(None, 0); 2],
            });
            let tat = state.tat.max(now_nanos);
            let ahead = tat - now_nanos;
            if ahead > tolerance {
                drop(tokens);
                let minute = i64::try_from(now_nanos / NANOS_PER_MINUTE).unwrap_or(i64::MAX);
                let used = u64::try_from(per_minute).unwrap_or(u64::MAX);
                return Err(self
                    .refused(
                        token,
                        Limit::RequestsPerMinute,
                        minute,
                        used,
                        used,
                        ahead - tolerance,
                    )
                    .into());
            }
            state.tat = tat + interval;
            if tokens.len() > PRUNE_ABOVE {
                tokens.retain(|_, state| state.tat > now_nanos);
            }
        }
        Ok(())
    }

    /// How many tokens it keeps state for.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TokenState>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refused(
        &self,
        token: &str,
        limit: Limit,
        window: i64,
        allowed: u64,
        used: u64,
        wait_nanos: i128,
    ) -> QuotaExceeded {
        let mut tokens = self.lock();
        let state = tokens.entry(token.to_string()).or_insert(TokenState {
            tat: 0,
            audited: [(None, 0); 2],
        });
        let audit = match state.audited.get_mut(limit.index()) {
            Some((last, suppressed)) if *last == Some(window) => {
                *suppressed = suppressed.saturating_add(1);
                None
            }
            Some((last, suppressed)) => {
                *last = Some(window);
                Some(std::mem::take(suppressed))
            }
            None => Some(0),
        };
        // Whole seconds, rounded up: a client that waits exactly this long is admitted.
        let secs = (wait_nanos.max(1) + NANOS_PER_SECOND - 1) / NANOS_PER_SECOND;
        QuotaExceeded {
            limit,
            allowed,
            used,
            retry_after: Duration::from_secs(u64::try_from(secs).unwrap_or(u64::MAX).max(1)),
            audit,
        }
    }
}

/// Prompt plus completion tokens that `token` used on `day`.
fn used_on(usage: &Usage, token: &str, day: Date) -> Result<u64, UsageError> {
    let rows = usage.query(&UsageFilter {
        user: None,
        from: Some(day),
        to: Some(day),
    })?;
    Ok(rows
        .iter()
        .filter(|row| row.token.as_deref() == Some(token))
        .fold(0u64, |sum, row| {
            sum.saturating_add(row.prompt_tokens)
                .saturating_add(row.completion_tokens)
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::gateway::usage::UsageEvent;
    use std::sync::Arc;
    use time::macros::datetime;

    fn fixture() -> (tempfile::TempDir, Usage, ManualClock, Quota) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path(), 1 << 20).unwrap();
        let clock = ManualClock::new(datetime!(2026-03-01 23:58:30 UTC));
        let usage = Usage::open(&store, Arc::new(clock.clone())).unwrap();
        (dir, usage, clock, Quota::new())
    }

    fn refusal(result: Result<(), QuotaError>) -> QuotaExceeded {
        match result {
            Err(QuotaError::Exceeded(exceeded)) => exceeded,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn requests_a_minute_allow_a_burst_then_one_per_interval_and_audit_once_a_window() {
        let (_dir, usage, clock, quota) = fixture();
        let limits = TokenLimits {
            requests_per_minute: Some(3),
            tokens_per_day: None,
        };
        let admit = |token: &str| quota.admit(&usage, token, &limits, clock.now());
        for _ in 0..3 {
            admit("t1").unwrap();
        }
        let first = refusal(admit("t1"));
        assert_eq!(first.limit, Limit::RequestsPerMinute);
        assert_eq!(first.retry_after, Duration::from_secs(20));
        assert_eq!(
            first.audit,
            Some(0),
            "the first refusal of the minute is audited"
        );
        for _ in 0..5 {
            assert_eq!(refusal(admit("t1")).audit, None);
        }
        admit("t2").expect("another token has its own bucket");
        clock.advance(time::Duration::seconds(19));
        assert_eq!(refusal(admit("t1")).retry_after, Duration::from_secs(1));
        clock.advance(time::Duration::seconds(1));
        admit("t1").expect("one request refilled after 60/3 s");
        assert_eq!(refusal(admit("t1")).retry_after, Duration::from_secs(20));
        clock.advance(time::Duration::seconds(60));
        // A new minute: the next refusal is audited with the count of those unrecorded.
        for _ in 0..3 {
            admit("t1").unwrap();
        }
        assert_eq!(refusal(admit("t1")).audit, Some(7));
        let unlimited = TokenLimits::default();
        for _ in 0..100 {
            quota.admit(&usage, "t3", &unlimited, clock.now()).unwrap();
        }
        assert_eq!(quota.tracked(), 2, "unlimited tokens are not tracked");
    }

    #[test]
    fn tokens_a_day_count_usage_of_that_token_and_day_and_reset_at_utc_midnight() {
        let (_dir, usage, clock, quota) = fixture();
        let limits = TokenLimits {
            requests_per_minute: None,
            tokens_per_day: Some(1000),
        };
        let event = |token| UsageEvent {
            user: "carol",
            token,
            agent: Some("default"),
            model: "ollama/llama3",
            prompt_tokens: 600,
            completion_tokens: 300,
        };
        usage.record(event(Some("t1")));
        usage.record(event(Some("t2")));
        usage.record(event(None));
        quota.admit(&usage, "t1", &limits, clock.now()).unwrap();
        usage.record(event(Some("t1")));
        let refused = refusal(quota.admit(&usage, "t1", &limits, clock.now()));
        assert_eq!(refused.limit, Limit::TokensPerDay);
        assert_eq!((refused.allowed, refused.used), (1000, 1800));
        assert_eq!(
            refused.retry_after,
            Duration::from_secs(90),
            "until midnight UTC"
        );
        assert!(refused.to_string().contains("1000 model tokens a day"));
        assert_eq!(refused.audit, Some(0));
        assert_eq!(
            refusal(quota.admit(&usage, "t1", &limits, clock.now())).audit,
            None
        );
        quota
            .admit(&usage, "t2", &limits, clock.now())
            .expect("another token's usage is its own");
        clock.advance(time::Duration::seconds(90));
        quota
            .admit(&usage, "t1", &limits, clock.now())
            .expect("a new UTC day");
    }
}
