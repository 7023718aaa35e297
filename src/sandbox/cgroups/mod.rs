//! Control groups for sandbox runs: one cgroup per run with memory, CPU and process
//! limits, read back for what ended the run, killed as a whole, and removed afterwards.
//!
//! cgroup v2 (what Raspberry Pi OS and current systemd use) and the v1 controllers (as
//! on older or hybrid hosts) sit behind one trait, [`CgroupManager`]. Every manager takes
//! the directories it works in as paths, so unit tests run against a temporary
//! directory and only integration tests touch `/sys/fs/cgroup`. Runs live in a directory
//! named [`SANDBOX_DIR`] under the process's own cgroup (its delegated subtree under
//! systemd), each named `run-<gateway pid>-<n>`, so a later start can tell which ones a
//! dead gateway left behind and sweep them. This module never decides policy (which
//! limits, whether a missing controller is acceptable); it reports what it enforces.

mod v1;
mod v2;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use v1::CgroupV1;
pub use v2::CgroupV2;

use super::spec::Limits;
use crate::fsutil::IoError;

/// Directory under the process's own cgroup that holds the run cgroups.
pub const SANDBOX_DIR: &str = "aisopod-sandbox";
/// Prefix of each run's cgroup name.
pub const RUN_PREFIX: &str = "run-";
/// CFS period written with every CPU quota, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;
/// How long a kill may take to empty a cgroup before it counts as failed.
const KILL_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("no usable cgroup hierarchy: {0}")]
    Unusable(String),
    #[error("the processes of cgroup {path} did not exit after SIGKILL within {waited:?}")]
    KillTimedOut { path: PathBuf, waited: Duration },
}

impl CgroupError {
    fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        CgroupError::Io(IoError::new(op, path.to_path_buf(), source))
    }
}

/// Which cgroup interface a manager drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    V1,
    V2,
}

/// Which limits a manager can enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Enforced {
    pub memory: bool,
    pub cpu: bool,
    pub pids: bool,
}

impl Enforced {
    pub fn all(&self) -> bool {
        self.memory && self.cpu && self.pids
    }

    /// Names of the controllers that are missing.
    pub fn missing(&self) -> Vec<&'static str> {
        [
            ("memory", self.memory),
            ("cpu", self.cpu),
            ("pids", self.pids),
        ]
        .into_iter()
        .filter(|(_, on)| !on)
        .map(|(name, _)| name)
        .collect()
    }
}

/// Limit events counted by the kernel for one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Events {
    /// Processes the OOM killer ended because of the memory limit.
    pub oom_kills: u64,
    /// Forks refused because of the process limit.
    pub pids_max: u64,
}

/// One run's cgroup: a directory per hierarchy (one for v2, one per controller for v1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCgroup {
    pub name: String,
    pub dirs: Vec<PathBuf>,
}

impl RunCgroup {
    /// The files a process writes its pid into to join the run.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }
}

/// A cgroup interface: creates, observes, kills and removes run cgroups.
pub trait CgroupManager: Send + Sync + fmt::Debug {
    fn version(&self) -> CgroupVersion;

    /// Which limits runs actually get.
    fn enforced(&self) -> Enforced;

    /// The directories runs are created in (for reports and tests).
    fn bases(&self) -> Vec<PathBuf>;

    /// Creates the cgroup `name` with `limits`. On error nothing is left behind.
    fn create(&self, name: &str, limits: &Limits) -> Result<RunCgroup, CgroupError>;

    /// Limit events so far.
    fn events(&self, run: &RunCgroup) -> Events;

    /// Highest memory use so far, where the kernel reports it.
    fn peak_memory(&self, run: &RunCgroup) -> Option<u64>;

    /// Kills every process in the run and waits until none is left.
    fn kill(&self, run: &RunCgroup) -> Result<(), CgroupError>;

    /// Kills what is left and removes the run's directories.
    fn remove(&self, run: &RunCgroup) -> Result<(), CgroupError> {
        self.kill(run)?;
        for dir in &run.dirs {
            remove_cgroup_dir(dir)?;
        }
        Ok(())
    }

