//! Each interpreter's command-line grammar, as data: which options take a value (and
//! whether the value may be the next word or must be glued on), which option introduces
//! inline code, a module to run, or a program file. The walk in `rules/` reads an
//! interpreter's words with this table the way the interpreter itself would, so an option
//! with a value (`python3 -W ignore -c ...`, `node --stack-size 100 -e ...`,
//! `perl -M strict -e ...`) never ends the search for the code. It never judges the code:
//! that is `inline.rs`.

/// How an option takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Takes {
    /// No value (`-B`, `--version`).
    Nothing,
    /// A value, glued (`-Wignore`, `--opt=v`) or as the next word (`-W ignore`).
    Value,
    /// A value that is only ever glued on (`perl -i.bak`, `perl -0777`): the next word is
    /// not consumed.
    GluedValue,
    /// Optional digits glued on (`perl -l`, `-l0`, `-0777`, `ruby -W0`); the letters after
    /// them are more options of the cluster (`perl -lane`).
    Digits,
    /// Inline code, glued or the next word (`-c CODE`, `--eval=CODE`).
    Code,
    /// A module to run (`python3 -m pytest`); the rest of the words are its arguments.
    Module,
    /// A program file (`awk -f prog.awk`).
    ProgramFile,
}

/// One interpreter's grammar: every option it knows, short (one letter, may be bundled:
/// `-Bc CODE`) and long. An option not in the table is read as possibly taking the next
/// word as its value, so a code flag after it is still found.
#[derive(Debug)]
pub(super) struct Grammar {
    pub short: &'static [(char, Takes)],
    pub long: &'static [(&'static str, Takes)],
}

use Takes::{Code, Digits, GluedValue, Module, Nothing, ProgramFile, Value};

const PYTHON: Grammar = Grammar {
    short: &[
        ('b', Nothing),
        ('B', Nothing),
        ('d', Nothing),
        ('E', Nothing),
        ('h', Nothing),
        ('i', Nothing),
        ('I', Nothing),
        ('O', Nothing),
        ('P', Nothing),
        ('q', Nothing),
        ('R', Nothing),
        ('s', Nothing),
        ('S', Nothing),
        ('u', Nothing),
        ('v', Nothing),
        ('V', Nothing),
        ('x', Nothing),
        ('3', Nothing),
        ('W', Value),
        ('X', Value),
        ('Q', Value),
        ('c', Code),
        ('m', Module),
    ],
    long: &[
        ("--help", Nothing),
        ("--help-env", Nothing),
        ("--help-xoptions", Nothing),
        ("--help-all", Nothing),
        ("--version", Nothing),
        ("--check-hash-based-pycs", Value),
    ],
};

const PERL: Grammar = Grammar {
    short: &[
        ('a', Nothing),
        ('c', Nothing),
        ('f', Nothing),
        ('g', Nothing),
        ('h', Nothing),
        ('n', Nothing),
        ('p', Nothing),
        ('s', Nothing),
        ('S', Nothing),
        ('t', Nothing),
        ('T', Nothing),
        ('u', Nothing),
        ('U', Nothing),
        ('v', Nothing),
        ('V', GluedValue),
        ('w', Nothing),
        ('W', Nothing),
        ('X', Nothing),
        ('0', Digits),
        ('C', GluedValue),
        ('d', GluedValue),
        ('D', GluedValue),
        ('F', GluedValue),
        ('i', GluedValue),
        ('l', Digits),
        ('x', GluedValue),
        ('I', Value),
        ('M', Value),
        ('m', Value),
        ('e', Code),
        ('E', Code),
    ],
    long: &[("--help", Nothing), ("--version", Nothing)],
};

const RUBY: Grammar = Grammar {
    short: &[
        ('a', Nothing),
        ('c', Nothing),
        ('d', Nothing),
        ('h', Nothing),
        ('l', Nothing),
        ('n', Nothing),
        ('p', Nothing),
        ('s', Nothing),
        ('S', Nothing),
        ('v', Nothing),
        ('w', Nothing),
        ('y', Nothing),
        ('0', Digits),
        ('K', GluedValue),
        ('T', Digits),
        ('W', Digits),
        ('x', GluedValue),
        ('i', GluedValue),
        ('F', Value),
        ('C', Value),
        ('E', Value),
        ('I', Value),
        ('r', Value),
        ('e', Code),
    ],
    long: &[
        ("--help", Nothing),
        ("--version", Nothing),
        ("--verbose", Nothing),
        ("--copyright", Nothing),
        ("--yydebug", Nothing),
        ("--jit", Nothing),
        ("--yjit", Nothing),
        ("--encoding", Value),
        ("--external-encoding", Value),
        ("--internal-encoding", Value),
        ("--enable", Value),
        ("--disable", Value),
        ("--dump", Value),
    ],
};

