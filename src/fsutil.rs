//! Ground-floor file handling every layer shares: the one IO error type that names the
//! operation and the path (each module's error embeds it), durable private files and
//! private directories. It imports nothing of the crate and knows no file's meaning.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A failed file operation, with what was being done and to which path.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {path}: {source}")]
pub struct IoError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    pub fn new(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> IoError {
        IoError {
            op,
            path: path.into(),
            source,
        }
    }

    /// For `map_err`: the error of doing `op` to `path`.
    pub fn at<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> IoError + 'a {
        move |source| IoError::new(op, path, source)
    }
}

/// Writes a file with mode 0600 durably: temp file, fsync, rename, fsync of the directory.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), std::io::Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

/// Creates `dir` with mode 0700, or tightens an existing one that is looser.
pub fn ensure_private_dir(dir: &Path) -> Result<(), IoError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(IoError::at("create", dir))?;
    let mode = std::fs::metadata(dir)
        .map_err(IoError::at("inspect", dir))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(IoError::at("chmod", dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loose_directory_is_tightened_and_a_private_file_replaces_the_old_one() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        ensure_private_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let file = dir.join("key");
        write_private_file(&file, b"one").unwrap();
        write_private_file(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!file.with_extension("tmp").exists());
    }

    #[test]
    fn the_error_names_the_operation_and_the_path() {
        let root = tempfile::tempdir().unwrap();
        let blocker = root.path().join("file");
        std::fs::write(&blocker, b"").unwrap();
        let err = ensure_private_dir(&blocker.join("sub")).unwrap_err();
        assert_eq!(err.op, "create");
        assert!(
            err.to_string().starts_with(&format!(
                "cannot create {}: ",
                blocker.join("sub").display()
            )),
            "{err}"
        );
    }
}
