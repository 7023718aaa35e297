//! Approvals over REST: `GET /api/v1/approvals?state=pending|resolved|all` lists what
//! the caller may answer (their own requests; every request for admins), and
//! `POST /api/v1/approvals/{id}` answers one. The same broker serves `/ws`, so the
//! first answer from either wins.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::auth::scopes::Scope;
use crate::server::api::Api;
use crate::server::auth::{Access, Caller};
use crate::server::error::{ApiError, ErrorCode};
use crate::server::json::JsonBody;
use crate::server::state::App;
use crate::server::ws::{request_message, resolved_message, responder_of};

pub fn api() -> Api {
    Api::new()
        .route(
            "/api/v1/approvals",
            Access::Scope(Scope::ChatRead),
            get(list),
        )
        .route(
            "/api/v1/approvals/{id}",
            Access::Scope(Scope::ChatWrite),
            post(respond),
        )
}

/// The operations of these routes, for the OpenAPI document (`server::openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(list, respond))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    #[serde(default)]
    state: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/approvals",
    tag = "approvals",
    summary = "Tool calls waiting for (or given) the caller's approval",
    params(ListQuery),
    responses((status = 200, description = "Success", body = Object))
)]
async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            e.body_text(),
        )
    })?;
    let responder = responder_of(&caller);
    let state = query.state.as_deref().unwrap_or("pending");
    let pending = || {
        app.approvals
            .pending_for(&responder)
            .iter()
            .map(|r| request_message(r))
            .collect::<Vec<_>>()
    };
    let resolved = || {
        app.approvals
            .resolved_for(&responder)
            .iter()
            .map(|r| resolved_message(r))
            .collect::<Vec<_>>()
    };
    let body = match state {
        "pending" => json!({ "pending": pending() }),
        "resolved" => json!({ "resolved": resolved() }),
        "all" => json!({ "pending": pending(), "resolved": resolved() }),
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                format!(
                    "unknown state {:?}: use pending, resolved or all",
                    other.chars().take(32).collect::<String>()
                ),
            ));
        }
    };
    Ok(Json(body).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Answer {
    allow: bool,
    #[serde(default)]
    remember: bool,
    #[serde(default)]
    input_hash: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/approvals/{id}",
    tag = "approvals",
    summary = "Allow or deny a waiting tool call",
    params(("id" = String, Path, description = "The approval id")),
    request_body(content = Answer, content_type = "application/json"),
    responses((status = 200, description = "The resolved approval", body = Object), (status = 404, description = "Not found", body = Object), (status = 409, description = "Already resolved", body = Object))
)]
async fn respond(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(answer): JsonBody<Answer>,
) -> Result<Response, ApiError> {
    let responder = responder_of(&caller);
    let resolved = app.approvals.respond(
        app.audit(),
        &id,
        &responder,
        answer.allow,
        answer.remember,
        answer.input_hash.as_deref(),
    )?;
    Ok(Json(resolved_message(&resolved)).into_response())
}
