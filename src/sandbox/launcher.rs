//! Starting a run: the gateway side spawns the helper, the helper side (this binary
//! re-executed as `aisopod __sandbox-exec`) joins the run's cgroup, enters the
//! namespaces and forks the run's init.
//!
//! Why a re-exec of `/proc/self/exe` and not a `fork` of the gateway: the gateway is a
//! multi-threaded tokio process, and the kernel refuses `unshare(CLONE_NEWUSER)` to a
//! process with more than one thread (EINVAL); a forked copy of a multi-threaded process
//! may also only call async-signal-safe functions, since another thread may have held
//! the allocator's or a logger's lock at the moment of the fork. A fresh `exec` gives a
//! clean, single-threaded process with nothing inherited but the three descriptors we
//! pass, at the cost of one exec of our own (already cached) binary. `clone()` with the
//! namespace flags from the gateway would avoid the exec but would run our setup code in
//! exactly that restricted post-fork state. `/proc/self/exe` (rather than a path) is the
//! binary the gateway runs even if a package upgrade replaced the file on disk, so the
//! helper always speaks the same protocol.
//!
//! The helper's steps, in order, and why in that order:
//! 1. close every inherited descriptor above stderr, read the [`LaunchSpec`], die with
//!    the gateway (`PR_SET_PDEATHSIG`), and start a new session (no controlling tty);
//! 2. join the run's cgroup while still the gateway's user (the only moment it may
//!    write there), so every process of the run is counted and can be killed;
//! 3. if root, become `nobody`, then create all namespaces with the user namespace
//!    first and map the sandbox id (see `namespaces`);
//! 4. fork the run's init, which becomes pid 1 of the new pid namespace and continues in
//!    `init`; the helper waits for it and exits with its status.
//!
//! The helper talks to the gateway over its stdin, a unix socket (see `protocol`);
//! its stdout and stderr are the program's, passed through untouched.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{ExitCode, Stdio};

use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};

use super::error::SandboxError;
pub use super::protocol::HELPER_FAILED;
use super::protocol::{Failure, HELPER_ARG, LaunchSpec, MAX_MESSAGE, read_message, write_message};
use super::sys::{self, Forked};
use super::{init, namespaces, process};

/// True when the process was started as the sandbox helper.
pub fn is_helper(args: &[std::ffi::OsString]) -> bool {
    args.get(1).is_some_and(|arg| arg == HELPER_ARG)
}

/// A spawned helper, as the gateway holds it.
pub struct Launched {
    pub process: HelperProcess,
    pub control: tokio::net::UnixStream,
    pub stdout: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    pub stderr: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
}

impl std::fmt::Debug for Launched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launched")
            .field("process", &self.process)
            .field("control", &self.control)
            .finish_non_exhaustive()
    }
}

/// The helper process: created inside the run's cgroup (cgroup v2), or spawned
/// normally to join it itself (cgroup v1, kernels before 5.7).
#[derive(Debug)]
pub enum HelperProcess {
    Inside(PidfdChild),
    Joining(tokio::process::Child),
}

impl HelperProcess {
    /// Waits for the helper to end; describes how it ended.
    pub async fn wait(&mut self) -> io::Result<String> {
        match self {
            HelperProcess::Inside(child) => child.wait().await.map(|status| format!("{status:?}")),
            HelperProcess::Joining(child) => child.wait().await.map(|status| status.to_string()),
        }
    }
}

/// A child known by its pidfd, waited for through the async runtime; killed and
/// reaped when dropped unreaped.
#[derive(Debug)]
pub struct PidfdChild {
    pid: nix::unistd::Pid,
    pidfd: tokio::io::unix::AsyncFd<OwnedFd>,
    reaped: bool,
}

impl PidfdChild {
    async fn wait(&mut self) -> io::Result<WaitStatus> {
        use nix::sys::wait::{Id, WaitPidFlag, waitid};
        loop {
            let mut ready = self.pidfd.readable().await?;
            match waitid(
                Id::PIDFd(self.pidfd.get_ref().as_fd()),
                WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG,
            ) {
                Ok(WaitStatus::StillAlive) => ready.clear_ready(),
                Ok(status) => {
                    self.reaped = true;
                    return Ok(status);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(errno) => return Err(errno.into()),
            }
        }
    }
}

impl Drop for PidfdChild {
    fn drop(&mut self) {
        if !self.reaped {
            use nix::sys::wait::{Id, WaitPidFlag, waitid};
            // Unreaped, the pid cannot have been reused: the signal reaches our child.
            let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
            let _ = waitid(
                Id::PIDFd(self.pidfd.get_ref().as_fd()),
                WaitPidFlag::WEXITED,
            );
        }
    }
}

/// Spawns the helper from `exe` and sends it `spec`. With `inside` (a cgroup v2 run
/// directory) the helper is created in that cgroup and told not to join it; where the
/// kernel cannot do that, it is spawned normally and joins `spec.cgroup_procs` itself.
pub async fn launch(
    exe: &Path,
    spec: &LaunchSpec,
    inside: Option<&Path>,
) -> Result<Launched, SandboxError> {
    use tokio::io::AsyncWriteExt;
    let spawn_error = |source: io::Error| SandboxError::Spawn {
        exe: exe.to_path_buf(),
        source,
    };
    let (ours, theirs) = UnixStream::pair().map_err(spawn_error)?;
    let mut spec = spec.clone();
    let mut started = None;
    if let Some(dir) = inside {
        match spawn_inside(exe, dir, &theirs) {
            Ok(launched) => {
                spec.cgroup_procs.clear();
                started = Some(launched);
            }
            Err(err) => {
                tracing::debug!(error = %err, "cannot create the helper inside its cgroup; it will join it")
            }
        }
    }
    let (process, stdout, stderr) = match started {
        Some(started) => started,
        None => {
            let mut command = tokio::process::Command::new(exe);
            command
                .arg(HELPER_ARG)
                .env_clear()
                .stdin(Stdio::from(OwnedFd::from(theirs)))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            let mut child = command.spawn().map_err(spawn_error)?;
            let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
                return Err(spawn_error(io::Error::other(
                    "the helper's output pipes are missing",
                )));
            };
            (
                HelperProcess::Joining(child),
                Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
                Box::new(stderr) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            )
        }
    };
    ours.set_nonblocking(true).map_err(spawn_error)?;
    let mut control = tokio::net::UnixStream::from_std(ours).map_err(spawn_error)?;
    let mut frame = Vec::new();
    write_message(&mut frame, &spec).map_err(spawn_error)?;
    control.write_all(&frame).await.map_err(|source| {
        SandboxError::Protocol(format!("cannot send the run to the helper: {source}"))
    })?;
    Ok(Launched {
        process,
        control,
        stdout,
        stderr,
    })
}

