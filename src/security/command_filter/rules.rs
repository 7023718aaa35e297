//! The built-in rules: what one simple command does, judged from its resolved words.
//! Wrappers (`env`, `sudo`, `xargs`, `find -exec`, `sh -c`, `ssh host CMD`, ...) are
//! peeled here and the command they run is judged as if it stood alone, one level
//! deeper. Rule ids are `category.name`; every finding says in words what the command
//! would do.

use super::analyze::{Analyzer, Stdin, W};
use super::paths::{Cwd, Place, Root, is_disk_device};
use super::{Decision, ShellPolicy};

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

/// Builtins that are always allowed by the allowlist policy (they run no program).
const SAFE_BUILTINS: &[&str] = &[
    "cd", "pwd", "echo", "printf", "true", "false", ":", "test", "[", "export", "unset", "read",
    "local", "declare", "typeset", "readonly", "shift", "exit", "return", "break", "continue",
    "wait", "set", "type", "hash", "getopts", "let", "jobs", "pushd", "popd", "dirs", "umask",
];

/// Variables that change which code later runs.
const DANGEROUS_VARIABLES: &[&str] = &[
    "PATH",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "BASH_ENV",
    "ENV",
    "PROMPT_COMMAND",
    "IFS",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PERL5LIB",
    "PERL5OPT",
    "RUBYLIB",
    "RUBYOPT",
    "NODE_OPTIONS",
    "NODE_PATH",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "GIT_CONFIG_GLOBAL",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
];

const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "rbash", "yash", "fish", "tcsh", "csh",
    "pdksh", "oksh", "posh",
];

/// Clients that reach other hosts, and whether their output is data from the network.
const NETWORK_CLIENTS: &[&str] = &[
    "curl",
    "wget",
    "nc",
    "ncat",
    "netcat",
    "socat",
    "telnet",
    "ssh",
    "scp",
    "sftp",
    "rsync",
    "ftp",
    "tftp",
    "lftp",
    "aria2c",
    "http",
    "https",
    "xh",
    "ping",
    "ping6",
    "traceroute",
    "tracepath",
    "mtr",
    "dig",
    "nslookup",
    "host",
    "whois",
    "nmap",
    "axel",
    "fetch",
];
const NETWORK_READERS: &[&str] = &[
    "curl", "wget", "nc", "ncat", "netcat", "socat", "telnet", "ssh", "ftp", "tftp", "lftp",
    "aria2c", "http", "https", "xh", "axel", "fetch",
];

/// The program name a word runs: its last path component (`/bin/rm` is `rm`).
pub(super) fn program_name(text: &str) -> String {
    text.rsplit('/').next().unwrap_or(text).to_string()
}

/// The interpreter family of a program name, if it runs code in a language.
fn language(name: &str) -> Option<Lang> {
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    Some(match base {
        "python" | "pypy" | "ipython" => Lang::Python,
        "perl" => Lang::Perl,
        "ruby" | "irb" => Lang::Ruby,
        "node" | "nodejs" | "bun" | "deno" => Lang::Js,
        "php" => Lang::Php,
        "lua" | "luajit" => Lang::Lua,
        "awk" | "gawk" | "mawk" | "nawk" => Lang::Awk,
        "Rscript" => Lang::R,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lang {
    Python,
    Perl,
    Ruby,
    Js,
    Php,
    Lua,
    Awk,
    R,
}

fn is_option(w: &W) -> bool {
    w.text.starts_with('-') && w.text.len() > 1
}

/// Short-option cluster letters (`-rf` has `r` and `f`); empty for long options.
fn short_flags(w: &W) -> &str {
    if w.text.starts_with("--") {
        return "";
    }
    w.text.strip_prefix('-').unwrap_or("")
}

fn has_flag(args: &[W], short: char, long: &[&str]) -> bool {
    args.iter().any(|a| {
        (is_option(a) && short_flags(a).contains(short))
            || long
                .iter()
                .any(|l| a.text == *l || a.text.starts_with(&format!("{l}=")))
    })
}

/// Arguments that are not options (everything after `--` counts).
fn operands(args: &[W]) -> Vec<&W> {
    let mut out = Vec::new();
    let mut after = false;
    for a in args {
        if after {
            out.push(a);
        } else if a.text == "--" {
            after = true;
        } else if !is_option(a) {
            out.push(a);
        }
    }
    out
}

// -------------------------------------------------------------------------------------
// Entry points from the walk.

/// An assignment before a command (`X=1 cmd`) or alone (`X=1`).
pub(super) fn assignment(an: &mut Analyzer<'_>, cmd: Option<usize>, name: &str, value: &W) {
    if DANGEROUS_VARIABLES.contains(&name) {
        an.find(
            cmd,
            Decision::Approve,
            "env.dangerous_variable",
            format!("sets {name}, which changes what code later commands run"),
            false,
        );
    }
    if value.from_network {
        an.find(
            cmd,
            Decision::Approve,
            "network.read",
            format!("stores data read from the network in {name}"),
            false,
        );
    }
}

pub(super) fn read_target(an: &mut Analyzer<'_>, cmd: Option<usize>, w: &W) {
    let place = an.place(w);
    if let Some((decision, rule, reason)) = an.filter.layout.read_risk(&place) {
        an.find(cmd, decision, rule, reason, false);
    }
}

pub(super) fn write_target(an: &mut Analyzer<'_>, cmd: Option<usize>, w: &W) {
    let place = an.place(w);
    if let Some((decision, rule, reason)) = an.filter.layout.write_risk(&place) {
        an.find(cmd, decision, rule, reason, false);
    } else if w.dynamic && place.root != Root::Absolute && place.comps.is_empty() {
        an.find(
            cmd,
            Decision::Approve,
            "write.unresolved_target",
            "writes to a path that is only known when the command runs",
            false,
        );
    }
}

/// Judges one simple command (`argv` non-empty), recorded as `index`.
pub(super) fn judge(an: &mut Analyzer<'_>, index: usize, argv: &[W], depth: usize, stdin: &Stdin) {
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
        an.find(
            cmd,
            decision,
            rule,
            format!("{what}: {}", program.text),
            false,
        );
        for arg in args {
            read_target(an, cmd, arg);
        }
        return;
    }
    let name = program_name(&program.text);
    if program.text.contains('/')
        && ![
            "/bin/",
            "/usr/bin/",
            "/sbin/",
            "/usr/sbin/",
            "/usr/local/bin/",
        ]
        .iter()
        .any(|dir| program.text.starts_with(dir))
    {
        an.ran_local_code = true;
    }
    if name == "cd" || name == "pushd" {
        follow_cd(an, args);
    }
    if wrapper(an, index, &name, args, depth, stdin) {
        return;
    }
    // A shell or interpreter: judge the code it would run.
    if SHELLS.contains(&name.as_str()) {
        shell(an, index, &name, args, depth, stdin);
    } else if name == "busybox" && !args.is_empty() {
        // `busybox rm -rf /`: the applet is the program.
        judge_inner(an, index, args, depth, stdin, "busybox");
        return;
    } else if let Some(lang) = language(&name) {
        interpreter(an, index, lang, &name, args, depth, stdin);
    }
    program_rules(an, index, &name, args, depth);
    network(an, index, &name, args);
    generic(an, index, &name, args);
    policy(an, index, &name);
}

/// Judges `inner` (a command a wrapper runs) as its own simple command.
fn judge_inner(
    an: &mut Analyzer<'_>,
    outer: usize,
    inner: &[W],
    depth: usize,
    stdin: &Stdin,
    wrapper: &str,
) {
    if inner.is_empty() {
        return;
    }
    if depth + 1 > super::MAX_DEPTH {
        an.find(
            Some(outer),
            Decision::Deny,
            "input.too_deep",
            format!(
                "wrappers are nested more than {} levels deep",
                super::MAX_DEPTH
            ),
            false,
        );
        return;
    }
    let _ = wrapper;
    let index = an.record(inner);
    judge(an, index, inner, depth + 1, stdin);
}

// -------------------------------------------------------------------------------------
// Wrappers: programs that run another command given in their arguments.

/// Skips options of a wrapper: `with_value` lists options that take the next argument.
fn skip_options<'a>(args: &'a [W], with_value: &[&str]) -> &'a [W] {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a.text == "--" {
            return args.get(i + 1..).unwrap_or(&[]);
        }
        if !is_option(a) {
            break;
        }
        let takes_value = with_value.contains(&a.text.as_str());
        i += if takes_value { 2 } else { 1 };
    }
    args.get(i..).unwrap_or(&[])
}

