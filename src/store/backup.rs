//! Backups of the data directory as a plain archive stream, and restores of one.
//!
//! **Snapshot.** [`Store::snapshot`] writes the whole store and the data directory's
//! key and certificate files (`master.key`, `master.key.next`, `tls/*`) as one stream,
//! while every store write waits on the store's write gate. The stream is therefore the
//! state between two writes, which is a state a crash could have left; every module
//! already opens such states correctly (an audit checkpoint before its prune, a master
//! key rotation before its rename). Writers are paused only while the archive is
//! written to a local file, never while a passphrase is stretched.
//!
//! **Restore.** [`stage`] reads an archive into `data_dir/.restore/new/` (a fresh sled
//! database and the files) while the data directory's lock is held, so no gateway can
//! start meanwhile; nothing in the live data is touched until the whole stream was read
//! and its end marker checked. [`Staged::commit`] then swaps the items (`db/`, `tls/`,
//! `master.key`, `master.key.next`) through a journal: the list of moves is written to
//! `.restore/COMMIT` first, the current items move to `.restore/old/`, the staged ones
//! move into place, and `.restore/` is removed. Every move is a `rename` whose done-ness
//! can be read from the filesystem, so [`Store::open`] (and the next restore) finishes a
//! swap that was interrupted by a crash, or removes a staging directory that was never
//! committed.
//!
//! Archive stream, version 1 (integers big-endian):
//!
//! ```text
//! "aisopod-archive1"                                 16-byte magic
//! 'M' u32 len, JSON {"schema_version","created","aisopod"}   manifest, first
//! 'T' u16 len, tree name                             starts a tree
//! 'R' u32 len, key, u32 len, value                   a record of the current tree
//! 'F' u16 len, name, u32 len, contents               a file under the data directory
//! 'Z' u64 trees, u64 records, u64 files              end, last; counts must match
//! ```
//!
//! This module never decrypts or encrypts (the envelope is `keys::backup_crypto`),
//! never interprets records, and never restores into a directory whose lock it does not
//! hold.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::fcntl::Flock;
use serde::{Deserialize, Serialize};

pub use super::layout::ITEMS;
use super::layout::{
    DB_DIR, Journal, JournalError, MASTER_KEY_FILE, NEXT_KEY_FILE, RESTORE_DIR, TLS_DIR,
    apply_journal, finish_interrupted_restore,
};
use super::{SCHEMA_VERSION, Store, StoreError, take_lock};
use crate::fsutil::IoError;

const MAGIC: &[u8; 16] = b"aisopod-archive1";
/// Read in this order: a master key rotation writes `.next`, re-seals the store (which
/// the gate holds still), then renames `.next` over `master.key`; reading `.next` first
/// can never miss both names of the new key.
const KEY_FILES: [&str; 2] = [NEXT_KEY_FILE, MASTER_KEY_FILE];
/// Largest file, key and value an archive may hold (keys and certificates are small;
/// records are JSON documents).
const MAX_FILE: u32 = 1024 * 1024;
const MAX_KEY: u32 = 64 * 1024;
const MAX_VALUE: u32 = 64 * 1024 * 1024;
const MAX_TLS_FILES: usize = 64;
/// Records applied to the staged database per batch.
const BATCH_RECORDS: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Io(#[from] IoError),
    /// Reading the archive failed; the source may carry the envelope's verdict
    /// (damaged, truncated).
    #[error("reading the backup failed: {0}")]
    Read(#[source] std::io::Error),
    #[error("writing the snapshot failed: {0}")]
    Write(#[source] std::io::Error),
    #[error("the backup's contents are malformed: {0}")]
    Malformed(String),
    #[error(
        "the backup holds store schema version {found}, newer than this aisopod knows ({known}); restore it with a newer aisopod"
    )]
    TooNew { found: u32, known: u32 },
    #[error("the staged store could not be written: {0}")]
    Sled(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The swap of a restore could not be carried out or finished.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

fn io_error<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> BackupError + 'a {
    move |source| BackupError::Io(IoError::new(op, path.to_path_buf(), source))
}

fn sled_error(err: sled::Error) -> BackupError {
    BackupError::Sled(err.to_string())
}

/// What a snapshot or a restore held.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStats {
    pub schema_version: u32,
    pub created: String,
    pub aisopod: String,
    pub trees: u64,
    pub records: u64,
    pub files: u64,
    /// Archive bytes (before encryption).
    pub bytes: u64,
    /// How long store writes waited for the snapshot, in milliseconds.
    #[serde(default)]
    pub paused_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    schema_version: u32,
    created: String,
    aisopod: String,
}

