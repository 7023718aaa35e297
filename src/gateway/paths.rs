//! Workspace-confined file access: the only way agent tools (`read_file`, `write_file`,
//! `list_dir`) touch the filesystem.
//!
//! A [`Workspace`] holds an `O_PATH` descriptor of its root, and every path an agent
//! names is resolved *by the kernel*, relative to that descriptor, with `openat2(2)` and
//! `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`. The kernel refuses, atomically with the
//! lookup, any resolution that would leave the root: `..` past it, absolute paths,
//! absolute symbolic links, relative links that climb out, and `/proc` magic links; a
//! concurrent rename that could let `..` escape makes the call fail (`EAGAIN`, retried)
//! instead of succeeding outside. There is no check-then-use window to race.
//!
//! Decisions, each with its reason:
//! - **Symbolic links that stay inside are followed** (`RESOLVE_BENEATH` without
//!   `RESOLVE_NO_SYMLINKS`): agents and the programs they run make links inside their
//!   workspace, and the kernel already refuses every link that leads out.
//! - **Writes replace the name, never write through it**: data goes to a new temporary
//!   file in the target's directory, is `fsync`ed, and is renamed over the name with
//!   `renameat` relative to the directory's descriptor. A symbolic link at the name is
//!   replaced by the file (not followed); readers never see a half-written file.
//!   Missing parent directories are created (mode 0700), each one beneath the root.
//!   New files are 0600; a replaced file keeps its permission bits less group/other
//!   write and the set-id bits.
//! - **Hard-linked regular files are refused** for reads and writes (see [`PathError::HardLinked`]).
//! - **Only regular files are read or replaced**: directories, FIFOs, sockets and device
//!   nodes are refused by their type as `fstat` reports it on an opened descriptor
//!   (never a `stat` of the name). A read first opens the name with `O_PATH`, which
//!   calls no driver and cannot block on a FIFO, and refuses anything but a regular
//!   file; it then opens it for reading with `O_NONBLOCK | O_NOCTTY` and checks that
//!   descriptor again (type, link count, and the same inode as the first), so a name
//!   swapped in between is refused too.
//! - **Reads are truncated, writes are refused** at their caps: a long file's first
//!   `max_bytes` are useful to an agent (it is told the file's full size and that the
//!   result was cut); a write that is too large is refused whole, so no file is ever
//!   half written.
//!
//! `openat2` comes from `rustix`, which wraps it without `unsafe` and is already in the
//! dependency tree; `cap-std` would add several crates and falls back to resolving paths
//! in user space on kernels without `openat2`, where this module prefers to refuse
//! ([`PathError::Unsupported`], Linux 5.6 or later needed). Mount points inside a
//! workspace are crossed (no `RESOLVE_NO_XDEV`): only root can make them.
//!
//! The implementation is Linux's (`beneath`). Where the kernel offers no `openat2`
//! (macOS), `unavailable` stands in: no workspace opens, so `read_file`, `write_file`
//! and `list_dir` are refused with [`PathError::Unsupported`]. A path joined and checked
//! in user space would race with the programs changing the workspace, so there is no
//! such fallback.
//!
//! This module never logs file contents, never names the workspace's absolute location
//! in its errors (they carry the path as the agent gave it), and never opens a path
//! outside a workspace.

#[cfg(target_os = "linux")]
mod beneath;
#[cfg(not(target_os = "linux"))]
mod unavailable;

#[cfg(target_os = "linux")]
pub use beneath::Workspace;
#[cfg(not(target_os = "linux"))]
pub use unavailable::Workspace;

mod types;

pub use types::{DirEntry, DirListing, EntryKind, FileContents, MAX_PATH_BYTES, PathError};
