//! The built-in rules: what one simple command does, judged from its resolved words.
//! Wrappers (`env`, `sudo`, `xargs`, `find -exec`, `sh -c`, `ssh host CMD`, ...) are
//! peeled here and the command they run is judged as if it stood alone, one level
//! deeper. Rule ids are `category.name`; every finding says in words what the command
//! would do.

mod archives;
mod disks;
mod files;
mod git;
mod networking;
mod packages;
mod system;
mod wrappers;

pub(super) use git::GIT_COMMAND_KEYS;
pub(super) use wrappers::skip_options;

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
        "node" | "nodejs" | "bun" | "deno" | "ts-node" | "tsx" | "qjs" | "rhino" | "jjs" => {
            Lang::Js
        }
        "raku" | "perl6" | "rakudo" => Lang::Perl,
        "jruby" | "truffleruby" => Lang::Ruby,
        "php" | "php-cgi" | "hhvm" => Lang::Php,
        "lua" | "luajit" => Lang::Lua,
        "awk" | "gawk" | "mawk" | "nawk" => Lang::Awk,
        "Rscript" | "R" => Lang::R,
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

pub(super) fn is_option(w: &W) -> bool {
    w.text.starts_with('-') && w.text.len() > 1
}

/// Short-option cluster letters (`-rf` has `r` and `f`); empty for long options.
pub(super) fn short_flags(w: &W) -> &str {
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
pub(super) fn operands(args: &[W]) -> Vec<&W> {
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

/// Variables, by name suffix, that name a program to run (`GIT_PAGER`, `MANPAGER`,
/// `SYSTEMD_PAGER`, `GIT_EDITOR`, `SUDO_ASKPASS`, `CARGO_TARGET_..._RUNNER`).
const DANGEROUS_VARIABLE_SUFFIXES: &[&str] = &["PAGER", "EDITOR", "ASKPASS", "_RUNNER"];
/// Variables, by name prefix, that load code or configuration naming programs
/// (`LD_AUDIT`, `DYLD_INSERT_LIBRARIES`, `GIT_CONFIG_KEY_0`, `BASH_FUNC_x%%`, `LESSOPEN`).
const DANGEROUS_VARIABLE_PREFIXES: &[&str] = &[
    "LD_",
    "DYLD_",
    "GIT_CONFIG",
    "BASH_FUNC_",
    "LESSOPEN",
    "LESSCLOSE",
    "LESSKEY",
    "LESSEDIT",
];
/// More variables that make an ordinary program run another one or read configuration
/// from elsewhere (a `HOME` or `XDG_CONFIG_HOME` of the line's choosing brings its own
/// `.gitconfig` with a pager).
const DANGEROUS_VARIABLES_MORE: &[&str] = &[
    "GIT_EXTERNAL_DIFF",
    "GIT_PROXY_COMMAND",
    "GIT_TEMPLATE_DIR",
    "GIT_DIR",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "HOME",
    "XDG_CONFIG_HOME",
    "ZDOTDIR",
    "SHELL",
    "MANOPT",
    "BROWSER",
    "TAR_OPTIONS",
    "MAKEFLAGS",
    "MFLAGS",
    "GCC_EXEC_PREFIX",
    "COMPILER_PATH",
    "RUSTC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTDOC",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_HOME",
    "PERL5DB",
    "PERLLIB",
    "PYTHONBREAKPOINT",
    "PYTHONWARNINGS",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "GCONV_PATH",
    "NPM_CONFIG_SCRIPT_SHELL",
    "npm_config_script_shell",
    "npm_config_node_options",
    "GOFLAGS",
];
/// Compiler flag variables are ordinary, unless their value names a program to run.
const FLAG_VARIABLES: &[&str] = &["CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS"];

/// Whether setting `name` to `value` changes which code later commands run.
fn dangerous_variable(name: &str, value: &str) -> bool {
    DANGEROUS_VARIABLES.contains(&name)
        || DANGEROUS_VARIABLES_MORE.contains(&name)
        || DANGEROUS_VARIABLE_SUFFIXES
            .iter()
            .any(|s| name.ends_with(s))
        || DANGEROUS_VARIABLE_PREFIXES
            .iter()
            .any(|p| name.starts_with(p))
        || (FLAG_VARIABLES.contains(&name)
            && [
                "-wrapper",
                "-fplugin",
                "-B",
                "-specs",
                "linker",
                "--ld-path",
            ]
            .iter()
            .any(|f| value.contains(f)))
}

/// An assignment before a command (`X=1 cmd`) or alone (`X=1`).
pub(super) fn assignment(an: &mut Analyzer<'_>, cmd: Option<usize>, name: &str, value: &W) {
    super::settings::environment(an, cmd, name, value, 0);
    if dangerous_variable(name, &value.text) {
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

/// Programs that never read the content of the files they are given (listing, moving
/// within the workspace, deleting): naming a secret file is not reading it.
const CONTENT_BLIND: &[&str] = &[
    "ls", "stat", "touch", "rm", "rmdir", "unlink", "mkdir", "chmod", "chown", "chgrp", "du",
    "test", "[", "realpath", "readlink", "basename", "dirname", "ln", "find", "tree",
];

pub(super) fn read_target(an: &mut Analyzer<'_>, cmd: Option<usize>, w: &W) {
    read_target_by(an, cmd, w, true);
}

/// A file argument; `content` is whether the program reads what is in it.
fn read_target_by(an: &mut Analyzer<'_>, cmd: Option<usize>, w: &W, content: bool) {
    let place = an.place(w);
    if let Some((decision, rule, reason)) = an.filter.layout.read_risk(&place) {
        an.find(cmd, decision, rule, reason, false);
    } else if content && let Some(why) = an.filter.layout.secret_name(&place) {
        an.find(
            cmd,
            Decision::Approve,
            "access.secret_file",
            format!("reads, copies or encodes {why}"),
            false,
        );
    }
}

pub(super) fn write_target(an: &mut Analyzer<'_>, cmd: Option<usize>, w: &W) {
    let place = an.place(w);
    an.created.push(an.lexical_place(w));
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
        an.ran_local_code = true;
        // `./ls` is whatever file is there, not the allowlisted `ls`.
        policy(an, index, &program.text);
        if written_by_line(an, program) {
            an.find(
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
        script_file(an, index, &name, None, file, depth, stdin);
    }
    written_config_run(an, index, &name, args);
    super::exec_options::judge(an, index, &name, args, depth, stdin);
    super::settings::judge(an, index, &name, args, depth);
    super::outputs::judge(an, index, &name, args);
    super::environment::judge(an, index, &name, args);
    if name == "cd" || name == "pushd" {
        follow_cd(an, args);
    }
    let call = Call {
        index,
        name: &name,
        args,
        depth,
    };
    if wrappers::peel(an, &call, stdin) {
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
    } else {
        super::inline::foreign_interpreter(an, index, &name, args, depth, stdin);
    }
    let created_before = an.created.len();
    program_rules(an, index, &name, args, depth);
    if METADATA_ONLY.contains(&name.as_str()) {
        // `chmod +x run.sh && ./run.sh` runs a file the line did not write.
        an.created.truncate(created_before);
    }
    network(an, index, &name, args);
    generic(an, index, &name, args);
    if !local_program && !workspace_confined_edit(an, &name, args) {
        policy(an, index, &name);
    }
}

/// Programs that change a file's metadata, never its content.
const METADATA_ONLY: &[&str] = &["chmod", "chown", "chgrp", "chattr", "setfacl", "touch"];

/// Whether the line itself wrote or created the file `w` names (or a directory above it).
fn written_by_line(an: &Analyzer<'_>, w: &W) -> bool {
    let place = an.lexical_place(w);
    an.created.iter().any(|c| {
        c.root == place.root
            && !c.comps.is_empty()
            && place.comps.len() >= c.comps.len()
            && place.comps.iter().zip(&c.comps).all(|(a, b)| a == b)
    })
}

/// Files (by name) from which a program runs code without naming them: `make` reads the
/// Makefile, npm the scripts of package.json, cargo build.rs, pytest conftest.py.
const RUNS_CODE_FROM: &[(&[&str], &[&str])] = &[
    (&["make", "gmake"], &["Makefile", "makefile", "GNUmakefile"]),
    (
        &["npm", "pnpm", "yarn", "bun", "npx"],
        &["package.json", ".npmrc"],
    ),
    (
        &["cargo"],
        &["build.rs", "Cargo.toml", "config.toml", ".cargo"],
    ),
    (
        &["pytest", "py.test"],
        &["conftest.py", "pytest.ini", "setup.cfg"],
    ),
    (&["cmake"], &["CMakeLists.txt"]),
    (&["git"], &[".git", ".gitattributes", ".gitconfig"]),
];

/// A program that runs code from a file the same line wrote (`printf 'all:\n\trm -rf ~'
/// > Makefile; make`).
fn written_config_run(an: &mut Analyzer<'_>, index: usize, name: &str, args: &[W]) {
    let Some((_, files)) = RUNS_CODE_FROM.iter().find(|(p, _)| p.contains(&name)) else {
        return;
    };
    let hit = an
        .created
        .iter()
        .find(|c| c.comps.iter().any(|comp| files.contains(&comp.as_str())));
    if let Some(place) = hit {
        let what = place.display();
        an.find(
            Some(index),
            Decision::Approve,
            "exec.written_then_run",
            format!("{name} runs code from {what}, which the same line wrote"),
            false,
        );
    }
    let _ = args;
}

/// Programs that only change files: under the allowlist policy they run without approval
/// when every path they are given lies inside the known workspace (the workspace itself
/// excluded) with no `..`, and a symbolic link they make points inside it too.
const WORKSPACE_EDITS: &[&str] = &[
    "rm", "rmdir", "unlink", "chmod", "chown", "chgrp", "ln", "mkdir", "mv", "cp", "touch",
];

fn workspace_confined_edit(an: &Analyzer<'_>, name: &str, args: &[W]) -> bool {
    if !WORKSPACE_EDITS.contains(&name) || an.filter.layout.workspace.is_none() {
        return false;
    }
    let cwd_inside = an.cwd.as_ref().is_some_and(|cwd| {
        cwd.root == Root::Absolute
            && an.filter.layout.workspace.as_ref().is_some_and(|ws| {
                cwd.comps.len() >= ws.len() && cwd.comps.iter().zip(ws).all(|(a, b)| a == b)
            })
    });
    if !cwd_inside {
        return false;
    }
    // Options with values (`--target-directory=/etc`, `--reference=...`) are not read.
    if args
        .iter()
        .any(|a| is_option(a) && (a.text.contains('=') || a.text.contains('/')))
    {
        return false;
    }
    let mut ops = operands(args);
    if name == "chmod" {
        let Some(mode) = ops.first() else {
            return false;
        };
        // setuid, setgid and sticky bits are not ordinary edits.
        // Only an octal mode has a fourth digit for them (`4755`); `go-w` is symbolic.
        let octal = mode.text.chars().all(|c| c.is_ascii_digit());
        let special = mode.text.contains(['s', 't'])
            || (octal && mode.text.len() == 4 && !mode.text.starts_with('0'));
        if special || !mode.is_static() {
            return false;
        }
        ops.remove(0);
    }
    if name == "chown" || name == "chgrp" {
        let Some(owner) = ops.first() else {
            return false;
        };
        if !owner.is_static() {
            return false;
        }
        ops.remove(0);
    }
    // Modes and owners of the workspace directory itself are the project's own
    // (`chmod -R 755 .`); deleting or moving it is not an edit inside it.
    let whole_workspace_ok = METADATA_ONLY.contains(&name);
    let inside = |place: &Place| {
        an.filter.layout.inside_workspace(place)
            || (whole_workspace_ok && !place.wild && an.filter.layout.under_workspace(place))
            // `rm -f *.o`: a glob right in the workspace names files inside it.
            || (place.wild
                && place.root == Root::Absolute
                && an.filter.layout.workspace.as_ref() == Some(&place.comps))
    };
    // `ln -s TARGET LINK`: the target is read from the link's directory when used, and
    // is not a path `ln` walks through.
    let link_target = (name == "ln" && ops.len() == 2)
        .then(|| ops.first().copied())
        .flatten();
    if let (Some(target), Some(link)) = (link_target, ops.last()) {
        let text = match link.text.rsplit_once('/') {
            Some((dir, _)) if !target.text.starts_with(['/', '~']) => {
                format!("{dir}/{}", target.text)
            }
            _ => target.text.clone(),
        };
        let resolved = an.place(&W {
            text,
            ..target.clone()
        });
        if target.dynamic || !inside(&resolved) {
            return false;
        }
    }
    !ops.is_empty()
        && ops.iter().enumerate().all(|(i, op)| {
            (link_target.is_some() && i == 0)
                || (!op.dynamic && !op.text.split('/').any(|c| c == "..") && inside(&an.place(op)))
        })
}

/// Judges `inner` (a command a wrapper runs) as its own simple command.
pub(super) fn judge_inner(
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

/// Judges a word as shell code (the argument of `sh -c`, `su -c`, `trap`).
fn code_word(an: &mut Analyzer<'_>, index: usize, code: &W, depth: usize) {
    if !code.is_static() {
        let network = code.from_network;
        an.find_dynamic_code(
            Some(index),
            network,
            "obfuscation.dynamic_code",
            "runs shell code that is only known when the line runs",
        );
    }
    code_string(an, index, &code.text, depth, code.from_network);
}

pub(super) fn code_string(
    an: &mut Analyzer<'_>,
    index: usize,
    code: &str,
    depth: usize,
    network: bool,
) {
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
        Some(script) if !reads_stdin => script_file(an, index, name, None, script, depth, stdin),
        _ => stdin_code(an, index, name, None, depth, stdin),
    }
}

/// An interpreter runs a file: its content is not seen.
fn run_script(an: &mut Analyzer<'_>, index: usize, name: &str, script: &W) {
    an.ran_local_code = true;
    if written_by_line(an, script) {
        an.find(
            Some(index),
            Decision::Approve,
            "exec.written_then_run",
            format!("{name} runs {}, which the same line wrote", script.text),
            false,
        );
    }
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

/// Data from the network reaches interpreter `name` on standard input: it would run
/// code nobody has read.
pub(super) fn network_piped_into(an: &mut Analyzer<'_>, cmd: Option<usize>, name: &str) {
    an.find(
        cmd,
        Decision::Deny,
        "network.pipe_to_interpreter",
        format!("data from the network is piped into the interpreter {name}"),
        false,
    );
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
        network_piped_into(an, cmd, name);
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
    let texts: Vec<String> = args.iter().map(|a| a.text.clone()).collect();
    let inv = super::interpreters::read(lang, &texts);
    let dynamic_code = |an: &mut Analyzer<'_>, w: &W| {
        if w.is_static() {
            return;
        }
        let network = w.from_network;
        an.find_dynamic_code(
            cmd,
            network,
            "obfuscation.dynamic_code",
            format!("{name} runs code that is only known when the line runs"),
        );
    };
    for (at, code) in &inv.code {
        if let Some(w) = args.get(*at) {
            dynamic_code(an, w);
        }
        super::inline::judge(an, index, lang, code, depth);
    }
    for file in &inv.program_files {
        let w = args
            .iter()
            .find(|a| a.text.ends_with(file.as_str()))
            .cloned()
            .unwrap_or_else(|| W::lit(file.clone()));
        let w = W {
            text: file.clone(),
            ..w
        };
        script_file(an, index, name, Some(lang), &w, depth, stdin);
    }
    if let Some((at, module)) = &inv.module {
        python_module(an, index, module, args.get(at + 1..).unwrap_or(&[]));
        return;
    }
    if lang == Lang::Perl {
        // perl -pi -e: files edited in place are the operands after the code.
        let in_place = args
            .iter()
            .any(|a| is_option(a) && short_flags(a).contains('i'));
        if in_place && let Some((last_code, _)) = inv.code.last() {
            for target in operands(args.get(last_code + 1..).unwrap_or(&[])) {
                write_target(an, cmd, target);
            }
        }
    }
    if !inv.code.is_empty() || !inv.program_files.is_empty() || inv.informs_only {
        return;
    }
    if lang == Lang::Awk {
        // The first operand is the program.
        if let Some(code) = inv.operand.and_then(|at| args.get(at)) {
            dynamic_code(an, code);
            super::inline::judge(an, index, lang, &code.text, depth);
        }
        return;
    }
    match inv.operand.and_then(|at| args.get(at)) {
        Some(script) if !inv.dash => script_file(an, index, name, Some(lang), script, depth, stdin),
        _ => stdin_code(an, index, name, Some(lang), depth, stdin),
    }
}

/// An interpreter (or shell) runs the program file `script`: standard input when the
/// file is `/dev/stdin`; unknown code when it is another descriptor (`<(...)`); code the
/// same line wrote when the line created it; otherwise a file whose content is not seen.
pub(super) fn script_file(
    an: &mut Analyzer<'_>,
    index: usize,
    name: &str,
    lang: Option<Lang>,
    script: &W,
    depth: usize,
    stdin: &Stdin,
) {
    let text = script.text.as_str();
    if ["/dev/stdin", "/dev/fd/0", "/proc/self/fd/0", "-"].contains(&text) {
        stdin_code(an, index, name, lang, depth, stdin);
        return;
    }
    if text.starts_with("/dev/fd/") || text.starts_with("/proc/") || text.starts_with("/dev/tcp/") {
        an.find(
            Some(index),
            Decision::Approve,
            "interpreter.descriptor_code",
            format!("{name} runs code read from {text}, which is not known before it runs"),
            false,
        );
    }
    run_script(an, index, name, script);
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

// -------------------------------------------------------------------------------------
// Programs with rules of their own.

// Each arm owns its program: a condition inside an arm is that program's rule, and must
// not become a guard that lets the program fall through to the arms after it.
#[allow(clippy::collapsible_match)]
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

/// One simple command as the program rules see it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Call<'c> {
    pub index: usize,
    pub name: &'c str,
    pub args: &'c [W],
    pub depth: usize,
}

impl<'c> Call<'c> {
    fn cmd(&self) -> Option<usize> {
        Some(self.index)
    }

    fn operands(&self) -> Vec<&'c W> {
        operands(self.args)
    }

    fn first_operand(&self) -> &'c str {
        operands(self.args)
            .first()
            .map(|w| w.text.as_str())
            .unwrap_or("")
    }

    fn deny(&self, an: &mut Analyzer<'_>, rule: &str, reason: String) {
        an.find(Some(self.index), Decision::Deny, rule, reason, false);
    }

    /// Approval a user `allow` rule may lift (it is about the command's own words).
    fn approve(&self, an: &mut Analyzer<'_>, rule: &str, reason: String) {
        an.find(Some(self.index), Decision::Approve, rule, reason, true);
    }
}

/// Every program family with rules of its own, in the order they are tried (the first
/// family naming a program judges it). The functions live in one module per area.
const PROGRAM_RULES: &[ProgramRules] = &[
    ProgramRules {
        programs: Programs::Named(&["rm", "unlink", "rmdir", "srm", "shred"]),
        judge: files::remove,
    },
    ProgramRules {
        programs: Programs::Named(&["mv"]),
        judge: files::move_files,
    },
    ProgramRules {
        programs: Programs::Named(&["cp", "install", "ln", "rsync", "scp"]),
        judge: files::copy,
    },
    ProgramRules {
        programs: Programs::Named(&["tee", "touch", "mkdir", "truncate", "mkfifo", "mknod"]),
        judge: files::create,
    },
    ProgramRules {
        programs: Programs::Named(&["sed"]),
        judge: files::sed,
    },
    ProgramRules {
        programs: Programs::Named(&["dd"]),
        judge: disks::dd,
    },
    ProgramRules {
        programs: Programs::NamedOrPrefixed(
            "mkfs",
            &[
                "mke2fs",
                "mkswap",
                "wipefs",
                "blkdiscard",
                "mkdosfs",
                "mkntfs",
            ],
        ),
        judge: disks::format,
    },
    ProgramRules {
        programs: Programs::Named(&[
            "fdisk", "sfdisk", "parted", "gdisk", "sgdisk", "cfdisk", "cgdisk",
        ]),
        judge: disks::partition,
    },
    ProgramRules {
        programs: Programs::Named(&["chmod", "chown", "chgrp", "chattr", "setfacl"]),
        judge: files::change_metadata,
    },
    ProgramRules {
        programs: Programs::Named(&["shutdown", "reboot", "halt", "poweroff"]),
        judge: system::power,
    },
    ProgramRules {
        programs: Programs::Named(&["init", "telinit"]),
        judge: system::init,
    },
    ProgramRules {
        programs: Programs::Named(&["systemctl", "loginctl"]),
        judge: system::systemctl,
    },
    ProgramRules {
        programs: Programs::Named(&["service"]),
        judge: system::service,
    },
    ProgramRules {
        programs: Programs::Named(&["update-rc.d", "chkconfig", "rc-update"]),
        judge: system::boot_services,
    },
    ProgramRules {
        programs: Programs::Named(&["kill", "pkill", "killall", "killall5", "skill", "slay"]),
        judge: system::kill,
    },
    ProgramRules {
        programs: Programs::Named(&[
            "iptables",
            "ip6tables",
            "iptables-legacy",
            "iptables-nft",
            "ip6tables-legacy",
            "ip6tables-nft",
            "ebtables",
            "arptables",
        ]),
        judge: networking::packet_filter,
    },
    ProgramRules {
        programs: Programs::Named(&["nft"]),
        judge: networking::nft,
    },
    ProgramRules {
        programs: Programs::Named(&["ufw"]),
        judge: networking::ufw,
    },
    ProgramRules {
        programs: Programs::Named(&["firewall-cmd"]),
        judge: networking::firewalld,
    },
    ProgramRules {
        programs: Programs::Named(&["crontab"]),
        judge: system::crontab,
    },
    ProgramRules {
        programs: Programs::Named(&["at", "batch", "atrm"]),
        judge: system::at,
    },
    ProgramRules {
        programs: Programs::Named(&[
            "passwd", "useradd", "usermod", "userdel", "adduser", "deluser", "groupadd",
            "groupdel", "groupmod", "gpasswd", "chpasswd", "visudo", "chsh", "chfn", "newgrp",
            "vipw",
        ]),
        judge: system::accounts,
    },
    ProgramRules {
        programs: Programs::Named(&[
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
        ]),
        judge: system::kernel_and_storage,
    },
    ProgramRules {
        programs: Programs::Named(&["ip"]),
        judge: networking::ip,
    },
    ProgramRules {
        programs: Programs::Named(&["ifconfig", "route", "iwconfig", "nmcli", "wpa_cli"]),
        judge: networking::interfaces,
    },
    ProgramRules {
        programs: Programs::Named(&["history"]),
        judge: system::history,
    },
    ProgramRules {
        programs: Programs::Named(&["git"]),
        judge: git::judge,
    },
    ProgramRules {
        programs: Programs::Named(&["pip", "pip3", "pipx", "uv"]),
        judge: packages::python_packages,
    },
    ProgramRules {
        programs: Programs::Named(&["npm", "pnpm", "yarn", "bun"]),
        judge: packages::node_packages,
    },
    ProgramRules {
        programs: Programs::Named(&["npx", "pnpx", "bunx"]),
        judge: packages::package_runners,
    },
    ProgramRules {
        programs: Programs::Named(&[
            "cargo", "go", "gem", "composer", "conda", "mamba", "brew", "snap", "flatpak", "opam",
            "rustup", "luarocks", "cpan", "cpanm",
        ]),
        judge: packages::language_packages,
    },
    ProgramRules {
        programs: Programs::Named(&[
            "apt", "apt-get", "aptitude", "dnf", "yum", "apk", "pacman", "zypper", "dpkg", "rpm",
            "emerge", "nix-env",
        ]),
        judge: packages::system_packages,
    },
    ProgramRules {
        programs: Programs::Named(&["docker", "podman", "kubectl", "nerdctl", "lxc", "virsh"]),
        judge: packages::containers,
    },
    ProgramRules {
        programs: Programs::Named(&["tar", "bsdtar"]),
        judge: archives::tar,
    },
    ProgramRules {
        programs: Programs::Named(&["zip", "7z", "7za", "rar"]),
        judge: archives::zip,
    },
    ProgramRules {
        programs: Programs::Named(&["unzip"]),
        judge: archives::unzip,
    },
    ProgramRules {
        programs: Programs::Named(&["grep", "egrep", "fgrep", "rg", "ag", "ack"]),
        judge: files::search,
    },
    ProgramRules {
        programs: Programs::Named(&["nc", "ncat", "netcat"]),
        judge: networking::netcat,
    },
    ProgramRules {
        programs: Programs::Named(&["socat"]),
        judge: networking::socat,
    },
    ProgramRules {
        programs: Programs::Named(&[
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
        ]),
        judge: networking::scanners,
    },
    ProgramRules {
        programs: Programs::Named(&["openssl"]),
        judge: networking::openssl,
    },
];

fn remote_spec(text: &str) -> bool {
    text.contains("://")
        || text
            .split_once(':')
            .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'))
}

fn program_rules(an: &mut Analyzer<'_>, index: usize, name: &str, args: &[W], depth: usize) {
    let call = Call {
        index,
        name,
        args,
        depth,
    };
    if args.iter().any(|a| a.text == "--no-preserve-root") {
        call.deny(
            an,
            "destructive.no_preserve_root",
            format!("{name} --no-preserve-root removes the protection of /"),
        );
    }
    if let Some(rules) = PROGRAM_RULES.iter().find(|r| r.programs.contains(name)) {
        (rules.judge)(an, &call);
    }
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
    // The destination of a copy or move is written, not read.
    let ops = operands(args);
    let destination = ["cp", "mv", "install", "ln", "rsync"]
        .contains(&name)
        .then(|| ops.last().filter(|_| ops.len() >= 2))
        .flatten()
        .map(|d| std::ptr::from_ref::<W>(d));
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
        let content =
            !CONTENT_BLIND.contains(&name) && destination != Some(std::ptr::from_ref::<W>(a));
        for candidate in path_candidates(a, name) {
            read_target_by(an, cmd, &candidate, content);
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
