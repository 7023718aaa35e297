//! The workspace on Linux: every path is resolved by the kernel beneath the root's
//! `O_PATH` descriptor with `openat2(2)` and `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`,
//! as the parent module describes. Nothing here resolves a path in user space.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};
use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::types::{DirEntry, DirListing, EntryKind, FileContents, MAX_PATH_BYTES, PathError};
use crate::fsutil::IoError;

/// Longest single name accepted, in bytes (Linux's `NAME_MAX`).
const MAX_NAME_BYTES: usize = 255;
/// How many times an `openat2` that the kernel could not prove safe (`EAGAIN`: a rename
/// raced the lookup) is retried before giving up.
const RACE_RETRIES: u32 = 64;
/// Longest path shown in an error message.
const SHOWN_PATH_BYTES: usize = 200;

/// How every workspace path is resolved.
fn resolve_flags() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS
}

impl EntryKind {
    fn of(file_type: FileType) -> EntryKind {
        match file_type {
            FileType::RegularFile => EntryKind::File,
            FileType::Directory => EntryKind::Dir,
            FileType::Symlink => EntryKind::Symlink,
            FileType::Fifo => EntryKind::Fifo,
            FileType::Socket => EntryKind::Socket,
            FileType::CharacterDevice => EntryKind::CharDevice,
            FileType::BlockDevice => EntryKind::BlockDevice,
            FileType::Unknown => EntryKind::Unknown,
        }
    }
}

/// A workspace root and the descriptor every path is resolved beneath.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    fd: OwnedFd,
}

