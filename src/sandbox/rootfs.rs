//! The run's root filesystem: a fresh tmpfs holding read-only bind mounts of only what
//! the interpreters need, a made-up `/etc`, a minimal `/dev`, a fresh `/proc`, and
//! size-capped scratch tmpfs for `/work` and `/tmp`; then `pivot_root` into it, the
//! host's tree detached, and the new root itself made read-only.
//!
//! What the sandbox sees is decided by [`plan`], a pure function of a few facts about
//! the host ([`HostLayout`]) that unit tests check line by line (no `/home`, no host
//! `passwd` or `shadow`, nothing of the data directory). [`build`] carries a plan out
//! and must run inside the run's new mount and pid namespaces. Every mount is
//! `nosuid`; every one but the device nodes is `nodev`; the scratch filesystems are
//! `noexec`. This module never forks and never touches cgroups.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::statvfs::{FsFlags, statvfs};

use super::spec::{FileData, Limits, SANDBOX_ID};

/// Host directory the new root is mounted on, in the run's private mount namespace
/// (every host has one, and the mount is invisible outside the namespace).
pub const STAGING: &str = "/tmp";
/// Size of the root tmpfs: directories, mount points and the generated `/etc`.
const ROOT_SIZE: u64 = 1 << 20;
/// Inodes per scratch tmpfs (each costs kernel memory).
const SCRATCH_INODES: u64 = 16_384;

/// Top-level host directories the interpreters need: symlinks are copied (merged-/usr
/// hosts link `/bin` and `/lib` into `/usr`), directories bound read-only.
pub const SYSTEM_DIRS: [&str; 7] = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];
/// Device nodes bound from the host's `/dev`. No tty, no pts, no block devices.
pub const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("cannot {op} {path}: {source}")]
    Failed {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn failed(op: &'static str, path: &Path) -> impl FnOnce(nix::errno::Errno) -> RootfsError {
    let path = path.to_path_buf();
    move |errno| RootfsError::Failed {
        op,
        path,
        source: errno.into(),
    }
}

fn io_failed(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RootfsError {
    let path = path.to_path_buf();
    move |source| RootfsError::Failed { op, path, source }
}

/// What exists on the host, as far as the plan cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostLayout {
    /// For each of [`SYSTEM_DIRS`] present on the host: a directory, or a symlink's target.
    pub system: Vec<(String, HostEntry)>,
    /// Host `/etc` entries that are bound or linked: `ld.so.cache`, `alternatives`,
    /// `localtime`, `ssl/certs`, `ssl/openssl.cnf`.
    pub etc: Vec<(String, HostEntry)>,
    /// The host's resolver configuration, used only when the run shares the network.
    pub resolv_conf: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEntry {
    Dir,
    File,
    Symlink(PathBuf),
}

/// `/etc` entries taken from the host: none of them holds a secret or an account.
pub const ETC_FROM_HOST: [&str; 5] = [
    "ld.so.cache",
    "alternatives",
    "localtime",
    "ssl/certs",
    "ssl/openssl.cnf",
];

impl HostLayout {
    /// Looks at the real host (`/`).
    pub fn survey() -> HostLayout {
        let entry = |path: &Path| -> Option<HostEntry> {
            let meta = std::fs::symlink_metadata(path).ok()?;
            if meta.file_type().is_symlink() {
                std::fs::read_link(path).ok().map(HostEntry::Symlink)
            } else if meta.is_dir() {
                Some(HostEntry::Dir)
            } else if meta.is_file() {
                Some(HostEntry::File)
            } else {
                None
            }
        };
        let system = SYSTEM_DIRS
            .iter()
            .filter_map(|name| entry(&Path::new("/").join(name)).map(|e| (name.to_string(), e)))
            .collect();
        let etc = ETC_FROM_HOST
            .iter()
            .filter_map(|name| entry(&Path::new("/etc").join(name)).map(|e| (name.to_string(), e)))
            .collect();
        HostLayout {
            system,
            etc,
            resolv_conf: std::fs::read("/etc/resolv.conf").ok(),
        }
    }
}

/// One step in building the root. Paths are relative to the new root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Dir {
        path: PathBuf,
        mode: u32,
    },
    Symlink {
        link: PathBuf,
        target: PathBuf,
    },
    /// A read-only, nosuid, nodev bind mount of a host directory or file.
    BindReadOnly {
        source: PathBuf,
        target: PathBuf,
        dir: bool,
    },
    /// A nosuid, noexec bind mount of a host device node.
    BindDevice {
        source: PathBuf,
        target: PathBuf,
    },
    File {
        path: PathBuf,
        contents: Vec<u8>,
        mode: u32,
    },
    /// A nosuid, nodev tmpfs of `size` bytes; `noexec` unless `exec`.
    Tmpfs {
        target: PathBuf,
        size: u64,
        mode: u32,
        exec: bool,
    },
    Proc {
        target: PathBuf,
    },
}

