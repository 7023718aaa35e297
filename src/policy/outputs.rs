//! Files a program writes because an option or an operand names them (`sort -o FILE`,
//! `uniq IN OUT`, `gcc -o BIN`, `git archive -o`, `openssl ... -out`, `gzip FILE`). The
//! knowledge is one table, [`OUTPUT_RULES`], one row per program family and written
//! place; every place it yields goes through the same write judgement redirections get
//! (`rules::write_target`), so `sort -o /etc/passwd` is judged like `> /etc/passwd`. This
//! never judges what a program reads or runs: that is `rules/` and `exec_options.rs`.

use super::rules::common::write_target;
use super::state::Analyzer;
use super::words::{Word, is_option, operands};

/// Which words of a command name a file it writes.
#[derive(Debug, Clone, Copy)]
enum Written {
    /// The value of an option: `-o FILE`, `-oFILE`, `-xo FILE` (the last letter of a
    /// cluster), `--output FILE`, `--output=FILE` and unambiguous prefixes (`--out=`).
    Option(&'static str),
    /// The value of an option only ever written as its own word (`openssl -out FILE`,
    /// `find -fprint FILE`), or with `=`.
    WordOption(&'static str),
    /// The operand at this position (`uniq IN OUT`: the second); the listed options take
    /// the next word as their value, which is not an operand.
    Operand {
        at: usize,
        value_options: &'static [&'static str],
    },
    /// Every operand, unless one of these options makes the program write elsewhere
    /// (`gzip FILE` replaces FILE with FILE.gz; `gzip -c FILE` writes to its output).
    OperandsUnless(&'static [&'static str]),
}

/// One way a family of programs writes a file.
struct OutputRule {
    programs: &'static [&'static str],
    /// Only after this subcommand (`git archive`, `go build`).
    subcommand: Option<&'static str>,
    written: Written,
}

const fn option(programs: &'static [&'static str], name: &'static str) -> OutputRule {
    OutputRule {
        programs,
        subcommand: None,
        written: Written::Option(name),
    }
}

const fn word_option(programs: &'static [&'static str], name: &'static str) -> OutputRule {
    OutputRule {
        programs,
        subcommand: None,
        written: Written::WordOption(name),
    }
}

const fn sub_option(
    programs: &'static [&'static str],
    subcommand: &'static str,
    name: &'static str,
) -> OutputRule {
    OutputRule {
        programs,
        subcommand: Some(subcommand),
        written: Written::Option(name),
    }
}

const fn operand(
    programs: &'static [&'static str],
    at: usize,
    value_options: &'static [&'static str],
) -> OutputRule {
    OutputRule {
        programs,
        subcommand: None,
        written: Written::Operand { at, value_options },
    }
}

const COMPILERS: &[&str] = &[
    "gcc", "cc", "g++", "c++", "clang", "clang++", "gfortran", "cpp", "tcc", "ld", "ld.bfd",
    "ld.gold", "ld.lld", "lld", "mold", "as", "nasm", "rustc", "musl-gcc",
];
const COMPRESSORS: &[&str] = &[
    "gzip",
    "gunzip",
    "bzip2",
    "bunzip2",
    "xz",
    "unxz",
    "lzma",
    "unlzma",
    "zstd",
    "unzstd",
    "lz4",
    "lzip",
    "compress",
    "uncompress",
    "pigz",
    "pbzip2",
];
/// Options after which a compressor writes to its standard output or only checks.
const TO_STDOUT: &[&str] = &[
    "-c",
    "--stdout",
    "--to-stdout",
    "-t",
    "--test",
    "-l",
    "--list",
];
const SPLIT_VALUES: &[&str] = &["-a", "-b", "-C", "-l", "-n", "-t"];
const UNIQ_VALUES: &[&str] = &["-f", "-s", "-w"];
const XXD_VALUES: &[&str] = &["-c", "-g", "-l", "-s", "-o", "-n", "-cols", "-len", "-seek"];
const OBJCOPY_VALUES: &[&str] = &[
    "-I", "-O", "-B", "-j", "-R", "-K", "-N", "-G", "-W", "-L", "-b", "-i",
];
const PATCH_VALUES: &[&str] = &["-p", "-d", "-i", "-r", "-B", "-z", "-F", "-D", "-V", "-Y"];

