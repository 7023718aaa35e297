//! Chat over `/ws`: the `chat.*` messages a client sends, the turn each `chat.send`
//! starts, and the frames the turn streams back to that connection.
//!
//! `chat.send {chatId, content, agent?, visibility?}` stores the person's message
//! (through `Chats`, with its limits and visibility rules), answers `chat.accepted`
//! with its id and the id kept for the reply, and runs the agent loop on the chat's
//! model context. The turn streams `chat.delta`, `tool.call` and `tool.result` (and
//! the broker sends `approval.request` as for any tool call); it ends with `chat.done`,
//! after the reply is stored with the visibility of its prompt, or `chat.error` with a
//! stable code, and then nothing of the reply is stored. One turn runs per chat at a
//! time, whoever started it: another `chat.send` gets `chat.error` `busy`; and one person
//! runs at most `MAX_TURNS_PER_USER` at once (`too_many_turns`).
//! `chat.cancel {chatId}` stops the chat's turn; so does the connection ending (the
//! client closing, its credential revoked, or it being too slow).
//! `chat.history {chatId, before?, limit?}` reads through `Chats::history`, so a person
//! sees exactly what the REST routes show them.
//!
//! A slow client never holds a turn up: frames go into the connection's bounded queue;
//! when it is full, text deltas are joined into one pending delta (up to
//! [`MAX_COALESCED`] bytes) and other frames wait at most [`Outlet::wait`]; past either
//! limit the turn is cancelled and the connection closed with 1008 "too slow". This
//! module never checks scopes (the socket does, per message type) and never decides
//! visibility or approvals itself.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::auth::Principal;
use crate::gateway::agent_loop::{
    self, LoopError, MAX_TURNS_PER_USER, SlotRefused, Turn, TurnEvent, TurnOptions,
};
use crate::gateway::approval::Requester;
use crate::gateway::chats::{self, Author, ChatError, Visibility};
use crate::gateway::providers::{FinishReason, Message, Usage};
use crate::gateway::tools::cap_text;
use crate::server::chat_routes::viewer_of;
use crate::server::error::ApiError;
use crate::server::quota;
use crate::server::state::App;

/// The most text deltas are joined into while the client does not read.
pub const MAX_COALESCED: usize = 256 << 10;
/// Messages of the chat's history the model is given.
pub const CONTEXT_MESSAGES: usize = 100;

/// A `chat.*` message from a client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ChatClientMessage {
    #[serde(rename = "chat.send", rename_all = "camelCase")]
    Send {
        chat_id: String,
        content: String,
        /// Answer with this agent instead of the chat's own.
        #[serde(default)]
        agent: Option<String>,
        /// `public` unless given; `admin_only` is refused (the model never sees it).
        #[serde(default)]
        visibility: Option<Visibility>,
    },
    #[serde(rename = "chat.cancel", rename_all = "camelCase")]
    Cancel { chat_id: String },
    #[serde(rename = "chat.history", rename_all = "camelCase")]
    History {
        chat_id: String,
        /// A message id: the page ends before it.
        #[serde(default)]
        before: Option<u64>,
        #[serde(default)]
        limit: Option<usize>,
    },
}

/// Tokens of a turn, as `chat.done` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageOut {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl From<Usage> for UsageOut {
    fn from(usage: Usage) -> Self {
        UsageOut {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total(),
        }
    }
}

/// A `chat.*` or `tool.*` message to a client. `messageId` in the turn's frames is the
/// reply's id (kept for it when the prompt was stored).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum ChatServerMessage {
    #[serde(rename = "chat.accepted", rename_all = "camelCase")]
    Accepted {
        chat_id: String,
        /// The stored prompt's id.
        prompt_id: u64,
        message_id: u64,
        agent: String,
    },
    #[serde(rename = "chat.delta", rename_all = "camelCase")]
    Delta {
        chat_id: String,
        message_id: u64,
        delta: String,
    },
    #[serde(rename = "tool.call", rename_all = "camelCase")]
    ToolCall {
        chat_id: String,
        message_id: u64,
        call_id: String,
        name: String,
        input_hash: String,
    },
    #[serde(rename = "tool.result", rename_all = "camelCase")]
    ToolResult {
        chat_id: String,
        message_id: u64,
        call_id: String,
        name: String,
        ok: bool,
        result: Value,
    },
    #[serde(rename = "chat.done", rename_all = "camelCase")]
    Done {
        chat_id: String,
        message_id: u64,
        usage: UsageOut,
        finish_reason: FinishReason,
    },
    #[serde(rename = "chat.error", rename_all = "camelCase")]
    Error {
        chat_id: String,
        code: String,
        message: String,
    },
    #[serde(rename = "chat.history", rename_all = "camelCase")]
    History {
        chat_id: String,
        messages: Vec<chats::Message>,
        /// The `before` of the next (older) page.
        next: Option<String>,
    },
}