/// What the root of a run will hold.
pub fn plan(host: &HostLayout, limits: &Limits, files: &[FileData]) -> Vec<Op> {
    let mut ops = Vec::new();
    fn rel(path: &str) -> PathBuf {
        PathBuf::from(path)
    }
    for (name, entry) in &host.system {
        match entry {
            HostEntry::Symlink(target) => ops.push(Op::Symlink {
                link: rel(name),
                target: target.clone(),
            }),
            HostEntry::Dir => ops.push(Op::BindReadOnly {
                source: Path::new("/").join(name),
                target: rel(name),
                dir: true,
            }),
            HostEntry::File => {}
        }
    }

    ops.push(Op::Dir {
        path: rel("etc"),
        mode: 0o755,
    });
    let text = |path: &str, contents: &str| Op::File {
        path: rel(path),
        contents: contents.as_bytes().to_vec(),
        mode: 0o644,
    };
    ops.push(text(
        "etc/passwd",
        &format!("sandbox:x:{SANDBOX_ID}:{SANDBOX_ID}:sandbox:/work:/bin/sh\n"),
    ));
    ops.push(text("etc/group", &format!("sandbox:x:{SANDBOX_ID}:\n")));
    ops.push(text("etc/hostname", "sandbox\n"));
    ops.push(text(
        "etc/hosts",
        "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost\n",
    ));
    ops.push(text(
        "etc/nsswitch.conf",
        "passwd: files\ngroup: files\nhosts: files dns\n",
    ));
    if limits.network
        && let Some(resolv) = &host.resolv_conf
    {
        ops.push(Op::File {
            path: rel("etc/resolv.conf"),
            contents: resolv.clone(),
            mode: 0o644,
        });
    }
    if host.etc.iter().any(|(name, _)| name.starts_with("ssl/")) {
        ops.push(Op::Dir {
            path: rel("etc/ssl"),
            mode: 0o755,
        });
    }
    for (name, entry) in &host.etc {
        let target = Path::new("etc").join(name);
        match entry {
            HostEntry::Symlink(link_target) => ops.push(Op::Symlink {
                link: target,
                target: link_target.clone(),
            }),
            HostEntry::Dir | HostEntry::File => ops.push(Op::BindReadOnly {
                source: Path::new("/etc").join(name),
                target,
                dir: *entry == HostEntry::Dir,
            }),
        }
    }

    ops.push(Op::Dir {
        path: rel("dev"),
        mode: 0o755,
    });
    for device in DEVICES {
        ops.push(Op::BindDevice {
            source: Path::new("/dev").join(device),
            target: Path::new("dev").join(device),
        });
    }
    for (link, target) in [
        ("dev/fd", "/proc/self/fd"),
        ("dev/stdin", "/proc/self/fd/0"),
        ("dev/stdout", "/proc/self/fd/1"),
        ("dev/stderr", "/proc/self/fd/2"),
    ] {
        ops.push(Op::Symlink {
            link: rel(link),
            target: rel(target),
        });
    }
    ops.push(Op::Dir {
        path: rel("dev/shm"),
        mode: 0o755,
    });
    ops.push(Op::Tmpfs {
        target: rel("dev/shm"),
        size: limits.tmp_size,
        mode: 0o1777,
        exec: false,
    });

    ops.push(Op::Dir {
        path: rel("proc"),
        mode: 0o555,
    });
    ops.push(Op::Proc {
        target: rel("proc"),
    });

    for (dir, mode) in [("tmp", 0o1777), ("work", 0o755)] {
        ops.push(Op::Dir {
            path: rel(dir),
            mode: 0o755,
        });
        ops.push(Op::Tmpfs {
            target: rel(dir),
            size: limits.tmp_size,
            mode,
            exec: false,
        });
    }
    for file in files {
        ops.push(Op::File {
            path: Path::new("work").join(&file.name),
            contents: file.data.clone(),
            mode: 0o644,
        });
    }
    ops
}

/// Builds the planned root on a fresh tmpfs at [`STAGING`], pivots into it and detaches
/// the host's tree. Must run in the run's own mount namespace (and pid namespace, for
/// `/proc`), as the user that owns them.
pub fn build(ops: &[Op]) -> Result<(), RootfsError> {
    let staging = Path::new(STAGING);
    // Nothing mounted from here on may propagate back to the host, or in from it.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(failed("make private", Path::new("/")))?;
    mount_tmpfs(staging, ROOT_SIZE, 0o755, true)?;
    for op in ops {
        apply(staging, op)?;
    }
    pivot(staging)?;
    // The root tmpfs holds the generated /etc and the mount points: read-only from now.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(failed("remount read-only", Path::new("/")))?;
    Ok(())
}

