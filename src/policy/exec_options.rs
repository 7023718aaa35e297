//! Ordinary programs (many on the default allowlist) that run other programs or code
//! through an option or a subcommand: `tar --to-command`, `sort --compress-program`,
//! `man -P`, `gcc -wrapper`, `make --eval`, `rsync -e`, `vim -c '!...'`, `less '+!...'`,
//! `cmake -E rm`, `ip netns exec`. Each program's ways of running code are data
//! ([`EXEC_OPTIONS`]) or one small function per program family. A command given as text
//! is also judged as shell code, so `man -P 'rm -rf ~' ls` is denied like `rm -rf ~`.
//! This never judges the program's own files or arguments: that stays in `rules/`.

use super::inline::script_file;
use super::paths::Root;
use super::rules::variables::assignment;
use super::state::Analyzer;
use super::verdict::Decision;
use super::words::{Stdin, Word, excerpt, is_option, operands, skip_options};

/// What an option's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runs {
    /// A shell command line (`--to-command='sh -c ...'`).
    ShellCode,
    /// A program and its arguments joined by commas (`gcc -wrapper sh,-c,id`).
    CommaArgv,
    /// A program or plug-in whose code is not on the line (`--compress-program=./x`).
    Program,
    /// A file or text of commands in the program's own language (`make --eval`,
    /// `ip -batch FILE`, `cargo --config` naming a runner).
    Commands,
    /// An editor command (`vim -c`, `vim +cmd`): `!...` runs a shell command.
    EditorCommand,
    /// A pager command (`less +cmd`): only `!` and `|` run shell commands.
    PagerCommand,
}

/// One option of one family of programs that runs code.
struct ExecOption {
    programs: &'static [&'static str],
    /// `--long` (value after `=` or as the next word), `-x` (value glued or next), or
    /// `+` (the rest of a word starting with `+`).
    option: &'static str,
    runs: Runs,
    /// Whether a one-letter option may have its value glued on (`-Icmd`); `ip` options
    /// are whole words (`-br` is `-brief`, not `-b r`).
    glued: bool,
}

const TAR: &[&str] = &["tar", "bsdtar", "gtar"];
const CC: &[&str] = &[
    "gcc", "cc", "g++", "c++", "clang", "clang++", "gfortran", "cpp", "tcc",
];
const VIM: &[&str] = &["vim", "vi", "nvim", "view", "vimdiff", "gvim", "ex", "rvim"];
const PAGERS: &[&str] = &["less", "more", "most"];

const fn opt(programs: &'static [&'static str], option: &'static str, runs: Runs) -> ExecOption {
    ExecOption {
        programs,
        option,
        runs,
        glued: true,
    }
}

/// An option only ever written as its own word.
const fn word(programs: &'static [&'static str], option: &'static str, runs: Runs) -> ExecOption {
    ExecOption {
        programs,
        option,
        runs,
        glued: false,
    }
}