/// Peels a wrapper; returns true when `name` was one (its inner command is judged).
fn wrapper(
    an: &mut Analyzer<'_>,
    index: usize,
    name: &str,
    args: &[W],
    depth: usize,
    stdin: &Stdin,
) -> bool {
    let cmd = Some(index);
    let inner: &[W] = match name {
        "env" => {
            let rest = skip_options(args, &["-u", "--unset", "-C", "--chdir", "-P"]);
            // `env -S 'cmd args'` splits a string into a command line.
            if let Some(pos) = args
                .iter()
                .position(|a| a.text == "-S" || a.text.starts_with("--split-string"))
            {
                let code: Vec<&str> = args.iter().skip(pos + 1).map(|a| a.text.as_str()).collect();
                code_string(
                    an,
                    index,
                    &code.join(" "),
                    depth,
                    args.iter().any(|a| a.from_network),
                );
                return true;
            }
            let mut rest = rest;
            while let Some((first, tail)) = rest.split_first() {
                match first.text.split_once('=') {
                    Some((var, _)) if !var.is_empty() && !var.contains('/') => {
                        assignment(an, cmd, var, first);
                        rest = tail;
                    }
                    _ => break,
                }
            }
            rest
        }
        "nice" => skip_options(args, &["-n", "--adjustment"]),
        "nohup" | "setsid" | "unbuffer" | "caffeinate" | "builtin" | "catchsegv" | "fakeroot" => {
            skip_options(args, &[])
        }
        "time" => skip_options(args, &["-f", "--format", "-o", "--output"]),
        "command" => {
            if args.iter().any(|a| a.text == "-v" || a.text == "-V") {
                return true;
            }
            skip_options(args, &[])
        }
        "stdbuf" => skip_options(args, &["-i", "-o", "-e"]),
        "ionice" => skip_options(
            args,
            &["-c", "-n", "-p", "-P", "-u", "--class", "--classdata"],
        ),
        "chrt" => {
            let rest = skip_options(args, &[]);
            rest.get(1..).unwrap_or(&[])
        }
        "taskset" => {
            let rest = skip_options(args, &[]);
            if args.iter().any(|a| a.text == "-p") {
                return true;
            }
            rest.get(1..).unwrap_or(&[])
        }
        "timeout" => {
            let rest = skip_options(args, &["-s", "--signal", "-k", "--kill-after"]);
            rest.get(1..).unwrap_or(&[])
        }
        "exec" => skip_options(args, &["-a"]),
        "strace" | "ltrace" => skip_options(args, &["-e", "-o", "-p", "-s", "-u", "-E", "-P"]),
        "flock" => {
            if let Some(pos) = args
                .iter()
                .position(|a| a.text == "-c" || a.text == "--command")
            {
                if let Some(code) = args.get(pos + 1) {
                    code_word(an, index, code, depth);
                }
                return true;
            }
            let rest = skip_options(args, &["-w", "--timeout", "-E", "--conflict-exit-code"]);
            rest.get(1..).unwrap_or(&[])
        }
        "watch" => {
            let rest = skip_options(args, &["-n", "--interval", "-d", "--differences"]);
            let code: Vec<&str> = rest.iter().map(|a| a.text.as_str()).collect();
            code_string(
                an,
                index,
                &code.join(" "),
                depth,
                rest.iter().any(|w| w.from_network),
            );
            return true;
        }
        "sudo" | "doas" | "pkexec" | "run0" => {
            an.find(
                cmd,
                Decision::Approve,
                "privilege.escalation",
                format!("{name} runs a command as another user (root by default)"),
                false,
            );
            let rest = skip_options(
                args,
                &[
                    "-u",
                    "-g",
                    "-h",
                    "-p",
                    "-C",
                    "-D",
                    "-r",
                    "-t",
                    "-U",
                    "-T",
                    "-R",
                    "--user",
                    "--group",
                    "--host",
                    "--prompt",
                    "--chdir",
                    "--role",
                    "--type",
                    "--other-user",
                    "--close-from",
                    "--command-timeout",
                ],
            );
            if rest.is_empty() {
                an.find(
                    cmd,
                    Decision::Approve,
                    "privilege.root_shell",
                    format!("{name} with no command opens a root shell"),
                    false,
                );
            }
            if (name == "sudo" || name == "doas")
                && args.iter().any(|a| a.text == "-s" || a.text == "-i")
                && !rest.is_empty()
            {
                let code: Vec<&str> = rest.iter().map(|a| a.text.as_str()).collect();
                code_string(an, index, &code.join(" "), depth, false);
                return true;
            }
            rest
        }
        "su" | "runuser" => {
            an.find(
                cmd,
                Decision::Approve,
                "privilege.escalation",
                format!("{name} runs commands as another user"),
                false,
            );
            if let Some(pos) = args
                .iter()
                .position(|a| a.text == "-c" || a.text == "--command")
            {
                if let Some(code) = args.get(pos + 1) {
                    code_word(an, index, code, depth);
                }
                return true;
            }
            if name == "runuser"
                && let Some(pos) = args.iter().position(|a| a.text == "--")
            {
                args.get(pos + 1..).unwrap_or(&[])
            } else {
                return true;
            }
        }
        "chroot" | "nsenter" | "unshare" | "systemd-run" | "firejail" | "bwrap" => {
            an.find(
                cmd,
                Decision::Approve,
                "privilege.namespace",
                format!("{name} runs a command in another root, namespace or unit"),
                false,
            );
            let rest = skip_options(
                args,
                &[
                    "-t",
                    "--target",
                    "-u",
                    "--unit",
                    "-p",
                    "--property",
                    "--userspec",
                    "--bind",
                    "--ro-bind",
                ],
            );
            if name == "chroot" {
                rest.get(1..).unwrap_or(&[])
            } else {
                rest
            }
        }
        "xargs" => {
            let rest = skip_options(
                args,
                &[
                    "-d",
                    "-E",
                    "-I",
                    "-L",
                    "-n",
                    "-P",
                    "-s",
                    "-a",
                    "--delimiter",
                    "--max-args",
                    "--max-procs",
                    "--arg-file",
                    "--max-lines",
                    "--replace",
                ],
            );
            let mut inner: Vec<W> = if rest.is_empty() {
                vec![W::lit("echo")]
            } else {
                rest.to_vec()
            };
            let replace = args
                .iter()
                .position(|a| a.text == "-I")
                .and_then(|p| args.get(p + 1))
                .map(|w| w.text.clone());
            let mut replaced = false;
            if let Some(token) = replace {
                for w in inner.iter_mut().skip(1) {
                    if w.text.contains(&token) {
                        let prefix = w.text.split(&token).next().unwrap_or("").to_string();
                        *w = W::unknown(&prefix);
                        replaced = true;
                    }
                }
            }
            if !replaced {
                // Arguments come from stdin.
                let mut extra = W::unknown("");
                extra.from_network = stdin.network;
                inner.push(extra);
            }
            judge_inner(an, index, &inner, depth, &Stdin::default(), name);
            return true;
        }
        "find" => {
            find(an, index, args, depth);
            return true;
        }
        "eval" => {
            let code: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
            let network = args.iter().any(|a| a.from_network);
            if args.iter().any(|a| !a.is_static()) {
                an.find(
                    cmd,
                    if network {
                        Decision::Deny
                    } else {
                        Decision::Approve
                    },
                    if network {
                        "network.exec_remote"
                    } else {
                        "obfuscation.dynamic_eval"
                    },
                    "eval runs code that is only known when the line runs",
                    false,
                );
            }
            code_string(an, index, &code.join(" "), depth, network);
            return true;
        }
        "trap" => {
            if let Some(code) = args.iter().find(|a| !is_option(a)) {
                code_word(an, index, code, depth);
            }
            return true;
        }
        "alias" => {
            for a in args {
                if let Some((_, value)) = a.text.split_once('=') {
                    code_string(an, index, value, depth, a.from_network);
                }
            }
            return true;
        }
        "ssh" => {
            ssh(an, index, args, depth);
            return true;
        }
        "script" => {
            if let Some(pos) = args
                .iter()
                .position(|a| a.text == "-c" || a.text == "--command")
            {
                if let Some(code) = args.get(pos + 1) {
                    code_word(an, index, code, depth);
                }
                return true;
            }
            return false;
        }
        _ => return false,
    };
    if inner.is_empty() {
        policy(an, index, name);
        return true;
    }
    judge_inner(an, index, inner, depth, stdin, name);
    true
}

/// Judges a word as shell code (the argument of `sh -c`, `su -c`, `trap`).
fn code_word(an: &mut Analyzer<'_>, index: usize, code: &W, depth: usize) {
    if !code.is_static() {
        let network = code.from_network;
        an.find(
            Some(index),
            if network {
                Decision::Deny
            } else {
                Decision::Approve
            },
            if network {
                "network.exec_remote"
            } else {
                "obfuscation.dynamic_code"
            },
            "runs shell code that is only known when the line runs",
            false,
        );
    }
    code_string(an, index, &code.text, depth, code.from_network);
}

fn code_string(an: &mut Analyzer<'_>, index: usize, code: &str, depth: usize, network: bool) {
    if network {
        an.find(
            Some(index),
            Decision::Deny,
            "network.exec_remote",
            "runs code read from the network",
            false,
        );
    }
    an.program(code, depth + 1);
}

