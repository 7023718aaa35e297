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
mod inline;
mod interpreters;
mod outputs;
mod paths;
mod pattern;
mod rules;
mod settings;

use std::collections::HashSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use pattern::Glob;

pub use crate::config::DEFAULT_ALLOWED_PROGRAMS;
use crate::config::{ShellConfig, ShellPolicy, ShellRule, ShellRuleAction};
pub use config_check::shell_config_issues;

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

/// A user rule, compiled.
#[derive(Debug, Clone)]
struct UserRule {
    id: String,
    action: ShellRuleAction,
    program: String,
    args: Option<Glob>,
}

impl UserRule {
    fn matches(&self, argv: &[String]) -> bool {
        let Some((program, args)) = argv.split_first() else {
            return false;
        };
        let name_matches = if self.program.contains('/') {
            *program == self.program
        } else {
            rules::program_name(program) == self.program
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
enum HostPattern {
    Exact(String),
    Subdomains(String),
}

/// The command filter; cheap to share (`Arc<CommandFilter>`), `Send + Sync`.
#[derive(Debug)]
pub struct CommandFilter {
    policy: ShellPolicy,
    allowed_programs: HashSet<String>,
    allowed_hosts: Vec<HostPattern>,
    rules: Vec<UserRule>,
    layout: paths::Layout,
}

/// One thing a rule found, tied to a simple command when it is about one.
#[derive(Debug, Clone)]
struct Finding {
    cmd: Option<usize>,
    decision: Decision,
    rule: String,
    reason: String,
    /// An `allow` rule matching the command may lift it (findings about the command's own
    /// words at approval level).
    liftable: bool,
}

/// A judgement with what it was made from (for remembered rules and tests).
#[derive(Debug)]
struct Analysis {
    judgement: Judgement,
    findings: Vec<Finding>,
    commands: Vec<analyze::Found>,
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
        let mut an = analyze::Analyzer::new(self);
        if command.len() > MAX_INPUT {
            an.find(
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
            an.find(
                None,
                Decision::Approve,
                "input.empty",
                "the command is empty",
                false,
            );
        } else {
            an.program(command, 0);
            if an.fetched_to_file && an.ran_local_code {
                an.find(
                    None,
                    Decision::Deny,
                    "network.download_and_execute",
                    "the line downloads a file and runs local code (download and execute)",
                    false,
                );
            }
        }
        self.conclude(an, remembered)
    }

    fn conclude(&self, an: analyze::Analyzer<'_>, remembered: &[RememberedRule]) -> Analysis {
        let mut findings = an.findings;
        let commands = an.commands;
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

    fn host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts.iter().any(|pattern| match pattern {
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomains(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|head| head.ends_with('.') && head.len() > 1),
        })
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

/// Checks a program name for `allowed_programs` and rules: a bare name, no path.
pub fn check_program_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 128 {
        return Err(format!("{name:?} is not a program name"));
    }
    if name.contains('/') || name.contains(char::is_whitespace) {
        return Err(format!(
            "{name:?} is not a bare program name such as \"git\" (no paths or spaces)"
        ));
    }
    Ok(())
}

/// Checks a rule id: letters, digits, `.`, `_`, `-`.
pub fn check_rule_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("every rule needs an id, such as \"git-status\"".into());
    }
    if id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "{id:?} is not a rule id: use up to 64 letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(())
}

/// Normalizes an `allowed_hosts` entry: a host name, an IP address, or `*.domain`.
pub fn normalize_host_pattern(text: &str) -> Result<String, String> {
    let lower = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let name = lower.strip_prefix("*.").unwrap_or(&lower);
    let ip = name.trim_start_matches('[').trim_end_matches(']');
    if ip.parse::<std::net::IpAddr>().is_ok() && !lower.starts_with("*.") {
        return Ok(ip.to_string());
    }
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid {
        Ok(lower)
    } else {
        Err(format!(
            "{text:?} is not a host name, an IP address or *.domain (no schemes, ports or paths)"
        ))
    }
}

/// The parser's options: bash, with extended globs.
fn parser_options() -> brush_parser::ParserOptions {
    brush_parser::ParserOptions::default()
}

/// Parses shell code (after [`precheck`]); the error is for a person. The tokens are
/// looked at before the grammar sees them: see [`MAX_UNCLOSED_PARENS`].
fn parse(code: &str) -> Result<brush_parser::ast::Program, String> {
    if empty_here_doc_tag(code) {
        // The tokenizer loops for ever (allocating) on some of these (`cat <<'' `); a
        // delimiter of nothing but quotes is no real command's.
        return Err("a here-document delimiter is made of quotes only".into());
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
fn precheck(code: &str) -> Option<(Decision, &'static str, String)> {
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
fn empty_here_doc_tag(code: &str) -> bool {
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

/// A word of digits glued to `<` or `>` (`2147483648>x`) that does not fit an `i32`: the
/// parser reads it as a file descriptor with an `unwrap`, which would panic (and abort the
/// gateway in a release build). Found by the fuzz target. Digits after a letter or `_`
/// belong to a longer word and are left alone.
fn oversized_fd(code: &str) -> Option<&str> {
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

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod tests;
