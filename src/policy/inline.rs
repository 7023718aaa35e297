//! Code given inline to an interpreter (`python3 -c`, `perl -e`, `node -e`, `awk '...'`,
//! or piped in). No shell grammar applies, so this is a heuristic, and says so in its
//! reasons: the string literals of the code are judged as shell commands and as paths
//! (`os.system('rm -rf /')`, `open('/etc/shadow')`), and code that can spawn processes,
//! write or delete files, reach the network or build code at run time needs approval.
//! Code that does none of these (`print(6 * 7)`) is allowed. The sandbox stays the
//! backstop for what a heuristic cannot see.

use super::interpreters::Lang;
use super::rules::common::{read_target, written_by_line};
use super::state::Analyzer;
use super::verdict::Decision;
use super::words::{Stdin, Word, excerpt, is_option};

/// Capabilities recognised in code, with the rule they raise.
const CAPABILITIES: &[(&str, &str, &str)] = &[
    // Process execution.
    ("system(", "interpreter.inline_exec", "runs a shell command"),
    ("popen", "interpreter.inline_exec", "runs a shell command"),
    ("subprocess", "interpreter.inline_exec", "runs programs"),
    ("os.exec", "interpreter.inline_exec", "runs programs"),
    ("spawn", "interpreter.inline_exec", "runs programs"),
    ("child_process", "interpreter.inline_exec", "runs programs"),
    ("execsync", "interpreter.inline_exec", "runs programs"),
    (
        "shell_exec",
        "interpreter.inline_exec",
        "runs a shell command",
    ),
    (
        "passthru",
        "interpreter.inline_exec",
        "runs a shell command",
    ),
    ("proc_open", "interpreter.inline_exec", "runs programs"),
    ("qx", "interpreter.inline_exec", "runs a shell command"),
    (
        "io.popen",
        "interpreter.inline_exec",
        "runs a shell command",
    ),
    (
        "os.execute",
        "interpreter.inline_exec",
        "runs a shell command",
    ),
    ("kernel.", "interpreter.inline_exec", "runs programs"),
    ("pty", "interpreter.inline_exec", "opens a terminal"),
    (
        "| getline",
        "interpreter.inline_exec",
        "runs a command (awk pipe)",
    ),
    (
        "|getline",
        "interpreter.inline_exec",
        "runs a command (awk pipe)",
    ),
    (
        "| \"",
        "interpreter.inline_exec",
        "runs a command (awk pipe)",
    ),
    (
        "|\"",
        "interpreter.inline_exec",
        "runs a command (awk pipe)",
    ),
    (
        "system \"",
        "interpreter.inline_exec",
        "runs a shell command",
    ),
    (
        "system '",
        "interpreter.inline_exec",
        "runs a shell command",
    ),
    ("exec \"", "interpreter.inline_exec", "runs a program"),
    ("exec '", "interpreter.inline_exec", "runs a program"),
    (
        "print |",
        "interpreter.inline_exec",
        "runs a command (awk pipe)",
    ),
    (
        "print|",
        "interpreter.inline_exec",
        "runs a command (awk pipe)",
    ),
    ("rm_rf", "interpreter.inline_delete", "deletes a tree"),
    ("rm_r", "interpreter.inline_delete", "deletes a tree"),
    ("remove_dir", "interpreter.inline_delete", "deletes a tree"),
    ("remove_entry", "interpreter.inline_delete", "deletes files"),
    ("remove_tree", "interpreter.inline_delete", "deletes a tree"),
    ("rmtree", "interpreter.inline_delete", "deletes a tree"),
    ("file delete", "interpreter.inline_delete", "deletes files"),
    // The whole environment, where API keys live.
    (
        "os.environ)",
        "access.environment",
        "prints the environment",
    ),
    (
        "os.environ.items",
        "access.environment",
        "prints the environment",
    ),
    (
        "os.environ.copy",
        "access.environment",
        "prints the environment",
    ),
    (
        "process.env)",
        "access.environment",
        "prints the environment",
    ),
    (
        "process.env;",
        "access.environment",
        "prints the environment",
    ),
    (
        "stringify(process.env",
        "access.environment",
        "prints the environment",
    ),
    ("%env", "access.environment", "prints the environment"),
    ("env.to_h", "access.environment", "prints the environment"),
    ("env.to_a", "access.environment", "prints the environment"),
    ("env.each", "access.environment", "prints the environment"),
    (
        "env.inspect",
        "access.environment",
        "prints the environment",
    ),
    ("getenv()", "access.environment", "prints the environment"),
    ("$_env", "access.environment", "prints the environment"),
    ("$_server", "access.environment", "prints the environment"),
    ("in environ", "access.environment", "prints the environment"),
    // Run-time code and obfuscation.
    (
        "eval",
        "interpreter.inline_dynamic",
        "builds and runs code at run time",
    ),
    (
        "exec(",
        "interpreter.inline_dynamic",
        "builds and runs code at run time",
    ),
    (
        "compile(",
        "interpreter.inline_dynamic",
        "builds and runs code at run time",
    ),
    (
        "__import__",
        "interpreter.inline_dynamic",
        "imports modules by computed name",
    ),
    (
        "importlib",
        "interpreter.inline_dynamic",
        "imports modules by computed name",
    ),
    (
        "getattr",
        "interpreter.inline_dynamic",
        "looks functions up by computed name",
    ),
    (
        "b64decode",
        "interpreter.inline_dynamic",
        "decodes hidden data",
    ),
    (
        "base64",
        "interpreter.inline_dynamic",
        "decodes hidden data",
    ),
    (
        "fromcharcode",
        "interpreter.inline_dynamic",
        "builds strings from character codes",
    ),
    (
        "chr(",
        "interpreter.inline_dynamic",
        "builds strings from character codes",
    ),
    (
        "pack(",
        "interpreter.inline_dynamic",
        "builds data from codes",
    ),
    (
        "decode(",
        "interpreter.inline_dynamic",
        "decodes hidden data",
    ),
    (
        "codecs",
        "interpreter.inline_dynamic",
        "decodes hidden data",
    ),
    (
        "marshal",
        "interpreter.inline_dynamic",
        "loads code objects",
    ),
    ("pickle", "interpreter.inline_dynamic", "loads code objects"),
    ("ctypes", "interpreter.inline_dynamic", "calls native code"),
    ("require(", "interpreter.inline_dynamic", "loads modules"),
    ("\\x", "interpreter.inline_dynamic", "hides text in escapes"),
    // Files.
    (
        "rmtree",
        "interpreter.inline_delete",
        "deletes a directory tree",
    ),
    ("unlink", "interpreter.inline_delete", "deletes files"),
    ("remove(", "interpreter.inline_delete", "deletes files"),
    ("rmdir", "interpreter.inline_delete", "deletes directories"),
    ("rmsync", "interpreter.inline_delete", "deletes files"),
    ("fs.rm", "interpreter.inline_delete", "deletes files"),
    ("truncate", "interpreter.inline_write", "truncates files"),
    ("write", "interpreter.inline_write", "writes files"),
    ("'w'", "interpreter.inline_write", "writes files"),
    ("\"w\"", "interpreter.inline_write", "writes files"),
    ("'a'", "interpreter.inline_write", "writes files"),
    ("\"a\"", "interpreter.inline_write", "writes files"),
    ("'wb'", "interpreter.inline_write", "writes files"),
    ("open(f, \">", "interpreter.inline_write", "writes files"),
    ("chmod", "interpreter.inline_write", "changes file modes"),
    ("chown", "interpreter.inline_write", "changes file owners"),
    ("rename", "interpreter.inline_write", "moves files"),
    ("symlink", "interpreter.inline_write", "creates links"),
    ("copyfile", "interpreter.inline_write", "copies files"),
    (
        "shutil",
        "interpreter.inline_write",
        "copies, moves or deletes files",
    ),
    ("setuid", "interpreter.inline_exec", "changes its user id"),
    ("kill", "interpreter.inline_exec", "signals processes"),
    // Network.
    (
        "socket",
        "interpreter.inline_network",
        "opens network sockets",
    ),
    (
        "urllib",
        "interpreter.inline_network",
        "reaches the network",
    ),
    (
        "urlopen",
        "interpreter.inline_network",
        "reaches the network",
    ),
    (
        "requests",
        "interpreter.inline_network",
        "reaches the network",
    ),
    ("http", "interpreter.inline_network", "reaches the network"),
    (
        "fetch(",
        "interpreter.inline_network",
        "reaches the network",
    ),
    ("net.", "interpreter.inline_network", "reaches the network"),
    ("lwp", "interpreter.inline_network", "reaches the network"),
    (
        "io::socket",
        "interpreter.inline_network",
        "reaches the network",
    ),
    ("net::", "interpreter.inline_network", "reaches the network"),
    (
        "ftplib",
        "interpreter.inline_network",
        "reaches the network",
    ),
    (
        "smtplib",
        "interpreter.inline_network",
        "reaches the network",
    ),
    (
        "paramiko",
        "interpreter.inline_network",
        "reaches the network",
    ),
    (
        "/inet/",
        "interpreter.inline_network",
        "reaches the network (gawk)",
    ),
];