fn shell(an: &mut Analyzer<'_>, index: usize, name: &str, args: &[W], depth: usize, stdin: &Stdin) {
    let cmd = Some(index);
    let mut i = 0;
    let mut code_next = false;
    let mut reads_stdin = false;
    while let Some(a) = args.get(i) {
        if code_next {
            code_word(an, index, a, depth);
            return;
        }
        if a.text == "--" {
            i += 1;
            break;
        }
        if a.text == "-o" || a.text == "+o" || a.text == "-O" || a.text == "+O" {
            i += 2;
            continue;
        }
        if is_option(a) || a.text.starts_with('+') {
            let flags = short_flags(a);
            if !a.text.starts_with("--") && flags.contains('c') {
                code_next = true;
            }
            if !a.text.starts_with("--") && flags.contains('s') {
                reads_stdin = true;
            }
            i += 1;
            continue;
        }
        break;
    }
    if code_next {
        an.find(
            cmd,
            Decision::Approve,
            "interpreter.missing_code",
            format!("{name} -c without code"),
            false,
        );
        return;
    }
    match args.get(i) {
        Some(script) if !reads_stdin => run_script(an, index, name, script),
        _ => stdin_code(an, index, name, None, depth, stdin),
    }
}

/// An interpreter runs a file: its content is not seen.
fn run_script(an: &mut Analyzer<'_>, index: usize, name: &str, script: &W) {
    an.ran_local_code = true;
    if script.from_network {
        an.find(
            Some(index),
            Decision::Deny,
            "network.pipe_to_interpreter",
            format!("{name} runs a script read from the network"),
            false,
        );
    }
}

/// Code on standard input: from a pipe, a here-document, or a terminal.
fn stdin_code(
    an: &mut Analyzer<'_>,
    index: usize,
    name: &str,
    lang: Option<Lang>,
    depth: usize,
    stdin: &Stdin,
) {
    let cmd = Some(index);
    if stdin.network {
        an.find(
            cmd,
            Decision::Deny,
            "network.pipe_to_interpreter",
            format!("data from the network is piped into the interpreter {name}"),
            false,
        );
        return;
    }
    match (&stdin.text, lang) {
        (Some(code), None) => {
            an.program(code, depth + 1);
        }
        (Some(code), Some(lang)) => super::inline::judge(an, index, lang, code, depth),
        (None, _) if stdin.unknown => an.find(
            cmd,
            Decision::Approve,
            "interpreter.stdin_code",
            format!("{name} runs code from its input, which is not known before it runs"),
            false,
        ),
        (None, _) => an.find(
            cmd,
            Decision::Approve,
            "interpreter.interactive",
            format!("{name} with no code starts an interactive interpreter"),
            false,
        ),
    }
}

fn interpreter(
    an: &mut Analyzer<'_>,
    index: usize,
    lang: Lang,
    name: &str,
    args: &[W],
    depth: usize,
    stdin: &Stdin,
) {
    let cmd = Some(index);
    let code_flags: &[&str] = match lang {
        Lang::Python => &["-c"],
        Lang::Perl | Lang::Ruby | Lang::Lua | Lang::R => &["-e", "-E"],
        Lang::Js => &["-e", "--eval", "-p", "--print"],
        Lang::Php => &["-r"],
        Lang::Awk => &[],
    };
    if lang == Lang::Awk {
        // The first operand is the program unless -f names a file.
        if args
            .iter()
            .any(|a| a.text == "-f" || a.text.starts_with("--file"))
        {
            an.ran_local_code = true;
            return;
        }
        let rest = skip_options(args, &["-F", "-v", "--assign", "--field-separator"]);
        if let Some(code) = rest.first() {
            if !code.is_static() {
                an.find(
                    cmd,
                    Decision::Approve,
                    "obfuscation.dynamic_code",
                    "the awk program is only known when the line runs",
                    false,
                );
            }
            super::inline::judge(an, index, lang, &code.text, depth);
        }
        return;
    }
    let mut i = 0;
    let mut saw_code = false;
    while let Some(a) = args.get(i) {
        if a.text == "--" || a.text == "-" {
            break;
        }
        if !is_option(a) {
            break;
        }
        let flags = short_flags(a);
        let is_code_flag = code_flags.contains(&a.text.as_str())
            || (!a.text.starts_with("--")
                && code_flags
                    .iter()
                    .any(|f| f.len() == 2 && flags.ends_with(&f[1..]) && flags.len() > 1));
        if is_code_flag {
            if let Some(code) = args.get(i + 1) {
                saw_code = true;
                if !code.is_static() {
                    let network = code.from_network;
                    an.find(
                        cmd,
                        if network {
                            Decision::Deny
                        } else {
                            Decision::Approve
                        },
                        if network {
                            "network.exec_remote"
                        } else {
                            "obfuscation.dynamic_code"
                        },
                        format!("{name} runs code that is only known when the line runs"),
                        false,
                    );
                }
                super::inline::judge(an, index, lang, &code.text, depth);
            }
            i += 2;
            continue;
        }
        if lang == Lang::Python && a.text == "-m" {
            if let Some(module) = args.get(i + 1) {
                python_module(an, index, &module.text, args.get(i + 2..).unwrap_or(&[]));
            }
            return;
        }
        if lang == Lang::Perl && !a.text.starts_with("--") && flags.contains('i') {
            // perl -pi -e: files edited in place are the operands after the code.
            for target in operands(args.get(i + 1..).unwrap_or(&[]))
                .into_iter()
                .skip(1)
            {
                write_target(an, cmd, target);
            }
        }
        i += 1;
    }
    if saw_code {
        return;
    }
    // `python3 --version`, `node -v`: the interpreter prints and exits, it reads no code.
    let informs = args.get(..i).unwrap_or(&[]).iter().any(|a| {
        matches!(a.text.as_str(), "--version" | "--help" | "-V" | "-h")
            || a.text == "-v" && matches!(lang, Lang::Js | Lang::Perl)
    });
    if informs && args.get(i).is_none() {
        return;
    }
    match args.get(i) {
        Some(script) if script.text != "-" => run_script(an, index, name, script),
        _ => stdin_code(an, index, name, Some(lang), depth, stdin),
    }
}

fn python_module(an: &mut Analyzer<'_>, index: usize, module: &str, rest: &[W]) {
    let cmd = Some(index);
    match module {
        "http.server" | "SimpleHTTPServer" | "smtpd" | "pyftpdlib" => an.find(
            cmd,
            Decision::Approve,
            "network.listen",
            format!("python -m {module} opens a network server"),
            false,
        ),
        "pip" => pip(an, index, rest),
        _ => {}
    }
}

fn pip(an: &mut Analyzer<'_>, index: usize, args: &[W]) {
    if let Some(sub) = operands(args).first()
        && ["install", "uninstall", "download", "wheel"].contains(&sub.text.as_str())
    {
        an.find(
            Some(index),
            Decision::Approve,
            "network.package_install",
            format!(
                "pip {} changes installed software from the network",
                sub.text
            ),
            true,
        );
    }
}

fn find(an: &mut Analyzer<'_>, index: usize, args: &[W], depth: usize) {
    let cmd = Some(index);
    let roots: Vec<&W> = args
        .iter()
        .take_while(|a| !a.text.starts_with('-') && a.text != "(" && a.text != "!")
        .collect();
    let root_prefix = match roots.as_slice() {
        [one] if one.is_static() => {
            let t = one.text.trim_end_matches('/');
            format!("{t}/")
        }
        [] => "./".to_string(),
        _ => String::new(),
    };
    for root in &roots {
        read_target(an, cmd, root);
    }
    let mut i = roots.len();
    while let Some(a) = args.get(i) {
        match a.text.as_str() {
            "-exec" | "-execdir" | "-ok" | "-okdir" => {
                let mut inner = Vec::new();
                let mut j = i + 1;
                while let Some(w) = args.get(j) {
                    if w.text == ";" || w.text == "+" {
                        break;
                    }
                    if w.text.contains("{}") {
                        inner.push(W::unknown(&root_prefix));
                    } else {
                        inner.push(w.clone());
                    }
                    j += 1;
                }
                judge_inner(an, index, &inner, depth, &Stdin::default(), "find");
                i = j + 1;
                continue;
            }
            "-delete" => {
                for root in &roots {
                    let place = an.place(root);
                    if let Some(why) = an.filter.layout.precious_tree(&place) {
                        an.find(
                            cmd,
                            Decision::Deny,
                            "destructive.rm_recursive_system",
                            format!(
                                "find -delete removes everything under {}: {why}",
                                place.display()
                            ),
                            false,
                        );
                    }
                    let mut under = W::unknown(&root_prefix);
                    under.dynamic = false;
                    write_target(an, cmd, &under);
                }
            }
            "-fprint" | "-fprint0" | "-fprintf" | "-fls" => {
                if let Some(target) = args.get(i + 1) {
                    write_target(an, cmd, target);
                }
            }
            _ => {
                if !a.is_static() && !a.text.starts_with('-') {
                    // A dynamic pattern or name: harmless for find itself.
                }
            }
        }
        i += 1;
    }
    policy(an, index, "find");
}

