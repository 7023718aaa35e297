//! cgroup v2: one directory per run under the delegated subtree, with `memory.max`,
//! `cpu.max` and `pids.max`, `memory.oom.group` so an OOM kill takes the whole run, and
//! `cgroup.kill` to end it.

use std::path::{Path, PathBuf};

use super::manager::{
    CgroupError, CgroupManager, CgroupVersion, Enforced, Events, RunCgroup, SANDBOX_DIR,
    cpu_period_us, cpu_quota_us, kill_loop, make_dir, procs, read_key, read_number, read_words,
    remove_cgroup_dir, wait_empty, write,
};
use crate::sandbox::spec::Limits;

/// Name of the leaf this process moves into when its own cgroup must become an inner node.
pub const SUPERVISOR_DIR: &str = "supervisor";
const WANTED: [&str; 3] = ["memory", "cpu", "pids"];

#[derive(Debug)]
pub struct CgroupV2 {
    /// The directory the run cgroups are created in.
    base: PathBuf,
    enforced: Enforced,
}

impl CgroupV2 {
    /// Uses `base` as it is (its `cgroup.subtree_control` already set up).
    pub fn at(base: PathBuf) -> CgroupV2 {
        let enabled = enabled_controllers(&base);
        CgroupV2 {
            enforced: Enforced {
                memory: enabled.iter().any(|c| c == "memory"),
                cpu: enabled.iter().any(|c| c == "cpu"),
                pids: enabled.iter().any(|c| c == "pids"),
            },
            base,
        }
    }

    /// Prepares `own` (this process's cgroup on the hierarchy mounted at `mount`) to hold
    /// run cgroups: a cgroup with controllers enabled for its children may hold no
    /// processes itself ("no internal processes"), so unless `own` is the root this
    /// process first moves into the leaf `own/supervisor` (which it may do in a subtree
    /// delegated to it, as systemd's `Delegate=yes` gives). Then it enables the memory,
    /// cpu and pids controllers for `own/aisopod-sandbox` and its children.
    pub fn prepare(mount: &Path, own: &Path) -> Result<CgroupV2, CgroupError> {
        let offered = read_words(&own.join("cgroup.controllers"));
        let wanted: Vec<&str> = WANTED
            .into_iter()
            .filter(|w| offered.iter().any(|o| o == w))
            .collect();
        if own != mount {
            let enabled = enabled_controllers(own);
            if !wanted.iter().all(|w| enabled.iter().any(|e| e == w)) {
                let me = std::process::id() as i32;
                let present = procs(own);
                if let Some(other) = present.iter().find(|&&p| p != me) {
                    return Err(CgroupError::Unusable(format!(
                        "cgroup {} also holds process {other}, so it cannot host sandbox cgroups; \
                         run aisopod as its systemd service (Delegate=yes) or under \
                         `systemd-run --scope -p Delegate=yes`",
                        own.display()
                    )));
                }
                if !present.is_empty() {
                    let leaf = own.join(SUPERVISOR_DIR);
                    if !leaf.is_dir() {
                        make_dir(&leaf)?;
                    }
                    write(&leaf.join("cgroup.procs"), &me.to_string())?;
                }
                enable(own, &wanted)?;
            }
        } else {
            enable(own, &wanted)?;
        }
        let base = own.join(SANDBOX_DIR);
        if !base.is_dir() {
            make_dir(&base)?;
        }
        enable(&base, &wanted)?;
        Ok(CgroupV2::at(base))
    }

    fn run_dir(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }
}

/// Controllers enabled for the children of `dir` (the kernel lists them bare; a test
/// stand-in keeps the `+` it was written with).
fn enabled_controllers(dir: &Path) -> Vec<String> {
    read_words(&dir.join("cgroup.subtree_control"))
        .into_iter()
        .map(|c| c.trim_start_matches('+').to_string())
        .collect()
}

fn enable(dir: &Path, controllers: &[&str]) -> Result<(), CgroupError> {
    let enabled = enabled_controllers(dir);
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| !enabled.iter().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    write(&dir.join("cgroup.subtree_control"), &missing.join(" "))
}

impl CgroupManager for CgroupV2 {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn enforced(&self) -> Enforced {
        self.enforced
    }

    fn bases(&self) -> Vec<PathBuf> {
        vec![self.base.clone()]
    }

    fn create(&self, name: &str, limits: &Limits) -> Result<RunCgroup, CgroupError> {
        let dir = self.run_dir(name);
        make_dir(&dir)?;
        let configure = || -> Result<(), CgroupError> {
            if self.enforced.memory {
                write(&dir.join("memory.max"), &limits.memory.to_string())?;
                // No swapping past the limit, and an OOM kill ends every process of the
                // run rather than one picked by the kernel.
                let swap = dir.join("memory.swap.max");
                if swap.exists() {
                    write(&swap, "0")?;
                }
                write(&dir.join("memory.oom.group"), "1")?;
            }
            if self.enforced.pids {
                write(&dir.join("pids.max"), &limits.pids.to_string())?;
            }
            if self.enforced.cpu {
                write(
                    &dir.join("cpu.max"),
                    &format!("{} {}", cpu_quota_us(limits.cpu_millis), cpu_period_us()),
                )?;
            }
            Ok(())
        };
        if let Err(err) = configure() {
            let _ = remove_cgroup_dir(&dir);
            return Err(err);
        }
        Ok(RunCgroup {
            name: name.to_string(),
            dirs: vec![dir],
        })
    }

