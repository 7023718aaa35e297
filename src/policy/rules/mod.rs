//! The built-in rules' engine: what one simple command does, judged from its resolved
//! words. [`judge`] runs what applies to every program (a dynamic program, a local
//! script, options that run programs, settings, outputs, the environment), peels a
//! wrapper (`wrappers.rs`: the command it runs is judged as if it stood alone, one level
//! deeper), hands shells and interpreters their code (`shells.rs`), then dispatches to
//! the program families of [`PROGRAM_RULES`] (one file per family) and asks the
//! allowlist. Per-program knowledge lives in the family files, not here. Rule ids are
//! `category.name`; every finding says in words what the command would do.

mod archives;
mod build;
pub(super) mod common;
mod disks;
mod files;
pub(super) mod git;
mod networking;
mod packages;
mod shells;
mod system;
pub(super) mod variables;
mod wrappers;

use build::written_config_run;
use files::{METADATA_ONLY, workspace_confined_edit};
use networking::network;
use shells::{SHELLS, interpreter, shell};

use super::inline::script_file;
use super::interpreters::language;
use common::*;

/// Programs that never open a file named by an argument.
const INERT: &[&str] = &[
    "echo",
    "printf",
    "true",
    "false",
    ":",
    "test",
    "[",
    "expr",
    "seq",
    "sleep",
    "basename",
    "dirname",
    "date",
    "yes",
    "export",
    "local",
    "declare",
    "typeset",
    "readonly",
    "unset",
    "shift",
    "exit",
    "return",
    "break",
    "continue",
    "let",
    "set",
    "type",
    "which",
    "command_not_found_handle",
    "wait",
    "jobs",
    "read",
    "getopts",
    "hash",
    "umask",
];

// -------------------------------------------------------------------------------------
// Entry points from the walk.

/// Judges one simple command (`argv` non-empty), recorded as `index`.
pub(super) fn judge(
    analyzer: &mut Analyzer<'_>,
    index: usize,
    argv: &[Word],
    depth: usize,
    stdin: &Stdin,
) {
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    let cmd = Some(index);
    if !program.is_static() {
        let (decision, rule, what) = if program.from_network {
            (
                Decision::Deny,
                "network.exec_remote",
                "the program to run is read from the network",
            )
        } else {
            (
                Decision::Approve,
                "obfuscation.dynamic_program",
                "the program to run is only known when the line runs (a variable, substitution or glob)",
            )
        };
        analyzer.find(
            cmd,
            decision,
            rule,
            format!("{what}: {}", program.text),
            false,
        );
        for arg in args {
            read_target(analyzer, cmd, arg);
        }
        return;
    }
    let name = program_name(&program.text);
    let local_program = program.text.contains('/')
        && ![
            "/bin/",
            "/usr/bin/",
            "/sbin/",
            "/usr/sbin/",
            "/usr/local/bin/",
        ]
        .iter()
        .any(|dir| program.text.starts_with(dir));
    if local_program {
        analyzer.ran_local_code = true;
        // `./ls` is whatever file is there, not the allowlisted `ls`.
        policy(analyzer, index, &program.text);
        if written_by_line(analyzer, program) {
            analyzer.find(
                cmd,
                Decision::Approve,
                "exec.written_then_run",
                format!(
                    "runs {}, which the same line created or wrote",
                    program.text
                ),
                false,
            );
        }
    }
    if (name == "source" || name == ".")
        && let Some(file) = operands(args).first()
    {
        script_file(analyzer, index, &name, None, file, depth, stdin);
    }
    written_config_run(analyzer, index, &name, args);
    super::exec_options::judge(analyzer, index, &name, args, depth, stdin);
    super::settings::judge(analyzer, index, &name, args, depth);
    super::outputs::judge(analyzer, index, &name, args);
    super::environment::judge(analyzer, index, &name, args);
    if name == "cd" || name == "pushd" {
        follow_cd(analyzer, args);
    }
    let call = Call {
        index,
        name: &name,
        args,
        depth,
    };
    if wrappers::peel(analyzer, &call, stdin) {
        return;
    }
    // A shell or interpreter: judge the code it would run.
    if SHELLS.contains(&name.as_str()) {
        shell(analyzer, index, &name, args, depth, stdin);
    } else if name == "busybox" && !args.is_empty() {
        // `busybox rm -rf /`: the applet is the program.
        analyzer.judge_inner(index, args, depth, stdin, "busybox");
        return;
    } else if let Some(lang) = language(&name) {
        interpreter(analyzer, index, lang, &name, args, depth, stdin);
    } else {
        super::inline::foreign_interpreter(analyzer, index, &name, args, depth, stdin);
    }
    let created_before = analyzer.created.len();
    program_rules(analyzer, index, &name, args, depth);
    if METADATA_ONLY.contains(&name.as_str()) {
        // `chmod +x run.sh && ./run.sh` runs a file the line did not write.
        analyzer.created.truncate(created_before);
    }
    network(analyzer, index, &name, args);
    generic(analyzer, index, &name, args);
    if !local_program && !workspace_confined_edit(analyzer, &name, args) {
        policy(analyzer, index, &name);
    }
}

