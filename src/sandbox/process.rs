//! The process-level restrictions every sandboxed program starts under: a new session
//! with no controlling terminal, no file descriptor but stdin/stdout/stderr, resource
//! limits, `no_new_privs`, and no capability at all.
//!
//! These are per-process settings that survive `execve` and that the program cannot
//! undo: the limits can only be lowered, `no_new_privs` can never be cleared, and the
//! capability sets are empty with the securebits locked. This module never forks and
//! never decides the values; the launcher passes them in.

use std::io;

use nix::sys::resource::{Resource, setrlimit};

use super::spec::Limits;
use super::sys;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot {op}: {source}")]
    Failed {
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

fn failed(op: &'static str) -> impl FnOnce(nix::errno::Errno) -> ProcessError {
    move |errno| ProcessError::Failed {
        op,
        source: io::Error::from(errno),
    }
}

/// Open files a program may hold at once.
pub const MAX_OPEN_FILES: u64 = 1024;

/// Starts a new session: no controlling terminal, so nothing the program does can
/// reach the terminal the gateway or an operator runs in.
pub fn new_session() -> Result<(), ProcessError> {
    nix::unistd::setsid()
        .map(drop)
        .map_err(failed("start a new session (setsid)"))
}

/// Closes every descriptor above stderr.
pub fn close_inherited_fds() -> Result<(), ProcessError> {
    sys::close_fds_from(3).map_err(|source| ProcessError::Failed {
        op: "close inherited file descriptors",
        source,
    })
}

/// Sets the resource limits of a run: no core dumps, a bounded number of open files,
/// no file larger than a scratch filesystem, and CPU seconds as a backstop to the
/// cgroup (one second past the wall-clock timeout).
pub fn set_limits(limits: &Limits) -> Result<(), ProcessError> {
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(failed("set RLIMIT_CORE"))?;
    setrlimit(Resource::RLIMIT_NOFILE, MAX_OPEN_FILES, MAX_OPEN_FILES)
        .map_err(failed("set RLIMIT_NOFILE"))?;
    setrlimit(Resource::RLIMIT_FSIZE, limits.tmp_size, limits.tmp_size)
        .map_err(failed("set RLIMIT_FSIZE"))?;
    let cpu = limits.timeout.as_secs() + 1;
    setrlimit(Resource::RLIMIT_CPU, cpu, cpu).map_err(failed("set RLIMIT_CPU"))?;
    // Locked memory could pin the limit's worth of pages past the OOM killer's reach.
    setrlimit(Resource::RLIMIT_MEMLOCK, 0, 0).map_err(failed("set RLIMIT_MEMLOCK"))?;
    Ok(())
}

/// Sets `no_new_privs` and drops every capability; the caller keeps its uid.
pub fn drop_privileges() -> Result<(), ProcessError> {
    nix::sys::prctl::set_no_new_privs().map_err(failed("set no_new_privs"))?;
    sys::drop_all_capabilities().map_err(|source| ProcessError::Failed {
        op: "drop capabilities",
        source,
    })?;
    if sys::has_effective_capabilities() {
        return Err(ProcessError::Failed {
            op: "drop capabilities",
            source: io::Error::other("a capability is still effective"),
        });
    }
    Ok(())
}