const NODE: Grammar = Grammar {
    short: &[
        ('c', Nothing),
        ('h', Nothing),
        ('i', Nothing),
        ('v', Nothing),
        ('C', Value),
        ('r', Value),
        ('e', Code),
        ('p', Code),
    ],
    long: &[
        ("--help", Nothing),
        ("--version", Nothing),
        ("--check", Nothing),
        ("--interactive", Nothing),
        ("--test", Nothing),
        ("--watch", Nothing),
        ("--no-warnings", Nothing),
        ("--enable-source-maps", Nothing),
        ("--experimental-vm-modules", Nothing),
        ("--require", Value),
        ("--import", Value),
        ("--loader", Value),
        ("--experimental-loader", Value),
        ("--conditions", Value),
        ("--input-type", Value),
        ("--title", Value),
        ("--env-file", Value),
        ("--stack-size", Value),
        ("--max-old-space-size", Value),
        ("--eval", Code),
        ("--print", Code),
    ],
};

const PHP: Grammar = Grammar {
    short: &[
        ('a', Nothing),
        ('e', Nothing),
        ('h', Nothing),
        ('H', Nothing),
        ('i', Nothing),
        ('l', Nothing),
        ('m', Nothing),
        ('n', Nothing),
        ('q', Nothing),
        ('s', Nothing),
        ('v', Nothing),
        ('w', Nothing),
        ('c', Value),
        ('d', Value),
        ('z', Value),
        ('t', Value),
        ('S', Value),
        ('F', ProgramFile),
        ('f', ProgramFile),
        ('B', Code),
        ('E', Code),
        ('R', Code),
        ('r', Code),
    ],
    long: &[
        ("--help", Nothing),
        ("--version", Nothing),
        ("--ini", Nothing),
        ("--define", Value),
        ("--php-ini", Value),
        ("--file", ProgramFile),
        ("--process-begin", Code),
        ("--process-code", Code),
        ("--process-end", Code),
        ("--process-file", ProgramFile),
        ("--run", Code),
    ],
};

const LUA: Grammar = Grammar {
    short: &[
        ('i', Nothing),
        ('v', Nothing),
        ('E', Nothing),
        ('W', Nothing),
        ('l', Value),
        ('e', Code),
    ],
    long: &[],
};

const R: Grammar = Grammar {
    short: &[('e', Code)],
    long: &[
        ("--help", Nothing),
        ("--version", Nothing),
        ("--vanilla", Nothing),
        ("--default-packages", Value),
    ],
};

const AWK: Grammar = Grammar {
    short: &[
        ('b', Nothing),
        ('c', Nothing),
        ('C', Nothing),
        ('g', Nothing),
        ('h', Nothing),
        ('M', Nothing),
        ('N', Nothing),
        ('O', Nothing),
        ('P', Nothing),
        ('r', Nothing),
        ('s', Nothing),
        ('S', Nothing),
        ('t', Nothing),
        ('V', Nothing),
        ('F', Value),
        ('v', Value),
        ('W', Value),
        ('d', GluedValue),
        ('D', GluedValue),
        ('L', GluedValue),
        ('o', GluedValue),
        ('p', GluedValue),
        ('l', ProgramFile),
        ('i', ProgramFile),
        ('f', ProgramFile),
        ('E', ProgramFile),
        ('e', Code),
    ],
    long: &[
        ("--help", Nothing),
        ("--version", Nothing),
        ("--posix", Nothing),
        ("--traditional", Nothing),
        ("--sandbox", Nothing),
        ("--characters-as-bytes", Nothing),
        ("--field-separator", Value),
        ("--assign", Value),
        ("--file", ProgramFile),
        ("--include", ProgramFile),
        ("--load", ProgramFile),
        ("--exec", ProgramFile),
        ("--source", Code),
    ],
};

/// The grammar of an interpreter family.
pub(super) fn grammar(lang: Lang) -> &'static Grammar {
    match lang {
        Lang::Python => &PYTHON,
        Lang::Perl => &PERL,
        Lang::Ruby => &RUBY,
        Lang::Js => &NODE,
        Lang::Php => &PHP,
        Lang::Lua => &LUA,
        Lang::R => &R,
        Lang::Awk => &AWK,
    }
}

