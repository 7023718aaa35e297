//! Usage over REST: `GET /api/v1/usage?from=YYYY-MM-DD&to=YYYY-MM-DD` answers the
//! caller's own rows; an admin may add `user=NAME` for one user's or `all=true` for
//! everyone's. Anyone else asking for another user's rows is refused.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::auth::scopes::Scope;
use crate::gateway::usage::{UsageFilter, parse_day};
use crate::server::api::Api;
use crate::server::auth::{Access, Caller};
use crate::server::chat_routes::{blocking, query};
use crate::server::error::{ApiError, ErrorCode};
use crate::server::state::App;

pub fn api() -> Api {
    Api::new().route("/api/v1/usage", Access::Scope(Scope::ChatRead), get(usage))
}

/// The operations of these routes, for the OpenAPI document (`server::openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(usage))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct UsageQuery {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    all: bool,
}

#[utoipa::path(
    get,
    path = "/api/v1/usage",
    tag = "usage",
    summary = "Token usage by day, model and token",
    params(UsageQuery),
    responses((status = 200, description = "Success", body = Object))
)]
async fn usage(
    State(app): State<Arc<App>>,
    caller: Caller,
    asked: Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let asked = query(asked)?;
    let admin = caller.allows(Scope::Admin);
    let user = match (asked.all, asked.user) {
        (true, Some(_)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                "give user or all, not both",
            ));
        }
        (false, None) => Some(caller.username.clone()),
        (false, Some(user)) if user == caller.username => Some(user),
        _ if !admin => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "only admins may read other users' usage",
            ));
        }
        (true, None) => None,
        (false, Some(user)) => Some(user),
    };
    let filter = UsageFilter {
        user,
        from: asked.from.as_deref().map(parse_day).transpose()?,
        to: asked.to.as_deref().map(parse_day).transpose()?,
    };
    let rows = blocking(move || Ok(app.gateway.usage.query(&filter)?)).await?;
    let sum = |field: fn(&crate::gateway::usage::UsageRow) -> u64| {
        rows.iter().map(field).fold(0u64, u64::saturating_add)
    };
    let totals = json!({
        "requests": sum(|r| r.requests),
        "prompt_tokens": sum(|r| r.prompt_tokens),
        "completion_tokens": sum(|r| r.completion_tokens),
    });
    Ok(Json(json!({ "rows": rows, "totals": totals })).into_response())
}