impl Workspace {
    /// Opens the workspace at `root`, creating it (mode 0700, with missing parents) if
    /// it does not exist. `root` itself is trusted configuration: it may be a link.
    pub fn open(root: &Path) -> Result<Workspace, PathError> {
        let io = |op: &'static str| {
            move |source: std::io::Error| PathError::Io(IoError::new(op, root, source))
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(io("create"))?;
        let fd = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| io("open")(errno.into()))?;
        // Probe once so that a kernel without openat2 is refused here, clearly, and not
        // on the first tool call.
        match rustix::fs::openat2(
            &fd,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            resolve_flags(),
        ) {
            Ok(_) => {}
            Err(Errno::NOSYS) => return Err(PathError::Unsupported),
            Err(errno) => return Err(io("open")(errno.into())),
        }
        Ok(Workspace {
            root: root.to_path_buf(),
            fd,
        })
    }

    /// The workspace's root as it was given to [`Workspace::open`].
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads a regular file: at most `max_bytes` of it, with `truncated` set when the
    /// file is longer. Refuses anything but a regular file with a single name.
    pub fn read_file(&self, rel: &str, max_bytes: u64) -> Result<FileContents, PathError> {
        let path = checked(rel, false)?;
        // First an O_PATH descriptor, which opens nothing: a device's driver is never
        // called and a socket or FIFO never answers. Its type decides.
        let probe = self.resolve(rel, path, OFlags::PATH | OFlags::CLOEXEC, "open")?;
        let seen = regular_file(rel, &probe)?;
        drop(probe);
        // Then the real open, checked again on its own descriptor: if the name was
        // swapped in between, the inode differs and the read is refused.
        let fd = self.resolve(
            rel,
            path,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            "open",
        )?;
        let stat = regular_file(rel, &fd)?;
        if (stat.st_dev, stat.st_ino) != (seen.st_dev, seen.st_ino) {
            return Err(PathError::Io(IoError::new(
                "open",
                shown(rel),
                std::io::Error::other("the file was replaced while it was opened"),
            )));
        }
        let mut bytes = Vec::new();
        File::from(fd)
            .take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| PathError::Io(IoError::new("read", shown(rel), source)))?;
        let read = bytes.len() as u64;
        let truncated = read > max_bytes;
        if truncated {
            bytes.truncate(usize::try_from(max_bytes).unwrap_or(usize::MAX));
        }
        Ok(FileContents {
            bytes,
            truncated,
            size: u64::try_from(stat.st_size).unwrap_or(0).max(read),
        })
    }

    /// Writes `data` to `rel` atomically (temporary file, `fsync`, `renameat`), creating
    /// missing parent directories beneath the root. Returns the bytes written. Refuses
    /// data over `max_bytes`, and a name held by anything but a regular file with one
    /// name or a symbolic link (which is replaced, not followed).
    pub fn write_file(&self, rel: &str, data: &[u8], max_bytes: u64) -> Result<u64, PathError> {
        let path = checked(rel, false)?;
        let size = data.len() as u64;
        if size > max_bytes {
            return Err(PathError::TooLarge {
                path: shown(rel),
                size,
                limit: max_bytes,
            });
        }
        let (parent, name) = match path.rsplit_once('/') {
            Some((parent, name)) => (parent, name),
            None => ("", path),
        };
        if name.is_empty() || name == "." || name == ".." {
            return Err(PathError::Invalid {
                path: shown(rel),
                reason: "it must end in a file name",
            });
        }
        let dir = self.parent_dir(rel, parent)?;
        let mode = self.replaced_mode(rel, &dir, name)?;

        let (temp_name, temp) = create_temp(rel, &dir)?;
        let mut guard = TempGuard {
            dir: &dir,
            name: Some(temp_name.as_str()),
        };
        let mut file = File::from(temp);
        let written = file
            .write_all(data)
            .and_then(|()| {
                if mode != 0o600 {
                    rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))?;
                }
                Ok(())
            })
            .and_then(|()| file.sync_all());
        written.map_err(|source| PathError::Io(IoError::new("write", shown(rel), source)))?;
        drop(file);
        rustix::fs::renameat(&dir, temp_name.as_str(), &dir, name)
            .map_err(|errno| map_errno(rel, "replace", errno))?;
        guard.name = None;
        rustix::fs::fsync(&dir).map_err(io_error("sync the directory of", rel))?;
        Ok(size)
    }

    /// Lists a directory (`""` or `"."` is the root): at most `max_entries` entries
    /// besides `.` and `..`, each with its own type and size (links are not followed).
    pub fn list_dir(&self, rel: &str, max_entries: usize) -> Result<DirListing, PathError> {
        let path = checked(rel, true)?;
        let fd = self.resolve(
            rel,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            "open",
        )?;
        let mut dir = rustix::fs::Dir::read_from(&fd).map_err(io_error("list", rel))?;
        let mut entries = Vec::new();
        let mut truncated = false;
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(io_error("list", rel))?;
            let raw = entry.file_name().to_bytes();
            if raw == b"." || raw == b".." {
                continue;
            }
            if entries.len() >= max_entries {
                truncated = true;
                break;
            }
            let name = String::from_utf8_lossy(raw).into_owned();
            // The entry may vanish between reading the directory and looking at it.
            let (kind, size) =
                match rustix::fs::statat(&fd, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) => (
                        EntryKind::of(FileType::from_raw_mode(stat.st_mode)),
                        u64::try_from(stat.st_size).unwrap_or(0),
                    ),
                    Err(Errno::NOENT) => continue,
                    Err(errno) => return Err(map_errno(rel, "inspect", errno)),
                };
            entries.push(DirEntry { name, kind, size });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(DirListing { entries, truncated })
    }

    /// `openat2` beneath the root, retrying when the kernel reports a race it could not
    /// rule out.
    fn resolve(
        &self,
        rel: &str,
        path: &str,
        flags: OFlags,
        op: &'static str,
    ) -> Result<OwnedFd, PathError> {
        let mut last = Errno::AGAIN;
        for _ in 0..RACE_RETRIES {
            match rustix::fs::openat2(&self.fd, path, flags, Mode::empty(), resolve_flags()) {
                Ok(fd) => return Ok(fd),
                Err(Errno::AGAIN) => {
                    last = Errno::AGAIN;
                    std::thread::yield_now();
                }
                Err(errno) => return Err(map_errno(rel, op, errno)),
            }
        }
        Err(map_errno(rel, op, last))
    }

    /// The directory a file is written into, opened for `fsync`, made (0700) beneath
    /// the root if it is missing.
    fn parent_dir(&self, rel: &str, parent: &str) -> Result<OwnedFd, PathError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let whole = if parent.is_empty() { "." } else { parent };
        match self.resolve(rel, whole, flags, "open") {
            Err(PathError::NotFound { .. }) => {}
            other => return other,
        }
        // Walk the prefixes, each resolved from the root (so `..` and links inside work
        // as they do for a whole path); make what is missing with `mkdirat` relative to
        // the descriptor of the prefix before it. `mkdirat` never follows a link.
        let mut current = self.resolve(rel, ".", flags, "open")?;
        let mut prefix = String::new();
        for component in parent.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(component);
            current = match self.resolve(rel, &prefix, flags, "open") {
                Ok(fd) => fd,
                Err(PathError::NotFound { .. }) => {
                    match rustix::fs::mkdirat(&current, component, Mode::from_raw_mode(0o700)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(errno) => return Err(map_errno(rel, "create a directory for", errno)),
                    }
                    self.resolve(rel, &prefix, flags, "open")?
                }
                Err(err) => return Err(err),
            };
        }
        Ok(current)
    }

    /// The mode for the file that will hold `name`: 0600 for a new file (or one that
    /// replaces a link), the old permission bits less group/other write and set-id bits
    /// for a regular file; anything else at the name is refused.
    fn replaced_mode(&self, rel: &str, dir: &OwnedFd, name: &str) -> Result<u32, PathError> {
        let existing = rustix::fs::openat2(
            dir,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            resolve_flags(),
        );
        let fd = match existing {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(0o600),
            Err(errno) => return Err(map_errno(rel, "open", errno)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(io_error("inspect", rel))?;
        match EntryKind::of(FileType::from_raw_mode(stat.st_mode)) {
            EntryKind::File => {
                refuse_hard_links(rel, &stat)?;
                Ok((stat.st_mode & 0o755) | 0o600)
            }
            EntryKind::Symlink => Ok(0o600),
            kind => Err(PathError::NotARegularFile {
                path: shown(rel),
                kind,
            }),
        }
    }
}

/// Removes a temporary file that was not renamed into place.
struct TempGuard<'a> {
    dir: &'a OwnedFd,
    name: Option<&'a str>,
}

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if let Some(name) = self.name {
            let _ = rustix::fs::unlinkat(self.dir, name, AtFlags::empty());
        }
    }
}