/// Options with which a program runs another program or code.
const EXEC_OPTIONS: &[ExecOption] = &[
    opt(TAR, "--to-command", Runs::ShellCode),
    opt(TAR, "--checkpoint-action", Runs::ShellCode),
    opt(TAR, "--use-compress-program", Runs::ShellCode),
    opt(TAR, "-I", Runs::ShellCode),
    opt(TAR, "--info-script", Runs::ShellCode),
    opt(TAR, "--new-volume-script", Runs::ShellCode),
    opt(TAR, "-F", Runs::ShellCode),
    opt(TAR, "--rsh-command", Runs::Program),
    opt(TAR, "--rmt-command", Runs::Program),
    opt(&["sort"], "--compress-program", Runs::ShellCode),
    opt(&["man"], "-P", Runs::ShellCode),
    opt(&["man"], "--pager", Runs::ShellCode),
    opt(&["man"], "-H", Runs::ShellCode),
    opt(&["man"], "--html", Runs::ShellCode),
    opt(CC, "-wrapper", Runs::CommaArgv),
    opt(CC, "-fplugin", Runs::Program),
    opt(CC, "-B", Runs::Program),
    opt(CC, "-specs", Runs::Program),
    opt(CC, "--specs", Runs::Program),
    opt(CC, "--ld-path", Runs::Program),
    opt(&["ld", "ld.bfd", "ld.gold"], "-plugin", Runs::Program),
    opt(&["make", "gmake"], "--eval", Runs::Commands),
    opt(&["make", "gmake"], "-E", Runs::Commands),
    opt(&["rsync"], "-e", Runs::ShellCode),
    opt(&["rsync"], "--rsh", Runs::ShellCode),
    opt(&["rsync"], "--rsync-path", Runs::ShellCode),
    opt(&["zip"], "-TT", Runs::ShellCode),
    opt(&["zip"], "--unzip-command", Runs::ShellCode),
    opt(&["diff", "sdiff", "diff3"], "--diff-program", Runs::Program),
    opt(&["wget"], "--use-askpass", Runs::Program),
    opt(&["tcpdump"], "-z", Runs::Program),
    opt(&["go"], "-toolexec", Runs::ShellCode),
    opt(&["go"], "-exec", Runs::ShellCode),
    opt(&["cargo"], "--config", Runs::Commands),
    opt(&["npm", "pnpm", "yarn"], "--script-shell", Runs::Program),
    opt(&["npm", "pnpm", "yarn"], "--node-options", Runs::Program),
    word(&["ip"], "-b", Runs::Commands),
    word(&["ip"], "-batch", Runs::Commands),
    opt(VIM, "-c", Runs::EditorCommand),
    opt(VIM, "--cmd", Runs::EditorCommand),
    opt(VIM, "-S", Runs::Commands),
    opt(VIM, "+", Runs::EditorCommand),
    opt(&["emacs"], "--eval", Runs::Commands),
    opt(&["emacs"], "--load", Runs::Commands),
    opt(&["emacs"], "-l", Runs::Commands),
    opt(&["emacs"], "--funcall", Runs::Commands),
    opt(&["emacs"], "-f", Runs::Commands),
    opt(PAGERS, "+", Runs::PagerCommand),
    word(&["gdb", "gdb-multiarch"], "-ex", Runs::Commands),
    opt(&["gdb", "gdb-multiarch"], "--eval-command", Runs::Commands),
    word(&["gdb", "gdb-multiarch"], "-x", Runs::Commands),
    word(&["expect"], "-c", Runs::Commands),
    opt(&["hyperfine"], "--prepare", Runs::ShellCode),
    opt(&["hyperfine"], "--setup", Runs::ShellCode),
    opt(&["hyperfine"], "--cleanup", Runs::ShellCode),
    opt(&["watchexec"], "--shell", Runs::Program),
];

/// Judges the ways `name` runs code through its options and subcommands.
pub(super) fn judge(
    analyzer: &mut Analyzer<'_>,
    index: usize,
    name: &str,
    args: &[Word],
    depth: usize,
    stdin: &Stdin,
) {
    match name {
        "ip" => ip(analyzer, index, args, depth),
        "cmake" => cmake(analyzer, index, args, depth),
        "make" | "gmake" => make(analyzer, index, args, depth, stdin),
        "hyperfine" | "watch-exec" => {
            for command in operands(args) {
                analyzer.code_string(index, &command.text, depth, command.from_network);
            }
        }
        "parallel" | "tmux" | "screen" | "watchexec" | "expect" | "nq" | "daemonize" => {
            analyzer.find(
                Some(index),
                Decision::Approve,
                "exec.option",
                format!("{name} runs commands given in its arguments or input"),
                false,
            );
        }
        _ => {}
    }
    let options: Vec<&ExecOption> = EXEC_OPTIONS
        .iter()
        .filter(|o| o.programs.contains(&name))
        .collect();
    if options.is_empty() {
        return;
    }
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a.text == "--" {
            break;
        }
        for o in &options {
            let Some((value, used_next)) = value_of(o, a, args.get(i + 1)) else {
                continue;
            };
            if used_next {
                i += 1;
            }
            option_runs(analyzer, index, name, o, &value, depth);
        }
        i += 1;
    }
}

/// The value `option` has in the word `a` (glued, after `=`, or the next word).
fn value_of(o: &ExecOption, a: &Word, next: Option<&Word>) -> Option<(Word, bool)> {
    let option = o.option;
    let with = |text: &str| Word {
        text: text.to_string(),
        ..a.clone()
    };
    if option == "+" {
        return a.text.strip_prefix('+').map(|v| (with(v), false));
    }
    if a.text == option {
        return Some(next.map_or_else(|| (Word::lit(""), false), |n| (n.clone(), true)));
    }
    if option.starts_with("--") || option.len() > 2 {
        return a
            .text
            .strip_prefix(option)
            .and_then(|rest| rest.strip_prefix('='))
            .map(|v| (with(v), false));
    }
    if !o.glued {
        return None;
    }
    // `-Icmd`: a one-letter option glued to its value.
    a.text
        .strip_prefix(option)
        .filter(|v| !v.is_empty())
        .map(|v| (with(v), false))
}

