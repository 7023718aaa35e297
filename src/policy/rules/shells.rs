//! Shells and language interpreters: the code they would run, from `-c`, a script file,
//! standard input (a pipe, here-document or here-string) or a module (`python -m`).
//! Shell code goes back to the walk one level deeper; code in another language goes to
//! `inline`. Which interpreter options carry code is `interpreters`' grammar, not here.

use super::super::inline::{script_file, stdin_code};
use super::common::*;

pub(super) const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "rbash", "yash", "fish", "tcsh", "csh",
    "pdksh", "oksh", "posh",
];

pub(super) fn shell(
    analyzer: &mut Analyzer<'_>,
    index: usize,
    name: &str,
    args: &[Word],
    depth: usize,
    stdin: &Stdin,
) {
    let cmd = Some(index);
    let mut i = 0;
    let mut code_next = false;
    let mut reads_stdin = false;
    while let Some(a) = args.get(i) {
        if code_next {
            analyzer.code_word(index, a, depth);
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
        analyzer.find(
            cmd,
            Decision::Approve,
            "interpreter.missing_code",
            format!("{name} -c without code"),
            false,
        );
        return;
    }
    match args.get(i) {
        Some(script) if !reads_stdin => {
            script_file(analyzer, index, name, None, script, depth, stdin)
        }
        _ => stdin_code(analyzer, index, name, None, depth, stdin),
    }
}

pub(super) fn interpreter(
    analyzer: &mut Analyzer<'_>,
    index: usize,
    lang: Lang,
    name: &str,
    args: &[Word],
    depth: usize,
    stdin: &Stdin,
) {
    let cmd = Some(index);
    let texts: Vec<String> = args.iter().map(|a| a.text.clone()).collect();
    let inv = super::super::interpreters::read(lang, &texts);
    let dynamic_code = |analyzer: &mut Analyzer<'_>, w: &Word| {
        if w.is_static() {
            return;
        }
        let network = w.from_network;
        analyzer.find_dynamic_code(
            cmd,
            network,
            "obfuscation.dynamic_code",
            format!("{name} runs code that is only known when the line runs"),
        );
    };
    for (at, code) in &inv.code {
        if let Some(w) = args.get(*at) {
            dynamic_code(analyzer, w);
        }
        super::super::inline::judge(analyzer, index, lang, code, depth);
    }
    for file in &inv.program_files {
        let w = args
            .iter()
            .find(|a| a.text.ends_with(file.as_str()))
            .cloned()
            .unwrap_or_else(|| Word::lit(file.clone()));
        let w = Word {
            text: file.clone(),
            ..w
        };
        script_file(analyzer, index, name, Some(lang), &w, depth, stdin);
    }
    if let Some((at, module)) = &inv.module {
        python_module(analyzer, index, module, args.get(at + 1..).unwrap_or(&[]));
        return;
    }
    if lang == Lang::Perl {
        // perl -pi -e: files edited in place are the operands after the code.
        let in_place = args
            .iter()
            .any(|a| is_option(a) && short_flags(a).contains('i'));
        if in_place && let Some((last_code, _)) = inv.code.last() {
            for target in operands(args.get(last_code + 1..).unwrap_or(&[])) {
                write_target(analyzer, cmd, target);
            }
        }
    }
    if !inv.code.is_empty() || !inv.program_files.is_empty() || inv.informs_only {
        return;
    }
    if lang == Lang::Awk {
        // The first operand is the program.
        if let Some(code) = inv.operand.and_then(|at| args.get(at)) {
            dynamic_code(analyzer, code);
            super::super::inline::judge(analyzer, index, lang, &code.text, depth);
        }
        return;
    }
    match inv.operand.and_then(|at| args.get(at)) {
        Some(script) if !inv.dash => {
            script_file(analyzer, index, name, Some(lang), script, depth, stdin)
        }
        _ => stdin_code(analyzer, index, name, Some(lang), depth, stdin),
    }
}

pub(super) fn python_module(
    analyzer: &mut Analyzer<'_>,
    index: usize,
    module: &str,
    rest: &[Word],
) {
    let cmd = Some(index);
    match module {
        "http.server" | "SimpleHTTPServer" | "smtpd" | "pyftpdlib" => analyzer.find(
            cmd,
            Decision::Approve,
            "network.listen",
            format!("python -m {module} opens a network server"),
            false,
        ),
        "pip" => pip(analyzer, index, rest),
        _ => {}
    }
}

pub(super) fn pip(analyzer: &mut Analyzer<'_>, index: usize, args: &[Word]) {
    if let Some(sub) = operands(args).first()
        && ["install", "uninstall", "download", "wheel"].contains(&sub.text.as_str())
    {
        analyzer.find(
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
