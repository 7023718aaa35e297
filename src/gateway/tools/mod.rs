//! The agents' tools and the one path every call takes: input checked against the
//! tool's schema, the tool enabled for the agent, the command filter and a human
//! approval where the tool needs them, then the sandbox or the workspace path guard,
//! and a result capped in size and marked when truncated. Every call, whatever its end,
//! writes one `tool.call` audit record.
//!
//! | tool | guard | runs |
//! |---|---|---|
//! | `code_exec {language, code, files}` | sandbox limits | in the sandbox |
//! | `shell {command}` | command filter → approval when asked | `bash -c` in the sandbox, with the workspace's files |
//! | `read_file`, `write_file`, `list_dir` | workspace path guard | in the gateway, beneath the workspace |
//!
//! Nothing here ever runs a command on the bare host: `shell` goes through the same
//! sandbox as `code_exec`. The workspace's top-level files are copied into the run's
//! `/work` and what the run creates or changes there is written back through the path
//! guard, so a run never holds a host directory open. The run's one user id maps to
//! `nobody` when the gateway runs as root, but to the gateway's own service user when
//! it does not (the Pi: an unprivileged service with `NoNewPrivileges=` cannot map any
//! other id), so its uid is no barrier: what keeps a run from the agent's files, the
//! data directory, `master.key` and the admin socket is that none of them is in its
//! mount namespace, Landlock and seccomp, and the admin socket refusing peers in
//! another user namespace.
//! Remembered approvals are stored per agent; they can only lift `approve`, never a
//! `deny`. This module never speaks HTTP and never decides approvals itself.

mod code_exec;
mod files;
mod shell;
mod types;

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use crate::audit::{AuditEvent, Outcome};
use crate::config::Config;
use crate::gateway::agents::{AgentError, Agents};
use crate::policy::{CommandFilter, CommandFilterError, FilterContext};
use crate::store::{Store, StoreError, TreeName};
use types::Agent;

pub use crate::config::TOOL_NAMES;
pub use types::{Call, CallContext, SANDBOX_CWD, ToolError, ToolOutput, Tools, cap_text};

impl Tools {
    /// The registry for the agents `agents` knows, configured and stored alike.
    pub fn new(
        config: &Config,
        store: &Store,
        agents: Arc<Agents>,
    ) -> Result<Tools, ToolsSetupError> {
        let context = FilterContext::for_config(config, Some(SANDBOX_CWD.into()));
        let filter = CommandFilter::from_config(&config.tools.shell, context)?;
        Ok(Tools {
            agents,
            filter,
            files: config.tools.files.clone(),
            max_output: config.tools.sandbox.limits.max_output,
            remembered: store.tree(TreeName::ApprovalRules)?,
            store: store.clone(),
        })
    }

    /// The function-calling schemas of the tools `agent` may use.
    pub fn schemas(&self, agent: &str) -> Result<Vec<Value>, ToolError> {
        let agent = self.agent(agent)?;
        Ok(agent
            .config
            .tools
            .iter()
            .filter_map(|name| schema(name))
            .collect())
    }

    /// Runs one call through its guards and audits it.
    pub async fn call(&self, ctx: CallContext<'_>, call: Call) -> Result<ToolOutput, ToolError> {
        let started = std::time::Instant::now();
        let result = self.dispatch(ctx, &call).await;
        let (outcome, error) = match &result {
            Ok(_) => (Outcome::Success, None),
            Err(err @ (ToolError::Denied { .. } | ToolError::NotApproved { .. })) => {
                (Outcome::Denied, Some(err.kind()))
            }
            Err(err) => (Outcome::Failure, Some(err.kind())),
        };
        let mut details = json!({
            "agent": call.agent,
            "requester": call.requester,
            "input_sha256": sha256_hex(&call.input.to_string()),
            "ms": started.elapsed().as_millis() as u64,
        });
        if let (Some(error), Some(object)) = (error, details.as_object_mut()) {
            object.insert("error".into(), Value::String(error.into()));
        }
        if let (Err(ToolError::Denied { rule, .. }), Some(object)) =
            (&result, details.as_object_mut())
        {
            object.insert("rule".into(), Value::String(rule.clone()));
        }
        if let (Ok(output), Some(object)) = (&result, details.as_object_mut()) {
            object.insert("truncated".into(), Value::Bool(output.truncated));
        }
        ctx.audit.record_or_log(
            AuditEvent::new("tool.call")
                .actor(format!(
                    "user:{} agent:{}",
                    call.requester.user, call.requester.agent
                ))
                .target(call.tool.chars().take(64).collect::<String>())
                .outcome(outcome)
                .details(details),
        );
        result
    }