/// Counts what passes through.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Counting<W> {
    fn put(&mut self, data: &[u8]) -> Result<(), BackupError> {
        self.inner.write_all(data).map_err(BackupError::Write)?;
        self.bytes += data.len() as u64;
        Ok(())
    }

    fn put_tagged(&mut self, tag: u8, name: &[u8]) -> Result<(), BackupError> {
        let len = u16::try_from(name.len())
            .map_err(|_| BackupError::Malformed(format!("a name of {} bytes", name.len())))?;
        self.put(&[tag])?;
        self.put(&len.to_be_bytes())?;
        self.put(name)
    }

    fn put_blob(&mut self, data: &[u8]) -> Result<(), BackupError> {
        let len = u32::try_from(data.len())
            .map_err(|_| BackupError::Malformed(format!("a value of {} bytes", data.len())))?;
        self.put(&len.to_be_bytes())?;
        self.put(data)
    }
}

impl Store {
    /// Writes a consistent archive of the store and the key and certificate files of
    /// `data_dir` to `out`. Store writes wait while it runs.
    pub fn snapshot(
        &self,
        data_dir: &Path,
        created: &str,
        out: &mut impl Write,
    ) -> Result<SnapshotStats, BackupError> {
        let mut w = Counting {
            inner: out,
            bytes: 0,
        };
        let manifest = serde_json::to_vec(&Manifest {
            schema_version: self.schema_version()?,
            created: created.to_string(),
            aisopod: env!("CARGO_PKG_VERSION").to_string(),
        })
        .map_err(|e| BackupError::Malformed(e.to_string()))?;
        w.put(MAGIC)?;
        w.put(b"M")?;
        w.put_blob(&manifest)?;
        let mut stats = SnapshotStats {
            schema_version: self.schema_version()?,
            created: created.to_string(),
            aisopod: env!("CARGO_PKG_VERSION").to_string(),
            ..SnapshotStats::default()
        };
        let paused = Instant::now();
        {
            let _gate = self
                .inner
                .gate
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for name in self.inner.db.tree_names() {
                let tree = self.inner.db.open_tree(&name).map_err(sled_error)?;
                w.put_tagged(b'T', &name)?;
                stats.trees += 1;
                for entry in tree.iter() {
                    let (key, value) = entry.map_err(sled_error)?;
                    w.put(b"R")?;
                    w.put_blob(&key)?;
                    w.put_blob(&value)?;
                    stats.records += 1;
                }
            }
            for (name, contents) in data_files(data_dir)? {
                w.put_tagged(b'F', name.as_bytes())?;
                w.put_blob(&contents)?;
                stats.files += 1;
            }
        }
        stats.paused_ms = u64::try_from(paused.elapsed().as_millis()).unwrap_or(u64::MAX);
        w.put(b"Z")?;
        for count in [stats.trees, stats.records, stats.files] {
            w.put(&count.to_be_bytes())?;
        }
        stats.bytes = w.bytes;
        Ok(stats)
    }
}