/// Calls that delete a whole tree (`shutil.rmtree`, `FileUtils.rm_rf`, `fs.rmSync(...,
/// {recursive})`, Perl's `remove_tree`, Tcl's `file delete -force`).
const TREE_DELETES: &[&str] = &[
    "rmtree",
    "rmsync",
    "recursive",
    "rm_rf",
    "rm_r(",
    "rm_r ",
    "remove_dir",
    "remove_entry",
    "remove_tree",
    "delete -force",
    "deltree",
];

/// How code names the home directory without a literal path.
const HOME_REFERENCES: &[&str] = &[
    "dir.home",
    "env['home']",
    "env[\"home\"]",
    "$env{home}",
    "$env{'home'}",
    "expanduser",
    "path.home",
    "homedir",
    "getenv(\"home\")",
    "getenv('home')",
    "environ['home']",
    "environ[\"home\"]",
    "env(home)",
    "\"~\"",
    "'~'",
    "\"~/\"",
    "'~/'",
];

/// Judges inline `code` in `lang` for the command `index`.
pub(super) fn judge(
    analyzer: &mut Analyzer<'_>,
    index: usize,
    lang: Lang,
    code: &str,
    depth: usize,
) {
    let cmd = Some(index);
    let lower = code.to_ascii_lowercase();
    let mut exec = false;
    let mut worst: Option<(&str, &str, &str)> = None;
    for (needle, rule, what) in CAPABILITIES {
        if lower.contains(needle) {
            exec |= *rule == "interpreter.inline_exec";
            if worst.is_none() {
                worst = Some((needle, rule, what));
            }
        }
    }
    if let Some(word) = exec_call(&lower) {
        exec = true;
        worst = Some((
            word,
            "interpreter.inline_exec",
            "runs a program or shell command",
        ));
    }
    // Backticks run shell commands in Perl, Ruby and PHP.
    if matches!(lang, Lang::Perl | Lang::Ruby | Lang::Php) && code.contains('`') {
        exec = true;
        worst.get_or_insert(("`", "interpreter.inline_exec", "runs a shell command"));
    }
    if let Some((needle, rule, what)) = worst {
        if rule == "interpreter.inline_network" {
            analyzer.network_reads += 1;
        }
        analyzer.find(
            cmd,
            Decision::Approve,
            rule,
            format!(
                "the inline {} code {what} ({needle:?} found; inline code is judged by a heuristic)",
                lang_name(lang)
            ),
            false,
        );
    }
    let literals = literals(code);
    for literal in &literals {
        // Every literal is checked as a path that would be read.
        let w = Word::lit(literal.as_str());
        read_target(analyzer, cmd, &w);
        let rm_tree = TREE_DELETES.iter().any(|d| lower.contains(d));
        if rm_tree {
            let place = analyzer.place(&w);
            if let Some(why) = analyzer.filter.layout.precious_tree(&place) {
                analyzer.find(
                    cmd,
                    Decision::Deny,
                    "destructive.rm_recursive_system",
                    format!(
                        "the inline code deletes the tree {}: {why}",
                        place.display()
                    ),
                    false,
                );
            }
        }
        if exec && literal.contains(' ') || exec && !literal.contains(' ') && literal.len() < 64 {
            // A literal handed to system()/popen(): judge it as shell code, keeping
            // only what is worse than "needs approval" (the capability already asks).
            deny_as_shell(analyzer, index, literal, depth);
        }
    }
    if TREE_DELETES.iter().any(|d| lower.contains(d))
        && HOME_REFERENCES.iter().any(|h| lower.contains(h))
    {
        analyzer.find(
            cmd,
            Decision::Deny,
            "destructive.rm_recursive_home",
            "the inline code deletes a tree under the home directory",
            false,
        );
    }
    if exec && literals.len() > 1 {
        // An argument vector (`subprocess.run(["rm", "-rf", "/"])`, `spawn("rm", [...])`):
        // the literals in order, read as one command line from each of the first ones on
        // (a module name such as "child_process" may come before the program).
        for start in 0..literals.len().saturating_sub(1).min(16) {
            let words = literals.get(start..).unwrap_or(&[]);
            deny_as_shell(analyzer, index, &words.join(" "), depth);
        }
    }
}