    async fn dispatch(&self, ctx: CallContext<'_>, call: &Call) -> Result<ToolOutput, ToolError> {
        let agent = self.agent(&call.agent)?;
        let agent = &agent;
        if !TOOL_NAMES.contains(&call.tool.as_str()) {
            return Err(ToolError::UnknownTool(call.tool.chars().take(64).collect()));
        }
        if !agent.config.tools.contains(&call.tool) {
            return Err(ToolError::NotEnabled {
                tool: call.tool.clone(),
                agent: agent.config.name.clone(),
            });
        }
        match call.tool.as_str() {
            "code_exec" => code_exec::run(self, ctx, call).await,
            "shell" => shell::run(self, agent, ctx, call).await,
            "read_file" => files::read(self, agent, call),
            "write_file" => files::write(self, agent, call),
            _ => files::list(self, agent, call),
        }
    }

    fn agent(&self, name: &str) -> Result<Agent<'_>, ToolError> {
        match self.agents.get(name) {
            Ok(agent) => Ok(Agent {
                config: agent.to_config(),
                filter: &self.filter,
            }),
            Err(AgentError::Store(err)) => Err(ToolError::Store(err)),
            Err(_) => Err(ToolError::UnknownAgent(name.chars().take(64).collect())),
        }
    }
}

/// Why the registry could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ToolsSetupError {
    #[error(transparent)]
    Filter(#[from] CommandFilterError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) fn sha256_hex(text: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

/// The JSON schema (OpenAI function-calling form) of a tool.
pub fn schema(name: &str) -> Option<Value> {
    let (description, parameters) = match name {
        "code_exec" => (
            "Run a short program in an isolated sandbox (no network, limited memory and time). Returns its exit code, stdout, stderr and files it wrote.",
            json!({
                "type": "object",
                "properties": {
                    "language": { "type": "string", "enum": ["python", "javascript", "bash"] },
                    "code": { "type": "string", "description": "The program's source." },
                    "files": {
                        "type": "array",
                        "description": "Input files placed in the working directory.",
                        "items": {
                            "type": "object",
                            "properties": {
                                "name": { "type": "string" },
                                "content": { "type": "string" }
                            },
                            "required": ["name", "content"],
                            "additionalProperties": false
                        }
                    }
                },
                "required": ["language", "code"],
                "additionalProperties": false
            }),
        ),
        "shell" => (
            "Run a shell command line in the sandbox, in the agent's workspace. Dangerous commands are refused; some need a person's approval first.",
            json!({
                "type": "object",
                "properties": { "command": { "type": "string" } },
                "required": ["command"],
                "additionalProperties": false
            }),
        ),
        "read_file" => (
            "Read a text file from the agent's workspace (path relative to it).",
            json!({
                "type": "object",
                "properties": { "path": { "type": "string" } },
                "required": ["path"],
                "additionalProperties": false
            }),
        ),
        "write_file" => (
            "Create or replace a file in the agent's workspace (path relative to it).",
            json!({
                "type": "object",
                "properties": {
                    "path": { "type": "string" },
                    "content": { "type": "string" }
                },
                "required": ["path", "content"],
                "additionalProperties": false
            }),
        ),
        "list_dir" => (
            "List a directory of the agent's workspace (path relative to it; \".\" for its top).",
            json!({
                "type": "object",
                "properties": { "path": { "type": "string" } },
                "additionalProperties": false
            }),
        ),
        _ => return None,
    };
    Some(json!({
        "type": "function",
        "function": { "name": name, "description": description, "parameters": parameters }
    }))
}

/// Wraps the registry for sharing.
pub type SharedTools = Arc<Tools>;

/// A call's end as the console sees it (the admin socket carries it).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CallReport {
    /// The tool ran.
    Done { result: Value, truncated: bool },
    /// The command filter or a person refused it; nothing ran.
    Refused { error: String },
    /// It could not run: bad input, unknown tool, an unavailable sandbox, ...
    Failed { error: String },
}

impl From<Result<ToolOutput, ToolError>> for CallReport {
    fn from(result: Result<ToolOutput, ToolError>) -> Self {
        match result {
            Ok(output) => CallReport::Done {
                result: output.result,
                truncated: output.truncated,
            },
            Err(err @ (ToolError::Denied { .. } | ToolError::NotApproved { .. })) => {
                CallReport::Refused {
                    error: err.to_string(),
                }
            }
            Err(err) => CallReport::Failed {
                error: err.to_string(),
            },
        }
    }
}

/// The requester name of calls made from the console; never a valid username, so only
/// admins can answer its approvals.
pub const CONSOLE_USER: &str = "@console";
