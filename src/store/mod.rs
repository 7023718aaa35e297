//! The store: every byte of state the gateway keeps, in one embedded sled database.
//!
//! This is the only module that imports `sled`. It owns the on-disk layout (`db/` under
//! the data directory), the single-process lock, typed trees with newtype keys, the
//! schema version and its migrations, and durability: a write that a caller is about to
//! acknowledge is made durable with [`Store::sync`], which flushes sled and then
//! `fsync`s the log file and its directory. sled's own `flush()` ends in
//! `sync_file_range`, which neither flushes the device cache nor file metadata; on an SD
//! card that loses power this is the difference between a record and a hole. Syncs are
//! grouped: concurrent callers share one flush + fsync.
//!
//! The store never interprets what it stores (audit chains, sealing and the like belong
//! to their modules) and never logs values.

pub mod backup;
mod ids;
mod layout;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::marker::PhantomData;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::fsutil::IoError;

pub use ids::{AuditSeq, MetaKey, SecretName, StoreKey};
pub use layout::{MASTER_KEY_FILE, NEXT_KEY_FILE, TLS_DIR};

/// Free space below which writes are refused: two of sled's 512 KiB log segments.
const SPACE_RESERVE: u64 = 1024 * 1024;

/// How often sled writes its log to disk on its own, between explicit syncs.
const BACKGROUND_FLUSH_MS: u64 = 500;

/// The schema version this binary writes.
pub const SCHEMA_VERSION: u32 = 1;
const SCHEMA_KEY: &[u8] = b"schema_version";

/// Named trees; each module that persists something owns one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeName {
    Meta,
    Audit,
    Secrets,
    Users,
    Tokens,
    Sessions,
    Families,
    Revoked,
    ApprovalRules,
    Chats,
    Messages,
    Agents,
    Usage,
    PairedDevices,
    Channels,
    Deliveries,
}

impl TreeName {
    fn as_str(self) -> &'static str {
        match self {
            TreeName::Meta => "meta",
            TreeName::Audit => "audit",
            TreeName::Secrets => "secrets",
            TreeName::Users => "users",
            TreeName::Tokens => "tokens",
            TreeName::Sessions => "sessions",
            TreeName::Revoked => "revoked",
            TreeName::Families => "families",
            TreeName::ApprovalRules => "approval_rules",
            TreeName::Chats => "chats",
            TreeName::Messages => "messages",
            TreeName::Agents => "agents",
            TreeName::Usage => "usage",
            TreeName::PairedDevices => "paired_devices",
            TreeName::Channels => "channels",
            TreeName::Deliveries => "deliveries",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store in {path} is in use by another aisopod process{}: a running gateway holds it \
         while it runs. Commands reach a running gateway through its admin socket; if none is \
         reachable, stop the other process and try again",
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    Locked { path: PathBuf, holder: Option<u32> },
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("the store in {path} cannot be opened: {message}")]
    Open { path: PathBuf, message: String },
    #[error("store write failed: {0}")]
    Write(String),
    #[error(
        "no space left for the store in {path}: {available} bytes free, fewer than the {reserve} \
         kept in reserve so that the store never runs out of space mid-write"
    )]
    NoSpace {
        path: PathBuf,
        available: u64,
        reserve: u64,
    },
    #[error(
        "the store holds schema version {found}, newer than this aisopod knows ({known}); upgrade aisopod or restore a backup"
    )]
    TooNew { found: u32, known: u32 },
    #[error("stored record in tree {tree} is damaged: {message}")]
    Corrupt { tree: &'static str, message: String },
}

impl StoreError {
    fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
        move |source| StoreError::Io(IoError::new(op, path.to_path_buf(), source))
    }

    /// True when the disk is full; callers refuse the operation and keep running.
    pub fn is_disk_full(&self) -> bool {
        if matches!(self, StoreError::NoSpace { .. }) {
            return true;
        }
        let text = self.to_string();
        text.contains("No space left") || text.contains("os error 28")
    }
}

fn write_error(err: sled::Error) -> StoreError {
    StoreError::Write(err.to_string())
}

/// An open store. Cloning shares it.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: sled::Db,
    dir: PathBuf,
    durability: Durability,
    /// Held shared by every write and exclusively by [`Store::snapshot`], so that a
    /// snapshot sees every tree at one moment between two writes.
    gate: RwLock<()>,
    _lock: Flock<File>,
}