/// Options and operands that name a file the program writes.
const OUTPUT_RULES: &[OutputRule] = &[
    option(&["sort", "shuf"], "-o"),
    option(&["sort", "shuf"], "--output"),
    operand(&["uniq"], 1, UNIQ_VALUES),
    operand(&["xxd"], 1, XXD_VALUES),
    operand(&["split"], 1, SPLIT_VALUES),
    option(&["csplit"], "-f"),
    option(&["csplit"], "--prefix"),
    operand(&["objcopy", "llvm-objcopy"], 1, OBJCOPY_VALUES),
    option(&["strip", "llvm-strip", "objcopy"], "-o"),
    option(&["patch"], "-o"),
    option(&["patch"], "--output"),
    option(&["patch"], "-d"),
    option(&["patch"], "--directory"),
    option(&["patch"], "-r"),
    option(&["patch"], "--reject-file"),
    operand(&["patch"], 0, PATCH_VALUES),
    option(&["iconv", "uconv"], "-o"),
    option(&["iconv"], "--output"),
    word_option(&["openssl"], "-out"),
    word_option(&["openssl"], "-keyout"),
    sub_option(&["git"], "archive", "-o"),
    sub_option(&["git"], "archive", "--output"),
    sub_option(&["git"], "format-patch", "-o"),
    sub_option(&["git"], "format-patch", "--output-directory"),
    option(COMPILERS, "-o"),
    option(COMPILERS, "-MF"),
    option(&["rustc"], "--out-dir"),
    option(&["cargo"], "--target-dir"),
    option(&["cargo"], "--artifact-dir"),
    sub_option(&["go"], "build", "-o"),
    sub_option(&["go"], "test", "-o"),
    option(&["javac"], "-d"),
    option(
        &["gpg", "gpg2", "age", "pandoc", "zstd", "base64", "dot"],
        "-o",
    ),
    option(
        &["gpg", "gpg2", "age", "pandoc", "zstd", "base64"],
        "--output",
    ),
    option(&["curl"], "-o"),
    option(&["curl"], "--output"),
    option(&["curl"], "--output-dir"),
    option(&["curl"], "-D"),
    option(&["curl"], "--dump-header"),
    option(&["curl"], "-c"),
    option(&["curl"], "--cookie-jar"),
    option(&["curl"], "--trace"),
    option(&["curl"], "--trace-ascii"),
    option(&["curl"], "--stderr"),
    option(&["wget"], "-O"),
    option(&["wget"], "--output-document"),
    option(&["wget"], "-P"),
    option(&["wget"], "--directory-prefix"),
    option(&["wget"], "-o"),
    option(&["wget"], "--output-file"),
    option(&["wget"], "-a"),
    option(&["wget"], "--append-output"),
    option(&["unzip"], "-d"),
    option(&["tcpdump"], "-w"),
    option(&["strace", "ltrace"], "-o"),
    option(&["genisoimage", "mkisofs", "xorriso"], "-o"),
    option(&["zip"], "-O"),
    option(&["zip"], "--output-file"),
    option(&["script"], "-O"),
    option(&["script"], "--log-out"),
    option(&["script"], "-I"),
    option(&["script"], "--log-in"),
    option(&["script"], "-T"),
    option(&["script"], "--log-timing"),
    option(&["script"], "-B"),
    option(&["script"], "--log-io"),
    operand(&["script"], 0, &["-c", "-E", "-O", "-I", "-T", "-B", "-m"]),
    operand(&["sponge"], 0, &[]),
    operand(&["zip"], 0, &["-b", "-n", "-t", "-tt", "-P", "-Z", "-O"]),
    word_option(&["find"], "-fprint"),
    word_option(&["find"], "-fprint0"),
    word_option(&["find"], "-fprintf"),
    word_option(&["find"], "-fls"),
    OutputRule {
        programs: COMPRESSORS,
        subcommand: None,
        written: Written::OperandsUnless(TO_STDOUT),
    },
];

/// Judges every file `name` writes because an option or operand names it.
pub(super) fn judge(analyzer: &mut Analyzer<'_>, index: usize, name: &str, args: &[Word]) {
    if ["tar", "bsdtar", "gtar"].contains(&name)
        && let Some(archive) = tar_archive_written(args)
    {
        write_target(analyzer, Some(index), &archive);
    }
    for rule in OUTPUT_RULES.iter().filter(|r| r.programs.contains(&name)) {
        let args = match rule.subcommand {
            None => args,
            Some(sub) => match args.iter().position(|a| a.text == sub) {
                Some(at) => args.get(at + 1..).unwrap_or(&[]),
                None => continue,
            },
        };
        for target in written(rule.written, args) {
            write_target(analyzer, Some(index), &target);
        }
    }
}

