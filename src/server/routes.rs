//! Routes that need no authentication: liveness, readiness and the device CA.
//!
//! Later issues add their routers (auth, users, pairing, chat, ...) beside these in
//! `server::router`; nothing here reads or changes state.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};

use crate::server::error::{ApiError, ErrorCode};
use crate::server::state::App;

/// The operations of these routes, for the OpenAPI document (`server::openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(health, ready, ca_certificate))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// `GET /health`: the process is alive and serving.
#[utoipa::path(
    get,
    path = "/health",
    tag = "meta",
    summary = "Liveness: the process serves",
    responses((status = 200, description = "Alive", body = Object))
)]
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /ready`: the store answers, a certificate is loaded and background tasks run.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "meta",
    summary = "Readiness: store, certificate and background tasks",
    responses((status = 200, description = "Ready", body = Object), (status = 503, description = "Not ready; `checks` names what fails", body = Object))
)]
pub async fn ready(State(app): State<Arc<App>>) -> Response {
    let worker = app.clone();
    let (ready, checks) = match tokio::task::spawn_blocking(move || worker.readiness()).await {
        Ok(result) => result,
        Err(_) => (
            false,
            serde_json::json!({ "store": "failing: readiness check crashed" }),
        ),
    };
    if ready {
        Json(serde_json::json!({ "status": "ready", "checks": checks })).into_response()
    } else {
        let failing: Vec<String> = checks
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(name, value)| {
                value
                    .as_str()
                    .filter(|v| v.starts_with("failing"))
                    .map(|v| format!("{name}: {v}"))
            })
            .collect();
        let error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotReady,
            failing.join("; "),
        );
        let mut body = error.body();
        if let Some(object) = body.as_object_mut() {
            object.insert("checks".into(), checks);
        }
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// `GET /ca.crt`: the device CA certificate, so phones and browsers can trust it.
#[utoipa::path(
    get,
    path = "/ca.crt",
    tag = "meta",
    summary = "The device CA certificate (PEM)",
    responses((status = 200, description = "The certificate", body = String, content_type = "application/x-x509-ca-cert"), (status = 404, description = "TLS is off or uses the operator's certificate", body = Object))
)]
pub async fn ca_certificate(State(app): State<Arc<App>>) -> Response {
    match app.tls.as_ref().and_then(|tls| tls.ca_pem()) {
        Some(pem) => (
            [
                (header::CONTENT_TYPE, "application/x-x509-ca-cert"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"aisopod-ca.crt\"",
                ),
            ],
            pem,
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "this gateway has no device CA (TLS is off or uses the operator's certificate)",
        )
        .into_response(),
    }
}