fn ssh(an: &mut Analyzer<'_>, index: usize, args: &[W], depth: usize) {
    let cmd = Some(index);
    let with_value = [
        "-p", "-i", "-l", "-o", "-F", "-J", "-L", "-R", "-D", "-b", "-c", "-E", "-e", "-I", "-m",
        "-O", "-Q", "-S", "-W", "-w", "-B",
    ];
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a.text == "-o"
            && let Some(option) = args.get(i + 1)
        {
            let lower = option.text.to_ascii_lowercase();
            if lower.starts_with("proxycommand")
                || lower.starts_with("localcommand")
                || lower.starts_with("permitlocalcommand")
            {
                an.find(
                    cmd,
                    Decision::Approve,
                    "network.ssh_local_command",
                    "an ssh option runs a local command",
                    false,
                );
                if let Some((_, code)) = option.text.split_once(['=', ' ']) {
                    an.program(code, depth + 1);
                }
            }
        }
        if !is_option(a) {
            break;
        }
        i += if with_value.contains(&a.text.as_str()) {
            2
        } else {
            1
        };
    }
    an.network_reads += 1;
    let Some(host) = args.get(i) else {
        return;
    };
    host_check(an, index, "ssh", host, true);
    let remote = args.get(i + 1..).unwrap_or(&[]);
    if remote.is_empty() {
        an.find(
            cmd,
            Decision::Approve,
            "network.remote_shell",
            "ssh opens an interactive shell on another machine",
            true,
        );
        return;
    }
    let code: Vec<&str> = remote.iter().map(|w| w.text.as_str()).collect();
    code_string(an, index, &code.join(" "), depth, false);
    policy(an, index, "ssh");
}

// -------------------------------------------------------------------------------------
// Programs with rules of their own.

