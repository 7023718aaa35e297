//! The command filter: what stands between an LLM's shell tool call and the device. It
//! owns the decision `allow` / `approve` (a person must say yes) / `deny` for one shell
//! line, with the reason and the id of the rule that decided. It never runs, rewrites or
//! "fixes" a command, never touches the filesystem or the network, and keeps no state
//! between calls: it judges text.
//!
//! # How a line is judged
//!
//! The whole line is parsed with a real shell grammar, and **every simple command that
//! could run** is judged on the words it would actually get: the commands of pipelines and
//! of `&&` `||` `;` `&` lists, subshells and brace groups, loop and `if`/`case` bodies,
//! function bodies, `$(...)` and backticks (also inside double quotes, parameter defaults
//! and arithmetic), process substitutions, here-documents fed to shells, redirection
//! targets (`>`/`>>` is a write), assignments before commands, and the commands that
//! wrappers run (`env`, `nice`, `nohup`, `timeout`, `sudo`, `doas`, `xargs`, `busybox`,
//! `exec`, `find -exec`, `sh -c`/`bash -c`/`eval`, `python -c`, `perl -e`, `node -e`,
//! `ssh host CMD`, ...), recursively up to [`MAX_DEPTH`] levels. Quotes and escapes are
//! removed the way the shell removes them (`'r''m'`, `r\m` and `/bin/rm` are all `rm`);
//! `~` and `$HOME` are the home directory; any other expansion is unknown, and an unknown
//! program, argument or write target needs approval. The most severe verdict over all
//! simple commands wins. Inline interpreter code (`python3 -c`) has no shell grammar and
//! is judged by a documented heuristic (`inline.rs`); the sandbox remains the backstop.
//!
//! # The parser: `brush-parser`
//!
//! Candidates were `brush-parser` (the bash-compatible parser of the brush shell, MIT,
//! released every few weeks), `yash-syntax` (a careful POSIX parser, but GPL-3.0, which
//! `deny.toml` does not admit into this binary) and `conch-parser` (unmaintained since
//! 2017, no `$(...)` inside `${...}`, no process substitution). `brush-parser` parses bash
//! as bash does, including process substitution, `[[ ]]`, here-strings, `$'...'` and
//! arithmetic, and splits words into pieces (quoted text, escapes, parameter expansions,
//! command substitutions) with `word::parse`. Version 0.3 is used because 0.4 pulls a
//! snapshot-testing library (`insta`) into normal builds. What is hand-written here is
//! what no parser does: the judgement, the decoding of `$'\x72m'`, recognising brace
//! expansion as a word splitter, and guards around the parser, which recurses on nesting
//! (a stack overflow aborts the process, and so does a panic with `panic = "abort"`):
//! input over [`MAX_INPUT`] bytes, NUL bytes and bracket nesting over [`MAX_NESTING`] are
//! denied before the parser sees them; a line whose tokens leave more than
//! [`MAX_UNCLOSED_PARENS`] `(` open, and a word with an unclosed `$(`/`${`, never reach
//! the grammar (it backtracks exponentially over them) and need approval as unparseable. The fuzz target and the random-input test
//! check that nothing gets through to a panic or an overflow.
//!
//! # Policies and rules
//!
//! `[tools.shell] policy = "allowlist"` (the default in strict mode): a simple command
//! whose program is not in `allowed_programs` needs approval. `"denylist"` (the default
//! in local mode): it runs unless a rule asks for approval or denies. Built-in rules
//! apply under both. User rules (`[[tools.shell.rules]]`) match a program and a glob over
//! its arguments; `deny` and `approve` rules add to the built-in ones, and `allow` rules
//! (and remembered approvals, [`RememberedRule`]) lift approval-level findings about a
//! command's own words, never a built-in `deny`, and never findings about redirections,
//! pipes into interpreters or unparseable text.

mod analyze;
mod config_check;
mod environment;
mod exec_options;
mod fallback;
mod filter;
mod inline;
mod interpreters;
mod outputs;
mod paths;
mod pattern;
mod rules;
mod settings;
mod state;
mod syntax;
mod verdict;
mod words;

use std::collections::HashSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use pattern::Glob;

