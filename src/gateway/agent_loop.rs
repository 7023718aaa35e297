//! The agent loop: one turn of an agent, from the conversation so far to its answer.
//!
//! The caller hands in the whole conversation ([`Turn::context`]); the loop adds the
//! agent's system prompt and its tools, streams the model's answer through
//! [`Providers::stream`] (with the agent's fallbacks), runs each tool call the answer
//! asks for through [`Tools::call`] (command filter, approval, sandbox or path guard),
//! hands the results back to the model, and repeats until the model answers without
//! asking for tools, or fails with [`LoopError::IterationLimit`] when it still asks
//! after the agent's `max_tool_iterations` rounds. What happens is pushed as typed
//! [`TurnEvent`]s into a bounded channel; the messages the turn produced come back in
//! [`Outcome`] for the caller to store (a `/ws` chat) or send (the OpenAI API).
//!
//! Cancelling the token, or dropping the events' receiver, stops the turn at once: the
//! upstream request is dropped (which closes it), a running tool's future is dropped
//! (which kills its sandbox run and withdraws a pending approval), and the turn ends
//! with [`LoopError::Cancelled`]. A tool's failure, a command filter's refusal and a
//! denied or expired approval are results the model reads, never errors of the turn.
//!
//! Every turn writes `agent.turn` audit records at its start and end, and one
//! `agent.tool_call` per call with the tool's name and the SHA-256 of its input, never
//! the input or any text of the conversation. Each upstream call's tokens are recorded
//! in [`Usage`] under the requesting user, token, agent and model. This module never
//! stores chat messages, never speaks HTTP or WebSocket, and never decides approvals.

use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::audit::{Audit, AuditEvent, Outcome as AuditOutcome};
use crate::gateway::agents::{Agent, AgentError, Agents};
use crate::gateway::approval::{ApprovalEvent, Broker, Requester};
use crate::gateway::providers::{
    ChatRequest, Completion, FinishReason, Message, ModelRef, ProviderError, Providers,
    StreamEvent, ToolCall, ToolDef, Usage,
};
use crate::gateway::tools::{Call, CallContext, ToolError, Tools, schema, sha256_hex};
use crate::gateway::usage::{Usage as UsageLog, UsageEvent};
use crate::sandbox::Runner;

/// What the loop needs from the running gateway; `App::agent_loop()` builds it.
pub struct Deps<'a> {
    /// The providers with the keys they had when the turn started.
    pub providers: Arc<Providers>,
    pub agents: &'a Agents,
    pub tools: &'a Tools,
    pub audit: &'a Audit,
    pub approvals: &'a Broker,
    /// The sandbox, or why code execution is unavailable.
    pub runner: Result<&'a Runner, String>,
    pub usage: &'a UsageLog,
}

impl<'a> Deps<'a> {
    fn calls(&self) -> CallContext<'_> {
        CallContext {
            audit: self.audit,
            approvals: self.approvals,
            runner: self.runner.as_ref().map(|r| *r).map_err(String::as_str),
        }
    }
}

impl std::fmt::Debug for Deps<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

/// One turn to run.
#[derive(Debug, Clone)]
pub struct Turn {
    /// The agent's name, configured or stored.
    pub agent: String,
    /// Who the turn acts for; `requester.agent` is set to [`Turn::agent`].
    pub requester: Requester,
    /// The API token's id, when the request came with one (for usage accounting).
    pub token: Option<String>,
    /// The conversation so far, oldest first, without the agent's system prompt.
    pub context: Vec<Message>,
    pub options: TurnOptions,
}

/// What a caller may override of the agent's settings for one turn.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TurnOptions {
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
}

