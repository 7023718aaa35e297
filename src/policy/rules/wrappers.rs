//! Wrappers: programs that run another command given in their arguments (`env`, `nice`,
//! `timeout`, `sudo`, `xargs`, `find -exec`, `ssh host CMD`, `flock`, `chroot`, `uv run`,
//! ...). Each is described once in [`WRAPPERS`]: which options take a value, where the
//! command it runs starts, and what running the wrapper itself implies. [`peel`] reads
//! that description and hands the inner command back to the judge, one level deeper; it
//! never judges what the inner command does itself.

use super::common::*;
use super::variables::assignment;

/// What running a wrapper implies, whatever command it runs.
struct Implied {
    decision: Decision,
    rule: &'static str,
    /// Said after the program's name: "sudo runs a command as another user".
    reason: &'static str,
}

const AS_ANOTHER_USER: Implied = Implied {
    decision: Decision::Approve,
    rule: "privilege.escalation",
    reason: "runs a command as another user (root by default)",
};

const SWITCHES_USER: Implied = Implied {
    decision: Decision::Approve,
    rule: "privilege.escalation",
    reason: "runs commands as another user",
};

const IN_ANOTHER_ROOT: Implied = Implied {
    decision: Decision::Approve,
    rule: "privilege.namespace",
    reason: "runs a command in another root, namespace or unit",
};

const ROOT_SHELL: Implied = Implied {
    decision: Decision::Approve,
    rule: "privilege.root_shell",
    reason: "with no command opens a root shell",
};

/// Where the command a wrapper runs starts, once its options are skipped.
#[derive(Clone, Copy)]
enum CommandStart {
    /// After this many operands (`nice CMD`, `timeout 5 CMD`, `chroot DIR CMD`,
    /// `flock FILE CMD`, `direnv exec DIR CMD`). No command left: the wrapper alone runs,
    /// and the allowlist is asked about it.
    AfterOperands(usize),
    /// Only after a `--` anywhere in the arguments (`runuser -u bob -- CMD`); without one
    /// the wrapper runs nothing worth judging.
    AfterDoubleDash,
    /// Nowhere: only the value of a code option runs (`su -c CODE`).
    OnlyCodeOptions,
    /// The words after the options, joined, are one shell command line (`watch CMD`).
    JoinedCode,
    /// The first word that is not an option is one word of shell code (`trap CODE SIG`).
    FirstOperandCode,
    /// The value of every `NAME=VALUE` argument is shell code (`alias ll='ls -l'`).
    AssignedCode,
    /// A grammar of its own, read by a function. It returns false when the words run no
    /// command, and the program is then judged as itself (`script` without `-c`).
    Own(fn(&mut Analyzer<'_>, &Call<'_>, &Stdin) -> bool),
}

/// How one wrapper program (or a family that shares a grammar) runs a command.
struct Wrapper {
    programs: &'static [&'static str],
    /// Options that take the next word as their value.
    value_options: &'static [&'static str],
    /// Options with which no command runs (`command -v x`, `taskset -p PID`).
    no_command: &'static [&'static str],
    /// Options whose value is one word of shell code (`flock -c CODE`, `su -c CODE`).
    code_options: &'static [&'static str],
    /// Options that make the command words one shell command line (`sudo -s CMD`).
    shell_options: &'static [&'static str],
    /// The subcommand that runs a command (`uv run`, `bundle exec`). With another
    /// subcommand the program runs none and is judged as itself.
    subcommand: Option<&'static str>,
    command: CommandStart,
    /// What running the wrapper implies, found before its command is judged.
    implied: Option<Implied>,
    /// What running it with no command implies (`sudo` alone is a root shell).
    implied_without_command: Option<Implied>,
    /// The wrapper does more than run the command (installs packages, loads
    /// environments), so the allowlist is asked about it too; `nice` or `timeout` only
    /// change how the command runs and are judged as the command alone.
    judged_itself: bool,
}

/// A wrapper that runs the command after its options and `operands` operands.
const fn plain(
    programs: &'static [&'static str],
    value_options: &'static [&'static str],
    operands: usize,
) -> Wrapper {
    Wrapper {
        programs,
        value_options,
        no_command: &[],
        code_options: &[],
        shell_options: &[],
        subcommand: None,
        command: CommandStart::AfterOperands(operands),
        implied: None,
        implied_without_command: None,
        judged_itself: false,
    }
}

