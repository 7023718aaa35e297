//! The sandbox: runs untrusted Python, JavaScript and Bash (an LLM's tool code) so that
//! it cannot reach the rest of the device, with the kernel's own primitives and no
//! container runtime.
//!
//! Every program is treated as hostile. A run is layered, each layer assuming the ones
//! before it failed, and is set up in this order (each step needs the privileges the
//! next one removes):
//!
//! 1. **Launcher** (`launcher`): the multi-threaded gateway cannot create a user
//!    namespace, so it re-executes its own binary as a single-threaded helper with only
//!    stdin (a control socket), stdout and stderr, and a cleared environment.
//! 2. **cgroup** (`cgroups`): the helper joins a fresh cgroup with memory, CPU and
//!    process limits first, while it still has the rights to, so that everything the
//!    run ever starts is counted and the whole run can be killed at once.
//! 3. **Namespaces** (`namespaces`): new user, pid, mount, network (loopback only), UTS,
//!    IPC and cgroup namespaces; the program's uid/gid 1000 maps to one unprivileged
//!    host id (never root), with `setgroups` denied.
//! 4. **Root filesystem** (`rootfs`): a tmpfs root with read-only binds of the system
//!    directories, a generated `/etc`, a minimal `/dev`, a fresh `/proc`, size-capped
//!    `/work` and `/tmp`; `pivot_root`, host tree detached, root made read-only.
//! 5. **Process** (`process`): new session (no terminal), stdin from `/dev/null`, no
//!    other descriptors, resource limits, `no_new_privs`, every capability dropped.
//! 6. **Landlock** (`landlock`), where the kernel has it: writes only in `/work` and
//!    `/tmp`, no signals or abstract sockets outside the run, no TCP without network.
//! 7. **seccomp** (`seccomp`), last because it forbids the calls the steps above use:
//!    an allowlist for the three interpreters plus explicit refusals of the escape tools.
//!
//! The gateway side ([`Runner`]) bounds concurrency, enforces the wall-clock timeout by
//! killing the whole cgroup, watches the cgroup's OOM and process-limit events, caps
//! the output it reads, removes the cgroup, and writes one audit record per run.
//! [`check`] reports what this kernel offers. Only `sys` may use `unsafe`. Nothing in
//! this module reads the store or the network, and nothing here trusts what comes back
//! from inside a run.
//!
//! Every layer is a Linux interface, so everything that builds or starts a run exists
//! only on Linux. Elsewhere (macOS) `unavailable` stands in for the runner and the
//! helper's entry point and refuses every run, and `check` reports code execution
//! unavailable; what the rest of the gateway names (the languages, limits and cgroup
//! preference of the configuration, [`SandboxError`], the report) is the same everywhere.

pub mod cgroups;
pub mod check;
#[cfg(target_os = "linux")]
mod init;
#[cfg(target_os = "linux")]
pub mod landlock;
#[cfg(target_os = "linux")]
pub mod launcher;
#[cfg(target_os = "linux")]
pub mod namespaces;
#[cfg(target_os = "linux")]
pub mod process;
#[cfg(target_os = "linux")]
pub mod protocol;
#[cfg(target_os = "linux")]
pub mod rootfs;
#[cfg(target_os = "linux")]
pub mod runner;
#[cfg(target_os = "linux")]
pub mod seccomp;
pub mod spec;
pub mod status;
#[cfg(target_os = "linux")]
mod sys;
#[cfg(not(target_os = "linux"))]
mod unavailable;
#[cfg(not(target_os = "linux"))]
pub use unavailable::{launcher, runner};

use std::path::PathBuf;
use std::time::Duration;

pub use runner::Runner;
pub use spec::{FileData, Language, Limits, Reason, RunOutcome, RunRequest};
pub use status::SandboxStatus;

/// Why a run could not be started or finished.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("code execution is disabled ([tools.sandbox] enabled = false)")]
    Disabled,
    #[error("unknown language {0:?}: use python, javascript or bash")]
    UnknownLanguage(String),
    #[error(
        "language {language} is not allowed here ([tools.sandbox] allowed_languages = {allowed})"
    )]
    LanguageNotAllowed { language: Language, allowed: String },
    #[error("the program is empty")]
    EmptyCode,
    #[error(
        "the program is {size} bytes, more than the limit of {limit} ([tools.sandbox] max_code)"
    )]
    CodeTooLarge { size: u64, limit: u64 },
    #[error("the program is not text: {reason}")]
    CodeNotText { reason: String },
    #[error("input file {name:?}: {reason}")]
    BadFile { name: String, reason: String },
    #[error("{what} {value} is out of range: must be {range}")]
    LimitOutOfRange {
        what: &'static str,
        value: String,
        range: String,
    },
    #[error(
        "no {program} found for {language} (looked in {searched}): install it, or remove {language} from [tools.sandbox] allowed_languages"
    )]
    InterpreterMissing {
        language: Language,
        program: &'static str,
        searched: String,
    },
    #[error("the sandbox is unavailable on this host: {0} (see `aisopod sandbox check`)")]
    Unavailable(String),
    #[error(
        "the sandbox is busy: {running} run(s) at once is the limit and none finished within {waited:?} ([tools.sandbox] max_concurrent, queue_timeout)"
    )]
    Busy { running: usize, waited: Duration },
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    #[error("cannot start the sandbox helper {exe}: {source}")]
    Spawn {
        exe: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sandbox setup failed: cannot {stage}: {message}")]
    Setup { stage: String, message: String },
    #[error("sandbox helper: {0}")]
    Protocol(String),
}

impl SandboxError {
    /// Errors caused by the request rather than by the host: the caller can fix them.
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            SandboxError::UnknownLanguage(_)
                | SandboxError::LanguageNotAllowed { .. }
                | SandboxError::EmptyCode
                | SandboxError::CodeTooLarge { .. }
                | SandboxError::CodeNotText { .. }
                | SandboxError::BadFile { .. }
                | SandboxError::LimitOutOfRange { .. }
        )
    }
}
