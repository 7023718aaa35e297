//! Settings that name a program to run later: compiler and linker choices, launchers,
//! plug-ins, shells, pagers and editors, whether they are given as an option of this
//! command (`cmake -DCMAKE_C_COMPILER_LAUNCHER=x`, `go build -ldflags=-extld=x`,
//! `cc -Wl,-plugin,x`, `clang -Xclang -load`), saved by a `config set`-style command for
//! every later run (`go env -w`, `npm config set script-shell`, `git config core.pager`,
//! `gh alias set`), or put in the environment (`CC=./x make`). The knowledge is one table
//! of setting names per tool family ([`CMAKE_SETTINGS`], [`GO_SETTINGS`],
//! [`NODE_PACKAGE_SETTINGS`], [`ENVIRONMENT_SETTINGS`]) and one list of compiler flags
//! that load or run code ([`CODE_FLAGS`]). A value that is an
//! ordinary toolchain program (`CC=clang`, `-DCMAKE_C_COMPILER=gcc-12`) is fine; any
//! other needs approval, and a value that is a command line is also judged as shell code,
//! so `npm config set script-shell 'rm -rf ~'` is denied like `rm -rf ~`. This never
//! judges files a program reads or writes: that is `rules/` and `outputs.rs`.

use super::state::Analyzer;
use super::verdict::Decision;
use super::words::{Word, excerpt, operands};

