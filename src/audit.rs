//! The audit log: an append-only, hash-chained record of every security-relevant action.
//!
//! Each record carries the SHA-256 of the previous record (`prev_hash`) and its own
//! (`hash`, over every other field), so a changed, removed or reordered record breaks the
//! chain at that point. [`Audit::record`] returns only once the record is durable.
//! Retention prunes old records but first stores a checkpoint (the last pruned record's
//! seq and hash), authenticated with HMAC-SHA256 under a key kept sealed in the store, so
//! `verify` still proves the chain from the cut onward.
//!
//! The unkeyed chain alone lets whoever can write the store cut records off the end or
//! rewrite the tail and recompute the hashes. So every append also stores, in the same
//! sled transaction, a [`Seal`] of the new head: HMAC-SHA256 over its seq and hash
//! under the same key as the checkpoint, which is kept sealed under `master.key`.
//! `verify` refuses a head that is not the sealed one (records cut off, records added,
//! the tail rewritten), and `export` ends with the seal so that an exported log can be
//! checked the same way. A store written before seals existed (0.1.0) is sealed at its
//! current head when first opened. Records written under a seal say so (`sealed`), so a
//! store whose seal was deleted is not taken for an old one: the loss is carried in
//! every later seal and `verify` reports it. This module never records
//! secrets: callers pass names, ids and outcomes, never passwords, tokens or keys.
//!
//! A record never holds a control character: whatever a caller passes (an id or a name
//! that came from a request), [`Audit::record`] stores control and bidirectional
//! formatting characters as visible escapes, so a record cannot fake a line of its own
//! or drive the terminal of whoever reads the log.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::{SharedClock, rfc3339};
use crate::keys::secrets::{Secrets, SecretsError};
use crate::secret::SecretBytes;
use crate::store::{AuditSeq, MetaKey, SecretName, Store, StoreError, Tree, TreeName};

const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const CHECKPOINT_KEY: &str = "audit.checkpoint";
const CHECKPOINT_SECRET: &str = "audit.checkpoint-key";
const SEAL_KEY: &str = "audit.seal";

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
    #[error("line {line} of the export: {reason}")]
    Export { line: usize, reason: String },
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
    /// Written under a seal; absent in records of 0.1.0, whose hashes do not cover it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sealed: bool,
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
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    sealed: bool,
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
            sealed: self.sealed,
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

/// The keyed mark of the chain's head: the last record's seq and hash (0 and the
/// genesis hash before the first record), authenticated with the checkpoint key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seal {
    pub seq: u64,
    pub hash: String,
    /// The head at which the log was once opened and found not to match its seal (the
    /// seal missing, forged, or the records cut or rewritten); carried into every later
    /// seal, so that appending to a tampered log can never make it look whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken_at: Option<u64>,
    pub mac: String,
}

impl Seal {
    fn new(key: &SecretBytes, seq: u64, hash: &str, broken_at: Option<u64>) -> Seal {
        Seal {
            seq,
            hash: hash.to_string(),
            broken_at,
            mac: Seal::mac(key, seq, hash, broken_at),
        }
    }

    fn mac(key: &SecretBytes, seq: u64, hash: &str, broken_at: Option<u64>) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.expose());
        let lost = broken_at.map(|seq| seq.to_string()).unwrap_or_default();
        let message = format!("aisopod audit seal v1\n{seq}\n{hash}\n{lost}");
        hex::encode(ring::hmac::sign(&key, message.as_bytes()))
    }

    fn authentic(&self, key: &SecretBytes) -> bool {
        let expected = Seal::mac(key, self.seq, &self.hash, self.broken_at);
        bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            self.mac.as_bytes(),
        ))
    }
}

/// The last line of `audit export`: what a later check of the exported records needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportSeal {
    pub audit_seal: Option<Seal>,
    pub checkpoint: Option<Checkpoint>,
}

/// A consistent snapshot for export: the records and the seal of their last one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Export {
    pub records: Vec<AuditRecord>,
    pub seal: ExportSeal,
}

/// What `verify` found when the chain holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verified {
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub checkpoint_seq: Option<u64>,
    /// The sealed head the chain ends at (None only for an export without a seal).
    #[serde(default)]
    pub sealed_seq: Option<u64>,
}

/// Where a walk of the chain ended: the last record's seq and hash.
#[derive(Debug, Clone, PartialEq)]
struct ChainEnd {
    seq: u64,
    hash: String,
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
    /// Carried into every seal written from now on (see [`Seal::broken_at`]).
    broken_at: Option<u64>,
}

