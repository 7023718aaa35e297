//! Landlock, where the kernel has it: the program may read and execute anywhere in its
//! (already minimal) root, but write only below its working directory, `/tmp` and
//! `/dev/shm`; it may not signal processes outside its domain or reach abstract unix
//! sockets outside it; and without network it may not bind or connect TCP ports.
//!
//! Landlock is a second wall behind the mount namespace, not the first one: the stock
//! Raspberry Pi kernel may lack it, so a missing or older Landlock is reported (and
//! shown by `sandbox check`), never an error. This module never mounts or forks.

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};
use serde::{Deserialize, Serialize};

/// The newest Landlock ABI this code was written and tested against.
const TARGET_ABI: ABI = ABI::V6;

/// What Landlock did for a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "state")]
pub enum Enforcement {
    /// Every requested restriction applies.
    Full { abi: i32 },
    /// An older Landlock: some restrictions (such as network or scopes) do not apply.
    Partial { abi: i32 },
    /// No Landlock in this kernel (or it is disabled).
    Unavailable { reason: String },
}

impl Enforcement {
    pub fn describe(&self) -> String {
        match self {
            Enforcement::Full { abi } => format!("enforced (ABI {abi})"),
            Enforcement::Partial { abi } => format!(
                "partly enforced (ABI {abi}, older than {})",
                TARGET_ABI as i32
            ),
            Enforcement::Unavailable { reason } => format!("unavailable: {reason}"),
        }
    }
}

/// The kernel's Landlock ABI version, or why there is none.
pub fn probe() -> Result<i32, String> {
    match super::sys::landlock_abi() {
        Ok(abi) => Ok(abi),
        Err(nix::errno::Errno::EOPNOTSUPP) => Err(
            "built into the kernel but not enabled (add landlock to the lsm= boot parameter)"
                .into(),
        ),
        Err(nix::errno::Errno::ENOSYS) => {
            Err("not built into this kernel (CONFIG_SECURITY_LANDLOCK)".into())
        }
        Err(errno) => Err(format!("the kernel answered {errno}")),
    }
}

/// Restricts the calling thread (and what it executes) as the module docs describe.
/// `writable` are the directories and files that stay writable.
pub fn restrict(writable: &[&str], network: bool) -> Enforcement {
    let abi = match probe() {
        Ok(abi) => abi,
        Err(reason) => return Enforcement::Unavailable { reason },
    };
    match build_and_restrict(writable, network) {
        Ok(RulesetStatus::FullyEnforced) => Enforcement::Full { abi },
        Ok(RulesetStatus::PartiallyEnforced) => Enforcement::Partial { abi },
        Ok(_) => Enforcement::Unavailable {
            reason: "the kernel enforced none of the rules".into(),
        },
        Err(err) => Enforcement::Unavailable {
            reason: err.to_string(),
        },
    }
}

fn build_and_restrict(
    writable: &[&str],
    network: bool,
) -> Result<RulesetStatus, landlock::RulesetError> {
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(TARGET_ABI))?
        .scope(Scope::from_all(TARGET_ABI))?;
    if !network {
        // Handling TCP bind and connect with no rule that allows a port denies them all.
        ruleset = ruleset.handle_access(AccessNet::from_all(TARGET_ABI))?;
    }
    let status = ruleset
        .create()?
        .add_rules(path_beneath_rules(["/"], AccessFs::from_read(TARGET_ABI)))?
        .add_rules(path_beneath_rules(writable, AccessFs::from_all(TARGET_ABI)))?
        .restrict_self()?;
    Ok(status.ruleset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::sys::{Forked, exit_now, fork_single_threaded};

    #[test]
    fn restricted_child_can_write_only_where_allowed() {
        if probe().is_err() {
            eprintln!("landlock unavailable here: nothing to test");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let writable = dir.path().join("rw");
        std::fs::create_dir(&writable).unwrap();
        let other = dir.path().join("other.txt");
        match fork_single_threaded().unwrap() {
            Forked::Child => {
                if nix::sys::prctl::set_no_new_privs().is_err() {
                    exit_now(90);
                }
                let rw = writable.to_str().unwrap_or("/nonexistent");
                let code = match restrict(&[rw], false) {
                    Enforcement::Unavailable { .. } => 91,
                    _ => {
                        let inside = std::fs::write(writable.join("ok"), "x").is_ok();
                        let outside = std::fs::write(&other, "x")
                            .err()
                            .and_then(|e| e.raw_os_error());
                        match (inside, outside) {
                            (true, Some(nix::libc::EACCES)) => 0,
                            (false, _) => 92,
                            _ => 93,
                        }
                    }
                };
                exit_now(code);
            }
            Forked::Parent(pid) => {
                let status = nix::sys::wait::waitpid(pid, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(pid, 0));
            }
        }
        assert!(writable.join("ok").exists());
        assert!(!other.exists());
    }
}