    /// Removes run cgroups whose gateway process is gone; returns how many.
    fn sweep(&self) -> usize {
        let mut removed = 0;
        let mut stale: Vec<String> = Vec::new();
        for base in self.bases() {
            let Ok(entries) = std::fs::read_dir(&base) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if owner_is_gone(&name) && !stale.contains(&name) {
                    stale.push(name);
                }
            }
        }
        for name in stale {
            let run = RunCgroup {
                dirs: self.bases().iter().map(|b| b.join(&name)).collect(),
                name,
            };
            match self.remove(&run) {
                Ok(()) => removed += 1,
                Err(err) => {
                    tracing::warn!(cgroup = %run.name, error = %err, "cannot remove a stale sandbox cgroup")
                }
            }
        }
        removed
    }
}

/// Whether a run cgroup's name says it belongs to a process that no longer exists.
fn owner_is_gone(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(RUN_PREFIX) else {
        return false;
    };
    let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
        return false;
    };
    pid != std::process::id() as i32 && !Path::new(&format!("/proc/{pid}")).exists()
}

/// A run name for the calling process: `run-<pid>-<n>`.
pub fn run_name(counter: u64) -> String {
    format!("{RUN_PREFIX}{}-{counter}", std::process::id())
}

// ---------------------------------------------------------------------------------------
// Finding the hierarchies.

pub use crate::config::sandbox::Preference;

/// One cgroup mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    pub version: CgroupVersion,
    /// The mount point.
    pub path: PathBuf,
    /// The cgroup path the mount shows as its root (`/` outside a cgroup namespace).
    pub root: String,
    /// v1 controllers on this hierarchy (empty for v2).
    pub controllers: Vec<String>,
}

/// Parses `/proc/self/mountinfo` text into its cgroup mounts.
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(path), Some(fstype)) = (left.get(3), left.get(4), right.first())
        else {
            continue;
        };
        let version = match *fstype {
            "cgroup2" => CgroupVersion::V2,
            "cgroup" => CgroupVersion::V1,
            _ => continue,
        };
        let controllers = match version {
            CgroupVersion::V2 => Vec::new(),
            CgroupVersion::V1 => right
                .get(2)
                .map(|opts| {
                    opts.split(',')
                        .filter(|o| {
                            !matches!(
                                *o,
                                "rw" | "ro"
                                    | "xattr"
                                    | "noprefix"
                                    | "clone_children"
                                    | "cpuset_v2_mode"
                                    | "favordynmods"
                            ) && !o.contains('=')
                        })
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        };
        mounts.push(CgroupMount {
            version,
            path: PathBuf::from(unescape_mount_path(path)),
            root: unescape_mount_path(root),
            controllers,
        });
    }
    mounts
}

/// Undoes the octal escapes (`\040` for a space) of mountinfo paths.
fn unescape_mount_path(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\'
            && let Some(code) = bytes
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The process's cgroup path per v1 controller and for v2, from `/proc/self/cgroup`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnCgroups {
    pub v2: Option<String>,
    pub v1: Vec<(Vec<String>, String)>,
}

impl OwnCgroups {
    pub fn parse(text: &str) -> OwnCgroups {
        let mut own = OwnCgroups::default();
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if id == "0" && controllers.is_empty() {
                own.v2 = Some(path.to_string());
            } else {
                own.v1.push((
                    controllers.split(',').map(str::to_string).collect(),
                    path.to_string(),
                ));
            }
        }
        own
    }

    fn v1_path(&self, controller: &str) -> Option<&str> {
        self.v1
            .iter()
            .find(|(names, _)| names.iter().any(|n| n == controller))
            .map(|(_, path)| path.as_str())
    }
}

/// The directory of cgroup `path` (as `/proc/self/cgroup` shows it) on `mount`.
fn dir_on(mount: &CgroupMount, path: &str) -> PathBuf {
    let relative = path
        .strip_prefix(mount.root.as_str())
        .unwrap_or(path)
        .trim_start_matches('/');
    if relative.is_empty() {
        mount.path.clone()
    } else {
        mount.path.join(relative)
    }
}