impl ChatServerMessage {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    fn error(chat_id: &str, code: &str, message: impl Into<String>) -> Self {
        ChatServerMessage::Error {
            chat_id: short(chat_id),
            code: code.to_string(),
            message: message.into(),
        }
    }

    fn from_chat_error(chat_id: &str, err: ChatError) -> Self {
        Self::from_api_error(chat_id, err.into())
    }

    fn from_api_error(chat_id: &str, api: ApiError) -> Self {
        let code = serde_json::to_value(api.code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "internal".into());
        Self::error(chat_id, &code, api.message)
    }
}

/// Where a connection's chat frames go: its bounded queue, and the signal that it
/// could not keep up.
#[derive(Debug, Clone)]
pub struct Outlet {
    pub queue: mpsc::Sender<Value>,
    /// Cancelled when a turn gave up on this connection; the socket then closes it.
    pub too_slow: CancellationToken,
    /// How long a frame other than a delta may wait for room.
    pub wait: Duration,
}

/// Handles one `chat.*` message of a connection: a turn for `chat.send`, the answer
/// to `chat.cancel` and `chat.history`, all through `outlet`. `cancel` is the
/// connection's: its turns end with it.
pub fn handle(
    app: Arc<App>,
    principal: &Principal,
    message: ChatClientMessage,
    outlet: Outlet,
    cancel: &CancellationToken,
) {
    match message {
        send @ ChatClientMessage::Send { .. } => start(app, principal, send, outlet, cancel),
        ChatClientMessage::Cancel { chat_id } => {
            let principal = principal.clone();
            tokio::spawn(async move {
                let answer = self::cancel(app, &principal, chat_id).await;
                send_other(&outlet, answer).await;
            });
        }
        ChatClientMessage::History {
            chat_id,
            before,
            limit,
        } => {
            let principal = principal.clone();
            tokio::spawn(async move {
                let answer = history(app, &principal, chat_id, before, limit).await;
                send_other(&outlet, answer).await;
            });
        }
    }
}

/// Starts the turn a `chat.send` asks for; everything it says goes through `outlet`.
/// `cancel` is the connection's: the turn ends with it.
pub fn start(
    app: Arc<App>,
    principal: &Principal,
    message: ChatClientMessage,
    outlet: Outlet,
    cancel: &CancellationToken,
) {
    let ChatClientMessage::Send {
        chat_id,
        content,
        agent,
        visibility,
    } = message
    else {
        return;
    };
    let principal = principal.clone();
    let cancel = cancel.child_token();
    tokio::spawn(async move {
        let result = turn(
            app, principal, &chat_id, content, agent, visibility, &outlet, cancel,
        )
        .await;
        if let Err(frame) = result {
            send_other(&outlet, frame.to_value()).await;
        }
    });
}

/// `chat.cancel`: stops the chat's running turn, if the caller may open the chat.
pub async fn cancel(app: Arc<App>, principal: &Principal, chat_id: String) -> Value {
    let viewer = viewer_of(principal);
    let worker = app.clone();
    let id = chat_id.clone();
    let opened = tokio::task::spawn_blocking(move || worker.gateway.chats.get(&viewer, &id)).await;
    match opened {
        Ok(Ok(chat)) => {
            if app.gateway.turns.cancel(&chat.id) {
                serde_json::json!({ "type": "chat.cancel", "chatId": chat.id, "cancelled": true })
            } else {
                ChatServerMessage::error(&chat.id, "not_running", "no turn is running in this chat")
                    .to_value()
            }
        }
        Ok(Err(err)) => ChatServerMessage::from_chat_error(&chat_id, err).to_value(),
        Err(_) => {
            ChatServerMessage::error(&chat_id, "internal", "the chat could not be read").to_value()
        }
    }
}

