//! The sandbox's raw system calls: the only place in the crate allowed to use `unsafe`.
//!
//! Everything here is a thin, documented wrapper over one kernel interface that `nix`
//! does not cover safely (fork, capabilities, `close_range`, the loopback interface's
//! flags, memory-deny-write-execute). Each `unsafe` block states why it is sound. The
//! helpers are called only by the launcher's single-threaded helper process, never by the
//! multi-threaded gateway, and they never decide policy: callers say what to drop.

// The crate denies `unsafe_code`; this module is the one exception (see STYLE.md, rule 10).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use nix::errno::Errno;
use nix::unistd::{ForkResult, Pid};

/// Which side of a fork the caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Parent(Pid),
    Child,
}

/// `fork()`, for the helper process only.
///
/// The caller must be single-threaded: the helper is a fresh `exec` of this binary that
/// never starts a thread or an async runtime, which is the whole point of re-executing
/// `/proc/self/exe` instead of forking the gateway (see `launcher`).
pub fn fork_single_threaded() -> io::Result<Forked> {
    // SAFETY: `fork` is only unsound in a multi-threaded process, where the child could
    // inherit a lock held by another thread. The helper that calls this has one thread
    // (it is a fresh exec that starts no threads), so the child's copy of every lock and
    // allocator state is consistent.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        ForkResult::Child => Ok(Forked::Child),
    }
}

/// Closes every file descriptor from `first` upward.
pub fn close_fds_from(first: u32) -> io::Result<()> {
    close_range(first, u32::MAX)
}

/// Closes every file descriptor from `first` upward except `keep`.
pub fn close_fds_except(first: u32, keep: RawFd) -> io::Result<()> {
    match u32::try_from(keep) {
        Ok(keep) if keep >= first => {
            if keep > first {
                close_range(first, keep - 1)?;
            }
            close_range(keep.saturating_add(1), u32::MAX)
        }
        _ => close_fds_from(first),
    }
}

fn close_range(first: u32, last: u32) -> io::Result<()> {
    if first > last {
        return Ok(());
    }
    // SAFETY: close_range takes plain integers and touches no memory of ours. Closing
    // descriptors that Rust objects still own would be a logic error, so callers use it
    // only where no such object exists (right after start, and right before exec).
    let result = unsafe { nix::libc::syscall(nix::libc::SYS_close_range, first, last, 0u32) };
    if result == 0 {
        return Ok(());
    }
    // Kernels before 5.9 lack close_range: walk /proc/self/fd instead.
    let mut open = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        if let Some(fd) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            && (first..=last).contains(&fd)
        {
            open.push(fd);
        }
    }
    for fd in open {
        // SAFETY: as above; the directory's own descriptor is already closed here, so
        // a failure (EBADF) is harmless and ignored.
        unsafe { nix::libc::close(fd as i32) };
    }
    Ok(())
}

