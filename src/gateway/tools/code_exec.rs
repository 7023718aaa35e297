//! `code_exec`: a program in the sandbox, with input files in and written files out.

use serde::Deserialize;
use serde_json::{Value, json};

use super::types::{
    Call, CallContext, ToolError, ToolOutput, Tools, parse_input, run_result, runner,
};
use crate::sandbox::{FileData, Language, RunRequest};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    language: String,
    code: String,
    #[serde(default)]
    files: Vec<InputFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputFile {
    name: String,
    content: String,
}

pub(super) async fn run(
    tools: &Tools,
    ctx: CallContext<'_>,
    call: &Call,
) -> Result<ToolOutput, ToolError> {
    let input: Input = parse_input(call)?;
    let language = Language::parse(&input.language)?;
    let mut request = RunRequest::new(language, input.code.into_bytes());
    request.files = input
        .files
        .into_iter()
        .map(|f| FileData {
            name: f.name,
            data: f.content.into_bytes(),
        })
        .collect();
    let actor = format!(
        "user:{} agent:{}",
        call.requester.user, call.requester.agent
    );
    let outcome = runner(&ctx)?.run(ctx.audit, &actor, request).await?;
    let (mut result, mut truncated) = run_result(tools, &outcome);
    let files: Vec<Value> = outcome
        .files
        .iter()
        .map(|file| {
            let (content, cut) = tools.cap(&String::from_utf8_lossy(&file.data));
            truncated |= cut;
            json!({ "name": file.name, "size": file.data.len(), "content": content })
        })
        .collect();
    if let Some(object) = result.as_object_mut() {
        object.insert("files".into(), Value::Array(files));
        object.insert("files_dropped".into(), json!(outcome.files_dropped));
    }
    Ok(ToolOutput { result, truncated })
}
