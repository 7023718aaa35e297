//! The command filter as built from `[tools.shell]`: its policy, allowed programs and
//! hosts, user rules and the machine's layout. Only the data and the questions the rules
//! ask of it (is this host allowed); building it and judging a line is `mod.rs`'.

use std::collections::HashSet;

use super::paths;
use super::pattern::Glob;
use super::words::program_name;
use crate::config::{ShellPolicy, ShellRuleAction};

/// A user rule, compiled.
#[derive(Debug, Clone)]
pub(super) struct UserRule {
    pub(super) id: String,
    pub(super) action: ShellRuleAction,
    pub(super) program: String,
    pub(super) args: Option<Glob>,
}

impl UserRule {
    pub(super) fn matches(&self, argv: &[String]) -> bool {
        let Some((program, args)) = argv.split_first() else {
            return false;
        };
        let name_matches = if self.program.contains('/') {
            *program == self.program
        } else {
            program_name(program) == self.program
        };
        name_matches
            && self
                .args
                .as_ref()
                .is_none_or(|glob| glob.matches(&args.join(" ")))
    }
}

/// A host pattern of `allowed_hosts`: an exact name or address, or `*.domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HostPattern {
    Exact(String),
    Subdomains(String),
}

/// The command filter; cheap to share (`Arc<CommandFilter>`), `Send + Sync`.
#[derive(Debug)]
pub struct CommandFilter {
    pub(super) policy: ShellPolicy,
    pub(super) allowed_programs: HashSet<String>,
    pub(super) allowed_hosts: Vec<HostPattern>,
    pub(super) rules: Vec<UserRule>,
    pub(super) layout: paths::Layout,
}

impl CommandFilter {
    pub(super) fn host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts.iter().any(|pattern| match pattern {
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomains(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|head| head.ends_with('.') && head.len() > 1),
        })
    }
}
