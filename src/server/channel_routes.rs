//! Channels over HTTP: `POST /hooks/{channel}` takes signed webhook deliveries, and
//! `/api/v1/channels` manages channels (`channel:read` to list and read,
//! `channel:manage` to create, replace, delete and rotate a secret).
//!
//! A delivery is read (at most `webhook::MAX_BODY` bytes), checked against its channel
//! (or a decoy, so an unknown channel answers as a bad signature does), its id recorded
//! once, audited, and handed to the channel's agent as its owner through the same agent
//! loop as chats (tools and approvals included). The reply comes back in the response,
//! or, with a `reply_url`, the answer is 202 at once and the reply is posted there,
//! signed the same way. Failed deliveries count against the sender's address; past the
//! limit they get 429 while good ones are still served. A channel's secret is answered
//! only by the request that created or rotated it, never logged, never audited. This
//! file turns requests into calls and errors into answers; the checks themselves live
//! in `gateway::channels`.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::audit::{AuditEvent, Outcome};
use crate::auth::scopes::Scope;
use crate::gateway::agent_loop::{self, LoopError, Turn, TurnOptions};
use crate::gateway::approval::Requester;
use crate::gateway::channels::webhook::{self, ReplyBody};
use crate::gateway::channels::{
    ChannelError, ChannelSettings, ChannelSpec, ChannelView, Inbound, generate_secret,
};
use crate::gateway::providers::Message;
use crate::secret::Secret;
use crate::server::api::Api;
use crate::server::auth::{Access, Caller, ClientIp};
use crate::server::chat_routes::blocking;
use crate::server::error::{ApiError, ErrorCode};
use crate::server::state::App;

pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(hook, list, read, create, update, remove, rotate))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

pub fn api() -> Api {
    Api::new()
        // Authenticated in the handler, by the delivery's signature.
        .route("/hooks/{channel}", Access::Public, post(hook))
        .route(
            "/api/v1/channels",
            Access::Scope(Scope::ChannelManage),
            post(create),
        )
        .route_method(
            Method::GET,
            "/api/v1/channels",
            Access::Scope(Scope::ChannelRead),
            get(list),
        )
        .route(
            "/api/v1/channels/{name}",
            Access::Scope(Scope::ChannelManage),
            put(update).delete(remove),
        )
        .route_method(
            Method::GET,
            "/api/v1/channels/{name}",
            Access::Scope(Scope::ChannelRead),
            get(read),
        )
        .route(
            "/api/v1/channels/{name}/rotate-secret",
            Access::Scope(Scope::ChannelManage),
            post(rotate),
        )
}

// ---------------------------------------------------------------------------------------
// Managing channels.

const SHAPE: &str = "the body must be a JSON object with name, agent and optionally kind, owner, reply_url, reply_timeout and secret";

/// The body of a create or replace; the secret only on create and rotate.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelBody {
    name: String,
    #[serde(default)]
    kind: Option<String>,
    agent: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    reply_url: Option<String>,
    #[serde(default)]
    reply_timeout: Option<u64>,
    #[serde(default)]
    secret: Option<Secret>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    secret: Option<Secret>,
}

/// Parses a JSON object body; a wrong field is named, but no value is ever quoted (a
/// secret may be in it).
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            SHAPE,
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        if err.inner().is_data() {
            let field = if path == "." {
                String::new()
            } else {
                format!("{path}: ")
            };
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidRequest,
                format!("{field}missing, unknown or of the wrong type; {SHAPE}"),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidJson,
                "the body is not valid JSON",
            )
        }
    })
}

/// The owner a channel runs as: the caller, or another user when an admin asks.
fn owner_for(app: &App, caller: &Caller, asked: Option<String>) -> Result<String, ApiError> {
    let owner = asked.unwrap_or_else(|| caller.username.clone());
    if owner != caller.username && !caller.allows(Scope::Admin) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "only an admin may make a channel that runs as another user",
        ));
    }
    if app.services.auth.accounts.get(&owner)?.is_none() {
        return Err(ChannelError::Invalid(vec![format!(
            "owner: there is no user {:?}",
            owner.chars().take(40).collect::<String>()
        )])
        .into());
    }
    Ok(owner)
}

