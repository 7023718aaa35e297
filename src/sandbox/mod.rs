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
pub mod error;
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
pub mod report;
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

pub use error::SandboxError;
pub use runner::Runner;
pub use spec::{FileData, Language, Limits, Reason, RunOutcome, RunRequest};
pub use status::SandboxStatus;