/// Creates a new, empty, private temporary file in `dir`.
fn create_temp(rel: &str, dir: &OwnedFd) -> Result<(String, OwnedFd), PathError> {
    let random = SystemRandom::new();
    let mut last = Errno::EXIST;
    for _ in 0..8 {
        let mut bytes = [0u8; 8];
        random.fill(&mut bytes).map_err(|_| {
            PathError::Io(IoError::new(
                "name a temporary file for",
                shown(rel),
                std::io::Error::other("the system random number generator failed"),
            ))
        })?;
        let name = format!(".aisopod-write-{}", hex::encode(bytes));
        match rustix::fs::openat2(
            dir,
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
            resolve_flags(),
        ) {
            Ok(fd) => return Ok((name, fd)),
            Err(Errno::EXIST) => last = Errno::EXIST,
            Err(errno) => return Err(map_errno(rel, "create a temporary file for", errno)),
        }
    }
    Err(map_errno(rel, "create a temporary file for", last))
}

/// The descriptor's metadata if it is a regular file with a single name.
fn regular_file(rel: &str, fd: &OwnedFd) -> Result<rustix::fs::Stat, PathError> {
    let stat = rustix::fs::fstat(fd).map_err(io_error("inspect", rel))?;
    let kind = EntryKind::of(FileType::from_raw_mode(stat.st_mode));
    if kind != EntryKind::File {
        return Err(PathError::NotARegularFile {
            path: shown(rel),
            kind,
        });
    }
    refuse_hard_links(rel, &stat)?;
    Ok(stat)
}

fn refuse_hard_links(rel: &str, stat: &rustix::fs::Stat) -> Result<(), PathError> {
    // The field's type differs between targets (u32 on aarch64, u64 on x86_64).
    #[allow(clippy::useless_conversion)]
    let links = u64::from(stat.st_nlink);
    if links > 1 {
        return Err(PathError::HardLinked {
            path: shown(rel),
            links,
        });
    }
    Ok(())
}

/// Checks what the kernel cannot say clearly (empty, NUL, length) and refuses what is
/// plainly outside (absolute, `..` past the root) before any system call. Returns the
/// path to resolve; the kernel still decides everything else.
fn checked(rel: &str, empty_is_root: bool) -> Result<&str, PathError> {
    let invalid = |reason| PathError::Invalid {
        path: shown(rel),
        reason,
    };
    if rel.is_empty() {
        return if empty_is_root {
            Ok(".")
        } else {
            Err(invalid("the path is empty"))
        };
    }
    if rel.contains('\0') {
        return Err(invalid("it contains a NUL byte"));
    }
    if rel.len() > MAX_PATH_BYTES {
        return Err(invalid("it is longer than 4096 bytes"));
    }
    if rel.starts_with('/') {
        return Err(PathError::Escapes { path: shown(rel) });
    }
    let mut depth: usize = 0;
    for component in rel.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| PathError::Escapes { path: shown(rel) })?;
            }
            name if name.len() > MAX_NAME_BYTES => {
                return Err(invalid("a name in it is longer than 255 bytes"));
            }
            _ => depth += 1,
        }
    }
    Ok(rel)
}