fn check_agent(app: &App, agent: &str) -> Result<(), ApiError> {
    match app.gateway.agents.get(agent) {
        Ok(_) => Ok(()),
        Err(crate::gateway::agents::AgentError::NotFound(_)) => {
            Err(ChannelError::Invalid(vec![format!(
                "agent: there is no agent {:?}",
                agent.chars().take(40).collect::<String>()
            )])
            .into())
        }
        Err(err) => Err(err.into()),
    }
}

/// A channel the caller may see: its own, or any for an admin. Others are "not found".
fn visible(caller: &Caller, channel: &ChannelView) -> bool {
    caller.allows(Scope::Admin) || channel.owner == caller.username
}

fn refuse_reuse(app: &App, secret: &Secret) -> Result<(), ApiError> {
    if app.services.secret_in_use(secret)? {
        return Err(ChannelError::SecretReused.into());
    }
    Ok(())
}

fn now_rfc3339(app: &App) -> String {
    crate::clock::rfc3339(app.services.clock.now())
}

#[utoipa::path(
    get,
    path = "/api/v1/channels",
    tag = "channels",
    summary = "Channels the caller may see",
    responses((status = 200, description = "`{\"channels\": [...]}`; secrets only as a hint", body = Object))
)]
async fn list(State(app): State<Arc<App>>, caller: Caller) -> Result<Response, ApiError> {
    let channels = blocking(move || {
        let all = app.gateway.channels.list()?;
        Ok(all
            .into_iter()
            .filter(|c| visible(&caller, c))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({ "channels": channels })).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/channels/{name}",
    tag = "channels",
    summary = "One channel",
    params(("name" = String, Path, description = "The channel's name")),
    responses((status = 200, description = "The channel; its secret only as a hint", body = Object), (status = 404, description = "No such channel", body = Object))
)]
async fn read(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let channel = blocking(move || {
        let channel = app.gateway.channels.get(&name)?;
        if !visible(&caller, &channel) {
            return Err(ChannelError::NotFound(name).into());
        }
        Ok(channel)
    })
    .await?;
    Ok(Json(channel).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/channels",
    tag = "channels",
    summary = "Create a webhook channel; its secret is shown once",
    request_body(content = Object, content_type = "application/json"),
    responses((status = 201, description = "`{channel, secret}`: the secret, shown only now", body = Object), (status = 409, description = "The name exists or the secret is used elsewhere", body = Object), (status = 422, description = "A field is invalid; the message names it", body = Object))
)]
async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: ChannelBody = parse_body(&body)?;
    let (channel, secret) = blocking(move || {
        let owner = owner_for(&app, &caller, body.owner)?;
        check_agent(&app, &body.agent)?;
        let secret = match body.secret {
            Some(secret) => secret,
            None => generate_secret()?,
        };
        refuse_reuse(&app, &secret)?;
        let spec = ChannelSpec {
            name: body.name,
            kind: body.kind.unwrap_or_else(|| "webhook".into()),
            agent: body.agent,
            owner: None,
            reply_url: body.reply_url,
            reply_timeout: body.reply_timeout,
        };
        let channel = app.gateway.channels.create(
            spec,
            owner,
            &secret,
            &caller.actor(),
            now_rfc3339(&app),
        )?;
        app.audit_change("channel.create", caller.actor(), ip, &channel.name);
        Ok((channel, secret))
    })
    .await?;
    let hook = format!("/hooks/{}", channel.name);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "channel": channel, "secret": secret.expose(), "hook_path": hook })),
    )
        .into_response())
}

