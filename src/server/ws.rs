//! The WebSocket endpoint `/ws`: a live channel to clients for approvals (and, later,
//! chat).
//!
//! The handshake is authenticated by a one-time ticket from `POST /auth/ws-ticket`
//! (`/ws?ticket=...`, for browsers, which cannot set headers on a WebSocket) or by an
//! `Authorization: Bearer` / `X-API-Key` header (other clients); a long-lived token is
//! never accepted in the URL. A browser's `Origin` must be the gateway's own or one in
//! `[security] cors_origins`, so another site cannot open a socket with the user's
//! cookies or cached credentials (cross-site WebSocket hijacking). Refused handshakes
//! are audited.
//!
//! Each message type, in either direction, needs the scope its REST route needs
//! ([`MESSAGE_SCOPES`]: seeing approvals `chat:read` like `GET /api/v1/approvals`,
//! answering one `chat:write` like `POST /api/v1/approvals/{id}`), checked in one place
//! ([`permits`]) for everything received and sent; and a caller sees only the approvals
//! it may answer (its own, or all for an admin), by the broker's one rule. A handshake
//! whose principal may not see approvals is refused.
//!
//! Messages are JSON objects whose `type` comes from a fixed list. Anything else
//! (malformed JSON, an unknown type, a binary or oversized message, more messages than
//! the per-connection rate allows) is answered with an `error` message and counts as a
//! strike; too many strikes close the connection with code 1008 (policy violation).
//! The server pings every [`Limits::ping_every`] and closes a connection it has heard
//! nothing from for [`Limits::idle_timeout`]. The credential is re-checked every
//! [`Limits::recheck_every`] and before each answer: when its session is logged out
//! or revoked, its token revoked or its account disabled, the connection's rights end
//! and it is closed.
//!
//! [`serve`] is written over a generic `Sink`/`Stream` of [`Outgoing`]/[`Incoming`]
//! frames and a [`Context`], so unit tests drive it with channels; [`upgrade`] adapts
//! axum's socket to it. This module never decides approvals (the broker does) and
//! never runs tools.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use governor::{Quota, RateLimiter};
use http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::audit::{AuditEvent, Outcome};
use crate::auth::scopes::Scope;
use crate::auth::{Principal, RevocationWatch, Via};
use crate::gateway::approval::{
    ApprovalError, ApprovalEvent, ApprovalRequest, Resolved, Responder,
};
use crate::pairing::PairingEvent;
use crate::server::auth::{ClientIp, MaybeCaller, refuse, too_many, with_retry_after};
use crate::server::error::{ApiError, ErrorCode};
use crate::server::rate_limit::RouteClass;
use crate::server::state::App;
use crate::server::ws_chat::{self, ChatClientMessage, Outlet};

/// The message types a client may send.
pub const CLIENT_TYPES: [&str; 6] = [
    "approval.respond",
    "approval.list",
    "chat.cancel",
    "chat.history",
    "chat.send",
    "ping",
];

/// The scope each message type needs, in either direction; `None`: any principal on an
/// open connection. The same scopes as the REST routes that do the same thing.
pub const MESSAGE_SCOPES: [(&str, Option<Scope>); 18] = [
    ("hello", None),
    ("ping", None),
    ("pong", None),
    ("error", None),
    ("approval.list", Some(Scope::ChatRead)),
    ("approval.request", Some(Scope::ChatRead)),
    ("approval.resolved", Some(Scope::ChatRead)),
    ("approval.respond", Some(Scope::ChatWrite)),
    // Sent only to the new device's owner.
    ("device.paired", Some(Scope::ChatRead)),
    // Chat: sending and cancelling are writes like POST /api/v1/chats/{id}/messages,
    // reading history and a turn's frames like GET.
    ("chat.send", Some(Scope::ChatWrite)),
    ("chat.cancel", Some(Scope::ChatWrite)),
    ("chat.history", Some(Scope::ChatRead)),
    ("chat.accepted", Some(Scope::ChatRead)),
    ("chat.delta", Some(Scope::ChatRead)),
    ("tool.call", Some(Scope::ChatRead)),
    ("tool.result", Some(Scope::ChatRead)),
    ("chat.done", Some(Scope::ChatRead)),
    ("chat.error", Some(Scope::ChatRead)),
];

/// Whether `principal` may send or receive a message of type `kind`; unknown types never.
pub fn permits(principal: &Principal, kind: &str) -> Result<(), Scope> {
    match MESSAGE_SCOPES.iter().find(|(k, _)| *k == kind) {
        Some((_, None)) => Ok(()),
        Some((_, Some(scope))) if principal.allows(*scope) => Ok(()),
        Some((_, Some(scope))) => Err(*scope),
        // Not in the table: refused, as a route without a declaration is.
        None => Err(Scope::Admin),
    }
}

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest message answered; larger ones get an `error` (the transport closes the
    /// connection on messages above [`TRANSPORT_MAX`]).
    pub max_message: usize,
    pub messages_per_second: NonZeroU32,
    pub burst: NonZeroU32,
    /// Errors a connection may cause before it is closed.
    pub max_strikes: u32,
    pub ping_every: Duration,
    pub idle_timeout: Duration,
    pub recheck_every: Duration,
    /// Frames of chat turns queued for this connection before the queue's policy
    /// applies (see `ws_chat`).
    pub chat_queue: usize,
    /// How long a write to the client, or a turn's frame waiting for room in the queue,
    /// may take before the connection is closed as too slow.
    pub send_timeout: Duration,
}

/// Messages above this size end the connection at the transport: the read fails and the
/// connection is dropped (no close code is sent; the client is usually still sending).
pub const TRANSPORT_MAX: usize = 1 << 20;

/// The socket's read and write buffers. The library's default (128 KiB each) is zero-
/// filled on the first read, so every idle connection held 128 KiB; ours hold this and
/// grow only for a message that needs it (up to [`TRANSPORT_MAX`]).
const SOCKET_BUFFER: usize = 4 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 64 << 10,
            messages_per_second: NonZeroU32::MIN.saturating_add(9),
            burst: NonZeroU32::MIN.saturating_add(19),
            max_strikes: 10,
            ping_every: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            recheck_every: Duration::from_secs(2),
            chat_queue: 64,
            send_timeout: Duration::from_secs(10),
        }
    }
}