/// What happens during a turn, in order.
#[derive(Debug, Clone)]
pub enum TurnEvent {
    /// A piece of the model's answer text.
    TextDelta(String),
    /// The model asked for a tool; `input_hash` is the SHA-256 of its arguments text.
    ToolCall {
        id: String,
        name: String,
        input_hash: String,
    },
    /// A tool call ended; `ok` is false when it failed or was refused, and `result` is
    /// what the model is given (an `{"error": ...}` object when not ok).
    ToolResult {
        id: String,
        name: String,
        ok: bool,
        result: Value,
    },
    /// A tool call of this turn waits for a person's approval.
    ApprovalWaiting { approval_id: String, tool: String },
    /// One upstream call's tokens.
    Usage { model: String, usage: Usage },
    /// The turn ended with an answer.
    Done {
        text: String,
        usage: Usage,
        finish_reason: FinishReason,
    },
    /// The turn failed; the same error `run` returns.
    Failed(LoopError),
}

/// One tool call of the turn and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolStep {
    pub id: String,
    pub name: String,
    pub ok: bool,
    pub result: Value,
}

/// What a finished turn produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// All the answer text the model streamed in this turn, across its rounds.
    pub text: String,
    /// The tokens of every upstream call of the turn, summed.
    pub usage: Usage,
    pub finish_reason: FinishReason,
    /// The model that gave the final answer, as `provider/model`.
    pub model: String,
    /// The messages the turn added to the conversation, in order: the model's answers
    /// (with the tool calls they asked for) and the tools' results.
    pub messages: Vec<Message>,
    /// The tool calls, in order.
    pub tools: Vec<ToolStep>,
}

/// Why a turn ended without an answer. `code()` is the stable code clients get.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoopError {
    #[error("no agent {0}")]
    UnknownAgent(String),
    #[error("agent {0} has no provider and model to answer with (set provider and model)")]
    NoModel(String),
    #[error("the conversation is empty")]
    EmptyContext,
    #[error("{0}")]
    Provider(#[from] ProviderError),
    #[error(
        "the model still asked for tools after {limit} rounds of tool calls (the agent's max_tool_iterations)"
    )]
    IterationLimit { limit: u32 },
    #[error("the turn was cancelled")]
    Cancelled,
    /// The store's own error is logged, never handed to clients.
    #[error("the agent cannot be read (the gateway's log says why)")]
    Store,
}

impl LoopError {
    /// A stable code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownAgent(_) => "unknown_agent",
            Self::NoModel(_) => "agent_has_no_model",
            Self::EmptyContext => "invalid_request",
            Self::Provider(err) => err.code(),
            Self::IterationLimit { .. } => "tool_iterations_exceeded",
            Self::Cancelled => "cancelled",
            Self::Store => "internal_error",
        }
    }

    /// Whether the caller's request (not the gateway or the upstream) is at fault.
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            Self::UnknownAgent(_) | Self::NoModel(_) | Self::EmptyContext
        )
    }
}

/// Runs one turn. Events go to `events` as they happen, ending with `Done` or
/// `Failed`; the returned result is the same ending.
pub async fn run(
    deps: &Deps<'_>,
    turn: Turn,
    events: mpsc::Sender<TurnEvent>,
    cancel: CancellationToken,
) -> Result<Outcome, LoopError> {
    let mut turn = turn;
    turn.requester.agent.clone_from(&turn.agent);
    let actor = format!("user:{} agent:{}", turn.requester.user, turn.agent);
    deps.audit.record_or_log(
        AuditEvent::new("agent.turn")
            .actor(actor.clone())
            .target(short(&turn.agent))
            .details(json!({ "phase": "start", "messages": turn.context.len() })),
    );
    let mut state = Running {
        deps,
        events: &events,
        cancel: &cancel,
        rounds: 0,
        calls: 0,
    };
    let result = state.turn(&turn).await;
    let (outcome, details) = match &result {
        Ok(done) => (
            AuditOutcome::Success,
            json!({
                "phase": "end",
                "model": done.model,
                "rounds": state.rounds,
                "tool_calls": state.calls,
                "prompt_tokens": done.usage.prompt_tokens,
                "completion_tokens": done.usage.completion_tokens,
            }),
        ),
        Err(err) => (
            AuditOutcome::Failure,
            json!({
                "phase": "end",
                "rounds": state.rounds,
                "tool_calls": state.calls,
                "code": err.code(),
            }),
        ),
    };
    deps.audit.record_or_log(
        AuditEvent::new("agent.turn")
            .actor(actor)
            .target(short(&turn.agent))
            .outcome(outcome)
            .details(details),
    );
    // The caller may be gone (that is one way to cancel); the result says it all.
    let last = match &result {
        Ok(done) => TurnEvent::Done {
            text: done.text.clone(),
            usage: done.usage,
            finish_reason: done.finish_reason,
        },
        Err(err) => TurnEvent::Failed(err.clone()),
    };
    if cancel.is_cancelled() {
        // Nobody may be reading any more: only if there is room.
        let _ = events.try_send(last);
    } else {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {}
            _ = events.send(last) => {}
        }
    }
    result
}

