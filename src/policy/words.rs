//! Words as the rules see them: a word's text as far as it is known before the line runs
//! (and whether it is dynamic or read from the network), where standard input comes
//! from, and the small grammar every program shares (options, operands, the program's
//! own name). A leaf: it knows no rule and no program.

/// One word as far as it is known before the command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    /// The literal text; unknown parts stand as `*`.
    pub text: String,
    /// Byte offset of the first wildcard (unknown expansion or unquoted glob).
    pub wild_at: Option<usize>,
    /// Some part comes from an expansion whose value is not known.
    pub dynamic: bool,
    /// Some part is the output of a command that reads from the network.
    pub from_network: bool,
}

impl Word {
    pub fn lit(text: impl Into<String>) -> Word {
        Word {
            text: text.into(),
            wild_at: None,
            dynamic: false,
            from_network: false,
        }
    }

    /// A word whose value is unknown, with a known literal prefix.
    pub fn unknown(prefix: &str) -> Word {
        Word {
            text: format!("{prefix}*"),
            wild_at: Some(prefix.len()),
            dynamic: true,
            from_network: false,
        }
    }

    pub fn is_static(&self) -> bool {
        !self.dynamic && self.wild_at.is_none()
    }
}

/// Where a command's standard input comes from, when that matters (interpreters).
#[derive(Debug, Clone, Default)]
pub(crate) struct Stdin {
    /// The code text, when known (here-document, here-string, `echo ... |`).
    pub text: Option<String>,
    /// Data comes through a pipe or file whose content is unknown.
    pub unknown: bool,
    /// Data comes from a command that reads the network.
    pub network: bool,
}

/// A short, quoted excerpt of code for messages.
pub(crate) fn excerpt(code: &str) -> String {
    let short: String = code.chars().take(60).collect();
    if short.len() < code.len() {
        format!("{short:?}...")
    } else {
        format!("{short:?}")
    }
}

/// The program name a word runs: its last path component (`/bin/rm` is `rm`).
pub(crate) fn program_name(text: &str) -> String {
    text.rsplit('/').next().unwrap_or(text).to_string()
}

pub(crate) fn is_option(w: &Word) -> bool {
    w.text.starts_with('-') && w.text.len() > 1
}

/// Short-option cluster letters (`-rf` has `r` and `f`); empty for long options.
pub(crate) fn short_flags(w: &Word) -> &str {
    if w.text.starts_with("--") {
        return "";
    }
    w.text.strip_prefix('-').unwrap_or("")
}

pub(crate) fn has_flag(args: &[Word], short: char, long: &[&str]) -> bool {
    args.iter().any(|a| {
        (is_option(a) && short_flags(a).contains(short))
            || long
                .iter()
                .any(|l| a.text == *l || a.text.starts_with(&format!("{l}=")))
    })
}

/// Arguments that are not options (everything after `--` counts).
pub(crate) fn operands(args: &[Word]) -> Vec<&Word> {
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

/// Skips options of a wrapper: `with_value` lists options that take the next argument.
pub(crate) fn skip_options<'a>(args: &'a [Word], with_value: &[&str]) -> &'a [Word] {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a.text == "--" {
            return args.get(i + 1..).unwrap_or(&[]);
        }
        if !is_option(a) {
            break;
        }
        let takes_value = with_value.contains(&a.text.as_str());
        i += if takes_value { 2 } else { 1 };
    }
    args.get(i..).unwrap_or(&[])
}
