//! Namespaces: the run's own user, pid, mount, network, UTS, IPC and cgroup namespaces,
//! and the single-id user mapping that makes the program an unprivileged user.
//!
//! The helper enters all of them with one `unshare` (the user namespace is created
//! first, so it owns the others) and then maps exactly one id: the sandbox's uid and gid
//! [`SANDBOX_ID`] inside to the helper's own ids outside, with `setgroups` denied first
//! as the kernel requires. Started as root, the helper first becomes `nobody` on the
//! host, so that the sandbox's one id maps to an unprivileged host user that owns
//! nothing of the gateway's, and never to root. Under an unprivileged service it maps
//! to the service user, which owns the data directory and `master.key`: an unprivileged
//! process may map only its own id, and the subordinate ranges of `newuidmap` need a
//! set-uid helper that the service's `NoNewPrivileges=yes` rightly disables. There the
//! mount namespace (none of the gateway's files is inside), Landlock, seccomp and the
//! admin socket's user-namespace check keep the run away from what that user owns.
//! Nothing else is mapped, so no process inside can become root there. Only the helper
//! calls this, before it forks the run's init.

use std::io;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Uid};

use super::spec::SANDBOX_ID;

/// The host id a root-started helper becomes before creating the user namespace.
pub const NOBODY: u32 = 65534;

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("cannot create the sandbox namespaces: {0}")]
    Unshare(String),
    #[error("cannot write {file}: {source}")]
    Map {
        file: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot drop root before creating the user namespace: {0}")]
    DropRoot(Errno),
}

/// The namespaces a run gets: all of them, and a network namespace unless the run
/// shares the host's network.
pub fn flags(share_network: bool) -> CloneFlags {
    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP;
    if !share_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    flags
}

/// When running as the host's root, becomes `nobody` (no supplementary groups) and
/// keeps the process dumpable, which it needs to write its own id maps. Root inside a
/// user namespace someone else made is left alone: it is already confined by that
/// namespace, which may not even map `nobody`.
pub fn leave_root() -> Result<(), NamespaceError> {
    if !Uid::effective().is_root() || !in_initial_user_namespace() {
        return Ok(());
    }
    let nobody_gid = Gid::from_raw(NOBODY);
    let nobody_uid = Uid::from_raw(NOBODY);
    nix::unistd::setgroups(&[]).map_err(NamespaceError::DropRoot)?;
    nix::unistd::setresgid(nobody_gid, nobody_gid, nobody_gid).map_err(NamespaceError::DropRoot)?;
    nix::unistd::setresuid(nobody_uid, nobody_uid, nobody_uid).map_err(NamespaceError::DropRoot)?;
    // Changing ids clears the dumpable flag, which makes /proc/self/uid_map root-owned.
    nix::sys::prctl::set_dumpable(true).map_err(NamespaceError::DropRoot)?;
    Ok(())
}

/// Whether this process is in the initial user namespace (its uid map is the identity
/// over the whole range).
fn in_initial_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|map| map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
        .unwrap_or(false)
}

/// Creates the namespaces and maps the sandbox id onto the caller's host ids.
pub fn enter(share_network: bool) -> Result<(), NamespaceError> {
    let uid = Uid::effective().as_raw();
    let gid = Gid::effective().as_raw();
    nix::sched::unshare(flags(share_network))
        .map_err(|errno| NamespaceError::Unshare(explain_unshare(errno)))?;
    write_map("/proc/self/setgroups", "setgroups", "deny")?;
    write_map(
        "/proc/self/uid_map",
        "uid_map",
        &format!("{SANDBOX_ID} {uid} 1\n"),
    )?;
    write_map(
        "/proc/self/gid_map",
        "gid_map",
        &format!("{SANDBOX_ID} {gid} 1\n"),
    )?;
    Ok(())
}

fn write_map(path: &str, file: &'static str, text: &str) -> Result<(), NamespaceError> {
    std::fs::write(path, text).map_err(|source| NamespaceError::Map { file, source })
}

/// What an `unshare` failure means on this host, and what to change.
pub fn explain_unshare(errno: Errno) -> String {
    let hint = match errno {
        Errno::EPERM => {
            "user namespaces are not allowed for this user (check kernel.unprivileged_userns_clone, \
             an AppArmor restriction, or the service's RestrictNamespaces=)"
        }
        Errno::ENOSPC => {
            "the user namespace limit is reached (user.max_user_namespaces is 0 or used up; \
             set it with sysctl -w user.max_user_namespaces=1000)"
        }
        Errno::EINVAL => "the kernel lacks one of the namespace types, or the caller has threads",
        Errno::ENOMEM => {
            "the kernel is out of memory or the pid namespace nesting limit is reached"
        }
        _ => "unexpected error",
    };
    format!("{errno}: {hint}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::sys::{Forked, exit_now, fork_single_threaded};

    #[test]
    fn network_is_shared_only_when_asked() {
        assert!(flags(false).contains(CloneFlags::CLONE_NEWNET));
        assert!(!flags(true).contains(CloneFlags::CLONE_NEWNET));
        assert!(flags(true).contains(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID));
    }

    #[test]
    fn a_forked_child_maps_to_one_unprivileged_id() {
        // The test process may have threads, so the unshare happens in a forked child,
        // which is single-threaded by construction.
        match fork_single_threaded().unwrap() {
            Forked::Child => {
                let code = match leave_root().and_then(|()| enter(false)) {
                    Err(_) => 90,
                    Ok(()) => {
                        let uid_map =
                            std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
                        let fields: Vec<&str> = uid_map.split_whitespace().collect();
                        let host_uid_ok = fields.get(1).map(|f| *f != "0").unwrap_or(false);
                        if fields.first() == Some(&"1000")
                            && fields.get(2) == Some(&"1")
                            && host_uid_ok
                        {
                            0
                        } else {
                            91
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
    }
}