/// A program that runs a command after its subcommand (`uv run CMD`) or, with no
/// subcommand, after its options (`xvfb-run CMD`), and is asked about itself too.
const fn runner(
    program: &'static [&'static str],
    subcommand: Option<&'static str>,
    value_options: &'static [&'static str],
    operands: usize,
) -> Wrapper {
    Wrapper {
        subcommand,
        judged_itself: true,
        ..plain(program, value_options, operands)
    }
}

/// A wrapper whose words have a grammar of their own.
const fn own(
    programs: &'static [&'static str],
    grammar: fn(&mut Analyzer<'_>, &Call<'_>, &Stdin) -> bool,
) -> Wrapper {
    Wrapper {
        command: CommandStart::Own(grammar),
        ..plain(programs, &[], 0)
    }
}

const SUDO_VALUE_OPTIONS: &[&str] = &[
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
];
const NAMESPACE_VALUE_OPTIONS: &[&str] = &[
    "-t",
    "--target",
    "-u",
    "--unit",
    "-p",
    "--property",
    "--userspec",
    "--bind",
    "--ro-bind",
];
const CODE_OPTIONS: &[&str] = &["-c", "--command"];
const ENV_MANAGER_OPTIONS: &[&str] = &["-n", "--name", "-p", "--prefix"];
const UV_OPTIONS: &[&str] = &[
    "--with",
    "--python",
    "-p",
    "--directory",
    "--project",
    "--env-file",
    "--group",
    "--extra",
    "--package",
    "--index",
    "--from",
];

/// Every wrapper, by program name.
const WRAPPERS: &[Wrapper] = &[
    // Wrappers that only change how the command runs (priority, time limit, buffering,
    // tracing): judged as the command they run.
    plain(&["nice"], &["-n", "--adjustment"], 0),
    plain(
        &[
            "nohup",
            "setsid",
            "unbuffer",
            "caffeinate",
            "builtin",
            "catchsegv",
            "fakeroot",
            "coproc",
        ],
        &[],
        0,
    ),
    plain(&["time"], &["-f", "--format", "-o", "--output"], 0),
    Wrapper {
        no_command: &["-v", "-V"],
        ..plain(&["command"], &[], 0)
    },
    plain(&["stdbuf"], &["-i", "-o", "-e"], 0),
    plain(
        &["ionice"],
        &["-c", "-n", "-p", "-P", "-u", "--class", "--classdata"],
        0,
    ),
    plain(&["chrt"], &[], 1),
    Wrapper {
        no_command: &["-p"],
        ..plain(&["taskset"], &[], 1)
    },
    plain(&["timeout"], &["-s", "--signal", "-k", "--kill-after"], 1),
    plain(&["exec"], &["-a"], 0),
    plain(
        &["strace", "ltrace"],
        &["-e", "-o", "-p", "-s", "-u", "-E", "-P"],
        0,
    ),
    // Wrappers that read shell code.
    own(&["env"], env),
    Wrapper {
        code_options: CODE_OPTIONS,
        ..plain(
            &["flock"],
            &["-w", "--timeout", "-E", "--conflict-exit-code"],
            1,
        )
    },
    Wrapper {
        command: CommandStart::JoinedCode,
        ..plain(&["watch"], &["-n", "--interval", "-d", "--differences"], 0)
    },
    own(&["xargs"], xargs),
    own(&["find"], super::files::find),
    own(&["eval"], eval),
    Wrapper {
        command: CommandStart::FirstOperandCode,
        ..plain(&["trap"], &[], 0)
    },
    Wrapper {
        command: CommandStart::AssignedCode,
        ..plain(&["alias"], &[], 0)
    },
    own(&["ssh"], super::networking::ssh),
    own(&["script"], script),
    // Wrappers that change who runs the command, or where.
    Wrapper {
        shell_options: &["-s", "-i"],
        implied: Some(AS_ANOTHER_USER),
        implied_without_command: Some(ROOT_SHELL),
        ..plain(&["sudo", "doas"], SUDO_VALUE_OPTIONS, 0)
    },
    Wrapper {
        implied: Some(AS_ANOTHER_USER),
        implied_without_command: Some(ROOT_SHELL),
        ..plain(&["pkexec", "run0"], SUDO_VALUE_OPTIONS, 0)
    },
    Wrapper {
        code_options: CODE_OPTIONS,
        command: CommandStart::OnlyCodeOptions,
        implied: Some(SWITCHES_USER),
        ..plain(&["su"], &[], 0)
    },
    Wrapper {
        code_options: CODE_OPTIONS,
        command: CommandStart::AfterDoubleDash,
        implied: Some(SWITCHES_USER),
        ..plain(&["runuser"], &[], 0)
    },
    Wrapper {
        implied: Some(IN_ANOTHER_ROOT),
        ..plain(&["chroot"], NAMESPACE_VALUE_OPTIONS, 1)
    },
    Wrapper {
        implied: Some(IN_ANOTHER_ROOT),
        ..plain(
            &["nsenter", "unshare", "systemd-run", "firejail", "bwrap"],
            NAMESPACE_VALUE_OPTIONS,
            0,
        )
    },
    // Programs that run a command and do more (install packages, load environments).
    runner(&["uv"], Some("run"), UV_OPTIONS, 0),
    runner(&["uvx"], None, UV_OPTIONS, 0),
    runner(&["poetry", "pdm", "pipenv", "hatch"], Some("run"), &[], 0),
    runner(
        &["conda", "mamba", "micromamba"],
        Some("run"),
        ENV_MANAGER_OPTIONS,
        0,
    ),
    runner(&["bundle", "rbenv", "pyenv"], Some("exec"), &[], 0),
    runner(&["direnv"], Some("exec"), &[], 1),
    runner(&["pnpm", "yarn"], Some("exec"), &[], 0),
    runner(
        &["xvfb-run"],
        None,
        &["-n", "-s", "-f", "-e", "-p", "-w"],
        0,
    ),
    runner(
        &[
            "dbus-run-session",
            "eatmydata",
            "torsocks",
            "valgrind",
            "rlwrap",
            "ccache",
            "entr",
        ],
        None,
        &[],
        0,
    ),
    runner(&["proxychains", "proxychains4"], None, &["-f"], 0),
    runner(&["sshpass"], None, &["-p", "-f", "-d"], 0),
];