/// What the host offers, for `sandbox check`.
#[derive(Debug, Clone, Serialize)]
pub struct Hierarchies {
    pub v2_mount: Option<PathBuf>,
    /// Controllers the v2 hierarchy offers at the process's own cgroup.
    pub v2_controllers: Vec<String>,
    /// v1 controllers that are mounted, with their mount points.
    pub v1_controllers: Vec<(String, PathBuf)>,
    /// Controllers the kernel has but that are disabled (`/proc/cgroups`, enabled 0),
    /// such as `memory` on Raspberry Pi kernels without `cgroup_enable=memory`.
    pub disabled: Vec<String>,
}

/// Reads what the host offers from `/proc/self` (`proc_self`) and `/proc/cgroups`.
pub fn survey(proc_self: &Path, proc_cgroups: &Path) -> Hierarchies {
    let mounts =
        parse_mountinfo(&std::fs::read_to_string(proc_self.join("mountinfo")).unwrap_or_default());
    let own =
        OwnCgroups::parse(&std::fs::read_to_string(proc_self.join("cgroup")).unwrap_or_default());
    let v2 = mounts.iter().find(|m| m.version == CgroupVersion::V2);
    let v2_controllers = match (v2, &own.v2) {
        (Some(mount), Some(path)) => read_words(&dir_on(mount, path).join("cgroup.controllers")),
        _ => Vec::new(),
    };
    let mut v1_controllers = Vec::new();
    for mount in mounts.iter().filter(|m| m.version == CgroupVersion::V1) {
        for controller in &mount.controllers {
            if ["memory", "cpu", "pids"].contains(&controller.as_str()) {
                v1_controllers.push((controller.clone(), mount.path.clone()));
            }
        }
    }
    let disabled = std::fs::read_to_string(proc_cgroups)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            match (fields.first(), fields.get(3)) {
                (Some(name), Some(&"0")) => Some(name.to_string()),
                _ => None,
            }
        })
        .collect();
    Hierarchies {
        v2_mount: v2.map(|m| m.path.clone()),
        v2_controllers,
        v1_controllers,
        disabled,
    }
}

/// Finds the hierarchies from `/proc/self` and returns a manager for them, creating the
/// [`SANDBOX_DIR`] directories (and, for v2, moving this process into a leaf of its
/// own delegated cgroup when the cgroup rules require it).
pub fn detect(
    proc_self: &Path,
    preference: Preference,
) -> Result<Box<dyn CgroupManager>, CgroupError> {
    let read = |name: &str| {
        let path = proc_self.join(name);
        std::fs::read_to_string(&path).map_err(|e| CgroupError::io("read", &path, e))
    };
    let mounts = parse_mountinfo(&read("mountinfo")?);
    let own = OwnCgroups::parse(&read("cgroup")?);
    let v2 = mounts
        .iter()
        .find(|m| m.version == CgroupVersion::V2)
        .and_then(|m| own.v2.as_deref().map(|path| (m, path)));
    let v1_dir = |controller: &str| {
        mounts
            .iter()
            .find(|m| {
                m.version == CgroupVersion::V1 && m.controllers.iter().any(|c| c == controller)
            })
            .and_then(|m| own.v1_path(controller).map(|path| dir_on(m, path)))
    };
    let v1_dirs = (v1_dir("memory"), v1_dir("cpu"), v1_dir("pids"));
    let v2_offers = |wanted: &[&str]| {
        v2.map(|(mount, path)| {
            let offered = read_words(&dir_on(mount, path).join("cgroup.controllers"));
            wanted.iter().all(|w| offered.iter().any(|o| o == w))
        })
        .unwrap_or(false)
    };
    let use_v2 = match preference {
        Preference::V2 => true,
        Preference::V1 => false,
        Preference::Auto => {
            v2_offers(&["memory", "pids"])
                || (v1_dirs.0.is_none() && v1_dirs.2.is_none() && v2.is_some())
        }
    };
    if use_v2 {
        let (mount, path) = v2.ok_or_else(|| {
            CgroupError::Unusable(
                "no cgroup2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup)".into(),
            )
        })?;
        let manager = match CgroupV2::prepare(&mount.path, &dir_on(mount, path)) {
            Ok(manager) => manager,
            // Root started from a login session (whose cgroup holds the shell) may use
            // the top of the hierarchy, which is exempt from the no-internal-process rule.
            Err(CgroupError::Unusable(_))
                if nix::unistd::geteuid().is_root() && mount.root == "/" =>
            {
                CgroupV2::prepare(&mount.path, &mount.path)?
            }
            Err(err) => return Err(err),
        };
        Ok(Box::new(manager))
    } else {
        let (memory, cpu, pids) = v1_dirs;
        if memory.is_none() && cpu.is_none() && pids.is_none() {
            return Err(CgroupError::Unusable(
                "neither a cgroup2 hierarchy nor the v1 memory, cpu or pids controllers are mounted".into(),
            ));
        }
        let manager = CgroupV1::prepare(
            memory.map(|d| d.join(SANDBOX_DIR)),
            cpu.map(|d| d.join(SANDBOX_DIR)),
            pids.map(|d| d.join(SANDBOX_DIR)),
        )?;
        Ok(Box::new(manager))
    }
}

