//! Code given inline to an interpreter (`python3 -c`, `perl -e`, `node -e`, `awk '...'`,
//! or piped in). No shell grammar applies, so this is a heuristic, and says so in its
//! reasons: the string literals of the code are judged as shell commands and as paths
//! (`os.system('rm -rf /')`, `open('/etc/shadow')`), and code that can spawn processes,
//! write or delete files, reach the network or build code at run time needs approval.
//! Code that does none of these (`print(6 * 7)`) is allowed. The sandbox stays the
//! backstop for what a heuristic cannot see.

use super::Decision;
use super::analyze::{Analyzer, W};
use super::rules::Lang;

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

/// Judges inline `code` in `lang` for the command `index`.
pub(super) fn judge(an: &mut Analyzer<'_>, index: usize, lang: Lang, code: &str, depth: usize) {
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
    // Backticks run shell commands in Perl, Ruby and PHP.
    if matches!(lang, Lang::Perl | Lang::Ruby | Lang::Php) && code.contains('`') {
        exec = true;
        worst.get_or_insert(("`", "interpreter.inline_exec", "runs a shell command"));
    }
    if let Some((needle, rule, what)) = worst {
        if rule == "interpreter.inline_network" {
            an.network_reads += 1;
        }
        an.find(
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
        let w = W::lit(literal.as_str());
        super::rules::read_target(an, cmd, &w);
        let rm_tree =
            lower.contains("rmtree") || lower.contains("rmsync") || lower.contains("recursive");
        if rm_tree {
            let place = an.place(&w);
            if let Some(why) = an.filter.layout.precious_tree(&place) {
                an.find(
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
            deny_as_shell(an, index, literal, depth);
        }
    }
    if exec && literals.len() > 1 {
        // An argument vector (`subprocess.run(["rm", "-rf", "/"])`, `spawn("rm", [...])`):
        // the literals in order, read as one command line from each of the first ones on
        // (a module name such as "child_process" may come before the program).
        for start in 0..literals.len().saturating_sub(1).min(16) {
            let words = literals.get(start..).unwrap_or(&[]);
            deny_as_shell(an, index, &words.join(" "), depth);
        }
    }
}

/// Judges `code` as shell code the inline code may run; only denials are kept.
fn deny_as_shell(an: &mut Analyzer<'_>, index: usize, code: &str, depth: usize) {
    let mut nested = Analyzer::new(an.filter);
    nested.cwd = an.cwd.clone();
    nested.program(code, depth + 1);
    for finding in nested.findings {
        if finding.decision == Decision::Deny {
            an.find(
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
/// kept simple: a backslash skips the next character).
fn literals(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = code.chars();
    while let Some(c) = chars.next() {
        if c == '\'' || c == '"' || c == '`' {
            let mut text = String::new();
            let mut closed = false;
            while let Some(d) = chars.next() {
                if d == '\\' {
                    if let Some(e) = chars.next() {
                        text.push(e);
                    }
                    continue;
                }
                if d == c {
                    closed = true;
                    break;
                }
                text.push(d);
            }
            if closed && !text.is_empty() && out.len() < 64 {
                out.push(text);
            }
        }
    }
    out
}