/// A frame from the client, as the handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    /// A binary message, by size; never accepted.
    Binary(usize),
    Ping(Vec<u8>),
    Pong,
    Close,
}

/// A frame to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Text(String),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close { code: u16, reason: String },
}

/// Close codes (RFC 6455 section 7.4.1).
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY: u16 = 1008;
}

/// What a connection needs from the gateway.
pub trait Context: Send + Sync + 'static {
    fn subscribe(&self) -> broadcast::Receiver<ApprovalEvent>;
    /// New paired devices, announced to their owners.
    fn subscribe_pairing(&self) -> broadcast::Receiver<PairingEvent>;
    fn pending_for(&self, responder: &Responder) -> Vec<Arc<ApprovalRequest>>;
    fn respond(
        &self,
        responder: &Responder,
        id: &str,
        allow: bool,
        remember: bool,
        input_hash: Option<&str>,
    ) -> Result<Arc<Resolved>, ApprovalError>;
    /// Whether the connection's credential still holds.
    fn still_stands(&self, principal: &Principal) -> bool;
    /// Wakes when some credential was revoked, so the connection re-checks its own at
    /// once rather than at its next [`Limits::recheck_every`].
    fn revocations(&self) -> RevocationWatch {
        RevocationWatch::never()
    }
    fn audit(&self, event: AuditEvent);
    /// Handles a `chat.*` message; what it says goes to `outlet`, and its turn ends
    /// when `cancel` (the connection's) does.
    fn chat(
        self: Arc<Self>,
        principal: &Principal,
        message: ChatClientMessage,
        outlet: Outlet,
        cancel: &CancellationToken,
    ) {
        let _ = (principal, cancel);
        let chat_id = match &message {
            ChatClientMessage::Send { chat_id, .. }
            | ChatClientMessage::Cancel { chat_id }
            | ChatClientMessage::History { chat_id, .. } => chat_id.clone(),
        };
        let _ = outlet.queue.try_send(json!({
            "type": "chat.error",
            "chatId": chat_id.chars().take(64).collect::<String>(),
            "code": "unavailable",
            "message": "chat is not served on this socket",
        }));
    }
}

impl Context for App {
    fn subscribe(&self) -> broadcast::Receiver<ApprovalEvent> {
        self.approvals.subscribe()
    }

    fn subscribe_pairing(&self) -> broadcast::Receiver<PairingEvent> {
        self.pairing.subscribe()
    }

    fn pending_for(&self, responder: &Responder) -> Vec<Arc<ApprovalRequest>> {
        self.approvals.pending_for(responder)
    }

    fn respond(
        &self,
        responder: &Responder,
        id: &str,
        allow: bool,
        remember: bool,
        input_hash: Option<&str>,
    ) -> Result<Arc<Resolved>, ApprovalError> {
        self.approvals
            .respond(self.audit(), id, responder, allow, remember, input_hash)
    }

    fn still_stands(&self, principal: &Principal) -> bool {
        self.services.auth.still_stands(principal)
    }

    fn revocations(&self) -> RevocationWatch {
        self.services.auth.revocations()
    }

    fn audit(&self, event: AuditEvent) {
        App::audit(self).record_or_log(event);
    }

    fn chat(
        self: Arc<Self>,
        principal: &Principal,
        message: ChatClientMessage,
        outlet: Outlet,
        cancel: &CancellationToken,
    ) {
        ws_chat::handle(self, principal, message, outlet, cancel);
    }
}

/// The responder a principal acts as.
pub fn responder_of(principal: &Principal) -> Responder {
    Responder {
        actor: principal.actor(),
        username: principal.username.clone(),
        admin: principal.allows(Scope::Admin),
    }
}

/// An approval request as clients receive it.
pub fn request_message(request: &ApprovalRequest) -> Value {
    json!({
        "type": "approval.request",
        "requestId": request.id,
        "toolName": request.tool,
        "toolInput": request.input,
        "inputHash": request.input_hash,
        "reason": request.reason,
        "rule": request.rule,
        "requester": { "user": request.requester.user, "agent": request.requester.agent },
        "rememberOffered": request.remember_offered,
        "createdAt": request.created,
        "expiresAt": request.expires,
    })
}

/// A resolution as clients receive it.
pub fn resolved_message(resolved: &Resolved) -> Value {
    json!({
        "type": "approval.resolved",
        "requestId": resolved.request.id,
        "allowed": resolved.allowed(),
        "ending": resolved.ending,
        "decidedBy": resolved.decided_by,
        "remember": resolved.remember,
        "resolvedAt": resolved.resolved,
    })
}

fn error_message(code: ErrorCode, message: &str, request_id: Option<&str>) -> Value {
    let mut value = json!({ "type": "error", "code": code, "message": message });
    if let (Some(id), Some(object)) = (request_id, value.as_object_mut()) {
        object.insert("requestId".into(), Value::String(id.to_string()));
    }
    value
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
enum ClientMessage {
    #[serde(rename = "approval.respond", rename_all = "camelCase")]
    Respond {
        request_id: String,
        allow: bool,
        #[serde(default)]
        remember: bool,
        #[serde(default)]
        input_hash: Option<String>,
    },
    #[serde(rename = "approval.list")]
    List {},
    #[serde(rename = "ping")]
    Ping {},
}

/// Why a connection ended, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    ClientClosed,
    Idle,
    Revoked,
    Abuse,
    ServerGone,
    /// The client did not read what it was sent in time.
    TooSlow,
}

/// A refusal to answer with: an `error` message, and whether it is a strike.
struct Refusal {
    code: ErrorCode,
    message: String,
    request_id: Option<String>,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
            request_id: None,
        }
    }
}

