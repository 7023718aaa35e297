//! Chats over REST: `/api/v1/chats` (list `chat:read`, create `chat:write`),
//! `/api/v1/chats/{id}` (read with a page of messages `chat:read`, delete
//! `chat:write`) and `/api/v1/chats/{id}/messages` (page `chat:read`, post
//! `chat:write`). Every read of messages goes through `gateway::chats`, whose one
//! visibility rule decides what the caller sees; these handlers only turn requests into
//! calls and answers. A chat the caller may not open is "not found", so ids cannot be
//! probed.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::audit::AuditEvent;
use crate::auth::Principal;
use crate::auth::scopes::Scope;
use crate::gateway::chats::{NewChat, Viewer, Visibility};
use crate::server::api::Api;
use crate::server::auth::{Access, Caller, ClientIp};
use crate::server::error::{ApiError, ErrorCode};
use crate::server::json::JsonBody;
use crate::server::state::App;

pub fn api() -> Api {
    Api::new()
        .route(
            "/api/v1/chats",
            Access::Scope(Scope::ChatWrite),
            post(create),
        )
        .route_method(
            Method::GET,
            "/api/v1/chats",
            Access::Scope(Scope::ChatRead),
            get(list),
        )
        .route(
            "/api/v1/chats/{id}",
            Access::Scope(Scope::ChatWrite),
            delete(remove),
        )
        .route_method(
            Method::GET,
            "/api/v1/chats/{id}",
            Access::Scope(Scope::ChatRead),
            get(read),
        )
        .route(
            "/api/v1/chats/{id}/messages",
            Access::Scope(Scope::ChatWrite),
            post(post_message),
        )
        .route_method(
            Method::GET,
            "/api/v1/chats/{id}/messages",
            Access::Scope(Scope::ChatRead),
            get(messages),
        )
}

/// The operations of these routes, for the OpenAPI document (`server::openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(create, list, read, messages, remove, post_message))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// The person a principal reads as.
pub fn viewer_of(principal: &Principal) -> Viewer {
    Viewer {
        user: principal.username.clone(),
        device: None,
        admin: principal.allows(Scope::Admin),
    }
}

/// Runs store work (sled, fsync) off the async workers.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|_| Err(ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR)))
}

/// A query's own error, as a clear 400.
pub(super) fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(q)| q).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            e.body_text(),
        )
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateChat {
    title: String,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    members: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/chats",
    tag = "chats",
    summary = "Create a chat",
    request_body(content = CreateChat, content_type = "application/json"),
    responses((status = 201, description = "The chat", body = Object))
)]
async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateChat>,
) -> Result<Response, ApiError> {
    let owner = caller.username.clone();
    let chat = blocking(move || {
        let gateway = &app.gateway;
        let agent = match body.agent {
            Some(name) => gateway.agents.get(&name)?.name,
            None => app
                .config()
                .agents
                .first()
                .map(|a| a.name.clone())
                .unwrap_or_default(),
        };
        for (index, member) in body.members.iter().enumerate() {
            let known = app.services.auth.accounts.get(member).ok().flatten();
            if known.is_none() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidRequest,
                    format!(
                        "members.{index}: no user {:?}",
                        member.chars().take(40).collect::<String>()
                    ),
                ));
            }
        }
        let new = NewChat {
            title: body.title,
            agent,
            members: body.members,
        };
        Ok(gateway.chats.create(&owner, new)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(chat)).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/chats",
    tag = "chats",
    summary = "The caller's chats, a page at a time",
    params(PageQuery),
    responses((status = 200, description = "Success", body = Object))
)]
async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let page = query(page)?;
    let viewer = viewer_of(&caller);
    let found = blocking(move || {
        Ok(app
            .gateway
            .chats
            .list(&viewer, page.cursor.as_deref(), page.limit)?)
    })
    .await?;
    Ok(Json(json!({ "chats": found.items, "next": found.next })).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/chats/{id}",
    tag = "chats",
    summary = "One chat",
    params(("id" = String, Path, description = "The chat id"), PageQuery),
    responses((status = 200, description = "Success", body = Object), (status = 404, description = "Not found", body = Object))
)]
async fn read(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let page = query(page)?;
    let viewer = viewer_of(&caller);
    let (chat, found) = blocking(move || {
        let chats = &app.gateway.chats;
        let chat = chats.get(&viewer, &id)?;
        let found = chats.history(&viewer, &id, page.cursor.as_deref(), page.limit)?;
        Ok((chat, found))
    })
    .await?;
    Ok(Json(json!({ "chat": chat, "messages": found.items, "next": found.next })).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/chats/{id}/messages",
    tag = "chats",
    summary = "A chat's messages the caller may see, a page at a time",
    params(("id" = String, Path, description = "The chat id"), PageQuery),
    responses((status = 200, description = "Success", body = Object), (status = 404, description = "Not found", body = Object))
)]
async fn messages(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let page = query(page)?;
    let viewer = viewer_of(&caller);
    let found = blocking(move || {
        Ok(app
            .gateway
            .chats
            .history(&viewer, &id, page.cursor.as_deref(), page.limit)?)
    })
    .await?;
    Ok(Json(json!({ "messages": found.items, "next": found.next })).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/chats/{id}",
    tag = "chats",
    summary = "Delete a chat",
    params(("id" = String, Path, description = "The chat id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found", body = Object))
)]
async fn remove(
    State(app): State<Arc<App>>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let viewer = viewer_of(&caller);
    let actor = caller.actor();
    blocking(move || {
        app.gateway.chats.delete(&viewer, &id)?;
        app.audit().record_or_log(
            AuditEvent::new("chat.delete")
                .actor(actor)
                .target(id)
                .source_ip(Some(ip)),
        );
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PostMessage {
    content: String,
    #[serde(default = "public")]
    #[schema(value_type = String)]
    visibility: Visibility,
}

fn public() -> Visibility {
    Visibility::Public
}

#[utoipa::path(
    post,
    path = "/api/v1/chats/{id}/messages",
    tag = "chats",
    summary = "Post a message (an agent chat answers over /ws)",
    params(("id" = String, Path, description = "The chat id")),
    request_body(content = PostMessage, content_type = "application/json"),
    responses((status = 201, description = "The message", body = Object), (status = 404, description = "Not found", body = Object))
)]
async fn post_message(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PostMessage>,
) -> Result<Response, ApiError> {
    let viewer = viewer_of(&caller);
    let message = blocking(move || {
        Ok(app
            .gateway
            .chats
            .post(&viewer, &id, &body.content, body.visibility)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(message)).into_response())
}