/// The model chain of an agent: its own `provider/model`, then its fallbacks (each
/// expanded with its provider's own fallbacks by [`Providers::chain`]).
pub fn model_chain(agent: &Agent) -> Result<Vec<ModelRef>, LoopError> {
    let (Some(provider), Some(model)) = (&agent.provider, &agent.model) else {
        return Err(LoopError::NoModel(short(&agent.name)));
    };
    let mut chain = vec![ModelRef {
        provider: provider.clone(),
        model: model.clone(),
    }];
    chain.extend(
        agent
            .fallbacks
            .iter()
            .filter_map(|name| ModelRef::parse(name).ok()),
    );
    Ok(chain)
}

/// The function definitions of the tools an agent may use.
pub fn tool_defs(agent: &Agent) -> Vec<ToolDef> {
    agent
        .tools
        .iter()
        .filter_map(|name| schema(name))
        .filter_map(|schema| {
            let function = schema.get("function")?;
            Some(ToolDef {
                name: function.get("name")?.as_str()?.to_string(),
                description: function.get("description")?.as_str()?.to_string(),
                parameters: function.get("parameters")?.clone(),
            })
        })
        .collect()
}

struct Running<'a, 'd> {
    deps: &'a Deps<'d>,
    events: &'a mpsc::Sender<TurnEvent>,
    cancel: &'a CancellationToken,
    rounds: u32,
    calls: u32,
}

impl Running<'_, '_> {
    async fn turn(&mut self, turn: &Turn) -> Result<Outcome, LoopError> {
        if turn.context.is_empty() {
            return Err(LoopError::EmptyContext);
        }
        let agent = self.deps.agents.get(&turn.agent).map_err(|err| match err {
            AgentError::Store(err) => {
                tracing::error!(error = %err, "reading an agent for a turn failed");
                LoopError::Store
            }
            _ => LoopError::UnknownAgent(short(&turn.agent)),
        })?;
        let chain = self.deps.providers.chain(&model_chain(&agent)?);
        let tools = tool_defs(&agent);
        let mut conversation = Vec::with_capacity(turn.context.len() + 1);
        if let Some(prompt) = agent.system_prompt.as_ref().filter(|p| !p.is_empty()) {
            conversation.push(Message::system(prompt.clone()));
        }
        conversation.extend(turn.context.iter().cloned());
        let mut produced = Vec::new();
        let mut steps = Vec::new();
        let mut text = String::new();
        let mut total = Usage::default();
        let limit = agent.max_tool_iterations;
        loop {
            let request = ChatRequest {
                model: String::new(),
                messages: conversation.clone(),
                tools: tools.clone(),
                temperature: turn
                    .options
                    .temperature
                    .or(agent.temperature.map(|t| t as f32)),
                max_tokens: turn.options.max_tokens,
            };
            let (model, answer) = self.ask(&chain, &request).await?;
            let usage = answer.usage.unwrap_or_default();
            total.prompt_tokens = total.prompt_tokens.saturating_add(usage.prompt_tokens);
            total.completion_tokens = total
                .completion_tokens
                .saturating_add(usage.completion_tokens);
            self.record_usage(turn, &model, usage);
            self.emit(TurnEvent::Usage {
                model: model.to_string(),
                usage,
            })
            .await?;
            text.push_str(&answer.text);
            let calls: Vec<ToolCall> = answer.tool_calls;
            if calls.is_empty() {
                produced.push(Message::assistant(answer.text, Vec::new()));
                return Ok(Outcome {
                    text,
                    usage: total,
                    finish_reason: answer.finish.unwrap_or(FinishReason::Stop),
                    model: model.to_string(),
                    messages: produced,
                    tools: steps,
                });
            }
            if self.rounds >= limit {
                return Err(LoopError::IterationLimit { limit });
            }
            self.rounds += 1;
            let said = Message::assistant(answer.text, calls.clone());
            conversation.push(said.clone());
            produced.push(said);
            for call in calls {
                let step = self.tool(turn, &call).await?;
                let content = step.result.to_string();
                let result = Message::tool(call.id.clone(), content);
                conversation.push(result.clone());
                produced.push(result);
                steps.push(step);
            }
        }
    }