/// How a tool family's setting names are matched.
#[derive(Debug, Clone, Copy)]
enum Name {
    Exact(&'static str),
    Suffix(&'static str),
    Prefix(&'static str),
}

/// What a setting's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    /// A program, maybe with arguments (`CC="ccache gcc"`, `script-shell=/bin/sh`).
    Program,
    /// A file of code in the tool's own language (`CMAKE_TOOLCHAIN_FILE`): fine inside
    /// the workspace, which is the project's own code.
    CodeFile,
    /// Compiler or tool flags, which may load plug-ins or pick programs (`CGO_CFLAGS`,
    /// `GOFLAGS`, `NODE_OPTIONS`).
    Flags,
    /// Anything set there can run code (`yarnPath`, `alias.x`, `include.path`).
    Always,
}

use Name::{Exact, Prefix, Suffix};

const CMAKE_SETTINGS: &[(Name, Value)] = &[
    (Suffix("_COMPILER_LAUNCHER"), Value::Program),
    (Suffix("_LINKER_LAUNCHER"), Value::Program),
    (Suffix("_COMPILER"), Value::Program),
    (Suffix("_LINKER"), Value::Program),
    (Suffix("_CLANG_TIDY"), Value::Program),
    (Suffix("_CPPCHECK"), Value::Program),
    (Suffix("_CPPLINT"), Value::Program),
    (Suffix("_INCLUDE_WHAT_YOU_USE"), Value::Program),
    (Suffix("_EMULATOR"), Value::Program),
    (Exact("CMAKE_AR"), Value::Program),
    (Exact("CMAKE_RANLIB"), Value::Program),
    (Exact("CMAKE_NM"), Value::Program),
    (Exact("CMAKE_OBJCOPY"), Value::Program),
    (Exact("CMAKE_OBJDUMP"), Value::Program),
    (Exact("CMAKE_STRIP"), Value::Program),
    (Exact("CMAKE_MAKE_PROGRAM"), Value::Program),
    (Exact("CMAKE_TOOLCHAIN_FILE"), Value::CodeFile),
    (Prefix("CMAKE_PROJECT_"), Value::CodeFile),
    (Prefix("CMAKE_USER_MAKE_RULES_OVERRIDE"), Value::CodeFile),
    (Suffix("_FLAGS"), Value::Flags),
    (Suffix("_FLAGS_INIT"), Value::Flags),
];

const GO_SETTINGS: &[(Name, Value)] = &[
    (Exact("CC"), Value::Program),
    (Exact("CXX"), Value::Program),
    (Exact("FC"), Value::Program),
    (Exact("AR"), Value::Program),
    (Exact("PKG_CONFIG"), Value::Program),
    (Exact("GOROOT"), Value::Always),
    (Exact("GOENV"), Value::Always),
    (Exact("GOTOOLCHAIN"), Value::Program),
    (Exact("GOFLAGS"), Value::Flags),
    (Prefix("CGO_"), Value::Flags),
];

/// npm, pnpm and yarn keys, compared with `_` as `-` and without case.
const NODE_PACKAGE_SETTINGS: &[(Name, Value)] = &[
    (Exact("script-shell"), Value::Program),
    (Exact("shell"), Value::Program),
    (Exact("git"), Value::Program),
    (Exact("editor"), Value::Program),
    (Exact("browser"), Value::Program),
    (Exact("viewer"), Value::Program),
    (Exact("node-gyp"), Value::Program),
    (Exact("node-options"), Value::Flags),
    (Exact("init-module"), Value::Always),
    (Exact("onload-script"), Value::Always),
    (Exact("userconfig"), Value::Always),
    (Exact("globalconfig"), Value::Always),
    (Exact("yarnpath"), Value::Always),
    (Exact("yarn-path"), Value::Always),
    (Suffix("-path"), Value::Always),
];

/// Environment variables read by compilers and build tools.
const ENVIRONMENT_SETTINGS: &[(Name, Value)] = &[
    (Exact("CC"), Value::Program),
    (Exact("CXX"), Value::Program),
    (Exact("CPP"), Value::Program),
    (Exact("LD"), Value::Program),
    (Exact("AR"), Value::Program),
    (Exact("AS"), Value::Program),
    (Exact("FC"), Value::Program),
    (Exact("NM"), Value::Program),
    (Exact("RANLIB"), Value::Program),
    (Exact("STRIP"), Value::Program),
    (Exact("OBJCOPY"), Value::Program),
    (Exact("HOSTCC"), Value::Program),
    (Exact("CC_FOR_BUILD"), Value::Program),
    (Exact("PKG_CONFIG"), Value::Program),
    (Exact("MAKE"), Value::Program),
    (Exact("GOTOOLCHAIN"), Value::Program),
    (Suffix("_LAUNCHER"), Value::Program),
    (Suffix("_LINKER"), Value::Program),
    (Suffix("_COMPILER"), Value::Program),
    (Suffix("_WRAPPER"), Value::Program),
    (Exact("MAKEFILES"), Value::Always),
    (Exact("GOROOT"), Value::Always),
    (Exact("GOENV"), Value::Always),
    (Prefix("CGO_"), Value::Flags),
    (Suffix("FLAGS"), Value::Flags),
];

/// Compilers and linkers whose flags are read by [`compiler_flags_run_code`].
const COMPILERS: &[&str] = &[
    "gcc", "cc", "g++", "c++", "clang", "clang++", "gfortran", "cpp", "tcc", "musl-gcc", "ld",
    "ld.bfd", "ld.gold", "ld.lld", "lld", "mold",
];

/// Toolchain programs a setting may name without approval (also with a version or a
/// target prefix: `gcc-12`, `aarch64-linux-gnu-gcc`, `/usr/bin/clang`).
const ORDINARY_PROGRAMS: &[&str] = &[
    "gcc",
    "g++",
    "cc",
    "c++",
    "clang",
    "clang++",
    "tcc",
    "gfortran",
    "cpp",
    "ld",
    "lld",
    "mold",
    "ar",
    "ranlib",
    "nm",
    "strip",
    "objcopy",
    "objdump",
    "as",
    "ccache",
    "sccache",
    "pkg-config",
    "pkgconf",
    "make",
    "gmake",
    "ninja",
    "sh",
    "bash",
    "dash",
    "zsh",
    "vim",
    "vi",
    "nvim",
    "nano",
    "emacs",
    "less",
    "more",
    "local",
    "auto",
    "path",
];
/// Directories whose programs are the system's own.
const SYSTEM_BIN_DIRS: &[&str] = &["/bin/", "/usr/bin/", "/usr/local/bin/", "/usr/lib/ccache/"];

/// Compiler, linker and tool flags that load code or pick a program to run.
const CODE_FLAGS: &[&str] = &[
    "-wrapper",
    "-fplugin",
    "-fpass-plugin",
    "-specs",
    "--specs",
    "--ld-path",
    "--gcc-toolchain",
    "-toolexec",
    "-exec",
    "-extld",
    "-load",
    "-plugin",
    "--plugin",
    "-add-plugin",
    "--require",
    "--import",
    "--loader",
    "--experimental-loader",
    "-B",
];

fn setting_value(table: &[(Name, Value)], key: &str) -> Option<Value> {
    table.iter().find_map(|(name, value)| {
        let hit = match name {
            Exact(n) => key == *n,
            Suffix(s) => key.len() > s.len() && key.ends_with(s),
            Prefix(p) => key.len() > p.len() && key.starts_with(p),
        };
        hit.then_some(*value)
    })
}

/// Whether `program` is an ordinary toolchain program (a bare name or a system one).
fn ordinary_program(program: &str) -> bool {
    let base = match SYSTEM_BIN_DIRS.iter().find_map(|d| program.strip_prefix(d)) {
        Some(base) => base,
        None if program.contains('/') => return false,
        None => program,
    };
    let unversioned = base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    let tool = unversioned.rsplit('-').next().unwrap_or(unversioned);
    !base.is_empty()
        && base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-._".contains(c))
        && (ORDINARY_PROGRAMS.contains(&unversioned)
            || ORDINARY_PROGRAMS.contains(&tool)
            || base.starts_with("go1."))
}

/// The first flag in `words` that loads code or picks a program, with `-Wl,`/`-Xlinker`
/// and `-Xclang` values read as the flags they pass on.
pub(super) fn compiler_flags_run_code<'a>(
    words: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    for word in words {
        let passed: Vec<&str> = match word
            .strip_prefix("-Wl,")
            .or_else(|| word.strip_prefix("-Wp,"))
        {
            Some(list) => list.split(',').collect(),
            None => vec![word],
        };
        for flag in passed {
            let (head, value) = match flag.split_once('=') {
                Some((head, value)) => (head, Some(value)),
                None => (flag, None),
            };
            if CODE_FLAGS.contains(&head) && (head != "-B" || value.is_none()) {
                return Some(flag.to_string());
            }
            // `-ldflags=-extld=x`, `-extldflags=-fplugin=x`: flags passed on in a value.
            if let Some(inner) = value.filter(|v| v.starts_with('-'))
                && let Some(found) = compiler_flags_run_code(inner.split_whitespace())
            {
                return Some(found);
            }
            if flag.starts_with("-B") && flag.len() > 2 {
                return Some(flag.to_string());
            }
            if head == "-fuse-ld" && value.is_some_and(|v| v.contains('/')) {
                return Some(flag.to_string());
            }
            if (head == "-r" || head == "-e") && word == flag {
                // `NODE_OPTIONS='-r ./x.js'`: preloads a module.
                return Some(flag.to_string());
            }
        }
    }
    None
}

/// Judges `key` set to `value` by `how` (for the reason), for the command `cmd` (none
/// for a bare assignment, whose value is not run by this command).
fn judge_setting(
    analyzer: &mut Analyzer<'_>,
    cmd: Option<usize>,
    table: &[(Name, Value)],
    key: &str,
    value: &Word,
    how: &str,
    depth: usize,
) {
    let Some(kind) = setting_value(table, key) else {
        return;
    };
    let text = value.text.as_str();
    let words: Vec<&str> = text.split_whitespace().collect();
    let risky = match kind {
        Value::Always => true,
        Value::Program => {
            !value.is_static()
                || words.is_empty()
                || words
                    .iter()
                    .any(|w| !w.starts_with('-') && !ordinary_program(w))
                || compiler_flags_run_code(words.iter().copied()).is_some()
        }
        Value::CodeFile => {
            let place = analyzer.place(value);
            let relative_in_unknown_workspace = analyzer.filter.layout.workspace.is_none()
                && place.root == super::paths::Root::Relative
                && !text.contains("..");
            !(analyzer.filter.layout.inside_workspace(&place) || relative_in_unknown_workspace)
        }
        Value::Flags => {
            !value.is_static() || compiler_flags_run_code(words.iter().copied()).is_some()
        }
    };
    if !risky {
        return;
    }
    analyzer.find(
        cmd,
        Decision::Approve,
        "exec.program_setting",
        format!(
            "{how} sets {key}, which names a program or code that runs later ({})",
            excerpt(text)
        ),
        false,
    );
    let Some(index) = cmd else {
        return;
    };
    if kind == Value::Program && words.len() > 1 {
        analyzer.code_string(index, text, depth, value.from_network);
    } else if kind == Value::Always {
        let code = text.strip_prefix('!').unwrap_or(text);
        if code.contains(' ') {
            analyzer.code_string(index, code, depth, value.from_network);
        }
    }
}

/// An environment assignment (`CC=./evil make`) that names a program to run later.
/// `npm_config_script_shell=x` and `YARN_YARN_PATH=x` are the package managers' keys.
pub(super) fn environment(
    analyzer: &mut Analyzer<'_>,
    cmd: Option<usize>,
    name: &str,
    value: &Word,
    depth: usize,
) {
    let upper = name.to_ascii_uppercase();
    let package_key = upper
        .strip_prefix("NPM_CONFIG_")
        .or_else(|| upper.strip_prefix("YARN_"))
        .or_else(|| upper.strip_prefix("PNPM_CONFIG_"));
    match package_key {
        Some(key) => {
            let key = key.to_ascii_lowercase().replace('_', "-");
            judge_setting(
                analyzer,
                cmd,
                NODE_PACKAGE_SETTINGS,
                &key,
                value,
                "the environment",
                depth,
            );
        }
        None => judge_setting(
            analyzer,
            cmd,
            ENVIRONMENT_SETTINGS,
            name,
            value,
            "the environment",
            depth,
        ),
    }
}

/// Judges the settings `name` is given on its command line or saves for later runs.
pub(super) fn judge(
    analyzer: &mut Analyzer<'_>,
    index: usize,
    name: &str,
    args: &[Word],
    depth: usize,
) {
    match name {
        "cmake" => cmake(analyzer, index, args, depth),
        "go" => go(analyzer, index, args, depth),
        "npm" | "pnpm" | "yarn" | "bun" => node_packages(analyzer, index, name, args, depth),
        "gh" => gh(analyzer, index, args, depth),
        "git" => git_config(analyzer, index, args, depth),
        "rustup" | "update-alternatives" | "alternatives" => {
            let changes = args.iter().any(|a| {
                ["link", "--install", "--set", "--config", "--all"].contains(&a.text.as_str())
            });
            if changes {
                analyzer.find(
                    Some(index),
                    Decision::Approve,
                    "exec.program_setting",
                    format!("{name} changes which program a command name runs from now on"),
                    false,
                );
            }
        }
        _ => {}
    }
    if COMPILERS.contains(&name) {
        compiler(analyzer, index, name, args);
    }
}

fn compiler(analyzer: &mut Analyzer<'_>, index: usize, name: &str, args: &[Word]) {
    let mut words: Vec<&str> = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        match a.text.as_str() {
            "-Xclang" | "-Xlinker" | "-Xassembler" | "-Xpreprocessor" => {
                if let Some(next) = args.get(i + 1) {
                    words.push(next.text.as_str());
                }
                i += 1;
            }
            text => words.push(text),
        }
        i += 1;
    }
    if let Some(flag) = compiler_flags_run_code(words) {
        analyzer.find(
            Some(index),
            Decision::Approve,
            "exec.option",
            format!(
                "{name} {} loads a plug-in or runs a program given on the line",
                excerpt(&flag)
            ),
            false,
        );
    }
}