/// Judges `code` as shell code the inline code may run; only denials are kept.
fn deny_as_shell(analyzer: &mut Analyzer<'_>, index: usize, code: &str, depth: usize) {
    let mut nested = Analyzer::new(analyzer.filter);
    nested.cwd = analyzer.cwd.clone();
    nested.program(code, depth + 1);
    for finding in nested.findings {
        if finding.decision == Decision::Deny {
            analyzer.find(
                Some(index),
                Decision::Deny,
                &finding.rule,
                format!(
                    "the inline code runs a shell command that {}",
                    finding.reason
                ),
                false,
            );
        }
    }
}

fn lang_name(lang: Lang) -> &'static str {
    match lang {
        Lang::Python => "Python",
        Lang::Perl => "Perl",
        Lang::Ruby => "Ruby",
        Lang::Js => "JavaScript",
        Lang::Php => "PHP",
        Lang::Lua => "Lua",
        Lang::Awk => "awk",
        Lang::R => "R",
    }
}

/// The string literals in code: text between matching `'`, `"` or `` ` `` (escapes
/// kept simple: a backslash skips the next character), and the quote-like operators of
/// Perl (`q{...}`, `qq(...)`, `qx[...]`, `qw/.../`) and Ruby (`%x{...}`, `%q(...)`,
/// `%w[...]`, `%{...}`), whose brackets nest.
fn literals(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        let open = if c == '\'' || c == '"' || c == '`' {
            Some(c)
        } else {
            quote_operator(&chars, i - 1).map(|(delimiter, skip)| {
                i += skip;
                delimiter
            })
        };
        let Some(open) = open else {
            continue;
        };
        let close = match open {
            '{' => '}',
            '(' => ')',
            '[' => ']',
            '<' => '>',
            other => other,
        };
        let mut text = String::new();
        let mut nesting = 0usize;
        let mut closed = false;
        while let Some(&d) = chars.get(i) {
            i += 1;
            if d == '\\' {
                if let Some(&e) = chars.get(i) {
                    text.push(e);
                    i += 1;
                }
                continue;
            }
            if d == close && nesting == 0 {
                closed = true;
                break;
            }
            if open != close && d == open {
                nesting += 1;
            } else if open != close && d == close {
                nesting -= 1;
            }
            text.push(d);
        }
        if closed && !text.is_empty() && out.len() < 64 {
            out.push(text);
        }
    }
    out
}

