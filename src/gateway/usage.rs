//! Usage accounting: requests and prompt and completion tokens, counted per UTC day,
//! user, API token, agent and model.
//!
//! [`Usage::record`] adds one request's figures to its row in memory; [`Usage::flush`]
//! adds what was counted since the last flush to the stored rows, one write per row
//! however many answers it counted (a compare-and-swap on the row, so nothing is lost to
//! a concurrent writer). [`Usage::query`] reads the stored rows with the unflushed counts
//! added, so readers (the usage route, per-token limits) always see every answer. A
//! request that records its figures never waits for the store: a flush takes the counts
//! out of memory at once and writes them after, and only flushes and queries wait for
//! each other. The day
//! comes from the injected clock. This module never decides who may read which rows (the
//! route does) and never stores anything but counts and the names they are counted under.
//!
//! The gateway flushes every [`FLUSH_EVERY`] and when it stops; the store makes the
//! writes durable within its own background flush. A busy gateway thus writes a row a
//! flush instead of a log entry and a disk sync per answer (the SD card's wear, and a
//! blocking thread per request under load), and a power cut can lose about the last
//! second's counts.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::Date;
use time::macros::format_description;

use crate::clock::SharedClock;
use crate::store::{Store, StoreError, Tree, TreeName};

/// Separates the parts of a row's key; no name it joins can contain it.
const SEPARATOR: char = '\u{1f}';

/// How often the gateway writes the counts of recent answers to the store.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);

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

/// The usage tree and the counts not yet written to it.
#[derive(Debug)]
pub struct Usage {
    rows: Tree<String, UsageRow>,
    /// Counts since the last flush, by row key; each row holds only what is to be added.
    /// Locked only to add or take counts, never while the store is read or written.
    pending: Mutex<BTreeMap<String, UsageRow>>,
    /// Held by a flush from taking the counts until they are stored, and by a query while
    /// it reads both, so a query never misses counts a flush has in hand.
    flushing: Mutex<()>,
    clock: SharedClock,
}

impl Usage {
    pub fn open(store: &Store, clock: SharedClock) -> Result<Usage, UsageError> {
        Ok(Usage {
            rows: store.tree(TreeName::Usage)?,
            pending: Mutex::new(BTreeMap::new()),
            flushing: Mutex::new(()),
            clock,
        })
    }

    /// The UTC day the clock says it is.
    pub fn today(&self) -> Date {
        self.clock.now().to_offset(time::UtcOffset::UTC).date()
    }

    /// Adds one request's figures to today's row for its user, token, agent and model.
    /// In memory only: [`Self::flush`] writes them.
    pub fn record(&self, event: UsageEvent<'_>) {
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
        let mut pending = self.pending();
        let row = pending.entry(key).or_insert_with(|| UsageRow {
            day,
            user: event.user.to_string(),
            token: event.token.map(str::to_string),
            agent: event.agent.map(str::to_string),
            model: event.model.to_string(),
            requests: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
        });
        *row = row.plus(1, event.prompt_tokens, event.completion_tokens);
    }

