//! Providers over REST: `GET /api/v1/providers` and `/api/v1/providers/{name}`
//! (`config:read`) show them with where each key comes from and a hint; `PUT /api/v1/providers/{name}` with
//! `{"api_key": "..."}` and `DELETE` (`config:write`) set and remove the key kept sealed
//! in the store. A key is never answered, never echoed in an error and never audited:
//! the body is parsed here so that no parser message can quote it.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::auth::scopes::Scope;
use crate::gateway::upstreams::UpstreamsError;
use crate::secret::Secret;
use crate::server::api::Api;
use crate::server::auth::{Access, Caller, ClientIp};
use crate::server::chat_routes::blocking;
use crate::server::error::{ApiError, ErrorCode};
use crate::server::state::App;

pub fn api() -> Api {
    Api::new()
        .route(
            "/api/v1/providers",
            Access::Scope(Scope::ConfigRead),
            get(list),
        )
        .route(
            "/api/v1/providers/{name}",
            Access::Scope(Scope::ConfigWrite),
            put(set_key).merge(delete(remove_key)),
        )
        .route_method(
            Method::GET,
            "/api/v1/providers/{name}",
            Access::Scope(Scope::ConfigRead),
            get(read),
        )
}

/// The operations of these routes, for the OpenAPI document (`server::openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(list, read, set_key, remove_key))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    #[schema(value_type = String)]
    api_key: Secret,
}

impl From<UpstreamsError> for ApiError {
    fn from(err: UpstreamsError) -> Self {
        match err {
            UpstreamsError::Unknown(_) => {
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, err.to_string())
            }
            UpstreamsError::BadKey(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                err.to_string(),
            ),
            UpstreamsError::Secrets(err) => crate::error::Error::Secrets(err).into(),
            UpstreamsError::Provider(_) => {
                tracing::error!(error = %err, "provider request failed");
                ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/providers",
    tag = "providers",
    summary = "The configured LLM providers and whether each has a key",
    responses((status = 200, description = "Success", body = Object))
)]
async fn list(State(app): State<Arc<App>>, _caller: Caller) -> Result<Response, ApiError> {
    let providers = blocking(move || Ok(app.gateway.upstreams.list()?)).await?;
    Ok(Json(json!({ "providers": providers })).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/providers/{name}",
    tag = "providers",
    summary = "One provider (never its key)",
    params(("name" = String, Path, description = "The provider name")),
    responses((status = 200, description = "Success", body = Object), (status = 404, description = "Not found", body = Object))
)]
async fn read(
    State(app): State<Arc<App>>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let providers = blocking(move || Ok(app.gateway.upstreams.list()?)).await?;
    providers
        .into_iter()
        .find(|p| p.name == name)
        .map(|p| Json(p).into_response())
        .ok_or_else(|| UpstreamsError::Unknown(name).into())
}

const SHAPE: &str = "the body must be a JSON object {\"api_key\": \"...\"} and nothing else";

/// The body as `{"api_key": "..."}`, with messages that never quote what was sent.
fn key_body(body: &[u8]) -> Result<Secret, ApiError> {
    // serde reads a struct from an array too; only the documented object is accepted.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            SHAPE,
        ));
    }
    serde_json::from_slice::<KeyBody>(body)
        .map(|body| body.api_key)
        .map_err(|err| {
            let message = if err.is_data() {
                SHAPE
            } else {
                "the body is not valid JSON"
            };
            let code = if err.is_data() {
                ErrorCode::InvalidRequest
            } else {
                ErrorCode::InvalidJson
            };
            ApiError::new(StatusCode::BAD_REQUEST, code, message)
        })
}

#[utoipa::path(
    put,
    path = "/api/v1/providers/{name}",
    tag = "providers",
    summary = "Set or replace a provider's API key (sealed at rest)",
    params(("name" = String, Path, description = "The provider name")),
    request_body(content = KeyBody, content_type = "application/json"),
    responses((status = 204, description = "Stored"), (status = 404, description = "Not found", body = Object))
)]
async fn set_key(
    State(app): State<Arc<App>>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = key_body(&body)?;
    blocking(move || {
        app.gateway.upstreams.set_key(&name, &key)?;
        app.audit_change("provider.key_set", caller.actor(), ip, &name);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/providers/{name}",
    tag = "providers",
    summary = "Remove a provider's stored key",
    params(("name" = String, Path, description = "The provider name")),
    responses((status = 204, description = "Removed"), (status = 404, description = "Not found", body = Object))
)]
async fn remove_key(
    State(app): State<Arc<App>>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let removed = blocking(move || {
        let removed = app.gateway.upstreams.remove_key(&name)?;
        if removed {
            app.audit_change("provider.key_remove", caller.actor(), ip, &name);
        }
        Ok(removed)
    })
    .await?;
    if removed {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "this provider has no key set over the API; its config key (if any) applies",
        ))
    }
}