// Each arm owns its program: a condition inside an arm is that program's rule, and must
// not become a guard that lets the program fall through to the arms after it.
#[allow(clippy::collapsible_match)]
fn program_rules(an: &mut Analyzer<'_>, index: usize, name: &str, args: &[W], depth: usize) {
    let cmd = Some(index);
    let ops = operands(args);
    let first_op = ops.first().map(|w| w.text.as_str()).unwrap_or("");
    let deny = |an: &mut Analyzer<'_>, rule: &str, reason: String| {
        an.find(cmd, Decision::Deny, rule, reason, false)
    };
    let approve = |an: &mut Analyzer<'_>, rule: &str, reason: String| {
        an.find(cmd, Decision::Approve, rule, reason, true)
    };
    if args.iter().any(|a| a.text == "--no-preserve-root") {
        deny(
            an,
            "destructive.no_preserve_root",
            format!("{name} --no-preserve-root removes the protection of /"),
        );
    }
    match name {
        "rm" | "unlink" | "rmdir" | "srm" | "shred" => {
            let recursive =
                name == "rm" && (has_flag(args, 'r', &["--recursive"]) || has_flag(args, 'R', &[]));
            for target in &ops {
                let place = an.place(target);
                if recursive && let Some(why) = an.filter.layout.precious_tree(&place) {
                    let rule = if why.contains("home") {
                        "destructive.rm_recursive_home"
                    } else {
                        "destructive.rm_recursive_system"
                    };
                    deny(
                        an,
                        rule,
                        format!("recursive delete of {}: {why}", place.display()),
                    );
                    continue;
                }
                if recursive
                    && place.root == Root::Relative
                    && place.comps.first().is_none_or(|c| c == "..")
                {
                    // `rm -rf .` or `rm -rf ..` where the working directory is not known.
                    an.find(
                        cmd,
                        Decision::Approve,
                        "destructive.rm_recursive_unresolved",
                        format!(
                            "recursive delete of {} in a working directory that is not known",
                            target.text
                        ),
                        false,
                    );
                    continue;
                }
                if name == "shred" && is_disk_device(&place) {
                    deny(
                        an,
                        "destructive.wipe_device",
                        format!("shred overwrites the disk {}", place.display()),
                    );
                    continue;
                }
                if recursive && target.dynamic {
                    an.find(
                        cmd,
                        Decision::Approve,
                        "destructive.rm_recursive_unresolved",
                        format!(
                            "recursive delete of a path only known when the line runs: {}",
                            target.text
                        ),
                        false,
                    );
                    continue;
                }
                write_target(an, cmd, target);
                if recursive && an.filter.layout.contains_secret(&place) {
                    deny(
                        an,
                        "destructive.rm_recursive_secrets",
                        format!(
                            "recursive delete of {}, which holds keys or credentials",
                            place.display()
                        ),
                    );
                }
            }
        }
        "mv" => {
            for target in &ops {
                let place = an.place(target);
                if let Some(why) = an.filter.layout.precious_tree(&place) {
                    deny(
                        an,
                        "destructive.move_system",
                        format!("moves {}: {why}", place.display()),
                    );
                } else {
                    write_target(an, cmd, target);
                }
            }
        }
        "cp" | "install" | "ln" | "rsync" | "scp" => {
            if let Some(dest) =
                target_dir(args).or_else(|| ops.last().copied().filter(|_| ops.len() >= 2))
                && (!(name == "rsync" || name == "scp") || !remote_spec(&dest.text))
            {
                write_target(an, cmd, dest);
            }
            if has_flag(args, 'r', &["--recursive"])
                || has_flag(args, 'R', &[])
                || has_flag(args, 'a', &["--archive"])
            {
                recursive_read(an, index, name, &ops);
            }
        }
        "tee" | "touch" | "mkdir" | "truncate" | "mkfifo" | "mknod" => {
            for target in &ops {
                if name == "truncate" && target.text.chars().all(|c| c.is_ascii_digit()) {
                    continue;
                }
                write_target(an, cmd, target);
            }
        }
        "sed" => {
            if args.iter().any(|a| {
                a.text.starts_with("-i")
                    || a.text.starts_with("--in-place")
                    || (is_option(a) && !a.text.starts_with("--") && short_flags(a).contains('i'))
            }) {
                let explicit_script = args.iter().any(|a| {
                    a.text == "-e" || a.text == "-f" || a.text.starts_with("--expression")
                });
                for target in ops.iter().skip(if explicit_script { 0 } else { 1 }) {
                    write_target(an, cmd, target);
                }
            }
            // The scripts are the values of -e/--expression, else the first operand.
            let mut scripts: Vec<&str> = Vec::new();
            for (i, a) in args.iter().enumerate() {
                if a.text == "-e" || a.text == "--expression" {
                    scripts.extend(args.get(i + 1).map(|w| w.text.as_str()));
                } else if let Some(s) = a.text.strip_prefix("--expression=") {
                    scripts.push(s);
                }
            }
            if scripts.is_empty() {
                scripts.extend(ops.first().map(|w| w.text.as_str()));
            }
            if scripts.iter().any(|s| sed_runs_commands(s)) {
                approve(
                    an,
                    "interpreter.sed_exec",
                    "the sed script runs commands or writes files".into(),
                );
            }
        }
        "dd" => {
            for a in args {
                if let Some(of) = a.text.strip_prefix("of=") {
                    let w = W {
                        text: of.to_string(),
                        wild_at: a.wild_at.map(|p| p.saturating_sub(3)),
                        ..a.clone()
                    };
                    write_target(an, cmd, &w);
                }
                if let Some(input) = a.text.strip_prefix("if=") {
                    let w = W {
                        text: input.to_string(),
                        wild_at: a.wild_at.map(|p| p.saturating_sub(3)),
                        ..a.clone()
                    };
                    let place = an.place(&w);
                    if is_disk_device(&place) {
                        deny(
                            an,
                            "access.raw_disk",
                            format!("dd reads the raw disk {}", place.display()),
                        );
                    }
                }
            }
        }
        _ if name.starts_with("mkfs")
            || [
                "mke2fs",
                "mkswap",
                "wipefs",
                "blkdiscard",
                "mkdosfs",
                "mkntfs",
            ]
            .contains(&name) =>
        {
            deny(
                an,
                "destructive.format_disk",
                format!("{name} formats or wipes a disk or partition"),
            );
        }
        "fdisk" | "sfdisk" | "parted" | "gdisk" | "sgdisk" | "cfdisk" | "cgdisk" => {
            if has_flag(args, 'l', &["--list"]) && ops.is_empty()
                || args.iter().any(|a| a.text == "print" || a.text == "-l")
            {
                approve(
                    an,
                    "system.disk_inspect",
                    format!("{name} inspects the partition table"),
                );
            } else {
                deny(
                    an,
                    "destructive.partition_disk",
                    format!("{name} changes a partition table"),
                );
            }
        }
        "chmod" | "chown" | "chgrp" | "chattr" | "setfacl" => {
            let recursive = has_flag(args, 'R', &["--recursive"]);
            let mode_first = name == "chmod" || name == "chown" || name == "chgrp";
            for (i, target) in ops.iter().enumerate() {
                if mode_first && i == 0 {
                    if name == "chmod"
                        && (target.text.contains('s') && target.text.contains('+')
                            || target.text.len() == 4 && target.text.starts_with(['4', '2', '6']))
                    {
                        approve(
                            an,
                            "privilege.setuid",
                            format!(
                                "chmod {} makes a program run with its owner's rights",
                                target.text
                            ),
                        );
                    }
                    if name == "chmod" && target.text.contains('x') {
                        an.ran_local_code |= an.fetched_to_file;
                    }
                    continue;
                }
                let place = an.place(target);
                if recursive && let Some(why) = an.filter.layout.precious_tree(&place) {
                    deny(
                        an,
                        "destructive.chmod_recursive_system",
                        format!("{name} -R on {}: {why}", place.display()),
                    );
                    continue;
                }
                write_target(an, cmd, target);
            }
        }
        "shutdown" | "reboot" | "halt" | "poweroff" => {
            deny(
                an,
                "destructive.power",
                format!("{name} stops or restarts the machine"),
            );
        }
        "init" | "telinit" => {
            if ["0", "6", "1", "s", "S"].contains(&first_op) {
                deny(
                    an,
                    "destructive.power",
                    format!("{name} {first_op} halts, reboots or isolates the machine"),
                );
            }
        }
        "systemctl" | "loginctl" => {
            let sub = first_op;
            if [
                "poweroff",
                "reboot",
                "halt",
                "kexec",
                "suspend",
                "hibernate",
                "hybrid-sleep",
                "rescue",
                "emergency",
                "isolate",
                "soft-reboot",
                "suspend-then-hibernate",
            ]
            .contains(&sub)
            {
                deny(
                    an,
                    "destructive.power",
                    format!("{name} {sub} stops, suspends or isolates the machine"),
                );
            } else if ["stop", "disable", "mask", "kill"].contains(&sub) {
                deny(
                    an,
                    "destructive.disable_service",
                    format!("{name} {sub} stops or disables a service"),
                );
            } else if ![
                "status",
                "show",
                "cat",
                "list-units",
                "list-unit-files",
                "is-active",
                "is-enabled",
                "is-failed",
                "list-timers",
                "list-sockets",
                "list-dependencies",
                "help",
                "--version",
                "get-default",
                "",
            ]
            .contains(&sub)
            {
                approve(
                    an,
                    "system.service_change",
                    format!("{name} {sub} changes services"),
                );
            }
        }
        "service" => {
            let action = ops.get(1).map(|w| w.text.as_str()).unwrap_or("");
            if ["stop", "disable"].contains(&action) {
                deny(
                    an,
                    "destructive.disable_service",
                    format!("service {first_op} {action} stops a service"),
                );
            } else if !["status", ""].contains(&action) || first_op == "--status-all" {
                approve(
                    an,
                    "system.service_change",
                    format!("service {first_op} {action} changes a service"),
                );
            }
        }
        "update-rc.d" | "chkconfig" | "rc-update" => {
            if args
                .iter()
                .any(|a| ["disable", "remove", "off", "del", "delete"].contains(&a.text.as_str()))
            {
                deny(
                    an,
                    "destructive.disable_service",
                    format!("{name} disables a service"),
                );
            } else {
                approve(
                    an,
                    "system.service_change",
                    format!("{name} changes services"),
                );
            }
        }
        "kill" | "pkill" | "killall" | "killall5" | "skill" | "slay" => {
            let targets: Vec<&str> = args
                .iter()
                .map(|a| a.text.as_str())
                .filter(|t| !t.starts_with('-') || *t == "-1")
                .collect();
            let all = name == "killall5"
                || name == "kill" && (targets.contains(&"-1") || targets.contains(&"1"))
                || (name == "pkill" || name == "killall")
                    && args.iter().any(|a| {
                        a.text == "."
                            || a.text == ".*"
                            || a.text == "-u" && args.iter().any(|b| b.text == "root")
                    });
            if all {
                deny(
                    an,
                    "destructive.kill_all",
                    format!("{name} signals every process (or init)"),
                );
            } else if name != "kill"
                || targets
                    .iter()
                    .any(|t| t.chars().all(|c| c.is_ascii_digit()))
            {
                approve(
                    an,
                    "process.kill",
                    format!("{name} ends processes that may not belong to the task"),
                );
            }
        }
        "iptables" | "ip6tables" | "iptables-legacy" | "iptables-nft" | "ip6tables-legacy"
        | "ip6tables-nft" | "ebtables" | "arptables" => {
            let flush = args.iter().any(|a| ["-F", "--flush", "-X", "--delete-chain"].contains(&a.text.as_str()))
                || args.windows(3).any(|w| matches!(w, [p, _, t] if (p.text == "-P" || p.text == "--policy") && t.text == "ACCEPT"));
            if flush {
                deny(
                    an,
                    "destructive.firewall_flush",
                    format!("{name} flushes firewall rules or opens the default policy"),
                );
            } else if !args
                .iter()
                .any(|a| ["-L", "--list", "-S", "--list-rules"].contains(&a.text.as_str()))
            {
                approve(
                    an,
                    "system.firewall_change",
                    format!("{name} changes the firewall"),
                );
            }
        }
        "nft" => {
            let words: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
            let joined = words.join(" ");
            if joined.contains("flush")
                || joined.contains("delete table")
                || joined.contains("destroy")
            {
                deny(
                    an,
                    "destructive.firewall_flush",
                    "nft flushes or deletes firewall rules".into(),
                );
            } else if !joined.starts_with("list")
                && !joined.contains(" list ")
                && first_op != "list"
            {
                approve(
                    an,
                    "system.firewall_change",
                    "nft changes the firewall".into(),
                );
            }
        }
        "ufw" => {
            if ["disable", "reset"].contains(&first_op) {
                deny(
                    an,
                    "destructive.firewall_flush",
                    format!("ufw {first_op} turns the firewall off"),
                );
            } else if first_op != "status" {
                approve(
                    an,
                    "system.firewall_change",
                    format!("ufw {first_op} changes the firewall"),
                );
            }
        }
        "firewall-cmd" => {
            if args
                .iter()
                .any(|a| a.text.contains("trusted") || a.text == "--panic-off")
            {
                deny(
                    an,
                    "destructive.firewall_flush",
                    "firewall-cmd opens the firewall".into(),
                );
            } else if !args.iter().all(|a| {
                a.text.starts_with("--list") || a.text.starts_with("--get") || a.text == "--state"
            }) {
                approve(
                    an,
                    "system.firewall_change",
                    "firewall-cmd changes the firewall".into(),
                );
            }
        }
        "crontab" => {
            if !args
                .iter()
                .all(|a| a.text == "-l" || a.text == "-u" || a.text == "--list")
                || args.is_empty()
            {
                approve(
                    an,
                    "persistence.cron",
                    "crontab changes scheduled commands".into(),
                );
            }
        }
        "at" | "batch" | "atrm" => {
            approve(an, "persistence.cron", format!("{name} schedules commands"))
        }
        "passwd" | "useradd" | "usermod" | "userdel" | "adduser" | "deluser" | "groupadd"
        | "groupdel" | "groupmod" | "gpasswd" | "chpasswd" | "visudo" | "chsh" | "chfn"
        | "newgrp" | "vipw" => {
            approve(
                an,
                "system.accounts",
                format!("{name} changes user accounts or groups"),
            );
        }
        "mount" | "umount" | "swapon" | "swapoff" | "insmod" | "rmmod" | "modprobe" | "kexec"
        | "setcap" | "hostnamectl" | "timedatectl" | "localectl" | "losetup" | "cryptsetup"
        | "lvremove" | "vgremove" | "pvremove" | "mdadm" | "tune2fs" | "e2fsck" | "fsck"
        | "debugfs" | "grub-install" | "update-grub" | "efibootmgr" | "sysctl" => {
            if name == "mount" && args.is_empty()
                || name == "sysctl"
                    && !args
                        .iter()
                        .any(|a| a.text == "-w" || a.text.contains('=') || a.text == "-p")
                || name == "swapon" && args.iter().all(|a| a.text == "--show" || a.text == "-s")
            {
                return;
            }
            let rule = if ["debugfs"].contains(&name) {
                "access.raw_disk"
            } else {
                "system.configuration"
            };
            approve(
                an,
                rule,
                format!("{name} changes the system's configuration, disks or kernel"),
            );
        }
        "ip" => {
            if args.iter().any(|a| {
                [
                    "add", "del", "delete", "set", "flush", "change", "replace", "append",
                ]
                .contains(&a.text.as_str())
            }) {
                approve(
                    an,
                    "system.network_config",
                    "ip changes the network configuration".into(),
                );
            }
        }
        "ifconfig" | "route" | "iwconfig" | "nmcli" | "wpa_cli" => {
            if args.len() > 1
                && !(name == "nmcli"
                    && ["show", "status", "list"]
                        .iter()
                        .any(|w| args.iter().any(|a| a.text == *w)))
            {
                approve(
                    an,
                    "system.network_config",
                    format!("{name} changes the network configuration"),
                );
            }
        }
        "history" => {
            if args
                .iter()
                .any(|a| a.text == "-c" || a.text == "-w" || a.text == "-d")
            {
                approve(
                    an,
                    "evasion.history",
                    "history changes the shell history".into(),
                );
            }
        }
        "git" => git(an, index, args),
        "pip" | "pip3" | "pipx" | "uv" => {
            if name == "uv" {
                if ops.first().is_some_and(|w| w.text == "pip") {
                    pip(an, index, args.get(1..).unwrap_or(&[]));
                } else if ops
                    .first()
                    .is_some_and(|w| ["add", "tool", "sync"].contains(&w.text.as_str()))
                {
                    approve(
                        an,
                        "network.package_install",
                        format!("uv {first_op} installs packages from the network"),
                    );
                }
            } else if name == "pipx" {
                if ["install", "run", "inject", "upgrade"].contains(&first_op) {
                    approve(
                        an,
                        "network.package_install",
                        format!("pipx {first_op} installs packages from the network"),
                    );
                }
            } else {
                pip(an, index, args);
            }
        }
        "npm" | "pnpm" | "yarn" | "bun" => {
            if [
                "i",
                "install",
                "ci",
                "add",
                "update",
                "upgrade",
                "uninstall",
                "remove",
                "rm",
                "dlx",
                "exec",
                "x",
                "link",
                "publish",
                "global",
            ]
            .contains(&first_op)
                || (name == "yarn" && args.is_empty())
            {
                approve(
                    an,
                    "network.package_install",
                    format!(
                        "{name} {first_op} installs or runs packages from the network (their install scripts run)"
                    ),
                );
            }
        }
        "npx" | "pnpx" | "bunx" => approve(
            an,
            "network.package_install",
            format!("{name} downloads and runs a package"),
        ),
        "cargo" | "go" | "gem" | "composer" | "conda" | "mamba" | "brew" | "snap" | "flatpak"
        | "opam" | "rustup" | "luarocks" | "cpan" | "cpanm" => {
            if [
                "install",
                "get",
                "add",
                "update",
                "upgrade",
                "remove",
                "uninstall",
                "publish",
                "create",
                "self",
                "toolchain",
                "refresh",
            ]
            .contains(&first_op)
                || ["cpan", "cpanm"].contains(&name) && !ops.is_empty()
            {
                approve(
                    an,
                    "network.package_install",
                    format!("{name} {first_op} installs or removes software"),
                );
            }
        }
        "apt" | "apt-get" | "aptitude" | "dnf" | "yum" | "apk" | "pacman" | "zypper" | "dpkg"
        | "rpm" | "emerge" | "nix-env" => {
            let readonly = [
                "list", "search", "show", "policy", "info", "-l", "-L", "-s", "-q", "-Q", "-Ss",
                "-Qi", "-Si", "-qa", "--list", "--search", "--info", "-S", "madison", "depends",
                "rdepends",
            ]
            .contains(&first_op)
                || ["search", "show", "list", "info", "query"].contains(&first_op)
                || args.first().is_some_and(|a| {
                    [
                        "-l", "-L", "-s", "-S", "-q", "-Q", "-Qi", "-Ss", "-Si", "-Qs", "--list",
                        "--status", "-qa", "-qi",
                    ]
                    .contains(&a.text.as_str())
                });
            if !readonly && !args.is_empty() {
                approve(
                    an,
                    "system.package_change",
                    format!("{name} installs, removes or upgrades system packages"),
                );
            }
        }
        "docker" | "podman" | "kubectl" | "nerdctl" | "lxc" | "virsh" => {
            if [
                "run", "exec", "rm", "rmi", "kill", "stop", "delete", "apply", "create", "cp",
                "prune", "system", "build", "push", "pull", "start", "restart", "destroy",
                "undefine", "load", "import", "volume", "network", "compose",
            ]
            .contains(&first_op)
            {
                approve(
                    an,
                    "system.containers",
                    format!("{name} {first_op} changes containers or runs code in them"),
                );
            }
        }
        "tar" | "bsdtar" => {
            let mode = args
                .first()
                .map(|a| a.text.trim_start_matches('-').to_string())
                .unwrap_or_default();
            let extract = args
                .iter()
                .any(|a| a.text == "--extract" || a.text == "--get")
                || (!mode.starts_with('-') && mode.contains('x') && !mode.contains("--"));
            if extract {
                let dir = args
                    .iter()
                    .position(|a| a.text == "-C" || a.text == "--directory")
                    .and_then(|p| args.get(p + 1));
                if let Some(d) = dir {
                    write_target(an, cmd, d);
                }
                for a in args {
                    if let Some(d) = a.text.strip_prefix("--directory=") {
                        write_target(an, cmd, &W::lit(d));
                    }
                }
            }
            if args.iter().any(|a| {
                a.text.starts_with("--to-command")
                    || a.text.starts_with("--checkpoint-action")
                    || a.text.starts_with("--use-compress-program")
                    || a.text == "-I"
                    || a.text.starts_with("--info-script")
                    || a.text.starts_with("--new-volume-script")
                    || a.text == "-F"
            }) {
                approve(
                    an,
                    "interpreter.tar_exec",
                    "tar runs a command given in its options".into(),
                );
            }
            let create = mode.contains('c') || args.iter().any(|a| a.text == "--create");
            if create {
                recursive_read(an, index, name, &ops);
            }
        }
        "zip" | "7z" | "7za" | "rar" => {
            if has_flag(args, 'r', &["--recurse-paths"]) || name != "zip" {
                recursive_read(an, index, name, &ops);
            }
            if args
                .iter()
                .any(|a| a.text == "-TT" || a.text.starts_with("--unzip-command"))
            {
                approve(
                    an,
                    "interpreter.zip_exec",
                    "zip runs a command given in its options".into(),
                );
            }
        }
        "unzip" => {
            if let Some(d) = args
                .iter()
                .position(|a| a.text == "-d")
                .and_then(|p| args.get(p + 1))
            {
                write_target(an, cmd, d);
            }
        }
        "grep" | "egrep" | "fgrep" | "rg" | "ag" | "ack" => {
            if name == "rg"
                || name == "ag"
                || has_flag(args, 'r', &["--recursive"])
                || has_flag(args, 'R', &["--dereference-recursive"])
            {
                recursive_read(an, index, name, &ops);
            }
        }
        "source" | "." => {
            if let Some(file) = ops.first() {
                run_script(an, index, name, file);
            }
        }
        "exec" => {}
        "nc" | "ncat" | "netcat" => {
            if args.iter().any(|a| {
                a.text == "-e"
                    || a.text == "-c"
                    || a.text == "--exec"
                    || a.text == "--sh-exec"
                    || a.text == "--lua-exec"
                    || (is_option(a) && !a.text.starts_with("--") && short_flags(a).contains('e'))
            }) {
                deny(
                    an,
                    "network.reverse_shell",
                    format!("{name} connects a shell to the network"),
                );
            } else if has_flag(args, 'l', &["--listen"]) {
                an.find(
                    cmd,
                    Decision::Approve,
                    "network.listen",
                    format!("{name} listens for network connections"),
                    true,
                );
            }
        }
        "socat" => {
            let lower: Vec<String> = args.iter().map(|a| a.text.to_ascii_lowercase()).collect();
            if lower.iter().any(|a| {
                a.starts_with("exec:")
                    || a.starts_with("system:")
                    || a.contains(",exec")
                    || a.starts_with("exec,")
            }) {
                deny(
                    an,
                    "network.reverse_shell",
                    "socat connects a program to the network".into(),
                );
            } else if lower.iter().any(|a| a.contains("listen")) {
                an.find(
                    cmd,
                    Decision::Approve,
                    "network.listen",
                    "socat listens for network connections",
                    true,
                );
            }
        }
        "nmap" | "masscan" | "zmap" | "hping3" | "arpspoof" | "ettercap" | "tcpdump" | "tshark"
        | "wireshark" | "aircrack-ng" => {
            approve(
                an,
                "network.scan",
                format!("{name} scans or captures network traffic"),
            );
        }
        "openssl" => {
            if ["s_client", "s_server"].contains(&first_op) {
                an.network_reads += 1;
                approve(
                    an,
                    "network.host_not_allowed",
                    format!("openssl {first_op} opens a network connection"),
                );
            }
        }
        "base64" | "xxd" | "openssl-enc" => {}
        _ => {}
    }
    let _ = depth;
}