pub use crate::config::DEFAULT_ALLOWED_PROGRAMS;
use crate::config::{ShellConfig, ShellPolicy, ShellRule, ShellRuleAction};
pub use config_check::{
    check_program_name, check_rule_id, normalize_host_pattern, shell_config_issues,
};
pub use filter::CommandFilter;
use filter::{HostPattern, UserRule};
use verdict::Finding;
pub use verdict::{Decision, MAX_COMMANDS, MAX_DEPTH, MAX_INPUT, MAX_NESTING, MAX_UNCLOSED_PARENS};

/// What the filter decided about one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Judgement {
    pub decision: Decision,
    /// For a person: what the command would do that decided the verdict.
    pub reason: String,
    /// The deciding rule, such as `destructive.rm_recursive_system` or `user.<id>`.
    pub rule: String,
    /// Every simple command found, with its own verdict.
    pub commands: Vec<CommandVerdict>,
}

/// One simple command of a line and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandVerdict {
    /// The words it would get; unknown parts are `*`.
    pub argv: Vec<String>,
    pub decision: Decision,
    pub rule: String,
    pub reason: String,
}

/// Where the filter's machine keeps what must never be touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterContext {
    /// The gateway's data directory (`master.key`, the store, TLS keys).
    pub data_dir: PathBuf,
    /// The home directory of the user commands run as, when known.
    pub home: Option<PathBuf>,
    /// The directory commands run in, when known: writes there are ordinary.
    pub workspace: Option<PathBuf>,
    /// The gateway's configuration file, when it was read from one (it holds secrets
    /// such as `jwt_secret`).
    pub config_file: Option<PathBuf>,
}

impl FilterContext {
    /// The context for `config`: its data directory, `$HOME` of this process.
    pub fn for_config(config: &crate::config::Config, workspace: Option<PathBuf>) -> Self {
        FilterContext {
            data_dir: config.storage.data_dir.clone(),
            home: std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute()),
            workspace,
            config_file: match &config.source {
                crate::config::ConfigSource::File(path) => Some(path.clone()),
                crate::config::ConfigSource::Defaults => None,
            },
        }
    }
}

/// An approval a person chose to remember for an agent: exactly this program with
/// exactly these arguments is allowed from now on, unless a built-in rule denies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RememberedRule {
    pub program: String,
    pub args: Vec<String>,
}

impl RememberedRule {
    /// The rule for the one simple command of `command` that needed approval. `None`
    /// when the line is denied or unparseable, when its words are not all known before
    /// it runs, or when it needs approval for something other than one command's own
    /// words (a redirection, a pipe, several commands).
    pub fn from_command(filter: &CommandFilter, command: &str) -> Option<Self> {
        let mut rules = Self::all_from_command(filter, command);
        if rules.len() == 1 { rules.pop() } else { None }
    }

    /// Like [`from_command`](Self::from_command) for lines with several commands that
    /// need approval: one rule per such command, or empty when any cannot be remembered.
    pub fn all_from_command(filter: &CommandFilter, command: &str) -> Vec<Self> {
        let analysis = filter.analyze(command);
        if analysis.judgement.decision != Decision::Approve {
            return Vec::new();
        }
        let mut out: Vec<Self> = Vec::new();
        for finding in analysis
            .findings
            .iter()
            .filter(|f| f.decision >= Decision::Approve)
        {
            let Some(found) = finding.cmd.and_then(|i| analysis.commands.get(i)) else {
                return Vec::new();
            };
            if !finding.liftable || !found.is_static {
                return Vec::new();
            }
            let Some((program, args)) = found.argv.split_first() else {
                return Vec::new();
            };
            let rule = RememberedRule {
                program: program.clone(),
                args: args.to_vec(),
            };
            if !out.contains(&rule) {
                out.push(rule);
            }
        }
        out
    }

    fn matches(&self, argv: &[String]) -> bool {
        argv.split_first()
            .is_some_and(|(program, args)| *program == self.program && args == self.args.as_slice())
    }
}

/// Why a filter could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum CommandFilterError {
    #[error("tools.shell.rules.{index} (id {id:?}): {message}")]
    Rule {
        index: usize,
        id: String,
        message: String,
    },
    #[error("tools.shell.allowed_hosts.{index}: {message}")]
    Host { index: usize, message: String },
    #[error("tools.shell.allowed_programs.{index}: {message}")]
    Program { index: usize, message: String },
}