/// The value of `-X VALUE`, `-XVALUE` or `-X=VALUE` (and `--long=VALUE`) at `args[i]`.
fn value_at(args: &[Word], i: usize, option: &str) -> Option<(Word, bool)> {
    let a = args.get(i)?;
    if a.text == option {
        return args.get(i + 1).map(|n| (n.clone(), true));
    }
    let rest = a.text.strip_prefix(option)?;
    let rest = if option.starts_with("--") || option.len() > 2 {
        rest.strip_prefix('=')?
    } else {
        rest.strip_prefix('=').unwrap_or(rest)
    };
    let offset = a.text.len() - rest.len();
    Some((
        Word {
            text: rest.to_string(),
            wild_at: a.wild_at.map(|p| p.saturating_sub(offset)),
            ..a.clone()
        },
        false,
    ))
}

/// Splits `KEY=VALUE` into the key and a word for the value.
fn split_setting(w: &Word) -> Option<(String, Word)> {
    let (key, value) = w.text.split_once('=')?;
    let offset = key.len() + 1;
    Some((
        key.to_string(),
        Word {
            text: value.to_string(),
            wild_at: w.wild_at.map(|p| p.saturating_sub(offset)),
            ..w.clone()
        },
    ))
}

fn cmake(analyzer: &mut Analyzer<'_>, index: usize, args: &[Word], depth: usize) {
    let mut i = 0;
    while i < args.len() {
        if let Some((setting, used_next)) = value_at(args, i, "-D") {
            if let Some((key, value)) = split_setting(&setting) {
                let key = key.split(':').next().unwrap_or("").to_string();
                judge_setting(
                    analyzer,
                    Some(index),
                    CMAKE_SETTINGS,
                    &key,
                    &value,
                    "cmake -D",
                    depth,
                );
            }
            i += usize::from(used_next);
        } else if let Some((file, used_next)) =
            value_at(args, i, "--toolchain").or_else(|| value_at(args, i, "-C"))
        {
            judge_setting(
                analyzer,
                Some(index),
                CMAKE_SETTINGS,
                "CMAKE_TOOLCHAIN_FILE",
                &file,
                "cmake --toolchain/-C",
                depth,
            );
            i += usize::from(used_next);
        }
        i += 1;
    }
}