fn target_dir(args: &[W]) -> Option<&W> {
    if let Some(pos) = args
        .iter()
        .position(|a| a.text == "-t" || a.text == "--target-directory")
    {
        return args.get(pos + 1);
    }
    None
}

fn remote_spec(text: &str) -> bool {
    text.contains("://")
        || text
            .split_once(':')
            .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'))
}

/// Whether a sed script runs commands or writes files: the `e` command, `w`/`W`, or an
/// `s` command with the `e` or `w` flag, after any address (`1e cmd`, `/x/,$w out`).
/// The script is read command by command as sed reads it; anything this reader does not
/// know counts as running commands.
fn sed_runs_commands(script: &str) -> bool {
    let mut rest = script;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ';' | '{' | '}'));
        // Addresses: line numbers, `$`, `/regex/`, `\cregexc`, `first~step`, `,`, `!`.
        loop {
            let before = rest.len();
            rest = rest.trim_start_matches(|c: char| {
                c.is_ascii_digit() || matches!(c, '$' | ',' | '!' | '~' | '+' | ' ' | '\t')
            });
            if let Some(regex) = rest.strip_prefix('/') {
                rest = skip_delimited(regex, '/');
            } else if let Some(custom) = rest.strip_prefix('\\') {
                let mut chars = custom.chars();
                if let Some(delim) = chars.next() {
                    rest = skip_delimited(chars.as_str(), delim);
                }
            }
            if rest.len() == before {
                break;
            }
        }
        let mut chars = rest.chars();
        let Some(command) = chars.next() else {
            return false;
        };
        rest = chars.as_str();
        match command {
            'e' | 'w' | 'W' => return true,
            's' | 'y' => {
                let Some(delim) = rest.chars().next() else {
                    return false;
                };
                if delim == '\n' || delim == '\\' {
                    return true;
                }
                let body = rest.get(delim.len_utf8()..).unwrap_or("");
                rest = skip_delimited(skip_delimited(body, delim), delim);
                let flags: String = rest
                    .chars()
                    .take_while(|c| !matches!(c, ';' | '\n' | '}'))
                    .collect();
                if command == 's' && (flags.contains('e') || flags.contains('w')) {
                    return true;
                }
                rest = rest.get(flags.len()..).unwrap_or("");
            }
            // Text, file names and labels run to the end of the line.
            'a' | 'i' | 'c' | 'r' | 'R' | 'b' | 't' | 'T' | ':' | '#' => {
                rest = rest.split_once('\n').map_or("", |(_, next)| next);
            }
            'q' | 'Q' | 'l' | 'L' => {
                rest = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
            }
            'p' | 'P' | 'd' | 'D' | 'n' | 'N' | 'g' | 'G' | 'h' | 'H' | 'x' | '=' | 'z' | 'F' => {}
            _ => return true,
        }
    }
}