/// What an interpreter's words say it runs.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Invocation {
    /// Inline code, by the index of the word that holds it and the code text (a glued
    /// value is cut out of its word).
    pub code: Vec<(usize, String)>,
    /// Program files named by options (`awk -f F`, `php -f F`), as the file name.
    pub program_files: Vec<String>,
    /// `python3 -m MODULE`: the module word and where its arguments start.
    pub module: Option<(usize, String)>,
    /// The first operand: the script (or, for awk without code options, the program).
    pub operand: Option<usize>,
    /// `-` (or `--` followed by nothing): code comes from standard input.
    pub dash: bool,
    /// Options the table does not know (each was read as possibly taking a value).
    pub unknown_options: Vec<String>,
    /// Only `--version`/`--help`-like options: nothing runs.
    pub informs_only: bool,
}

/// Reads `args` (the words after the interpreter's name) by `lang`'s grammar.
pub(super) fn read(lang: Lang, args: &[String]) -> Invocation {
    let g = grammar(lang);
    let mut inv = Invocation::default();
    let is_code_flag = |w: &str| classify(g, w).is_some_and(|t| t == Code);
    let mut informs = false;
    let mut i = 0;
    // An unknown option may have taken the next word as its value: that word is not
    // taken as the script, and the options after it are still read.
    let mut maybe_value = false;
    while let Some(word) = args.get(i) {
        let next_is_value = |inv_i: usize| {
            args.get(inv_i + 1)
                .filter(|n| !is_code_flag(n))
                .map(|_| inv_i + 1)
        };
        if word == "--" {
            if let Some(j) = args.get(i + 1).map(|_| i + 1) {
                inv.operand.get_or_insert(j);
            } else {
                inv.dash = true;
            }
            break;
        }
        if word == "-" {
            inv.dash = true;
            break;
        }
        if !word.starts_with('-') || word.len() < 2 {
            if maybe_value {
                maybe_value = false;
                i += 1;
                continue;
            }
            inv.operand = Some(i);
            break;
        }
        maybe_value = false;
        if let Some(long) = word.strip_prefix("--") {
            let (name, glued) = match long.split_once('=') {
                Some((n, v)) => (format!("--{n}"), Some(v.to_string())),
                None => (word.clone(), None),
            };
            let takes = g.long.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
            match takes {
                Some(Nothing) => {
                    informs |= matches!(name.as_str(), "--version" | "--help");
                }
                Some(Value | GluedValue | Digits) => {
                    if glued.is_none() && next_is_value(i).is_some() {
                        i += 1;
                    }
                }
                Some(Code) => match glued {
                    Some(code) => inv.code.push((i, code)),
                    None => {
                        if let Some(code) = args.get(i + 1) {
                            inv.code.push((i + 1, code.clone()));
                            i += 1;
                        }
                    }
                },
                Some(ProgramFile) => match glued {
                    Some(file) => inv.program_files.push(file),
                    None => {
                        if let Some(file) = args.get(i + 1) {
                            inv.program_files.push(file.clone());
                            i += 1;
                        }
                    }
                },
                Some(Module) => {}
                None => {
                    inv.unknown_options.push(name);
                    maybe_value = glued.is_none();
                }
            }
            i += 1;
            continue;
        }
        // A cluster of short options: `-Bc`, `-Wignore`, `-pie`.
        let cluster: Vec<char> = word.chars().skip(1).collect();
        let mut k = 0;
        while let Some(&c) = cluster.get(k) {
            let rest: String = cluster.iter().skip(k + 1).collect();
            let takes = g.short.iter().find(|(s, _)| *s == c).map(|(_, t)| *t);
            match takes {
                Some(Nothing) => {
                    informs |= matches!(c, 'v' | 'V' | 'h') && lang != Lang::Awk;
                    k += 1;
                    continue;
                }
                Some(GluedValue) => {}
                Some(Digits) => {
                    // Octal digits, or `x` and hex digits (`-0x1F`).
                    let digits = match rest.strip_prefix('x') {
                        Some(hex) => 1 + hex.chars().take_while(char::is_ascii_hexdigit).count(),
                        None => rest.chars().take_while(|d| d.is_digit(8)).count(),
                    };
                    k += 1 + digits;
                    continue;
                }
                Some(Value) => {
                    if rest.is_empty() && next_is_value(i).is_some() {
                        i += 1;
                    }
                }
                Some(Code) => {
                    if !rest.is_empty() {
                        // `node -pe CODE`, `ruby -ne CODE`: what follows a code flag may
                        // be more flags rather than code. Judge both readings.
                        let more_flags = rest.chars().all(|r| g.short.iter().any(|(s, _)| *s == r));
                        inv.code.push((i, rest));
                        if more_flags {
                            k += 1;
                            continue;
                        }
                    } else if let Some(code) = args.get(i + 1) {
                        inv.code.push((i + 1, code.clone()));
                        i += 1;
                    }
                }
                Some(ProgramFile) => {
                    if !rest.is_empty() {
                        inv.program_files.push(rest);
                    } else if let Some(file) = args.get(i + 1) {
                        inv.program_files.push(file.clone());
                        i += 1;
                    }
                }
                Some(Module) => {
                    let module = if rest.is_empty() {
                        args.get(i + 1).map(|m| (i + 1, m.clone()))
                    } else {
                        Some((i, rest))
                    };
                    inv.module = module;
                    return inv;
                }
                None => {
                    inv.unknown_options.push(format!("-{c}"));
                    maybe_value = rest.is_empty();
                }
            }
            break;
        }
        i += 1;
    }
    inv.informs_only = informs
        && inv.code.is_empty()
        && inv.program_files.is_empty()
        && inv.operand.is_none()
        && !inv.dash;
    inv
}