/// A Perl or Ruby quote-like operator starting at `at`: its opening delimiter and how
/// many characters after `at` it spans (`qx{` spans 2 more).
fn quote_operator(chars: &[char], at: usize) -> Option<(char, usize)> {
    let before = at.checked_sub(1).and_then(|b| chars.get(b));
    if before.is_some_and(|b| b.is_ascii_alphanumeric() || *b == '_' || *b == '$' || *b == '@') {
        return None;
    }
    let word: String = chars.get(at..)?.iter().take(3).collect();
    let (len, bracket_only) =
        if word.starts_with("qq") || word.starts_with("qx") || word.starts_with("qw") {
            (2, false)
        } else if word.starts_with('q') {
            (1, false)
        } else if let Some(rest) = word.strip_prefix('%') {
            match rest.chars().next() {
                Some('x' | 'q' | 'Q' | 'w' | 'W' | 'i' | 'I') => (2, true),
                _ => (1, true),
            }
        } else {
            return None;
        };
    let delimiter = *chars.get(at + len)?;
    let allowed = if bracket_only {
        "{([<|!/^".contains(delimiter)
    } else {
        !delimiter.is_ascii_alphanumeric()
            && !delimiter.is_whitespace()
            && !"_=,;)".contains(delimiter)
    };
    allowed.then_some((delimiter, len))
}

/// Words that run a program when called, with or without parentheses (`system "x"`,
/// `system q{x}`, `exec('x')`, Ruby's `%x{x}`); `os.system(` counts, `filesystem` and
/// `System.out` do not.
const EXEC_WORDS: &[&str] = &[
    "system",
    "exec",
    "execv",
    "execvp",
    "spawn",
    "popen",
    "qx",
    "readpipe",
    "fork",
    "syscall",
    "open3",
    "popen3",
    "capture2",
    "capture3",
    "spawn_sync",
];