struct Connection<C: Context> {
    ctx: Arc<C>,
    principal: Principal,
    responder: Responder,
    limits: Limits,
    strikes: u32,
    rate: governor::DefaultDirectRateLimiter,
}

impl<C: Context> Connection<C> {
    /// Handles one text message; `Ok` carries the messages to send back, and a chat
    /// message for the caller to hand on.
    fn handle_text(
        &mut self,
        text: &str,
    ) -> Result<(Vec<Value>, Option<ChatClientMessage>), Refusal> {
        if self.rate.check().is_err() {
            return Err(Refusal::new(
                ErrorCode::RateLimited,
                format!(
                    "more than {} messages per second; slow down",
                    self.limits.messages_per_second
                ),
            ));
        }
        if text.len() > self.limits.max_message {
            return Err(Refusal::new(
                ErrorCode::MessageTooLarge,
                format!(
                    "the message is {} bytes; the limit is {}",
                    text.len(),
                    self.limits.max_message
                ),
            ));
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Refusal::new(ErrorCode::Malformed, format!("not a JSON message: {e}")))?;
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                Refusal::new(
                    ErrorCode::Malformed,
                    "a message is a JSON object with a \"type\"",
                )
            })?;
        if !CLIENT_TYPES.contains(&kind.as_str()) {
            return Err(Refusal::new(
                ErrorCode::UnknownType,
                format!(
                    "unknown message type {:?}: the types are {}",
                    kind.chars().take(64).collect::<String>(),
                    CLIENT_TYPES.join(", ")
                ),
            ));
        }
        if let Err(scope) = permits(&self.principal, &kind) {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                format!("{kind} needs the {scope} scope"),
            ));
        }
        if kind.starts_with("chat.") {
            let message: ChatClientMessage = serde_json::from_value(value)
                .map_err(|e| Refusal::new(ErrorCode::InvalidMessage, format!("{kind}: {e}")))?;
            if matches!(message, ChatClientMessage::Send { .. })
                && !self.ctx.still_stands(&self.principal)
            {
                return Err(Refusal::new(
                    ErrorCode::SessionRevoked,
                    "the session has ended",
                ));
            }
            return Ok((Vec::new(), Some(message)));
        }
        let message: ClientMessage = serde_json::from_value(value)
            .map_err(|e| Refusal::new(ErrorCode::InvalidMessage, format!("{kind}: {e}")))?;
        let replies = match message {
            ClientMessage::Ping {} => Ok(vec![json!({ "type": "pong" })]),
            ClientMessage::List {} => Ok(vec![self.list()]),
            ClientMessage::Respond {
                request_id,
                allow,
                remember,
                input_hash,
            } => self
                .respond(&request_id, allow, remember, input_hash.as_deref())
                .map_err(|mut refusal| {
                    refusal.request_id = Some(request_id.chars().take(64).collect());
                    refusal
                }),
        };
        replies.map(|replies| (replies, None))
    }

    fn list(&self) -> Value {
        let requests: Vec<Value> = self
            .ctx
            .pending_for(&self.responder)
            .iter()
            .map(|r| request_message(r))
            .collect();
        json!({ "type": "approval.list", "requests": requests })
    }

    fn respond(
        &self,
        id: &str,
        allow: bool,
        remember: bool,
        input_hash: Option<&str>,
    ) -> Result<Vec<Value>, Refusal> {
        if !self.ctx.still_stands(&self.principal) {
            return Err(Refusal::new(
                ErrorCode::SessionRevoked,
                "the session has ended",
            ));
        }
        match self
            .ctx
            .respond(&self.responder, id, allow, remember, input_hash)
        {
            // The resolution reaches this client through the broadcast, like everyone.
            Ok(_) => Ok(Vec::new()),
            Err(err) => {
                let api: ApiError = err.into();
                Err(Refusal::new(api.code, api.message))
            }
        }
    }

    /// Whose approvals this connection sees: those it may answer, by the broker's rule.
    fn may_see(&self, event: &ApprovalEvent) -> bool {
        match event {
            ApprovalEvent::Requested(request) => self.responder.may_answer(request),
            ApprovalEvent::Resolved(resolved) => self.responder.may_answer(&resolved.request),
        }
    }

    /// The frame for an outgoing message, if this principal may receive its type.
    fn outgoing(&self, value: &Value) -> Option<Outgoing> {
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        permits(&self.principal, kind).ok().map(|()| text(value))
    }
}

fn text(value: &Value) -> Outgoing {
    Outgoing::Text(value.to_string())
}