fn map_errno(rel: &str, op: &'static str, errno: Errno) -> PathError {
    let path = shown(rel);
    match errno {
        Errno::NOENT => PathError::NotFound { path },
        // RESOLVE_BENEATH's answer to anything that would leave the root.
        Errno::XDEV => PathError::Escapes { path },
        Errno::LOOP => PathError::LinkLoop { path },
        Errno::NOTDIR => PathError::NotADirectory { path },
        Errno::ISDIR => PathError::NotARegularFile {
            path,
            kind: EntryKind::Dir,
        },
        Errno::NAMETOOLONG => PathError::Invalid {
            path,
            reason: "it is too long",
        },
        Errno::NOSYS => PathError::Unsupported,
        errno => PathError::Io(IoError::new(op, path, errno.into())),
    }
}

fn io_error<'a>(op: &'static str, rel: &'a str) -> impl FnOnce(Errno) -> PathError + 'a {
    move |errno| PathError::Io(IoError::new(op, shown(rel), errno.into()))
}

/// The path as errors show it: at most [`SHOWN_PATH_BYTES`], cut on a character boundary.
fn shown(rel: &str) -> String {
    if rel.len() <= SHOWN_PATH_BYTES {
        return rel.to_string();
    }
    let mut end = SHOWN_PATH_BYTES;
    while !rel.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", rel.get(..end).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    const CAP: u64 = 1 << 20;

    /// A workspace `ws` beside a directory `outside` holding `secret`.
    struct Fixture {
        dir: tempfile::TempDir,
        ws: Workspace,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("outside")).unwrap();
            std::fs::write(dir.path().join("outside/secret"), b"OUTSIDE").unwrap();
            let ws = Workspace::open(&dir.path().join("ws")).unwrap();
            Fixture { dir, ws }
        }

        fn ws_path(&self, rel: &str) -> PathBuf {
            self.dir.path().join("ws").join(rel)
        }

        fn outside(&self) -> PathBuf {
            self.dir.path().join("outside")
        }
    }

    #[test]
    fn a_root_that_cannot_be_made_is_an_io_error_naming_the_operation_and_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"").unwrap();
        let root = blocker.join("ws");
        let err = Workspace::open(&root).unwrap_err();
        assert_eq!(err.code(), "io");
        let PathError::Io(io) = &err else {
            panic!("{err:?}")
        };
        assert_eq!((io.op, io.path.as_path()), ("create", root.as_path()));
        assert!(
            err.to_string().starts_with(&format!(
                "cannot create {:?} in the workspace: ",
                root.display().to_string()
            )),
            "{err}"
        );
    }

    #[test]
    fn open_creates_a_private_root_and_files_round_trip() {
        let f = Fixture::new();
        let mode = std::fs::metadata(f.ws.root()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(f.ws.write_file("notes.txt", b"hello", CAP).unwrap(), 5);
        let read = f.ws.read_file("notes.txt", CAP).unwrap();
        assert_eq!(read.bytes, b"hello");
        assert!(!read.truncated);
        assert_eq!(read.size, 5);
        let mode = std::fs::metadata(f.ws_path("notes.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Inside `..` that stays inside is fine.
        std::fs::create_dir(f.ws_path("a")).unwrap();
        assert_eq!(
            f.ws.read_file("a/../notes.txt", CAP).unwrap().bytes,
            b"hello"
        );
        assert_eq!(f.ws.read_file("./notes.txt", CAP).unwrap().bytes, b"hello");
    }

    #[test]
    fn dot_dot_and_absolute_paths_are_refused() {
        let f = Fixture::new();
        for rel in [
            "../outside/secret",
            "a/../../outside/secret",
            "../../../../../../etc/passwd",
            "/etc/passwd",
            "//etc/passwd",
            "./../outside/secret",
        ] {
            let err = f.ws.read_file(rel, CAP).unwrap_err();
            assert!(matches!(err, PathError::Escapes { .. }), "{rel}: {err}");
            let err = f.ws.write_file(rel, b"x", CAP).unwrap_err();
            assert!(matches!(err, PathError::Escapes { .. }), "{rel}: {err}");
            let err = f.ws.list_dir(rel, 10).unwrap_err();
            assert!(matches!(err, PathError::Escapes { .. }), "{rel}: {err}");
        }
        assert_eq!(
            std::fs::read(f.outside().join("secret")).unwrap(),
            b"OUTSIDE"
        );
    }

    #[test]
    fn the_kernel_refuses_dot_dot_that_only_a_link_makes_escape() {
        let f = Fixture::new();
        // `up/..` is lexically inside, but `up` is a link to `..` (which is allowed to
        // exist) so the kernel sees the walk leave the root.
        symlink("..", f.ws_path("up")).unwrap();
        let err = f.ws.read_file("up/outside/secret", CAP).unwrap_err();
        assert!(matches!(err, PathError::Escapes { .. }), "{err}");
        std::fs::create_dir(f.ws_path("d")).unwrap();
        symlink("../../outside", f.ws_path("d/out")).unwrap();
        let err = f.ws.read_file("d/out/secret", CAP).unwrap_err();
        assert!(matches!(err, PathError::Escapes { .. }), "{err}");
        let err = f.ws.write_file("d/out/new", b"x", CAP).unwrap_err();
        assert!(matches!(err, PathError::Escapes { .. }), "{err}");
        assert!(!f.outside().join("new").exists());
    }

    #[test]
    fn symlinks_leading_out_are_refused_and_those_inside_are_followed() {
        let f = Fixture::new();
        symlink("/etc", f.ws_path("etc")).unwrap();
        symlink("/etc/passwd", f.ws_path("passwd")).unwrap();
        symlink(f.outside().join("secret"), f.ws_path("secret")).unwrap();
        symlink("/dev/zero", f.ws_path("zero")).unwrap();
        symlink("/proc/self/root/etc/passwd", f.ws_path("magic")).unwrap();
        for rel in ["etc/passwd", "passwd", "secret", "zero", "magic"] {
            let err = f.ws.read_file(rel, CAP).unwrap_err();
            assert!(matches!(err, PathError::Escapes { .. }), "{rel}: {err}");
        }
        let err = f.ws.list_dir("etc", 10).unwrap_err();
        assert!(matches!(err, PathError::Escapes { .. }), "{err}");

        std::fs::create_dir(f.ws_path("real")).unwrap();
        std::fs::write(f.ws_path("real/file"), b"inside").unwrap();
        symlink("real", f.ws_path("alias")).unwrap();
        symlink("real/file", f.ws_path("link")).unwrap();
        symlink("../real/file", f.ws_path("real/again")).unwrap();
        assert_eq!(f.ws.read_file("alias/file", CAP).unwrap().bytes, b"inside");
        assert_eq!(f.ws.read_file("link", CAP).unwrap().bytes, b"inside");
        assert_eq!(f.ws.read_file("real/again", CAP).unwrap().bytes, b"inside");

        // A write to a link replaces the link and never writes through it.
        symlink(f.outside().join("secret"), f.ws_path("trap")).unwrap();
        f.ws.write_file("trap", b"mine", CAP).unwrap();
        assert_eq!(
            std::fs::read(f.outside().join("secret")).unwrap(),
            b"OUTSIDE"
        );
        assert!(
            !std::fs::symlink_metadata(f.ws_path("trap"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(f.ws.read_file("trap", CAP).unwrap().bytes, b"mine");

        symlink("loop2", f.ws_path("loop1")).unwrap();
        symlink("loop1", f.ws_path("loop2")).unwrap();
        let err = f.ws.read_file("loop1", CAP).unwrap_err();
        assert!(matches!(err, PathError::LinkLoop { .. }), "{err}");
    }

    #[test]
    fn hard_links_are_refused_for_reads_and_writes() {
        let f = Fixture::new();
        std::fs::hard_link(f.outside().join("secret"), f.ws_path("linked")).unwrap();
        let err = f.ws.read_file("linked", CAP).unwrap_err();
        assert!(
            matches!(err, PathError::HardLinked { links: 2, .. }),
            "{err}"
        );
        let err = f.ws.write_file("linked", b"overwrite", CAP).unwrap_err();
        assert!(matches!(err, PathError::HardLinked { .. }), "{err}");
        assert_eq!(
            std::fs::read(f.outside().join("secret")).unwrap(),
            b"OUTSIDE"
        );
    }

    #[test]
    fn fifos_sockets_and_devices_are_refused_without_blocking() {
        let f = Fixture::new();
        nix::unistd::mkfifo(&f.ws_path("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(f.ws_path("sock")).unwrap();
        std::fs::create_dir(f.ws_path("dir")).unwrap();
        let mut expected = vec![
            ("fifo", EntryKind::Fifo),
            ("sock", EntryKind::Socket),
            ("dir", EntryKind::Dir),
        ];
        // Making a device node needs CAP_MKNOD (root); without it the link case above
        // (`/dev/zero`) still shows devices outside are out of reach.
        let dev = nix::sys::stat::mknod(
            &f.ws_path("null"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
            nix::sys::stat::makedev(1, 3),
        );
        if dev.is_ok() {
            expected.push(("null", EntryKind::CharDevice));
        }
        let started = Instant::now();
        for (rel, kind) in &expected {
            let err = f.ws.read_file(rel, CAP).unwrap_err();
            assert!(
                matches!(&err, PathError::NotARegularFile { kind: k, .. } if k == kind),
                "{rel}: {err}"
            );
            let err = f.ws.write_file(rel, b"x", CAP).unwrap_err();
            assert!(
                matches!(&err, PathError::NotARegularFile { kind: k, .. } if k == kind),
                "{rel}: {err}"
            );
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        let listing = f.ws.list_dir("", 100).unwrap();
        for (rel, kind) in &expected {
            assert!(
                listing
                    .entries
                    .iter()
                    .any(|e| e.name == *rel && e.kind == *kind),
                "{rel} in {listing:?}"
            );
        }
    }

    #[test]
    fn bad_paths_are_refused_clearly() {
        let f = Fixture::new();
        let invalid = |err: PathError| matches!(err, PathError::Invalid { .. });
        assert!(invalid(f.ws.read_file("", CAP).unwrap_err()));
        assert!(invalid(f.ws.write_file("", b"x", CAP).unwrap_err()));
        assert!(invalid(f.ws.read_file("a\0b", CAP).unwrap_err()));
        assert!(invalid(
            f.ws.write_file("x\0/../../etc", b"x", CAP).unwrap_err()
        ));
        assert!(invalid(
            f.ws.read_file(&"a/".repeat(3000), CAP).unwrap_err()
        ));
        assert!(invalid(f.ws.read_file(&"n".repeat(256), CAP).unwrap_err()));
        assert!(invalid(f.ws.write_file("dir/", b"x", CAP).unwrap_err()));
        assert!(invalid(f.ws.write_file("dir/..", b"x", CAP).unwrap_err()));
        let long = f.ws.read_file(&"a/".repeat(3000), CAP).unwrap_err();
        assert!(long.to_string().len() < 400, "{long}");
        // A long path that fits the limits is resolved, and simply not found.
        let deep = "d/".repeat(2000) + "f";
        assert!(matches!(
            f.ws.read_file(&deep, CAP).unwrap_err(),
            PathError::NotFound { .. }
        ));
        assert!(matches!(
            f.ws.read_file("missing", CAP).unwrap_err(),
            PathError::NotFound { .. }
        ));
        std::fs::write(f.ws_path("plain"), b"x").unwrap();
        assert!(matches!(
            f.ws.read_file("plain/child", CAP).unwrap_err(),
            PathError::NotADirectory { .. }
        ));
        assert!(matches!(
            f.ws.list_dir("plain", 10).unwrap_err(),
            PathError::NotADirectory { .. }
        ));
        // Errors name the path as given, never where the workspace lives.
        let err = f.ws.read_file("missing", CAP).unwrap_err().to_string();
        assert!(!err.contains(&f.dir.path().display().to_string()), "{err}");
    }

    #[test]
    fn odd_names_round_trip_and_non_utf8_names_are_listed() {
        use std::os::unix::ffi::OsStrExt;
        let f = Fixture::new();
        for name in [
            "sp ace",
            "new\nline",
            "\u{202e}txt.exe",
            "\u{fffd}",
            "emoji-\u{1f980}",
            "-dash",
            "..hidden",
            "...",
        ] {
            f.ws.write_file(name, name.as_bytes(), CAP).unwrap();
            assert_eq!(f.ws.read_file(name, CAP).unwrap().bytes, name.as_bytes());
        }
        let raw = std::ffi::OsStr::from_bytes(b"bad-\xff\xfe");
        std::fs::write(f.ws.root().join(raw), b"x").unwrap();
        let listing = f.ws.list_dir(".", 100).unwrap();
        assert!(
            listing
                .entries
                .iter()
                .any(|e| e.name == "bad-\u{fffd}\u{fffd}"),
            "{listing:?}"
        );
        assert!(matches!(
            f.ws.read_file("bad-\u{fffd}\u{fffd}", CAP).unwrap_err(),
            PathError::NotFound { .. }
        ));
    }

    #[test]
    fn size_caps_truncate_reads_and_refuse_writes() {
        let f = Fixture::new();
        f.ws.write_file("big", &[7u8; 1000], CAP).unwrap();
        let read = f.ws.read_file("big", 100).unwrap();
        assert_eq!(read.bytes.len(), 100);
        assert!(read.truncated);
        assert_eq!(read.size, 1000);
        let exact = f.ws.read_file("big", 1000).unwrap();
        assert!(!exact.truncated);
        assert_eq!(f.ws.read_file("big", 0).unwrap().bytes.len(), 0);

        let err = f.ws.write_file("big", &[1u8; 101], 100).unwrap_err();
        assert!(
            matches!(
                err,
                PathError::TooLarge {
                    size: 101,
                    limit: 100,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(f.ws.read_file("big", CAP).unwrap().bytes, vec![7u8; 1000]);
        assert_eq!(f.ws.write_file("big", &[1u8; 100], 100).unwrap(), 100);
    }

    #[test]
    fn writes_make_parents_replace_atomically_and_leave_no_temporary_files() {
        let f = Fixture::new();
        f.ws.write_file("a/b/c/file.txt", b"one", CAP).unwrap();
        assert_eq!(std::fs::read(f.ws_path("a/b/c/file.txt")).unwrap(), b"one");
        let mode = std::fs::metadata(f.ws_path("a/b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        f.ws.write_file("a/x/../b/c/file.txt", b"two", CAP).unwrap();
        assert_eq!(std::fs::read(f.ws_path("a/b/c/file.txt")).unwrap(), b"two");
        assert!(f.ws_path("a/x").is_dir());

        // An executable stays executable; group/other write and set-id bits are dropped.
        std::fs::set_permissions(
            f.ws_path("a/b/c/file.txt"),
            std::fs::Permissions::from_mode(0o4777),
        )
        .unwrap();
        f.ws.write_file("a/b/c/file.txt", b"three", CAP).unwrap();
        let mode = std::fs::metadata(f.ws_path("a/b/c/file.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);

        // Writing over a directory is refused; writing beneath a file is refused.
        let err = f.ws.write_file("a/b", b"x", CAP).unwrap_err();
        assert!(
            matches!(
                err,
                PathError::NotARegularFile {
                    kind: EntryKind::Dir,
                    ..
                }
            ),
            "{err}"
        );
        let err =
            f.ws.write_file("a/b/c/file.txt/under", b"x", CAP)
                .unwrap_err();
        assert!(matches!(err, PathError::NotADirectory { .. }), "{err}");

        let listing = f.ws.list_dir("a/b/c", 10).unwrap();
        assert_eq!(
            listing.entries,
            vec![DirEntry {
                name: "file.txt".into(),
                kind: EntryKind::File,
                size: 5
            }]
        );
    }

    #[test]
    fn list_dir_caps_the_count_and_reports_kinds() {
        let f = Fixture::new();
        for i in 0..25 {
            f.ws.write_file(&format!("f{i:02}"), b"abc", CAP).unwrap();
        }
        std::fs::create_dir(f.ws_path("sub")).unwrap();
        symlink("f00", f.ws_path("link")).unwrap();
        let all = f.ws.list_dir("", 100).unwrap();
        assert_eq!(all.entries.len(), 27);
        assert!(!all.truncated);
        assert!(all.entries.windows(2).all(|w| w[0].name < w[1].name));
        let link = all.entries.iter().find(|e| e.name == "link").unwrap();
        assert_eq!(link.kind, EntryKind::Symlink);
        let sub = all.entries.iter().find(|e| e.name == "sub").unwrap();
        assert_eq!(sub.kind, EntryKind::Dir);
        let some = f.ws.list_dir(".", 10).unwrap();
        assert_eq!(some.entries.len(), 10);
        assert!(some.truncated);
        assert!(matches!(
            f.ws.list_dir("f00", 10).unwrap_err(),
            PathError::NotADirectory { .. }
        ));
    }

    /// A thread swaps `d` between a real directory and a link to the outside while
    /// reads go on: no read may ever return outside content.
    #[test]
    fn a_link_swapped_in_between_check_and_use_never_leaks() {
        let f = Fixture::new();
        let ws = f.dir.path().join("ws");
        std::fs::create_dir(ws.join("real")).unwrap();
        std::fs::write(ws.join("real/secret"), b"INSIDE").unwrap();
        symlink(f.outside(), ws.join("evil")).unwrap();
        std::fs::create_dir(ws.join("d")).unwrap();
        std::fs::write(ws.join("d/secret"), b"INSIDE").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flipper = {
            let stop = stop.clone();
            let ws = ws.clone();
            std::thread::spawn(move || {
                let mut flips = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // d ↔ evil: `d` is alternately a directory and a link that leads out.
                    let _ = rustix::fs::renameat_with(
                        rustix::fs::CWD,
                        ws.join("d"),
                        rustix::fs::CWD,
                        ws.join("evil"),
                        rustix::fs::RenameFlags::EXCHANGE,
                    );
                    flips += 1;
                }
                flips
            })
        };
        let (mut ok, mut refused) = (0u32, 0u32);
        let deadline = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < deadline {
            match f.ws.read_file("d/secret", CAP) {
                Ok(read) => {
                    assert_eq!(read.bytes, b"INSIDE", "outside content leaked");
                    ok += 1;
                }
                Err(PathError::Escapes { .. } | PathError::NotFound { .. }) => refused += 1,
                Err(err) => panic!("unexpected error: {err}"),
            }
            if let Ok(listing) = f.ws.list_dir("d", 10) {
                assert!(
                    listing
                        .entries
                        .iter()
                        .all(|e| e.name != "secret" || e.size == 6)
                );
            }
            let _ = f.ws.write_file("d/new", b"written", CAP);
        }
        stop.store(true, Ordering::Relaxed);
        let flips = flipper.join().unwrap();
        eprintln!("{flips} swaps; {ok} reads inside, {refused} refused");
        assert!(flips > 100, "the swap did not run ({flips})");
        assert!(ok > 0 && refused > 0, "ok {ok}, refused {refused}");
        let outside: Vec<_> = std::fs::read_dir(f.outside()).unwrap().collect();
        assert_eq!(outside.len(), 1, "a write landed outside: {outside:?}");
    }

    /// A thread moves `a/b` out of the workspace and back while `a/b/../../secret` is
    /// read: after the move that path's `..` would climb into the outside directory.
    #[test]
    fn a_directory_moved_out_during_resolution_never_leaks() {
        let f = Fixture::new();
        let ws = f.dir.path().join("ws");
        std::fs::create_dir_all(ws.join("a/b")).unwrap();
        std::fs::write(ws.join("secret"), b"INSIDE").unwrap();
        std::fs::create_dir(f.outside().join("p")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mover = {
            let stop = stop.clone();
            let (inside, outside) = (ws.join("a/b"), f.outside().join("p/b"));
            std::thread::spawn(move || {
                let mut moves = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::fs::rename(&inside, &outside);
                    let _ = std::fs::rename(&outside, &inside);
                    moves += 1;
                }
                moves
            })
        };
        let deadline = Instant::now() + Duration::from_millis(1500);
        let (mut ok, mut refused) = (0u32, 0u32);
        while Instant::now() < deadline {
            match f.ws.read_file("a/b/../../secret", CAP) {
                Ok(read) => {
                    assert_eq!(read.bytes, b"INSIDE", "outside content leaked");
                    ok += 1;
                }
                Err(
                    PathError::Escapes { .. } | PathError::NotFound { .. } | PathError::Io { .. },
                ) => refused += 1,
                Err(err) => panic!("unexpected error: {err}"),
            }
        }
        stop.store(true, Ordering::Relaxed);
        let moves = mover.join().unwrap();
        eprintln!("{moves} moves; {ok} reads inside, {refused} refused");
        assert!(moves > 100);
        assert!(ok > 0);
    }
}