fn apply(root: &Path, op: &Op) -> Result<(), RootfsError> {
    match op {
        Op::Dir { path, mode } => {
            let path = root.join(path);
            std::fs::DirBuilder::new()
                .mode(*mode)
                .create(&path)
                .map_err(io_failed("create directory", &path))?;
            // The umask may have narrowed the mode.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                .map_err(io_failed("chmod", &path))
        }
        Op::Symlink { link, target } => {
            let link = root.join(link);
            std::os::unix::fs::symlink(target, &link).map_err(io_failed("create symlink", &link))
        }
        Op::File {
            path,
            contents,
            mode,
        } => {
            let path = root.join(path);
            write_new_file(&path, contents, *mode)
        }
        Op::BindReadOnly {
            source,
            target,
            dir,
        } => {
            let target = root.join(target);
            make_mount_point(&target, *dir)?;
            mount(
                Some(source.as_path()),
                &target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(failed("bind", source))?;
            remount(
                &target,
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            )
        }
        Op::BindDevice { source, target } => {
            let target = root.join(target);
            make_mount_point(&target, false)?;
            mount(
                Some(source.as_path()),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(failed("bind", source))?;
            remount(&target, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC)
        }
        Op::Tmpfs {
            target,
            size,
            mode,
            exec,
        } => mount_tmpfs(&root.join(target), *size, *mode, *exec),
        Op::Proc { target } => {
            let target = root.join(target);
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            // subset=pid (Linux 5.8) hides everything but the processes: no /proc/sys,
            // no host-wide figures. Older kernels get the whole (namespaced) procfs.
            mount(
                Some("proc"),
                &target,
                Some("proc"),
                flags,
                Some("subset=pid"),
            )
            .or_else(|_| mount(Some("proc"), &target, Some("proc"), flags, None::<&str>))
            .map_err(failed("mount proc on", &target))
        }
    }
}

fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), RootfsError> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_failed("create", path))?;
    file.write_all(contents).map_err(io_failed("write", path))
}

fn make_mount_point(path: &Path, dir: bool) -> Result<(), RootfsError> {
    if dir {
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(path)
            .map_err(io_failed("create mount point", path))
    } else {
        write_new_file(path, b"", 0o644)
    }
}

/// Remounts a bind mount with `add` on top of the flags the kernel locks for mounts
/// inherited from a more privileged namespace (read-only, noexec, nosuid, nodev and the
/// atime mode cannot be relaxed, and must be restated on remount).
fn remount(target: &Path, add: MsFlags) -> Result<(), RootfsError> {
    let current = statvfs(target).map_err(failed("inspect", target))?.flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | add;
    for (has, flag) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
    ] {
        if current.contains(has) {
            flags |= flag;
        }
    }
    // ST_RELATIME (4096) is not named by nix on every C library.
    const ST_RELATIME: u64 = 4096;
    let relatime = current.bits() as u64 & ST_RELATIME != 0;
    if relatime {
        flags |= MsFlags::MS_RELATIME;
    } else if !current.contains(FsFlags::ST_NOATIME) {
        flags |= MsFlags::MS_STRICTATIME;
    }
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .map_err(failed("remount", target))
}

fn mount_tmpfs(target: &Path, size: u64, mode: u32, exec: bool) -> Result<(), RootfsError> {
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if !exec {
        flags |= MsFlags::MS_NOEXEC;
    }
    let options = format!("size={size},mode={mode:o},nr_inodes={SCRATCH_INODES}");
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        flags,
        Some(options.as_str()),
    )
    .map_err(failed("mount tmpfs on", target))
}

