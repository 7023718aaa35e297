//! The shell grammar's entry: `brush-parser` with its options, and the guards that keep
//! it from input it cannot survive (NUL bytes, nesting deeper than it recurses, unclosed
//! parentheses it backtracks over). It never judges what a command does.

use super::verdict::{Decision, MAX_NESTING, MAX_UNCLOSED_PARENS};

/// The parser's options: bash, with extended globs.
pub(super) fn parser_options() -> brush_parser::ParserOptions {
    brush_parser::ParserOptions::default()
}

/// Parses shell code (after [`precheck`]); the error is for a person. The tokens are
/// looked at before the grammar sees them: see [`MAX_UNCLOSED_PARENS`].
pub(super) fn parse(code: &str) -> Result<brush_parser::ast::Program, String> {
    if empty_here_doc_tag(code) {
        // The tokenizer loops for ever (allocating) on some of these (`cat <<'' `); a
        // delimiter of nothing but quotes is no real command's.
        return Err("a here-document delimiter is made of quotes only".into());
    }
    if substituted_here_doc_tag(code) {
        // The tokenizer also loops for ever, allocating until memory runs out, on a
        // delimiter holding a substitution with a subshell (`cat <<a$( ( x ) ) `); found
        // by the fuzz target. Bash never expands a delimiter, so no real command has one.
        return Err("a here-document delimiter holds a command substitution".into());
    }
    if here_doc_in_expansion(code) {
        // The tokenizer reads a here-document inside `$(...)`, `${...}` or backquotes
        // with state that goes wrong on nesting: it loops or panics (an `unwrap` on the
        // end of input, which aborts a release gateway; found by the fuzz target with
        // `$(u(c$(cu<<x)"/)"`). Refused before it runs, as any text that has an
        // expansion opened before a `<<`.
        return Err("a here-document inside a command substitution or expansion".into());
    }
    let options = parser_options();
    let tokens = brush_parser::uncached_tokenize_str(code, &options.tokenizer_options())
        .map_err(|e| e.to_string())?;
    let mut open: usize = 0;
    for token in &tokens {
        if let brush_parser::Token::Operator(op, _) = token {
            for c in op.chars() {
                match c {
                    '(' => open += 1,
                    ')' => open = open.saturating_sub(1),
                    _ => {}
                }
            }
        }
    }
    if open > MAX_UNCLOSED_PARENS {
        return Err(format!("{open} parentheses are never closed"));
    }
    brush_parser::parse_tokens(&tokens, &options, &brush_parser::SourceInfo::default())
        .map_err(|e| e.to_string())
}

/// What the parser must not see: NUL bytes and nesting deeper than it can recurse.
pub(super) fn precheck(code: &str) -> Option<(Decision, &'static str, String)> {
    if code.contains('\0') {
        return Some((
            Decision::Deny,
            "input.nul_byte",
            "the command holds a NUL byte, which no shell command can contain".into(),
        ));
    }
    let mut depth: usize = 0;
    let mut max: usize = 0;
    let mut backslash_run = 0usize;
    for c in code.chars() {
        match c {
            '(' | '{' | '[' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | '}' | ']' => depth = depth.saturating_sub(1),
            '`' if backslash_run >= 7 => max = MAX_NESTING + 1,
            _ => {}
        }
        backslash_run = if c == '\\' { backslash_run + 1 } else { 0 };
    }
    if let Some(fd) = oversized_fd(code) {
        return Some((
            Decision::Deny,
            "input.bad_fd",
            format!("a redirection names the file descriptor {fd}, which cannot exist"),
        ));
    }
    (max > MAX_NESTING).then(|| {
        (
            Decision::Deny,
            "input.too_deep",
            format!("brackets or substitutions are nested more than {MAX_NESTING} levels deep"),
        )
    })
}

/// Whether a run of two or more `<` (a `<<` or `<<-`, possibly after `<<<` operators) is
/// followed by a delimiter word made only of quote characters, backslashes and other
/// white space (`''`, `"''"`, a carriage return), which the tokenizer turns into an empty
/// tag. The word is cut at blanks and operators, and here-strings are looked at too, so
/// this can only say yes more often than the tokenizer would loop.
pub(super) fn empty_here_doc_tag(code: &str) -> bool {
    let bytes = code.as_bytes();
    (0..bytes.len()).any(|at| {
        let starts_run = bytes.get(at) == Some(&b'<')
            && bytes.get(at + 1) == Some(&b'<')
            && (at == 0 || bytes.get(at - 1) != Some(&b'<'));
        if !starts_run {
            return false;
        }
        let run = bytes
            .get(at..)
            .unwrap_or(&[])
            .iter()
            .take_while(|b| **b == b'<')
            .count();
        let rest = code.get(at + run..).unwrap_or("");
        let rest = rest.strip_prefix('-').unwrap_or(rest);
        let rest = rest.trim_start_matches([' ', '\t']);
        let word: &str = rest
            .split(|c: char| matches!(c, ' ' | '\t' | '\n') || "<>|&;()".contains(c))
            .next()
            .unwrap_or("");
        word.chars()
            .all(|c| matches!(c, '\'' | '"' | '\\') || c.is_whitespace())
    })
}

/// Whether a `<<` or `<<-` is followed by a delimiter word holding `$(` or a backquote.
/// The word runs to the first blank, newline or operator other than a parenthesis, so
/// this can only say yes more often than the tokenizer would loop.
pub(super) fn substituted_here_doc_tag(code: &str) -> bool {
    code.match_indices("<<").any(|(at, _)| {
        let rest = code.get(at + 2..).unwrap_or("").trim_start_matches('<');
        let rest = rest.strip_prefix('-').unwrap_or(rest);
        let rest = rest.trim_start_matches([' ', '\t']);
        let word = rest
            .split(|c: char| matches!(c, ' ' | '\t' | '\n') || "<>|&;".contains(c))
            .next()
            .unwrap_or("");
        word.contains("$(") || word.contains('`')
    })
}

/// Whether a `<<` comes anywhere after the first `$(`, `${` or backquote: a here-document
/// that may sit inside an expansion. Quotes and closing brackets are not followed, so
/// this can only say yes more often than a here-document really is inside one;
/// `cat <<EOF` with substitutions in its body (the `<<` first) stays parseable.
pub(super) fn here_doc_in_expansion(code: &str) -> bool {
    let opened = ["$(", "${", "`"]
        .iter()
        .filter_map(|open| code.find(open))
        .min();
    opened.is_some_and(|at| code.get(at..).is_some_and(|rest| rest.contains("<<")))
}

/// A word of digits glued to `<` or `>` (`2147483648>x`) that does not fit an `i32`: the
/// parser reads it as a file descriptor with an `unwrap`, which would panic (and abort the
/// gateway in a release build). Found by the fuzz target. Digits after a letter or `_`
/// belong to a longer word and are left alone.
pub(super) fn oversized_fd(code: &str) -> Option<&str> {
    let bytes = code.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let offset = bytes.get(start..)?.iter().position(u8::is_ascii_digit)?;
        let begin = start + offset;
        let len = bytes
            .get(begin..)?
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let end = begin + len;
        let glued = matches!(bytes.get(end), Some(b'<' | b'>'));
        let in_word = begin
            .checked_sub(1)
            .and_then(|p| bytes.get(p))
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
        let digits = code.get(begin..end)?;
        if glued && !in_word && digits.parse::<i32>().is_err() {
            return Some(digits);
        }
        start = end;
    }
    None
}