/// The key files and the TLS directory's regular files, by their archive names.
fn data_files(data_dir: &Path) -> Result<Vec<(String, Vec<u8>)>, BackupError> {
    let mut files = Vec::new();
    for name in KEY_FILES {
        if let Some(contents) = read_optional(&data_dir.join(name))? {
            files.push((name.to_string(), contents));
        }
    }
    let tls = data_dir.join(TLS_DIR);
    let entries = match std::fs::read_dir(&tls) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(err) => return Err(io_error("list", &tls)(err)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error("list", &tls))?;
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        match entry.file_name().into_string() {
            Ok(name) if regular && valid_tls_name(&name) => names.push(name),
            _ => {}
        }
    }
    names.sort();
    if names.len() > MAX_TLS_FILES {
        return Err(BackupError::Malformed(format!(
            "{} holds more than {MAX_TLS_FILES} files",
            tls.display()
        )));
    }
    for name in names {
        if let Some(contents) = read_optional(&tls.join(&name))? {
            files.push((format!("{TLS_DIR}/{name}"), contents));
        }
    }
    Ok(files)
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, BackupError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error("read", path)(err)),
    };
    let mut contents = Vec::new();
    file.take(u64::from(MAX_FILE) + 1)
        .read_to_end(&mut contents)
        .map_err(io_error("read", path))?;
    if contents.len() > MAX_FILE as usize {
        return Err(BackupError::Malformed(format!(
            "{} is larger than {MAX_FILE} bytes",
            path.display()
        )));
    }
    Ok(Some(contents))
}

fn valid_tls_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Where an archive file name lands under the data directory, if it is one a backup may
/// hold.
fn file_target(name: &str) -> Option<PathBuf> {
    if KEY_FILES.contains(&name) {
        return Some(PathBuf::from(name));
    }
    let tls = name.strip_prefix("tls/")?;
    valid_tls_name(tls).then(|| Path::new(TLS_DIR).join(tls))
}

/// The data directory's lock, held for a whole restore (the same lock a store takes).
#[derive(Debug)]
pub struct DataDirLock {
    data_dir: PathBuf,
    _lock: Flock<File>,
}

impl DataDirLock {
    /// Takes the lock, refusing while a gateway (or any store user) holds it, and
    /// finishes or clears an interrupted restore.
    pub fn take(data_dir: &Path) -> Result<DataDirLock, BackupError> {
        let lock = take_lock(&data_dir.join("store.lock"))?;
        finish_interrupted_restore(data_dir)?;
        Ok(DataDirLock {
            data_dir: data_dir.to_path_buf(),
            _lock: lock,
        })
    }
}

/// A restore read completely into the staging directory, not yet in place. Dropping it
/// removes the staging directory.
#[derive(Debug)]
pub struct Staged {
    root: PathBuf,
    stats: SnapshotStats,
    committed: bool,
}

impl Staged {
    pub fn stats(&self) -> &SnapshotStats {
        &self.stats
    }

