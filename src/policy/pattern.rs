//! The argument pattern of user rules: a glob over the arguments joined by single spaces.
//! `*` matches any run of characters (spaces included), `?` one character, `\` makes the
//! next character literal; everything else matches itself. Written by hand because it is
//! twenty lines and must run in linear-ish time on attacker-chosen text: matching keeps
//! one backtrack point (the classic wildcard algorithm), so it is O(pattern × text) at
//! worst, never exponential.

/// One pattern element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    One,
    Any,
}

/// A compiled argument glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

/// Longest pattern accepted, in characters.
const MAX_PATTERN: usize = 1024;

impl Glob {
    /// Compiles `pattern`; the error says what is wrong with it.
    pub fn parse(pattern: &str) -> Result<Glob, String> {
        if pattern.chars().count() > MAX_PATTERN {
            return Err(format!("pattern is longer than {MAX_PATTERN} characters"));
        }
        let mut tokens = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => {
                    if tokens.last() == Some(&Token::Any) {
                        continue;
                    }
                    Token::Any
                }
                '?' => Token::One,
                '\\' => match chars.next() {
                    Some(next) => Token::Literal(next),
                    None => {
                        return Err(format!(
                            "pattern {pattern:?} ends with a lone backslash (write \\\\ for a literal one)"
                        ));
                    }
                },
                other => Token::Literal(other),
            });
        }
        Ok(Glob { tokens })
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let (mut p, mut t) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match (self.tokens.get(p), text.get(t)) {
                (Some(Token::Any), _) => {
                    star = Some((p, t));
                    p += 1;
                }
                (Some(Token::One), Some(_)) => {
                    p += 1;
                    t += 1;
                }
                (Some(Token::Literal(l)), Some(c)) if l == c => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        p = sp + 1;
                        t = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens
            .get(p..)
            .is_some_and(|rest| rest.iter().all(|t| *t == Token::Any))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_argument_strings() {
        let g = Glob::parse("status*").unwrap();
        assert!(g.matches("status"));
        assert!(g.matches("status --short"));
        assert!(!g.matches("push status"));
        let g = Glob::parse("log -? *").unwrap();
        assert!(g.matches("log -n 5"));
        assert!(!g.matches("log --n 5"));
        assert!(Glob::parse("").unwrap().matches(""));
        assert!(!Glob::parse("").unwrap().matches("x"));
        assert!(Glob::parse("a\\*b").unwrap().matches("a*b"));
        assert!(!Glob::parse("a\\*b").unwrap().matches("axb"));
        assert!(Glob::parse("x\\").is_err());
        assert!(Glob::parse(&"a".repeat(2000)).is_err());
        assert!(
            Glob::parse("*a*a*a*a*b")
                .unwrap()
                .matches(&format!("{}b", "a".repeat(500)))
        );
        assert!(!Glob::parse("*a*a*a*a*b").unwrap().matches(&"a".repeat(500)));
    }
}
