//! The checks on the code sandbox: whether it is on, whether it isolates at all, and
//! which of its layers this kernel lacks (namespaces, seccomp, cgroup controllers,
//! Landlock), read from the same survey `aisopod sandbox check` prints. It never starts
//! a run.

use crate::config::{SandboxConfig, SandboxRuntime};
use crate::sandbox::check::KernelReport;

use super::catalog::finding;
use super::findings::Finding;

/// Findings for the sandbox configured as `config` on a host surveyed as `report`.
pub fn check(config: &SandboxConfig, report: &KernelReport) -> Vec<Finding> {
    if !config.enabled {
        return vec![finding(
            "sandbox.disabled",
            "[tools.sandbox] enabled = false: agents cannot run code",
            "nothing to do unless agents should run code; then set enabled = true and run `aisopod sandbox check`",
        )];
    }
    if config.runtime == SandboxRuntime::None {
        return vec![finding(
            "sandbox.no_isolation",
            "[tools.sandbox] runtime = \"none\": tool code runs as the gateway's own user, with its files and keys",
            "set [tools.sandbox] runtime = \"namespaces\", or enabled = false",
        )];
    }
    let mut found = Vec::new();
    let layer_fix = "see `aisopod sandbox check` for what this kernel lacks and how to enable it";
    for (namespace, present) in &report.namespaces {
        if !present {
            found.push(finding(
                "sandbox.layer_missing",
                format!(
                    "{namespace} namespaces are missing (kernel option CONFIG_{}_NS)",
                    namespace.to_uppercase()
                ),
                layer_fix,
            ));
        }
    }
    if report.max_user_namespaces == Some(0) {
        found.push(finding(
            "sandbox.layer_missing",
            "user namespaces are limited to 0 (user.max_user_namespaces)",
            "sysctl -w user.max_user_namespaces=1000 (and persist it in /etc/sysctl.d)",
        ));
    }
    if !report.seccomp {
        found.push(finding(
            "sandbox.layer_missing",
            "seccomp is missing (kernel option CONFIG_SECCOMP_FILTER)",
            layer_fix,
        ));
    }
    let cgroup_fix = "on a Raspberry Pi add `cgroup_enable=memory` to /boot/firmware/cmdline.txt and reboot; under systemd keep Delegate=yes in the unit";
    if let Some(error) = &report.cgroup.error {
        found.push(finding(
            "sandbox.cgroup_unenforced",
            format!("no cgroup limits can be set up: {error}"),
            cgroup_fix,
        ));
    } else {
        for controller in report.cgroup.enforced.missing() {
            found.push(finding(
                "sandbox.cgroup_unenforced",
                format!("the cgroup {controller} controller is not enforced, so a run's {controller} is not limited"),
                cgroup_fix,
            ));
        }
    }
    if report.landlock.abi.is_none() {
        found.push(finding(
            "sandbox.landlock_missing",
            format!("Landlock: {}", report.landlock.detail),
            "use a kernel with CONFIG_SECURITY_LANDLOCK and `landlock` in the lsm= boot parameter",
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::testing::NoEnv;
    use crate::config::{ConfigSource, parse};
    use crate::sandbox::check::{CgroupReport, LandlockReport, NAMESPACES};

    fn sandbox(text: &str) -> SandboxConfig {
        parse(text, ConfigSource::Defaults, &NoEnv)
            .unwrap()
            .tools
            .sandbox
    }

    fn report(healthy: bool) -> KernelReport {
        let mut enforced = crate::sandbox::cgroups::Enforced {
            memory: true,
            cpu: true,
            pids: true,
        };
        if !healthy {
            enforced.memory = false;
        }
        KernelReport {
            kernel: "test".into(),
            arch: "test",
            namespaces: NAMESPACES
                .iter()
                .map(|ns| (*ns, healthy || *ns != "user"))
                .collect(),
            max_user_namespaces: Some(if healthy { 1000 } else { 0 }),
            cgroup: CgroupReport {
                version: None,
                enforced,
                run_directories: Vec::new(),
                hierarchies: crate::sandbox::cgroups::Hierarchies {
                    v2_mount: None,
                    v2_controllers: Vec::new(),
                    v1_controllers: Vec::new(),
                    disabled: Vec::new(),
                },
                error: None,
            },
            seccomp: healthy,
            landlock: LandlockReport {
                abi: healthy.then_some(3),
                detail: "unavailable: not in lsm=".into(),
            },
            interpreters: BTreeMap::new(),
            trial: None,
            code_execution: healthy,
            missing: Vec::new(),
            hints: Vec::new(),
        }
    }

    fn ids(found: &[Finding]) -> Vec<&str> {
        found.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn a_full_kernel_has_no_finding_and_a_poor_one_names_each_layer() {
        let config = sandbox("");
        assert!(check(&config, &report(true)).is_empty());
        let found = check(&config, &report(false));
        assert_eq!(
            ids(&found),
            [
                "sandbox.layer_missing",
                "sandbox.layer_missing",
                "sandbox.layer_missing",
                "sandbox.cgroup_unenforced",
                "sandbox.landlock_missing"
            ]
        );
        assert!(found[0].evidence.contains("CONFIG_USER_NS"));
        assert!(found[3].evidence.contains("memory"));
    }

    #[test]
    fn disabled_is_information_and_no_isolation_is_critical() {
        let off = sandbox("[tools.sandbox]\nenabled = false\n");
        assert_eq!(ids(&check(&off, &report(false))), ["sandbox.disabled"]);
        let none = sandbox("[security]\nmode = \"local\"\n[tools.sandbox]\nruntime = \"none\"\n");
        assert_eq!(ids(&check(&none, &report(true))), ["sandbox.no_isolation"]);
    }
}
