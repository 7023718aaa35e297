//! A second look at text the shell parser refused. A line that does not parse still
//! needs approval, but when it also names something the rules deny (`rm -rf /` inside
//! broken quoting) it is denied: the text is cut at every shell operator, quotes and
//! backslashes are dropped, and each piece is judged as a plain command. This can only
//! make a verdict stricter; it never allows anything.

use super::state::Analyzer;
use super::verdict::Decision;
use super::words::{Stdin, Word};

/// Judges the pieces of unparseable `code`, keeping only deny findings.
pub(super) fn scan(analyzer: &mut Analyzer<'_>, code: &str, depth: usize) {
    let cleaned: String = code
        .chars()
        .map(|c| match c {
            ';' | '&' | '|' | '\n' | '(' | ')' | '`' | '{' | '}' | '<' | '>' => '\n',
            '\'' | '"' | '\\' | '$' => ' ',
            other => other,
        })
        .collect();
    let mut nested = Analyzer::new(analyzer.filter);
    nested.cwd = analyzer.cwd.clone();
    for line in cleaned.lines().take(super::verdict::MAX_COMMANDS) {
        let words: Vec<Word> = line.split_whitespace().map(Word::lit).collect();
        if words.is_empty() {
            continue;
        }
        let index = nested.record(&words);
        super::rules::judge(&mut nested, index, &words, depth + 1, &Stdin::default());
    }
    let quoteless: String = code
        .chars()
        .filter(|c| !matches!(c, '\'' | '"' | '\\'))
        .collect();
    for line in quoteless.split([';', '&', '|', '\n', '(', ')', '`', '{', '}', '<', '>']) {
        let words: Vec<Word> = line.split_whitespace().map(Word::lit).collect();
        if words.is_empty() {
            continue;
        }
        let index = nested.record(&words);
        super::rules::judge(&mut nested, index, &words, depth + 1, &Stdin::default());
    }
    for finding in nested.findings {
        if finding.decision == Decision::Deny {
            analyzer.find(
                None,
                Decision::Deny,
                &finding.rule,
                format!("the unparseable line also {}", finding.reason),
                false,
            );
        }
    }
}