/// Serves one connection until it ends.
pub async fn serve<C, S, R>(
    ctx: Arc<C>,
    principal: Principal,
    limits: Limits,
    mut sink: S,
    mut stream: R,
) -> Ended
where
    C: Context,
    S: Sink<Outgoing> + Unpin,
    R: Stream<Item = Incoming> + Unpin,
{
    let mut events = ctx.subscribe();
    let mut pairing = ctx.subscribe_pairing();
    let mut pairing_open = true;
    let mut revocations = ctx.revocations();
    let mut conn = Connection {
        responder: responder_of(&principal),
        rate: RateLimiter::direct(
            Quota::per_second(limits.messages_per_second).allow_burst(limits.burst),
        ),
        ctx,
        principal,
        limits: limits.clone(),
        strikes: 0,
    };
    let types: Vec<&str> = CLIENT_TYPES
        .into_iter()
        .filter(|kind| permits(&conn.principal, kind).is_ok())
        .collect();
    let hello = json!({
        "type": "hello",
        "user": conn.principal.username,
        "admin": conn.responder.admin,
        "types": types,
    });
    let mut greeting = vec![text(&hello)];
    if permits(&conn.principal, "approval.request").is_ok() {
        greeting.extend(
            conn.ctx
                .pending_for(&conn.responder)
                .iter()
                .filter_map(|r| conn.outgoing(&request_message(r))),
        );
    }
    match send_all(&mut sink, greeting, limits.send_timeout).await {
        Sent::All => {}
        Sent::Closed => return Ended::ClientClosed,
        Sent::TimedOut => return Ended::TooSlow,
    }
    // Chat turns of this connection end with it, however it ends.
    let turns = CancellationToken::new();
    let _turns_end = turns.clone().drop_guard();
    let (chat_queue, mut chat_frames) = tokio::sync::mpsc::channel(limits.chat_queue.max(1));
    let outlet = Outlet {
        queue: chat_queue,
        too_slow: CancellationToken::new(),
        wait: limits.send_timeout,
    };
    let start = Instant::now();
    let mut ping = tokio::time::interval_at(start + limits.ping_every, limits.ping_every);
    let mut recheck = tokio::time::interval_at(start + limits.recheck_every, limits.recheck_every);
    let mut last_heard = start;
    let ended = loop {
        let mut out = Vec::new();
        tokio::select! {
            frame = stream.next() => {
                let Some(frame) = frame else { break Ended::ClientClosed };
                last_heard = Instant::now();
                let refusal = match frame {
                    Incoming::Close => break Ended::ClientClosed,
                    Incoming::Pong => None,
                    Incoming::Ping(payload) => {
                        out.push(Outgoing::Pong(payload));
                        None
                    }
                    Incoming::Binary(size) => Some(Refusal::new(
                        ErrorCode::BinaryNotAccepted,
                        format!("binary messages ({size} bytes) are not accepted; send JSON text"),
                    )),
                    Incoming::Text(body) => match conn.handle_text(&body) {
                        Ok((replies, chat)) => {
                            out.extend(replies.iter().filter_map(|r| conn.outgoing(r)));
                            if let Some(message) = chat {
                                C::chat(conn.ctx.clone(), &conn.principal, message, outlet.clone(), &turns);
                            }
                            None
                        }
                        Err(refusal) => Some(refusal),
                    },
                };
                if let Some(refusal) = refusal {
                    conn.strikes += 1;
                    if refusal.code == ErrorCode::SessionRevoked {
                        out.push(text(&error_message(refusal.code, &refusal.message, None)));
                        out.push(Outgoing::Close { code: close::POLICY, reason: "session ended".into() });
                        send_all(&mut sink, out, limits.send_timeout).await;
                        break Ended::Revoked;
                    }
                    out.push(text(&error_message(
                        refusal.code,
                        &refusal.message,
                        refusal.request_id.as_deref(),
                    )));
                    if conn.strikes >= conn.limits.max_strikes {
                        out.push(Outgoing::Close {
                            code: close::POLICY,
                            reason: "too many invalid messages".into(),
                        });
                        send_all(&mut sink, out, limits.send_timeout).await;
                        break Ended::Abuse;
                    }
                }
            }
            Some(frame) = chat_frames.recv() => out.extend(conn.outgoing(&frame)),
            _ = outlet.too_slow.cancelled() => {
                out.push(Outgoing::Close { code: close::POLICY, reason: "too slow".into() });
                send_all(&mut sink, out, limits.send_timeout).await;
                break Ended::TooSlow;
            }
            event = events.recv() => match event {
                Ok(event) if conn.may_see(&event) => out.extend(conn.outgoing(&match &event {
                    ApprovalEvent::Requested(request) => request_message(request),
                    ApprovalEvent::Resolved(resolved) => resolved_message(resolved),
                })),
                Ok(_) => {}
                // Fell behind a burst: send the current state instead of the missed events.
                Err(broadcast::error::RecvError::Lagged(_)) => out.extend(conn.outgoing(&conn.list())),
                Err(broadcast::error::RecvError::Closed) => break Ended::ServerGone,
            },
            event = pairing.recv(), if pairing_open => match event {
                Ok(PairingEvent::DevicePaired { owner, device_id, name })
                    if owner == conn.principal.username =>
                {
                    out.extend(conn.outgoing(&json!({
                        "type": "device.paired",
                        "deviceId": device_id,
                        "name": name,
                    })));
                }
                // A revoked device's connection ends now, not at the next recheck.
                Ok(PairingEvent::DeviceRevoked { .. }) if !conn.ctx.still_stands(&conn.principal) => {
                    out.push(text(&error_message(ErrorCode::SessionRevoked, "the session has ended", None)));
                    out.push(Outgoing::Close { code: close::POLICY, reason: "session ended".into() });
                    send_all(&mut sink, out, limits.send_timeout).await;
                    break Ended::Revoked;
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => pairing_open = false,
            },
            _ = ping.tick() => {
                if last_heard.elapsed() >= conn.limits.idle_timeout {
                    out.push(Outgoing::Close { code: close::GOING_AWAY, reason: "idle timeout".into() });
                    send_all(&mut sink, out, limits.send_timeout).await;
                    break Ended::Idle;
                }
                out.push(Outgoing::Ping(b"aisopod".to_vec()));
            }
            _ = recheck.tick() => {
                if !conn.ctx.still_stands(&conn.principal) {
                    out.push(text(&error_message(ErrorCode::SessionRevoked, "the session has ended", None)));
                    out.push(Outgoing::Close { code: close::POLICY, reason: "session ended".into() });
                    send_all(&mut sink, out, limits.send_timeout).await;
                    break Ended::Revoked;
                }
            }
            // A token revoked or a logout anywhere: this credential's connections end
            // now, and their turns with them.
            () = revocations.changed() => {
                if !conn.ctx.still_stands(&conn.principal) {
                    out.push(text(&error_message(ErrorCode::SessionRevoked, "the session has ended", None)));
                    out.push(Outgoing::Close { code: close::POLICY, reason: "session ended".into() });
                    send_all(&mut sink, out, limits.send_timeout).await;
                    break Ended::Revoked;
                }
            }
        }
        match send_all(&mut sink, out, limits.send_timeout).await {
            Sent::All => {}
            Sent::Closed => break Ended::ClientClosed,
            Sent::TimedOut => break Ended::TooSlow,
        }
    };
    turns.cancel();
    if ended != Ended::TooSlow {
        let _ = tokio::time::timeout(limits.send_timeout, sink.close()).await;
    }
    ended
}

/// How a batch of writes went.
enum Sent {
    All,
    Closed,
    /// The client did not take the frames within the send timeout.
    TimedOut,
}

async fn send_all<S: Sink<Outgoing> + Unpin>(
    sink: &mut S,
    frames: Vec<Outgoing>,
    within: Duration,
) -> Sent {
    let writes = async {
        for frame in frames {
            if sink.send(frame).await.is_err() {
                return Sent::Closed;
            }
        }
        Sent::All
    };
    tokio::time::timeout(within, writes)
        .await
        .unwrap_or(Sent::TimedOut)
}

/// Whether a browser's `Origin` may open a socket: the gateway's own origin (the
/// request's `Host` over this scheme, or `[server] public_url`) or a configured CORS
/// origin. Clients that send no `Origin` are not browsers and are not at risk.
pub fn origin_allowed(headers: &HeaderMap, app: &App) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let config = app.config();
    let origin = origin.trim_end_matches('/');
    if config.security.cors_origins.iter().any(|o| o == origin) {
        return true;
    }
    if config.server.public_url.as_deref() == Some(origin) {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    !host.is_empty() && origin == format!("{}://{host}", config.scheme())
}

/// The operations of these routes, for the OpenAPI document (`server::openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(upgrade))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// `GET /ws`: checks origin and credential, then upgrades.
#[utoipa::path(
    get,
    path = "/ws",
    tag = "ws",
    summary = "The WebSocket: a ticket (`?ticket=`) or a bearer header",
    params(("ticket" = Option<String>, Query, description = "A one-time ticket from /auth/ws-ticket")),
    responses((status = 101, description = "Switched to the WebSocket protocol"), (status = 400, description = "Not a WebSocket upgrade", body = Object))
)]
pub async fn upgrade(
    State(app): State<Arc<App>>,
    ClientIp(ip): ClientIp,
    caller: MaybeCaller,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let caller = caller.into_principal();
    let path = "/ws";
    // Counted before any work (a ticket lookup, an audit record): a handshake without
    // a bearer credential is limited per address like a wrong credential elsewhere, one
    // with a bearer per address and credential like any authenticated request.
    let credential = caller.as_ref().map(|p| match &p.via {
        Via::ApiToken { id } => format!("token:{id}"),
        Via::PairedDevice { id } => format!("device:{id}"),
        _ => format!("user:{}", p.username),
    });
    if let Err(wait) = app.limits.check(RouteClass::Api, ip, credential.as_deref()) {
        let response = refuse(&app, ip, path, too_many(wait), caller.as_ref());
        return with_retry_after(response, wait);
    }
    if !origin_allowed(&headers, &app) {
        let error = ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::OriginNotAllowed,
            "this origin may not open a WebSocket to the gateway ([security] cors_origins)",
        );
        return refuse_handshake(&app, ip, path, error, caller.as_ref());
    }
    let ticket = query.get("ticket").cloned();
    let principal = match (ticket, caller) {
        (Some(ticket), _) => {
            let worker = app.clone();
            let redeemed =
                tokio::task::spawn_blocking(move || worker.services.auth.redeem_ws_ticket(&ticket))
                    .await;
            match redeemed {
                Ok(Ok(principal)) => principal,
                _ => {
                    let error = ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        ErrorCode::InvalidTicket,
                        "the WebSocket ticket is invalid, expired or already used: get a new one from POST /auth/ws-ticket",
                    );
                    return refuse_handshake(&app, ip, path, error, None);
                }
            }
        }
        (None, Some(principal)) => principal,
        (None, None) => {
            let error = ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "a WebSocket needs a ticket (?ticket= from POST /auth/ws-ticket) or an Authorization: Bearer header",
            );
            return refuse_handshake(&app, ip, path, error, None);
        }
    };
    if let Err(scope) = permits(&principal, "approval.request") {
        let error = ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!("the WebSocket carries approvals, which need the {scope} scope"),
        );
        return refuse_handshake(&app, ip, path, error, Some(&principal));
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::NotAWebsocket,
                format!("GET /ws must be a WebSocket upgrade: {rejection}"),
            )
            .into_response();
        }
    };
    app.audit().record_or_log(
        AuditEvent::new("ws.connect")
            .actor(principal.actor())
            .source_ip(Some(ip))
            .outcome(Outcome::Success),
    );
    upgrade
        .max_message_size(TRANSPORT_MAX)
        .max_frame_size(TRANSPORT_MAX)
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(SOCKET_BUFFER)
        .on_upgrade(move |socket| run_socket(app, principal, socket))
}

