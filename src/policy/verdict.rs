//! What a judgement is made of: the verdicts in order of severity, one finding of a rule,
//! and the limits on what one line may hold. A leaf: it knows nothing of how a line is
//! read or which rule found what.

use serde::{Deserialize, Serialize};

/// Longest command accepted, in bytes; longer ones are denied unread.
pub const MAX_INPUT: usize = 64 * 1024;
/// Levels of commands inside commands (substitutions, wrappers, `sh -c`) followed.
pub const MAX_DEPTH: usize = 10;
/// Deepest bracket nesting handed to the parser (which recurses on it).
pub const MAX_NESTING: usize = 48;
/// Most `(` operator tokens left open that the grammar is given: it backtracks over
/// unclosed parentheses in time exponential in their number (24 took seconds), and such a
/// line is a syntax error anyway.
pub const MAX_UNCLOSED_PARENS: usize = 8;
/// Most simple commands judged in one line.
pub const MAX_COMMANDS: usize = 512;

/// A verdict, ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Runs without asking.
    Allow,
    /// Needs a person's approval first.
    Approve,
    /// Never runs.
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a rule found, tied to a simple command when it is about one.
#[derive(Debug, Clone)]
pub(super) struct Finding {
    pub(super) cmd: Option<usize>,
    pub(super) decision: Decision,
    pub(super) rule: String,
    pub(super) reason: String,
    /// An `allow` rule matching the command may lift it (findings about the command's own
    /// words at approval level).
    pub(super) liftable: bool,
}