#[derive(Debug)]
struct Durability {
    written: AtomicU64,
    synced: Mutex<u64>,
    log: File,
    dir: File,
    syncs: AtomicU64,
    /// The first failed sync. sled keeps such errors until the database is reopened,
    /// so the store reports itself unhealthy (and a supervised gateway is restarted).
    failure: Mutex<Option<String>>,
}

impl Store {
    /// Opens (or creates) the store under `data_dir/db`, taking the process lock.
    pub fn open(data_dir: &Path, cache_size: u64) -> Result<Store, StoreError> {
        let dir = data_dir.join("db");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(StoreError::io("create", &dir))?;
        let lock = take_lock(&data_dir.join("store.lock"))?;
        layout::finish_interrupted_restore(data_dir).map_err(|err| StoreError::Open {
            path: dir.clone(),
            message: format!("an interrupted restore could not be finished: {err}"),
        })?;
        let db = open_sled(&dir, cache_size).map_err(|err| StoreError::Open {
            path: dir.clone(),
            message: err.to_string(),
        })?;
        let log_path = dir.join("db");
        let log = File::open(&log_path).map_err(StoreError::io("open", &log_path))?;
        let dir_handle = File::open(&dir).map_err(StoreError::io("open", &dir))?;
        let store = Store {
            inner: Arc::new(Inner {
                db,
                dir: dir.clone(),
                durability: Durability {
                    written: AtomicU64::new(0),
                    synced: Mutex::new(0),
                    log,
                    dir: dir_handle,
                    syncs: AtomicU64::new(0),
                    failure: Mutex::new(None),
                },
                gate: RwLock::new(()),
                _lock: lock,
            }),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The directory holding sled's files.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// A typed view of one tree.
    pub fn tree<K: StoreKey, V: Serialize + DeserializeOwned>(
        &self,
        name: TreeName,
    ) -> Result<Tree<K, V>, StoreError> {
        let tree = self
            .inner
            .db
            .open_tree(name.as_str())
            .map_err(write_error)?;
        Ok(Tree {
            tree,
            name,
            store: self.clone(),
            _types: PhantomData,
        })
    }

    /// The schema version recorded in the store.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let meta = self
            .inner
            .db
            .open_tree(TreeName::Meta.as_str())
            .map_err(write_error)?;
        let Some(raw) = meta.get(SCHEMA_KEY).map_err(write_error)? else {
            return Ok(0);
        };
        let bytes: [u8; 4] = raw.as_ref().try_into().map_err(|_| StoreError::Corrupt {
            tree: "meta",
            message: "schema version is not 4 bytes".into(),
        })?;
        Ok(u32::from_be_bytes(bytes))
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                found,
                known: SCHEMA_VERSION,
            });
        }
        for (version, step) in MIGRATIONS {
            if *version > found {
                step(self)?;
                let meta = self
                    .inner
                    .db
                    .open_tree(TreeName::Meta.as_str())
                    .map_err(write_error)?;
                meta.insert(SCHEMA_KEY, &version.to_be_bytes())
                    .map_err(write_error)?;
                self.note_write();
                self.sync()?;
                tracing::info!(version, "store schema migrated");
            }
        }
        Ok(())
    }

    /// Refuses a write while the filesystem has less than [`SPACE_RESERVE`] free. sled
    /// keeps the first I/O error of its log writer (such as ENOSPC) and fails every later
    /// operation with it until the database is reopened, so the store must refuse
    /// before sled ever meets a full disk; then freeing space is enough to recover.
    fn ensure_space(&self) -> Result<(), StoreError> {
        let stat = nix::sys::statvfs::statvfs(&self.inner.dir).map_err(|errno| {
            StoreError::Io(IoError::new(
                "statvfs",
                self.inner.dir.clone(),
                errno.into(),
            ))
        })?;
        // The field types are platform aliases (u32 on some 32-bit targets).
        let available =
            (stat.blocks_available() as u64).saturating_mul(stat.fragment_size() as u64);
        if available < SPACE_RESERVE {
            return Err(StoreError::NoSpace {
                path: self.inner.dir.clone(),
                available,
                reserve: SPACE_RESERVE,
            });
        }
        Ok(())
    }

    /// Taken around every write; see [`Inner::gate`].
    fn write_gate(&self) -> RwLockReadGuard<'_, ()> {
        self.inner
            .gate
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn note_write(&self) {
        self.inner.durability.written.fetch_add(1, Ordering::SeqCst);
    }

    /// Makes every write made before this call durable: sled flush, then `fsync` of the
    /// log file and the directory. Concurrent callers are grouped into one sync.
    pub fn sync(&self) -> Result<(), StoreError> {
        let durability = &self.inner.durability;
        let ticket = durability.written.load(Ordering::SeqCst);
        let mut synced = durability
            .synced
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *synced >= ticket {
            return Ok(());
        }
        let target = durability.written.load(Ordering::SeqCst);
        let result = self.flush_and_fsync();
        match &result {
            Ok(()) => {
                durability.syncs.fetch_add(1, Ordering::Relaxed);
                *synced = target;
            }
            Err(err) => {
                let mut failure = durability
                    .failure
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                failure.get_or_insert_with(|| err.to_string());
            }
        }
        result
    }

    fn flush_and_fsync(&self) -> Result<(), StoreError> {
        let durability = &self.inner.durability;
        self.inner.db.flush().map_err(write_error)?;
        durability
            .log
            .sync_all()
            .map_err(StoreError::io("fsync", &self.inner.dir.join("db")))?;
        durability
            .dir
            .sync_all()
            .map_err(StoreError::io("fsync", &self.inner.dir))
    }

    /// How many flush + fsync rounds have run; shows grouping at work.
    pub fn sync_count(&self) -> u64 {
        self.inner.durability.syncs.load(Ordering::Relaxed)
    }

    /// Cheap health probe for readiness checks: the store reads, and no sync has failed.
    pub fn check(&self) -> Result<(), StoreError> {
        let failure = self
            .inner
            .durability
            .failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if let Some(failure) = failure {
            return Err(StoreError::Write(format!(
                "a write could not be made durable ({failure}); restart aisopod to reopen the store"
            )));
        }
        self.schema_version().map(|_| ())
    }
}

