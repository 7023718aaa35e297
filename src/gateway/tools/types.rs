//! What every tool shares: the registry's state, a call and its context, the tools'
//! error, strict input parsing and the capping of results. The tools' own files and the
//! registry's dispatch in `mod.rs` build on this file; it never dispatches a call, never
//! runs a tool and never writes an audit record itself.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::audit::Audit;
use crate::config::{AgentConfig, FilesConfig};
use crate::gateway::agents::Agents;
use crate::gateway::approval::{Broker, Ending, Requester};
use crate::gateway::paths::PathError;
use crate::policy::{CommandFilter, RememberedRule};
use crate::sandbox::{Runner, SandboxError};
use crate::store::{Store, StoreError, Tree};

/// The working directory tool programs see inside the sandbox.
pub const SANDBOX_CWD: &str = crate::sandbox::spec::WORK_DIR;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("unknown agent {0:?}")]
    UnknownAgent(String),
    #[error("unknown tool {0:?}: the tools are code_exec, shell, read_file, write_file, list_dir")]
    UnknownTool(String),
    #[error("tool {tool} is not enabled for agent {agent} ([[agents]] tools)")]
    NotEnabled { tool: String, agent: String },
    #[error("invalid input for {tool}: {message}")]
    BadInput { tool: String, message: String },
    #[error("refused by the command filter ({rule}): {reason}")]
    Denied { reason: String, rule: String },
    #[error("not approved ({ending}, by {by}): {reason}")]
    NotApproved {
        ending: &'static str,
        by: String,
        reason: String,
    },
    #[error("{0}")]
    Path(#[from] PathError),
    #[error("{0}")]
    Sandbox(#[from] SandboxError),
    #[error("code execution is unavailable: {0}")]
    Unavailable(String),
    #[error("remembered approvals cannot be read or written: {0}")]
    Store(#[from] StoreError),
}

impl ToolError {
    /// What kind of failure it was, as the audit log records it: the message itself
    /// may quote the tool's input (a path, a command) and is only given to the model.
    pub fn kind(&self) -> &'static str {
        match self {
            ToolError::UnknownAgent(_) => "unknown_agent",
            ToolError::UnknownTool(_) => "unknown_tool",
            ToolError::NotEnabled { .. } => "not_enabled",
            ToolError::BadInput { .. } => "bad_input",
            ToolError::Denied { .. } => "denied",
            ToolError::NotApproved { .. } => "not_approved",
            ToolError::Path(_) => "path",
            ToolError::Sandbox(_) => "sandbox",
            ToolError::Unavailable(_) => "unavailable",
            ToolError::Store(_) => "store",
        }
    }

    /// Errors the caller (or the model) caused and can correct.
    pub fn is_caller_error(&self) -> bool {
        match self {
            ToolError::UnknownAgent(_)
            | ToolError::UnknownTool(_)
            | ToolError::NotEnabled { .. }
            | ToolError::BadInput { .. }
            | ToolError::Denied { .. }
            | ToolError::NotApproved { .. } => true,
            ToolError::Path(err) => !matches!(err, PathError::Io { .. } | PathError::Unsupported),
            ToolError::Sandbox(err) => err.is_bad_request(),
            ToolError::Unavailable(_) | ToolError::Store(_) => false,
        }
    }
}

/// One call, as an agent (or the console) makes it.
#[derive(Debug, Clone)]
pub struct Call {
    pub agent: String,
    pub tool: String,
    pub input: Value,
    pub requester: Requester,
}

/// What a call returns to the agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolOutput {
    /// The tool's result, shaped per tool (see each tool's schema).
    pub result: Value,
    /// True when some part of the result was cut to the size limit.
    pub truncated: bool,
}

/// What a call needs from the running gateway (or the console).
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'a> {
    pub audit: &'a Audit,
    pub approvals: &'a Broker,
    /// The sandbox, or why code execution is unavailable.
    pub runner: Result<&'a Runner, &'a str>,
}

