//! `read_file`, `write_file` and `list_dir`: the agent's workspace through the path
//! guard (`gateway::paths`), never a path outside it.

use serde::Deserialize;
use serde_json::json;

use super::types::{Agent, Call, ToolError, ToolOutput, Tools, parse_input};
use crate::gateway::paths::Workspace;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathInput {
    path: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListInput {
    #[serde(default = "top")]
    path: String,
}

fn top() -> String {
    ".".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteInput {
    path: String,
    content: String,
}

fn workspace(agent: &Agent<'_>) -> Result<Workspace, ToolError> {
    Ok(Workspace::open(&agent.config.workspace)?)
}

pub(super) fn read(tools: &Tools, agent: &Agent<'_>, call: &Call) -> Result<ToolOutput, ToolError> {
    let input: PathInput = parse_input(call)?;
    let contents = workspace(agent)?.read_file(&input.path, tools.files.max_read)?;
    let (content, encoding) = match String::from_utf8(contents.bytes) {
        Ok(text) => (text, "utf-8"),
        Err(err) => (
            {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(err.into_bytes())
            },
            "base64",
        ),
    };
    Ok(ToolOutput {
        result: json!({
            "path": input.path,
            "content": content,
            "encoding": encoding,
            "size": contents.size,
        }),
        truncated: contents.truncated,
    })
}

pub(super) fn write(
    tools: &Tools,
    agent: &Agent<'_>,
    call: &Call,
) -> Result<ToolOutput, ToolError> {
    let input: WriteInput = parse_input(call)?;
    let written = workspace(agent)?.write_file(
        &input.path,
        input.content.as_bytes(),
        tools.files.max_write,
    )?;
    Ok(ToolOutput {
        result: json!({ "path": input.path, "bytes_written": written }),
        truncated: false,
    })
}

pub(super) fn list(tools: &Tools, agent: &Agent<'_>, call: &Call) -> Result<ToolOutput, ToolError> {
    let input: ListInput = parse_input(call)?;
    let listing = workspace(agent)?.list_dir(&input.path, tools.files.max_entries)?;
    Ok(ToolOutput {
        result: json!({ "path": input.path, "entries": listing.entries }),
        truncated: listing.truncated,
    })
}