fn go(analyzer: &mut Analyzer<'_>, index: usize, args: &[Word], depth: usize) {
    let ops = operands(args);
    if ops.first().is_some_and(|w| w.text == "env") && args.iter().any(|a| a.text == "-w") {
        for setting in ops.iter().skip(1) {
            if let Some((key, value)) = split_setting(setting) {
                judge_setting(
                    analyzer,
                    Some(index),
                    GO_SETTINGS,
                    &key,
                    &value,
                    "go env -w",
                    depth,
                );
            }
        }
    }
    for i in 0..args.len() {
        for option in ["-ldflags", "--ldflags", "-gccgoflags", "--gccgoflags"] {
            if let Some((flags, _)) = value_at(args, i, option)
                && (!flags.is_static()
                    || compiler_flags_run_code(flags.text.split_whitespace()).is_some())
            {
                analyzer.find(
                    Some(index),
                    Decision::Approve,
                    "exec.option",
                    format!(
                        "go {option} names a linker or plug-in to run ({})",
                        excerpt(&flags.text)
                    ),
                    false,
                );
            }
        }
    }
}

/// `npm config set KEY VALUE`, `npm set KEY=VALUE`, `yarn config set KEY VALUE`,
/// `pnpm config set`, and `npm pkg set scripts.x=CODE` (a script later commands run).
fn node_packages(
    analyzer: &mut Analyzer<'_>,
    index: usize,
    name: &str,
    args: &[Word],
    depth: usize,
) {
    let ops = operands(args);
    let texts: Vec<&str> = ops.iter().map(|w| w.text.as_str()).collect();
    let after = |word: &str| -> &[Word] {
        args.iter()
            .position(|a| a.text == word)
            .and_then(|at| args.get(at + 1..))
            .unwrap_or(&[])
    };
    let settings: &[Word] = match texts.as_slice() {
        ["config" | "c", "set", ..] | ["set", ..] => after("set"),
        ["pkg", "set", ..] => {
            for setting in ops.iter().skip(2) {
                if let Some((key, value)) = split_setting(setting)
                    && key.starts_with("scripts.")
                {
                    analyzer.code_string(index, &value.text, depth, value.from_network);
                }
            }
            return;
        }
        _ => return,
    };
    // Options (`-g`, `--location=user`) may come between the pairs; a value may itself
    // look like an option (`node-options "--require x.js"`).
    let mut i = 0;
    while let Some(w) = settings.get(i) {
        i += 1;
        if w.text.starts_with('-') {
            if w.text == "--location" {
                i += 1;
            }
            continue;
        }
        let (key, value) = match split_setting(w) {
            Some((key, value)) => (key, value),
            None => {
                let value = settings.get(i).map_or_else(|| Word::lit(""), Word::clone);
                i += 1;
                (w.text.clone(), value)
            }
        };
        let key = key.to_ascii_lowercase().replace('_', "-");
        let key = key.rsplit(':').next().unwrap_or("").to_string();
        judge_setting(
            analyzer,
            Some(index),
            NODE_PACKAGE_SETTINGS,
            &key,
            &value,
            &format!("{name} config set"),
            depth,
        );
    }
}