/// One agent's configuration, as it is now, and the command filter its commands pass.
pub(super) struct Agent<'a> {
    pub(super) config: AgentConfig,
    pub(super) filter: &'a CommandFilter,
}

/// The tool registry: every agent's tools and what they need.
pub struct Tools {
    /// Looked up at each call, so an agent made or changed over the API has its tools
    /// and workspace at once, without a restart.
    pub(super) agents: Arc<Agents>,
    /// Every agent's commands pass the same filter: it is built from `[tools.shell]`
    /// and the sandbox's working directory, neither of which is per agent.
    pub(super) filter: CommandFilter,
    pub(super) files: FilesConfig,
    /// Bytes kept of each text field of a result.
    pub(super) max_output: u64,
    pub(super) remembered: Tree<String, RememberedRule>,
    pub(super) store: Store,
}

impl std::fmt::Debug for Tools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tools")
            .field("agents", &self.agents)
            .finish_non_exhaustive()
    }
}

impl Tools {
    /// The approvals remembered for `agent`.
    pub(super) fn remembered_for(&self, agent: &str) -> Result<Vec<RememberedRule>, ToolError> {
        let prefix = format!("{agent}/");
        let mut rules = Vec::new();
        for entry in self.remembered.iter_from(Some(&prefix)) {
            let (key, rule) = entry?;
            if !key.starts_with(&prefix) {
                break;
            }
            rules.push(rule);
        }
        Ok(rules)
    }

    /// Stores rules a person chose to remember for `agent`.
    pub(super) fn remember(&self, agent: &str, rules: &[RememberedRule]) -> Result<(), ToolError> {
        for rule in rules {
            let bytes = serde_json::to_vec(rule).unwrap_or_default();
            let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
            self.remembered.insert(
                &format!("{agent}/{}", digest.get(..32).unwrap_or(&digest)),
                rule,
            )?;
        }
        self.store.sync()?;
        Ok(())
    }

    /// Cuts `text` to the result limit at a character boundary.
    pub(super) fn cap(&self, text: &str) -> (String, bool) {
        cap_text(text, usize::try_from(self.max_output).unwrap_or(usize::MAX))
    }
}

/// Cuts `text` to at most `max` bytes at a character boundary.
pub fn cap_text(text: &str, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text.to_string(), false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text.get(..end).unwrap_or_default().to_string(), true)
}

/// Parses a tool's input strictly: unknown fields and wrong types are errors that
/// name the field.
pub(super) fn parse_input<T: DeserializeOwned>(call: &Call) -> Result<T, ToolError> {
    serde_path_to_error::deserialize(&call.input).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        ToolError::BadInput {
            tool: call.tool.clone(),
            message: if path == "." {
                inner
            } else {
                format!("{path}: {inner}")
            },
        }
    })
}

/// How an approval ended, for the error message.
pub(super) fn ending_name(ending: Ending) -> &'static str {
    match ending {
        Ending::Allowed => "allowed",
        Ending::Denied => "denied",
        Ending::Expired => "timed out",
        Ending::Withdrawn => "withdrawn",
    }
}

/// Shared by the tools that run in the sandbox: the runner or why there is none.
pub(super) fn runner<'a>(ctx: &CallContext<'a>) -> Result<&'a Runner, ToolError> {
    ctx.runner
        .map_err(|why| ToolError::Unavailable(why.to_string()))
}

/// The result of a sandbox run, capped.
pub(super) fn run_result(tools: &Tools, outcome: &crate::sandbox::RunOutcome) -> (Value, bool) {
    let (stdout, cut_out) = tools.cap(&String::from_utf8_lossy(&outcome.stdout));
    let (stderr, cut_err) = tools.cap(&String::from_utf8_lossy(&outcome.stderr));
    let truncated = cut_out || cut_err || outcome.truncated;
    (
        json!({
            "exit_code": outcome.exit_code,
            "reason": outcome.reason.name(),
            "stdout": stdout,
            "stderr": stderr,
            "duration_ms": outcome.duration_ms,
        }),
        truncated,
    )
}
