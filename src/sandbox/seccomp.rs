//! The seccomp-bpf filters every sandboxed program runs under (built with `seccompiler`).
//!
//! Two filters are stacked. The first is an allowlist of the system calls Python, Node
//! and Bash need on x86_64 and aarch64; any other call fails with `ENOSYS`, which is
//! what a new kernel feature looks like to the C library, so `clone3` (whose flags a
//! filter cannot inspect) makes glibc fall back to `clone`. The second refuses with
//! `EPERM` what must never work even though a neighbour is allowed: `clone` with
//! namespace flags, the `TIOCSTI`/`TIOCLINUX` ioctls, sockets outside unix/inet/netlink,
//! and, by name, the escape tools (`mount`, `ptrace`, `unshare`, `setns`, `bpf`,
//! `keyctl`, `perf_event_open`, `kexec_*`, `userfaultfd`, `io_uring_*`, ...). When two
//! filters both answer with an errno, the kernel uses the later filter's, so those calls
//! report `EPERM`, a clear "refused", rather than `ENOSYS`.
//!
//! This module builds and installs filters; it never decides which program runs.

use std::collections::BTreeMap;

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp is not supported on {0}")]
    UnsupportedArch(&'static str),
    #[error("cannot build the seccomp filter: {0}")]
    Build(String),
    #[error("cannot install the seccomp filter: {0}")]
    Install(String),
}

/// The compiled filters, ready to install.
#[derive(Debug, Clone)]
pub struct Filters {
    allow: BpfProgram,
    deny: BpfProgram,
}

impl Filters {
    /// Compiles both filters for the architecture this binary was built for.
    pub fn build() -> Result<Filters, SeccompError> {
        let arch = target_arch()?;
        let allow_rules: BTreeMap<i64, Vec<SeccompRule>> =
            allowed().into_iter().map(|nr| (nr, Vec::new())).collect();
        let allow = SeccompFilter::new(
            allow_rules,
            SeccompAction::Errno(libc::ENOSYS as u32),
            SeccompAction::Allow,
            arch,
        )
        .and_then(BpfProgram::try_from)
        .map_err(|e| SeccompError::Build(e.to_string()))?;
        let deny = SeccompFilter::new(
            denied()?,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EPERM as u32),
            arch,
        )
        .and_then(BpfProgram::try_from)
        .map_err(|e| SeccompError::Build(e.to_string()))?;
        Ok(Filters { allow, deny })
    }

    /// Installs both filters on the calling thread. Needs `no_new_privs` (set by the
    /// caller) and is the last restriction before `execve`, since it forbids the
    /// system calls that set up the others.
    pub fn install(&self) -> Result<(), SeccompError> {
        seccompiler::apply_filter(&self.allow).map_err(|e| SeccompError::Install(e.to_string()))?;
        seccompiler::apply_filter(&self.deny).map_err(|e| SeccompError::Install(e.to_string()))
    }
}

fn target_arch() -> Result<TargetArch, SeccompError> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(TargetArch::x86_64),
        "aarch64" => Ok(TargetArch::aarch64),
        other => Err(SeccompError::UnsupportedArch(other)),
    }
}

/// Namespace flags that `clone` must never carry inside the sandbox.
const NAMESPACE_FLAGS: [u64; 8] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
    0x80, // CLONE_NEWTIME
];

/// Terminal ioctls that push input into a terminal or reach the console (the same
/// numbers on x86_64 and aarch64; the C libraries disagree on their types).
const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541C;

/// Socket families a program may open: unix, IPv4, IPv6 and netlink (the C library's
/// `getaddrinfo` asks netlink which address families the host has).
const SOCKET_FAMILIES: [u64; 4] = [
    libc::AF_UNIX as u64,
    libc::AF_INET as u64,
    libc::AF_INET6 as u64,
    libc::AF_NETLINK as u64,
];

