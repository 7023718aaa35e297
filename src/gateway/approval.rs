//! Approvals: the broker that holds a tool call until a human allows or denies it.
//!
//! A tool that the command filter judged `approve` asks the [`Broker`] and waits. The
//! broker hands the request to every eligible client (the requesting user's sessions and
//! devices, and admins) through [`Broker::subscribe`], and to other deciders (a hardware
//! button) through the [`Decider`] trait. The first answer wins; the others see it
//! resolved. An unanswered request is denied when `[approval] timeout` passes, and a
//! request whose waiting tool call goes away is withdrawn. Every request, decision,
//! timeout and withdrawal is audited with who decided.
//!
//! A decision is bound to the hash of the request's canonical input: an answer that
//! names a different hash (the command changed) is refused, so a reply can never
//! approve something the human did not see. "Remember" is honoured only where the
//! request offers it (commands judged `approve`, never `deny`); the caller that asked
//! turns it into a rule. This module never runs tools, never speaks HTTP or WebSocket,
//! and never stores pending requests: they live exactly as long as the call waiting on
//! them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, oneshot};

use crate::audit::{Audit, AuditEvent, Outcome};
use crate::clock::{SharedClock, rfc3339};

/// Resolved requests kept for `GET /api/v1/approvals?state=resolved`.
const RECENT_RESOLVED: usize = 256;
/// Pending requests at once; more are denied at once rather than queued without bound.
const MAX_PENDING: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApprovalError {
    #[error("{0:?} is not an approval request id (apr_ and 24 lowercase hex digits)")]
    InvalidId(String),
    #[error("no pending approval request has the id {0:?}")]
    NotFound(String),
    #[error("approval request {0:?} was already resolved")]
    AlreadyResolved(String),
    #[error("approval request {0:?} belongs to another user")]
    NotEligible(String),
    #[error(
        "approval request {id:?} is for different input than the reply names: the command changed and needs a new approval"
    )]
    InputChanged { id: String },
    #[error(
        "\"remember\" is not offered for request {0:?}: only commands judged `approve` can be remembered"
    )]
    RememberNotOffered(String),
}

/// An approval request's id as the broker issues it: `apr_` and 24 lowercase hex digits.
///
/// Every id a client names (a URL path, a WebSocket message) is parsed into this before
/// the broker looks it up or the audit log records it, so a reply cannot smuggle
/// newlines or terminal escapes into a record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApprovalId(String);

impl ApprovalId {
    const PREFIX: &'static str = "apr_";
    const HEX_DIGITS: usize = 24;

    fn generate() -> ApprovalId {
        ApprovalId(format!(
            "{}{}",
            Self::PREFIX,
            crate::ids::random_id(Self::HEX_DIGITS / 2)
        ))
    }