/// Peels a wrapper; returns true when `call` is one (the command it runs is judged).
pub(super) fn peel(analyzer: &mut Analyzer<'_>, call: &Call<'_>, stdin: &Stdin) -> bool {
    let Call {
        index, name, depth, ..
    } = *call;
    let Some(wrapper) = WRAPPERS.iter().find(|w| w.programs.contains(&name)) else {
        return false;
    };
    let mut args = call.args;
    if args
        .iter()
        .any(|a| wrapper.no_command.contains(&a.text.as_str()))
    {
        return true;
    }
    if let Some(subcommand) = wrapper.subcommand {
        let Some(at) = args.iter().position(|a| !is_option(a)) else {
            return false;
        };
        if args.get(at).map(|a| a.text.as_str()) != Some(subcommand) {
            return false;
        }
        args = args.get(at + 1..).unwrap_or(&[]);
    }
    if let Some(implied) = &wrapper.implied {
        find_implied(analyzer, index, name, implied);
    }
    if let Some(at) = args
        .iter()
        .position(|a| wrapper.code_options.contains(&a.text.as_str()))
    {
        if let Some(code) = args.get(at + 1) {
            analyzer.code_word(index, code, depth);
        }
        return true;
    }
    let rest = skip_options(args, wrapper.value_options);
    if rest.is_empty()
        && let Some(implied) = &wrapper.implied_without_command
    {
        find_implied(analyzer, index, name, implied);
    }
    if !rest.is_empty()
        && args
            .iter()
            .any(|a| wrapper.shell_options.contains(&a.text.as_str()))
    {
        analyzer.code_string(index, &joined(rest), depth, false);
        return true;
    }
    let inner: &[Word] = match wrapper.command {
        CommandStart::AfterOperands(operands) => rest.get(operands..).unwrap_or(&[]),
        CommandStart::AfterDoubleDash => match args.iter().position(|a| a.text == "--") {
            Some(at) => args.get(at + 1..).unwrap_or(&[]),
            None => return true,
        },
        CommandStart::OnlyCodeOptions => return true,
        CommandStart::JoinedCode => {
            let network = rest.iter().any(|w| w.from_network);
            analyzer.code_string(index, &joined(rest), depth, network);
            return true;
        }
        CommandStart::FirstOperandCode => {
            if let Some(code) = args.iter().find(|a| !is_option(a)) {
                analyzer.code_word(index, code, depth);
            }
            return true;
        }
        CommandStart::AssignedCode => {
            for a in args {
                if let Some((_, value)) = a.text.split_once('=') {
                    analyzer.code_string(index, value, depth, a.from_network);
                }
            }
            return true;
        }
        CommandStart::Own(grammar) => return grammar(analyzer, call, stdin),
    };
    if wrapper.judged_itself {
        policy(analyzer, index, name);
    }
    if inner.is_empty() {
        policy(analyzer, index, name);
    } else {
        analyzer.judge_inner(index, inner, depth, stdin, name);
    }
    true
}

