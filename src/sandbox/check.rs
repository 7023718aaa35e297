//! What this kernel and service offer the sandbox, layer by layer, and therefore
//! whether code execution is available: `aisopod sandbox check`, the gateway's start-up
//! check and its `/ready` details.
//!
//! Static facts (which namespaces, cgroup controllers, seccomp, Landlock and
//! interpreters exist) come from `/proc` and the filesystem; a trial run then proves
//! that the layers actually work together here, since a namespace type can exist and
//! still be refused to this user. This module only observes; it never changes the host.
//! Off Linux the same report comes from `unavailable::survey`: no layer, no run.

#[cfg(target_os = "linux")]
use std::collections::BTreeMap;
#[cfg(target_os = "linux")]
use std::path::Path;

#[cfg(target_os = "linux")]
use super::cgroups::{self, Enforced};
pub use super::report::{CgroupReport, KernelReport, LandlockReport, NAMESPACES};
#[cfg(target_os = "linux")]
use super::{landlock, runner::Runner, spec::Language};
#[cfg(target_os = "linux")]
use crate::config::{SandboxConfig, SandboxRuntime};

#[cfg(not(target_os = "linux"))]
pub use super::unavailable::survey;

/// Surveys the host. `runner` is the runner built from the configuration (or why it
/// could not be built); `trial` is the outcome of its self-test, if one was made.
#[cfg(target_os = "linux")]
pub fn survey(
    config: &SandboxConfig,
    runner: Result<&Runner, String>,
    trial: Option<Result<(), String>>,
) -> KernelReport {
    let namespaces = NAMESPACES
        .iter()
        .map(|ns| (*ns, Path::new("/proc/self/ns").join(ns).exists()))
        .collect::<BTreeMap<_, _>>();
    let max_user_namespaces = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .ok()
        .and_then(|t| t.trim().parse().ok());
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let seccomp = status
        .lines()
        .any(|l| l.starts_with("Seccomp_filters:") || l.starts_with("Seccomp:"));
    let landlock = match landlock::probe() {
        Ok(abi) => LandlockReport {
            abi: Some(abi),
            detail: format!("available (ABI {abi})"),
        },
        Err(reason) => LandlockReport {
            abi: None,
            detail: format!("unavailable: {reason} (runs continue without it)"),
        },
    };
    let interpreters = Language::ALL
        .iter()
        .map(|l| (l.name(), l.find_interpreter().ok()))
        .collect::<BTreeMap<_, _>>();
    let hierarchies = cgroups::survey(Path::new("/proc/self"), Path::new("/proc/cgroups"));
    let (version, enforced, run_directories, cgroup_error) = match &runner {
        Ok(runner) => match runner.cgroups() {
            Some(manager) => (
                Some(manager.version()),
                manager.enforced(),
                manager.bases(),
                None,
            ),
            None => (None, Enforced::default(), Vec::new(), None),
        },
        Err(err) => (None, Enforced::default(), Vec::new(), Some(err.clone())),
    };

    let mut missing = Vec::new();
    let mut hints = Vec::new();
    if !config.enabled {
        missing.push("code execution is disabled in [tools.sandbox]".to_string());
    }
    for (ns, present) in &namespaces {
        if !present {
            missing.push(format!(
                "{ns} namespaces (kernel option CONFIG_{}_NS)",
                ns.to_uppercase()
            ));
        }
    }
    if max_user_namespaces == Some(0) {
        missing.push("user namespaces are limited to 0 (user.max_user_namespaces)".into());
        hints.push("sysctl -w user.max_user_namespaces=1000".into());
    }
    if !seccomp {
        missing.push("seccomp (kernel option CONFIG_SECCOMP_FILTER)".into());
    }
    if config.runtime == SandboxRuntime::Namespaces {
        if let Some(err) = &cgroup_error {
            missing.push(format!("cgroups: {err}"));
        }
        for controller in enforced.missing() {
            if cgroup_error.is_none() {
                missing.push(format!("the cgroup {controller} controller"));
            }
        }
    }
    if hierarchies.disabled.iter().any(|c| c == "memory") {
        hints.push(
            "the kernel's memory controller is disabled: on a Raspberry Pi add `cgroup_enable=memory` \
             to /boot/firmware/cmdline.txt (older images: /boot/cmdline.txt) and reboot"
                .into(),
        );
    }
    for language in &config.allowed_languages {
        if interpreters
            .get(language.name())
            .is_some_and(Option::is_none)
        {
            hints.push(format!(
                "{} is allowed but {} is not installed",
                language.name(),
                language.program()
            ));
        }
    }
    if landlock.abi.is_none() {
        hints.push(
            "Landlock is missing: runs are still isolated by namespaces, seccomp and cgroups"
                .into(),
        );
    }
    let trial = trial.map(|result| match result {
        Ok(()) => "ok".to_string(),
        Err(err) => {
            missing.push(format!("a trial run failed: {err}"));
            err
        }
    });
    KernelReport {
        kernel: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        arch: std::env::consts::ARCH,
        namespaces,
        max_user_namespaces,
        cgroup: CgroupReport {
            version,
            enforced,
            run_directories,
            hierarchies,
            error: cgroup_error,
        },
        seccomp,
        landlock,
        interpreters,
        code_execution: missing.is_empty(),
        trial,
        missing,
        hints,
    }
}