#[utoipa::path(
    put,
    path = "/api/v1/channels/{name}",
    tag = "channels",
    summary = "Change a channel's agent, reply URL or timeout",
    params(("name" = String, Path, description = "The channel's name")),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, description = "The channel", body = Object), (status = 404, description = "No such channel", body = Object), (status = 409, description = "The channel comes from the configuration file", body = Object), (status = 422, description = "A field is invalid; the message names it", body = Object))
)]
async fn update(
    State(app): State<Arc<App>>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: ChannelBody = parse_body(&body)?;
    if body.secret.is_some() {
        return Err(ChannelError::Invalid(vec![format!(
            "secret: change it with POST /api/v1/channels/{}/rotate-secret",
            name.chars().take(40).collect::<String>()
        )])
        .into());
    }
    let channel = blocking(move || {
        let current = app.gateway.channels.get(&name)?;
        if !visible(&caller, &current) {
            return Err(ChannelError::NotFound(name).into());
        }
        let owner = owner_for(&app, &caller, body.owner.or(Some(current.owner)))?;
        check_agent(&app, &body.agent)?;
        let spec = ChannelSpec {
            name: body.name,
            kind: body.kind.unwrap_or_else(|| "webhook".into()),
            agent: body.agent,
            owner: None,
            reply_url: body.reply_url,
            reply_timeout: body.reply_timeout,
        };
        let channel = app.gateway.channels.update(&name, spec, owner)?;
        app.audit_change("channel.update", caller.actor(), ip, &name);
        Ok(channel)
    })
    .await?;
    Ok(Json(channel).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/channels/{name}",
    tag = "channels",
    summary = "Delete a channel",
    params(("name" = String, Path, description = "The channel's name")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such channel", body = Object), (status = 409, description = "The channel comes from the configuration file", body = Object))
)]
async fn remove(
    State(app): State<Arc<App>>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let current = app.gateway.channels.get(&name)?;
        if !visible(&caller, &current) {
            return Err(ChannelError::NotFound(name).into());
        }
        app.gateway.channels.delete(&name)?;
        app.audit_change("channel.delete", caller.actor(), ip, &name);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/channels/{name}/rotate-secret",
    tag = "channels",
    summary = "Replace a channel's secret; the new one is shown once",
    params(("name" = String, Path, description = "The channel's name")),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, description = "`{channel, secret}`: the new secret, shown only now", body = Object), (status = 404, description = "No such channel", body = Object), (status = 409, description = "The secret is used elsewhere or the channel comes from the configuration file", body = Object))
)]
async fn rotate(
    State(app): State<Arc<App>>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: RotateBody = if body.trim_ascii().is_empty() {
        RotateBody::default()
    } else {
        parse_body(&body)?
    };
    let (channel, secret) = blocking(move || {
        let current = app.gateway.channels.get(&name)?;
        if !visible(&caller, &current) {
            return Err(ChannelError::NotFound(name).into());
        }
        let secret = match body.secret {
            Some(secret) => secret,
            None => generate_secret()?,
        };
        refuse_reuse(&app, &secret)?;
        let channel = app.gateway.channels.rotate(&name, &secret)?;
        app.audit_change("channel.rotate_secret", caller.actor(), ip, &name);
        Ok((channel, secret))
    })
    .await?;
    Ok(Json(json!({ "channel": channel, "secret": secret.expose() })).into_response())
}

// ---------------------------------------------------------------------------------------
// Deliveries.

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn audit_refusal(app: &App, ip: IpAddr, channel: &str, delivery: &str, err: &ChannelError) {
    let delivery_shown = webhook::check_delivery_id(delivery)
        .is_ok()
        .then_some(delivery);
    app.audit().record_or_log(
        AuditEvent::new("webhook.refused")
            .actor("anonymous")
            .target(channel.chars().take(40).collect::<String>())
            .outcome(Outcome::Denied)
            .source_ip(Some(ip))
            .details(json!({ "reason": err.reason(), "delivery": delivery_shown })),
    );
}