// -------------------------------------------------------------------------------------
// Programs with rules of their own.

/// Which program names a family's rules apply to.
enum Programs {
    Named(&'static [&'static str]),
    /// Names with this prefix (`mkfs.ext4`), and these names.
    NamedOrPrefixed(&'static str, &'static [&'static str]),
}

impl Programs {
    fn contains(&self, name: &str) -> bool {
        match self {
            Programs::Named(names) => names.contains(&name),
            Programs::NamedOrPrefixed(prefix, names) => {
                name.starts_with(prefix) || names.contains(&name)
            }
        }
    }
}

/// A family of programs and the function that judges what one of them would do.
struct ProgramRules {
    programs: Programs,
    judge: fn(&mut Analyzer<'_>, &Call<'_>),
}

const fn named(
    programs: &'static [&'static str],
    judge: fn(&mut Analyzer<'_>, &Call<'_>),
) -> ProgramRules {
    ProgramRules {
        programs: Programs::Named(programs),
        judge,
    }
}

const fn prefixed(
    prefix: &'static str,
    programs: &'static [&'static str],
    judge: fn(&mut Analyzer<'_>, &Call<'_>),
) -> ProgramRules {
    ProgramRules {
        programs: Programs::NamedOrPrefixed(prefix, programs),
        judge,
    }
}