/// A judgement with what it was made from (for remembered rules and tests).
#[derive(Debug)]
struct Analysis {
    judgement: Judgement,
    findings: Vec<Finding>,
    commands: Vec<state::Found>,
}

impl CommandFilter {
    /// Builds the filter for `[tools.shell]` on the machine described by `ctx`.
    pub fn from_config(cfg: &ShellConfig, ctx: FilterContext) -> Result<Self, CommandFilterError> {
        let mut allowed_programs = HashSet::new();
        for (index, program) in cfg.allowed_programs.iter().enumerate() {
            check_program_name(program)
                .map_err(|message| CommandFilterError::Program { index, message })?;
            allowed_programs.insert(program.clone());
        }
        let mut allowed_hosts = Vec::new();
        for (index, host) in cfg.allowed_hosts.iter().enumerate() {
            let host = normalize_host_pattern(host)
                .map_err(|message| CommandFilterError::Host { index, message })?;
            allowed_hosts.push(match host.strip_prefix("*.") {
                Some(domain) => HostPattern::Subdomains(domain.to_string()),
                None => HostPattern::Exact(host),
            });
        }
        let mut rules = Vec::new();
        for (index, rule) in cfg.rules.iter().enumerate() {
            rules.push(compile_rule(index, rule)?);
        }
        let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
        let layout = paths::Layout {
            home: ctx
                .home
                .as_ref()
                .filter(|h| h.is_absolute())
                .map(|h| paths::abs_comps(h)),
            workspace: ctx
                .workspace
                .as_ref()
                .map(|w| paths::abs_comps(&absolute(w))),
            data_dir: if ctx.data_dir.as_os_str().is_empty() {
                Vec::new()
            } else {
                paths::abs_comps(&absolute(&ctx.data_dir))
            },
            config_file: ctx
                .config_file
                .as_ref()
                .map(|c| paths::abs_comps(&absolute(c)))
                .unwrap_or_default(),
        };
        Ok(CommandFilter {
            policy: cfg.policy,
            allowed_programs,
            allowed_hosts,
            rules,
            layout,
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> ShellPolicy {
        self.policy
    }

    /// Judges one shell line.
    pub fn judge(&self, command: &str) -> Judgement {
        self.judge_with(command, &[])
    }

    /// Judges one shell line with an agent's remembered approvals, which lift what an
    /// `allow` rule may lift and never a deny.
    pub fn judge_with(&self, command: &str, extra_allow: &[RememberedRule]) -> Judgement {
        self.analyze_with(command, extra_allow).judgement
    }

    fn analyze(&self, command: &str) -> Analysis {
        self.analyze_with(command, &[])
    }

    fn analyze_with(&self, command: &str, remembered: &[RememberedRule]) -> Analysis {
        let mut analyzer = state::Analyzer::new(self);
        if command.len() > MAX_INPUT {
            analyzer.find(
                None,
                Decision::Deny,
                "input.too_long",
                format!(
                    "the command is {} bytes long; at most {MAX_INPUT} are judged",
                    command.len()
                ),
                false,
            );
        } else if command.trim().is_empty() {
            analyzer.find(
                None,
                Decision::Approve,
                "input.empty",
                "the command is empty",
                false,
            );
        } else {
            analyzer.program(command, 0);
            if analyzer.fetched_to_file && analyzer.ran_local_code {
                analyzer.find(
                    None,
                    Decision::Deny,
                    "network.download_and_execute",
                    "the line downloads a file and runs local code (download and execute)",
                    false,
                );
            }
        }
        self.conclude(analyzer, remembered)
    }

    fn conclude(&self, analyzer: state::Analyzer<'_>, remembered: &[RememberedRule]) -> Analysis {
        let mut findings = analyzer.findings;
        let commands = analyzer.commands;
        // User rules: deny and approve add findings; allow rules (and remembered ones)
        // lift liftable findings of the commands they match.
        let mut lifted_by: Vec<Option<String>> = vec![None; commands.len()];
        for (index, found) in commands.iter().enumerate() {
            if !found.is_static {
                continue;
            }
            for rule in self.rules.iter().filter(|r| r.matches(&found.argv)) {
                match rule.action {
                    ShellRuleAction::Deny | ShellRuleAction::Approve => findings.push(Finding {
                        cmd: Some(index),
                        decision: if rule.action == ShellRuleAction::Deny {
                            Decision::Deny
                        } else {
                            Decision::Approve
                        },
                        rule: format!("user.{}", rule.id),
                        reason: format!("the rule {:?} of [[tools.shell.rules]] matches", rule.id),
                        liftable: false,
                    }),
                    ShellRuleAction::Allow => {
                        if lifted_by.get(index).is_some_and(Option::is_none)
                            && let Some(slot) = lifted_by.get_mut(index)
                        {
                            *slot = Some(format!("user.{}", rule.id));
                        }
                    }
                }
            }
            if lifted_by.get(index).is_some_and(Option::is_none)
                && remembered.iter().any(|r| r.matches(&found.argv))
                && let Some(slot) = lifted_by.get_mut(index)
            {
                *slot = Some("remembered.allow".into());
            }
        }
        let effective: Vec<&Finding> = findings
            .iter()
            .filter(|f| {
                !(f.liftable
                    && f.decision == Decision::Approve
                    && f.cmd
                        .and_then(|i| lifted_by.get(i))
                        .is_some_and(Option::is_some))
            })
            .collect();
        let worst = effective
            .iter()
            .copied()
            .fold(None::<&Finding>, |acc, f| match acc {
                Some(a) if a.decision >= f.decision => Some(a),
                _ => Some(f),
            });
        let verdicts: Vec<CommandVerdict> = commands
            .iter()
            .enumerate()
            .map(|(index, found)| {
                let own = effective.iter().filter(|f| f.cmd == Some(index)).fold(
                    None::<&&Finding>,
                    |acc, f| match acc {
                        Some(a) if a.decision >= f.decision => Some(a),
                        _ => Some(f),
                    },
                );
                let (decision, rule, reason) = match own {
                    Some(f) => (f.decision, f.rule.clone(), f.reason.clone()),
                    None => match lifted_by.get(index).cloned().flatten() {
                        Some(rule) => (Decision::Allow, rule, "allowed by a rule".to_string()),
                        None => (
                            Decision::Allow,
                            self.allow_rule().into(),
                            "no rule objects".into(),
                        ),
                    },
                };
                CommandVerdict {
                    argv: found.argv.clone(),
                    decision,
                    rule,
                    reason,
                }
            })
            .collect();
        let judgement = match worst {
            Some(f) => Judgement {
                decision: f.decision,
                reason: f.reason.clone(),
                rule: f.rule.clone(),
                commands: verdicts,
            },
            None => {
                let lifted = lifted_by.iter().flatten().next().cloned();
                let names: Vec<&str> = commands
                    .iter()
                    .filter_map(|c| c.argv.first())
                    .map(String::as_str)
                    .collect();
                Judgement {
                    decision: Decision::Allow,
                    reason: match &lifted {
                        Some(rule) => format!("allowed by {rule}: {}", names.join(", ")),
                        None => format!(
                            "no rule objects to {}",
                            if names.is_empty() {
                                "it".to_string()
                            } else {
                                names.join(", ")
                            }
                        ),
                    },
                    rule: lifted.unwrap_or_else(|| self.allow_rule().into()),
                    commands: verdicts,
                }
            }
        };
        Analysis {
            judgement,
            findings,
            commands,
        }
    }

    fn allow_rule(&self) -> &'static str {
        match self.policy {
            ShellPolicy::Allowlist => "policy.allowlisted",
            ShellPolicy::Denylist => "policy.no_objection",
        }
    }
}

fn compile_rule(index: usize, rule: &ShellRule) -> Result<UserRule, CommandFilterError> {
    let err = |message: String| CommandFilterError::Rule {
        index,
        id: rule.id.clone(),
        message,
    };
    check_rule_id(&rule.id).map_err(err)?;
    if rule.program.is_empty() || rule.program.contains(char::is_whitespace) {
        return Err(err(
            "program must be one program name or absolute path".into()
        ));
    }
    let args = match &rule.args {
        Some(pattern) => Some(Glob::parse(pattern).map_err(err)?),
        None => None,
    };
    Ok(UserRule {
        id: rule.id.clone(),
        action: rule.action,
        program: rule.program.clone(),
        args,
    })
}

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod tests;
