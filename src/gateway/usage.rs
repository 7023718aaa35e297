//! Usage accounting: requests and prompt and completion tokens, counted per UTC day,
//! user, API token, agent and model.
//!
//! [`Usage::record`] adds one request's figures to its row atomically (a
//! compare-and-swap on the row, so concurrent recorders never lose a count);
//! [`Usage::query`] reads rows back by day range and user. The day comes from the
//! injected clock. This module never decides who may read which rows (the route does)
//! and never stores anything but counts and the names they are counted under.
//!
//! A count is in the store, and seen by quotas, as soon as `record` returns, but it is
//! not synced to disk by each request: the store's background flush (every 500 ms) or
//! the next durable write (an audit record, a stop) makes it durable. Waiting for a disk
//! sync per answer cost a blocking thread per request under load, for figures of which
//! a power cut may lose at most the last half second.

use serde::{Deserialize, Serialize};
use time::Date;
use time::macros::format_description;

use crate::clock::SharedClock;
use crate::store::{Store, StoreError, Tree, TreeName};

/// Separates the parts of a row's key; no name it joins can contain it.
const SEPARATOR: char = '\u{1f}';

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("{0:?} is not a day: use YYYY-MM-DD")]
    BadDay(String),
    #[error("the day range ends ({to}) before it starts ({from})")]
    EmptyRange { from: String, to: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One request's usage, as the agent loop or the OpenAI API reports it.
#[derive(Debug, Clone, Copy)]
pub struct UsageEvent<'a> {
    pub user: &'a str,
    /// The API token's id, when the request came with one.
    pub token: Option<&'a str>,
    /// The agent that ran, or `None` for a `provider/model` pass-through.
    pub agent: Option<&'a str>,
    /// `provider/model` as the upstream was asked.
    pub model: &'a str,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// One row: the counts of one day, user, token, agent and model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    pub day: String,
    pub user: String,
    pub token: Option<String>,
    pub agent: Option<String>,
    pub model: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// Which rows to read.
#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    /// One user's rows; `None` for everyone's.
    pub user: Option<String>,
    /// First and last day, inclusive.
    pub from: Option<Date>,
    pub to: Option<Date>,
}

/// The usage tree.
#[derive(Debug)]
pub struct Usage {
    rows: Tree<String, UsageRow>,
    clock: SharedClock,
}

impl Usage {
    pub fn open(store: &Store, clock: SharedClock) -> Result<Usage, UsageError> {
        Ok(Usage {
            rows: store.tree(TreeName::Usage)?,
            clock,
        })
    }

    /// The UTC day the clock says it is.
    pub fn today(&self) -> Date {
        self.clock.now().to_offset(time::UtcOffset::UTC).date()
    }

    /// Adds one request's figures to today's row for its user, token, agent and model.
    pub fn record(&self, event: UsageEvent<'_>) -> Result<UsageRow, UsageError> {
        let day = format_day(self.today());
        let clean = |text: &str| text.replace(SEPARATOR, "");
        let key = [
            day.as_str(),
            &clean(event.user),
            &clean(event.token.unwrap_or("")),
            &clean(event.agent.unwrap_or("")),
            &clean(event.model),
        ]
        .join(&SEPARATOR.to_string());
        let add = |row: &UsageRow| UsageRow {
            requests: row.requests.saturating_add(1),
            prompt_tokens: row.prompt_tokens.saturating_add(event.prompt_tokens),
            completion_tokens: row
                .completion_tokens
                .saturating_add(event.completion_tokens),
            ..row.clone()
        };
        let first = UsageRow {
            day,
            user: event.user.to_string(),
            token: event.token.map(str::to_string),
            agent: event.agent.map(str::to_string),
            model: event.model.to_string(),
            requests: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
        };
        let row = loop {
            let updated = self
                .rows
                .update::<UsageError>(&key, |row| Ok(Some(add(row))))?;
            if let Some(row) = updated {
                break row;
            }
            let row = add(&first);
            if self.rows.insert_new(&key, &row)? {
                break row;
            }
        };
        Ok(row)
    }