/// `POST /hooks/{channel}`.
#[utoipa::path(
    post,
    path = "/hooks/{channel}",
    tag = "channels",
    summary = "A signed delivery to a webhook channel (X-Aisopod-Delivery, X-Aisopod-Signature)",
    params(("channel" = String, Path, description = "The channel's name"), ("X-Aisopod-Delivery" = String, Header, description = "A unique delivery id"), ("X-Aisopod-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<id>.<body>\">`")),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, description = "`{channel, delivery, reply}`: the agent's reply", body = Object), (status = 202, description = "Accepted; the reply is posted to the channel's reply URL", body = Object), (status = 409, description = "This delivery id was accepted before", body = Object), (status = 502, description = "The agent's provider failed", body = Object), (status = 503, description = "Too many delivery ids are held; retry later", body = Object))
)]
async fn hook(
    State(app): State<Arc<App>>,
    ClientIp(ip): ClientIp,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let delivery = header(&headers, webhook::DELIVERY_HEADER).to_string();
    let signature = header(&headers, webhook::SIGNATURE_HEADER).to_string();
    let too_large = ChannelError::TooLarge {
        limit: webhook::MAX_BODY,
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = match declared {
        Some(length) if length > webhook::MAX_BODY as u64 => Err(too_large),
        _ => axum::body::to_bytes(body, webhook::MAX_BODY)
            .await
            .map_err(|_| too_large),
    };
    let checked = match body {
        Ok(body) => {
            let worker = app.clone();
            let name = channel.clone();
            let delivery = delivery.clone();
            let now = app.services.clock.now().unix_timestamp();
            let checked = tokio::task::spawn_blocking(move || {
                let channels = &worker.gateway.channels;
                let door = channels.for_delivery(&name)?;
                let inbound = door.authenticate(&delivery, &signature, &body, now)?;
                channels.accept_delivery(&name, &inbound.delivery, inbound.timestamp, now)?;
                Ok::<_, ChannelError>((door.settings().clone(), inbound))
            })
            .await;
            match checked {
                Ok(checked) => checked,
                Err(_) => {
                    return ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response();
                }
            }
        }
        Err(err) => Err(err),
    };
    let (settings, inbound) = match checked {
        Ok(accepted) => accepted,
        Err(err) => return refuse(&app, ip, &channel, &delivery, err),
    };
    app.audit().record_or_log(
        AuditEvent::new("webhook.accepted")
            .actor(format!("channel:{}", settings.name))
            .target(settings.name.clone())
            .source_ip(Some(ip))
            .details(json!({ "delivery": inbound.delivery, "agent": settings.agent })),
    );
    if let Some(url) = settings.reply_url.clone() {
        let worker = app.clone();
        let delivery = inbound.delivery.clone();
        tokio::spawn(async move {
            reply_later(worker, settings, inbound, url).await;
        });
        return (
            StatusCode::ACCEPTED,
            Json(json!({ "channel": channel, "delivery": delivery, "status": "accepted" })),
        )
            .into_response();
    }
    match run_turn(&app, &settings, inbound.text).await {
        Ok(reply) => Json(json!({
            "channel": settings.name,
            "delivery": inbound.delivery,
            "reply": reply,
        }))
        .into_response(),
        Err(err) => loop_error(err).into_response(),
    }
}

/// A refused delivery: audited, counted against the address when a forger could have
/// caused it, and answered (429 once the address is over its limit).
fn refuse(app: &App, ip: IpAddr, channel: &str, delivery: &str, err: ChannelError) -> Response {
    if err.is_authentication_failure()
        && let Err(wait) = app.limits.hook_failure(ip)
    {
        // Past the limit, one summary a minute per address, not one record per try.
        if let Some(suppressed) = app.refusals.should_audit(app.limits.key(ip)) {
            app.audit().record_or_log(
                AuditEvent::new("webhook.rate_limited")
                    .actor("anonymous")
                    .target(channel.chars().take(40).collect::<String>())
                    .outcome(Outcome::Denied)
                    .source_ip(Some(ip))
                    .details(json!({ "reason": err.reason(), "suppressed": suppressed })),
            );
        }
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "too many failed deliveries from this address; retry later",
        )
        .retry_after(wait.as_secs().max(1))
        .into_response();
    }
    audit_refusal(app, ip, channel, delivery, &err);
    ApiError::from(err).into_response()
}

