//! What every program family's rules share: the call they judge, the question the
//! allowlist asks, what reading or writing a path implies, and the words, verdicts and
//! state they work with (re-exported, so a family file starts with one `use`). It never
//! dispatches to a family: that is `mod.rs`.

pub(super) use super::super::interpreters::Lang;
pub(super) use super::super::paths::{Cwd, Place, Root, is_disk_device};
pub(super) use super::super::state::Analyzer;
pub(super) use super::super::verdict::{Decision, MAX_DEPTH};
pub(super) use super::super::words::{
    Stdin, Word, has_flag, is_option, operands, program_name, short_flags, skip_options,
};
use crate::config::ShellPolicy;

/// Builtins that are always allowed by the allowlist policy (they run no program).
pub(super) const SAFE_BUILTINS: &[&str] = &[
    "cd", "pwd", "echo", "printf", "true", "false", ":", "test", "[", "export", "unset", "read",
    "local", "declare", "typeset", "readonly", "shift", "exit", "return", "break", "continue",
    "wait", "set", "type", "hash", "getopts", "let", "jobs", "pushd", "popd", "dirs", "umask",
];

/// Programs that never read the content of the files they are given (listing, moving
/// within the workspace, deleting): naming a secret file is not reading it.
pub(super) const CONTENT_BLIND: &[&str] = &[
    "ls", "stat", "touch", "rm", "rmdir", "unlink", "mkdir", "chmod", "chown", "chgrp", "du",
    "test", "[", "realpath", "readlink", "basename", "dirname", "ln", "find", "tree",
];

pub(crate) fn read_target(analyzer: &mut Analyzer<'_>, cmd: Option<usize>, w: &Word) {
    read_target_by(analyzer, cmd, w, true);
}

/// A file argument; `content` is whether the program reads what is in it.
pub(super) fn read_target_by(
    analyzer: &mut Analyzer<'_>,
    cmd: Option<usize>,
    w: &Word,
    content: bool,
) {
    let place = analyzer.place(w);
    if let Some((decision, rule, reason)) = analyzer.filter.layout.read_risk(&place) {
        analyzer.find(cmd, decision, rule, reason, false);
    } else if content && let Some(why) = analyzer.filter.layout.secret_name(&place) {
        analyzer.find(
            cmd,
            Decision::Approve,
            "access.secret_file",
            format!("reads, copies or encodes {why}"),
            false,
        );
    }
}

pub(crate) fn write_target(analyzer: &mut Analyzer<'_>, cmd: Option<usize>, w: &Word) {
    let place = analyzer.place(w);
    analyzer.created.push(analyzer.lexical_place(w));
    if let Some((decision, rule, reason)) = analyzer.filter.layout.write_risk(&place) {
        analyzer.find(cmd, decision, rule, reason, false);
    } else if w.dynamic && place.root != Root::Absolute && place.comps.is_empty() {
        analyzer.find(
            cmd,
            Decision::Approve,
            "write.unresolved_target",
            "writes to a path that is only known when the command runs",
            false,
        );
    }
}

/// Whether the line itself wrote or created the file `w` names (or a directory above it).
pub(crate) fn written_by_line(analyzer: &Analyzer<'_>, w: &Word) -> bool {
    let place = analyzer.lexical_place(w);
    analyzer.created.iter().any(|c| {
        c.root == place.root
            && !c.comps.is_empty()
            && place.comps.len() >= c.comps.len()
            && place.comps.iter().zip(&c.comps).all(|(a, b)| a == b)
    })
}

/// One simple command as the program rules see it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Call<'c> {
    pub index: usize,
    pub name: &'c str,
    pub args: &'c [Word],
    pub depth: usize,
}

/// The allowlist policy: programs not listed need approval.
pub(super) fn policy(analyzer: &mut Analyzer<'_>, index: usize, name: &str) {
    if analyzer.filter.policy != ShellPolicy::Allowlist {
        return;
    }
    if SAFE_BUILTINS.contains(&name) || analyzer.filter.allowed_programs.contains(name) {
        return;
    }
    analyzer.find(
        Some(index),
        Decision::Approve,
        "policy.not_allowlisted",
        format!("{name} is not in allowed_programs"),
        true,
    );
}

impl<'c> Call<'c> {
    pub(super) fn cmd(&self) -> Option<usize> {
        Some(self.index)
    }

    pub(super) fn operands(&self) -> Vec<&'c Word> {
        operands(self.args)
    }

    pub(super) fn first_operand(&self) -> &'c str {
        operands(self.args)
            .first()
            .map(|w| w.text.as_str())
            .unwrap_or("")
    }

    pub(super) fn deny(&self, analyzer: &mut Analyzer<'_>, rule: &str, reason: String) {
        analyzer.find(Some(self.index), Decision::Deny, rule, reason, false);
    }

    /// Approval a user `allow` rule may lift (it is about the command's own words).
    pub(super) fn approve(&self, analyzer: &mut Analyzer<'_>, rule: &str, reason: String) {
        analyzer.find(Some(self.index), Decision::Approve, rule, reason, true);
    }
}