/// `chat.history`: a page of what the caller may see, newest first.
pub async fn history(
    app: Arc<App>,
    principal: &Principal,
    chat_id: String,
    before: Option<u64>,
    limit: Option<usize>,
) -> Value {
    let viewer = viewer_of(principal);
    let id = chat_id.clone();
    let page = tokio::task::spawn_blocking(move || {
        let cursor = before.map(|b| b.to_string());
        app.gateway
            .chats
            .history(&viewer, &id, cursor.as_deref(), limit)
    })
    .await;
    match page {
        Ok(Ok(page)) => ChatServerMessage::History {
            chat_id: short(&chat_id),
            messages: page.items,
            next: page.next,
        }
        .to_value(),
        Ok(Err(err)) => ChatServerMessage::from_chat_error(&chat_id, err).to_value(),
        Err(_) => {
            ChatServerMessage::error(&chat_id, "internal", "the chat could not be read").to_value()
        }
    }
}

/// What the model is given of a stored chat: people's messages as the user's, agents'
/// replies as its own. Tool results are not stored as messages; the replies that used
/// them are.
pub fn model_messages(stored: &[chats::Message]) -> Vec<Message> {
    stored
        .iter()
        .filter_map(|m| match &m.author {
            Author::User(_) | Author::Device(_) => Some(Message::user(m.content.clone())),
            Author::Agent(_) => Some(Message::assistant(m.content.clone(), Vec::new())),
            Author::Tool(_) => None,
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn turn(
    app: Arc<App>,
    principal: Principal,
    chat_id: &str,
    content: String,
    agent: Option<String>,
    visibility: Option<Visibility>,
    outlet: &Outlet,
    cancel: CancellationToken,
) -> Result<(), ChatServerMessage> {
    let visibility = visibility.unwrap_or(Visibility::Public);
    if visibility == Visibility::AdminOnly {
        return Err(ChatServerMessage::error(
            chat_id,
            "invalid_message",
            "an admin_only message is kept from the model, so it cannot prompt an agent: post it with POST /api/v1/chats/{id}/messages",
        ));
    }
    let viewer = viewer_of(&principal);
    // The chat must be one the caller may open before it is named as busy or not.
    let chat = {
        let (app, viewer, id) = (app.clone(), viewer.clone(), chat_id.to_string());
        blocking(move || app.gateway.chats.get(&viewer, &id))
            .await
            .map_err(|err| ChatServerMessage::from_chat_error(chat_id, err))?
    };
    let _slot = match app
        .gateway
        .turns
        .begin(&chat.id, &principal.username, cancel.clone())
    {
        Ok(slot) => slot,
        Err(SlotRefused::Busy) => {
            return Err(ChatServerMessage::error(
                &chat.id,
                "busy",
                "a turn is already running in this chat: wait for its chat.done or send chat.cancel",
            ));
        }
        Err(SlotRefused::TooMany) => {
            return Err(ChatServerMessage::error(
                &chat.id,
                "too_many_turns",
                format!(
                    "you already have {MAX_TURNS_PER_USER} turns running: wait for one's chat.done or cancel one"
                ),
            ));
        }
    };
    // The same per-token limits as the HTTP routes that call a model; a refused send
    // stores nothing.
    {
        let (app, principal) = (app.clone(), principal.clone());
        tokio::task::spawn_blocking(move || quota::admit(&app, &principal, None, "ws chat.send"))
            .await
            .unwrap_or(Err(quota::QuotaRefusal::Failed))
            .map_err(|refusal| ChatServerMessage::from_api_error(&chat.id, refusal.api_error()))?;
    }
    let agent = agent.unwrap_or_else(|| chat.agent.clone());
    let known = {
        let (app, agent) = (app.clone(), agent.clone());
        tokio::task::spawn_blocking(move || app.gateway.agents.get(&agent).is_ok()).await
    };
    if !matches!(known, Ok(true)) {
        return Err(ChatServerMessage::error(
            &chat.id,
            "unknown_agent",
            format!("no agent {}", short(&agent)),
        ));
    }
    let (prompt, reply_id, context) = {
        let (app, id) = (app.clone(), chat.id.clone());
        blocking(move || {
            let chats = &app.gateway.chats;
            let (prompt, reply_id) = chats.post_prompt(&viewer, &id, &content, visibility)?;
            let context = chats.turn_context(&viewer, &id, CONTEXT_MESSAGES)?;
            Ok((prompt, reply_id, context))
        })
        .await
        .map_err(|err| ChatServerMessage::from_chat_error(&chat.id, err))?
    };
    send_other(
        outlet,
        ChatServerMessage::Accepted {
            chat_id: chat.id.clone(),
            prompt_id: prompt.id,
            message_id: reply_id,
            agent: agent.clone(),
        }
        .to_value(),
    )
    .await;
    // A session a token's WebSocket ticket made counts under that token too.
    let token = principal.api_token_id().map(str::to_owned);
    let turn = Turn {
        agent: agent.clone(),
        requester: Requester {
            user: principal.username.clone(),
            agent: agent.clone(),
            session: Some(format!("ws chat {} turn {reply_id}", chat.id)),
        },
        token,
        context: model_messages(&context),
        options: TurnOptions::default(),
    };
    let (events, received) = mpsc::channel(32);
    let forwarding = forward(
        received,
        outlet.clone(),
        chat.id.clone(),
        reply_id,
        cancel.clone(),
    );
    let running = {
        let (app, cancel) = (app.clone(), cancel.clone());
        async move {
            let deps = app.agent_loop().await;
            agent_loop::run(&deps, turn, events, cancel).await
        }
    };
    let (result, ()) = tokio::join!(running, forwarding);
    match result {
        Ok(outcome) => {
            if !outcome.text.trim().is_empty() {
                let (app, id, to) = (
                    app.clone(),
                    chat.id.clone(),
                    chats::reply_visibility(&prompt),
                );
                let max = app.gateway.chats.limits().max_message;
                let text = cap_text(&outcome.text, max).0;
                blocking(move || {
                    app.gateway
                        .chats
                        .store_reply(&id, reply_id, &agent, &text, to)
                })
                .await
                .map_err(|err| ChatServerMessage::from_chat_error(&chat.id, err))?;
            }
            send_other(
                outlet,
                ChatServerMessage::Done {
                    chat_id: chat.id.clone(),
                    message_id: reply_id,
                    usage: outcome.usage.into(),
                    finish_reason: outcome.finish_reason,
                }
                .to_value(),
            )
            .await;
            Ok(())
        }
        Err(err) => Err(loop_error(&chat.id, &err)),
    }
}

fn loop_error(chat_id: &str, err: &LoopError) -> ChatServerMessage {
    ChatServerMessage::error(chat_id, err.code(), err.to_string())
}

/// Passes a turn's events to the connection by the queue's policy (see the module
/// documentation). Returns when the turn's events end.
pub async fn forward(
    mut events: mpsc::Receiver<TurnEvent>,
    outlet: Outlet,
    chat_id: String,
    message_id: u64,
    cancel: CancellationToken,
) {
    let mut pending = String::new();
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            permit = outlet.queue.reserve(), if !pending.is_empty() => {
                if let Ok(permit) = permit {
                    permit.send(delta(&chat_id, message_id, std::mem::take(&mut pending)));
                }
                continue;
            }
        };
        let Some(event) = event else { break };
        let frame = match event {
            TurnEvent::TextDelta(text) => {
                pending.push_str(&text);
                if pending.len() > MAX_COALESCED {
                    give_up(&outlet, &cancel);
                    pending.clear();
                    continue;
                }
                if let Ok(permit) = outlet.queue.try_reserve() {
                    permit.send(delta(&chat_id, message_id, std::mem::take(&mut pending)));
                }
                continue;
            }
            TurnEvent::ToolCall {
                id,
                name,
                input_hash,
            } => ChatServerMessage::ToolCall {
                chat_id: chat_id.clone(),
                message_id,
                call_id: id,
                name,
                input_hash,
            },
            TurnEvent::ToolResult {
                id,
                name,
                ok,
                result,
            } => ChatServerMessage::ToolResult {
                chat_id: chat_id.clone(),
                message_id,
                call_id: id,
                name,
                ok,
                result,
            },
            // The broker sends approval.request itself; usage and the end are told by
            // the caller once the reply is stored.
            TurnEvent::ApprovalWaiting { .. }
            | TurnEvent::Usage { .. }
            | TurnEvent::Done { .. }
            | TurnEvent::Failed(_) => continue,
        };
        if !pending.is_empty() {
            let text = std::mem::take(&mut pending);
            if !send_within(&outlet, delta(&chat_id, message_id, text)).await {
                give_up(&outlet, &cancel);
                continue;
            }
        }
        if !send_within(&outlet, frame.to_value()).await {
            give_up(&outlet, &cancel);
        }
    }
    if !pending.is_empty() && !send_within(&outlet, delta(&chat_id, message_id, pending)).await {
        give_up(&outlet, &cancel);
    }
}

fn delta(chat_id: &str, message_id: u64, delta: String) -> Value {
    ChatServerMessage::Delta {
        chat_id: chat_id.to_string(),
        message_id,
        delta,
    }
    .to_value()
}

fn give_up(outlet: &Outlet, cancel: &CancellationToken) {
    cancel.cancel();
    outlet.too_slow.cancel();
}

/// Queues a frame, waiting at most [`Outlet::wait`]; false when it found no room.
async fn send_within(outlet: &Outlet, frame: Value) -> bool {
    if outlet.too_slow.is_cancelled() {
        return false;
    }
    matches!(
        tokio::time::timeout(outlet.wait, outlet.queue.send(frame)).await,
        Ok(Ok(()))
    )
}

/// A frame that ends a turn: queued if the connection still reads.
async fn send_other(outlet: &Outlet, frame: Value) {
    if !send_within(outlet, frame).await {
        outlet.too_slow.cancel();
    }
}

/// Runs store work (sled, fsync) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ChatError> + Send + 'static,
) -> Result<T, ChatError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|_| {
        Err(ChatError::Store(crate::store::StoreError::Write(
            "the store task failed".into(),
        )))
    })
}

