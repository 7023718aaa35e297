//! The `sandbox check` report: what the kernel offers each layer of a run and whether
//! code execution is available, with its rendering for people. `check` fills it on
//! Linux and `unavailable` elsewhere; this file only holds and renders it, it never
//! looks at the host.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::cgroups::{CgroupVersion, Enforced, Hierarchies};

/// Namespace types the sandbox creates, as named under `/proc/self/ns`.
pub const NAMESPACES: [&str; 7] = ["user", "pid", "mnt", "net", "uts", "ipc", "cgroup"];

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct KernelReport {
    pub kernel: String,
    pub arch: &'static str,
    pub namespaces: BTreeMap<&'static str, bool>,
    /// `user.max_user_namespaces`; 0 forbids user namespaces.
    pub max_user_namespaces: Option<u64>,
    pub cgroup: CgroupReport,
    pub seccomp: bool,
    pub landlock: LandlockReport,
    pub interpreters: BTreeMap<&'static str, Option<PathBuf>>,
    /// The trial run, when one was made: "ok" or why it failed.
    pub trial: Option<String>,
    /// Whether code execution is available, and if not, the missing layers.
    pub code_execution: bool,
    pub missing: Vec<String>,
    pub hints: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CgroupReport {
    /// The interface runs use, when one could be set up.
    pub version: Option<CgroupVersion>,
    pub enforced: Enforced,
    pub run_directories: Vec<PathBuf>,
    pub hierarchies: Hierarchies,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LandlockReport {
    pub abi: Option<i32>,
    pub detail: String,
}

impl KernelReport {
    /// The report for people, one fact per line.
    pub fn render(&self) -> String {
        let yes = |b: bool| if b { "yes" } else { "NO" };
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        line(format!("kernel          {} ({})", self.kernel, self.arch));
        let ns: Vec<String> = self
            .namespaces
            .iter()
            .map(|(name, on)| format!("{name} {}", yes(*on)))
            .collect();
        line(format!("namespaces      {}", ns.join(", ")));
        if let Some(max) = self.max_user_namespaces {
            line(format!("user namespaces max {max}"));
        }
        let cgroup = &self.cgroup;
        line(format!(
            "cgroup          {}",
            match (&cgroup.version, &cgroup.error) {
                (Some(CgroupVersion::V2), _) => "v2".to_string(),
                (Some(CgroupVersion::V1), _) => "v1".to_string(),
                (None, Some(err)) => format!("unusable: {err}"),
                (None, None) => "not used".to_string(),
            }
        ));
        line(format!(
            "  limits        memory {}, cpu {}, pids {}",
            yes(cgroup.enforced.memory),
            yes(cgroup.enforced.cpu),
            yes(cgroup.enforced.pids)
        ));
        for dir in &cgroup.run_directories {
            line(format!("  runs in       {}", dir.display()));
        }
        if let Some(mount) = &cgroup.hierarchies.v2_mount {
            line(format!(
                "  v2 hierarchy  {} (controllers: {})",
                mount.display(),
                if cgroup.hierarchies.v2_controllers.is_empty() {
                    "none".to_string()
                } else {
                    cgroup.hierarchies.v2_controllers.join(" ")
                }
            ));
        }
        for (controller, mount) in &cgroup.hierarchies.v1_controllers {
            line(format!("  v1 {controller:<10} {}", mount.display()));
        }
        if !cgroup.hierarchies.disabled.is_empty() {
            line(format!(
                "  disabled      {}",
                cgroup.hierarchies.disabled.join(" ")
            ));
        }
        line(format!("seccomp         {}", yes(self.seccomp)));
        line(format!("landlock        {}", self.landlock.detail));
        for (language, path) in &self.interpreters {
            line(format!(
                "{:<15} {}",
                language,
                path.as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "not found".into())
            ));
        }
        if let Some(trial) = &self.trial {
            line(format!("trial run       {trial}"));
        }
        line(format!(
            "code execution  {}",
            if self.code_execution {
                "available"
            } else {
                "UNAVAILABLE"
            }
        ));
        for missing in &self.missing {
            line(format!("  missing: {missing}"));
        }
        for hint in &self.hints {
            line(format!("  hint: {hint}"));
        }
        out
    }
}
