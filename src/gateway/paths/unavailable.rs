//! The workspace where the kernel cannot resolve a path beneath a descriptor (no
//! `openat2` with `RESOLVE_BENEATH`, as on macOS): no [`Workspace`] can be opened, so
//! every file tool is refused with [`PathError::Unsupported`] and no path an agent
//! names is ever touched. There is deliberately no user-space fallback (see the parent
//! module).

use std::convert::Infallible;
use std::path::Path;

use super::types::{DirListing, FileContents, PathError};

/// Never opened on this system: the same API as on Linux, but no value can exist.
#[derive(Debug)]
pub struct Workspace {
    never: Infallible,
}

impl Workspace {
    /// Always [`PathError::Unsupported`].
    pub fn open(_root: &Path) -> Result<Workspace, PathError> {
        Err(PathError::Unsupported)
    }

    pub fn root(&self) -> &Path {
        match self.never {}
    }

    pub fn read_file(&self, _rel: &str, _max_bytes: u64) -> Result<FileContents, PathError> {
        match self.never {}
    }

    pub fn write_file(&self, _rel: &str, _data: &[u8], _max_bytes: u64) -> Result<u64, PathError> {
        match self.never {}
    }

    pub fn list_dir(&self, _rel: &str, _max_entries: usize) -> Result<DirListing, PathError> {
        match self.never {}
    }
}