type Started = (
    HelperProcess,
    Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    Box<dyn tokio::io::AsyncRead + Send + Unpin>,
);

/// Creates the helper inside the cgroup directory `dir` (see `sys::spawn_into_cgroup`).
fn spawn_inside(exe: &Path, dir: &Path, control: &UnixStream) -> io::Result<Started> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let cgroup = std::fs::File::open(dir)?;
    let (out_read, out_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (err_read, err_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let exe = std::ffi::CString::new(exe.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let argv = [
        exe.clone(),
        std::ffi::CString::new(HELPER_ARG).map_err(io::Error::other)?,
    ];
    let (pid, pidfd) = sys::spawn_into_cgroup(
        &exe,
        &argv,
        [
            control.as_raw_fd(),
            out_write.as_raw_fd(),
            err_write.as_raw_fd(),
        ],
        cgroup.as_raw_fd(),
    )?;
    let pidfd = match sys::watch_pidfd(pidfd) {
        Ok(pidfd) => pidfd,
        Err(err) => {
            // Not watched, so not waited for: end it here rather than leave it.
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(err);
        }
    };
    let child = PidfdChild {
        pid,
        pidfd,
        reaped: false,
    };
    let stdout = tokio::net::unix::pipe::Receiver::from_owned_fd(out_read)?;
    let stderr = tokio::net::unix::pipe::Receiver::from_owned_fd(err_read)?;
    Ok((
        HelperProcess::Inside(child),
        Box::new(stdout),
        Box::new(stderr),
    ))
}

/// The helper process: `aisopod __sandbox-exec`, started by [`launch`].
pub fn helper_main() -> ExitCode {
    // Whatever the caller leaked to us (a descriptor without close-on-exec) goes first.
    if process::close_inherited_fds().is_err() {
        return ExitCode::from(HELPER_FAILED);
    }
    let control = std::io::stdin().as_fd().try_clone_to_owned();
    let Ok(control) = control else {
        return ExitCode::from(HELPER_FAILED);
    };
    let mut control = UnixStream::from(control);
    let spec: LaunchSpec = match read_message(&mut control, MAX_MESSAGE) {
        Ok(Some(spec)) => spec,
        Ok(None) => return ExitCode::from(HELPER_FAILED),
        Err(err) => {
            Failure::new("read the run", err).report(&mut control);
            return ExitCode::from(HELPER_FAILED);
        }
    };
    match helper(&spec, &mut control) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            failure.report(&mut control);
            ExitCode::from(HELPER_FAILED)
        }
    }
}

fn helper(spec: &LaunchSpec, control: &mut UnixStream) -> Result<u8, Failure> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| Failure::new("set the parent-death signal", e))?;
    if nix::unistd::getppid().as_raw() as u32 != spec.parent_pid {
        return Err(Failure::new(
            "check the parent",
            "the gateway that started this run is gone",
        ));
    }
    process::new_session().map_err(|e| Failure::new("start a session", e))?;
    // Empty when the gateway created this process inside the run's cgroup already.
    let me = std::process::id().to_string();
    for procs in &spec.cgroup_procs {
        std::fs::write(procs, &me).map_err(|e| {
            Failure::new("join the run's cgroup", format!("{}: {e}", procs.display()))
        })?;
    }
    namespaces::leave_root().map_err(|e| Failure::new("drop root", e))?;
    namespaces::enter(spec.limits.network).map_err(|e| Failure::new("create namespaces", e))?;
    match sys::fork_single_threaded().map_err(|e| Failure::new("fork the run's init", e))? {
        Forked::Child => init::run(spec, control),
        Forked::Parent(init_pid) => {
            let _ = nix::sys::prctl::set_dumpable(false);
            loop {
                match waitpid(init_pid, None) {
                    Ok(WaitStatus::Exited(_, code)) => {
                        return Ok(u8::try_from(code).unwrap_or(HELPER_FAILED));
                    }
                    Ok(WaitStatus::Signaled(_, signal, _)) => {
                        return Ok(128u8.saturating_add(signal as u8));
                    }
                    Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                    Err(err) => return Err(Failure::new("wait for the run's init", err)),
                }
            }
        }
    }
}
