//! The audit log: an append-only, hash-chained record of every security-relevant action.
//!
//! Each record carries the SHA-256 of the previous record (`prev_hash`) and its own
//! (`hash`, over every other field), so a changed, removed or reordered record breaks the
//! chain at that point. [`Audit::record`] returns only once the record is durable.
//! Retention prunes old records but first stores a checkpoint (the last pruned record's
//! seq and hash), authenticated with HMAC-SHA256 under a key kept sealed in the store, so
//! `verify` still proves the chain from the cut onward. This module never records
//! secrets: callers pass names, ids and outcomes, never passwords, tokens or keys.

use std::net::IpAddr;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::{SharedClock, rfc3339};
use crate::secret::SecretBytes;
use crate::security::secrets::{Secrets, SecretsError};
use crate::store::{AuditSeq, MetaKey, SecretName, Store, StoreError, Tree, TreeName};

const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const CHECKPOINT_KEY: &str = "audit.checkpoint";
const CHECKPOINT_SECRET: &str = "audit.checkpoint-key";

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(
        "audit record could not be written: the disk is full; free space, then retry (nothing was lost)"
    )]
    DiskFull,
    #[error("audit store error: {0}")]
    Store(#[from] StoreError),
    #[error("audit key error: {0}")]
    Key(#[from] SecretsError),
    #[error("{0}")]
    Query(String),
    #[error("audit chain broken at seq {seq}: {reason}")]
    Broken { seq: u64, reason: String },
}

impl AuditError {
    fn from_store(err: StoreError) -> Self {
        if err.is_disk_full() {
            AuditError::DiskFull
        } else {
            AuditError::Store(err)
        }
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

/// What a caller reports; the log adds seq, time and hashes.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: Outcome,
    pub source_ip: Option<IpAddr>,
    pub details: serde_json::Value,
}

impl AuditEvent {
    /// An event by the gateway itself (`actor = "system"`) that succeeded.
    pub fn new(action: &str) -> Self {
        AuditEvent {
            actor: "system".into(),
            action: action.into(),
            target: String::new(),
            outcome: Outcome::Success,
            source_ip: None,
            details: serde_json::Value::Null,
        }
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = target.into();
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn source_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.source_ip = ip;
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// One stored record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    pub time: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: Outcome,
    pub source_ip: Option<String>,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The fields a hash covers, in a fixed order.
#[derive(Serialize)]
struct Hashed<'a> {
    seq: u64,
    time: &'a str,
    actor: &'a str,
    action: &'a str,
    target: &'a str,
    outcome: Outcome,
    source_ip: &'a Option<String>,
    details: &'a serde_json::Value,
    prev_hash: &'a str,
}

impl AuditRecord {
    fn compute_hash(&self) -> String {
        let hashed = Hashed {
            seq: self.seq,
            time: &self.time,
            actor: &self.actor,
            action: &self.action,
            target: &self.target,
            outcome: self.outcome,
            source_ip: &self.source_ip,
            details: &self.details,
            prev_hash: &self.prev_hash,
        };
        let bytes = serde_json::to_vec(&hashed).unwrap_or_default();
        hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes))
    }

    fn time(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(&self.time, &time::format_description::well_known::Rfc3339).ok()
    }
}

/// The authenticated boundary left by retention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    pub time: String,
    pub mac: String,
}

impl Checkpoint {
    fn mac(key: &SecretBytes, seq: u64, hash: &str, time: &str) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.expose());
        let message = format!("aisopod audit checkpoint v1\n{seq}\n{hash}\n{time}");
        hex::encode(ring::hmac::sign(&key, message.as_bytes()))
    }
}

/// What `verify` found when the chain holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verified {
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub checkpoint_seq: Option<u64>,
}

/// Filters for `list`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Query {
    pub since: Option<String>,
    pub action: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug)]
struct Head {
    next_seq: u64,
    last_hash: String,
}

/// The audit log service.
#[derive(Debug)]
pub struct Audit {
    store: Store,
    records: Tree<AuditSeq, AuditRecord>,
    meta: Tree<MetaKey, Checkpoint>,
    checkpoint_key: SecretBytes,
    clock: SharedClock,
    head: Mutex<Head>,
}

