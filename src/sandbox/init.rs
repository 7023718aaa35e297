//! The run's init (pid 1 of its pid namespace) and the program's last steps before
//! `exec`.
//!
//! Init builds the root filesystem (`rootfs`), brings up the namespace's loopback,
//! drops every capability and forks the program's process. That process closes every
//! other descriptor, takes `/dev/null` as stdin, sets its resource limits and
//! memory-deny-write-execute, restricts itself with Landlock, installs the seccomp
//! filters last (they forbid the calls that set up everything else), tells the gateway
//! it is ready and `exec`s the interpreter. Init then waits: it reaps orphans, and when
//! the program exits it kills every process left in the namespace (so a double-forked
//! child cannot outlive the run), collects the files the program wrote and reports.
//!
//! Init stays non-dumpable, so the program (same uid) cannot open its `/proc/1/mem` or
//! trace it; and as pid 1 it receives no signal from inside the namespace that it has
//! not asked for. Its report is still treated as untrusted by the gateway.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::landlock;
use super::process;
use super::protocol::{Failure, HELPER_FAILED, LaunchSpec, Report, write_message};
use super::rootfs::{self, HostLayout};
use super::seccomp::Filters;
use super::spec::{WORK_DIR, collect_files};
use super::sys::{self, Forked};

/// Paths that stay writable under Landlock.
const WRITABLE: [&str; 6] = [
    "/work",
    "/tmp",
    "/dev/shm",
    "/dev/null",
    "/dev/zero",
    "/dev/full",
];
/// Exit status of a program process whose `exec` failed (as a shell reports it).
const EXEC_FAILED: i32 = 127;

/// Runs as the run's init; never returns.
pub fn run(spec: &LaunchSpec, control: &mut UnixStream) -> ! {
    match setup(spec, control) {
        Ok(report) => {
            let sent = write_message(control, &report).is_ok();
            sys::exit_now(if sent { 0 } else { i32::from(HELPER_FAILED) })
        }
        Err(failure) => {
            failure.report(control);
            sys::exit_now(i32::from(HELPER_FAILED))
        }
    }
}

fn setup(spec: &LaunchSpec, control: &mut UnixStream) -> Result<Report, Failure> {
    // If the helper dies, init dies, and with it every process of the namespace.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| Failure::new("set the parent-death signal", e))?;
    // Best effort: systemd's ProtectHostname= filters sethostname() for the service and
    // everything it starts, even in a UTS namespace of the run's own. The run then
    // keeps the device's name, which is all it reveals.
    let _ = nix::unistd::sethostname("sandbox");
    let mut files = spec.files.clone();
    files.push(spec.program.clone());
    let ops = rootfs::plan(&HostLayout::survey(), &spec.limits, &files);
    rootfs::build(&ops).map_err(|e| Failure::new("build the root filesystem", e))?;
    if !spec.limits.network {
        sys::loopback_up().map_err(|e| Failure::new("bring up the loopback interface", e))?;
    }
    nix::unistd::chdir(WORK_DIR).map_err(|e| Failure::new("enter the working directory", e))?;
    let filters = Filters::build().map_err(|e| Failure::new("build the seccomp filters", e))?;
    let devnull: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .open("/dev/null")
        .map_err(|e| Failure::new("open /dev/null", e))?
        .into();
    process::drop_privileges().map_err(|e| Failure::new("drop privileges", e))?;
    nix::sys::prctl::set_dumpable(false).map_err(|e| Failure::new("make init non-dumpable", e))?;

    let program =
        match sys::fork_single_threaded().map_err(|e| Failure::new("fork the program", e))? {
            Forked::Child => exec_program(spec, &filters, devnull, control),
            Forked::Parent(pid) => pid,
        };
    drop(devnull);
    let (code, signal) = wait_for(program);
    // The program is done: nothing of the run may outlive it. As pid 1, kill(-1) reaches
    // every other process in this pid namespace and nothing outside it.
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    reap_all();
    let mut inputs = spec.files.clone();
    inputs.push(spec.program.clone());
    let (files, files_dropped) = collect_files(Path::new(WORK_DIR), &inputs, &spec.limits);
    Ok(Report::Exited {
        code,
        signal,
        files,
        files_dropped,
    })
}

/// Waits for the program, reaping any orphan that ends first.
fn wait_for(program: Pid) -> (Option<i32>, Option<i32>) {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == program => return (Some(code), None),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == program => {
                return (None, Some(signal as i32));
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return (None, None),
        }
    }
}

fn reap_all() {
    loop {
        match waitpid(None, None) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

/// The program's last steps; never returns.
fn exec_program(
    spec: &LaunchSpec,
    filters: &Filters,
    devnull: OwnedFd,
    control: &mut UnixStream,
) -> ! {
    let failure = match prepare_exec(spec, filters, devnull, control) {
        Ok(failure) => failure,
        Err(failure) => failure,
    };
    failure.report(control);
    sys::exit_now(EXEC_FAILED)
}

/// Applies the restrictions and `exec`s; returns only the failure.
fn prepare_exec(
    spec: &LaunchSpec,
    filters: &Filters,
    devnull: OwnedFd,
    control: &mut UnixStream,
) -> Result<Failure, Failure> {
    nix::unistd::dup2_stdin(&devnull).map_err(|e| Failure::new("set stdin to /dev/null", e))?;
    drop(devnull);
    sys::close_fds_except(3, control.as_raw_fd())
        .map_err(|e| Failure::new("close inherited file descriptors", e))?;
    process::set_limits(&spec.limits).map_err(|e| Failure::new("set resource limits", e))?;
    sys::reset_signals();
    sys::deny_write_execute();
    let landlock = landlock::restrict(&WRITABLE, spec.limits.network);

    let interpreter = cstring(spec.interpreter.as_os_str().as_encoded_bytes())?;
    let mut argv = vec![interpreter.clone()];
    for arg in spec.language.interpreter_args() {
        argv.push(cstring(arg.as_bytes())?);
    }
    argv.push(cstring(
        format!("{WORK_DIR}/{}", spec.program.name).as_bytes(),
    )?);
    let env: Vec<CString> = [
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "HOME=/work",
        "TMPDIR=/tmp",
        "USER=sandbox",
        "LOGNAME=sandbox",
        "LANG=C.UTF-8",
        "TERM=dumb",
    ]
    .iter()
    .map(|v| cstring(v.as_bytes()))
    .collect::<Result<_, _>>()?;

    filters
        .install()
        .map_err(|e| Failure::new("install the seccomp filters", e))?;
    write_message(control, &Report::Ready { landlock })
        .map_err(|e| Failure::new("report readiness", e))?;
    let err = nix::unistd::execve(&interpreter, &argv, &env).err();
    Ok(Failure::new(
        "start the interpreter",
        format!(
            "{}: {}",
            spec.interpreter.display(),
            err.map(|e| e.to_string()).unwrap_or_default()
        ),
    ))
}

fn cstring(bytes: &[u8]) -> Result<CString, Failure> {
    CString::new(bytes).map_err(|e| Failure::new("prepare the interpreter's arguments", e))
}