/// Drops every capability: the bounding set, the ambient set, and the permitted,
/// effective and inheritable sets; then locks the securebits so that no later `execve`
/// (not even of a root-owned or file-capability binary) can grant any back.
pub fn drop_all_capabilities() -> io::Result<()> {
    let last_cap = last_capability();
    for cap in 0..=last_cap {
        // SAFETY: prctl(PR_CAPBSET_DROP, cap) reads only its integer arguments.
        let result = unsafe { nix::libc::prctl(nix::libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        if result != 0 && Errno::last() != Errno::EINVAL {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: integer arguments only.
    let result = unsafe {
        nix::libc::prctl(
            nix::libc::PR_CAP_AMBIENT,
            nix::libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    if result != 0 && Errno::last() != Errno::EINVAL {
        return Err(io::Error::last_os_error());
    }
    // SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP, SECBIT_KEEP_CAPS_LOCKED and
    // SECBIT_NO_CAP_AMBIENT_RAISE, each with its lock bit.
    const SECUREBITS: nix::libc::c_ulong = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80;
    // SAFETY: integer arguments only. Needs CAP_SETPCAP, which the caller still holds
    // in its own user namespace; without it the bits are simply not set.
    unsafe { nix::libc::prctl(nix::libc::PR_SET_SECUREBITS, SECUREBITS, 0, 0, 0) };

    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset reads one header and two data structs (version 3 uses two 32-bit
    // halves); both live on this stack frame for the whole call, with the C layout the
    // kernel expects.
    let result = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The highest capability number this kernel knows.
fn last_capability() -> nix::libc::c_ulong {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(63)
}

/// Whether the calling process still holds any effective capability.
pub fn has_effective_capabilities() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .map(|v| v.trim().chars().any(|c| c != '0'))
        })
        .unwrap_or(true)
}

/// Refuses, for this process and its children, any later mapping that is both writable
/// and executable (`PR_SET_MDWE`, Linux 6.3). Returns false where the kernel lacks it.
pub fn deny_write_execute() -> bool {
    const PR_SET_MDWE: nix::libc::c_int = 65;
    const PR_MDWE_REFUSE_EXEC_GAIN: nix::libc::c_ulong = 1;
    // SAFETY: integer arguments only.
    unsafe { nix::libc::prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) == 0 }
}

/// Brings the loopback interface of the current network namespace up.
pub fn loopback_up() -> io::Result<()> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)?;
    // SAFETY: an all-zero `ifreq` is a valid value (a C struct of integers and a union
    // of integers/arrays).
    let mut request: nix::libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as nix::libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS and SIOCSIFFLAGS read and write one `ifreq`, which lives on
    // this stack frame for the duration of each call; the socket descriptor is open.
    unsafe {
        if nix::libc::ioctl(sock.as_raw_fd(), nix::libc::SIOCGIFFLAGS as _, &mut request) != 0 {
            return Err(io::Error::last_os_error());
        }
        request.ifr_ifru.ifru_flags |= (nix::libc::IFF_UP | nix::libc::IFF_RUNNING) as i16;
        if nix::libc::ioctl(sock.as_raw_fd(), nix::libc::SIOCSIFFLAGS as _, &request) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The Landlock ABI version the kernel offers (`landlock_create_ruleset` with the
/// version flag), or the errno that says why there is none.
pub fn landlock_abi() -> Result<i32, Errno> {
    const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
    // SAFETY: with a null attribute pointer, size 0 and the version flag the kernel reads
    // no memory and only returns the ABI number.
    let result = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if result < 0 {
        Err(Errno::last())
    } else {
        Ok(result as i32)
    }
}

/// Starts `exe` (with `argv`, an empty environment, and `stdio` as descriptors 0, 1
/// and 2) as a child created directly inside the cgroup whose directory `cgroup` is open
/// (`clone3` with `CLONE_INTO_CGROUP`, Linux 5.7, cgroup v2). Unlike writing a pid to
/// `cgroup.procs`, this migrates nothing, so it avoids the RCU grace period a migration
/// waits for (6 to 14 ms per run on the build machine). Returns the child's pid and a
/// pidfd for it. The sources in `stdio` must be above 2.
pub fn spawn_into_cgroup(
    exe: &std::ffi::CStr,
    argv: &[std::ffi::CString],
    stdio: [RawFd; 3],
    cgroup: RawFd,
) -> io::Result<(nix::unistd::Pid, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;

    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_PIDFD: u64 = 0x1000;
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

    if stdio.iter().any(|fd| *fd <= 2) || cgroup < 0 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // Everything the child touches is prepared here: between clone3 and execve it makes
    // only raw system calls (it is a copy of a possibly multi-threaded process).
    let mut argv_ptrs: Vec<*const nix::libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let envp: [*const nix::libc::c_char; 1] = [std::ptr::null()];
    let mut pidfd: nix::libc::c_int = -1;
    let args = CloneArgs {
        flags: CLONE_PIDFD | CLONE_INTO_CGROUP,
        pidfd: &mut pidfd as *mut nix::libc::c_int as u64,
        exit_signal: nix::libc::SIGCHLD as u64,
        cgroup: cgroup as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 reads `args` (live on this frame, the layout of struct clone_args
    // version 2, its size passed) and writes the pidfd into `pidfd`. Without CLONE_VM
    // the child gets a copy of this address space, as with fork, and runs on its copy of
    // this stack.
    let result = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    if result == 0 {
        // SAFETY: in the child of a possibly multi-threaded parent only async-signal-safe
        // calls are allowed until execve: dup2, sigprocmask, signal, execve and _exit
        // are, and every pointer passed was built before the clone.
        unsafe {
            for (target, source) in stdio.iter().enumerate() {
                if nix::libc::dup2(*source, target as i32) < 0 {
                    nix::libc::_exit(126);
                }
            }
            let mut empty: nix::libc::sigset_t = std::mem::zeroed();
            nix::libc::sigemptyset(&mut empty);
            nix::libc::sigprocmask(nix::libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            // Rust ignores SIGPIPE in its own processes; an ignored signal survives exec.
            nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_DFL);
            nix::libc::execve(exe.as_ptr(), argv_ptrs.as_ptr(), envp.as_ptr());
            nix::libc::_exit(127);
        }
    }
    // SAFETY: the kernel returned a new, open pidfd that nothing else owns.
    let pidfd = unsafe { std::os::fd::OwnedFd::from_raw_fd(pidfd) };
    Ok((nix::unistd::Pid::from_raw(result as i32), pidfd))
}

/// Registers a pidfd with the async runtime, to be woken when its process exits.
/// Must be called within a tokio runtime.
pub fn watch_pidfd(
    pidfd: std::os::fd::OwnedFd,
) -> io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    // SAFETY: the AsyncFd takes ownership of the OwnedFd, so the descriptor stays open
    // and names the same pidfd for as long as it is registered, and OwnedFd always
    // returns that descriptor from as_raw_fd.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE)
    }
    .map_err(|err| err.into_parts().1)
}

/// Resets every signal a process can catch to its default action and unblocks all
/// signals, so a program does not inherit this binary's ignored SIGPIPE (an ignored
/// signal survives `execve`; Rust programs ignore SIGPIPE).
pub fn reset_signals() {
    for signal in nix::sys::signal::Signal::iterator() {
        if matches!(
            signal,
            nix::sys::signal::Signal::SIGKILL | nix::sys::signal::Signal::SIGSTOP
        ) {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no code of ours, so none of the hazards of
        // signal handlers (reentrancy, async-signal safety) applies.
        let _ = unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) };
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// `_exit`: ends a forked child without running the parent's atexit handlers or
/// flushing stdio buffers it inherited (which would duplicate output).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` never returns and touches no Rust state.
    unsafe { nix::libc::_exit(code) }
}

/// A raw system call with three integer arguments, for tests that probe what a filter
/// refuses. Returns the result, or the errno it failed with.
#[cfg(test)]
pub fn raw_syscall(nr: i64, args: [i64; 3]) -> Result<i64, i32> {
    // SAFETY: only integer arguments are passed; a call that would read memory through
    // one of them gets a null or invalid pointer, which the kernel rejects with EFAULT
    // rather than dereferencing, and the probes expect those calls to be refused first.
    let result = unsafe { nix::libc::syscall(nr, args[0], args[1], args[2], 0, 0, 0) };
    if result < 0 {
        Err(Errno::last_raw())
    } else {
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_count_is_plausible() {
        let last = last_capability();
        assert!((30..=63).contains(&last), "{last}");
    }

    #[test]
    fn dropping_capabilities_in_a_forked_child_leaves_none() {
        // Runs in a forked child, so the test process keeps its own capabilities. The
        // child only calls async-signal-safe code paths plus small allocations; the
        // test harness may have other threads, so the child avoids locks it could
        // inherit held (no stdout, no logging) and reports through its exit code.
        let pid = match fork_single_threaded().unwrap() {
            Forked::Child => {
                let ok = drop_all_capabilities().is_ok() && !has_effective_capabilities();
                exit_now(if ok { 0 } else { 1 });
            }
            Forked::Parent(pid) => pid,
        };
        let status = nix::sys::wait::waitpid(pid, None).unwrap();
        assert_eq!(status, nix::sys::wait::WaitStatus::Exited(pid, 0));
    }
}