fn option_runs(
    analyzer: &mut Analyzer<'_>,
    index: usize,
    name: &str,
    o: &ExecOption,
    value: &Word,
    depth: usize,
) {
    let text = value.text.as_str();
    let code: Option<String> = match o.runs {
        Runs::ShellCode => Some(
            text.strip_prefix("exec=")
                .or_else(|| text.strip_prefix("--exec="))
                .unwrap_or(text)
                .to_string(),
        ),
        Runs::CommaArgv => Some(text.replace(',', " ")),
        Runs::Program | Runs::Commands => None,
        Runs::EditorCommand => {
            if text.chars().all(|c| c.is_ascii_digit()) {
                // `vim +12 file`: go to a line.
                return;
            }
            text.split_once('!').map(|(_, cmd)| cmd.to_string())
        }
        Runs::PagerCommand => {
            if !text.contains(['!', '|']) {
                // `less +F`, `less +G`: pager motions.
                return;
            }
            text.split_once(['!', '|']).map(|(_, cmd)| cmd.to_string())
        }
    };
    analyzer.find(
        Some(index),
        Decision::Approve,
        "exec.option",
        format!(
            "{name} {} runs a program or code given on the line{}",
            o.option,
            if text.is_empty() {
                String::new()
            } else {
                format!(" ({})", excerpt(text))
            }
        ),
        false,
    );
    if let Some(code) = code.filter(|c| !c.trim().is_empty()) {
        analyzer.code_string(index, &code, depth, value.from_network);
    }
}

/// `make -f FILE` reads its recipes from FILE (standard input for `-f -` or
/// `/dev/stdin`, whose text is judged as shell code when known), and a `SHELL=` or
/// `.SHELLFLAGS=` operand picks the program that runs every recipe.
fn make(analyzer: &mut Analyzer<'_>, index: usize, args: &[Word], depth: usize, stdin: &Stdin) {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let file = match a.text.as_str() {
            "-f" | "--file" | "--makefile" => {
                i += 1;
                args.get(i).cloned()
            }
            t => t
                .strip_prefix("--file=")
                .or_else(|| t.strip_prefix("--makefile="))
                .or_else(|| t.strip_prefix("-f").filter(|v| !v.is_empty()))
                .map(|v| Word {
                    text: v.to_string(),
                    ..a.clone()
                }),
        };
        if let Some(file) = file {
            outside_workspace(analyzer, index, "-f", &file);
            script_file(analyzer, index, "make", None, &file, depth, stdin);
        }
        let directory = match a.text.as_str() {
            "-C" | "--directory" => {
                i += 1;
                args.get(i).cloned()
            }
            t => t
                .strip_prefix("--directory=")
                .or_else(|| t.strip_prefix("-C").filter(|v| !v.is_empty()))
                .map(|v| Word {
                    text: v.to_string(),
                    ..a.clone()
                }),
        };
        if let Some(directory) = directory {
            outside_workspace(analyzer, index, "-C", &directory);
        }
        let variable = a.text.split_once('=').map(|(var, _)| var);
        if !is_option(a)
            && variable
                .is_some_and(|v| ["SHELL", ".SHELLFLAGS", "MAKEFLAGS", "MAKESHELL"].contains(&v))
        {
            analyzer.find(
                Some(index),
                Decision::Approve,
                "exec.option",
                format!("make {} picks the program that runs every recipe", a.text),
                false,
            );
        }
        i += 1;
    }
}

/// `make -f FILE` and `make -C DIR` run the recipes of a makefile; one from outside the
/// known workspace (`/tmp/Makefile`, `-C /elsewhere`) is code the project does not hold,
/// so it needs approval. Standard input and descriptors are judged by `script_file`.
fn outside_workspace(analyzer: &mut Analyzer<'_>, index: usize, option: &str, w: &Word) {
    let text = w.text.as_str();
    if text == "-" || text.starts_with("/dev/") || text.starts_with("/proc/") {
        return;
    }
    let place = analyzer.place(w);
    let layout = &analyzer.filter.layout;
    let inside = match layout.workspace {
        Some(_) => layout.under_workspace(&place),
        None => place.root == Root::Relative && !text.split('/').any(|c| c == ".."),
    };
    if !inside {
        analyzer.find(
            Some(index),
            Decision::Approve,
            "exec.outside_recipes",
            format!(
                "make {option} {} runs recipes from outside the workspace",
                place.display()
            ),
            false,
        );
    }
}