    /// Swaps the staged items into the data directory (see the module doc).
    pub fn commit(mut self, lock: &DataDirLock) -> Result<SnapshotStats, BackupError> {
        let data_dir = &lock.data_dir;
        let new = self.root.join("new");
        let journal = Journal::plan(data_dir, &new);
        adopt_owner(data_dir, &new)?;
        sync_recursive(&new)?;
        journal.write(data_dir)?;
        self.committed = true;
        apply_journal(data_dir)?;
        Ok(self.stats.clone())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// Reads an archive into the staging directory under the locked data directory.
/// Nothing outside `.restore/` changes; on any error the staging directory is removed.
pub fn stage(lock: &DataDirLock, archive: impl Read) -> Result<Staged, BackupError> {
    let root = lock.data_dir.join(RESTORE_DIR);
    if root.symlink_metadata().is_ok() {
        std::fs::remove_dir_all(&root).map_err(io_error("remove", &root))?;
    }
    let new = root.join("new");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&new)
        .map_err(io_error("create", &new))?;
    let mut staged = Staged {
        root,
        stats: SnapshotStats::default(),
        committed: false,
    };
    staged.stats = read_archive(&new, archive)?;
    Ok(staged)
}

struct Input<R> {
    inner: BufReader<R>,
    bytes: u64,
}

impl<R: Read> Input<R> {
    fn exact(&mut self, buf: &mut [u8]) -> Result<(), BackupError> {
        self.inner.read_exact(buf).map_err(|err| {
            if err.kind() == std::io::ErrorKind::UnexpectedEof && err.get_ref().is_none() {
                BackupError::Malformed("the archive ends before its end marker".into())
            } else {
                BackupError::Read(err)
            }
        })?;
        self.bytes += buf.len() as u64;
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, BackupError> {
        let mut b = [0u8; 1];
        self.exact(&mut b)?;
        Ok(b[0])
    }

    fn u16(&mut self) -> Result<u16, BackupError> {
        let mut b = [0u8; 2];
        self.exact(&mut b)?;
        Ok(u16::from_be_bytes(b))
    }

    fn u32(&mut self) -> Result<u32, BackupError> {
        let mut b = [0u8; 4];
        self.exact(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, BackupError> {
        let mut b = [0u8; 8];
        self.exact(&mut b)?;
        Ok(u64::from_be_bytes(b))
    }

    fn bytes(&mut self, len: usize) -> Result<Vec<u8>, BackupError> {
        let mut out = vec![0u8; len];
        self.exact(&mut out)?;
        Ok(out)
    }

    fn blob(&mut self, limit: u32, what: &str) -> Result<Vec<u8>, BackupError> {
        let len = self.u32()?;
        if len > limit {
            return Err(BackupError::Malformed(format!(
                "{what} of {len} bytes (at most {limit})"
            )));
        }
        self.bytes(len as usize)
    }
}

fn read_archive(new: &Path, archive: impl Read) -> Result<SnapshotStats, BackupError> {
    let mut input = Input {
        inner: BufReader::with_capacity(256 * 1024, archive),
        bytes: 0,
    };
    let mut magic = [0u8; 16];
    input.exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(BackupError::Malformed(
            "it does not start with the archive magic".into(),
        ));
    }
    if input.u8()? != b'M' {
        return Err(BackupError::Malformed("the manifest is missing".into()));
    }
    let manifest: Manifest = serde_json::from_slice(&input.blob(64 * 1024, "a manifest")?)
        .map_err(|e| BackupError::Malformed(format!("bad manifest: {e}")))?;
    if manifest.schema_version > SCHEMA_VERSION {
        return Err(BackupError::TooNew {
            found: manifest.schema_version,
            known: SCHEMA_VERSION,
        });
    }
    let db_dir = new.join(DB_DIR);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&db_dir)
        .map_err(io_error("create", &db_dir))?;
    let db = sled::Config::new()
        .path(&db_dir)
        .cache_capacity(8 * 1024 * 1024)
        .mode(sled::Mode::LowSpace)
        .open()
        .map_err(sled_error)?;
    let mut stats = SnapshotStats {
        schema_version: manifest.schema_version,
        created: manifest.created,
        aisopod: manifest.aisopod,
        ..SnapshotStats::default()
    };
    let mut tree: Option<sled::Tree> = None;
    let mut batch = sled::Batch::default();
    let mut pending = 0usize;
    let mut seen_trees = std::collections::BTreeSet::new();
    let mut seen_files = std::collections::BTreeSet::new();
    loop {
        match input.u8()? {
            b'T' => {
                flush(&tree, &mut batch, &mut pending)?;
                let len = input.u16()?;
                let name = input.bytes(len.into())?;
                if !seen_trees.insert(name.clone()) {
                    return Err(BackupError::Malformed("a tree appears twice".into()));
                }
                tree = Some(db.open_tree(&name).map_err(sled_error)?);
                stats.trees += 1;
            }
            b'R' => {
                if tree.is_none() {
                    return Err(BackupError::Malformed("a record before any tree".into()));
                }
                let key = input.blob(MAX_KEY, "a key")?;
                let value = input.blob(MAX_VALUE, "a value")?;
                batch.insert(key, value);
                pending += 1;
                stats.records += 1;
                if pending >= BATCH_RECORDS {
                    flush(&tree, &mut batch, &mut pending)?;
                }
            }
            b'F' => {
                let len = input.u16()?;
                let raw = input.bytes(len.into())?;
                let name = String::from_utf8(raw)
                    .ok()
                    .filter(|name| file_target(name).is_some())
                    .ok_or_else(|| {
                        BackupError::Malformed("a file with a name a backup never holds".into())
                    })?;
                if !seen_files.insert(name.clone()) {
                    return Err(BackupError::Malformed(format!("{name} appears twice")));
                }
                let contents = input.blob(MAX_FILE, "a file")?;
                let target = new.join(file_target(&name).unwrap_or_default());
                if let Some(parent) = target.parent() {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(parent)
                        .map_err(io_error("create", parent))?;
                }
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&target)
                    .map_err(io_error("create", &target))?;
                file.write_all(&contents)
                    .map_err(io_error("write", &target))?;
                stats.files += 1;
            }
            b'Z' => {
                flush(&tree, &mut batch, &mut pending)?;
                let counts = [input.u64()?, input.u64()?, input.u64()?];
                if counts != [stats.trees, stats.records, stats.files] {
                    return Err(BackupError::Malformed(format!(
                        "the end marker counts {counts:?} (trees, records, files) but the archive held {:?}",
                        [stats.trees, stats.records, stats.files]
                    )));
                }
                let mut rest = [0u8; 1];
                let more = input.inner.read(&mut rest).map_err(BackupError::Read)?;
                if more != 0 {
                    return Err(BackupError::Malformed("data follows the end marker".into()));
                }
                break;
            }
            other => {
                return Err(BackupError::Malformed(format!(
                    "unknown frame {other:#04x} at archive byte {}",
                    input.bytes - 1
                )));
            }
        }
    }
    db.flush().map_err(sled_error)?;
    drop(tree);
    drop(db);
    stats.bytes = input.bytes;
    Ok(stats)
}

fn flush(
    tree: &Option<sled::Tree>,
    batch: &mut sled::Batch,
    pending: &mut usize,
) -> Result<(), BackupError> {
    if let Some(tree) = tree
        && *pending > 0
    {
        tree.apply_batch(std::mem::take(batch))
            .map_err(sled_error)?;
    }
    *pending = 0;
    Ok(())
}

/// Gives `path` (and everything under it) to the owner of `data_dir` when running as
/// root, so that a restore or a snapshot run with `sudo` leaves files the gateway's own
/// user can open. Links are changed themselves, never followed.
pub fn adopt_owner(data_dir: &Path, path: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let owner = std::fs::metadata(data_dir).map_err(io_error("inspect", data_dir))?;
    let (uid, gid) = (owner.uid(), owner.gid());
    fn walk(path: &Path, uid: u32, gid: u32) -> Result<(), BackupError> {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io_error("chown", path))?;
        let meta = std::fs::symlink_metadata(path).map_err(io_error("inspect", path))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).map_err(io_error("list", path))? {
                walk(&entry.map_err(io_error("list", path))?.path(), uid, gid)?;
            }
        }
        Ok(())
    }
    match std::fs::symlink_metadata(path) {
        Ok(_) => walk(path, uid, gid),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(io_error("inspect", path)(err)),
    }
}