fn condition(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, SeccompError> {
    SeccompCondition::new(arg, len, op, value).map_err(|e| SeccompError::Build(e.to_string()))
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, SeccompError> {
    SeccompRule::new(conditions).map_err(|e| SeccompError::Build(e.to_string()))
}

/// The second filter's rules: a match is refused with EPERM.
fn denied() -> Result<BTreeMap<i64, Vec<SeccompRule>>, SeccompError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in forbidden() {
        rules.insert(nr, Vec::new());
    }
    // clone: any namespace flag in the first argument (the flags on both architectures).
    let mut clone_rules = Vec::new();
    for flag in NAMESPACE_FLAGS {
        clone_rules.push(rule(vec![condition(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag),
            flag,
        )?])?);
    }
    rules.insert(libc::SYS_clone, clone_rules);
    // ioctl: the kernel reads the request as 32 bits, so compare only those.
    rules.insert(
        libc::SYS_ioctl,
        vec![
            rule(vec![condition(
                1,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                TIOCSTI,
            )?])?,
            rule(vec![condition(
                1,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                TIOCLINUX,
            )?])?,
        ],
    );
    // socket: refused unless the family is one of SOCKET_FAMILIES.
    let mut not_allowed_family = Vec::new();
    for family in SOCKET_FAMILIES {
        not_allowed_family.push(condition(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Ne,
            family,
        )?);
    }
    rules.insert(libc::SYS_socket, vec![rule(not_allowed_family)?]);
    Ok(rules)
}

/// Calls refused by name with EPERM: the tools of an escape.
fn forbidden() -> Vec<i64> {
    let mut list = vec![
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_kcmp,
        libc::SYS_pidfd_getfd,
        libc::SYS_kexec_load,
        libc::SYS_bpf,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_acct,
        libc::SYS_syslog,
        libc::SYS_quotactl,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_sethostname,
        libc::SYS_setdomainname,
        libc::SYS_personality,
        libc::SYS_vhangup,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
        libc::SYS_fanotify_init,
        libc::SYS_lookup_dcookie,
    ];
    // The C libraries' tables do not all name it on aarch64 (musl): arm64 number 294.
    #[cfg(target_arch = "aarch64")]
    list.push(294);
    #[cfg(target_arch = "x86_64")]
    list.extend([
        libc::SYS_kexec_file_load,
        libc::SYS_iopl,
        libc::SYS_ioperm,
        libc::SYS_modify_ldt,
        libc::SYS_uselib,
        libc::SYS__sysctl,
    ]);
    list
}