/// Runs the channel's agent on `text` as the channel's owner; the answer's text.
async fn run_turn(
    app: &Arc<App>,
    settings: &ChannelSettings,
    text: String,
) -> Result<String, LoopError> {
    let (events, mut receiver) = mpsc::channel(32);
    // The loop stops when nobody reads its events; the text comes back in the outcome.
    let drain = tokio::spawn(async move { while receiver.recv().await.is_some() {} });
    let cancel = CancellationToken::new();
    let _cancel_if_dropped = cancel.clone().drop_guard();
    let turn = Turn {
        agent: settings.agent.clone(),
        requester: Requester {
            user: settings.owner.clone(),
            agent: settings.agent.clone(),
            session: None,
        },
        token: None,
        context: vec![Message::user(text)],
        options: TurnOptions::default(),
    };
    let deps = app.agent_loop().await;
    let result = agent_loop::run(&deps, turn, events, cancel).await;
    drain.abort();
    result.map(|outcome| outcome.text)
}

fn loop_error(err: LoopError) -> ApiError {
    let status = if err.is_caller_error() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::BAD_GATEWAY
    };
    if matches!(err, LoopError::Store) {
        return ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR);
    }
    ApiError::new(
        status,
        ErrorCode::Unavailable,
        format!("the channel's agent could not answer: {err}"),
    )
}

/// Runs the turn, then posts the reply (or the failure) to `url`; both audited.
async fn reply_later(app: Arc<App>, settings: ChannelSettings, inbound: Inbound, url: String) {
    let answer = run_turn(&app, &settings, inbound.text.clone()).await;
    let (reply, error) = match &answer {
        Ok(text) => (Some(text.as_str()), None),
        Err(err) => {
            let failed = loop_error(err.clone());
            (
                None,
                Some(json!({ "code": failed.code, "message": failed.message })),
            )
        }
    };
    let body = ReplyBody {
        channel: &settings.name,
        delivery: &inbound.delivery,
        reply,
        error,
    };
    let secret = {
        let worker = app.clone();
        let name = settings.name.clone();
        tokio::task::spawn_blocking(move || worker.gateway.channels.resolve(&name))
            .await
            .unwrap_or_else(|_| Err(ChannelError::Reply("the secret could not be read".into())))
    };
    let now = app.services.clock.now().unix_timestamp();
    let posted = match secret {
        Ok((_, secret)) => {
            webhook::post_reply(&url, settings.reply_timeout, &secret, &body, now).await
        }
        Err(err) => Err(err),
    };
    let (outcome, details) = match &posted {
        Ok(status) => (
            if answer.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            json!({ "delivery": inbound.delivery, "status": status, "answered": answer.is_ok() }),
        ),
        Err(err) => (
            Outcome::Failure,
            json!({ "delivery": inbound.delivery, "error": err.to_string(), "answered": answer.is_ok() }),
        ),
    };
    app.audit().record_or_log(
        AuditEvent::new("webhook.reply")
            .actor(format!("channel:{}", settings.name))
            .target(settings.name.clone())
            .outcome(outcome)
            .details(details),
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::clock::SystemClock;
    use crate::config::testing::local_gateway;

    #[test]
    fn a_configured_channel_whose_owner_does_not_exist_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let config = local_gateway(
            &dir.path().join("data"),
            "[[channels]]\nname = \"ci\"\nkind = \"webhook\"\nagent = \"default\"\nowner = \"ghost\"\nsecret = \"0123456789abcdef0123456789abcdef01\"",
        );
        let err = App::open(config, Arc::new(SystemClock), None).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("channels.0.owner"), "{message}");
        assert!(message.contains("ghost"), "{message}");
    }
}
