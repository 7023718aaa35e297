//! `GET /api/v1/security/audit` (`admin`): the security audit's report, the same findings
//! `aisopod security audit --json` prints. Over HTTP the audit never repairs anything
//! (`--fix` is the console's); each run is audited. The HTTP answer also names the
//! gateway's security mode (`local` or `strict`), which the dashboard's settings show.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::auth::scopes::Scope;
use crate::config::SecurityMode;
use crate::server::api::Api;
use crate::server::auth::{Access, Admin, ClientIp};
use crate::server::chat_routes::blocking;
use crate::server::error::ApiError;
use crate::server::state::App;

pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(audit))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

pub fn api() -> Api {
    Api::new().route(
        "/api/v1/security/audit",
        Access::Scope(Scope::Admin),
        get(audit),
    )
}

/// The report as the console prints it, with the mode the gateway runs in.
#[derive(serde::Serialize)]
struct Answer {
    #[serde(flatten)]
    report: crate::security_audit::Report,
    security_mode: SecurityMode,
}

#[utoipa::path(
    get,
    path = "/api/v1/security/audit",
    tag = "security",
    summary = "The security audit's findings",
    responses((status = 200, description = "`{version, generated, summary, findings: [{id, severity, title, evidence, fix}], fixed, security_mode}`; `security_mode` is `local` or `strict`", body = Object))
)]
async fn audit(
    State(app): State<Arc<App>>,
    admin: Admin,
    ClientIp(ip): ClientIp,
) -> Result<Response, ApiError> {
    let mode = app.config().security.mode;
    let report = blocking(move || {
        let services = &app.services;
        let sources = crate::security_audit::Sources {
            config: &services.config,
            auth: &services.auth,
            audit: &services.audit,
            secrets: &services.secrets,
            now: services.clock.now(),
        };
        let report = crate::security_audit::run(
            sources,
            app.sandbox.as_ref(),
            &app.gateway.channels,
            false,
        )?;
        app.audit_change("security.audit", admin.actor(), ip, "");
        Ok(report)
    })
    .await?;
    Ok(Json(Answer {
        report,
        security_mode: mode,
    })
    .into_response())
}