    /// One upstream call, streamed: text deltas go out as they come; the whole answer
    /// comes back.
    async fn ask(
        &mut self,
        chain: &[ModelRef],
        request: &ChatRequest,
    ) -> Result<(ModelRef, Completion), LoopError> {
        let started = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => return Err(LoopError::Cancelled),
            started = self.deps.providers.stream(chain, request) => started?,
        };
        let (model, mut stream) = started;
        let mut answer = Completion::default();
        loop {
            let next = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Err(LoopError::Cancelled),
                next = stream.next() => next,
            };
            let event = match next {
                None => break,
                Some(Err(err)) => return Err(err.for_provider(&model.provider).into()),
                Some(Ok(event)) => event,
            };
            if let StreamEvent::TextDelta(delta) = &event
                && !delta.is_empty()
            {
                self.emit(TurnEvent::TextDelta(delta.clone())).await?;
            }
            answer.apply(&event);
        }
        if answer.finish.is_none() {
            return Err(ProviderError::Dropped {
                provider: model.provider.clone(),
            }
            .into());
        }
        Ok((model, answer))
    }

    /// Runs one tool call through the registry; its end, whatever it is, is a result
    /// for the model.
    async fn tool(&mut self, turn: &Turn, call: &ToolCall) -> Result<ToolStep, LoopError> {
        self.calls += 1;
        let input_hash = sha256_hex(&call.arguments);
        self.deps.audit.record_or_log(
            AuditEvent::new("agent.tool_call")
                .actor(format!("user:{} agent:{}", turn.requester.user, turn.agent))
                .target(short(&call.name))
                .details(json!({ "tool": short(&call.name), "input_sha256": input_hash })),
        );
        self.emit(TurnEvent::ToolCall {
            id: call.id.clone(),
            name: call.name.clone(),
            input_hash,
        })
        .await?;
        let result = match serde_json::from_str::<Value>(&call.arguments) {
            Ok(input) => {
                let call = Call {
                    agent: turn.agent.clone(),
                    tool: call.name.clone(),
                    input,
                    requester: turn.requester.clone(),
                };
                self.call_watching_approvals(&turn.requester, call).await?
            }
            Err(err) => Err(ToolError::BadInput {
                tool: short(&call.name),
                message: format!("the arguments are not JSON: {err}"),
            }),
        };
        let step = match result {
            Ok(output) => {
                let mut result = output.result;
                if output.truncated
                    && let Some(object) = result.as_object_mut()
                {
                    object.insert("truncated".into(), Value::Bool(true));
                }
                ToolStep {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    ok: true,
                    result,
                }
            }
            Err(err) => ToolStep {
                id: call.id.clone(),
                name: call.name.clone(),
                ok: false,
                result: json!({ "error": err.to_string() }),
            },
        };
        self.emit(TurnEvent::ToolResult {
            id: step.id.clone(),
            name: step.name.clone(),
            ok: step.ok,
            result: step.result.clone(),
        })
        .await?;
        Ok(step)
    }

    /// [`Tools::call`], telling the caller when it waits for an approval, and dropped
    /// at once on cancellation.
    async fn call_watching_approvals(
        &mut self,
        requester: &Requester,
        call: Call,
    ) -> Result<Result<crate::gateway::tools::ToolOutput, ToolError>, LoopError> {
        let mut approvals = self.deps.approvals.subscribe();
        let mut watching = true;
        let tool = call.tool.clone();
        let running = self.deps.tools.call(self.deps.calls(), call);
        tokio::pin!(running);
        loop {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Err(LoopError::Cancelled),
                result = &mut running => return Ok(result),
                event = approvals.recv(), if watching => match event {
                    Ok(ApprovalEvent::Requested(request))
                        if request.requester.user == requester.user
                            && request.requester.agent == requester.agent
                            && request.requester.session == requester.session
                            && request.tool == tool =>
                    {
                        self.emit(TurnEvent::ApprovalWaiting {
                            approval_id: request.id.clone(),
                            tool: tool.clone(),
                        })
                        .await?;
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => watching = false,
                },
            }
        }
    }

    fn record_usage(&self, turn: &Turn, model: &ModelRef, usage: Usage) {
        let model = model.to_string();
        self.deps.usage.record(UsageEvent {
            user: &turn.requester.user,
            token: turn.token.as_deref(),
            agent: Some(&turn.agent),
            model: &model,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        });
    }

    /// Sends an event; a receiver that went away cancels the turn.
    async fn emit(&self, event: TurnEvent) -> Result<(), LoopError> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(LoopError::Cancelled),
            sent = self.events.send(event) => sent.map_err(|_| LoopError::Cancelled),
        }
    }
}

