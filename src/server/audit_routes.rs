//! HTTP routes of the audit log, for administrators: records filtered by actor, action
//! and time, the chain's verification, and the JSONL export (`audit export`'s format:
//! one record a line, then the seal line).
//!
//! The audit service reads, walks and seals; these handlers only translate, and never
//! write a record themselves except the one saying an export was taken.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use serde::Deserialize;
use serde_json::json;

use crate::audit::{AuditError, AuditEvent, AuditRecord};
use crate::auth::scopes::Scope;
use crate::server::api::Api;
use crate::server::auth::{Access, Admin, ClientIp};
use crate::server::error::{ApiError, ErrorCode};
use crate::server::state::App;

/// Records a list answers at most.
pub const MAX_RECORDS: usize = 1000;
/// Records a list answers when no limit is given.
const DEFAULT_RECORDS: usize = 200;
/// Longest filter value read.
const MAX_FILTER: usize = 128;

pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(list, verify, export))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

pub fn api() -> Api {
    Api::new()
        .route("/api/v1/audit", Access::Scope(Scope::Admin), get(list))
        .route(
            "/api/v1/audit/verify",
            Access::Scope(Scope::Admin),
            get(verify),
        )
        .route(
            "/api/v1/audit/export",
            Access::Scope(Scope::Admin),
            get(export),
        )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// An RFC 3339 time or a duration back from now (`24h`).
    since: Option<String>,
    /// An action or a prefix ending in `.` or `*` (`auth.`).
    action: Option<String>,
    /// Records whose actor contains this text.
    actor: Option<String>,
    limit: Option<usize>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message)
}

async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    work: impl FnOnce(&App) -> Result<T, AuditError> + Send + 'static,
) -> Result<T, ApiError> {
    let app = app.clone();
    crate::server::chat_routes::blocking(move || {
        work(&app).map_err(|e| match e {
            AuditError::Query(message) => bad(message),
            other => ApiError::from(crate::error::Error::from(other)),
        })
    })
    .await
}

/// `GET /api/v1/audit?since=&action=&actor=&limit=`: newest last, at most `limit`.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    summary = "Audit records filtered by actor, action and time",
    params(ListQuery),
    responses((status = 200, description = "`{\"records\": [...]}`, oldest first", body = Object))
)]
async fn list(
    State(app): State<Arc<App>>,
    _: Admin,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| bad(e.body_text()))?;
    for (name, value) in [
        ("since", &query.since),
        ("action", &query.action),
        ("actor", &query.actor),
    ] {
        if value.as_ref().is_some_and(|v| v.len() > MAX_FILTER) {
            return Err(bad(format!(
                "{name} is longer than {MAX_FILTER} characters"
            )));
        }
    }
    let limit = query.limit.unwrap_or(DEFAULT_RECORDS);
    if limit == 0 || limit > MAX_RECORDS {
        return Err(bad(format!("limit must be between 1 and {MAX_RECORDS}")));
    }
    let filter = crate::audit::Query {
        since: query.since.filter(|s| !s.trim().is_empty()),
        // `auth.` means every `auth.*` action, as the dashboard's filter offers it.
        action: query
            .action
            .filter(|s| !s.trim().is_empty())
            .map(|a| if a.ends_with('.') { format!("{a}*") } else { a }),
        limit: None,
    };
    let actor = query.actor.filter(|s| !s.trim().is_empty());
    let records = blocking(&app, move |app| {
        let mut records: Vec<AuditRecord> = app.audit().list(&filter)?;
        if let Some(actor) = &actor {
            records.retain(|r| r.actor.contains(actor.as_str()));
        }
        let skip = records.len().saturating_sub(limit);
        records.drain(..skip);
        Ok(records)
    })
    .await?;
    Ok(Json(json!({ "records": records })).into_response())
}

/// `GET /api/v1/audit/verify`: `{"ok": true, ...}` when the chain holds, else `{"ok":
/// false, "seq", "reason"}` (a broken chain is a finding, not a failed request).
#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    tag = "audit",
    summary = "Verify the audit log's hash chain",
    responses((status = 200, description = "`ok` true when the chain holds, else the broken record", body = Object))
)]
async fn verify(State(app): State<Arc<App>>, _: Admin) -> Result<Response, ApiError> {
    let worker = app.clone();
    let result = tokio::task::spawn_blocking(move || worker.audit().verify())
        .await
        .map_err(|_| ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR))?;
    match result {
        Ok(verified) => {
            let mut body = serde_json::to_value(verified).unwrap_or_default();
            if let Some(object) = body.as_object_mut() {
                object.insert("ok".into(), json!(true));
            }
            Ok(Json(body).into_response())
        }
        Err(AuditError::Broken { seq, reason }) => {
            Ok(Json(json!({ "ok": false, "seq": seq, "reason": reason })).into_response())
        }
        Err(err) => Err(crate::error::Error::from(err).into()),
    }
}

/// `GET /api/v1/audit/export`: every record as JSONL, then the seal line.
#[utoipa::path(
    get,
    path = "/api/v1/audit/export",
    tag = "audit",
    summary = "Export the audit log as JSON Lines",
    responses((status = 200, description = "One record a line, then the seal line", body = String, content_type = "application/x-ndjson"))
)]
async fn export(
    State(app): State<Arc<App>>,
    caller: Admin,
    ip: ClientIp,
) -> Result<Response, ApiError> {
    let export = blocking(&app, |app| app.audit().export()).await?;
    let mut text = String::new();
    for record in &export.records {
        text.push_str(&serde_json::to_string(record).unwrap_or_default());
        text.push('\n');
    }
    text.push_str(&serde_json::to_string(&export.seal).unwrap_or_default());
    text.push('\n');
    app.audit().record_or_log(
        AuditEvent::new("audit.exported")
            .actor(caller.actor())
            .source_ip(Some(ip.0))
            .details(json!({ "records": export.records.len() })),
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"aisopod-audit.jsonl\"",
            ),
        ],
        text,
    )
        .into_response())
}
