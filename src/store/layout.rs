//! The data directory's layout: the names of the entries beside the database that a
//! backup carries, and the restore journal that swaps a staged restore into place.
//!
//! Both the store (on open) and a restore (before staging) finish a swap that a crash
//! interrupted, so the journal lives here, below both. This module never reads or writes
//! an archive, never opens the database and never decides what a restore holds; it only
//! moves the entries the journal names.

use std::fs::File;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::fsutil::IoError;

/// The data directory's entries beside `db/` that a backup carries. Their owners (`keys`,
/// `tls`) name them from here, so the archive and the files cannot drift apart.
pub const MASTER_KEY_FILE: &str = "master.key";
/// Where a master key rotation writes the new key before it renames it into place.
pub const NEXT_KEY_FILE: &str = "master.key.next";
/// The CA and server certificates and keys.
pub const TLS_DIR: &str = "tls";
/// The sled database.
pub const DB_DIR: &str = "db";
/// The data directory's entries a backup holds and a restore replaces.
pub const ITEMS: [&str; 4] = [DB_DIR, TLS_DIR, MASTER_KEY_FILE, NEXT_KEY_FILE];
/// A restore's staging area under the data directory (`new/`, `old/`, the journal).
pub const RESTORE_DIR: &str = ".restore";
/// The journal's name under [`RESTORE_DIR`]; its presence means the swap was committed.
pub const JOURNAL: &str = "COMMIT";

/// Why a restore's swap could not be finished. The messages match the backup's own
/// errors, which wrap this one.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("the backup's contents are malformed: {0}")]
    Malformed(String),
}

fn io_error<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> JournalError + 'a {
    move |source| JournalError::Io(IoError::new(op, path.to_path_buf(), source))
}

/// The moves of one swap: the live items to move aside, then the staged ones to move in.
#[derive(Serialize, Deserialize)]
pub struct Journal {
    pub move_out: Vec<String>,
    pub move_in: Vec<String>,
}

impl Journal {
    /// The moves that swap the items staged in `new` into `data_dir`.
    pub fn plan(data_dir: &Path, new: &Path) -> Journal {
        let present = |dir: &Path| {
            ITEMS
                .iter()
                .filter(|item| dir.join(item).symlink_metadata().is_ok())
                .map(|item| item.to_string())
                .collect()
        };
        Journal {
            move_out: present(data_dir),
            move_in: present(new),
        }
    }

    /// Writes the journal into `data_dir`'s staging area, which commits the swap: from
    /// here on, the next open or restore finishes it.
    pub fn write(&self, data_dir: &Path) -> Result<(), JournalError> {
        let text = serde_json::to_vec(self).map_err(|e| JournalError::Malformed(e.to_string()))?;
        let path = data_dir.join(RESTORE_DIR).join(JOURNAL);
        crate::fsutil::write_private_file(&path, &text).map_err(io_error("write", &path))
    }
}

/// Finishes a committed swap, or removes a staging directory that was never committed.
/// Runs with the data directory's lock held.
pub fn finish_interrupted_restore(data_dir: &Path) -> Result<(), JournalError> {
    let root = data_dir.join(RESTORE_DIR);
    if root.join(JOURNAL).exists() {
        tracing::warn!("finishing an interrupted restore");
        return apply_journal(data_dir);
    }
    if root.symlink_metadata().is_ok() {
        std::fs::remove_dir_all(&root).map_err(io_error("remove", &root))?;
    }
    Ok(())
}

/// Carries out the journal's moves, skipping those already done, then removes
/// `.restore/`. Each step is a rename whose completion the filesystem shows: an item
/// moved out exists in `old/`; an item moved in no longer exists in `new/`.
pub fn apply_journal(data_dir: &Path) -> Result<(), JournalError> {
    let root = data_dir.join(RESTORE_DIR);
    let journal_path = root.join(JOURNAL);
    let text = std::fs::read(&journal_path).map_err(io_error("read", &journal_path))?;
    let journal: Journal = serde_json::from_slice(&text)
        .map_err(|e| JournalError::Malformed(format!("the restore journal is damaged: {e}")))?;
    let known = |item: &String| ITEMS.contains(&item.as_str());
    if !journal.move_out.iter().chain(&journal.move_in).all(known) {
        return Err(JournalError::Malformed(
            "the restore journal names an unknown item".into(),
        ));
    }
    let (new, old) = (root.join("new"), root.join("old"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&old)
        .map_err(io_error("create", &old))?;
    for item in &journal.move_out {
        if old.join(item).symlink_metadata().is_err() {
            let from = data_dir.join(item);
            std::fs::rename(&from, old.join(item)).map_err(io_error("move aside", &from))?;
        }
    }
    for item in &journal.move_in {
        let from = new.join(item);
        if from.symlink_metadata().is_ok() {
            let to = data_dir.join(item);
            std::fs::rename(&from, &to).map_err(io_error("move into place", &to))?;
        }
    }
    File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("fsync", data_dir))?;
    std::fs::remove_file(&journal_path).map_err(io_error("remove", &journal_path))?;
    File::open(&root)
        .and_then(|d| d.sync_all())
        .map_err(io_error("fsync", &root))?;
    std::fs::remove_dir_all(&root).map_err(io_error("remove", &root))
}