fn find_implied(analyzer: &mut Analyzer<'_>, index: usize, name: &str, implied: &Implied) {
    analyzer.find(
        Some(index),
        implied.decision,
        implied.rule,
        format!("{name} {}", implied.reason),
        false,
    );
}

/// Words joined back into one command line.
fn joined(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `env [-i] [-u NAME] [NAME=VALUE]... CMD`, or `env -S 'CMD ARGS'`.
fn env(analyzer: &mut Analyzer<'_>, call: &Call<'_>, stdin: &Stdin) -> bool {
    let Call {
        index, name, depth, ..
    } = *call;
    // A lone `-` is `-i` (start with an empty environment).
    let args = call
        .args
        .iter()
        .position(|a| a.text != "-")
        .map_or(&[][..], |at| call.args.get(at..).unwrap_or(&[]));
    let rest = skip_options(args, &["-u", "--unset", "-C", "--chdir", "-P"]);
    // `env -S 'cmd args'` splits a string into a command line.
    if let Some(pos) = args
        .iter()
        .position(|a| a.text.starts_with("-S") || a.text.starts_with("--split-string"))
    {
        // The string may be glued on: `-S'sh -c id'`, `--split-string=...`.
        let glued = args.get(pos).map_or("", |a| {
            a.text
                .strip_prefix("--split-string=")
                .or_else(|| a.text.strip_prefix("-S"))
                .unwrap_or("")
        });
        let code: Vec<&str> = std::iter::once(glued)
            .filter(|g| !g.is_empty())
            .chain(args.iter().skip(pos + 1).map(|a| a.text.as_str()))
            .collect();
        analyzer.code_string(
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
                assignment(analyzer, Some(index), var, first);
                rest = tail;
            }
            _ => break,
        }
    }
    if rest.is_empty() {
        policy(analyzer, index, name);
    } else {
        analyzer.judge_inner(index, rest, depth, stdin, name);
    }
    true
}

/// `xargs [OPTIONS] [CMD]`: the command gets more arguments from standard input, or
/// its `-I` token replaced by them.
fn xargs(analyzer: &mut Analyzer<'_>, call: &Call<'_>, stdin: &Stdin) -> bool {
    let Call {
        index,
        name,
        args,
        depth,
    } = *call;
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
    let mut inner: Vec<Word> = if rest.is_empty() {
        vec![Word::lit("echo")]
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
                *w = Word::unknown(&prefix);
                replaced = true;
            }
        }
    }
    if !replaced {
        // Arguments come from stdin.
        let mut extra = Word::unknown("");
        extra.from_network = stdin.network;
        inner.push(extra);
    }
    analyzer.judge_inner(index, &inner, depth, &Stdin::default(), name);
    true
}

/// `eval WORDS`: the words, joined, are shell code.
fn eval(analyzer: &mut Analyzer<'_>, call: &Call<'_>, _stdin: &Stdin) -> bool {
    let Call {
        index, args, depth, ..
    } = *call;
    let network = args.iter().any(|a| a.from_network);
    if args.iter().any(|a| !a.is_static()) {
        analyzer.find_dynamic_code(
            Some(index),
            network,
            "obfuscation.dynamic_eval",
            "eval runs code that is only known when the line runs",
        );
    }
    analyzer.code_string(index, &joined(args), depth, network);
    true
}

/// `script -c CMD` (also `-qc CMD`, `--command=CMD`); without one, `script` records an
/// interactive shell and is judged as itself.
fn script(analyzer: &mut Analyzer<'_>, call: &Call<'_>, _stdin: &Stdin) -> bool {
    let Call {
        index, args, depth, ..
    } = *call;
    if let Some(code) = args.iter().find(|a| a.text.starts_with("--command=")) {
        let code = Word {
            text: code
                .text
                .get("--command=".len()..)
                .unwrap_or("")
                .to_string(),
            ..code.clone()
        };
        analyzer.code_word(index, &code, depth);
        return true;
    }
    if let Some(pos) = args
        .iter()
        .position(|a| a.text == "--command" || (is_option(a) && short_flags(a).ends_with('c')))
    {
        if let Some(code) = args.get(pos + 1) {
            analyzer.code_word(index, code, depth);
        }
        return true;
    }
    false
}