/// The allowlist: what the three interpreters and ordinary programs they start need.
fn allowed() -> Vec<i64> {
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut list = vec![
        // memory
        libc::SYS_brk,
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_mprotect,
        libc::SYS_madvise,
        libc::SYS_mincore,
        libc::SYS_msync,
        libc::SYS_mlock,
        libc::SYS_mlock2,
        libc::SYS_munlock,
        libc::SYS_mlockall,
        libc::SYS_munlockall,
        libc::SYS_mbind,
        libc::SYS_get_mempolicy,
        libc::SYS_set_mempolicy,
        libc::SYS_membarrier,
        libc::SYS_memfd_create,
        libc::SYS_pkey_alloc,
        libc::SYS_pkey_free,
        libc::SYS_pkey_mprotect,
        // files
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_readv,
        libc::SYS_writev,
        libc::SYS_pread64,
        libc::SYS_pwrite64,
        libc::SYS_preadv,
        libc::SYS_pwritev,
        libc::SYS_preadv2,
        libc::SYS_pwritev2,
        libc::SYS_openat,
        libc::SYS_openat2,
        libc::SYS_close,
        libc::SYS_close_range,
        libc::SYS_lseek,
        libc::SYS_fstat,
        libc::SYS_newfstatat,
        libc::SYS_statx,
        libc::SYS_statfs,
        libc::SYS_fstatfs,
        libc::SYS_getdents64,
        libc::SYS_faccessat,
        libc::SYS_faccessat2,
        libc::SYS_readlinkat,
        libc::SYS_mkdirat,
        libc::SYS_mknodat,
        libc::SYS_unlinkat,
        libc::SYS_renameat,
        libc::SYS_renameat2,
        libc::SYS_linkat,
        libc::SYS_symlinkat,
        libc::SYS_fchmod,
        libc::SYS_fchmodat,
        libc::SYS_fchown,
        libc::SYS_fchownat,
        libc::SYS_utimensat,
        libc::SYS_truncate,
        libc::SYS_ftruncate,
        libc::SYS_fallocate,
        libc::SYS_fsync,
        libc::SYS_fdatasync,
        libc::SYS_sync,
        libc::SYS_syncfs,
        libc::SYS_sync_file_range,
        libc::SYS_fadvise64,
        libc::SYS_flock,
        libc::SYS_fcntl,
        libc::SYS_ioctl,
        libc::SYS_dup,
        libc::SYS_dup3,
        libc::SYS_pipe2,
        libc::SYS_splice,
        libc::SYS_tee,
        libc::SYS_vmsplice,
        libc::SYS_sendfile,
        libc::SYS_copy_file_range,
        libc::SYS_getcwd,
        libc::SYS_chdir,
        libc::SYS_fchdir,
        libc::SYS_umask,
        libc::SYS_getxattr,
        libc::SYS_lgetxattr,
        libc::SYS_fgetxattr,
        libc::SYS_listxattr,
        libc::SYS_llistxattr,
        libc::SYS_flistxattr,
        libc::SYS_setxattr,
        libc::SYS_lsetxattr,
        libc::SYS_fsetxattr,
        libc::SYS_removexattr,
        libc::SYS_lremovexattr,
        libc::SYS_fremovexattr,
        libc::SYS_inotify_init1,
        libc::SYS_inotify_add_watch,
        libc::SYS_inotify_rm_watch,
        // event loops and time
        libc::SYS_epoll_create1,
        libc::SYS_epoll_ctl,
        libc::SYS_epoll_pwait,
        libc::SYS_epoll_pwait2,
        libc::SYS_eventfd2,
        libc::SYS_signalfd4,
        libc::SYS_timerfd_create,
        libc::SYS_timerfd_settime,
        libc::SYS_timerfd_gettime,
        libc::SYS_pselect6,
        libc::SYS_ppoll,
        libc::SYS_nanosleep,
        libc::SYS_clock_nanosleep,
        libc::SYS_clock_gettime,
        libc::SYS_clock_getres,
        libc::SYS_gettimeofday,
        libc::SYS_getitimer,
        libc::SYS_setitimer,
        libc::SYS_timer_create,
        libc::SYS_timer_settime,
        libc::SYS_timer_gettime,
        libc::SYS_timer_getoverrun,
        libc::SYS_timer_delete,
        libc::SYS_futex,
        libc::SYS_futex_waitv,
        libc::SYS_set_robust_list,
        libc::SYS_get_robust_list,
        libc::SYS_rseq,
        libc::SYS_getrandom,
        // processes and signals (within the sandbox's own pid namespace)
        libc::SYS_clone,
        libc::SYS_execve,
        libc::SYS_execveat,
        libc::SYS_exit,
        libc::SYS_exit_group,
        libc::SYS_wait4,
        libc::SYS_waitid,
        libc::SYS_kill,
        libc::SYS_tkill,
        libc::SYS_tgkill,
        libc::SYS_pidfd_open,
        libc::SYS_pidfd_send_signal,
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_rt_sigpending,
        libc::SYS_rt_sigtimedwait,
        libc::SYS_rt_sigqueueinfo,
        libc::SYS_rt_tgsigqueueinfo,
        libc::SYS_rt_sigsuspend,
        libc::SYS_sigaltstack,
        libc::SYS_restart_syscall,
        libc::SYS_set_tid_address,
        libc::SYS_getpid,
        libc::SYS_getppid,
        libc::SYS_gettid,
        libc::SYS_getpgid,
        libc::SYS_setpgid,
        libc::SYS_getsid,
        libc::SYS_setsid,
        libc::SYS_getuid,
        libc::SYS_geteuid,
        libc::SYS_getgid,
        libc::SYS_getegid,
        libc::SYS_getresuid,
        libc::SYS_getresgid,
        libc::SYS_getgroups,
        // Identity changes work only to ids the process already has: it holds no
        // capability and its user namespace maps a single id.
        libc::SYS_setuid,
        libc::SYS_setgid,
        libc::SYS_setreuid,
        libc::SYS_setregid,
        libc::SYS_setresuid,
        libc::SYS_setresgid,
        libc::SYS_setfsuid,
        libc::SYS_setfsgid,
        libc::SYS_setgroups,
        libc::SYS_capget,
        libc::SYS_prctl,
        // Needed to install the second filter after this one; a program may only ever
        // add filters, which can restrict it further but never lift one.
        libc::SYS_seccomp,
        libc::SYS_getrlimit,
        libc::SYS_setrlimit,
        libc::SYS_prlimit64,
        libc::SYS_getrusage,
        libc::SYS_times,
        libc::SYS_sysinfo,
        libc::SYS_uname,
        libc::SYS_getcpu,
        libc::SYS_getpriority,
        libc::SYS_setpriority,
        libc::SYS_sched_yield,
        libc::SYS_sched_getaffinity,
        libc::SYS_sched_setaffinity,
        libc::SYS_sched_getparam,
        libc::SYS_sched_setparam,
        libc::SYS_sched_getscheduler,
        libc::SYS_sched_setscheduler,
        libc::SYS_sched_getattr,
        libc::SYS_sched_setattr,
        libc::SYS_sched_get_priority_max,
        libc::SYS_sched_get_priority_min,
        libc::SYS_sched_rr_get_interval,
        libc::SYS_ioprio_get,
        libc::SYS_ioprio_set,
        // System V and POSIX IPC, private to the sandbox's IPC namespace
        libc::SYS_shmget,
        libc::SYS_shmat,
        libc::SYS_shmdt,
        libc::SYS_shmctl,
        libc::SYS_semget,
        libc::SYS_semop,
        libc::SYS_semtimedop,
        libc::SYS_semctl,
        libc::SYS_msgget,
        libc::SYS_msgsnd,
        libc::SYS_msgrcv,
        libc::SYS_msgctl,
        libc::SYS_mq_open,
        libc::SYS_mq_unlink,
        libc::SYS_mq_timedsend,
        libc::SYS_mq_timedreceive,
        libc::SYS_mq_notify,
        libc::SYS_mq_getsetattr,
        // sockets (families narrowed by the second filter)
        libc::SYS_socket,
        libc::SYS_socketpair,
        libc::SYS_bind,
        libc::SYS_listen,
        libc::SYS_accept,
        libc::SYS_accept4,
        libc::SYS_connect,
        libc::SYS_getsockname,
        libc::SYS_getpeername,
        libc::SYS_sendto,
        libc::SYS_recvfrom,
        libc::SYS_sendmsg,
        libc::SYS_recvmsg,
        libc::SYS_sendmmsg,
        libc::SYS_recvmmsg,
        libc::SYS_shutdown,
        libc::SYS_setsockopt,
        libc::SYS_getsockopt,
    ];
    // The legacy calls x86_64 still has and its C libraries and interpreters use.
    #[cfg(target_arch = "x86_64")]
    list.extend([
        libc::SYS_open,
        libc::SYS_creat,
        libc::SYS_stat,
        libc::SYS_lstat,
        libc::SYS_access,
        libc::SYS_readlink,
        libc::SYS_mkdir,
        libc::SYS_rmdir,
        libc::SYS_unlink,
        libc::SYS_rename,
        libc::SYS_link,
        libc::SYS_symlink,
        libc::SYS_chmod,
        libc::SYS_chown,
        libc::SYS_lchown,
        libc::SYS_mknod,
        libc::SYS_getdents,
        libc::SYS_utime,
        libc::SYS_utimes,
        libc::SYS_futimesat,
        libc::SYS_pipe,
        libc::SYS_dup2,
        libc::SYS_poll,
        libc::SYS_select,
        libc::SYS_epoll_create,
        libc::SYS_epoll_wait,
        libc::SYS_eventfd,
        libc::SYS_signalfd,
        libc::SYS_inotify_init,
        libc::SYS_fork,
        libc::SYS_vfork,
        libc::SYS_pause,
        libc::SYS_alarm,
        libc::SYS_time,
        libc::SYS_getpgrp,
        libc::SYS_arch_prctl,
    ]);
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::sys::{Forked, exit_now, fork_single_threaded, raw_syscall};

    /// Runs `probe` in a forked child under the filters and returns its exit code.
    fn in_filtered_child(probe: fn() -> i32) -> i32 {
        let filters = Filters::build().unwrap();
        match fork_single_threaded().unwrap() {
            Forked::Child => {
                if nix::sys::prctl::set_no_new_privs().is_err() || filters.install().is_err() {
                    exit_now(99);
                }
                exit_now(probe());
            }
            Forked::Parent(pid) => match nix::sys::wait::waitpid(pid, None).unwrap() {
                nix::sys::wait::WaitStatus::Exited(_, code) => code,
                other => panic!("child ended with {other:?}"),
            },
        }
    }

    /// The errno a probe failed with, 0 on success.
    fn errno_of(result: Result<i64, i32>) -> i32 {
        result.err().unwrap_or(0)
    }

    #[test]
    fn filters_build_and_the_lists_do_not_overlap() {
        Filters::build().unwrap();
        let allowed = allowed();
        for nr in forbidden() {
            assert!(
                !allowed.contains(&nr),
                "syscall {nr} is both allowed and forbidden"
            );
        }
        assert!(!allowed.contains(&libc::SYS_clone3));
    }

    #[test]
    fn escape_calls_fail_with_eperm_and_clone3_with_enosys() {
        assert_eq!(
            in_filtered_child(|| {
                let mut code = 0;
                let probes: [(Result<i64, i32>, i32); 5] = [
                    (
                        raw_syscall(libc::SYS_unshare, [libc::CLONE_NEWUSER as i64, 0, 0]),
                        libc::EPERM,
                    ),
                    (raw_syscall(libc::SYS_ptrace, [0, 0, 0]), libc::EPERM),
                    (raw_syscall(libc::SYS_bpf, [0, 0, 0]), libc::EPERM),
                    (raw_syscall(libc::SYS_clone3, [0, 0, 0]), libc::ENOSYS),
                    (
                        raw_syscall(
                            libc::SYS_clone,
                            [(libc::CLONE_NEWUSER | libc::SIGCHLD) as i64, 0, 0],
                        ),
                        libc::EPERM,
                    ),
                ];
                for (index, (result, expected)) in probes.into_iter().enumerate() {
                    if errno_of(result) != expected {
                        code = 10 + index as i32;
                    }
                }
                if nix::unistd::getpid().as_raw() <= 0 {
                    code = 30;
                }
                code
            }),
            0
        );
    }

    #[test]
    fn tiocsti_and_packet_sockets_are_refused() {
        assert_eq!(
            in_filtered_child(|| {
                let tiocsti = raw_syscall(libc::SYS_ioctl, [0, libc::TIOCSTI as i64, 0]);
                let packet = raw_syscall(
                    libc::SYS_socket,
                    [libc::AF_PACKET as i64, libc::SOCK_RAW as i64, 0],
                );
                let unix = raw_syscall(
                    libc::SYS_socket,
                    [libc::AF_UNIX as i64, libc::SOCK_STREAM as i64, 0],
                );
                if errno_of(tiocsti) != libc::EPERM {
                    return 1;
                }
                if errno_of(packet) != libc::EPERM {
                    return 2;
                }
                if unix.is_err() {
                    return 3;
                }
                0
            }),
            0
        );
    }
}
