//! Runs one `tools/call`: the arguments checked against the tool's published schema,
//! then a registry tool through [`Tools::call`] or an agent through one turn of the
//! agent loop, with the caller as the requester so its approvals reach the caller's own
//! clients. While the call waits for a person, [`Progress`] says so (the route streams
//! it). What the tool did, or why it was refused, comes back as a [`ToolResult`]; only
//! a call that cannot start (an unknown tool, arguments that do not fit) is an error.
//! Dropping the future cancels the call (a pending approval is withdrawn).

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::catalogue::{ToolRef, agent_schema, registry_schema};
use super::error::McpError;
use crate::gateway::agent_loop::{self, Deps, LoopError, Turn, TurnEvent, TurnOptions};
use crate::gateway::approval::{ApprovalEvent, Requester};
use crate::gateway::providers::Message;
use crate::gateway::tools::{Call, CallContext, ToolError};

/// Who calls, as approvals and usage see it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    /// The API token's id, when the request came with one.
    pub token: Option<String>,
    /// Tells this call's approval requests apart from every other's.
    pub tag: String,
}

/// What happens while a call runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A person is asked to approve `summary` on the caller's clients.
    AwaitingApproval {
        approval_id: String,
        summary: String,
    },
}

/// A call's end as the client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    pub text: String,
    pub structured: Option<Value>,
    /// The tool was refused or failed; the text says why.
    pub is_error: bool,
}

impl ToolResult {
    fn error(text: impl Into<String>) -> ToolResult {
        ToolResult {
            text: text.into(),
            structured: None,
            is_error: true,
        }
    }

    /// The `tools/call` result.
    pub fn to_json(&self) -> Value {
        let mut result = json!({
            "content": [{ "type": "text", "text": self.text }],
            "isError": self.is_error,
        });
        if let (Some(structured), Some(object)) = (&self.structured, result.as_object_mut()) {
            object.insert("structuredContent".into(), structured.clone());
        }
        result
    }
}

/// Runs `tool` with `arguments` for `caller`.
pub async fn call(
    deps: &Deps<'_>,
    caller: &Caller,
    tool: &ToolRef,
    arguments: Value,
    progress: mpsc::Sender<Progress>,
) -> Result<ToolResult, McpError> {
    check_arguments(tool, &arguments)?;
    match tool {
        ToolRef::Registry { agent, tool } => {
            registry(deps, caller, agent, tool, arguments, progress).await
        }
        ToolRef::Agent(agent) => {
            let prompt = arguments
                .get("prompt")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            turn(deps, caller, agent, prompt, progress).await
        }
    }
}

/// Refuses arguments that do not fit the tool's published input schema.
pub fn check_arguments(tool: &ToolRef, arguments: &Value) -> Result<(), McpError> {
    let schema = match tool {
        ToolRef::Agent(_) => Some(agent_schema()),
        ToolRef::Registry { tool, .. } => registry_schema(tool),
    };
    match schema {
        Some(schema) => {
            super::schema::check(arguments, &schema).map_err(|message| McpError::BadArguments {
                tool: tool.name(),
                message,
            })
        }
        None => Ok(()),
    }
}

async fn registry(
    deps: &Deps<'_>,
    caller: &Caller,
    agent: &str,
    tool: &str,
    input: Value,
    progress: mpsc::Sender<Progress>,
) -> Result<ToolResult, McpError> {
    let mut events = deps.approvals.subscribe();
    let ctx = CallContext {
        audit: deps.audit,
        approvals: deps.approvals,
        runner: deps.runner.as_ref().map(|r| *r).map_err(String::as_str),
    };
    let call = Call {
        agent: agent.to_string(),
        tool: tool.to_string(),
        input,
        requester: Requester {
            user: caller.user.clone(),
            agent: agent.to_string(),
            session: Some(caller.tag.clone()),
        },
    };
    let running = deps.tools.call(ctx, call);
    tokio::pin!(running);
    let mut listening = true;
    let outcome = loop {
        tokio::select! {
            outcome = &mut running => break outcome,
            event = events.recv(), if listening => match event {
                Ok(ApprovalEvent::Requested(request))
                    if request.requester.session.as_deref() == Some(caller.tag.as_str()) =>
                {
                    // A client that stopped reading does not stop the call.
                    let _ = progress.try_send(Progress::AwaitingApproval {
                        approval_id: request.id.clone(),
                        summary: request.input.summary.clone(),
                    });
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => listening = false,
            },
        }
    };
    let name = format!("{agent}{}{tool}", super::catalogue::SEPARATOR);
    match outcome {
        Ok(output) => Ok(ToolResult {
            text: output.result.to_string(),
            structured: output.result.is_object().then(|| output.result.clone()),
            is_error: false,
        }),
        Err(ToolError::BadInput { message, .. }) => Err(McpError::BadArguments {
            tool: name,
            message,
        }),
        Err(
            ToolError::UnknownAgent(_) | ToolError::UnknownTool(_) | ToolError::NotEnabled { .. },
        ) => Err(McpError::UnknownTool(name)),
        Err(ToolError::Store(err)) => {
            tracing::error!(error = %err, tool = %name, "an MCP tool call could not read the store");
            Ok(ToolResult::error(
                "the tool could not run (the gateway's log says why)",
            ))
        }
        Err(err) => Ok(ToolResult::error(err.to_string())),
    }
}

async fn turn(
    deps: &Deps<'_>,
    caller: &Caller,
    agent: &str,
    prompt: String,
    progress: mpsc::Sender<Progress>,
) -> Result<ToolResult, McpError> {
    let (events, mut receiver) = mpsc::channel(32);
    let turn = Turn {
        agent: agent.to_string(),
        requester: Requester {
            user: caller.user.clone(),
            agent: agent.to_string(),
            session: Some(caller.tag.clone()),
        },
        token: caller.token.clone(),
        context: vec![Message::user(prompt)],
        options: TurnOptions::default(),
    };
    let cancel = CancellationToken::new();
    let _cancel_if_dropped = cancel.clone().drop_guard();
    let running = agent_loop::run(deps, turn, events, cancel);
    let watch = async {
        while let Some(event) = receiver.recv().await {
            if let TurnEvent::ApprovalWaiting { approval_id, tool } = event {
                let _ = progress.try_send(Progress::AwaitingApproval {
                    approval_id,
                    summary: tool,
                });
            }
        }
    };
    let (outcome, ()) = tokio::join!(running, watch);
    match outcome {
        Ok(done) => Ok(ToolResult {
            text: done.text,
            structured: None,
            is_error: false,
        }),
        Err(LoopError::UnknownAgent(_)) => Err(McpError::UnknownTool(agent.to_string())),
        Err(err) => Ok(ToolResult::error(err.to_string())),
    }
}