/// The audit log service.
#[derive(Debug)]
pub struct Audit {
    store: Store,
    records: Tree<AuditSeq, AuditRecord>,
    meta: Tree<MetaKey, Checkpoint>,
    seals: Tree<MetaKey, Seal>,
    checkpoint_key: SecretBytes,
    clock: SharedClock,
    head: Mutex<Head>,
}

impl Audit {
    pub fn open(store: &Store, secrets: &Secrets, clock: SharedClock) -> Result<Audit, AuditError> {
        let records: Tree<AuditSeq, AuditRecord> = store.tree(TreeName::Audit)?;
        let meta: Tree<MetaKey, Checkpoint> = store.tree(TreeName::Meta)?;
        let seals: Tree<MetaKey, Seal> = store.tree(TreeName::Meta)?;
        let checkpoint_key = secrets.get_or_create_key(&SecretName::constant(CHECKPOINT_SECRET))?;
        let last = records.last()?.map(|(_, last)| last);
        let (next_seq, last_hash) = match &last {
            Some(last) => (last.seq + 1, last.hash.clone()),
            None => match meta.get(&MetaKey::new(CHECKPOINT_KEY))? {
                Some(checkpoint) => (checkpoint.seq + 1, checkpoint.hash),
                None => (1, GENESIS_HASH.into()),
            },
        };
        let mut head = Head {
            next_seq,
            last_hash,
            broken_at: None,
        };
        let head_seq = next_seq - 1;
        match seals.get(&MetaKey::new(SEAL_KEY))? {
            Some(seal)
                if seal.authentic(&checkpoint_key)
                    && seal.seq == head_seq
                    && seal.hash == head.last_hash =>
            {
                head.broken_at = seal.broken_at;
            }
            // A store from before seals (no record says it was written under one), or
            // a new store: seal its head from now on.
            None if !last.as_ref().is_some_and(|last| last.sealed) => {
                let seal = Seal::new(&checkpoint_key, head_seq, &head.last_hash, None);
                seals.insert(&MetaKey::new(SEAL_KEY), &seal)?;
                store.sync().map_err(AuditError::from_store)?;
            }
            // The head is not the sealed one: someone without the key cut, rewrote or
            // added records, or removed the seal. Keep serving, but since appending
            // would seal the forged head, carry the break in every seal from now on.
            found => {
                tracing::error!(
                    seq = head_seq,
                    seal = found.is_some(),
                    "the audit log's head does not match its seal: records may have been removed or rewritten; run `aisopod audit verify`"
                );
                let earlier = found
                    .filter(|seal| seal.authentic(&checkpoint_key))
                    .and_then(|seal| seal.broken_at);
                head.broken_at = Some(earlier.unwrap_or(head_seq));
            }
        }
        Ok(Audit {
            store: store.clone(),
            records,
            meta,
            seals,
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
                actor: escape_control(&event.actor).into_owned(),
                action: escape_control(&event.action).into_owned(),
                target: escape_control(&event.target).into_owned(),
                outcome: event.outcome,
                source_ip: event.source_ip.map(|ip| ip.to_string()),
                details: escape_json_strings(event.details),
                sealed: true,
                prev_hash: head.last_hash.clone(),
                hash: String::new(),
            };
            record.hash = record.compute_hash();
            let seal = Seal::new(
                &self.checkpoint_key,
                record.seq,
                &record.hash,
                head.broken_at,
            );
            self.records
                .insert_with(
                    &AuditSeq(record.seq),
                    &record,
                    &self.seals,
                    &MetaKey::new(SEAL_KEY),
                    &seal,
                )
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

    /// Every record, oldest first.
    pub fn all(&self) -> impl Iterator<Item = Result<AuditRecord, AuditError>> + '_ {
        self.records
            .iter_from(None)
            .map(|entry| entry.map(|(_, r)| r).map_err(AuditError::from))
    }

    /// Every record, oldest first, and the seal of the last one, read under the append
    /// lock so that the seal matches the records exactly.
    pub fn export(&self) -> Result<Export, AuditError> {
        let _head = self
            .head
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let records = self.all().collect::<Result<Vec<_>, _>>()?;
        Ok(Export {
            records,
            seal: ExportSeal {
                audit_seal: self.seals.get(&MetaKey::new(SEAL_KEY))?,
                checkpoint: self.meta.get(&MetaKey::new(CHECKPOINT_KEY))?,
            },
        })
    }

    /// Walks the chain and checks its head against the seal; `Err(Broken)` names the
    /// first record that does not fit, or what happened to the end of the log.
    pub fn verify(&self) -> Result<Verified, AuditError> {
        // Under the append lock, so that a record appended meanwhile is not taken for
        // one added behind the seal's back.
        let _head = self
            .head
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let checkpoint = self.meta.get(&MetaKey::new(CHECKPOINT_KEY))?;
        let seal = self.seals.get(&MetaKey::new(SEAL_KEY))?;
        let records = self
            .records
            .iter_from(None)
            .map(|entry| entry.map_err(AuditError::from));
        check_checkpoint(&self.checkpoint_key, checkpoint.as_ref())?;
        let (mut verified, end) = walk(checkpoint.as_ref(), records)?;
        let Some(seal) = seal else {
            return Err(AuditError::Broken {
                seq: end.seq,
                reason: "the seal is missing: records may have been cut off or rewritten".into(),
            });
        };
        check_seal(&self.checkpoint_key, &seal, &end)?;
        verified.sealed_seq = Some(seal.seq);
        Ok(verified)
    }

    /// Checks an exported log's last line (seal and checkpoint) against this log's key,
    /// given where the exported records' chain ended (see [`walk_export`]).
    pub fn verify_export_seal(
        &self,
        seal: &ExportSeal,
        end_seq: u64,
        end_hash: &str,
    ) -> Result<Verified, AuditError> {
        check_checkpoint(&self.checkpoint_key, seal.checkpoint.as_ref())?;
        let end = ChainEnd {
            seq: end_seq,
            hash: end_hash.to_string(),
        };
        let Some(audit_seal) = &seal.audit_seal else {
            return Err(AuditError::Broken {
                seq: end_seq,
                reason: "the export carries no seal".into(),
            });
        };
        check_seal(&self.checkpoint_key, audit_seal, &end)?;
        Ok(Verified {
            records: 0,
            first_seq: None,
            last_seq: Some(end_seq),
            checkpoint_seq: seal.checkpoint.as_ref().map(|cp| cp.seq),
            sealed_seq: Some(audit_seal.seq),
        })
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

/// Checks the chain from the checkpoint (or genesis) through `records`; returns what it
/// found and where it ended. Shared by `verify` and the check of an export.
/// The checkpoint's MAC is checked by the caller ([`check_checkpoint`]).
fn walk(
    checkpoint: Option<&Checkpoint>,
    records: impl Iterator<Item = Result<(AuditSeq, AuditRecord), AuditError>>,
) -> Result<(Verified, ChainEnd), AuditError> {
    let (mut expected_seq, mut prev_hash) = match checkpoint {
        Some(cp) => (cp.seq + 1, cp.hash.clone()),
        None => (1, GENESIS_HASH.to_string()),
    };
    let mut verified = Verified {
        records: 0,
        first_seq: None,
        last_seq: None,
        checkpoint_seq: checkpoint.map(|cp| cp.seq),
        sealed_seq: None,
    };
    for entry in records {
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
        if let Some(cp) = checkpoint.filter(|cp| record.seq <= cp.seq) {
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
    let end = ChainEnd {
        seq: expected_seq - 1,
        hash: prev_hash,
    };
    Ok((verified, end))
}

fn check_checkpoint(key: &SecretBytes, checkpoint: Option<&Checkpoint>) -> Result<(), AuditError> {
    match checkpoint {
        Some(cp) if Checkpoint::mac(key, cp.seq, &cp.hash, &cp.time) != cp.mac => {
            Err(AuditError::Broken {
                seq: cp.seq,
                reason: "the retention checkpoint's signature does not match".into(),
            })
        }
        _ => Ok(()),
    }
}

/// Whether the chain that ended at `end` is the one the seal vouches for; the error
/// says what an attacker without the key did: cut records off, added some, or
/// rewrote the tail.
fn check_seal(key: &SecretBytes, seal: &Seal, end: &ChainEnd) -> Result<(), AuditError> {
    if !seal.authentic(key) {
        return Err(AuditError::Broken {
            seq: seal.seq,
            reason: "the seal's MAC does not match: it was not written with this log's key".into(),
        });
    }
    if let Some(lost) = seal.broken_at {
        return Err(AuditError::Broken {
            seq: lost,
            reason: format!(
                "when the log was opened at seq {lost}, its head did not match the seal: records up to there were cut off, rewritten or added without the key"
            ),
        });
    }
    if end.seq < seal.seq {
        return Err(AuditError::Broken {
            seq: end.seq + 1,
            reason: format!(
                "records {}..={} are missing: the log was truncated after seq {} (sealed head is {})",
                end.seq + 1,
                seal.seq,
                end.seq,
                seal.seq
            ),
        });
    }
    if end.seq > seal.seq {
        return Err(AuditError::Broken {
            seq: seal.seq + 1,
            reason: format!(
                "records {}..={} were added after the sealed head (seq {}) without the key",
                seal.seq + 1,
                end.seq,
                seal.seq
            ),
        });
    }
    if end.hash != seal.hash {
        return Err(AuditError::Broken {
            seq: end.seq,
            reason: "the last record is not the sealed one: the log's tail was rewritten and its hashes recomputed".into(),
        });
    }
    Ok(())
}

/// Walks exported JSON lines (records, then the seal line) without any key: the chain
/// must hold from the export's checkpoint (or genesis) to its last record. Returns the
/// seal line and where the chain ended, for [`Audit::verify_export_seal`].
pub fn walk_export(
    lines: impl Iterator<Item = std::io::Result<String>>,
) -> Result<(Verified, ExportSeal, u64, String), AuditError> {
    let mut records = Vec::new();
    let mut seal: Option<ExportSeal> = None;
    for (index, line) in lines.enumerate() {
        let number = index + 1;
        let bad = |reason: String| AuditError::Export {
            line: number,
            reason,
        };
        let line = line.map_err(|err| bad(err.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        if seal.is_some() {
            return Err(bad("a line follows the seal".into()));
        }
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|err| bad(format!("not JSON: {err}")))?;
        if value.get("audit_seal").is_some() {
            seal = Some(serde_json::from_value(value).map_err(|err| bad(err.to_string()))?);
        } else {
            let record: AuditRecord =
                serde_json::from_value(value).map_err(|err| bad(format!("not a record: {err}")))?;
            records.push(record);
        }
    }
    let Some(seal) = seal else {
        return Err(AuditError::Export {
            line: records.len(),
            reason: "the export ends without its seal line: it was cut short".into(),
        });
    };
    // The checkpoint's MAC is checked with the key later; here only where it starts.
    let (verified, end) = walk(
        seal.checkpoint.as_ref(),
        records
            .into_iter()
            .map(|record| Ok((AuditSeq(record.seq), record))),
    )?;
    Ok((verified, seal, end.seq, end.hash))
}

/// Whether a character can move the cursor, end a line, start a terminal escape or
/// reorder what is displayed: C0 and C1 controls, DEL, and the bidi overrides/isolates.
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every unsafe character written as a Rust-style escape (`\n`, `\u{1b}`),
/// borrowed when there is none. Used for stored records and by every CLI printer of
/// stored text (records written before this existed may still hold raw ones).
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Applies [`escape_control`] to every string (and object key) inside a JSON value.
fn escape_json_strings(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(escape_control(&s).into_owned()),
        Value::Array(items) => Value::Array(items.into_iter().map(escape_json_strings).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (escape_control(&k).into_owned(), escape_json_strings(v)))
                .collect(),
        ),
        other => other,
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
        keyed: crate::keys::testing::KeyedStore,
        audit: Audit,
        clock: ManualClock,
    }

    fn fixture() -> Fixture {
        let keyed = crate::keys::testing::keyed_store();
        let clock = ManualClock::new(OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap());
        let audit = Audit::open(&keyed.store, &keyed.secrets, Arc::new(clock.clone())).unwrap();
        Fixture {
            keyed,
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
        drop(f.keyed.store);
    }

    fn fill(f: &Fixture, n: u64) {
        for i in 0..n {
            f.audit
                .record(AuditEvent::new("x").details(serde_json::json!({ "i": i })))
                .unwrap();
        }
    }

    /// Rewrites records `from..` as someone without the key would: change one, then
    /// recompute every unkeyed hash after it so that the chain itself holds.
    fn rewrite_tail(f: &Fixture, from: u64) {
        let mut prev = f
            .audit
            .records
            .get(&AuditSeq(from - 1))
            .unwrap()
            .unwrap()
            .hash;
        for entry in f.audit.records.iter_from(Some(&AuditSeq(from))) {
            let (key, mut record) = entry.unwrap();
            if key.0 == from {
                record.actor = "mallory".into();
            }
            record.prev_hash = prev;
            record.hash = record.compute_hash();
            prev = record.hash.clone();
            f.audit.records.insert(&key, &record).unwrap();
        }
        assert!(
            walk(
                None,
                f.audit
                    .records
                    .iter_from(None)
                    .map(|e| e.map_err(AuditError::from))
            )
            .is_ok()
        );
    }

    fn broken(result: Result<Verified, AuditError>) -> (u64, String) {
        match result {
            Err(AuditError::Broken { seq, reason }) => (seq, reason),
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    #[test]
    fn cutting_records_off_the_end_is_reported_as_truncation() {
        let f = fixture();
        fill(&f, 8);
        for seq in 6..=8 {
            f.audit.records.remove(&AuditSeq(seq)).unwrap();
        }
        let (seq, reason) = broken(f.audit.verify());
        assert_eq!(seq, 6);
        assert!(reason.contains("truncated after seq 5"), "{reason}");
        // Reopening does not take the cut log for a new head.
        let secrets = Secrets::open(f.keyed.dir.path(), &f.keyed.store).unwrap();
        let reopened = Audit::open(&f.keyed.store, &secrets, Arc::new(f.clock.clone())).unwrap();
        assert!(broken(reopened.verify()).1.contains("missing"));
    }

    #[test]
    fn a_rewritten_tail_with_recomputed_hashes_is_reported() {
        let f = fixture();
        fill(&f, 8);
        rewrite_tail(&f, 7);
        let (seq, reason) = broken(f.audit.verify());
        assert_eq!(seq, 8);
        assert!(reason.contains("rewritten"), "{reason}");
    }

    #[test]
    fn appending_to_a_rewritten_log_does_not_make_it_whole() {
        let f = fixture();
        fill(&f, 6);
        rewrite_tail(&f, 5);
        let secrets = Secrets::open(f.keyed.dir.path(), &f.keyed.store).unwrap();
        let reopened = Audit::open(&f.keyed.store, &secrets, Arc::new(f.clock.clone())).unwrap();
        reopened.record(AuditEvent::new("after")).unwrap();
        let (seq, reason) = broken(reopened.verify());
        assert_eq!(seq, 6);
        assert!(reason.contains("opened at seq 6"), "{reason}");
        // And again after another reopen: the break travels with the seal.
        let again = Audit::open(&f.keyed.store, &secrets, Arc::new(f.clock.clone())).unwrap();
        again.record(AuditEvent::new("later")).unwrap();
        assert_eq!(broken(again.verify()).0, 6);
    }

    #[test]
    fn records_added_behind_the_seal_are_reported() {
        let f = fixture();
        fill(&f, 3);
        let mut extra = f.audit.records.get(&AuditSeq(3)).unwrap().unwrap();
        extra.prev_hash = extra.hash.clone();
        extra.seq = 4;
        extra.hash = extra.compute_hash();
        f.audit.records.insert(&AuditSeq(4), &extra).unwrap();
        let (seq, reason) = broken(f.audit.verify());
        assert_eq!(seq, 4);
        assert!(reason.contains("added after the sealed head"), "{reason}");
    }

    #[test]
    fn a_deleted_seal_stays_reported_after_later_appends() {
        let f = fixture();
        fill(&f, 5);
        f.audit.records.remove(&AuditSeq(5)).unwrap();
        f.audit.seals.remove(&MetaKey::new(SEAL_KEY)).unwrap();
        assert!(broken(f.audit.verify()).1.contains("seal is missing"));
        let secrets = Secrets::open(f.keyed.dir.path(), &f.keyed.store).unwrap();
        let reopened = Audit::open(&f.keyed.store, &secrets, Arc::new(f.clock.clone())).unwrap();
        reopened.record(AuditEvent::new("after")).unwrap();
        let (seq, reason) = broken(reopened.verify());
        assert_eq!(seq, 4);
        assert!(reason.contains("did not match the seal"), "{reason}");
    }

    #[test]
    fn a_store_from_before_seals_loads_verifies_and_is_sealed_from_then_on() {
        let f = fixture();
        // What 0.1.0 left: records without the `sealed` mark and no seal.
        let mut prev = GENESIS_HASH.to_string();
        for seq in 1..=4 {
            let mut record = AuditRecord {
                seq,
                time: rfc3339(crate::clock::Clock::now(&f.clock)),
                actor: "system".into(),
                action: "gateway.start".into(),
                target: String::new(),
                outcome: Outcome::Success,
                source_ip: None,
                details: serde_json::Value::Null,
                sealed: false,
                prev_hash: prev,
                hash: String::new(),
            };
            record.hash = record.compute_hash();
            prev = record.hash.clone();
            f.audit.records.insert(&AuditSeq(seq), &record).unwrap();
        }
        f.audit.seals.remove(&MetaKey::new(SEAL_KEY)).unwrap();
        let json = serde_json::to_string(&f.audit.records.get(&AuditSeq(1)).unwrap()).unwrap();
        assert!(
            !json.contains("sealed"),
            "0.1.0's format is unchanged: {json}"
        );
        let secrets = Secrets::open(f.keyed.dir.path(), &f.keyed.store).unwrap();
        let upgraded = Audit::open(&f.keyed.store, &secrets, Arc::new(f.clock.clone())).unwrap();
        let verified = upgraded.verify().unwrap();
        assert_eq!((verified.records, verified.sealed_seq), (4, Some(4)));
        upgraded.record(AuditEvent::new("after")).unwrap();
        assert_eq!(upgraded.verify().unwrap().sealed_seq, Some(5));
        upgraded.records.remove(&AuditSeq(5)).unwrap();
        assert!(broken(upgraded.verify()).1.contains("truncated"));
    }

    fn export_lines(export: &Export) -> Vec<String> {
        let mut lines: Vec<String> = export
            .records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        lines.push(serde_json::to_string(&export.seal).unwrap());
        lines
    }

    fn check_export(audit: &Audit, lines: &[String]) -> Result<Verified, AuditError> {
        let (_, seal, end_seq, end_hash) = walk_export(lines.iter().map(|l| Ok(l.clone())))?;
        audit.verify_export_seal(&seal, end_seq, &end_hash)
    }

    #[test]
    fn an_export_verifies_against_its_seal_and_a_tampered_one_does_not() {
        let f = fixture();
        fill(&f, 3);
        f.clock.advance(time::Duration::days(100));
        fill(&f, 4);
        f.audit.prune(90).unwrap();
        let lines = export_lines(&f.audit.export().unwrap());
        assert_eq!(lines.len(), 5);
        assert_eq!(check_export(&f.audit, &lines).unwrap().sealed_seq, Some(7));

        // The last record dropped: the chain still holds, the seal does not.
        let mut cut = lines.clone();
        cut.remove(3);
        let err = check_export(&f.audit, &cut).unwrap_err().to_string();
        assert!(err.contains("truncated after seq 6"), "{err}");
        // The seal line dropped.
        let err = check_export(&f.audit, &lines[..4]).unwrap_err().to_string();
        assert!(err.contains("without its seal"), "{err}");
        // A record changed in place.
        let mut changed = lines.clone();
        changed[1] = changed[1].replace("\"x\"", "\"y\"");
        let err = check_export(&f.audit, &changed).unwrap_err().to_string();
        assert!(err.contains("seq 5"), "{err}");
        // A seal from someone without the key.
        let mut forged = lines.clone();
        let mut seal: ExportSeal = serde_json::from_str(&lines[4]).unwrap();
        if let Some(s) = seal.audit_seal.as_mut() {
            s.seq = 6;
        }
        forged.remove(3);
        forged[3] = serde_json::to_string(&seal).unwrap();
        let err = check_export(&f.audit, &forged).unwrap_err().to_string();
        assert!(err.contains("MAC"), "{err}");
        // The log itself still verifies.
        assert!(f.audit.verify().is_ok());
    }

    #[test]
    fn records_never_hold_control_characters() {
        let f = fixture();
        f.audit
            .record(
                AuditEvent::new("approval.respond")
                    .actor("eve\n     9  2026-01-01T00:00:00Z  auth.login")
                    .target("apr_\u{1b}[2J\u{9b}31m\u{202e}")
                    .details(serde_json::json!({ "error": "bad\r\u{7}", "k\n": ["\u{1b}"] })),
            )
            .unwrap();
        let record = &f.audit.list(&Query::default()).unwrap()[0];
        let all = serde_json::to_string(record).unwrap() + &record.actor + &record.target;
        assert!(!all.chars().any(is_unsafe_char), "{all:?}");
        assert_eq!(record.target, "apr_\\u{1b}[2J\\u{9b}31m\\u{202e}");
        assert!(record.actor.starts_with("eve\\n "));
        assert_eq!(record.details["error"], "bad\\r\\u{7}");
        assert!(f.audit.verify().is_ok());
        assert_eq!(escape_control("plain"), Cow::Borrowed("plain"));
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