fn exec_call(code: &str) -> Option<&'static str> {
    let bytes = code.as_bytes();
    for word in EXEC_WORDS {
        let mut from = 0;
        while let Some(found) = code.get(from..).and_then(|rest| rest.find(word)) {
            let at = from + found;
            from = at + word.len();
            let before = at.checked_sub(1).and_then(|b| bytes.get(b));
            if before.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') {
                continue;
            }
            let after = code.get(at + word.len()..).unwrap_or("").trim_start();
            let next = after.chars().next();
            let called = next.is_some_and(|n| {
                (!n.is_ascii_alphanumeric() || after.starts_with('q')) && !"_=.:,;)]}".contains(n)
            });
            if called {
                return Some(word);
            }
        }
    }
    code.find("%x")
        .and_then(|at| code.get(at + 2..))
        .and_then(|rest| rest.chars().next())
        .filter(|d| "{([<|!/^".contains(*d))
        .map(|_| "%x")
}

/// Interpreters of languages this filter has no table of dangerous calls for, with the
/// options that give them code on the command line. Their code, from an option, a pipe, a
/// here-document or a here-string, cannot be judged, so it needs approval; shell commands
/// it visibly hands on (`exec rm -rf ~` in Tcl, `do shell script "..."` in AppleScript,
/// a string literal after `system`) are still judged, and a denial there stands.
const FOREIGN_INTERPRETERS: &[(&[&str], &[&str])] = &[
    (&["tclsh", "wish", "jimsh", "expect"], &["-c"]),
    (&["julia"], &["-e", "--eval", "-E", "--print"]),
    (&["guile"], &["-c"]),
    (&["racket"], &["-e", "--eval"]),
    (&["sbcl"], &["--eval"]),
    (&["clisp"], &["-x"]),
    (&["ecl"], &["-eval"]),
    (
        &[
            "ocaml",
            "jshell",
            "runghc",
            "runhaskell",
            "dart",
            "escript",
            "iex",
        ],
        &[],
    ),
    (&["ghci", "scala", "groovy", "elixir"], &["-e", "--eval"]),
    (&["erl"], &["-eval"]),
    (&["osascript"], &["-e"]),
    (
        &["pwsh", "powershell"],
        &["-c", "-Command", "-command", "-EncodedCommand", "-e", "-ec"],
    ),
    (&["octave", "octave-cli"], &["--eval"]),
    (&["gnuplot"], &["-e"]),
    (&["dc"], &["-e", "--expression"]),
    (&["swift"], &["-e"]),
    (&["crystal"], &["eval"]),
    (&["bc"], &[]),
];

/// Words after which the rest of a statement is a shell command in these languages.
const FOREIGN_SHELL_WORDS: &[&str] = &[
    "exec ",
    "spawn ",
    "system ",
    "shell ",
    "do shell script ",
    "run(",
    "os.execute ",
    "!",
];

/// Judges `name` when it is an interpreter of a language without a table; false when it
/// is not one.
pub(super) fn foreign_interpreter(
    analyzer: &mut Analyzer<'_>,
    index: usize,
    name: &str,
    args: &[Word],
    depth: usize,
    stdin: &Stdin,
) -> bool {
    let Some((_, code_options)) = FOREIGN_INTERPRETERS
        .iter()
        .find(|(names, _)| names.contains(&name))
    else {
        return false;
    };
    let cmd = Some(index);
    let mut code: Vec<&Word> = Vec::new();
    let mut script: Option<&Word> = None;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        i += 1;
        if code_options.contains(&a.text.as_str()) {
            code.extend(args.get(i));
            i += 1;
        } else if let Some((option, _)) = a.text.split_once('=')
            && code_options.contains(&option)
        {
            code.push(a);
        } else if !is_option(a) && script.is_none() && code.is_empty() {
            script = Some(a);
        }
    }
    for w in &code {
        if !w.is_static() {
            analyzer.find_dynamic_code(
                cmd,
                w.from_network,
                "obfuscation.dynamic_code",
                format!("{name} runs code that is only known when the line runs"),
            );
        }
        judge_foreign(analyzer, index, name, &w.text, depth);
    }
    if !code.is_empty() {
        return true;
    }
    let from_stdin = script.is_none_or(|s| s.text == "-" || s.text == "/dev/stdin");
    if !from_stdin {
        if let Some(script) = script {
            script_file(analyzer, index, name, None, script, depth, stdin);
        }
        return true;
    }
    if stdin.network {
        network_piped_into(analyzer, cmd, name);
    } else if let Some(text) = &stdin.text {
        judge_foreign(analyzer, index, name, text, depth);
    } else {
        analyzer.find(
            cmd,
            Decision::Approve,
            "interpreter.stdin_code",
            format!("{name} runs code from its input, which is not known before it runs"),
            false,
        );
    }
    true
}

