//! Agent-named models on the OpenAI-compatible routes: the request's messages are the
//! whole context of one turn of the agent loop, run server-side with the agent's own
//! system prompt, tools, approvals and fallbacks, and nothing is stored (stateless, as
//! OpenAI's API is). Only the answer's text reaches the client: the tools the agent ran
//! are the gateway's, not the client's, so they are never sent as `tool_calls`. The loop
//! records usage itself; this file never does. Dropping the answer cancels the turn (the
//! upstream request and any running tool or pending approval).

use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::error::OpenAiError;
use super::upstream::Asker;
use crate::gateway::agent_loop::{self, LoopError, Turn, TurnEvent, TurnOptions};
use crate::gateway::approval::Requester;
use crate::gateway::providers::{ChatRequest, Completion, StreamEvent};
use crate::server::state::App;

/// Room for events the client has not read yet; a slow reader slows the turn.
const EVENTS: usize = 32;

/// A turn's answer as internal stream events (text, usage, finish).
pub type AgentStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, OpenAiError>> + Send>>;

/// Refuses what an agent model cannot take: the agent runs its own tools.
pub fn check(request: &ChatRequest) -> Result<(), OpenAiError> {
    if !request.tools.is_empty() {
        return Err(OpenAiError::unsupported(
            "tools",
            "an agent runs its own tools: client-declared tools are only accepted with a provider/model",
        ));
    }
    Ok(())
}

fn start(
    app: &Arc<App>,
    asker: &Asker,
    agent: &str,
    request: ChatRequest,
) -> (mpsc::Receiver<TurnEvent>, CancellationToken) {
    let (events, receiver) = mpsc::channel(EVENTS);
    let cancel = CancellationToken::new();
    let turn = Turn {
        agent: agent.to_string(),
        requester: Requester {
            user: asker.user.clone(),
            agent: agent.to_string(),
            session: None,
        },
        token: asker.token.clone(),
        context: request.messages,
        options: TurnOptions {
            temperature: request.temperature,
            max_tokens: request.max_tokens,
        },
    };
    let app = app.clone();
    let token = cancel.clone();
    tokio::spawn(async move {
        let deps = app.agent_loop().await;
        // The ending also arrives as the last event, which is what the route reads.
        let _ = agent_loop::run(&deps, turn, events, token).await;
    });
    (receiver, cancel)
}

/// The events a turn's event stands for on the OpenAI API.
fn translate(event: TurnEvent) -> Vec<Result<StreamEvent, OpenAiError>> {
    match event {
        TurnEvent::TextDelta(text) => vec![Ok(StreamEvent::TextDelta(text))],
        TurnEvent::Done {
            usage,
            finish_reason,
            ..
        } => vec![
            Ok(StreamEvent::Usage(usage)),
            Ok(StreamEvent::Finish(finish_reason)),
        ],
        TurnEvent::Failed(err) => vec![Err(err.into())],
        TurnEvent::ToolCall { .. }
        | TurnEvent::ToolResult { .. }
        | TurnEvent::ApprovalWaiting { .. }
        | TurnEvent::Usage { .. } => Vec::new(),
    }
}

/// Runs a turn to its end. A failure after a tool call was made is marked
/// [`OpenAiError::AfterTools`]: the tool may have changed something, so the client is
/// told not to retry on its own.
pub async fn complete(
    app: &Arc<App>,
    asker: &Asker,
    agent: &str,
    request: ChatRequest,
) -> Result<Completion, OpenAiError> {
    let (mut receiver, cancel) = start(app, asker, agent, request);
    let _cancel_if_dropped = cancel.drop_guard();
    let mut completion = Completion::default();
    let mut tools_ran = false;
    while let Some(event) = receiver.recv().await {
        tools_ran |= matches!(event, TurnEvent::ToolCall { .. });
        for item in translate(event) {
            match item {
                Ok(item) => completion.apply(&item),
                Err(err) if tools_ran => return Err(OpenAiError::AfterTools(Box::new(err))),
                Err(err) => return Err(err),
            }
        }
    }
    if completion.finish.is_none() {
        return Err(if tools_ran {
            OpenAiError::AfterTools(Box::new(OpenAiError::Internal))
        } else {
            OpenAiError::Internal
        });
    }
    Ok(completion)
}

/// Streams a turn. A turn that fails before anything happened (an unknown agent, a
/// provider that refuses at once) is returned as an error here, so the route can answer
/// with a plain status.
pub async fn stream(
    app: &Arc<App>,
    asker: &Asker,
    agent: &str,
    request: ChatRequest,
) -> Result<AgentStream, OpenAiError> {
    let (mut receiver, cancel) = start(app, asker, agent, request);
    let guard = cancel.drop_guard();
    let first = match receiver.recv().await {
        Some(TurnEvent::Failed(err)) => return Err(err.into()),
        Some(event) => event,
        None => return Err(OpenAiError::Internal),
    };
    let rest =
        futures_util::stream::unfold((receiver, guard), |(mut receiver, guard)| async move {
            receiver
                .recv()
                .await
                .map(|event| (event, (receiver, guard)))
        });
    let events = futures_util::stream::once(async move { first })
        .chain(rest)
        .flat_map(|event| futures_util::stream::iter(translate(event)));
    Ok(Box::pin(events))
}

impl From<LoopError> for OpenAiError {
    fn from(err: LoopError) -> Self {
        match err {
            LoopError::Provider(err) => OpenAiError::Provider(err),
            LoopError::UnknownAgent(name) => OpenAiError::UnknownModel(name),
            other => OpenAiError::Agent(other),
        }
    }
}
