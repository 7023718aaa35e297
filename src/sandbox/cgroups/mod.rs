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

pub mod manager;
mod v1;
mod v2;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use manager::{
    CgroupError, CgroupManager, CgroupVersion, Enforced, Events, RUN_PREFIX, RunCgroup,
    SANDBOX_DIR, run_name,
};
pub use v1::CgroupV1;
pub use v2::CgroupV2;

use manager::read_words;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