    fn events(&self, run: &RunCgroup) -> Events {
        let Some(dir) = run.dirs.first() else {
            return Events::default();
        };
        Events {
            oom_kills: read_key(&dir.join("memory.events"), "oom_kill").unwrap_or(0),
            pids_max: read_key(&dir.join("pids.events"), "max").unwrap_or(0),
        }
    }

    fn peak_memory(&self, run: &RunCgroup) -> Option<u64> {
        run.dirs
            .first()
            .and_then(|dir| read_number(&dir.join("memory.peak")))
    }

    fn kill(&self, run: &RunCgroup) -> Result<(), CgroupError> {
        for dir in &run.dirs {
            let kill = dir.join("cgroup.kill");
            // cgroup.kill (Linux 5.14) kills the whole subtree atomically, racing no fork.
            if kill.exists() && write(&kill, "1").is_ok() {
                wait_empty(dir)?;
            } else {
                kill_loop(std::slice::from_ref(dir))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::manager::tests::limits;
    use super::*;

    /// A directory laid out like a delegated v2 cgroup.
    fn fake_delegated(controllers: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("system.slice/aisopod.service");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(own.join("cgroup.controllers"), controllers).unwrap();
        std::fs::write(own.join("cgroup.subtree_control"), "").unwrap();
        std::fs::write(
            own.join("cgroup.procs"),
            format!("{}\n", std::process::id()),
        )
        .unwrap();
        dir
    }

    #[test]
    fn prepare_moves_into_a_leaf_and_enables_controllers() {
        let root = fake_delegated("cpuset cpu io memory pids\n");
        let own = root.path().join("system.slice/aisopod.service");
        let manager = CgroupV2::prepare(root.path(), &own).unwrap();
        assert_eq!(
            std::fs::read_to_string(own.join("supervisor/cgroup.procs")).unwrap(),
            std::process::id().to_string()
        );
        assert_eq!(
            std::fs::read_to_string(own.join("cgroup.subtree_control")).unwrap(),
            "+memory +cpu +pids"
        );
        assert_eq!(manager.bases(), vec![own.join(SANDBOX_DIR)]);
        assert!(manager.enforced().all());
    }

    #[test]
    fn prepare_refuses_a_cgroup_shared_with_other_processes() {
        let root = fake_delegated("memory pids\n");
        let own = root.path().join("system.slice/aisopod.service");
        std::fs::write(
            own.join("cgroup.procs"),
            format!("1\n{}\n", std::process::id()),
        )
        .unwrap();
        let err = CgroupV2::prepare(root.path(), &own).unwrap_err();
        assert!(err.to_string().contains("Delegate=yes"), "{err}");
        assert!(
            !own.join(SANDBOX_DIR).exists(),
            "nothing created on refusal"
        );
    }

    #[test]
    fn a_missing_memory_controller_is_reported_not_hidden() {
        let root = fake_delegated("cpu pids\n");
        let own = root.path().join("system.slice/aisopod.service");
        let manager = CgroupV2::prepare(root.path(), &own).unwrap();
        assert_eq!(manager.enforced().missing(), vec!["memory"]);
    }

    #[test]
    fn create_writes_limits_and_remove_leaves_nothing() {
        let root = fake_delegated("memory cpu pids\n");
        let own = root.path().join("system.slice/aisopod.service");
        let manager = CgroupV2::prepare(root.path(), &own).unwrap();
        let run = manager.create("run-1-1", &limits()).unwrap();
        let dir = &run.dirs[0];
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("memory.max"), (128u64 << 20).to_string());
        assert_eq!(read("memory.oom.group"), "1");
        assert_eq!(read("pids.max"), "64");
        assert_eq!(read("cpu.max"), "50000 100000");
        assert_eq!(run.procs_files(), vec![dir.join("cgroup.procs")]);

        std::fs::write(dir.join("memory.events"), "oom 2\noom_kill 1\n").unwrap();
        std::fs::write(dir.join("pids.events"), "max 7\n").unwrap();
        std::fs::write(dir.join("memory.peak"), "4096\n").unwrap();
        assert_eq!(
            manager.events(&run),
            Events {
                oom_kills: 1,
                pids_max: 7
            }
        );
        assert_eq!(manager.peak_memory(&run), Some(4096));

        assert!(matches!(
            manager.create("run-1-1", &limits()),
            Err(CgroupError::Io(crate::fsutil::IoError { op: "create", .. }))
        ));
        manager.remove(&run).unwrap();
        assert!(!dir.exists());
    }
}