/// Every program family with rules of its own, in the order they are tried (the first
/// family naming a program judges it). The functions live in one module per area.
const PROGRAM_RULES: &[ProgramRules] = &[
    named(&["rm", "unlink", "rmdir", "srm", "shred"], files::remove),
    named(&["mv"], files::move_files),
    named(&["cp", "install", "ln", "rsync", "scp"], files::copy),
    named(
        &["tee", "touch", "mkdir", "truncate", "mkfifo", "mknod"],
        files::create,
    ),
    named(&["sed"], files::sed),
    named(&["dd"], disks::dd),
    prefixed(
        "mkfs",
        &[
            "mke2fs",
            "mkswap",
            "wipefs",
            "blkdiscard",
            "mkdosfs",
            "mkntfs",
        ],
        disks::format,
    ),
    named(
        &[
            "fdisk", "sfdisk", "parted", "gdisk", "sgdisk", "cfdisk", "cgdisk",
        ],
        disks::partition,
    ),
    named(
        &["chmod", "chown", "chgrp", "chattr", "setfacl"],
        files::change_metadata,
    ),
    named(&["shutdown", "reboot", "halt", "poweroff"], system::power),
    named(&["init", "telinit"], system::init),
    named(&["systemctl", "loginctl"], system::systemctl),
    named(&["service"], system::service),
    named(
        &["update-rc.d", "chkconfig", "rc-update"],
        system::boot_services,
    ),
    named(
        &["kill", "pkill", "killall", "killall5", "skill", "slay"],
        system::kill,
    ),
    named(
        &[
            "iptables",
            "ip6tables",
            "iptables-legacy",
            "iptables-nft",
            "ip6tables-legacy",
            "ip6tables-nft",
            "ebtables",
            "arptables",
        ],
        networking::packet_filter,
    ),
    named(&["nft"], networking::nft),
    named(&["ufw"], networking::ufw),
    named(&["firewall-cmd"], networking::firewalld),
    named(&["crontab"], system::crontab),
    named(&["at", "batch", "atrm"], system::at),
    named(
        &[
            "passwd", "useradd", "usermod", "userdel", "adduser", "deluser", "groupadd",
            "groupdel", "groupmod", "gpasswd", "chpasswd", "visudo", "chsh", "chfn", "newgrp",
            "vipw",
        ],
        system::accounts,
    ),
    named(
        &[
            "mount",
            "umount",
            "swapon",
            "swapoff",
            "insmod",
            "rmmod",
            "modprobe",
            "kexec",
            "setcap",
            "hostnamectl",
            "timedatectl",
            "localectl",
            "losetup",
            "cryptsetup",
            "lvremove",
            "vgremove",
            "pvremove",
            "mdadm",
            "tune2fs",
            "e2fsck",
            "fsck",
            "debugfs",
            "grub-install",
            "update-grub",
            "efibootmgr",
            "sysctl",
        ],
        system::kernel_and_storage,
    ),
    named(&["ip"], networking::ip),
    named(
        &["ifconfig", "route", "iwconfig", "nmcli", "wpa_cli"],
        networking::interfaces,
    ),
    named(&["history"], system::history),
    named(&["git"], git::judge),
    named(&["pip", "pip3", "pipx", "uv"], packages::python_packages),
    named(&["npm", "pnpm", "yarn", "bun"], packages::node_packages),
    named(&["npx", "pnpx", "bunx"], packages::package_runners),
    named(
        &[
            "cargo", "go", "gem", "composer", "conda", "mamba", "brew", "snap", "flatpak", "opam",
            "rustup", "luarocks", "cpan", "cpanm",
        ],
        packages::language_packages,
    ),
    named(
        &[
            "apt", "apt-get", "aptitude", "dnf", "yum", "apk", "pacman", "zypper", "dpkg", "rpm",
            "emerge", "nix-env",
        ],
        packages::system_packages,
    ),
    named(
        &["docker", "podman", "kubectl", "nerdctl", "lxc", "virsh"],
        packages::containers,
    ),
    named(&["tar", "bsdtar"], archives::tar),
    named(&["zip", "7z", "7za", "rar"], archives::zip),
    named(&["unzip"], archives::unzip),
    named(
        &["grep", "egrep", "fgrep", "rg", "ag", "ack"],
        files::search,
    ),
    named(&["nc", "ncat", "netcat"], networking::netcat),
    named(&["socat"], networking::socat),
    named(
        &[
            "nmap",
            "masscan",
            "zmap",
            "hping3",
            "arpspoof",
            "ettercap",
            "tcpdump",
            "tshark",
            "wireshark",
            "aircrack-ng",
        ],
        networking::scanners,
    ),
    named(&["openssl"], networking::openssl),
];

fn program_rules(
    analyzer: &mut Analyzer<'_>,
    index: usize,
    name: &str,
    args: &[Word],
    depth: usize,
) {
    let call = Call {
        index,
        name,
        args,
        depth,
    };
    if args.iter().any(|a| a.text == "--no-preserve-root") {
        call.deny(
            analyzer,
            "destructive.no_preserve_root",
            format!("{name} --no-preserve-root removes the protection of /"),
        );
    }
    if let Some(rules) = PROGRAM_RULES.iter().find(|r| r.programs.contains(name)) {
        (rules.judge)(analyzer, &call);
    }
}

// -------------------------------------------------------------------------------------
// Network.

// -------------------------------------------------------------------------------------
// What applies to every program.