/// `fsync`s every file and directory under `dir` (sled's own flush does not reach the
/// device; see the store's module doc).
fn sync_recursive(dir: &Path) -> Result<(), BackupError> {
    for entry in std::fs::read_dir(dir).map_err(io_error("list", dir))? {
        let entry = entry.map_err(io_error("list", dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io_error("inspect", &path))?;
        if kind.is_dir() {
            sync_recursive(&path)?;
        } else if kind.is_file() {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io_error("fsync", &path))?;
        }
    }
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_error("fsync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::layout::JOURNAL;
    use crate::store::{AuditSeq, MetaKey, Tree, TreeName};

    fn filled_store(dir: &Path) -> Store {
        let store = Store::open(dir, 1 << 20).unwrap();
        let audit: Tree<AuditSeq, String> = store.tree(TreeName::Audit).unwrap();
        for i in 0..500 {
            audit.insert(&AuditSeq(i), &format!("record {i}")).unwrap();
        }
        let users: Tree<String, u32> = store.tree(TreeName::Users).unwrap();
        users.insert(&"alice".to_string(), &7).unwrap();
        store.sync().unwrap();
        std::fs::write(dir.join("master.key"), [1u8; 32]).unwrap();
        std::fs::create_dir_all(dir.join("tls")).unwrap();
        std::fs::write(dir.join("tls/ca.pem"), b"CA").unwrap();
        std::fs::write(dir.join("tls/.hidden"), b"skipped").unwrap();
        store
    }

    fn archive_of(dir: &Path) -> (Vec<u8>, SnapshotStats) {
        let store = filled_store(dir);
        let mut out = Vec::new();
        let stats = store
            .snapshot(dir, "2026-01-01T00:00:00Z", &mut out)
            .unwrap();
        (out, stats)
    }

    #[test]
    fn an_archive_restores_into_an_empty_data_dir() {
        let source = tempfile::tempdir().unwrap();
        let (archive, stats) = archive_of(source.path());
        assert_eq!(stats.records, 502, "{stats:?}"); // 500 audit, 1 user, schema version
        assert_eq!(stats.files, 2);
        assert_eq!(stats.bytes, archive.len() as u64);

        let target = tempfile::tempdir().unwrap();
        let lock = DataDirLock::take(target.path()).unwrap();
        let staged = stage(&lock, &archive[..]).unwrap();
        assert!(
            !target.path().join("db").exists(),
            "staging must not touch the data"
        );
        staged.commit(&lock).unwrap();
        drop(lock);
        assert!(!target.path().join(RESTORE_DIR).exists());
        assert_eq!(
            std::fs::read(target.path().join("master.key")).unwrap(),
            [1u8; 32]
        );
        assert_eq!(
            std::fs::read(target.path().join("tls/ca.pem")).unwrap(),
            b"CA"
        );
        assert!(!target.path().join("tls/.hidden").exists());
        let store = Store::open(target.path(), 1 << 20).unwrap();
        let audit: Tree<AuditSeq, String> = store.tree(TreeName::Audit).unwrap();
        assert_eq!(audit.len(), 500);
        assert_eq!(audit.get(&AuditSeq(499)).unwrap().unwrap(), "record 499");
        let users: Tree<String, u32> = store.tree(TreeName::Users).unwrap();
        assert_eq!(users.get(&"alice".to_string()).unwrap(), Some(7));
    }

    #[test]
    fn a_bad_archive_leaves_the_data_untouched() {
        let source = tempfile::tempdir().unwrap();
        let (archive, _) = archive_of(source.path());
        let target = tempfile::tempdir().unwrap();
        {
            let store = Store::open(target.path(), 1 << 20).unwrap();
            let meta: Tree<MetaKey, String> = store.tree(TreeName::Meta).unwrap();
            meta.insert(&MetaKey::new("mark"), &"before".to_string())
                .unwrap();
            store.sync().unwrap();
        }
        std::fs::write(target.path().join("master.key"), [2u8; 32]).unwrap();
        let mut cases: Vec<Vec<u8>> = vec![
            archive[..archive.len() - 1].to_vec(),
            archive[..archive.len() / 2].to_vec(),
            [archive.as_slice(), b"x"].concat(),
            b"not an archive at all".to_vec(),
        ];
        let mut wrong_count = archive.clone();
        let at = wrong_count.len() - 9;
        wrong_count[at] ^= 1;
        cases.push(wrong_count);
        for case in cases {
            let lock = DataDirLock::take(target.path()).unwrap();
            assert!(stage(&lock, &case[..]).is_err());
            assert!(!target.path().join(RESTORE_DIR).exists());
        }
        let store = Store::open(target.path(), 1 << 20).unwrap();
        let meta: Tree<MetaKey, String> = store.tree(TreeName::Meta).unwrap();
        assert_eq!(meta.get(&MetaKey::new("mark")).unwrap().unwrap(), "before");
        assert_eq!(
            std::fs::read(target.path().join("master.key")).unwrap(),
            [2u8; 32]
        );
    }

    #[test]
    fn a_restore_is_refused_while_the_store_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let _store = Store::open(dir.path(), 1 << 20).unwrap();
        assert!(matches!(
            DataDirLock::take(dir.path()).unwrap_err(),
            BackupError::Store(StoreError::Locked { .. })
        ));
    }

    /// A crash at any point of the swap is finished by the next open.
    #[test]
    fn an_interrupted_swap_is_finished_on_the_next_open() {
        let source = tempfile::tempdir().unwrap();
        let (archive, _) = archive_of(source.path());
        let target = tempfile::tempdir().unwrap();
        drop(Store::open(target.path(), 1 << 20).unwrap());
        std::fs::write(target.path().join("master.key"), [2u8; 32]).unwrap();
        std::fs::write(target.path().join("master.key.next"), [3u8; 32]).unwrap();
        let lock = DataDirLock::take(target.path()).unwrap();
        let mut staged = stage(&lock, &archive[..]).unwrap();
        // Commit by hand, stopping after the first move in (as a crash would).
        let root = staged.root.clone();
        staged.committed = true;
        drop(staged);
        let journal = Journal {
            move_out: vec!["db".into(), "master.key".into(), "master.key.next".into()],
            move_in: vec!["db".into(), "tls".into(), "master.key".into()],
        };
        std::fs::write(root.join(JOURNAL), serde_json::to_vec(&journal).unwrap()).unwrap();
        std::fs::create_dir(root.join("old")).unwrap();
        std::fs::rename(target.path().join("db"), root.join("old/db")).unwrap();
        std::fs::rename(root.join("new/db"), target.path().join("db")).unwrap();
        drop(lock);

        let store = Store::open(target.path(), 1 << 20).unwrap();
        assert!(!root.exists());
        assert_eq!(
            std::fs::read(target.path().join("master.key")).unwrap(),
            [1u8; 32]
        );
        assert!(!target.path().join("master.key.next").exists());
        let audit: Tree<AuditSeq, String> = store.tree(TreeName::Audit).unwrap();
        assert_eq!(audit.len(), 500);
    }

    #[test]
    fn writes_wait_for_a_snapshot_and_it_sees_a_single_moment() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Each step writes the same counter to two trees, one call each.
        let writer = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let a: Tree<MetaKey, u64> = store.tree(TreeName::Meta).unwrap();
                let b: Tree<String, u64> = store.tree(TreeName::Users).unwrap();
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    b.insert(&"n".to_string(), &i).unwrap();
                    a.insert(&MetaKey::new("n"), &i).unwrap();
                }
            })
        };
        for _ in 0..20 {
            let mut out = Vec::new();
            store.snapshot(dir.path(), "now", &mut out).unwrap();
            let target = tempfile::tempdir().unwrap();
            let lock = DataDirLock::take(target.path()).unwrap();
            stage(&lock, &out[..]).unwrap().commit(&lock).unwrap();
            drop(lock);
            let restored = Store::open(target.path(), 1 << 20).unwrap();
            let a: Tree<MetaKey, u64> = restored.tree(TreeName::Meta).unwrap();
            let b: Tree<String, u64> = restored.tree(TreeName::Users).unwrap();
            let (a, b) = (
                a.get(&MetaKey::new("n")).unwrap(),
                b.get(&"n".to_string()).unwrap(),
            );
            // `b` is written first: a snapshot between the two writes has b = a + 1.
            match (a, b) {
                (None, None) | (None, Some(1)) => {}
                (Some(a), Some(b)) => assert!(b == a || b == a + 1, "a {a}, b {b}"),
                other => panic!("inconsistent snapshot {other:?}"),
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
    }

    /// Run as root (as `sudo aisopod backup restore` is), restored files belong to the
    /// data directory's owner, the gateway's user.
    #[test]
    fn a_restore_as_root_gives_the_files_to_the_data_dirs_owner() {
        use std::os::unix::fs::MetadataExt;
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let source = tempfile::tempdir().unwrap();
        let (archive, _) = archive_of(source.path());
        let target = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(target.path(), Some(65534), Some(65534)).unwrap();
        let lock = DataDirLock::take(target.path()).unwrap();
        stage(&lock, &archive[..]).unwrap().commit(&lock).unwrap();
        for item in ["db", "db/db", "tls", "tls/ca.pem", "master.key"] {
            let meta = std::fs::symlink_metadata(target.path().join(item)).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "{item}");
        }
    }

    #[test]
    fn archive_file_names_are_restricted() {
        for ok in ["master.key", "master.key.next", "tls/ca.pem", "tls/key.pem"] {
            assert!(file_target(ok).is_some(), "{ok}");
        }
        for bad in [
            "../master.key",
            "tls/../master.key",
            "tls/.x",
            "tls/a/b",
            "db/db",
            "/etc/passwd",
            "tls/",
            "store.lock",
        ] {
            assert!(file_target(bad).is_none(), "{bad}");
        }
    }
}