/// Code in a language without a table: approval, plus the shell commands it visibly runs.
fn judge_foreign(analyzer: &mut Analyzer<'_>, index: usize, name: &str, code: &str, depth: usize) {
    analyzer.find(
        Some(index),
        Decision::Approve,
        "interpreter.unjudged_code",
        format!(
            "{name} runs code in a language this filter cannot judge ({})",
            excerpt(code)
        ),
        false,
    );
    let lower = code.to_ascii_lowercase();
    for statement in code.split(['\n', ';', '[', ']', '{', '}']) {
        let statement = statement.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        // Shell-like languages (PowerShell, Tcl) run many statements as commands.
        deny_as_shell(analyzer, index, statement, depth);
        for word in FOREIGN_SHELL_WORDS {
            if let Some(rest) = statement.strip_prefix(word) {
                let rest = rest.trim_end_matches(|c: char| c == ')' || c.is_whitespace());
                deny_as_shell(analyzer, index, rest.trim_matches(['"', '\'', '`']), depth);
            }
        }
    }
    for literal in literals(code) {
        if literal.contains(' ') {
            deny_as_shell(analyzer, index, &literal, depth);
        }
        read_target(analyzer, Some(index), &Word::lit(literal.as_str()));
    }
    if TREE_DELETES.iter().any(|d| lower.contains(d))
        && HOME_REFERENCES.iter().any(|h| lower.contains(h))
    {
        analyzer.find(
            Some(index),
            Decision::Deny,
            "destructive.rm_recursive_home",
            "the code deletes a tree under the home directory",
            false,
        );
    }
}

/// An interpreter runs a file: its content is not seen.
fn run_script(analyzer: &mut Analyzer<'_>, index: usize, name: &str, script: &Word) {
    analyzer.ran_local_code = true;
    if written_by_line(analyzer, script) {
        analyzer.find(
            Some(index),
            Decision::Approve,
            "exec.written_then_run",
            format!("{name} runs {}, which the same line wrote", script.text),
            false,
        );
    }
    if script.from_network {
        analyzer.find(
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
pub(crate) fn network_piped_into(analyzer: &mut Analyzer<'_>, cmd: Option<usize>, name: &str) {
    analyzer.find(
        cmd,
        Decision::Deny,
        "network.pipe_to_interpreter",
        format!("data from the network is piped into the interpreter {name}"),
        false,
    );
}

/// Code on standard input: from a pipe, a here-document, or a terminal.
pub(super) fn stdin_code(
    analyzer: &mut Analyzer<'_>,
    index: usize,
    name: &str,
    lang: Option<Lang>,
    depth: usize,
    stdin: &Stdin,
) {
    let cmd = Some(index);
    if stdin.network {
        network_piped_into(analyzer, cmd, name);
        return;
    }
    match (&stdin.text, lang) {
        (Some(code), None) => {
            analyzer.program(code, depth + 1);
        }
        (Some(code), Some(lang)) => judge(analyzer, index, lang, code, depth),
        (None, _) if stdin.unknown => analyzer.find(
            cmd,
            Decision::Approve,
            "interpreter.stdin_code",
            format!("{name} runs code from its input, which is not known before it runs"),
            false,
        ),
        (None, _) => analyzer.find(
            cmd,
            Decision::Approve,
            "interpreter.interactive",
            format!("{name} with no code starts an interactive interpreter"),
            false,
        ),
    }
}

/// An interpreter (or shell) runs the program file `script`: standard input when the
/// file is `/dev/stdin`; unknown code when it is another descriptor (`<(...)`); code the
/// same line wrote when the line created it; otherwise a file whose content is not seen.
pub(crate) fn script_file(
    analyzer: &mut Analyzer<'_>,
    index: usize,
    name: &str,
    lang: Option<Lang>,
    script: &Word,
    depth: usize,
    stdin: &Stdin,
) {
    let text = script.text.as_str();
    if ["/dev/stdin", "/dev/fd/0", "/proc/self/fd/0", "-"].contains(&text) {
        stdin_code(analyzer, index, name, lang, depth, stdin);
        return;
    }
    if text.starts_with("/dev/fd/") || text.starts_with("/proc/") || text.starts_with("/dev/tcp/") {
        analyzer.find(
            Some(index),
            Decision::Approve,
            "interpreter.descriptor_code",
            format!("{name} runs code read from {text}, which is not known before it runs"),
            false,
        );
    }
    run_script(analyzer, index, name, script);
}
