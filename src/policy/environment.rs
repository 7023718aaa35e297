//! Commands that print the environment, and expansions of variables named like secrets.
//! The environment of a tool call is where API keys and tokens usually live, so printing
//! all of it (`printenv`, `env` with no command, `export -p`, `declare -x`, `set`,
//! `jq -n env`, `ps e`) or a variable named like a credential (`echo $GITHUB_TOKEN`,
//! `printenv OPENAI_API_KEY`) needs approval, like reading `/proc/self/environ`. Printing
//! one ordinary variable (`printenv PATH`, `echo $HOME`) is fine. This never judges what
//! an assignment changes: that is `rules/` and `settings.rs`.

use super::state::Analyzer;
use super::verdict::Decision;
use super::words::{Word, is_option, operands, skip_options};

/// Parts of variable names that mark a credential (`AWS_SECRET_ACCESS_KEY`,
/// `GITHUB_TOKEN`, `PGPASSWORD`, `OPENAI_API_KEY`).
const SECRET_NAME_PARTS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "CREDENTIAL",
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
    "PRIVATE_KEY",
    "AUTH_KEY",
    "SESSION_KEY",
    "_KEY",
];

/// Whether a variable's name marks it as a credential.
pub(super) fn secret_variable(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_PARTS
        .iter()
        .any(|part| upper.contains(part) && !(part == &"_KEY" && upper.ends_with("_KEYS")))
        || upper == "KEY"
}

fn found(analyzer: &mut Analyzer<'_>, index: usize, what: String) {
    analyzer.find(
        Some(index),
        Decision::Approve,
        "access.environment",
        format!("{what}, which may hold API keys and tokens"),
        false,
    );
}

/// Judges `name` for printing the environment or a secret variable.
pub(super) fn judge(analyzer: &mut Analyzer<'_>, index: usize, name: &str, args: &[Word]) {
    let ops = operands(args);
    match name {
        "printenv" => match ops
            .iter()
            .find(|w| !w.is_static() || secret_variable(&w.text))
        {
            Some(w) => found(analyzer, index, format!("printenv prints {}", w.text)),
            None if ops.is_empty() => {
                found(analyzer, index, "printenv prints the environment".into())
            }
            None => {}
        },
        "env" => {
            let args: Vec<Word> = args.iter().filter(|a| a.text != "-").cloned().collect();
            let rest = skip_options(&args, &["-u", "--unset", "-C", "--chdir", "-P"]);
            let splits = args
                .iter()
                .any(|a| a.text.starts_with("-S") || a.text.starts_with("--split-string"));
            let command = rest
                .iter()
                .find(|a| !a.text.contains('=') || a.text.starts_with('='));
            if command.is_none() && !splits {
                found(
                    analyzer,
                    index,
                    "env with no command prints the environment".into(),
                );
            }
        }
        "export" | "declare" | "typeset" | "readonly" => {
            let prints = args.is_empty()
                || (ops.is_empty()
                    && args.iter().all(|a| {
                        is_option(a) && a.text.chars().skip(1).all(|c| "pxr".contains(c))
                    }));
            if prints {
                found(
                    analyzer,
                    index,
                    format!("{name} with no names prints the variables"),
                );
            }
        }
        "set" if args.is_empty() => found(
            analyzer,
            index,
            "set with no arguments prints every variable".into(),
        ),
        "compgen" if args.iter().any(|a| a.text == "-v" || a.text == "-e") => {}
        "jq" | "gojq" | "jaq" => {
            let filter = ops.first().map_or("", |w| w.text.as_str());
            let mentions_env = filter.contains("$ENV")
                || filter
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '$')
                    .any(|word| word == "env");
            if mentions_env {
                found(
                    analyzer,
                    index,
                    format!("{name} reads the environment ({filter})"),
                );
            }
        }
        "ps" => {
            // BSD-style options (no dash): `e` shows each process's environment.
            let bsd_e = args.iter().any(|a| {
                !a.text.starts_with('-')
                    && a.text.chars().all(|c| c.is_ascii_alphabetic())
                    && a.text.contains('e')
            });
            let environ_column = args.iter().any(|a| a.text.contains("environ"));
            if bsd_e || environ_column {
                found(
                    analyzer,
                    index,
                    "ps e prints the environment of processes".into(),
                );
            }
        }
        _ => {}
    }
}

/// A `$NAME` expansion in a word: a credential's value would be printed or passed on.
pub(super) fn expansion(analyzer: &mut Analyzer<'_>, name: &str) {
    if secret_variable(name) {
        analyzer.find(
            None,
            Decision::Approve,
            "access.secret_variable",
            format!("the line expands ${name}, which is named like a credential"),
            false,
        );
    }
}