/// Makes `new_root` the root and detaches the old one. `pivot_root(".", ".")` stacks
/// the old root on top of the new one, so unmounting "." right after removes it
/// without needing a directory to park it in.
fn pivot(new_root: &Path) -> Result<(), RootfsError> {
    nix::unistd::chdir(new_root).map_err(failed("enter", new_root))?;
    nix::unistd::pivot_root(".", ".").map_err(failed("pivot_root to", new_root))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(failed("detach the host root from", new_root))?;
    nix::unistd::chdir("/").map_err(failed("enter", Path::new("/")))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(network: bool) -> Limits {
        Limits {
            timeout: Duration::from_secs(5),
            memory: 128 << 20,
            cpu_millis: 500,
            pids: 64,
            max_output: 1 << 20,
            tmp_size: 16 << 20,
            max_files: 4,
            max_file_size: 1 << 20,
            network,
        }
    }

    fn merged_usr_host() -> HostLayout {
        HostLayout {
            system: vec![
                ("usr".into(), HostEntry::Dir),
                ("bin".into(), HostEntry::Symlink("usr/bin".into())),
                ("lib".into(), HostEntry::Symlink("usr/lib".into())),
            ],
            etc: vec![
                ("ld.so.cache".into(), HostEntry::File),
                (
                    "localtime".into(),
                    HostEntry::Symlink("/usr/share/zoneinfo/Etc/UTC".into()),
                ),
                ("ssl/certs".into(), HostEntry::Dir),
            ],
            resolv_conf: Some(b"nameserver 192.0.2.1\n".to_vec()),
        }
    }

    fn targets(ops: &[Op]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                Op::Dir { path, .. } | Op::File { path, .. } => path.display().to_string(),
                Op::Symlink { link, .. } => link.display().to_string(),
                Op::BindReadOnly { target, .. }
                | Op::BindDevice { target, .. }
                | Op::Tmpfs { target, .. }
                | Op::Proc { target } => target.display().to_string(),
            })
            .collect()
    }

    #[test]
    fn the_root_holds_only_system_directories_and_generated_files() {
        let ops = plan(&merged_usr_host(), &limits(false), &[]);
        let all = targets(&ops);
        for hidden in [
            "home",
            "root",
            "etc/shadow",
            "etc/ssh",
            "var",
            "srv",
            "run",
            "sys",
            "boot",
            "dev/tty",
            "dev/pts",
            "dev/ptmx",
            "etc/resolv.conf",
        ] {
            assert!(
                !all.iter()
                    .any(|t| t == hidden || t.starts_with(&format!("{hidden}/"))),
                "{hidden} in {all:#?}"
            );
        }
        assert!(ops.contains(&Op::Symlink {
            link: "bin".into(),
            target: "usr/bin".into()
        }));
        assert!(ops.contains(&Op::BindReadOnly {
            source: "/usr".into(),
            target: "usr".into(),
            dir: true
        }));
        let passwd = ops.iter().find_map(|op| match op {
            Op::File { path, contents, .. } if path == Path::new("etc/passwd") => {
                Some(String::from_utf8_lossy(contents).into_owned())
            }
            _ => None,
        });
        assert_eq!(
            passwd.as_deref(),
            Some("sandbox:x:1000:1000:sandbox:/work:/bin/sh\n")
        );
        // Every source bound into the sandbox is a system directory, /etc file or device.
        for op in &ops {
            if let Op::BindReadOnly { source, .. } | Op::BindDevice { source, .. } = op {
                let s = source.display().to_string();
                assert!(
                    s == "/usr" || s.starts_with("/etc/") || s.starts_with("/dev/"),
                    "{s}"
                );
                assert!(
                    !s.contains("shadow") && !s.contains("ssh") && !s.contains("passwd"),
                    "{s}"
                );
            }
        }
    }

    #[test]
    fn scratch_space_is_capped_and_not_executable() {
        let ops = plan(&merged_usr_host(), &limits(false), &[]);
        for dir in ["tmp", "work", "dev/shm"] {
            assert!(
                ops.contains(&Op::Tmpfs {
                    target: dir.into(),
                    size: 16 << 20,
                    mode: if dir == "work" { 0o755 } else { 0o1777 },
                    exec: false
                }),
                "{dir}"
            );
        }
        assert!(ops.contains(&Op::Proc {
            target: "proc".into()
        }));
    }

    #[test]
    fn resolver_configuration_comes_only_with_the_network() {
        let has_resolv = |network| {
            targets(&plan(&merged_usr_host(), &limits(network), &[]))
                .contains(&"etc/resolv.conf".to_string())
        };
        assert!(!has_resolv(false));
        assert!(has_resolv(true));
    }

    #[test]
    fn input_files_land_in_the_working_directory_after_its_tmpfs() {
        let files = vec![FileData {
            name: "data.csv".into(),
            data: b"a,b\n".to_vec(),
        }];
        let ops = plan(&merged_usr_host(), &limits(false), &files);
        let tmpfs = ops
            .iter()
            .position(|op| matches!(op, Op::Tmpfs { target, .. } if target == Path::new("work")))
            .unwrap();
        let file = ops
            .iter()
            .position(
                |op| matches!(op, Op::File { path, .. } if path == Path::new("work/data.csv")),
            )
            .unwrap();
        assert!(tmpfs < file);
    }

    #[test]
    fn the_host_survey_sees_this_machine() {
        let host = HostLayout::survey();
        assert!(host.system.iter().any(|(name, _)| name == "usr"));
    }
}