    /// Adds the counts recorded since the last flush to the stored rows. A row that
    /// cannot be written keeps its counts for the next flush.
    pub fn flush(&self) -> Result<(), UsageError> {
        let _flushing = lock(&self.flushing);
        let taken = std::mem::take(&mut *self.pending());
        let mut failure = None;
        let mut unwritten = Vec::new();
        for (key, counts) in taken {
            if let Err(err) = self.add_to_stored(&key, &counts) {
                failure.get_or_insert(err);
                unwritten.push((key, counts));
            }
        }
        if !unwritten.is_empty() {
            let mut pending = self.pending();
            for (key, counts) in unwritten {
                let row = match pending.get(&key) {
                    Some(newer) => {
                        counts.plus(newer.requests, newer.prompt_tokens, newer.completion_tokens)
                    }
                    None => counts,
                };
                pending.insert(key, row);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Whether counts wait for a flush.
    pub fn has_pending(&self) -> bool {
        !self.pending().is_empty()
    }

    fn add_to_stored(&self, key: &String, counts: &UsageRow) -> Result<(), UsageError> {
        let add = |row: &UsageRow| {
            row.plus(
                counts.requests,
                counts.prompt_tokens,
                counts.completion_tokens,
            )
        };
        loop {
            if self
                .rows
                .update::<UsageError>(key, |row| Ok(Some(add(row))))?
                .is_some()
            {
                return Ok(());
            }
            if self.rows.insert_new(key, counts)? {
                return Ok(());
            }
        }
    }

    fn pending(&self) -> MutexGuard<'_, BTreeMap<String, UsageRow>> {
        lock(&self.pending)
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
        let selected = |row: &UsageRow| {
            start.as_ref().is_none_or(|start| row.day >= *start)
                && last.as_ref().is_none_or(|last| row.day <= *last)
                && filter.user.as_ref().is_none_or(|user| *user == row.user)
        };
        // No flush can move counts from memory to the store while both are read.
        let _flushing = lock(&self.flushing);
        let mut rows = BTreeMap::new();
        for entry in self.rows.iter_from(start.as_ref()) {
            let (key, row) = entry?;
            if last.as_ref().is_some_and(|last| row.day > *last) {
                break;
            }
            if selected(&row) {
                rows.insert(key, row);
            }
        }
        let pending: Vec<(String, UsageRow)> = self
            .pending()
            .iter()
            .filter(|(_, row)| selected(row))
            .map(|(key, row)| (key.clone(), row.clone()))
            .collect();
        for (key, counts) in pending {
            let row = match rows.get(&key) {
                Some(stored) => stored.plus(
                    counts.requests,
                    counts.prompt_tokens,
                    counts.completion_tokens,
                ),
                None => counts,
            };
            rows.insert(key, row);
        }
        Ok(rows.into_values().collect())
    }
}

impl UsageRow {
    /// This row with the given counts added.
    fn plus(&self, requests: u64, prompt_tokens: u64, completion_tokens: u64) -> UsageRow {
        UsageRow {
            requests: self.requests.saturating_add(requests),
            prompt_tokens: self.prompt_tokens.saturating_add(prompt_tokens),
            completion_tokens: self.completion_tokens.saturating_add(completion_tokens),
            ..self.clone()
        }
    }
}

/// A lock whose holder panicked still guards whole counts: each change is one insert.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
    fn a_request_records_while_a_flush_is_writing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let clock = crate::clock::ManualClock::new(datetime!(2026-03-01 12:00:00 UTC));
        let usage = Arc::new(Usage::open(&store, Arc::new(clock)).unwrap());
        let event = UsageEvent {
            user: "alice",
            token: None,
            agent: None,
            model: "ollama/llama3",
            prompt_tokens: 3,
            completion_tokens: 4,
        };
        usage.record(event);
        // A flush in progress: it holds its lock for as long as the store takes.
        let flushing = lock(&usage.flushing);
        let (done, recorded) = std::sync::mpsc::channel();
        let recorder = {
            let usage = usage.clone();
            std::thread::spawn(move || {
                usage.record(event);
                done.send(()).unwrap();
            })
        };
        recorded
            .recv_timeout(Duration::from_secs(10))
            .expect("recording waited for the flush");
        recorder.join().unwrap();
        drop(flushing);
        usage.flush().unwrap();
        usage.record(event);
        let rows = usage.query(&UsageFilter::default()).unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| (r.requests, r.prompt_tokens, r.completion_tokens))
                .collect::<Vec<_>>(),
            [(3, 9, 12)]
        );
    }

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
        const MODELS: [&str; 10] = [
            "m/0", "m/1", "m/2", "m/3", "m/4", "m/5", "m/6", "m/7", "m/8", "m/9",
        ];
        // Four recorders, a flusher and a reader at once: no count may be lost or doubled
        // between memory and the store, and no query may see fewer than one before it.
        let threads: Vec<_> = (0..6)
            .map(|n| {
                let usage = usage.clone();
                std::thread::spawn(move || {
                    let mut seen = 0;
                    for i in 0..50 {
                        match n {
                            4 => usage.flush().unwrap(),
                            5 => {
                                let now: u64 = usage
                                    .query(&UsageFilter::default())
                                    .unwrap()
                                    .iter()
                                    .map(|row| row.requests)
                                    .sum();
                                assert!(now >= seen, "a query saw {now} requests after {seen}");
                                seen = now;
                            }
                            // Many rows, so that a flush has much in hand at once.
                            _ => usage.record(UsageEvent {
                                model: MODELS[i % MODELS.len()],
                                ..event
                            }),
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        clock.advance(time::Duration::minutes(2));
        usage.record(event);
        usage.record(UsageEvent {
            user: "bob",
            ..event
        });
        let all = usage.query(&UsageFilter::default()).unwrap();
        assert_eq!(all.len(), MODELS.len() + 2);
        let first_day: Vec<_> = all.iter().filter(|r| r.day == "2026-03-01").collect();
        assert_eq!(first_day.len(), MODELS.len());
        let total = |count: fn(&UsageRow) -> u64| first_day.iter().map(|r| count(r)).sum::<u64>();
        assert_eq!(
            (
                total(|r| r.requests),
                total(|r| r.prompt_tokens),
                total(|r| r.completion_tokens)
            ),
            (200, 2000, 1000)
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
    fn counts_are_seen_at_once_written_a_row_a_flush_without_a_disk_sync_and_survive_a_stop() {
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
        let totals = |usage: &Usage| {
            usage
                .query(&UsageFilter::default())
                .unwrap()
                .iter()
                .map(|row| (row.requests, row.prompt_tokens, row.completion_tokens))
                .collect::<Vec<_>>()
        };
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            let usage = Usage::open(&store, Arc::new(clock.clone())).unwrap();
            // A second reader of the same store sees only what was written to it.
            let stored = Usage::open(&store, Arc::new(clock.clone())).unwrap();
            let syncs = store.sync_count();
            for _ in 0..1000 {
                usage.record(event);
            }
            assert_eq!(totals(&usage), [(1000, 7000, 3000)], "seen at once");
            assert_eq!(totals(&stored), [], "nothing written before a flush");
            assert!(usage.has_pending());
            usage.flush().unwrap();
            assert!(!usage.has_pending());
            usage.record(event);
            assert_eq!(totals(&stored), [(1000, 7000, 3000)], "one row for 1,000");
            assert_eq!(totals(&usage), [(1001, 7007, 3003)]);
            usage.flush().unwrap();
            assert_eq!(
                store.sync_count(),
                syncs,
                "an answer waited for a disk sync"
            );
            // What a stop does: its last audit record syncs the store.
            store.sync().unwrap();
        }
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let usage = Usage::open(&store, Arc::new(clock)).unwrap();
        assert_eq!(totals(&usage), [(1001, 7007, 3003)]);
    }
}
