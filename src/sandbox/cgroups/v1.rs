//! cgroup v1: one directory per run in each of the memory, cpu and pids hierarchies
//! that are mounted. v1 has no `cgroup.kill` and no group OOM kill, so a run is ended by
//! SIGKILL to every process in it (its pid namespace's init first takes the rest along).

use std::path::PathBuf;

use super::manager::{
    CgroupError, CgroupManager, CgroupVersion, Enforced, Events, RunCgroup, cpu_period_us,
    cpu_quota_us, kill_loop, make_dir, read_key, read_number, remove_cgroup_dir, write,
};
use crate::sandbox::spec::Limits;

#[derive(Debug)]
pub struct CgroupV1 {
    /// Where runs are created in each hierarchy (`<own cgroup>/aisopod-sandbox`).
    memory: Option<PathBuf>,
    cpu: Option<PathBuf>,
    pids: Option<PathBuf>,
}

impl CgroupV1 {
    /// Uses the given run directories, creating each that is missing.
    pub fn prepare(
        memory: Option<PathBuf>,
        cpu: Option<PathBuf>,
        pids: Option<PathBuf>,
    ) -> Result<CgroupV1, CgroupError> {
        for base in [&memory, &cpu, &pids].into_iter().flatten() {
            if !base.is_dir() {
                make_dir(base)?;
            }
        }
        Ok(CgroupV1 { memory, cpu, pids })
    }

    fn dir(base: &Option<PathBuf>, run: &RunCgroup) -> Option<PathBuf> {
        base.as_ref().map(|b| b.join(&run.name))
    }
}

impl CgroupManager for CgroupV1 {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn enforced(&self) -> Enforced {
        Enforced {
            memory: self.memory.is_some(),
            cpu: self.cpu.is_some(),
            pids: self.pids.is_some(),
        }
    }

    fn bases(&self) -> Vec<PathBuf> {
        // pids first: it is the hierarchy every process of a run is counted in, so
        // killing by its list is the quickest way to empty the others.
        [&self.pids, &self.memory, &self.cpu]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    fn create(&self, name: &str, limits: &Limits) -> Result<RunCgroup, CgroupError> {
        let mut run = RunCgroup {
            name: name.to_string(),
            dirs: Vec::new(),
        };
        let configure = |run: &mut RunCgroup| -> Result<(), CgroupError> {
            for base in self.bases() {
                let dir = base.join(name);
                make_dir(&dir)?;
                run.dirs.push(dir);
            }
            if let Some(dir) = Self::dir(&self.memory, run) {
                write(
                    &dir.join("memory.limit_in_bytes"),
                    &limits.memory.to_string(),
                )?;
                // memory+swap may only be set once the memory limit is below it.
                let memsw = dir.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    write(&memsw, &limits.memory.to_string())?;
                }
            }
            if let Some(dir) = Self::dir(&self.pids, run) {
                write(&dir.join("pids.max"), &limits.pids.to_string())?;
            }
            if let Some(dir) = Self::dir(&self.cpu, run) {
                write(&dir.join("cpu.cfs_period_us"), &cpu_period_us().to_string())?;
                write(
                    &dir.join("cpu.cfs_quota_us"),
                    &cpu_quota_us(limits.cpu_millis).to_string(),
                )?;
            }
            Ok(())
        };
        if let Err(err) = configure(&mut run) {
            for dir in &run.dirs {
                let _ = remove_cgroup_dir(dir);
            }
            return Err(err);
        }
        Ok(run)
    }

    fn events(&self, run: &RunCgroup) -> Events {
        Events {
            oom_kills: Self::dir(&self.memory, run)
                .and_then(|d| read_key(&d.join("memory.oom_control"), "oom_kill"))
                .unwrap_or(0),
            pids_max: Self::dir(&self.pids, run)
                .and_then(|d| read_key(&d.join("pids.events"), "max"))
                .unwrap_or(0),
        }
    }

    fn peak_memory(&self, run: &RunCgroup) -> Option<u64> {
        Self::dir(&self.memory, run).and_then(|d| read_number(&d.join("memory.max_usage_in_bytes")))
    }

    fn kill(&self, run: &RunCgroup) -> Result<(), CgroupError> {
        kill_loop(&run.dirs)
    }
}

#[cfg(test)]
mod tests {
    use super::super::manager::tests::limits;
    use super::*;

    #[test]
    fn runs_get_a_directory_per_hierarchy_with_limits() {
        let root = tempfile::tempdir().unwrap();
        let base = |c: &str| Some(root.path().join(c).join("aisopod-sandbox"));
        for c in ["memory", "cpu", "pids"] {
            std::fs::create_dir(root.path().join(c)).unwrap();
        }
        let manager = CgroupV1::prepare(base("memory"), base("cpu"), base("pids")).unwrap();
        assert!(manager.enforced().all());
        let run = manager.create("run-9-1", &limits()).unwrap();
        assert_eq!(run.dirs.len(), 3);
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        let memory = root.path().join("memory/aisopod-sandbox/run-9-1");
        assert_eq!(
            read(memory.join("memory.limit_in_bytes")),
            (128u64 << 20).to_string()
        );
        assert!(
            !memory.join("memory.memsw.limit_in_bytes").exists(),
            "only where the kernel has it"
        );
        let cpu = root.path().join("cpu/aisopod-sandbox/run-9-1");
        assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
        let pids = root.path().join("pids/aisopod-sandbox/run-9-1");
        assert_eq!(read(pids.join("pids.max")), "64");
        assert_eq!(run.procs_files()[0], pids.join("cgroup.procs"));

        std::fs::write(
            memory.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .unwrap();
        std::fs::write(pids.join("pids.events"), "max 2\n").unwrap();
        assert_eq!(
            manager.events(&run),
            Events {
                oom_kills: 3,
                pids_max: 2
            }
        );

        manager.remove(&run).unwrap();
        for dir in &run.dirs {
            assert!(!dir.exists());
        }
    }

    #[test]
    fn missing_hierarchies_are_reported() {
        let root = tempfile::tempdir().unwrap();
        let manager =
            CgroupV1::prepare(None, None, Some(root.path().join("aisopod-sandbox"))).unwrap();
        assert_eq!(manager.enforced().missing(), vec!["memory", "cpu"]);
        let run = manager.create("run-9-2", &limits()).unwrap();
        assert_eq!(run.dirs.len(), 1);
        manager.remove(&run).unwrap();
    }
}
