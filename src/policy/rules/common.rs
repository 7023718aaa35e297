//! What every program family's rules share: the call they judge, the question the
//! allowlist asks, what reading or writing a path implies, and the words, verdicts and
//! state they work with (re-exported, so a family file starts with one `use`). It never
//! dispatches to a family: that is `mod.rs`.

pub(super) use super::super::interpreters::Lang;
pub(super) use super::super::paths::{Cwd, Place, Root, is_disk_device};
pub(super) use super::super::state::Analyzer;
pub(super) use super::super::verdict::{Decision, MAX_DEPTH};
pub(super) use super::super::words::{
    Stdin, W, has_flag, is_option, operands, program_name, short_flags, skip_options,
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

pub(crate) fn read_target(an: &mut Analyzer<'_>, cmd: Option<usize>, w: &W) {
    read_target_by(an, cmd, w, true);
}

/// A file argument; `content` is whether the program reads what is in it.
pub(super) fn read_target_by(an: &mut Analyzer<'_>, cmd: Option<usize>, w: &W, content: bool) {
    let place = an.place(w);
    if let Some((decision, rule, reason)) = an.filter.layout.read_risk(&place) {
        an.find(cmd, decision, rule, reason, false);
    } else if content && let Some(why) = an.filter.layout.secret_name(&place) {
        an.find(
            cmd,
            Decision::Approve,
            "access.secret_file",
            format!("reads, copies or encodes {why}"),
            false,
        );
    }
}

pub(crate) fn write_target(an: &mut Analyzer<'_>, cmd: Option<usize>, w: &W) {
    let place = an.place(w);
    an.created.push(an.lexical_place(w));
    if let Some((decision, rule, reason)) = an.filter.layout.write_risk(&place) {
        an.find(cmd, decision, rule, reason, false);
    } else if w.dynamic && place.root != Root::Absolute && place.comps.is_empty() {
        an.find(
            cmd,
            Decision::Approve,
            "write.unresolved_target",
            "writes to a path that is only known when the command runs",
            false,
        );
    }
}

/// Whether the line itself wrote or created the file `w` names (or a directory above it).
pub(crate) fn written_by_line(an: &Analyzer<'_>, w: &W) -> bool {
    let place = an.lexical_place(w);
    an.created.iter().any(|c| {
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
    pub args: &'c [W],
    pub depth: usize,
}

/// The allowlist policy: programs not listed need approval.
pub(super) fn policy(an: &mut Analyzer<'_>, index: usize, name: &str) {
    if an.filter.policy != ShellPolicy::Allowlist {
        return;
    }
    if SAFE_BUILTINS.contains(&name) || an.filter.allowed_programs.contains(name) {
        return;
    }
    an.find(
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

    pub(super) fn operands(&self) -> Vec<&'c W> {
        operands(self.args)
    }

    pub(super) fn first_operand(&self) -> &'c str {
        operands(self.args)
            .first()
            .map(|w| w.text.as_str())
            .unwrap_or("")
    }

    pub(super) fn deny(&self, an: &mut Analyzer<'_>, rule: &str, reason: String) {
        an.find(Some(self.index), Decision::Deny, rule, reason, false);
    }

    /// Approval a user `allow` rule may lift (it is about the command's own words).
    pub(super) fn approve(&self, an: &mut Analyzer<'_>, rule: &str, reason: String) {
        an.find(Some(self.index), Decision::Approve, rule, reason, true);
    }
}
