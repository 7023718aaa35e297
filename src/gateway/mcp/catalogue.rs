//! The tools MCP clients see. Every agent is a tool named after it (input `prompt`; it
//! runs one whole turn of the agent, `chat:write`), and each registry tool an agent has
//! enabled is a tool named `<agent>__<tool>` (its own input schema; it runs in that
//! agent's workspace under the same guards, `agent:manage`). Agent names cannot
//! contain `__` followed by a tool name and a registry tool's name always does, but an
//! agent may be called, say, `helper__shell`: then the agent wins and the other is not
//! listed. A caller is shown only the tools its scopes let it call.

use serde_json::{Value, json};

use super::error::McpError;
use crate::auth::scopes::{Scope, Scopes};
use crate::gateway::agents::{Agent, Agents};
use crate::gateway::tools::{TOOL_NAMES, schema};

/// The separator between an agent's name and its tool's.
pub const SEPARATOR: &str = "__";

/// What a tool name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolRef {
    /// A whole agent turn.
    Agent(String),
    /// One registry tool in an agent's workspace.
    Registry { agent: String, tool: String },
}

impl ToolRef {
    /// The scope calling it needs.
    pub fn scope(&self) -> Scope {
        match self {
            ToolRef::Agent(_) => Scope::ChatWrite,
            ToolRef::Registry { .. } => Scope::AgentManage,
        }
    }

    pub fn name(&self) -> String {
        match self {
            ToolRef::Agent(agent) => agent.clone(),
            ToolRef::Registry { agent, tool } => format!("{agent}{SEPARATOR}{tool}"),
        }
    }
}

/// The input schema of an agent tool.
pub fn agent_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "prompt": { "type": "string", "description": "What to ask the agent." }
        },
        "required": ["prompt"],
        "additionalProperties": false
    })
}

/// The input schema of a registry tool.
pub fn registry_schema(tool: &str) -> Option<Value> {
    schema(tool).and_then(|s| s.get("function")?.get("parameters").cloned())
}

/// Every tool `scopes` may call, for `tools/list`, ordered by name.
pub fn list(agents: &Agents, scopes: Scopes) -> Result<Vec<Value>, McpError> {
    let agents = agents.list().map_err(|_| McpError::Store)?;
    let mut tools = Vec::new();
    for agent in &agents {
        if scopes.allows(Scope::ChatWrite) {
            tools.push(agent_tool(agent));
        }
        if !scopes.allows(Scope::AgentManage) {
            continue;
        }
        for tool in agent
            .tools
            .iter()
            .filter(|t| TOOL_NAMES.contains(&t.as_str()))
        {
            let name = format!("{}{SEPARATOR}{tool}", agent.name);
            if agents.iter().any(|a| a.name == name) {
                continue;
            }
            let Some(function) = schema(tool).and_then(|s| s.get("function").cloned()) else {
                continue;
            };
            tools.push(json!({
                "name": name,
                "title": format!("{tool} ({})", agent.name),
                "description": format!(
                    "{} Runs in agent {}'s workspace, under the gateway's command filter and approvals.",
                    function.get("description").and_then(Value::as_str).unwrap_or_default(),
                    agent.name
                ),
                "inputSchema": function.get("parameters"),
            }));
        }
    }
    tools.sort_by(|a, b| {
        let name = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_owned);
        name(a).cmp(&name(b))
    });
    Ok(tools)
}

fn agent_tool(agent: &Agent) -> Value {
    let model = match (&agent.provider, &agent.model) {
        (Some(provider), Some(model)) => format!(" (model {provider}/{model})"),
        _ => String::new(),
    };
    let tools = if agent.tools.is_empty() {
        "no tools".to_string()
    } else {
        format!("its tools {}", agent.tools.join(", "))
    };
    json!({
        "name": agent.name,
        "title": format!("Ask agent {}", agent.name),
        "description": format!(
            "Ask the aisopod agent {}{model} and get its answer; it may use {tools}, each call guarded by the command filter and a person's approval.",
            agent.name
        ),
        "inputSchema": agent_schema(),
    })
}

/// What `name` stands for.
pub fn resolve(agents: &Agents, name: &str) -> Result<ToolRef, McpError> {
    let unknown = || McpError::UnknownTool(name.chars().take(128).collect());
    let known = |agent: &str| match agents.get(agent) {
        Ok(found) => Ok(Some(found)),
        Err(crate::gateway::agents::AgentError::Store(_)) => Err(McpError::Store),
        Err(_) => Ok(None),
    };
    if name.len() > 128 {
        return Err(unknown());
    }
    if known(name)?.is_some() {
        return Ok(ToolRef::Agent(name.to_string()));
    }
    let Some((agent, tool)) = name.rsplit_once(SEPARATOR) else {
        return Err(unknown());
    };
    match known(agent)? {
        Some(found) if found.tools.iter().any(|t| t == tool) && TOOL_NAMES.contains(&tool) => {
            Ok(ToolRef::Registry {
                agent: agent.to_string(),
                tool: tool.to_string(),
            })
        }
        _ => Err(unknown()),
    }
}