/// `gh alias set NAME '!cmd'` (or `--shell`) saves a shell command; `gh config set
/// editor|pager|browser` names a program.
fn gh(analyzer: &mut Analyzer<'_>, index: usize, args: &[Word], depth: usize) {
    let ops = operands(args);
    let texts: Vec<&str> = ops.iter().map(|w| w.text.as_str()).collect();
    match texts.as_slice() {
        ["alias", "set", _, expansion, ..] => {
            let shell = args.iter().any(|a| a.text == "--shell" || a.text == "-s");
            if let Some(code) = expansion.strip_prefix('!').or(shell.then_some(*expansion)) {
                analyzer.find(
                    Some(index),
                    Decision::Approve,
                    "exec.program_setting",
                    "gh alias set saves a shell command that runs later",
                    false,
                );
                analyzer.code_string(index, code, depth, false);
            }
        }
        ["config", "set", key, value, ..]
            if ["editor", "pager", "browser"].contains(key) && !ordinary_program(value) =>
        {
            analyzer.find(
                Some(index),
                Decision::Approve,
                "exec.program_setting",
                format!("gh config set {key} names a program that runs later"),
                false,
            );
        }
        _ => {}
    }
}

/// `git config [--global] KEY VALUE` saving a key that runs a program: the value is
/// judged as the shell command git will run (`git config alias.x '!rm -rf ~'` is
/// denied). The write itself needs approval in `rules/`.
fn git_config(analyzer: &mut Analyzer<'_>, index: usize, args: &[Word], depth: usize) {
    let ops = operands(args);
    let Some(at) = ops.iter().position(|w| w.text == "config") else {
        return;
    };
    let rest: Vec<&&Word> = ops
        .iter()
        .skip(at + 1)
        .filter(|w| w.text != "set")
        .collect();
    let (Some(key), Some(value)) = (rest.first(), rest.get(1)) else {
        return;
    };
    let key = key.text.to_ascii_lowercase();
    let runs = key.starts_with("alias.")
        || super::rules::git::GIT_COMMAND_KEYS
            .iter()
            .any(|k| key.rsplit('.').next() == Some(k));
    if runs {
        let code = value.text.strip_prefix('!').unwrap_or(&value.text);
        analyzer.code_string(index, code, depth, value.from_network);
    }
}