type Migration = fn(&Store) -> Result<(), StoreError>;

/// Schema steps in order. Version 1 is the initial layout; sled creates trees on first
/// use, so it only records the version.
const MIGRATIONS: &[(u32, Migration)] = &[(1, |_| Ok(()))];

/// Opens sled under `dir`. sled takes its own lock on its log file, which it releases
/// only when the last of its background threads of a dropped `Db` has finished; our
/// `store.lock` is already held, so no other process can hold that lock, and a refusal
/// means this process's previous handle is still shutting down: wait for it, briefly.
fn open_sled(dir: &Path, cache_size: u64) -> sled::Result<sled::Db> {
    const ATTEMPTS: u32 = 100;
    let mut attempt = 0;
    loop {
        let opened = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_size)
            .mode(sled::Mode::LowSpace)
            // Writes not followed by `sync` (usage counts) are durable within this.
            .flush_every_ms(Some(BACKGROUND_FLUSH_MS))
            .open();
        match opened {
            // sled reports it as `Other` with this text (sled 0.34, config.rs).
            Err(sled::Error::Io(err))
                if attempt < ATTEMPTS && err.to_string().starts_with("could not acquire lock") =>
            {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

fn take_lock(path: &Path) -> Result<Flock<File>, StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(StoreError::io("open", path))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            let pid = std::process::id().to_string();
            let written = lock
                .set_len(0)
                .and_then(|()| lock.rewind())
                .and_then(|()| lock.write_all(pid.as_bytes()));
            written.map_err(StoreError::io("write", path))?;
            Ok(lock)
        }
        Err((mut file, errno)) if errno == nix::errno::Errno::EWOULDBLOCK => {
            let mut holder = String::new();
            let holder = file
                .read_to_string(&mut holder)
                .ok()
                .and_then(|_| holder.trim().parse().ok());
            Err(StoreError::Locked {
                path: path.parent().unwrap_or(path).to_path_buf(),
                holder,
            })
        }
        Err((_, errno)) => Err(StoreError::Io(IoError::new(
            "lock",
            path.to_path_buf(),
            errno.into(),
        ))),
    }
}

