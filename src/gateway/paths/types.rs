//! The types the workspace's implementations share: its error, the limits on paths,
//! and what a read or a listing returns. Kept apart from `paths.rs` so the
//! implementations import them without reaching back into the module that declares
//! them; this file never touches the filesystem.

use serde::Serialize;

use crate::fsutil::IoError;

/// Longest path accepted, in bytes (Linux's `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// The path is empty, holds a NUL byte, or is too long.
    #[error("invalid path {path:?}: {reason}")]
    Invalid { path: String, reason: &'static str },
    /// The path is absolute, climbs out with `..`, or passes through a link that leads
    /// outside the workspace.
    #[error("{path:?} leads outside the workspace")]
    Escapes { path: String },
    #[error("{path:?} does not exist in the workspace")]
    NotFound { path: String },
    /// A directory, FIFO, socket or device where a regular file was expected.
    #[error("{path:?} is a {kind}, not a regular file")]
    NotARegularFile { path: String, kind: EntryKind },
    /// A file where a directory was expected (the path itself or one of its parents).
    #[error("{path:?} (or one of its parents) is not a directory")]
    NotADirectory { path: String },
    /// A write larger than the caller's cap.
    #[error("{path:?}: {size} bytes is more than the limit of {limit}")]
    TooLarge { path: String, size: u64, limit: u64 },
    /// A regular file with more than one name. A hard link carries no trace of where its
    /// other names are: one inside the workspace may be a second name of a file outside
    /// it (a key, a database) that the sandboxed program linked while it could see both,
    /// and path resolution, which only sees this name, cannot tell. Refusing every file
    /// with `st_nlink > 1` closes that door; agents have no reason to make hard links.
    #[error(
        "{path:?} has {links} names (hard links); such files are refused because another name may be outside the workspace"
    )]
    HardLinked { path: String, links: u64 },
    /// A symbolic link loop, or a `/proc` magic link.
    #[error("{path:?} passes through a loop of symbolic links or a link that is not allowed")]
    LinkLoop { path: String },
    #[cfg_attr(
        target_os = "linux",
        error(
            "workspace file access needs openat2 (Linux 5.6 or later), which this kernel does not offer"
        )
    )]
    #[cfg_attr(
        not(target_os = "linux"),
        error(
            "workspace file access needs Linux (openat2 with RESOLVE_BENEATH); it is unavailable on this system"
        )
    )]
    Unsupported,
    /// The path is the one the caller gave (cut to a shown length), or the workspace's
    /// root when it is being opened.
    #[error(
        "cannot {} {:?} in the workspace: {}",
        .0.op,
        .0.path.to_string_lossy(),
        .0.source
    )]
    Io(#[source] IoError),
}

impl PathError {
    /// A stable name for the kind of refusal, for the tool layer's answers.
    pub fn code(&self) -> &'static str {
        match self {
            PathError::Invalid { .. } => "invalid_path",
            PathError::Escapes { .. } => "escapes_workspace",
            PathError::NotFound { .. } => "not_found",
            PathError::NotARegularFile { .. } => "not_a_regular_file",
            PathError::NotADirectory { .. } => "not_a_directory",
            PathError::TooLarge { .. } => "too_large",
            PathError::HardLinked { .. } => "hard_linked",
            PathError::LinkLoop { .. } => "link_loop",
            PathError::Unsupported => "unsupported",
            PathError::Io { .. } => "io",
        }
    }
}

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl EntryKind {
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "directory",
            EntryKind::Symlink => "symbolic link",
            EntryKind::Fifo => "FIFO",
            EntryKind::Socket => "socket",
            EntryKind::CharDevice => "character device",
            EntryKind::BlockDevice => "block device",
            EntryKind::Unknown => "file of unknown type",
        }
    }
}

impl std::fmt::Display for EntryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What [`Workspace::read_file`](super::Workspace::read_file) read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContents {
    /// At most `max_bytes` from the start of the file.
    pub bytes: Vec<u8>,
    /// True when the file holds more than `bytes`.
    pub truncated: bool,
    /// The file's size when it was read.
    pub size: u64,
}

/// One entry of a [`DirListing`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirEntry {
    /// The entry's name; bytes that are not UTF-8 show as U+FFFD (such a name cannot be
    /// passed back, since workspace paths are UTF-8).
    pub name: String,
    /// The entry itself, not what a symbolic link points to.
    pub kind: EntryKind,
    /// `st_size` of the entry itself.
    pub size: u64,
}

/// What [`Workspace::list_dir`](super::Workspace::list_dir) found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirListing {
    /// Sorted by name. When `truncated`, these are the first `max_entries` in the
    /// directory's own order, then sorted.
    pub entries: Vec<DirEntry>,
    pub truncated: bool,
}
