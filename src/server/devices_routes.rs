//! `/api/v1/devices`: the paired phones (list, rename, revoke, approve requested scopes).
//!
//! An admin sees and manages every device; another caller only the devices that act
//! for it; a paired device only itself (a phone must not revoke its owner's other
//! phones). Revoking ends the device's tokens at once, and its open WebSockets at their
//! next credential check (see `server::ws`). The decisions live in `auth::paired`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use http::StatusCode;
use serde::Deserialize;

use crate::audit::{AuditEvent, Outcome};
use crate::auth::paired::PairedDevice;
use crate::auth::scopes::Scope;
use crate::auth::{Principal, Via};
use crate::server::api::Api;
use crate::server::auth::{Access, Admin, Caller, ClientIp};
use crate::server::error::{ApiError, ErrorCode};
use crate::server::json::JsonBody;
use crate::server::state::App;

pub fn api() -> Api {
    Api::new()
        .route("/api/v1/devices", Access::Authenticated, get(list))
        .route(
            "/api/v1/devices/{id}",
            Access::Authenticated,
            patch(rename).delete(revoke),
        )
        .route(
            "/api/v1/devices/{id}/approve-scopes",
            Access::Scope(Scope::Admin),
            post(approve_scopes),
        )
}

/// The operations of these routes, for the OpenAPI document (`server::openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(list, rename, revoke, approve_scopes))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// Whether `principal` may see and manage `device`.
fn may_manage(principal: &Principal, device: &PairedDevice) -> bool {
    match &principal.via {
        Via::PairedDevice { id } => *id == device.id,
        _ => principal.allows(Scope::Admin) || principal.username == device.owner,
    }
}

/// The device `id` if the caller may manage it; "not found" otherwise, so ids cannot
/// be probed.
fn device_for(app: &App, caller: &Principal, id: &str) -> Result<PairedDevice, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no such paired device",
        )
    };
    let device = app.services.auth.paired.get(id).map_err(|_| not_found())?;
    if may_manage(caller, &device) {
        Ok(device)
    } else {
        Err(not_found())
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/devices",
    tag = "devices",
    summary = "The paired devices the caller may manage",
    responses((status = 200, description = "Success", body = [Object]))
)]
async fn list(State(app): State<Arc<App>>, caller: Caller) -> Result<Response, ApiError> {
    let devices: Vec<PairedDevice> = app
        .services
        .auth
        .paired
        .list()?
        .into_iter()
        .filter(|d| may_manage(&caller, d))
        .collect();
    Ok(Json(devices).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

#[utoipa::path(
    patch,
    path = "/api/v1/devices/{id}",
    tag = "devices",
    summary = "Rename a paired device",
    params(("id" = String, Path, description = "The device id")),
    request_body(content = Rename, content_type = "application/json"),
    responses((status = 200, description = "The device", body = Object), (status = 404, description = "Not found", body = Object))
)]
async fn rename(
    State(app): State<Arc<App>>,
    caller: Caller,
    ip: ClientIp,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Rename>,
) -> Result<Response, ApiError> {
    device_for(&app, &caller, &id)?;
    let device = app.services.auth.paired.rename(&id, &body.name)?;
    app.audit().record_or_log(
        AuditEvent::new("device.rename")
            .actor(caller.actor())
            .target(id)
            .source_ip(Some(ip.0))
            .details(serde_json::json!({ "name": device.name })),
    );
    Ok(Json(device).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/devices/{id}",
    tag = "devices",
    summary = "Revoke a paired device and its tokens",
    params(("id" = String, Path, description = "The device id")),
    responses((status = 200, description = "Revoked", body = Object), (status = 204, description = "Revoked"), (status = 404, description = "Not found", body = Object))
)]
async fn revoke(
    State(app): State<Arc<App>>,
    caller: Caller,
    ip: ClientIp,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    device_for(&app, &caller, &id)?;
    let device = app.services.auth.paired.revoke(&id)?;
    app.audit().record_or_log(
        AuditEvent::new("device.revoke")
            .actor(caller.actor())
            .target(id)
            .source_ip(Some(ip.0))
            .outcome(Outcome::Success),
    );
    Ok(Json(device).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/devices/{id}/approve-scopes",
    tag = "devices",
    summary = "Grant a device the scopes it asked for",
    params(("id" = String, Path, description = "The device id")),
    responses((status = 200, description = "The device", body = Object), (status = 404, description = "Not found", body = Object))
)]
async fn approve_scopes(
    State(app): State<Arc<App>>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let device = app.services.auth.paired.approve_scopes(&id)?;
    app.audit().record_or_log(
        AuditEvent::new("device.approve_scopes")
            .actor(admin.actor())
            .target(id)
            .details(serde_json::json!({ "scopes": device.scopes })),
    );
    Ok(Json(device).into_response())
}
