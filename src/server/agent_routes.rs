//! Agents over REST: `/api/v1/agents` (list `agent:read`, create `agent:manage`) and
//! `/api/v1/agents/{name}` (read `agent:read`, replace and delete `agent:manage`).
//! Agents from the config file are listed but read-only here. Every change is audited.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use http::{Method, StatusCode};
use serde_json::json;

use crate::auth::scopes::Scope;
use crate::gateway::agents::AgentSpec;
use crate::server::api::Api;
use crate::server::auth::{Access, Caller, ClientIp};
use crate::server::chat_routes::blocking;
use crate::server::error::ApiError;
use crate::server::json::JsonBody;
use crate::server::state::App;

pub fn api() -> Api {
    Api::new()
        .route(
            "/api/v1/agents",
            Access::Scope(Scope::AgentManage),
            post(create),
        )
        .route_method(
            Method::GET,
            "/api/v1/agents",
            Access::Scope(Scope::AgentRead),
            get(list),
        )
        .route(
            "/api/v1/agents/{name}",
            Access::Scope(Scope::AgentManage),
            put(replace).merge(delete(remove)),
        )
        .route_method(
            Method::GET,
            "/api/v1/agents/{name}",
            Access::Scope(Scope::AgentRead),
            get(read),
        )
}

/// The operations of these routes, for the OpenAPI document (`server::openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(list, read, create, replace, remove))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

#[utoipa::path(
    get,
    path = "/api/v1/agents",
    tag = "agents",
    summary = "List the agents",
    responses((status = 200, description = "Success", body = Object))
)]
async fn list(State(app): State<Arc<App>>, _caller: Caller) -> Result<Response, ApiError> {
    let agents = blocking(move || Ok(app.gateway.agents.list()?)).await?;
    Ok(Json(json!({ "agents": agents })).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/agents/{name}",
    tag = "agents",
    summary = "One agent",
    params(("name" = String, Path, description = "The agent name")),
    responses((status = 200, description = "Success", body = Object), (status = 404, description = "Not found", body = Object))
)]
async fn read(
    State(app): State<Arc<App>>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let agent = blocking(move || Ok(app.gateway.agents.get(&name)?)).await?;
    Ok(Json(agent).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/agents",
    tag = "agents",
    summary = "Create an agent",
    request_body(content = Object, content_type = "application/json"),
    responses((status = 201, description = "The agent", body = Object), (status = 409, description = "The name is taken", body = Object))
)]
async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    JsonBody(spec): JsonBody<AgentSpec>,
) -> Result<Response, ApiError> {
    let agent = blocking(move || {
        let agent = app.gateway.agents.create(spec)?;
        app.audit_change("agent.create", caller.actor(), ip, &agent.name);
        Ok(agent)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(agent)).into_response())
}

#[utoipa::path(
    put,
    path = "/api/v1/agents/{name}",
    tag = "agents",
    summary = "Replace an agent",
    params(("name" = String, Path, description = "The agent name")),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, description = "The agent", body = Object), (status = 404, description = "Not found", body = Object))
)]
async fn replace(
    State(app): State<Arc<App>>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
    JsonBody(spec): JsonBody<AgentSpec>,
) -> Result<Response, ApiError> {
    let agent = blocking(move || {
        let agent = app.gateway.agents.update(&name, spec)?;
        app.audit_change("agent.update", caller.actor(), ip, &agent.name);
        Ok(agent)
    })
    .await?;
    Ok(Json(agent).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/agents/{name}",
    tag = "agents",
    summary = "Delete an agent",
    params(("name" = String, Path, description = "The agent name")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found", body = Object))
)]
async fn remove(
    State(app): State<Arc<App>>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        app.gateway.agents.delete(&name)?;
        app.audit_change("agent.delete", caller.actor(), ip, &name);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