fn generic(analyzer: &mut Analyzer<'_>, index: usize, name: &str, args: &[Word]) {
    let cmd = Some(index);
    let inert = INERT.contains(&name);
    let mut dynamic = false;
    // The destination of a copy or move is written, not read.
    let ops = operands(args);
    let destination = ["cp", "mv", "install", "ln", "rsync"]
        .contains(&name)
        .then(|| ops.last().filter(|_| ops.len() >= 2))
        .flatten()
        .map(|d| std::ptr::from_ref::<Word>(d));
    for a in args {
        if !a.is_static() {
            if a.from_network && !inert {
                analyzer.find(
                    cmd,
                    Decision::Approve,
                    "network.read",
                    format!("{name} is given data read from the network"),
                    false,
                );
            }
            if a.dynamic {
                dynamic = true;
            }
        }
        if inert {
            continue;
        }
        let content =
            !CONTENT_BLIND.contains(&name) && destination != Some(std::ptr::from_ref::<Word>(a));
        for candidate in path_candidates(a, name) {
            read_target_by(analyzer, cmd, &candidate, content);
        }
    }
    if dynamic && !inert {
        analyzer.find(
            cmd,
            Decision::Approve,
            "obfuscation.dynamic_argument",
            format!("{name} gets arguments that are only known when the line runs (variables or substitutions)"),
            false,
        );
    }
}

/// The paths an argument may name: itself, the value of `--opt=value` or `key=value`,
/// and `@file` (curl's upload syntax).
fn path_candidates(a: &Word, name: &str) -> Vec<Word> {
    let mut out = vec![a.clone()];
    if let Some((key, value)) = a.text.split_once('=')
        && !key.is_empty()
    {
        let shift = key.len() + 1;
        out.push(Word {
            text: value.to_string(),
            wild_at: a.wild_at.map(|w| w.saturating_sub(shift)),
            ..a.clone()
        });
    }
    if let Some(file) = a.text.strip_prefix('@')
        && (name == "curl" || name == "http" || name == "xh")
    {
        out.push(Word {
            text: file.to_string(),
            wild_at: a.wild_at.map(|w| w.saturating_sub(1)),
            ..a.clone()
        });
    }
    if a.text.starts_with('-')
        && !a.text.starts_with("--")
        && a.text.len() > 2
        && a.text.contains('/')
    {
        // -f/etc/shadow: a short option glued to its value.
        out.push(Word {
            text: a.text.get(2..).unwrap_or("").to_string(),
            wild_at: a.wild_at.map(|w| w.saturating_sub(2)),
            ..a.clone()
        });
    }
    out
}

/// `cd DIR` moves the working directory for the rest of the line (as far as the walk
/// goes in order; a subshell restores it).
fn follow_cd(analyzer: &mut Analyzer<'_>, args: &[Word]) {
    let target = operands(args).first().copied().cloned();
    let target = target.unwrap_or_else(|| Word::lit("~"));
    if !target.is_static() || target.text == "-" {
        analyzer.cwd = None;
        return;
    }
    let place: Place = analyzer.place(&target);
    analyzer.cwd = (place.root != Root::Relative && !place.wild).then_some(Cwd {
        root: place.root,
        comps: place.comps,
    });
}

/// The recursion of the rules: a wrapper hands the command it runs back to [`judge`].
impl Analyzer<'_> {
    /// Judges `inner` (a command a wrapper runs) as its own simple command.
    pub(crate) fn judge_inner(
        &mut self,
        outer: usize,
        inner: &[Word],
        depth: usize,
        stdin: &Stdin,
        wrapper: &str,
    ) {
        if inner.is_empty() {
            return;
        }
        if depth + 1 > MAX_DEPTH {
            self.find(
                Some(outer),
                Decision::Deny,
                "input.too_deep",
                format!("wrappers are nested more than {} levels deep", MAX_DEPTH),
                false,
            );
            return;
        }
        let _ = wrapper;
        let index = self.record(inner);
        judge(self, index, inner, depth + 1, stdin);
    }
}