/// The words of `args` that name a written file under `written`.
fn written(written: Written, args: &[Word]) -> Vec<Word> {
    let mut out = Vec::new();
    match written {
        Written::Option(name) | Written::WordOption(name) => {
            let glued = matches!(written, Written::Option(_));
            let mut i = 0;
            while let Some(a) = args.get(i) {
                if a.text == "--" {
                    break;
                }
                if let Some((value, used_next)) = option_value(name, glued, a, args.get(i + 1)) {
                    out.push(value);
                    if used_next {
                        i += 1;
                    }
                }
                i += 1;
            }
        }
        Written::Operand { at, value_options } => {
            let mut ops = Vec::new();
            let mut i = 0;
            let mut after_dashes = false;
            while let Some(a) = args.get(i) {
                i += 1;
                if after_dashes || !is_option(a) {
                    ops.push(a.clone());
                } else if a.text == "--" {
                    after_dashes = true;
                } else if value_options.contains(&a.text.as_str()) {
                    i += 1;
                }
            }
            out.extend(ops.into_iter().nth(at));
        }
        Written::OperandsUnless(elsewhere) => {
            let to_stdout = args.iter().take_while(|a| a.text != "--").any(|a| {
                elsewhere.contains(&a.text.as_str())
                    || (is_option(a)
                        && !a.text.starts_with("--")
                        && elsewhere.iter().any(|e| {
                            e.len() == 2
                                && e.chars()
                                    .nth(1)
                                    .is_some_and(|c| a.text.get(1..).unwrap_or("").contains(c))
                        }))
            });
            if !to_stdout {
                out.extend(operands(args).into_iter().cloned());
            }
        }
    }
    out
}

/// The value `name` has in the word `a`: after `=`, glued (`-oFILE`, when `glued`), at
/// the end of a short cluster (`-uo FILE`), or the next word.
fn option_value(name: &str, glued: bool, a: &Word, next: Option<&Word>) -> Option<(Word, bool)> {
    let text = a.text.as_str();
    let tail = |offset: usize| Word {
        text: text.get(offset..).unwrap_or("").to_string(),
        wild_at: a.wild_at.map(|p| p.saturating_sub(offset)),
        ..a.clone()
    };
    let from_next = || next.map(|n| (n.clone(), true));
    if text == name {
        return from_next();
    }
    if let Some(long) = name.strip_prefix("--") {
        // GNU getopt takes any unambiguous prefix of a long option.
        let (given, value) = match text.strip_prefix("--")?.split_once('=') {
            Some((given, _)) => (given, true),
            None => (text.strip_prefix("--")?, false),
        };
        if given.is_empty() || !long.starts_with(given) || given.len() < long.len().min(3) {
            return None;
        }
        return if value {
            Some((tail(2 + given.len() + 1), false))
        } else {
            from_next()
        };
    }
    if let Some(rest) = text.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
        return Some((tail(text.len() - rest.len()), false));
    }
    if !glued {
        return None;
    }
    if text.starts_with(name) && text.len() > name.len() {
        return Some((tail(name.len()), false));
    }
    let letter = name.strip_prefix('-').filter(|l| l.chars().count() == 1)?;
    // `-uo FILE`: the option letter ends a cluster of flags.
    let cluster = text.strip_prefix('-').filter(|c| !c.starts_with('-'))?;
    (cluster.len() > 1
        && cluster.ends_with(letter)
        && cluster.chars().all(|c| c.is_ascii_alphabetic()))
    .then(from_next)
    .flatten()
}

/// The archive `tar` writes when it creates or appends (`tar -czf OUT`, `tar czf OUT`,
/// `tar --create --file=OUT`, `tar -rf OUT`); extraction writes where `-C` says, which
/// `rules/` judges.
fn tar_archive_written(args: &[Word]) -> Option<Word> {
    let first = args.first()?;
    // The old style: the first word is a cluster of letters without a dash (`czf`).
    let old_style =
        !first.text.starts_with('-') && first.text.chars().all(|c| c.is_ascii_alphabetic());
    let mode_letters = |w: &Word| -> String {
        if std::ptr::eq(w, first) && old_style {
            w.text.clone()
        } else if w.text.starts_with('-') && !w.text.starts_with("--") {
            w.text
                .chars()
                .skip(1)
                .take_while(char::is_ascii_alphabetic)
                .collect()
        } else {
            String::new()
        }
    };
    let writes = args.iter().any(|a| {
        ["--create", "--append", "--update", "--concatenate"].contains(&a.text.as_str())
            || mode_letters(a).contains(['c', 'r', 'u', 'A'])
    });
    if !writes {
        return None;
    }
    if old_style && first.text.contains('f') {
        // `tar czf OUT ...`: the letters' values follow in the order of the letters.
        let at = first
            .text
            .chars()
            .filter(|c| "fbC".contains(*c))
            .position(|c| c == 'f')?;
        return args.get(1 + at).cloned();
    }
    written(Written::Option("-f"), args)
        .into_iter()
        .chain(written(Written::Option("--file"), args))
        .next()
}