/// Refusals are audited like every other refusal: one summary record per address and
/// minute (`http.refused` with target `/ws`), so a flood costs no disk writes.
fn refuse_handshake(
    app: &App,
    ip: std::net::IpAddr,
    path: &str,
    error: ApiError,
    actor: Option<&Principal>,
) -> Response {
    refuse(app, ip, path, error, actor)
}

async fn run_socket(app: Arc<App>, principal: Principal, socket: WebSocket) {
    let (sink, stream) = socket.split();
    let sink = sink.with(|frame: Outgoing| async move {
        Ok::<_, axum::Error>(match frame {
            Outgoing::Text(body) => Message::Text(body.into()),
            Outgoing::Ping(payload) => Message::Ping(payload.into()),
            Outgoing::Pong(payload) => Message::Pong(payload.into()),
            Outgoing::Close { code, reason } => Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })),
        })
    });
    let stream = stream.map(|frame| match frame {
        Ok(Message::Text(body)) => Incoming::Text(body.to_string()),
        Ok(Message::Binary(bytes)) => Incoming::Binary(bytes.len()),
        Ok(Message::Ping(payload)) => Incoming::Ping(payload.to_vec()),
        Ok(Message::Pong(_)) => Incoming::Pong,
        Ok(Message::Close(_)) | Err(_) => Incoming::Close,
    });
    let actor = principal.actor();
    let ended = serve(
        app,
        principal,
        Limits::default(),
        Box::pin(sink),
        Box::pin(stream),
    )
    .await;
    tracing::debug!(%actor, ?ended, "websocket closed");
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use futures_channel::mpsc;

    use super::*;
    use crate::audit::Audit;
    use crate::auth::Via;
    use crate::auth::scopes::Scopes;
    use crate::gateway::agent_loop::TurnEvent;
    use crate::gateway::approval::{Broker, CanonicalInput, NewRequest, Requester};

    struct TestContext {
        _dir: tempfile::TempDir,
        broker: Broker,
        audit: Audit,
        stands: AtomicBool,
        revoked: tokio::sync::watch::Sender<u64>,
        /// Set when a scripted turn (see `chat`) has stopped.
        turn_stopped: Arc<AtomicBool>,
    }

    impl Context for TestContext {
        fn subscribe(&self) -> broadcast::Receiver<ApprovalEvent> {
            self.broker.subscribe()
        }
        fn subscribe_pairing(&self) -> broadcast::Receiver<PairingEvent> {
            broadcast::channel(1).1
        }
        fn pending_for(&self, responder: &Responder) -> Vec<Arc<ApprovalRequest>> {
            self.broker.pending_for(responder)
        }
        fn respond(
            &self,
            responder: &Responder,
            id: &str,
            allow: bool,
            remember: bool,
            input_hash: Option<&str>,
        ) -> Result<Arc<Resolved>, ApprovalError> {
            self.broker
                .respond(&self.audit, id, responder, allow, remember, input_hash)
        }
        fn still_stands(&self, _: &Principal) -> bool {
            self.stands.load(Ordering::SeqCst)
        }
        fn revocations(&self) -> RevocationWatch {
            RevocationWatch::new(vec![self.revoked.subscribe()])
        }
        fn audit(&self, event: AuditEvent) {
            self.audit.record_or_log(event);
        }
        /// A turn that streams 1 KiB deltas until it is cancelled, through the real
        /// queue policy.
        fn chat(
            self: Arc<Self>,
            _: &Principal,
            _: ChatClientMessage,
            outlet: Outlet,
            cancel: &CancellationToken,
        ) {
            let cancel = cancel.child_token();
            let (events, received) = tokio::sync::mpsc::channel(8);
            tokio::spawn(ws_chat::forward(
                received,
                outlet,
                "c".into(),
                2,
                cancel.clone(),
            ));
            let stopped = self.turn_stopped.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        sent = events.send(TurnEvent::TextDelta("x".repeat(1024))) => {
                            if sent.is_err() { break }
                        }
                    }
                }
                stopped.store(true, Ordering::SeqCst);
            });
        }
    }

    fn context() -> Arc<TestContext> {
        let f = crate::auth::testing::fixture("");
        let audit = Audit::open(&f.store, &f.secrets, f.shared.clone()).unwrap();
        Arc::new(TestContext {
            broker: Broker::new(Duration::from_secs(30), f.shared.clone()),
            audit,
            stands: AtomicBool::new(true),
            revoked: tokio::sync::watch::channel(0).0,
            turn_stopped: Arc::new(AtomicBool::new(false)),
            _dir: f._dir,
        })
    }

    fn user(name: &str, scopes: &str) -> Principal {
        Principal {
            username: name.into(),
            scopes: Scopes::parse_list(scopes).unwrap(),
            via: Via::StaticToken,
        }
    }

    fn new_request(user: &str) -> NewRequest {
        NewRequest {
            tool: "shell".into(),
            input: CanonicalInput {
                summary: "make deploy".into(),
                code_sha256: None,
                cwd: "/work".into(),
                files: vec![],
            },
            requester: Requester {
                user: user.into(),
                agent: "default".into(),
                session: None,
            },
            reason: "make is not on the allowlist".into(),
            rule: "policy.allowlist".into(),
            remember_offered: true,
        }
    }

    struct Client {
        to_server: mpsc::UnboundedSender<Incoming>,
        from_server: mpsc::UnboundedReceiver<Outgoing>,
        task: tokio::task::JoinHandle<Ended>,
    }

    impl Client {
        fn connect(ctx: &Arc<TestContext>, principal: Principal, limits: Limits) -> Client {
            let (to_server, incoming) = mpsc::unbounded();
            let (outgoing, from_server) = mpsc::unbounded();
            let task = tokio::spawn(serve(ctx.clone(), principal, limits, outgoing, incoming));
            Client {
                to_server,
                from_server,
                task,
            }
        }

        fn send(&self, body: &str) {
            self.to_server
                .unbounded_send(Incoming::Text(body.into()))
                .unwrap();
        }

        async fn next(&mut self) -> Outgoing {
            tokio::time::timeout(Duration::from_secs(120), self.from_server.next())
                .await
                .expect("a frame within 120 s (paused time runs ahead)")
                .expect("the connection is open")
        }

        /// The next JSON message, skipping pings.
        async fn message(&mut self) -> Value {
            loop {
                match self.next().await {
                    Outgoing::Text(body) => return serde_json::from_str(&body).unwrap(),
                    Outgoing::Ping(_) => continue,
                    other => panic!("expected a message, got {other:?}"),
                }
            }
        }
    }

    #[tokio::test]
    async fn a_client_sees_a_request_and_its_answer_resolves_it() {
        let ctx = context();
        let mut alice = Client::connect(
            &ctx,
            user("alice", "chat:read,chat:write"),
            Limits::default(),
        );
        assert_eq!(alice.message().await["type"], "hello");
        let asker = {
            let ctx = ctx.clone();
            tokio::spawn(async move { ctx.broker.ask(&ctx.audit, new_request("alice")).await })
        };
        let request = alice.message().await;
        assert_eq!(request["type"], "approval.request");
        assert_eq!(request["toolName"], "shell");
        assert_eq!(request["toolInput"]["summary"], "make deploy");
        let id = request["requestId"].as_str().unwrap().to_string();
        alice
            .send(&json!({"type": "approval.respond", "requestId": id, "allow": true}).to_string());
        let resolved = alice.message().await;
        assert_eq!(resolved["type"], "approval.resolved");
        assert_eq!(resolved["allowed"], true);
        assert_eq!(resolved["decidedBy"], "static-token");
        assert!(asker.await.unwrap().allowed());
        // A second answer is refused, politely.
        alice.send(
            &json!({"type": "approval.respond", "requestId": id, "allow": false}).to_string(),
        );
        let refused = alice.message().await;
        assert_eq!(refused["code"], "already_resolved");
        assert_eq!(refused["requestId"], id.as_str());
    }

    #[tokio::test]
    async fn pending_requests_arrive_on_connect_and_other_users_see_none() {
        let ctx = context();
        let asker = {
            let ctx = ctx.clone();
            tokio::spawn(async move { ctx.broker.ask(&ctx.audit, new_request("alice")).await })
        };
        while ctx
            .broker
            .pending_for(&responder_of(&user("root", "admin")))
            .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut mallory = Client::connect(
            &ctx,
            user("mallory", "chat:read,chat:write"),
            Limits::default(),
        );
        let mut admin = Client::connect(&ctx, user("root", "admin"), Limits::default());
        assert_eq!(mallory.message().await["type"], "hello");
        assert_eq!(admin.message().await["type"], "hello");
        let pending = admin.message().await;
        assert_eq!(pending["type"], "approval.request");
        let id = pending["requestId"].as_str().unwrap().to_string();
        mallory.send(r#"{"type":"approval.list"}"#);
        assert_eq!(mallory.message().await["requests"], json!([]));
        mallory
            .send(&json!({"type": "approval.respond", "requestId": id, "allow": true}).to_string());
        assert_eq!(mallory.message().await["code"], "not_found");
        admin.send(
            &json!({"type": "approval.respond", "requestId": id, "allow": false}).to_string(),
        );
        assert_eq!(admin.message().await["allowed"], false);
        assert!(!asker.await.unwrap().allowed());
        // Mallory never saw the request nor its resolution.
        mallory.send(r#"{"type":"ping"}"#);
        assert_eq!(mallory.message().await["type"], "pong");
    }

    #[tokio::test]
    async fn each_message_type_needs_the_scope_of_its_rest_route() {
        let ctx = context();
        // A config:read principal gets nothing of its own approval request.
        let mut config_only =
            Client::connect(&ctx, user("alice", "config:read"), Limits::default());
        let mut reader = Client::connect(&ctx, user("alice", "chat:read"), Limits::default());
        let hello = config_only.message().await;
        assert_eq!(hello["types"], json!(["ping"]));
        assert_eq!(
            reader.message().await["types"],
            json!(["approval.list", "chat.history", "ping"])
        );
        let asker = {
            let ctx = ctx.clone();
            tokio::spawn(async move { ctx.broker.ask(&ctx.audit, new_request("alice")).await })
        };
        let request = reader.message().await;
        assert_eq!(request["type"], "approval.request");
        let id = request["requestId"].as_str().unwrap().to_string();
        config_only.send(r#"{"type":"approval.list"}"#);
        let refused = config_only.message().await;
        assert_eq!(refused["code"], "forbidden", "{refused}");
        assert!(refused["message"].as_str().unwrap().contains("chat:read"));
        // Seeing is not answering: chat:read may not respond.
        reader
            .send(&json!({"type": "approval.respond", "requestId": id, "allow": true}).to_string());
        let refused = reader.message().await;
        assert_eq!(refused["code"], "forbidden");
        assert!(refused["message"].as_str().unwrap().contains("chat:write"));
        // The owner's writer answers; the reader sees the resolution, the other never
        // saw the request nor sees its end.
        let mut writer = Client::connect(
            &ctx,
            user("alice", "chat:write,chat:read"),
            Limits::default(),
        );
        assert_eq!(writer.message().await["type"], "hello");
        assert_eq!(writer.message().await["type"], "approval.request");
        writer
            .send(&json!({"type": "approval.respond", "requestId": id, "allow": true}).to_string());
        assert_eq!(writer.message().await["type"], "approval.resolved");
        assert_eq!(reader.message().await["type"], "approval.resolved");
        assert!(asker.await.unwrap().allowed());
        config_only.send(r#"{"type":"ping"}"#);
        assert_eq!(config_only.message().await["type"], "pong");
        // Every type the server sends or accepts is in the table.
        for kind in CLIENT_TYPES.iter().chain(&[
            "hello",
            "pong",
            "error",
            "approval.request",
            "approval.resolved",
            "chat.accepted",
            "chat.delta",
            "tool.call",
            "tool.result",
            "chat.done",
            "chat.error",
        ]) {
            assert!(MESSAGE_SCOPES.iter().any(|(k, _)| k == kind), "{kind}");
        }
        assert!(permits(&user("root", "admin"), "approval.respond").is_ok());
        assert!(permits(&user("root", "admin"), "shell.exec").is_err());
    }

    #[tokio::test]
    async fn answering_needs_chat_write() {
        let ctx = context();
        let mut reader = Client::connect(&ctx, user("alice", "chat:read"), Limits::default());
        assert_eq!(reader.message().await["type"], "hello");
        reader.send(r#"{"type":"approval.respond","requestId":"apr_x","allow":true}"#);
        assert_eq!(reader.message().await["code"], "forbidden");
    }

    #[tokio::test]
    async fn garbage_is_answered_and_repeated_abuse_closes_with_a_policy_code() {
        let ctx = context();
        let limits = Limits {
            max_message: 1024,
            max_strikes: 6,
            ..Limits::default()
        };
        let mut client = Client::connect(&ctx, user("alice", "chat:write"), limits);
        assert_eq!(client.message().await["type"], "hello");
        let cases = [
            ("{not json", "malformed"),
            ("[1,2]", "malformed"),
            (
                r#"{"type":"shell.exec","command":"rm -rf /"}"#,
                "unknown_type",
            ),
            (
                r#"{"type":"approval.respond","requestId":7,"allow":"yes"}"#,
                "invalid_message",
            ),
            (r#"{"type":"ping","extra":1}"#, "invalid_message"),
        ];
        for (body, code) in cases {
            client.send(body);
            let answer = client.message().await;
            assert_eq!(answer["type"], "error", "{body}");
            assert_eq!(answer["code"], code, "{body}");
        }
        client
            .to_server
            .unbounded_send(Incoming::Text("x".repeat(2048)))
            .unwrap();
        assert_eq!(client.message().await["code"], "message_too_large");
        assert_eq!(
            client.next().await,
            Outgoing::Close {
                code: close::POLICY,
                reason: "too many invalid messages".into()
            }
        );
        assert_eq!(client.task.await.unwrap(), Ended::Abuse);
    }

    #[tokio::test]
    async fn binary_messages_and_floods_are_refused() {
        let ctx = context();
        let mut client = Client::connect(&ctx, user("alice", "chat:write"), Limits::default());
        assert_eq!(client.message().await["type"], "hello");
        client
            .to_server
            .unbounded_send(Incoming::Binary(10))
            .unwrap();
        assert_eq!(client.message().await["code"], "binary_not_accepted");
        for _ in 0..40 {
            client.send(r#"{"type":"ping"}"#);
        }
        let mut codes = Vec::new();
        loop {
            match client.next().await {
                Outgoing::Text(body) => {
                    let value: Value = serde_json::from_str(&body).unwrap();
                    codes.push(
                        value
                            .get("code")
                            .and_then(Value::as_str)
                            .unwrap_or("pong")
                            .to_string(),
                    );
                }
                Outgoing::Close { code, .. } => {
                    assert_eq!(code, close::POLICY);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        // The burst is served; what exceeds it is refused until the strikes run out.
        let pongs = codes.iter().filter(|c| *c == "pong").count();
        let limited = codes.iter().filter(|c| *c == "rate_limited").count();
        assert!((15..=25).contains(&pongs), "{codes:?}");
        assert_eq!(limited, 9, "{codes:?}");
        assert_eq!(client.task.await.unwrap(), Ended::Abuse);
    }

    #[tokio::test]
    async fn a_revocation_ends_the_connection_at_once_not_at_the_next_recheck() {
        let ctx = context();
        let limits = Limits {
            recheck_every: Duration::from_secs(3600),
            ..Limits::default()
        };
        let mut client = Client::connect(&ctx, user("alice", "chat:write"), limits);
        assert_eq!(client.message().await["type"], "hello");
        // Someone else's revocation: this connection re-checks and stays.
        ctx.revoked.send_modify(|n| *n += 1);
        client.send(r#"{"type":"ping"}"#);
        assert_eq!(client.message().await["type"], "pong");
        ctx.stands.store(false, Ordering::SeqCst);
        ctx.revoked.send_modify(|n| *n += 1);
        assert_eq!(client.message().await["code"], "session_revoked");
        assert!(matches!(
            client.next().await,
            Outgoing::Close {
                code: close::POLICY,
                ..
            }
        ));
        assert_eq!(client.task.await.unwrap(), Ended::Revoked);
    }

    #[tokio::test]
    async fn a_revoked_session_ends_the_connection() {
        let ctx = context();
        let limits = Limits {
            recheck_every: Duration::from_millis(50),
            ..Limits::default()
        };
        let mut client = Client::connect(&ctx, user("alice", "chat:write"), limits);
        assert_eq!(client.message().await["type"], "hello");
        ctx.stands.store(false, Ordering::SeqCst);
        assert_eq!(client.message().await["code"], "session_revoked");
        assert!(matches!(
            client.next().await,
            Outgoing::Close {
                code: close::POLICY,
                ..
            }
        ));
        assert_eq!(client.task.await.unwrap(), Ended::Revoked);
    }

    #[tokio::test]
    async fn a_client_that_never_reads_is_closed_as_too_slow_its_turn_ends_and_others_are_served() {
        let ctx = context();
        let limits = Limits {
            send_timeout: Duration::from_millis(300),
            chat_queue: 4,
            ..Limits::default()
        };
        let (to_server, incoming) = mpsc::unbounded();
        // Room for the greeting (like a transport's buffer), and nobody ever reads.
        let (outgoing, _never_read) = mpsc::channel::<Outgoing>(1);
        let started = std::time::Instant::now();
        let task = tokio::spawn(serve(
            ctx.clone(),
            user("alice", "chat:read,chat:write"),
            limits,
            outgoing,
            incoming,
        ));
        to_server
            .unbounded_send(Incoming::Text(
                r#"{"type":"chat.send","chatId":"c","content":"hi"}"#.into(),
            ))
            .unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the connection ends")
            .unwrap();
        assert_eq!(ended, Ended::TooSlow);
        while !ctx.turn_stopped.load(Ordering::SeqCst) {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the turn ran on"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Another client is served at once.
        let mut bob = Client::connect(&ctx, user("bob", "chat:read"), Limits::default());
        assert_eq!(bob.message().await["type"], "hello");
        bob.send(r#"{"type":"ping"}"#);
        assert_eq!(bob.message().await["type"], "pong");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_pinged_then_closed() {
        let ctx = context();
        let mut client = Client::connect(&ctx, user("alice", "chat:write"), Limits::default());
        assert_eq!(client.message().await["type"], "hello");
        assert_eq!(client.next().await, Outgoing::Ping(b"aisopod".to_vec()));
        assert_eq!(client.next().await, Outgoing::Ping(b"aisopod".to_vec()));
        assert_eq!(
            client.next().await,
            Outgoing::Close {
                code: close::GOING_AWAY,
                reason: "idle timeout".into()
            }
        );
        assert_eq!(client.task.await.unwrap(), Ended::Idle);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_answers_pings_stays() {
        let ctx = context();
        let mut client = Client::connect(&ctx, user("alice", "chat:write"), Limits::default());
        assert_eq!(client.message().await["type"], "hello");
        for _ in 0..6 {
            assert_eq!(client.next().await, Outgoing::Ping(b"aisopod".to_vec()));
            client.to_server.unbounded_send(Incoming::Pong).unwrap();
        }
        drop(client.to_server);
        assert_eq!(client.task.await.unwrap(), Ended::ClientClosed);
    }
}