/// The text after the next unescaped `delim`; empty when there is none.
fn skip_delimited(text: &str, delim: char) -> &str {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == delim {
            return text.get(i + c.len_utf8()..).unwrap_or("");
        }
    }
    ""
}

/// A recursive read of a directory that holds secrets (`tar czf x ~`).
fn recursive_read(an: &mut Analyzer<'_>, index: usize, name: &str, ops: &[&W]) {
    for op in ops {
        let place = an.place(op);
        if an.filter.layout.contains_secret(&place) {
            an.find(
                Some(index),
                Decision::Approve,
                "access.recursive_sensitive",
                format!(
                    "{name} reads all of {}, which holds keys or credentials",
                    place.display()
                ),
                true,
            );
        }
    }
}

fn git(an: &mut Analyzer<'_>, index: usize, args: &[W]) {
    let cmd = Some(index);
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a.text == "-c" {
            an.find(
                cmd,
                Decision::Approve,
                "vcs.config",
                "git -c sets configuration (it can name programs to run)",
                true,
            );
            i += 2;
            continue;
        }
        if a.text == "-C"
            || a.text == "--git-dir"
            || a.text == "--work-tree"
            || a.text == "--namespace"
        {
            i += 2;
            continue;
        }
        if !is_option(a) {
            break;
        }
        i += 1;
    }
    let Some(sub) = args.get(i) else { return };
    let rest = args.get(i + 1..).unwrap_or(&[]);
    let approve = |an: &mut Analyzer<'_>, rule: &str, reason: String| {
        an.find(cmd, Decision::Approve, rule, reason, true)
    };
    match sub.text.as_str() {
        "clone" | "fetch" | "pull" | "ls-remote" | "submodule" | "archive" => {
            an.network_reads += 1;
            let urls: Vec<&W> = operands(rest)
                .into_iter()
                .filter(|w| w.text.contains("://") || w.text.contains('@') || w.text.contains(':'))
                .collect();
            if sub.text == "clone" && !urls.is_empty() {
                for url in urls {
                    host_check(an, index, "git", url, false);
                }
            } else if sub.text != "archive" || rest.iter().any(|a| a.text.starts_with("--remote")) {
                approve(
                    an,
                    "network.git_remote",
                    format!(
                        "git {} talks to a remote whose host is not on the line",
                        sub.text
                    ),
                );
            }
        }
        "push" => approve(
            an,
            "network.git_push",
            "git push sends commits to a remote".into(),
        ),
        "reset"
            if rest
                .iter()
                .any(|a| a.text == "--hard" || a.text == "--merge") =>
        {
            approve(
                an,
                "vcs.discard_work",
                "git reset --hard throws away uncommitted work".into(),
            )
        }
        "clean"
            if rest
                .iter()
                .any(|a| is_option(a) && (short_flags(a).contains('f') || a.text == "--force")) =>
        {
            approve(
                an,
                "vcs.discard_work",
                "git clean -f deletes untracked files".into(),
            )
        }
        "checkout" | "restore"
            if rest.iter().any(|a| {
                a.text == "." || a.text == "--" || a.text == "-f" || a.text == "--force"
            }) =>
        {
            approve(
                an,
                "vcs.discard_work",
                format!("git {} may throw away uncommitted changes", sub.text),
            )
        }
        "stash"
            if rest
                .first()
                .is_some_and(|a| a.text == "drop" || a.text == "clear") =>
        {
            approve(
                an,
                "vcs.discard_work",
                "git stash drop/clear deletes stashed work".into(),
            )
        }
        "branch"
            if rest.iter().any(|a| {
                a.text == "-D" || a.text == "--delete" && rest.iter().any(|b| b.text == "--force")
            }) =>
        {
            approve(
                an,
                "vcs.discard_work",
                "git branch -D deletes a branch that may not be merged".into(),
            )
        }
        "filter-branch" | "filter-repo" | "gc" | "reflog" | "update-ref" | "replace" => approve(
            an,
            "vcs.discard_work",
            format!("git {} rewrites or prunes history", sub.text),
        ),
        "config" => {
            let read_only = rest.iter().any(|a| {
                [
                    "--get",
                    "--get-all",
                    "--list",
                    "-l",
                    "--get-regexp",
                    "--show-origin",
                ]
                .contains(&a.text.as_str())
            }) || operands(rest).len() <= 1
                && !rest
                    .iter()
                    .any(|a| a.text == "--unset" || a.text == "--add" || a.text == "--replace-all");
            if !read_only {
                approve(
                    an,
                    "vcs.config",
                    "git config changes settings (hooks, pagers and aliases can run programs)"
                        .into(),
                );
            }
        }
        "daemon" | "instaweb" => approve(
            an,
            "network.listen",
            format!("git {} serves the repository on the network", sub.text),
        ),
        "send-email" | "request-pull" => approve(
            an,
            "network.git_push",
            format!("git {} sends data out", sub.text),
        ),
        _ => {}
    }
}

// -------------------------------------------------------------------------------------
// Network.