// ---------------------------------------------------------------------------------------
// File helpers shared by both versions.

/// Writes a cgroup interface file.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(|e| CgroupError::io("write", path, e))
}

/// Reads a cgroup interface file's whitespace-separated words (empty when unreadable).
pub(crate) fn read_words(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The value of `key` in a flat-keyed file such as `memory.events`.
pub(crate) fn read_key(path: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(' ')?;
            (name == key).then(|| value.trim().parse().ok()).flatten()
        })
}

/// A single-number file such as `memory.peak`.
pub(crate) fn read_number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Creates a run directory; an existing one (a reused name) is an error.
pub(crate) fn make_dir(path: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir(path).map_err(|e| CgroupError::io("create", path, e))
}

/// The pids in a cgroup directory.
pub(crate) fn procs(dir: &Path) -> Vec<i32> {
    read_words(&dir.join("cgroup.procs"))
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Sends SIGKILL to every process in `dirs` until none is left. Killing the run's pid
/// namespace init takes every process in the namespace with it, so this converges
/// after a round or two even while a fork bomb runs.
pub(crate) fn kill_loop(dirs: &[PathBuf]) -> Result<(), CgroupError> {
    let started = Instant::now();
    loop {
        let mut any = false;
        for dir in dirs {
            for pid in procs(dir) {
                any = true;
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if !any {
            return Ok(());
        }
        if started.elapsed() > KILL_WAIT {
            return Err(CgroupError::KillTimedOut {
                path: dirs.first().cloned().unwrap_or_default(),
                waited: KILL_WAIT,
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until no process is left in `dir`.
pub(crate) fn wait_empty(dir: &Path) -> Result<(), CgroupError> {
    let started = Instant::now();
    while !procs(dir).is_empty() {
        if started.elapsed() > KILL_WAIT {
            return Err(CgroupError::KillTimedOut {
                path: dir.to_path_buf(),
                waited: KILL_WAIT,
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Removes a run directory. On cgroupfs `rmdir` removes a cgroup with its interface
/// files (and may briefly answer EBUSY while the last process is reaped); a plain
/// directory standing in for one in unit tests holds real files, removed with it.
pub(crate) fn remove_cgroup_dir(dir: &Path) -> Result<(), CgroupError> {
    let started = Instant::now();
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err)
                if err.raw_os_error() == Some(nix::libc::EBUSY)
                    && started.elapsed() < KILL_WAIT =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(err) if err.kind() == io::ErrorKind::DirectoryNotEmpty && !is_cgroupfs(dir) => {
                return std::fs::remove_dir_all(dir).map_err(|e| CgroupError::io("remove", dir, e));
            }
            Err(err) => return Err(CgroupError::io("remove", dir, err)),
        }
    }
}

/// Whether `path` is on a cgroup filesystem.
#[cfg(target_os = "linux")]
fn is_cgroupfs(path: &Path) -> bool {
    use nix::sys::statfs::{CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, statfs};
    statfs(path)
        .map(|s| {
            let kind = s.filesystem_type();
            kind == CGROUP2_SUPER_MAGIC || kind == CGROUP_SUPER_MAGIC
        })
        .unwrap_or(false)
}

/// Only Linux has cgroups (this module builds elsewhere for its types, which the
/// configuration and `sandbox check` name, and nothing there creates a run cgroup).
#[cfg(not(target_os = "linux"))]
fn is_cgroupfs(_path: &Path) -> bool {
    false
}

/// `cpu_millis` thousandths of a CPU as a CFS quota per [`CPU_PERIOD_US`].
pub(crate) fn cpu_quota_us(cpu_millis: u32) -> u64 {
    (u64::from(cpu_millis) * CPU_PERIOD_US / 1000).max(1000)
}

pub(crate) fn cpu_period_us() -> u64 {
    CPU_PERIOD_US
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn limits() -> Limits {
        Limits {
            timeout: Duration::from_secs(5),
            memory: 128 << 20,
            cpu_millis: 500,
            pids: 64,
            max_output: 1 << 20,
            tmp_size: 16 << 20,
            max_files: 4,
            max_file_size: 1 << 20,
            network: false,
        }
    }

    const MOUNTINFO: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:8 - tmpfs tmpfs rw,mode=755
27 26 0:25 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw
28 26 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
29 26 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
30 26 0:28 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
31 26 0:29 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
32 30 0:30 /sys /my\\040dir rw - cgroup2 cgroup2 rw
";

    #[test]
    fn mountinfo_yields_cgroup_mounts_with_controllers() {
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(mounts.len(), 6, "{mounts:#?}");
        assert_eq!(mounts[0].version, CgroupVersion::V2);
        assert_eq!(mounts[0].path, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(mounts[2].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(
            mounts[4].controllers,
            Vec::<String>::new(),
            "name= is not a controller"
        );
        assert_eq!(mounts[5].path, PathBuf::from("/my dir"));
        assert_eq!(mounts[5].root, "/sys");
    }

    #[test]
    fn own_cgroup_paths_map_onto_mounts() {
        let own = OwnCgroups::parse(
            "4:memory:/process_api/abc\n2:cpu,cpuacct:/\n0::/system.slice/aisopod.service\n",
        );
        assert_eq!(own.v2.as_deref(), Some("/system.slice/aisopod.service"));
        assert_eq!(own.v1_path("memory"), Some("/process_api/abc"));
        assert_eq!(own.v1_path("cpuacct"), Some("/"));
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(
            dir_on(&mounts[1], "/process_api/abc"),
            PathBuf::from("/sys/fs/cgroup/memory/process_api/abc")
        );
        assert_eq!(
            dir_on(&mounts[2], "/"),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(dir_on(&mounts[5], "/sys/x"), PathBuf::from("/my dir/x"));
    }

    #[test]
    fn stale_runs_are_recognised_by_their_owner_pid() {
        assert!(!owner_is_gone(&run_name(1)), "our own runs are never stale");
        assert!(owner_is_gone("run-2147483646-3"));
        assert!(!owner_is_gone("supervisor"));
        assert!(!owner_is_gone("run-x-1"));
    }

    #[test]
    fn cpu_fraction_becomes_a_quota() {
        assert_eq!(cpu_quota_us(500), 50_000);
        assert_eq!(cpu_quota_us(2000), 200_000);
        assert_eq!(
            cpu_quota_us(1),
            1000,
            "the kernel refuses quotas under 1 ms"
        );
    }

    #[test]
    fn flat_keyed_files_are_read_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("memory.events");
        std::fs::write(&file, "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n").unwrap();
        assert_eq!(read_key(&file, "oom_kill"), Some(1));
        assert_eq!(read_key(&file, "max"), Some(12));
        assert_eq!(read_key(&file, "nope"), None);
    }
}