impl Audit {
    pub fn open(store: &Store, secrets: &Secrets, clock: SharedClock) -> Result<Audit, AuditError> {
        let records: Tree<AuditSeq, AuditRecord> = store.tree(TreeName::Audit)?;
        let meta: Tree<MetaKey, Checkpoint> = store.tree(TreeName::Meta)?;
        let checkpoint_key = secrets.get_or_create_key(&SecretName::constant(CHECKPOINT_SECRET))?;
        let head = match records.last()? {
            Some((_, last)) => Head {
                next_seq: last.seq + 1,
                last_hash: last.hash,
            },
            None => match meta.get(&MetaKey::new(CHECKPOINT_KEY))? {
                Some(checkpoint) => Head {
                    next_seq: checkpoint.seq + 1,
                    last_hash: checkpoint.hash,
                },
                None => Head {
                    next_seq: 1,
                    last_hash: GENESIS_HASH.into(),
                },
            },
        };
        Ok(Audit {
            store: store.clone(),
            records,
            meta,
            checkpoint_key,
            clock,
            head: Mutex::new(head),
        })
    }

    /// Appends one record and returns once it is durable.
    pub fn record(&self, event: AuditEvent) -> Result<u64, AuditError> {
        let seq = {
            let mut head = self
                .head
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut record = AuditRecord {
                seq: head.next_seq,
                time: rfc3339(self.clock.now()),
                actor: event.actor,
                action: event.action,
                target: event.target,
                outcome: event.outcome,
                source_ip: event.source_ip.map(|ip| ip.to_string()),
                details: event.details,
                prev_hash: head.last_hash.clone(),
                hash: String::new(),
            };
            record.hash = record.compute_hash();
            self.records
                .insert(&AuditSeq(record.seq), &record)
                .map_err(AuditError::from_store)?;
            head.next_seq += 1;
            head.last_hash = record.hash;
            record.seq
        };
        // Outside the lock, so that concurrent appenders share one fsync.
        self.store.sync().map_err(AuditError::from_store)?;
        Ok(seq)
    }

    /// Records an event, logging instead of failing when the log cannot be written;
    /// for paths where refusing the action is not possible (shutdown, refused requests).
    pub fn record_or_log(&self, event: AuditEvent) {
        let action = event.action.clone();
        if let Err(err) = self.record(event) {
            tracing::error!(%action, error = %err, "audit record could not be written");
        }
    }

    /// Records matching a query, oldest first.
    pub fn list(&self, query: &Query) -> Result<Vec<AuditRecord>, AuditError> {
        let since = match &query.since {
            Some(text) => Some(parse_since(text, self.clock.now()).map_err(AuditError::Query)?),
            None => None,
        };
        let mut out = Vec::new();
        for entry in self.records.iter_from(None) {
            let (_, record) = entry?;
            if let Some(since) = since
                && record.time().is_some_and(|t| t < since)
            {
                continue;
            }
            if query
                .action
                .as_ref()
                .is_some_and(|a| !matches_action(&record.action, a))
            {
                continue;
            }
            out.push(record);
        }
        if let Some(limit) = query.limit {
            let skip = out.len().saturating_sub(limit);
            out.drain(..skip);
        }
        Ok(out)
    }