fn short(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deltas_a_client_does_not_read_are_joined_and_other_frames_keep_their_order() {
        let (queue, mut frames) = mpsc::channel(1);
        let outlet = Outlet {
            queue,
            too_slow: CancellationToken::new(),
            wait: Duration::from_secs(5),
        };
        let (events, received) = mpsc::channel(256);
        for n in 0..100 {
            events
                .send(TurnEvent::TextDelta(format!("{n},")))
                .await
                .unwrap();
        }
        events
            .send(TurnEvent::ToolCall {
                id: "c1".into(),
                name: "list_dir".into(),
                input_hash: "h".into(),
            })
            .await
            .unwrap();
        events
            .send(TurnEvent::TextDelta("end".into()))
            .await
            .unwrap();
        drop(events);
        let cancel = CancellationToken::new();
        let too_slow = outlet.too_slow.clone();
        // The forwarder holds the only sender: the queue ends when it does.
        let forwarding = tokio::spawn(forward(received, outlet, "c".into(), 7, cancel.clone()));
        let mut got = Vec::new();
        while let Some(frame) = frames.recv().await {
            got.push(frame);
        }
        forwarding.await.unwrap();
        let text: String = got
            .iter()
            .filter(|f| f["type"] == "chat.delta")
            .map(|f| f["delta"].as_str().unwrap().to_string())
            .collect();
        let expected: String = (0..100).map(|n| format!("{n},")).collect::<String>() + "end";
        assert_eq!(text, expected);
        // Far fewer frames than deltas: they were joined while the queue was full.
        assert!(got.len() < 10, "{}", got.len());
        let kinds: Vec<&str> = got.iter().map(|f| f["type"].as_str().unwrap()).collect();
        let call = kinds.iter().position(|k| *k == "tool.call").unwrap();
        assert_eq!(kinds.last(), Some(&"chat.delta"));
        assert!(got[..call].iter().all(|f| f["type"] == "chat.delta"));
        assert_eq!(got[call]["messageId"], 7);
        assert!(!cancel.is_cancelled() && !too_slow.is_cancelled());
    }

    #[tokio::test]
    async fn a_queue_nobody_drains_gives_up_on_the_turn() {
        let (queue, _frames) = mpsc::channel(1);
        let outlet = Outlet {
            queue,
            too_slow: CancellationToken::new(),
            wait: Duration::from_millis(50),
        };
        let (events, received) = mpsc::channel(8);
        let cancel = CancellationToken::new();
        let forwarding = tokio::spawn(forward(
            received,
            outlet.clone(),
            "c".into(),
            1,
            cancel.clone(),
        ));
        let chunk = "y".repeat(64 << 10);
        while !cancel.is_cancelled() {
            if events
                .send(TurnEvent::TextDelta(chunk.clone()))
                .await
                .is_err()
            {
                break;
            }
        }
        assert!(outlet.too_slow.is_cancelled());
        drop(events);
        forwarding.await.unwrap();
    }

    #[test]
    fn client_messages_are_typed_and_strict() {
        let send: ChatClientMessage = serde_json::from_str(
            r#"{"type":"chat.send","chatId":"ab","content":"hi","visibility":"private"}"#,
        )
        .unwrap();
        assert_eq!(
            send,
            ChatClientMessage::Send {
                chat_id: "ab".into(),
                content: "hi".into(),
                agent: None,
                visibility: Some(Visibility::Private),
            }
        );
        for bad in [
            r#"{"type":"chat.send","chatId":"ab"}"#,
            r#"{"type":"chat.send","chatId":"ab","content":"x","extra":1}"#,
            r#"{"type":"chat.history","chatId":"ab","before":"x"}"#,
            r#"{"type":"chat.send","chatId":"ab","content":"x","visibility":"secret"}"#,
        ] {
            assert!(
                serde_json::from_str::<ChatClientMessage>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