/// `ip netns exec NS CMD` and `ip vrf exec VRF CMD` run a command (in another network
/// namespace, as root): the command is judged. `ip` accepts abbreviations (`ip netn e`).
fn ip(analyzer: &mut Analyzer<'_>, index: usize, args: &[Word], depth: usize) {
    let ops = operands(args);
    let Some((object, rest)) = ops.split_first() else {
        return;
    };
    let object = object.text.as_str();
    let namespaced =
        (object.len() >= 2 && "netns".starts_with(object)) || "vrf".starts_with(object);
    let exec = rest
        .first()
        .is_some_and(|w| !w.text.is_empty() && "exec".starts_with(w.text.as_str()));
    if !namespaced || !exec {
        return;
    }
    analyzer.find(
        Some(index),
        Decision::Approve,
        "privilege.namespace",
        "ip netns/vrf exec runs a command in another network namespace",
        false,
    );
    // The command is every word after the namespace's name, options included.
    let Some(exec_at) = rest
        .first()
        .and_then(|e| args.iter().position(|a| std::ptr::eq(a, *e)))
    else {
        return;
    };
    let inner: Vec<Word> = args.iter().skip(exec_at + 2).cloned().collect();
    analyzer.judge_inner(index, &inner, depth, &Stdin::default(), "ip");
}

/// `cmake -E TOOL ARGS` runs a built-in tool: the ones that delete or write are judged as
/// the program they stand for, `env`/`time`/`chdir` run a command, and `cmake -P FILE`
/// runs a script.
fn cmake(analyzer: &mut Analyzer<'_>, index: usize, args: &[Word], depth: usize) {
    if let Some(pos) = args.iter().position(|a| a.text == "-P")
        && let Some(script) = args.get(pos + 1)
    {
        script_file(
            analyzer,
            index,
            "cmake",
            None,
            script,
            depth,
            &Stdin::default(),
        );
    }
    let Some(pos) = args.iter().position(|a| a.text == "-E") else {
        return;
    };
    let Some(tool) = args.get(pos + 1) else {
        return;
    };
    let rest = args.get(pos + 2..).unwrap_or(&[]);
    let as_program = |program: &[&str]| -> Vec<Word> {
        program
            .iter()
            .map(|p| Word::lit(*p))
            .chain(rest.iter().cloned())
            .collect()
    };
    let inner: Vec<Word> = match tool.text.as_str() {
        "rm" => as_program(&["rm"]),
        "remove" => as_program(&["rm", "-f"]),
        "remove_directory" => as_program(&["rm", "-r", "-f"]),
        "rename" => as_program(&["mv"]),
        "copy" | "copy_if_different" => as_program(&["cp"]),
        "copy_directory" | "copy_directory_if_different" => as_program(&["cp", "-r"]),
        "make_directory" => as_program(&["mkdir", "-p"]),
        "touch" | "touch_nocreate" => as_program(&["touch"]),
        "create_symlink" => as_program(&["ln", "-s"]),
        "create_hardlink" => as_program(&["ln"]),
        "tar" => as_program(&["tar"]),
        "time" => rest.to_vec(),
        "chdir" => rest.get(1..).unwrap_or(&[]).to_vec(),
        "env" => {
            let mut env_rest = skip_options(rest, &[]);
            while let Some((first, tail)) = env_rest.split_first() {
                match first.text.split_once('=') {
                    Some((var, _)) if !var.is_empty() && !is_option(first) => {
                        let value = Word {
                            text: first.text.split_once('=').map_or("", |(_, v)| v).into(),
                            ..first.clone()
                        };
                        assignment(analyzer, Some(index), var, &value);
                        env_rest = tail;
                    }
                    _ => break,
                }
            }
            env_rest.to_vec()
        }
        "echo" | "echo_append" | "cat" | "compare_files" | "capabilities" | "environment"
        | "md5sum" | "sha1sum" | "sha224sum" | "sha256sum" | "sha384sum" | "sha512sum"
        | "sleep" | "true" | "false" | "help" => return,
        other => {
            analyzer.find(
                Some(index),
                Decision::Approve,
                "exec.option",
                format!("cmake -E {other} is a tool this filter does not model"),
                false,
            );
            return;
        }
    };
    analyzer.judge_inner(index, &inner, depth, &Stdin::default(), "cmake");
}