    pub fn parse(text: &str) -> Result<ApprovalId, ApprovalError> {
        let valid = text.strip_prefix(Self::PREFIX).is_some_and(|hex| {
            hex.len() == Self::HEX_DIGITS
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if valid {
            Ok(ApprovalId(text.to_string()))
        } else {
            // Bounded: the error is shown and recorded, and the input may be huge.
            Err(ApprovalError::InvalidId(text.chars().take(64).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the tool call would act on, in a canonical form that is hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CanonicalInput {
    /// The command line for `shell`; the language for `code_exec`; the path for file tools.
    pub summary: String,
    /// SHA-256 of program code, when the input is code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_sha256: Option<String>,
    /// The working directory the tool would run in.
    pub cwd: String,
    /// Names of files handed to the tool.
    pub files: Vec<String>,
}

impl CanonicalInput {
    /// SHA-256 over the canonical JSON form, hex.
    pub fn hash(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes))
    }
}

/// Who asked: the user, the agent acting for them, and the session it came through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requester {
    pub user: String,
    pub agent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// One request as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRequest {
    pub id: String,
    pub tool: String,
    pub input: CanonicalInput,
    pub input_hash: String,
    pub requester: Requester,
    pub reason: String,
    pub rule: String,
    /// Whether "remember" may turn an allow into a rule for this agent.
    pub remember_offered: bool,
    pub created: String,
    pub expires: String,
}

/// What a caller hands the broker; the broker adds id, hash and times.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub tool: String,
    pub input: CanonicalInput,
    pub requester: Requester,
    pub reason: String,
    pub rule: String,
    pub remember_offered: bool,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ending {
    Allowed,
    Denied,
    /// Nobody answered in time: denied.
    Expired,
    /// The waiting tool call went away (its client disconnected): denied.
    Withdrawn,
}

/// A finished request: the request, how it ended, who ended it.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    #[serde(flatten)]
    pub request: ApprovalRequest,
    pub ending: Ending,
    pub decided_by: String,
    pub remember: bool,
    pub resolved: String,
}

impl Resolved {
    pub fn allowed(&self) -> bool {
        self.ending == Ending::Allowed
    }
}

/// What the broker tells subscribers.
#[derive(Debug, Clone)]
pub enum ApprovalEvent {
    Requested(Arc<ApprovalRequest>),
    Resolved(Arc<Resolved>),
}

impl ApprovalEvent {
    /// The requesting user, for deciding who may see the event.
    pub fn requester(&self) -> &str {
        match self {
            ApprovalEvent::Requested(request) => &request.requester.user,
            ApprovalEvent::Resolved(resolved) => &resolved.request.requester.user,
        }
    }
}

/// Someone answering: their name for the audit log, and what they may answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responder {
    /// Audit label (`user:alice`, `gpio-button`).
    pub actor: String,
    /// The account answering; requests of this user are theirs to answer.
    pub username: String,
    /// Admins may answer every request.
    pub admin: bool,
}

impl Responder {
    pub fn may_answer(&self, request: &ApprovalRequest) -> bool {
        self.admin || self.username == request.requester.user
    }
}

/// Another way to answer requests (the hardware issue adds a GPIO button). A decider is
/// told of each request and answers, if it wants to, through [`Broker::respond`].
pub trait Decider: Send + Sync + std::fmt::Debug {
    fn offer(&self, request: &ApprovalRequest);
}

struct Pending {
    request: Arc<ApprovalRequest>,
    reply: oneshot::Sender<Arc<Resolved>>,
}

#[derive(Default)]
struct State {
    pending: HashMap<String, Pending>,
    recent: VecDeque<Arc<Resolved>>,
}

/// The approval broker; one per gateway.
pub struct Broker {
    state: Mutex<State>,
    events: broadcast::Sender<ApprovalEvent>,
    deciders: Mutex<Vec<Arc<dyn Decider>>>,
    timeout: Duration,
    clock: SharedClock,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Broker {
    pub fn new(timeout: Duration, clock: SharedClock) -> Broker {
        let (events, _) = broadcast::channel(256);
        Broker {
            state: Mutex::new(State::default()),
            events,
            deciders: Mutex::new(Vec::new()),
            timeout,
            clock,
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Every request and resolution from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ApprovalEvent> {
        self.events.subscribe()
    }

    pub fn add_decider(&self, decider: Arc<dyn Decider>) {
        lock(&self.deciders).push(decider);
    }

    /// Asks for approval and waits for the first answer, the timeout, or (if this future
    /// is dropped) withdraws the request.
    pub async fn ask(&self, audit: &Audit, new: NewRequest) -> Arc<Resolved> {
        let now = self.clock.now();
        let expires = now + time::Duration::try_from(self.timeout).unwrap_or(time::Duration::ZERO);
        let request = Arc::new(ApprovalRequest {
            id: ApprovalId::generate().0,
            tool: new.tool,
            input_hash: new.input.hash(),
            input: new.input,
            requester: new.requester,
            reason: new.reason,
            rule: new.rule,
            remember_offered: new.remember_offered,
            created: rfc3339(now),
            expires: rfc3339(expires),
        });
        let (reply, answer) = oneshot::channel();
        let full = {
            let mut state = lock(&self.state);
            if state.pending.len() >= MAX_PENDING {
                true
            } else {
                state.pending.insert(
                    request.id.clone(),
                    Pending {
                        request: request.clone(),
                        reply,
                    },
                );
                false
            }
        };
        if full {
            let resolved = self.finish(
                audit,
                request,
                Ending::Denied,
                "broker: too many pending requests",
                false,
            );
            return resolved;
        }
        audit.record_or_log(
            AuditEvent::new("approval.request")
                .actor(format!(
                    "user:{} agent:{}",
                    request.requester.user, request.requester.agent
                ))
                .target(request.id.clone())
                // Never the input or the filter's reason, which quotes it: the hash
                // ties the record to the call.
                .details(serde_json::json!({
                    "tool": request.tool,
                    "input_hash": request.input_hash,
                    "rule": request.rule,
                })),
        );
        let _ = self.events.send(ApprovalEvent::Requested(request.clone()));
        let deciders = lock(&self.deciders).clone();
        for decider in deciders {
            decider.offer(&request);
        }
        let mut withdraw = WithdrawOnDrop {
            broker: self,
            audit,
            id: Some(request.id.clone()),
        };
        let result = tokio::time::timeout(self.timeout, answer).await;
        withdraw.id = None;
        match result {
            Ok(Ok(resolved)) => resolved,
            // Timed out, or the sender vanished (cannot happen while pending): deny.
            _ => match self.take(&request.id) {
                Some(pending) => {
                    self.finish(audit, pending.request, Ending::Expired, "timeout", false)
                }
                // Answered in the instant the timeout fired: the answer stands.
                None => self
                    .find_recent(&request.id)
                    .unwrap_or_else(|| self.resolved(request, Ending::Expired, "timeout", false)),
            },
        }
    }

    /// Answers a pending request. The first answer wins.
    pub fn respond(
        &self,
        audit: &Audit,
        id: &str,
        responder: &Responder,
        allow: bool,
        remember: bool,
        input_hash: Option<&str>,
    ) -> Result<Arc<Resolved>, ApprovalError> {
        let checked = ApprovalId::parse(id)
            .and_then(|id| self.check_response(id.as_str(), responder, remember, input_hash));
        let pending = match checked {
            Ok(pending) => pending,
            Err(err) => {
                // Only a parsed id is recorded as the target; the raw text of an invalid
                // one appears only Debug-escaped inside the error.
                let target = ApprovalId::parse(id)
                    .map(|id| id.0)
                    .unwrap_or_else(|_| "(invalid id)".into());
                audit.record_or_log(
                    AuditEvent::new("approval.respond")
                        .actor(responder.actor.clone())
                        .target(target)
                        .outcome(Outcome::Denied)
                        .details(serde_json::json!({ "error": err.to_string() })),
                );
                return Err(err);
            }
        };
        let ending = if allow {
            Ending::Allowed
        } else {
            Ending::Denied
        };
        let remember = allow && remember;
        let resolved = self.finish(audit, pending.request, ending, &responder.actor, remember);
        let _ = pending.reply.send(resolved.clone());
        Ok(resolved)
    }

    fn check_response(
        &self,
        id: &str,
        responder: &Responder,
        remember: bool,
        input_hash: Option<&str>,
    ) -> Result<Pending, ApprovalError> {
        let mut state = lock(&self.state);
        let Some(pending) = state.pending.get(id) else {
            return Err(match state.recent.iter().find(|r| r.request.id == id) {
                Some(resolved) if responder.may_answer(&resolved.request) => {
                    ApprovalError::AlreadyResolved(id.to_string())
                }
                _ => ApprovalError::NotFound(id.to_string()),
            });
        };
        if !responder.may_answer(&pending.request) {
            return Err(ApprovalError::NotEligible(id.to_string()));
        }
        if input_hash.is_some_and(|hash| hash != pending.request.input_hash) {
            return Err(ApprovalError::InputChanged { id: id.to_string() });
        }
        if remember && !pending.request.remember_offered {
            return Err(ApprovalError::RememberNotOffered(id.to_string()));
        }
        state
            .pending
            .remove(id)
            .ok_or_else(|| ApprovalError::NotFound(id.to_string()))
    }

    /// How many requests wait for an answer, whoever may give it.
    pub fn waiting(&self) -> usize {
        lock(&self.state).pending.len()
    }

    /// Pending requests this responder may answer, oldest first.
    pub fn pending_for(&self, responder: &Responder) -> Vec<Arc<ApprovalRequest>> {
        let state = lock(&self.state);
        let mut list: Vec<_> = state
            .pending
            .values()
            .filter(|p| responder.may_answer(&p.request))
            .map(|p| p.request.clone())
            .collect();
        list.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        list
    }

    /// Recently resolved requests this responder may see, newest first.
    pub fn resolved_for(&self, responder: &Responder) -> Vec<Arc<Resolved>> {
        lock(&self.state)
            .recent
            .iter()
            .rev()
            .filter(|r| responder.may_answer(&r.request))
            .cloned()
            .collect()
    }

    fn take(&self, id: &str) -> Option<Pending> {
        lock(&self.state).pending.remove(id)
    }

    fn find_recent(&self, id: &str) -> Option<Arc<Resolved>> {
        lock(&self.state)
            .recent
            .iter()
            .find(|r| r.request.id == id)
            .cloned()
    }

    fn resolved(
        &self,
        request: Arc<ApprovalRequest>,
        ending: Ending,
        by: &str,
        remember: bool,
    ) -> Arc<Resolved> {
        Arc::new(Resolved {
            request: (*request).clone(),
            ending,
            decided_by: by.to_string(),
            remember,
            resolved: rfc3339(self.clock.now()),
        })
    }

    /// Records the end of a request: recent list, audit, subscribers.
    fn finish(
        &self,
        audit: &Audit,
        request: Arc<ApprovalRequest>,
        ending: Ending,
        by: &str,
        remember: bool,
    ) -> Arc<Resolved> {
        let resolved = self.resolved(request, ending, by, remember);
        {
            let mut state = lock(&self.state);
            if state.recent.len() >= RECENT_RESOLVED {
                state.recent.pop_front();
            }
            state.recent.push_back(resolved.clone());
        }
        let (action, outcome) = match ending {
            Ending::Allowed => ("approval.allow", Outcome::Success),
            Ending::Denied => ("approval.deny", Outcome::Denied),
            Ending::Expired => ("approval.timeout", Outcome::Denied),
            Ending::Withdrawn => ("approval.withdrawn", Outcome::Denied),
        };
        audit.record_or_log(
            AuditEvent::new(action)
                .actor(by.to_string())
                .target(resolved.request.id.clone())
                .outcome(outcome)
                .details(serde_json::json!({
                    "tool": resolved.request.tool,
                    "input_hash": resolved.request.input_hash,
                    "requester": resolved.request.requester,
                    "remember": remember,
                })),
        );
        let _ = self.events.send(ApprovalEvent::Resolved(resolved.clone()));
        resolved
    }
}

/// Withdraws a request whose waiting call was dropped before an answer came.
struct WithdrawOnDrop<'a> {
    broker: &'a Broker,
    audit: &'a Audit,
    id: Option<String>,
}

impl Drop for WithdrawOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take()
            && let Some(pending) = self.broker.take(&id)
        {
            self.broker.finish(
                self.audit,
                pending.request,
                Ending::Withdrawn,
                "the requesting call ended",
                false,
            );
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Query;
    use crate::clock::ManualClock;
    use time::OffsetDateTime;

    struct Fixture {
        _keyed: crate::keys::testing::KeyedStore,
        audit: Audit,
        broker: Arc<Broker>,
    }

    fn fixture(timeout: Duration) -> Fixture {
        let keyed = crate::keys::testing::keyed_store();
        let clock: SharedClock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let audit = Audit::open(&keyed.store, &keyed.secrets, clock.clone()).unwrap();
        Fixture {
            _keyed: keyed,
            audit,
            broker: Arc::new(Broker::new(timeout, clock)),
        }
    }

    fn request(user: &str, command: &str) -> NewRequest {
        NewRequest {
            tool: "shell".into(),
            input: CanonicalInput {
                summary: command.into(),
                code_sha256: None,
                cwd: "/work".into(),
                files: vec![],
            },
            requester: Requester {
                user: user.into(),
                agent: "default".into(),
                session: None,
            },
            reason: "needs a human".into(),
            rule: "policy.unknown_program".into(),
            remember_offered: true,
        }
    }

    fn person(name: &str, admin: bool) -> Responder {
        Responder {
            actor: format!("user:{name}"),
            username: name.into(),
            admin,
        }
    }

    async fn first_pending(broker: &Broker) -> Arc<ApprovalRequest> {
        let admin = person("root", true);
        for _ in 0..200 {
            if let Some(request) = broker.pending_for(&admin).into_iter().next() {
                return request;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("no request became pending");
    }

    fn actions(audit: &Audit) -> Vec<(String, String)> {
        audit
            .list(&Query::default())
            .unwrap()
            .into_iter()
            .map(|r| (r.action, r.actor))
            .collect()
    }

    #[tokio::test]
    async fn an_id_with_control_characters_is_refused_and_never_recorded_raw() {
        let f = fixture(Duration::from_secs(30));
        let forged = "apr_0\n     7  2026-01-01T00:00:00Z  approval.allowed\u{1b}[2J";
        let err = f
            .broker
            .respond(&f.audit, forged, &person("eve", false), true, false, None)
            .unwrap_err();
        assert!(matches!(err, ApprovalError::InvalidId(_)), "{err:?}");
        let records = f.audit.list(&Query::default()).unwrap();
        let last = records.last().unwrap();
        assert_eq!(
            (last.action.as_str(), last.target.as_str()),
            ("approval.respond", "(invalid id)")
        );
        let stored = serde_json::to_string(last).unwrap();
        assert!(
            !stored.contains('\n') && !stored.contains('\u{1b}'),
            "{stored}"
        );
        // Ids the broker issues still parse; near misses do not.
        let issued = ApprovalId::generate();
        assert_eq!(ApprovalId::parse(issued.as_str()), Ok(issued.clone()));
        for bad in [
            "",
            "apr_",
            "APR_0123456789abcdef01234567",
            "apr_0123456789ABCDEF01234567",
            "apr_0123456789abcdef0123456",
        ] {
            assert!(ApprovalId::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_first_answer_wins_and_the_second_is_refused() {
        let f = fixture(Duration::from_secs(30));
        let broker = f.broker.clone();
        let mut events = broker.subscribe();
        let asking = async { broker.ask(&f.audit, request("alice", "make deploy")).await };
        let answering = async {
            let pending = first_pending(&broker).await;
            assert!(
                matches!(events.recv().await.unwrap(), ApprovalEvent::Requested(r) if r.id == pending.id)
            );
            let first = broker
                .respond(
                    &f.audit,
                    &pending.id,
                    &person("alice", false),
                    true,
                    false,
                    Some(&pending.input_hash),
                )
                .unwrap();
            assert!(first.allowed());
            let second = broker.respond(
                &f.audit,
                &pending.id,
                &person("root", true),
                false,
                false,
                None,
            );
            assert_eq!(
                second.unwrap_err(),
                ApprovalError::AlreadyResolved(pending.id.clone())
            );
            assert!(
                matches!(events.recv().await.unwrap(), ApprovalEvent::Resolved(r) if r.allowed())
            );
        };
        let (resolved, ()) = tokio::join!(asking, answering);
        assert_eq!(resolved.ending, Ending::Allowed);
        assert_eq!(resolved.decided_by, "user:alice");
        let log = actions(&f.audit);
        assert!(log.contains(&("approval.request".into(), "user:alice agent:default".into())));
        assert!(log.contains(&("approval.allow".into(), "user:alice".into())));
        assert!(
            log.iter()
                .any(|(a, actor)| a == "approval.respond" && actor == "user:root")
        );
    }

    #[tokio::test]
    async fn an_unanswered_request_is_denied_at_the_timeout() {
        let f = fixture(Duration::from_millis(150));
        let started = std::time::Instant::now();
        let resolved = f
            .broker
            .ask(&f.audit, request("alice", "make deploy"))
            .await;
        assert_eq!(resolved.ending, Ending::Expired);
        assert!(!resolved.allowed());
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert!(f.broker.pending_for(&person("root", true)).is_empty());
        let late = f.broker.respond(
            &f.audit,
            &resolved.request.id,
            &person("alice", false),
            true,
            false,
            None,
        );
        assert_eq!(
            late.unwrap_err(),
            ApprovalError::AlreadyResolved(resolved.request.id.clone())
        );
        assert!(actions(&f.audit).contains(&("approval.timeout".into(), "timeout".into())));
    }

    #[tokio::test]
    async fn other_users_cannot_see_or_answer_a_request_but_admins_can() {
        let f = fixture(Duration::from_secs(30));
        let broker = f.broker.clone();
        let asking = async { broker.ask(&f.audit, request("alice", "make deploy")).await };
        let answering = async {
            let pending = first_pending(&broker).await;
            assert!(broker.pending_for(&person("mallory", false)).is_empty());
            assert_eq!(broker.pending_for(&person("alice", false)).len(), 1);
            let refused = broker.respond(
                &f.audit,
                &pending.id,
                &person("mallory", false),
                true,
                false,
                None,
            );
            assert_eq!(
                refused.unwrap_err(),
                ApprovalError::NotEligible(pending.id.clone())
            );
            // Still pending after the refusal; an admin answers.
            broker
                .respond(
                    &f.audit,
                    &pending.id,
                    &person("root", true),
                    false,
                    false,
                    None,
                )
                .unwrap();
        };
        let (resolved, ()) = tokio::join!(asking, answering);
        assert_eq!(resolved.ending, Ending::Denied);
        assert_eq!(resolved.decided_by, "user:root");
    }

    #[tokio::test]
    async fn a_reply_for_changed_input_is_refused() {
        let f = fixture(Duration::from_secs(30));
        let broker = f.broker.clone();
        let asking = async { broker.ask(&f.audit, request("alice", "make deploy")).await };
        let answering = async {
            let pending = first_pending(&broker).await;
            let other = CanonicalInput {
                summary: "make deploy; rm -rf ~".into(),
                ..pending.input.clone()
            }
            .hash();
            let refused = broker.respond(
                &f.audit,
                &pending.id,
                &person("alice", false),
                true,
                false,
                Some(&other),
            );
            assert_eq!(
                refused.unwrap_err(),
                ApprovalError::InputChanged {
                    id: pending.id.clone()
                }
            );
            broker
                .respond(
                    &f.audit,
                    &pending.id,
                    &person("alice", false),
                    false,
                    false,
                    None,
                )
                .unwrap();
        };
        let (resolved, ()) = tokio::join!(asking, answering);
        assert!(!resolved.allowed());
    }

    #[tokio::test]
    async fn remember_is_refused_where_not_offered_and_dropped_on_deny() {
        let f = fixture(Duration::from_secs(30));
        let broker = f.broker.clone();
        let mut not_offered = request("alice", "python3 x.py");
        not_offered.remember_offered = false;
        let asking = async { broker.ask(&f.audit, not_offered).await };
        let answering = async {
            let pending = first_pending(&broker).await;
            let refused = broker.respond(
                &f.audit,
                &pending.id,
                &person("alice", false),
                true,
                true,
                None,
            );
            assert_eq!(
                refused.unwrap_err(),
                ApprovalError::RememberNotOffered(pending.id.clone())
            );
            broker
                .respond(
                    &f.audit,
                    &pending.id,
                    &person("alice", false),
                    true,
                    false,
                    None,
                )
                .unwrap();
        };
        let (resolved, ()) = tokio::join!(asking, answering);
        assert!(resolved.allowed() && !resolved.remember);

        let asking = async { broker.ask(&f.audit, request("alice", "make deploy")).await };
        let answering = async {
            let pending = first_pending(&broker).await;
            broker
                .respond(
                    &f.audit,
                    &pending.id,
                    &person("alice", false),
                    false,
                    true,
                    None,
                )
                .unwrap();
        };
        let (resolved, ()) = tokio::join!(asking, answering);
        assert!(!resolved.allowed() && !resolved.remember);
    }

    #[tokio::test]
    async fn unknown_ids_are_not_found_and_a_dropped_call_withdraws_its_request() {
        let f = fixture(Duration::from_secs(30));
        let unknown = f.broker.respond(
            &f.audit,
            "apr_000000000000000000000000",
            &person("root", true),
            true,
            false,
            None,
        );
        assert_eq!(
            unknown.unwrap_err(),
            ApprovalError::NotFound("apr_000000000000000000000000".into())
        );

        let broker = f.broker.clone();
        let abandoned = tokio::time::timeout(
            Duration::from_millis(100),
            broker.ask(&f.audit, request("alice", "make deploy")),
        )
        .await;
        assert!(abandoned.is_err());
        assert!(broker.pending_for(&person("root", true)).is_empty());
        let resolved = broker.resolved_for(&person("alice", false));
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].ending, Ending::Withdrawn);
    }

    #[test]
    fn the_input_hash_changes_with_any_field() {
        let base = request("alice", "ls").input;
        let hashes = [
            base.hash(),
            CanonicalInput {
                summary: "ls ".into(),
                ..base.clone()
            }
            .hash(),
            CanonicalInput {
                cwd: "/".into(),
                ..base.clone()
            }
            .hash(),
            CanonicalInput {
                files: vec!["a".into()],
                ..base.clone()
            }
            .hash(),
            CanonicalInput {
                code_sha256: Some("00".into()),
                ..base.clone()
            }
            .hash(),
        ];
        let unique: std::collections::HashSet<_> = hashes.iter().collect();
        assert_eq!(unique.len(), hashes.len());
        assert_eq!(base.hash(), request("bob", "ls").input.hash());
    }
}