    /// Every record, oldest first, for export.
    pub fn all(&self) -> impl Iterator<Item = Result<AuditRecord, AuditError>> + '_ {
        self.records
            .iter_from(None)
            .map(|entry| entry.map(|(_, r)| r).map_err(AuditError::from))
    }

    /// Walks the chain; `Err(Broken)` names the first record that does not fit.
    pub fn verify(&self) -> Result<Verified, AuditError> {
        let checkpoint = self.meta.get(&MetaKey::new(CHECKPOINT_KEY))?;
        if let Some(cp) = &checkpoint
            && Checkpoint::mac(&self.checkpoint_key, cp.seq, &cp.hash, &cp.time) != cp.mac
        {
            return Err(AuditError::Broken {
                seq: cp.seq,
                reason: "the retention checkpoint's signature does not match".into(),
            });
        }
        let (mut expected_seq, mut prev_hash) = match &checkpoint {
            Some(cp) => (cp.seq + 1, cp.hash.clone()),
            None => (1, GENESIS_HASH.to_string()),
        };
        let mut verified = Verified {
            records: 0,
            first_seq: None,
            last_seq: None,
            checkpoint_seq: checkpoint.as_ref().map(|cp| cp.seq),
        };
        for entry in self.records.iter_from(None) {
            let (key, record) = entry?;
            let broken = |reason: String| AuditError::Broken { seq: key.0, reason };
            if key.0 != record.seq {
                return Err(broken(format!(
                    "stored under seq {} but says {}",
                    key.0, record.seq
                )));
            }
            // A crash between writing a checkpoint and pruning leaves records up to the
            // checkpoint in place; they must lead exactly to the checkpoint's hash.
            if let Some(cp) = checkpoint.as_ref().filter(|cp| record.seq <= cp.seq) {
                if record.compute_hash() != record.hash {
                    return Err(broken("record content does not match its hash".into()));
                }
                if record.seq == cp.seq && record.hash != cp.hash {
                    return Err(broken(
                        "record does not match the retention checkpoint".into(),
                    ));
                }
                continue;
            }
            if record.seq != expected_seq {
                return Err(AuditError::Broken {
                    seq: expected_seq,
                    reason: format!("record missing (next present is {})", record.seq),
                });
            }
            if record.prev_hash != prev_hash {
                return Err(broken(
                    "prev_hash does not match the previous record".into(),
                ));
            }
            if record.compute_hash() != record.hash {
                return Err(broken("record content does not match its hash".into()));
            }
            verified.records += 1;
            verified.first_seq.get_or_insert(record.seq);
            verified.last_seq = Some(record.seq);
            prev_hash = record.hash;
            expected_seq += 1;
        }
        Ok(verified)
    }

    /// Removes records older than `retention_days`, leaving a signed checkpoint.
    pub fn prune(&self, retention_days: u32) -> Result<usize, AuditError> {
        let cutoff = self.clock.now() - time::Duration::days(i64::from(retention_days));
        let mut last_old = None;
        for entry in self.records.iter_from(None) {
            let (_, record) = entry?;
            match record.time() {
                Some(t) if t < cutoff => last_old = Some(record),
                _ => break,
            }
        }
        let Some(last) = last_old else { return Ok(0) };
        let time = rfc3339(self.clock.now());
        let checkpoint = Checkpoint {
            mac: Checkpoint::mac(&self.checkpoint_key, last.seq, &last.hash, &time),
            seq: last.seq,
            hash: last.hash.clone(),
            time,
        };
        self.meta
            .insert(&MetaKey::new(CHECKPOINT_KEY), &checkpoint)?;
        self.store.sync().map_err(AuditError::from_store)?;
        let removed = self.records.remove_before(&AuditSeq(last.seq + 1))?;
        self.store.sync().map_err(AuditError::from_store)?;
        Ok(removed)
    }
}

/// `"audit.*"` matches every action under `audit.`; otherwise exact.
fn matches_action(action: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => action.starts_with(prefix),
        None => action == pattern,
    }
}