/// A tree whose keys are `K` and whose values are `V` (stored as JSON).
#[derive(Debug)]
pub struct Tree<K, V> {
    tree: sled::Tree,
    name: TreeName,
    store: Store,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: StoreKey, V: Serialize + DeserializeOwned> Tree<K, V> {
    fn decode(&self, key: &[u8], value: &[u8]) -> Result<(K, V), StoreError> {
        let corrupt = |message: String| StoreError::Corrupt {
            tree: self.name.as_str(),
            message,
        };
        let key =
            K::from_bytes(key).ok_or_else(|| corrupt(format!("bad key of {} bytes", key.len())))?;
        let value = serde_json::from_slice(value).map_err(|err| corrupt(err.to_string()))?;
        Ok((key, value))
    }

    pub fn get(&self, key: &K) -> Result<Option<V>, StoreError> {
        match self.tree.get(key.to_bytes()).map_err(write_error)? {
            Some(raw) => self.decode(&key.to_bytes(), &raw).map(|(_, v)| Some(v)),
            None => Ok(None),
        }
    }

    /// Decodes only the fields `W` declares from the stored value, skipping the rest
    /// without building it: for hot paths that need a few fields of a large record.
    pub fn get_part<W: DeserializeOwned>(&self, key: &K) -> Result<Option<W>, StoreError> {
        match self.tree.get(key.to_bytes()).map_err(write_error)? {
            Some(raw) => {
                serde_json::from_slice(&raw)
                    .map(Some)
                    .map_err(|err| StoreError::Corrupt {
                        tree: self.name.as_str(),
                        message: err.to_string(),
                    })
            }
            None => Ok(None),
        }
    }

    /// Inserts a value. Not durable until [`Store::sync`].
    pub fn insert(&self, key: &K, value: &V) -> Result<(), StoreError> {
        self.store.ensure_space()?;
        let bytes = serde_json::to_vec(value).map_err(|err| StoreError::Write(err.to_string()))?;
        let _gate = self.store.write_gate();
        self.tree
            .insert(key.to_bytes(), bytes)
            .map_err(write_error)?;
        self.store.note_write();
        Ok(())
    }

    /// Inserts only if the key is absent; false when it was present.
    pub fn insert_new(&self, key: &K, value: &V) -> Result<bool, StoreError> {
        self.store.ensure_space()?;
        let bytes = serde_json::to_vec(value).map_err(|err| StoreError::Write(err.to_string()))?;
        let _gate = self.store.write_gate();
        let swapped = self
            .tree
            .compare_and_swap(key.to_bytes(), None as Option<&[u8]>, Some(bytes))
            .map_err(write_error)?;
        self.store.note_write();
        Ok(swapped.is_ok())
    }

    /// Replaces `old` with `new` only if the stored value is still exactly `old`; false
    /// when another writer got there first.
    pub fn compare_and_swap(&self, key: &K, old: &V, new: &V) -> Result<bool, StoreError> {
        let encode =
            |v: &V| serde_json::to_vec(v).map_err(|err| StoreError::Write(err.to_string()));
        self.store.ensure_space()?;
        let (old, new) = (encode(old)?, encode(new)?);
        let _gate = self.store.write_gate();
        let swapped = self
            .tree
            .compare_and_swap(key.to_bytes(), Some(old), Some(new))
            .map_err(write_error)?;
        self.store.note_write();
        Ok(swapped.is_ok())
    }

    /// Read-modify-write of one record that never overwrites a change it did not see:
    /// `change` gets the value as stored now and returns the value to store (`None`:
    /// leave it); if another writer got in between, it runs again on the newer value
    /// (compare-and-swap), so it must have no side effects. Returns the value stored
    /// afterwards, or `None` when the key is absent. Not durable until [`Store::sync`].
    pub fn update<E: From<StoreError>>(
        &self,
        key: &K,
        mut change: impl FnMut(&V) -> Result<Option<V>, E>,
    ) -> Result<Option<V>, E> {
        let key_bytes = key.to_bytes();
        loop {
            let Some(raw) = self.tree.get(&key_bytes).map_err(write_error)? else {
                return Ok(None);
            };
            let (_, current) = self.decode(&key_bytes, &raw)?;
            let Some(new) = change(&current)? else {
                return Ok(Some(current));
            };
            let bytes =
                serde_json::to_vec(&new).map_err(|err| StoreError::Write(err.to_string()))?;
            self.store.ensure_space()?;
            let _gate = self.store.write_gate();
            let swapped = self
                .tree
                .compare_and_swap(&key_bytes, Some(raw), Some(bytes))
                .map_err(write_error)?;
            self.store.note_write();
            if swapped.is_ok() {
                return Ok(Some(new));
            }
        }
    }

    /// Inserts into this tree and `other` in one sled transaction, so that after a crash
    /// both writes are there or neither is (the audit log and its seal). Not durable
    /// until [`Store::sync`].
    pub fn insert_with<K2: StoreKey, V2: Serialize + DeserializeOwned>(
        &self,
        key: &K,
        value: &V,
        other: &Tree<K2, V2>,
        other_key: &K2,
        other_value: &V2,
    ) -> Result<(), StoreError> {
        use sled::Transactional;
        use sled::transaction::TransactionError;
        let encode = |v: Result<Vec<u8>, serde_json::Error>| {
            v.map_err(|err| StoreError::Write(err.to_string()))
        };
        self.store.ensure_space()?;
        let bytes = encode(serde_json::to_vec(value))?;
        let other_bytes = encode(serde_json::to_vec(other_value))?;
        let (key, other_key) = (key.to_bytes(), other_key.to_bytes());
        let _gate = self.store.write_gate();
        (&self.tree, &other.tree)
            .transaction(|(this, that)| {
                this.insert(key.as_slice(), bytes.as_slice())?;
                that.insert(other_key.as_slice(), other_bytes.as_slice())?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|err| match err {
                TransactionError::Storage(err) => write_error(err),
                TransactionError::Abort(()) => StoreError::Write("transaction aborted".into()),
            })?;
        self.store.note_write();
        Ok(())
    }

    /// Removes a key. Not durable until [`Store::sync`].
    pub fn remove(&self, key: &K) -> Result<bool, StoreError> {
        let _gate = self.store.write_gate();
        let removed = self.tree.remove(key.to_bytes()).map_err(write_error)?;
        self.store.note_write();
        Ok(removed.is_some())
    }

    /// Replaces several values atomically: all or none are applied.
    pub fn replace_all(&self, entries: &[(K, V)]) -> Result<(), StoreError> {
        self.store.ensure_space()?;
        let mut batch = sled::Batch::default();
        for (key, value) in entries {
            let bytes =
                serde_json::to_vec(value).map_err(|err| StoreError::Write(err.to_string()))?;
            batch.insert(key.to_bytes(), bytes);
        }
        let _gate = self.store.write_gate();
        self.tree.apply_batch(batch).map_err(write_error)?;
        self.store.note_write();
        Ok(())
    }

    /// Removes every key below `end` (exclusive), atomically.
    pub fn remove_before(&self, end: &K) -> Result<usize, StoreError> {
        let _gate = self.store.write_gate();
        let mut batch = sled::Batch::default();
        let mut count = 0;
        for entry in self.tree.range(..end.to_bytes()) {
            let (key, _) = entry.map_err(write_error)?;
            batch.remove(key);
            count += 1;
        }
        self.tree.apply_batch(batch).map_err(write_error)?;
        self.store.note_write();
        Ok(count)
    }

    pub fn first(&self) -> Result<Option<(K, V)>, StoreError> {
        match self.tree.first().map_err(write_error)? {
            Some((k, v)) => self.decode(&k, &v).map(Some),
            None => Ok(None),
        }
    }

    pub fn last(&self) -> Result<Option<(K, V)>, StoreError> {
        match self.tree.last().map_err(write_error)? {
            Some((k, v)) => self.decode(&k, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Entries from `start` (inclusive) in key order.
    pub fn iter_from(
        &self,
        start: Option<&K>,
    ) -> impl Iterator<Item = Result<(K, V), StoreError>> + '_ {
        let range = match start {
            Some(start) => self.tree.range(start.to_bytes()..),
            None => self.tree.iter(),
        };
        range.map(move |entry| {
            let (k, v) = entry.map_err(write_error)?;
            self.decode(&k, &v)
        })
    }

    /// Entries below `end` (exclusive; all when `None`), last key first.
    pub fn iter_before(
        &self,
        end: Option<&K>,
    ) -> impl Iterator<Item = Result<(K, V), StoreError>> + '_ {
        let range = match end {
            Some(end) => self.tree.range(..end.to_bytes()),
            None => self.tree.iter(),
        };
        range.rev().map(move |entry| {
            let (k, v) = entry.map_err(write_error)?;
            self.decode(&k, &v)
        })
    }

    /// Removes `key` here and `other_keys` from `other` in one sled transaction, so that
    /// after a crash all are gone or none is (a chat and its messages). Not durable
    /// until [`Store::sync`].
    pub fn remove_with<K2: StoreKey, V2: Serialize + DeserializeOwned>(
        &self,
        key: &K,
        other: &Tree<K2, V2>,
        other_keys: &[K2],
    ) -> Result<(), StoreError> {
        use sled::Transactional;
        use sled::transaction::TransactionError;
        let key = key.to_bytes();
        let other_keys: Vec<Vec<u8>> = other_keys.iter().map(StoreKey::to_bytes).collect();
        let _gate = self.store.write_gate();
        (&self.tree, &other.tree)
            .transaction(|(this, that)| {
                this.remove(key.as_slice())?;
                for other_key in &other_keys {
                    that.remove(other_key.as_slice())?;
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|err| match err {
                TransactionError::Storage(err) => write_error(err),
                TransactionError::Abort(()) => StoreError::Write("transaction aborted".into()),
            })?;
        self.store.note_write();
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_reopens_at_once_after_its_handle_is_dropped() {
        // sled's background threads may still hold its file lock for a moment.
        let dir = tempfile::tempdir().unwrap();
        for round in 0..30u64 {
            let store = Store::open(dir.path(), 1 << 20)
                .unwrap_or_else(|err| panic!("round {round}: {err}"));
            let tree: Tree<AuditSeq, String> = store.tree(TreeName::Audit).unwrap();
            tree.insert(&AuditSeq(round), &"x".to_string()).unwrap();
            store.sync().unwrap();
        }
    }

    #[test]
    fn values_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            let tree: Tree<AuditSeq, String> = store.tree(TreeName::Audit).unwrap();
            tree.insert(&AuditSeq(2), &"two".to_string()).unwrap();
            tree.insert(&AuditSeq(1), &"one".to_string()).unwrap();
            store.sync().unwrap();
        }
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let tree: Tree<AuditSeq, String> = store.tree(TreeName::Audit).unwrap();
        let all: Vec<_> = tree.iter_from(None).map(Result::unwrap).collect();
        assert_eq!(
            all,
            vec![(AuditSeq(1), "one".into()), (AuditSeq(2), "two".into())]
        );
        assert_eq!(tree.last().unwrap().unwrap().0, AuditSeq(2));
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn second_open_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path(), 1 << 20).unwrap();
        let err = Store::open(dir.path(), 1 << 20).unwrap_err();
        assert!(
            matches!(err, StoreError::Locked { holder: Some(pid), .. } if pid == std::process::id())
        );
        let message = err.to_string();
        assert!(
            message.contains("in use by another aisopod process"),
            "{message}"
        );
        assert!(message.contains("admin socket"), "{message}");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            let meta = store.inner.db.open_tree("meta").unwrap();
            meta.insert(SCHEMA_KEY, &99u32.to_be_bytes()).unwrap();
            store.note_write();
            store.sync().unwrap();
        }
        let err = Store::open(dir.path(), 1 << 20).unwrap_err();
        assert!(matches!(
            err,
            StoreError::TooNew {
                found: 99,
                known: SCHEMA_VERSION
            }
        ));
    }

    #[test]
    fn damaged_values_are_reported_not_panicked_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        store
            .inner
            .db
            .open_tree("audit")
            .unwrap()
            .insert(7u64.to_be_bytes(), b"{not json")
            .unwrap();
        let tree: Tree<AuditSeq, String> = store.tree(TreeName::Audit).unwrap();
        let err = tree.get(&AuditSeq(7)).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { tree: "audit", .. }));
    }

    #[test]
    fn concurrent_syncs_are_grouped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let before = store.sync_count();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let tree: Tree<AuditSeq, u64> = store.tree(TreeName::Audit).unwrap();
                    for i in 0..50 {
                        tree.insert(&AuditSeq(t * 1000 + i), &i).unwrap();
                        store.sync().unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let syncs = store.sync_count() - before;
        assert!(
            syncs < 400,
            "{syncs} syncs for 400 writes: concurrent writers were not grouped"
        );
        assert!(syncs >= 1);
    }
}