    /// The rows the filter selects, by day, then user, token, agent and model.
    pub fn query(&self, filter: &UsageFilter) -> Result<Vec<UsageRow>, UsageError> {
        if let (Some(from), Some(to)) = (filter.from, filter.to)
            && to < from
        {
            return Err(UsageError::EmptyRange {
                from: format_day(from),
                to: format_day(to),
            });
        }
        let start = filter.from.map(format_day);
        let last = filter.to.map(format_day);
        let mut rows = Vec::new();
        for entry in self.rows.iter_from(start.as_ref()) {
            let (_, row) = entry?;
            if last.as_ref().is_some_and(|last| row.day > *last) {
                break;
            }
            if filter.user.as_ref().is_none_or(|user| *user == row.user) {
                rows.push(row);
            }
        }
        Ok(rows)
    }
}

/// Parses `YYYY-MM-DD`.
pub fn parse_day(text: &str) -> Result<Date, UsageError> {
    Date::parse(text, format_description!("[year]-[month]-[day]"))
        .map_err(|_| UsageError::BadDay(text.chars().take(20).collect()))
}

fn format_day(day: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use time::macros::datetime;

    #[test]
    fn concurrent_records_all_count_and_days_split_at_utc_midnight() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let clock = crate::clock::ManualClock::new(datetime!(2026-03-01 23:59:00 UTC));
        let usage = Arc::new(Usage::open(&store, Arc::new(clock.clone())).unwrap());
        let event = UsageEvent {
            user: "alice",
            token: Some("t1"),
            agent: Some("default"),
            model: "ollama/llama3",
            prompt_tokens: 10,
            completion_tokens: 5,
        };
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let usage = usage.clone();
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        usage.record(event).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        clock.advance(time::Duration::minutes(2));
        usage.record(event).unwrap();
        usage
            .record(UsageEvent {
                user: "bob",
                ..event
            })
            .unwrap();
        let all = usage.query(&UsageFilter::default()).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(
            (
                all[0].day.as_str(),
                all[0].requests,
                all[0].prompt_tokens,
                all[0].completion_tokens
            ),
            ("2026-03-01", 20, 200, 100)
        );
        let march_2nd = usage
            .query(&UsageFilter {
                user: Some("alice".into()),
                from: Some(parse_day("2026-03-02").unwrap()),
                to: Some(parse_day("2026-03-02").unwrap()),
            })
            .unwrap();
        assert_eq!(march_2nd.len(), 1);
        assert_eq!(march_2nd[0].requests, 1);
        assert!(parse_day("2026-13-01").is_err());
    }

    #[test]
    fn a_count_is_seen_at_once_without_a_disk_sync_and_survives_a_stop() {
        let dir = tempfile::tempdir().unwrap();
        let clock = crate::clock::ManualClock::new(datetime!(2026-03-01 12:00:00 UTC));
        let event = UsageEvent {
            user: "alice",
            token: Some("t1"),
            agent: None,
            model: "ollama/llama3",
            prompt_tokens: 7,
            completion_tokens: 3,
        };
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            let usage = Usage::open(&store, Arc::new(clock.clone())).unwrap();
            let syncs = store.sync_count();
            usage.record(event).unwrap();
            usage.record(event).unwrap();
            assert_eq!(
                store.sync_count(),
                syncs,
                "an answer waited for a disk sync"
            );
            let rows = usage.query(&UsageFilter::default()).unwrap();
            assert_eq!((rows[0].requests, rows[0].prompt_tokens), (2, 14));
            // What a stop does: its last audit record syncs the store.
            store.sync().unwrap();
        }
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let usage = Usage::open(&store, Arc::new(clock)).unwrap();
        let rows = usage.query(&UsageFilter::default()).unwrap();
        assert_eq!((rows[0].requests, rows[0].completion_tokens), (2, 6));
    }
}