/// `--since` takes an RFC 3339 time or a duration back from now (`"1h"`, `"7d"`).
pub fn parse_since(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    if let Ok(at) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Ok(at);
    }
    let back = crate::config::parse_duration(text)
        .map_err(|_| format!("invalid --since {text:?}: give an RFC 3339 time (2026-01-31T12:00:00Z) or a duration such as 1h or 7d"))?;
    let back = time::Duration::try_from(back)
        .map_err(|_| format!("invalid --since {text:?}: too far back"))?;
    now.checked_sub(back)
        .ok_or_else(|| format!("invalid --since {text:?}: too far back"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        audit: Audit,
        clock: ManualClock,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let secrets = Secrets::open(dir.path(), &store).unwrap();
        let clock = ManualClock::new(OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap());
        let audit = Audit::open(&store, &secrets, Arc::new(clock.clone())).unwrap();
        Fixture {
            _dir: dir,
            store,
            audit,
            clock,
        }
    }

    fn tamper(f: &Fixture, seq: u64, change: impl FnOnce(&mut AuditRecord)) {
        let mut record = f.audit.records.get(&AuditSeq(seq)).unwrap().unwrap();
        change(&mut record);
        f.audit.records.insert(&AuditSeq(seq), &record).unwrap();
    }

    #[test]
    fn records_chain_and_verify() {
        let f = fixture();
        for i in 0..10 {
            let seq = f
                .audit
                .record(
                    AuditEvent::new("test.event")
                        .target(format!("t{i}"))
                        .details(serde_json::json!({"i": i})),
                )
                .unwrap();
            assert_eq!(seq, i + 1);
        }
        let verified = f.audit.verify().unwrap();
        assert_eq!(verified.records, 10);
        assert_eq!(verified.last_seq, Some(10));
        let all = f.audit.list(&Query::default()).unwrap();
        assert_eq!(all[0].prev_hash, GENESIS_HASH);
        assert_eq!(all[1].prev_hash, all[0].hash);
    }

    #[test]
    fn any_change_breaks_the_chain_at_that_record() {
        type Change = Box<dyn FnOnce(&mut AuditRecord)>;
        let cases: Vec<(u64, Change)> = vec![
            (4, Box::new(|r| r.outcome = Outcome::Success)),
            (5, Box::new(|r| r.actor = "mallory".into())),
            (6, Box::new(|r| r.details = serde_json::json!({"i": 99}))),
        ];
        for (seq, change) in cases {
            let f = fixture();
            for i in 0..8 {
                f.audit
                    .record(
                        AuditEvent::new("x")
                            .outcome(Outcome::Denied)
                            .details(serde_json::json!({"i": i})),
                    )
                    .unwrap();
            }
            tamper(&f, seq, change);
            match f.audit.verify() {
                Err(AuditError::Broken { seq: bad, .. }) => assert_eq!(bad, seq),
                other => panic!("expected a break at {seq}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_removed_or_rehashed_record_is_detected() {
        let f = fixture();
        for _ in 0..5 {
            f.audit.record(AuditEvent::new("x")).unwrap();
        }
        // Rewriting a record and fixing its own hash still breaks the next link.
        tamper(&f, 3, |r| {
            r.actor = "mallory".into();
            r.hash = r.compute_hash();
        });
        assert!(matches!(
            f.audit.verify(),
            Err(AuditError::Broken { seq: 4, .. })
        ));
        f.audit.records.remove(&AuditSeq(4)).unwrap();
        assert!(matches!(
            f.audit.verify(),
            Err(AuditError::Broken { seq: 3 | 4, .. })
        ));
    }

    #[test]
    fn retention_prunes_old_records_and_verify_holds_across_the_cut() {
        let f = fixture();
        for _ in 0..5 {
            f.audit.record(AuditEvent::new("old")).unwrap();
        }
        f.clock.advance(time::Duration::days(100));
        for _ in 0..3 {
            f.audit.record(AuditEvent::new("new")).unwrap();
        }
        assert_eq!(f.audit.prune(90).unwrap(), 5);
        let verified = f.audit.verify().unwrap();
        assert_eq!(verified.records, 3);
        assert_eq!(verified.checkpoint_seq, Some(5));
        assert_eq!(verified.first_seq, Some(6));
        // Appends continue the chain after a reopen with only the checkpoint behind it.
        f.audit.record(AuditEvent::new("after")).unwrap();
        assert_eq!(f.audit.verify().unwrap().last_seq, Some(9));
        // A forged checkpoint is refused.
        let key = MetaKey::new(CHECKPOINT_KEY);
        let mut cp = f.audit.meta.get(&key).unwrap().unwrap();
        cp.seq = 4;
        f.audit.meta.insert(&key, &cp).unwrap();
        assert!(matches!(
            f.audit.verify(),
            Err(AuditError::Broken { seq: 4, .. })
        ));
        drop(f.store);
    }

    #[test]
    fn list_filters_by_action_and_time() {
        let f = fixture();
        f.audit.record(AuditEvent::new("gateway.start")).unwrap();
        f.clock.advance(time::Duration::hours(2));
        f.audit.record(AuditEvent::new("cert.issued")).unwrap();
        f.audit.record(AuditEvent::new("gateway.stop")).unwrap();
        let query = |since: Option<&str>, action: Option<&str>| Query {
            since: since.map(str::to_string),
            action: action.map(str::to_string),
            limit: None,
        };
        assert_eq!(f.audit.list(&query(Some("1h"), None)).unwrap().len(), 2);
        assert_eq!(
            f.audit.list(&query(None, Some("gateway.*"))).unwrap().len(),
            2
        );
        assert_eq!(
            f.audit
                .list(&query(None, Some("cert.issued")))
                .unwrap()
                .len(),
            1
        );
        assert!(f.audit.list(&query(Some("yesterday-ish"), None)).is_err());
        let limited = f
            .audit
            .list(&Query {
                limit: Some(1),
                ..Query::default()
            })
            .unwrap();
        assert_eq!(limited[0].action, "gateway.stop");
    }
}
