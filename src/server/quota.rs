//! The door of the routes that call a model, for callers that came with a limited API
//! token: [`enforce`] is the layer on every route that [`calls_a_model`] (every
//! `/v1/*` path, whatever the OpenAI-compatible API adds there, and posting a chat
//! message), and [`admit`] is the same check for callers that are no HTTP route (the
//! WebSocket's `chat.send`).
//!
//! The decision is `gateway::quota`'s; this module looks up the token's limits, records
//! the first refusal of each window in the audit log (one record a minute or a day per
//! token and limit, however hard it is flooded), and answers 429 with `Retry-After`:
//! in OpenAI's error shape on `/v1/*`, in the API's own elsewhere. Sessions, paired
//! devices and unlimited tokens pass without a store read.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};

use crate::audit::{AuditEvent, Outcome};
use crate::auth::Principal;
use crate::auth::tokens::TokenLimits;
use crate::gateway::quota::{QuotaError, QuotaExceeded};
use crate::server::auth::{ClientIp, principal};
use crate::server::error::{ApiError, openai_quota_error};
use crate::server::state::App;

/// The prefix of the OpenAI-compatible routes, which answer in OpenAI's error shape.
pub const OPENAI_PREFIX: &str = "/v1/";

/// Whether a request to the route `matched` (its pattern) can make a model work.
pub fn calls_a_model(method: &Method, matched: &str) -> bool {
    matched.starts_with(OPENAI_PREFIX)
        || (method == Method::POST && matched == "/api/v1/chats/{id}/messages")
}

/// Why [`admit`] refused.
#[derive(Debug)]
pub enum QuotaRefusal {
    /// A limit of the token is reached.
    Exceeded(QuotaExceeded),
    /// The limits or the day's usage could not be read; refused rather than unchecked.
    Failed,
}

impl QuotaRefusal {
    /// The refusal in the API's own shape (also what `/ws` sends as `chat.error`).
    pub fn api_error(&self) -> ApiError {
        match self {
            QuotaRefusal::Exceeded(exceeded) => exceeded.into(),
            QuotaRefusal::Failed => ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    fn response(&self, openai: bool) -> Response {
        match self {
            QuotaRefusal::Exceeded(exceeded) if openai => openai_quota_error(exceeded),
            QuotaRefusal::Failed if openai => crate::server::error::openai_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error; the gateway logged the cause",
            ),
            _ => self.api_error().into_response(),
        }
    }
}

/// Admits one model call of `principal`, or refuses it when the API token it came with
/// (directly, or through a WebSocket ticket made with it) has reached a limit. Blocking:
/// it reads the store. `target` names what was called, for the audit record.
pub fn admit(
    app: &App,
    principal: &Principal,
    ip: Option<IpAddr>,
    target: &str,
) -> Result<(), QuotaRefusal> {
    match limits_of(app, principal)? {
        Some(limits) => admit_within(app, principal, &limits, ip, target),
        None => Ok(()),
    }
}

/// [`admit`] for a caller whose token's `limits` were just read.
fn admit_within(
    app: &App,
    principal: &Principal,
    limits: &TokenLimits,
    ip: Option<IpAddr>,
    target: &str,
) -> Result<(), QuotaRefusal> {
    let Some(token) = principal.api_token_id() else {
        return Ok(());
    };
    let now = app.services.clock.now();
    match app
        .gateway
        .quota
        .admit(&app.gateway.usage, token, limits, now)
    {
        Ok(()) => Ok(()),
        Err(QuotaError::Exceeded(exceeded)) => {
            if let Some(unrecorded) = exceeded.audit {
                app.audit().record_or_log(
                    AuditEvent::new("auth.token_limit_reached")
                        .actor(principal.actor())
                        .target(target.to_string())
                        .outcome(Outcome::Denied)
                        .source_ip(ip)
                        .details(serde_json::json!({
                            "token": token,
                            "limit": exceeded.limit,
                            "allowed": exceeded.allowed,
                            "used": exceeded.used,
                            "unrecorded_before": unrecorded,
                        })),
                );
            }
            Err(QuotaRefusal::Exceeded(exceeded))
        }
        Err(QuotaError::Usage(err)) => {
            tracing::error!(error = %err, "reading the day's usage failed; refusing");
            Err(QuotaRefusal::Failed)
        }
    }
}

/// The limits of the API token `principal` came with, when it has any: one read of the
/// store's cache, cheap enough for an async worker.
fn limits_of(app: &App, principal: &Principal) -> Result<Option<TokenLimits>, QuotaRefusal> {
    let Some(token) = principal.api_token_id() else {
        return Ok(None);
    };
    match app.services.auth.tokens.limits(token) {
        Ok(Some(limits)) if !limits.is_unlimited() => Ok(Some(limits)),
        // Revoked since it authenticated: what it may still do ends with the request.
        Ok(_) => Ok(None),
        Err(err) => {
            tracing::error!(error = %err, "reading a token's limits failed; refusing");
            Err(QuotaRefusal::Failed)
        }
    }
}

/// The layer: runs after `authorize`, so only callers that may use the route are
/// counted, and before the handler, so a refused call never reaches a model.
pub async fn enforce<F: Future<Output = Response>>(
    app: &Arc<App>,
    request: Request,
    inner: impl FnOnce(Request) -> F,
) -> Response {
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    if !calls_a_model(request.method(), &matched) {
        return inner(request).await;
    }
    let Some(caller) = principal(&request).filter(|p| p.api_token_id().is_some()) else {
        return inner(request).await;
    };
    let openai = matched.starts_with(OPENAI_PREFIX);
    // Most tokens have no limits: they pass without a trip to the blocking pool, which
    // only the usage reads (and, at a refusal, an audit record's disk sync) need.
    let limits = match limits_of(app, caller) {
        Ok(None) => return inner(request).await,
        Ok(Some(limits)) => limits,
        Err(refusal) => return refusal.response(openai),
    };
    let caller = caller.clone();
    let ip = request
        .extensions()
        .get::<ClientIp>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0);
    let target = request.uri().path().to_string();
    let worker = app.clone();
    let verdict = tokio::task::spawn_blocking(move || {
        admit_within(&worker, &caller, &limits, Some(ip), &target)
    })
    .await;
    match verdict {
        Ok(Ok(())) => inner(request).await,
        Ok(Err(refusal)) => refusal.response(openai),
        Err(_) => QuotaRefusal::Failed.response(openai),
    }
}
