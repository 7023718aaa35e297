//! What every cgroup version shares: the [`CgroupManager`] trait the v1 and v2 managers
//! implement, the run cgroup and its limit events, the cgroup error, run naming and
//! the interface-file helpers both versions use. The versions (`v1`, `v2`) and the
//! detection in `mod.rs` build on this file; it never finds a hierarchy, never picks a
//! version and never decides which limits a run gets.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::sandbox::Limits;
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
    pub(super) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
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