/// Judges the hosts a network client would reach.
fn network(an: &mut Analyzer<'_>, index: usize, name: &str, args: &[W]) {
    if !NETWORK_CLIENTS.contains(&name) {
        return;
    }
    if NETWORK_READERS.contains(&name) {
        an.network_reads += 1;
    }
    let with_value: &[&str] = match name {
        "curl" => &[
            "-o",
            "--output",
            "-H",
            "--header",
            "-d",
            "--data",
            "--data-raw",
            "--data-binary",
            "--data-urlencode",
            "-X",
            "--request",
            "-u",
            "--user",
            "-A",
            "--user-agent",
            "-e",
            "--referer",
            "-b",
            "--cookie",
            "-c",
            "--cookie-jar",
            "-T",
            "--upload-file",
            "-F",
            "--form",
            "-m",
            "--max-time",
            "--connect-timeout",
            "-w",
            "--write-out",
            "-r",
            "--range",
            "-K",
            "--config",
            "--cacert",
            "--cert",
            "--key",
            "-E",
            "--retry",
            "-Y",
            "-y",
            "-z",
            "--limit-rate",
            "--resolve",
            "--proxy",
            "-x",
            "--output-dir",
            "-D",
            "--dump-header",
            "--max-redirs",
            "-C",
            "--interface",
        ],
        "wget" => &[
            "-O",
            "--output-document",
            "-o",
            "--output-file",
            "-P",
            "--directory-prefix",
            "-U",
            "--user-agent",
            "--header",
            "-t",
            "--tries",
            "-T",
            "--timeout",
            "-e",
            "--execute",
            "--post-data",
            "--post-file",
            "-i",
            "--input-file",
            "--user",
            "--password",
            "-a",
            "--append-output",
            "-Q",
            "-l",
            "--level",
        ],
        "nc" | "ncat" | "netcat" => &[
            "-p", "-s", "-w", "-i", "-q", "-e", "-c", "-x", "-X", "-P", "-O", "-I",
        ],
        "ping" | "ping6" => &[
            "-c", "-i", "-w", "-W", "-s", "-t", "-I", "-l", "-Q", "-p", "-M",
        ],
        "dig" => &["-p", "-t", "-c", "-q", "-x", "-b", "-f", "-k", "-y"],
        "traceroute" | "tracepath" | "mtr" => {
            &["-m", "-q", "-w", "-p", "-i", "-s", "-f", "-z", "-c"]
        }
        "scp" | "sftp" => &["-P", "-i", "-o", "-F", "-J", "-l", "-c", "-S", "-B", "-b"],
        "rsync" => &[
            "-e",
            "--rsh",
            "--exclude",
            "--include",
            "--filter",
            "-f",
            "--port",
            "--password-file",
            "--exclude-from",
            "--include-from",
            "--files-from",
            "--log-file",
            "--chmod",
            "--chown",
            "--bwlimit",
            "--timeout",
            "-T",
            "--temp-dir",
            "--backup-dir",
            "--suffix",
            "--partial-dir",
            "--link-dest",
            "--compare-dest",
        ],
        "aria2c" => &["-d", "--dir", "-o", "--out", "-x", "-s"],
        "telnet" => &["-l", "-n", "-b", "-e"],
        _ => &[],
    };
    let mut hosts: Vec<&W> = Vec::new();
    let mut i = 0;
    let mut saves_file =
        name == "wget" || name == "aria2c" || name == "axel" || name == "scp" || name == "rsync";
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        if [
            "-o",
            "--output",
            "-O",
            "--remote-name",
            "--remote-name-all",
            "-P",
            "--directory-prefix",
            "--output-dir",
        ]
        .contains(&t)
            && name == "curl"
        {
            saves_file = true;
        }
        if name == "wget"
            && (t == "-O"
                || t == "--output-document"
                || t.starts_with("-qO")
                || t == "-qO-"
                || t.starts_with("-O"))
        {
            let target = if t == "-O" || t == "--output-document" {
                args.get(i + 1).map(|w| w.text.as_str())
            } else {
                t.strip_prefix("-qO").or_else(|| t.strip_prefix("-O"))
            };
            if target == Some("-")
                || target == Some("") && args.get(i + 1).is_some_and(|w| w.text == "-")
            {
                saves_file = false;
            }
        }
        if ((name == "curl" && (t == "-o" || t == "--output"))
            || (name == "wget" && (t == "-O" || t == "--output-document" || t == "-P")))
            && let Some(target) = args.get(i + 1)
            && target.text != "-"
        {
            write_target(an, Some(index), target);
        }
        if name == "curl" && (t == "-K" || t == "--config")
            || name == "wget" && (t == "-i" || t == "--input-file" || t == "-e" || t == "--execute")
        {
            an.find(
                Some(index),
                Decision::Approve,
                "network.unresolved_host",
                format!("{name} {t} reads its targets or settings from elsewhere"),
                false,
            );
        }
        if t == "--url" {
            if let Some(url) = args.get(i + 1) {
                hosts.push(url);
            }
            i += 2;
            continue;
        }
        if t == "--" {
            hosts.extend(args.get(i + 1..).unwrap_or(&[]).iter());
            break;
        }
        if is_option(a) {
            let takes = with_value.contains(&t);
            i += if takes { 2 } else { 1 };
            continue;
        }
        hosts.push(a);
        i += 1;
    }
    if saves_file {
        an.fetched_to_file = true;
    }
    let hosts: Vec<&W> = match name {
        "ssh" | "sftp" | "nc" | "ncat" | "netcat" | "telnet" | "ping" | "ping6" | "traceroute"
        | "tracepath" | "mtr" | "whois" | "nslookup" | "host" => {
            hosts.into_iter().take(1).collect()
        }
        "scp" | "rsync" => hosts
            .into_iter()
            .filter(|w| remote_spec(&w.text) || !w.is_static())
            .collect(),
        "dig" => hosts
            .into_iter()
            .filter(|w| {
                !w.text.starts_with('+')
                    && ![
                        "A", "AAAA", "MX", "TXT", "NS", "ANY", "CNAME", "SOA", "PTR", "SRV",
                    ]
                    .contains(&w.text.as_str())
            })
            .collect(),
        _ => hosts,
    };
    for host in hosts {
        host_check(an, index, name, host, name == "ssh" || name == "sftp");
    }
}

/// Approval unless the host a word names is in `allowed_hosts`.
fn host_check(an: &mut Analyzer<'_>, index: usize, name: &str, w: &W, ssh_style: bool) {
    let cmd = Some(index);
    if !w.is_static() {
        an.find(
            cmd,
            Decision::Approve,
            "network.unresolved_host",
            format!(
                "{name} reaches a host that is only known when the line runs: {}",
                w.text
            ),
            false,
        );
        return;
    }
    let host = host_of(&w.text, ssh_style);
    if host.is_empty() {
        return;
    }
    if !an.filter.host_allowed(&host) {
        an.find(
            cmd,
            Decision::Approve,
            "network.host_not_allowed",
            format!("{name} reaches {host}, which is not in allowed_hosts"),
            true,
        );
    }
}

/// The host part of a URL, `user@host:path`, `host:port` or a bare name, lowercased.
pub(super) fn host_of(text: &str, ssh_style: bool) -> String {
    let mut rest = text;
    if let Some((_, after)) = rest.split_once("://") {
        rest = after;
    } else if let Some(after) = rest.strip_prefix("//") {
        rest = after;
    }
    let rest = rest.split(['/', '?', '#']).next().unwrap_or("");
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else if ssh_style || rest.matches(':').count() <= 1 {
        rest.split(':').next().unwrap_or("")
    } else {
        rest
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

// -------------------------------------------------------------------------------------
// What applies to every program.

fn generic(an: &mut Analyzer<'_>, index: usize, name: &str, args: &[W]) {
    let cmd = Some(index);
    let inert = INERT.contains(&name);
    let mut dynamic = false;
    for a in args {
        if !a.is_static() {
            if a.from_network && !inert {
                an.find(
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
        for candidate in path_candidates(a, name) {
            read_target(an, cmd, &candidate);
        }
    }
    if dynamic && !inert {
        an.find(
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
fn path_candidates(a: &W, name: &str) -> Vec<W> {
    let mut out = vec![a.clone()];
    if let Some((key, value)) = a.text.split_once('=')
        && !key.is_empty()
    {
        let shift = key.len() + 1;
        out.push(W {
            text: value.to_string(),
            wild_at: a.wild_at.map(|w| w.saturating_sub(shift)),
            ..a.clone()
        });
    }
    if let Some(file) = a.text.strip_prefix('@')
        && (name == "curl" || name == "http" || name == "xh")
    {
        out.push(W {
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
        out.push(W {
            text: a.text.get(2..).unwrap_or("").to_string(),
            wild_at: a.wild_at.map(|w| w.saturating_sub(2)),
            ..a.clone()
        });
    }
    out
}

/// The allowlist policy: programs not listed need approval.
fn policy(an: &mut Analyzer<'_>, index: usize, name: &str) {
    if an.filter.policy != ShellPolicy::Allowlist {
        return;
    }
    if SAFE_BUILTINS.contains(&name) || an.filter.allowed_programs.contains(name) {
        return;
    }
    an.find(
        Some(index),
        Decision::Approve,
        "policy.not_allowlisted",
        format!("{name} is not in allowed_programs"),
        true,
    );
}

/// `cd DIR` moves the working directory for the rest of the line (as far as the walk
/// goes in order; a subshell restores it).
fn follow_cd(an: &mut Analyzer<'_>, args: &[W]) {
    let target = operands(args).first().copied().cloned();
    let target = target.unwrap_or_else(|| W::lit("~"));
    if !target.is_static() || target.text == "-" {
        an.cwd = None;
        return;
    }
    let place: Place = an.place(&target);
    an.cwd = (place.root != Root::Relative && !place.wild).then_some(Cwd {
        root: place.root,
        comps: place.comps,
    });
}
