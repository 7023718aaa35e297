//! `shell`: a command line judged by the command filter, approved by a person when the
//! filter asks for it, and run by `bash -c` in the sandbox with the workspace's files.

use serde::Deserialize;
use serde_json::{Value, json};

use super::types::{
    Agent, Call, CallContext, SANDBOX_CWD, ToolError, ToolOutput, Tools, ending_name, parse_input,
    run_result, runner,
};
use crate::audit::AuditEvent;
use crate::gateway::approval::{CanonicalInput, NewRequest};
use crate::gateway::paths::{EntryKind, Workspace};
use crate::policy::{Decision, RememberedRule};
use crate::sandbox::{FileData, Language, RunRequest};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    command: String,
}

pub(super) async fn run(
    tools: &Tools,
    agent: &Agent<'_>,
    ctx: CallContext<'_>,
    call: &Call,
) -> Result<ToolOutput, ToolError> {
    let input: Input = parse_input(call)?;
    let command = input.command;
    let remembered = tools.remembered_for(&agent.config.name)?;
    let judgement = agent.filter.judge_with(&command, &remembered);
    match judgement.decision {
        Decision::Deny => {
            return Err(ToolError::Denied {
                reason: judgement.reason,
                rule: judgement.rule,
            });
        }
        Decision::Approve => {
            let rules = RememberedRule::all_from_command(agent.filter, &command);
            let resolved = ctx
                .approvals
                .ask(
                    ctx.audit,
                    NewRequest {
                        tool: "shell".into(),
                        input: CanonicalInput {
                            summary: command.clone(),
                            code_sha256: None,
                            cwd: SANDBOX_CWD.into(),
                            files: Vec::new(),
                        },
                        requester: call.requester.clone(),
                        reason: judgement.reason.clone(),
                        rule: judgement.rule.clone(),
                        remember_offered: !rules.is_empty(),
                    },
                )
                .await;
            if !resolved.allowed() {
                return Err(ToolError::NotApproved {
                    ending: ending_name(resolved.ending),
                    by: resolved.decided_by.clone(),
                    reason: judgement.reason,
                });
            }
            if resolved.remember && !rules.is_empty() {
                tools.remember(&agent.config.name, &rules)?;
                ctx.audit.record_or_log(
                    AuditEvent::new("approval.remember")
                        .actor(resolved.decided_by.clone())
                        .target(agent.config.name.clone())
                        // The rules are made from the command, so only their count.
                        .details(json!({ "rules": rules.len(), "request": resolved.request.id })),
                );
            }
        }
        Decision::Allow => {}
    }
    let runner = runner(&ctx)?;
    let workspace = Workspace::open(&agent.config.workspace)?;
    let limits = &runner.config().limits;
    let (files, skipped) = workspace_files(&workspace, limits.max_files, limits.max_file_size);
    let mut request = RunRequest::new(Language::Bash, command.into_bytes());
    request.files = files;
    let actor = format!(
        "user:{} agent:{}",
        call.requester.user, call.requester.agent
    );
    let outcome = runner.run(ctx.audit, &actor, request).await?;
    let mut written = Vec::new();
    let mut refused = Vec::new();
    for file in &outcome.files {
        match workspace.write_file(&file.name, &file.data, tools.files.max_write) {
            Ok(_) => written.push(file.name.clone()),
            Err(err) => refused.push(json!({ "name": file.name, "error": err.to_string() })),
        }
    }
    let (mut result, truncated) = run_result(tools, &outcome);
    if let Some(object) = result.as_object_mut() {
        object.insert("files_written".into(), json!(written));
        if !refused.is_empty() {
            object.insert("files_refused".into(), Value::Array(refused));
        }
        if skipped > 0 || outcome.files_dropped > 0 {
            object.insert(
                "note".into(),
                json!(format!(
                    "{skipped} workspace file(s) were not copied in and {} written file(s) were not copied back (count or size limit of [tools.sandbox])",
                    outcome.files_dropped
                )),
            );
        }
    }
    Ok(ToolOutput { result, truncated })
}

/// The workspace's top-level regular files that fit the run's limits, and how many were
/// left out.
fn workspace_files(
    workspace: &Workspace,
    max_files: usize,
    max_size: u64,
) -> (Vec<FileData>, usize) {
    let Ok(listing) = workspace.list_dir(".", 10_000) else {
        return (Vec::new(), 0);
    };
    let mut files = Vec::new();
    let mut skipped = 0;
    for entry in listing.entries.iter().filter(|e| e.kind == EntryKind::File) {
        if files.len() >= max_files
            || entry.size > max_size
            || crate::sandbox::spec::check_file_name(&entry.name).is_err()
        {
            skipped += 1;
            continue;
        }
        match workspace.read_file(&entry.name, max_size) {
            Ok(contents) if !contents.truncated => files.push(FileData {
                name: entry.name.clone(),
                data: contents.bytes,
            }),
            _ => skipped += 1,
        }
    }
    (files, skipped)
}