/// How a whole word is read as one option (for "is this word a code flag").
fn classify(g: &Grammar, word: &str) -> Option<Takes> {
    if let Some(long) = word.strip_prefix("--") {
        let name = format!("--{}", long.split_once('=').map_or(long, |(n, _)| n));
        return g.long.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
    }
    let mut chars = word.strip_prefix('-')?.chars();
    let c = chars.next()?;
    g.short.iter().find(|(s, _)| *s == c).map(|(_, t)| *t)
}

/// The interpreter family of a program name, if it runs code in a language.
pub(super) fn language(name: &str) -> Option<Lang> {
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
pub(crate) enum Lang {
    Python,
    Perl,
    Ruby,
    Js,
    Php,
    Lua,
    Awk,
    R,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    fn code_of(lang: Lang, line: &str) -> Vec<String> {
        read(lang, &words(line))
            .code
            .into_iter()
            .map(|(_, c)| c)
            .collect()
    }

    #[test]
    fn options_with_values_do_not_end_the_search_for_code() {
        assert_eq!(code_of(Lang::Python, "-W ignore -c X"), ["X"]);
        assert_eq!(code_of(Lang::Python, "-X dev -c X"), ["X"]);
        assert_eq!(code_of(Lang::Python, "-Wignore -c X"), ["X"]);
        assert_eq!(code_of(Lang::Python, "-Bc X"), ["X"]);
        assert_eq!(code_of(Lang::Python, "-cX"), ["X"]);
        assert_eq!(code_of(Lang::Js, "--stack-size 100 -e X"), ["X"]);
        assert_eq!(code_of(Lang::Js, "--eval=X"), ["X"]);
        assert_eq!(code_of(Lang::Js, "--unknown-flag 1 -p X"), ["X"]);
        assert_eq!(code_of(Lang::Perl, "-M strict -e X"), ["X"]);
        assert_eq!(code_of(Lang::Perl, "-Mstrict -E Y -e X"), ["Y", "X"]);
        assert_eq!(code_of(Lang::Perl, "-i -e X"), ["X"]);
        assert_eq!(code_of(Lang::Perl, "-pi -e X"), ["X"]);
        assert_eq!(code_of(Lang::Perl, "-lane X"), ["X"]);
        assert_eq!(code_of(Lang::Perl, "-0777 -ne X"), ["X"]);
        assert_eq!(code_of(Lang::Ruby, "-I x -e X"), ["X"]);
        assert_eq!(code_of(Lang::Php, "-d x=1 -r X"), ["X"]);
        assert_eq!(code_of(Lang::Awk, "--source X"), ["X"]);
    }

    #[test]
    fn scripts_modules_and_stdin_are_told_apart() {
        let inv = read(Lang::Python, &words("-u script.py -c x"));
        assert_eq!((inv.operand, inv.code.len()), (Some(1), 0));
        let inv = read(Lang::Python, &words("-m pytest -q"));
        assert_eq!(inv.module, Some((1, "pytest".to_string())));
        assert!(read(Lang::Python, &words("-")).dash);
        assert!(read(Lang::Python, &words("--version")).informs_only);
        assert!(!read(Lang::Python, &words("--version x.py")).informs_only);
        let inv = read(Lang::Awk, &words("-F : -f prog.awk data"));
        assert_eq!(inv.program_files, ["prog.awk"]);
    }
}