/// The most turns one person runs at once, over all their chats and connections: each
/// holds a model context of up to a hundred messages and an upstream request, so without
/// it one account could start a turn in each of its chats and exhaust memory.
pub const MAX_TURNS_PER_USER: usize = 4;

/// One running turn per key (a chat's id), whoever started it: a second turn in the
/// same chat would answer from a context that misses the first one's reply. And at most
/// [`MAX_TURNS_PER_USER`] per person.
#[derive(Debug, Default)]
pub struct TurnSlots {
    running: std::sync::Mutex<std::collections::HashMap<String, Held>>,
    serial: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct Held {
    serial: u64,
    cancel: CancellationToken,
    user: String,
}

/// Why a turn could not begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRefused {
    /// Another turn runs in the same chat.
    Busy,
    /// The person already runs [`MAX_TURNS_PER_USER`] turns.
    TooMany,
}

/// A turn's hold on its key; released when dropped.
#[derive(Debug)]
pub struct Slot<'a> {
    slots: &'a TurnSlots,
    key: String,
    serial: u64,
}

impl TurnSlots {
    /// Takes `key` for a turn `user` started, cancelled by `cancel`; refused while
    /// another holds the key or `user` already runs their most turns.
    pub fn begin(
        &self,
        key: &str,
        user: &str,
        cancel: CancellationToken,
    ) -> Result<Slot<'_>, SlotRefused> {
        let serial = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut running = self.lock();
        if running.contains_key(key) {
            return Err(SlotRefused::Busy);
        }
        if running.values().filter(|r| r.user == user).count() >= MAX_TURNS_PER_USER {
            return Err(SlotRefused::TooMany);
        }
        running.insert(
            key.to_string(),
            Held {
                serial,
                cancel,
                user: user.to_string(),
            },
        );
        Ok(Slot {
            slots: self,
            key: key.to_string(),
            serial,
        })
    }

    /// Cancels the turn holding `key`; whether there was one.
    pub fn cancel(&self, key: &str) -> bool {
        match self.lock().get(key) {
            Some(running) => {
                running.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Whether a turn holds `key`.
    pub fn is_running(&self, key: &str) -> bool {
        self.lock().contains_key(key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Held>> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut running = self.slots.lock();
        if running
            .get(&self.key)
            .is_some_and(|running| running.serial == self.serial)
        {
            running.remove(&self.key);
        }
    }
}

fn short(text: &str) -> String {
    text.chars().take(64).collect()
}
