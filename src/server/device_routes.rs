//! HTTP routes of the device authorization grant (RFC 8628): the device code and token
//! endpoints, and the server-rendered `/device` page where a person approves a code.
//!
//! The token endpoint answers errors in OAuth's own shape (`{"error":
//! "authorization_pending", "error_description": ...}`, status 400) rather than the
//! API's, because that is what standard OAuth clients parse. Both endpoints accept
//! form-encoded bodies (as RFC 8628 specifies) and JSON.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, Query, Request, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, Outcome};
use crate::auth::device::{DeviceError, normalize_user_code};
use crate::auth::scopes::Scopes;
use crate::auth::sessions::SessionError;
use crate::auth::users::AccountError;
use crate::secret::Secret;
use crate::server::api::Api;
use crate::server::auth::{Access, ClientIp};
use crate::server::auth_routes::{known_client, require_accounts};
use crate::server::error::{ApiError, ErrorCode};
use crate::server::json::JsonBody;
use crate::server::state::App;

pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub fn api() -> Api {
    Api::new()
        .route("/auth/device/code", Access::Credentials, post(device_code))
        .route("/auth/token", Access::Credentials, post(token))
        .route(
            "/device",
            Access::Credentials,
            get(device_page).post(device_decide),
        )
}

/// The operations of these routes, for the OpenAPI document (`server::openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(device_code, token, device_page, device_decide))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// A body that is either form-encoded or JSON.
struct Params<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            axum::Form::<T>::from_request(request, state)
                .await
                .map(|axum::Form(v)| Params(v))
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        ErrorCode::InvalidRequest,
                        e.body_text(),
                    )
                })
        } else {
            JsonBody::<T>::from_request(request, state)
                .await
                .map(|JsonBody(v)| Params(v))
        }
    }
}

/// An error in RFC 6749's shape (section 5.2), which OAuth clients parse.
#[derive(Serialize, utoipa::ToSchema)]
struct OAuthError<'a> {
    /// `invalid_request`, `invalid_grant`, `authorization_pending`, ...
    error: &'a str,
    error_description: &'a str,
}

fn oauth_error(code: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(OAuthError {
            error: code,
            error_description: description,
        }),
    )
        .into_response()
}

/// A body the token endpoints cannot read or whose fields have the wrong types: RFC
/// 6749's 400 `invalid_request`, which OAuth clients understand (a body over the size
/// limit keeps its 413).
fn oauth_rejection(error: ApiError) -> Response {
    if matches!(
        error.status,
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
    ) {
        oauth_error("invalid_request", &error.message)
    } else {
        error.into_response()
    }
}

/// Where the client reached us: the URI's authority (HTTP/2 `:authority`, or an
/// absolute-form HTTP/1.1 target), else the `Host` header (HTTP/1.1 has no other).
fn request_authority<'a>(uri: &'a http::Uri, headers: &'a http::HeaderMap) -> Option<&'a str> {
    uri.authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
}

fn public_base(app: &App, request_host: Option<&str>) -> String {
    if let Some(url) = &app.config().server.public_url {
        return url.clone();
    }
    let host = request_host.and_then(crate::server::host::RequestHost::parse);
    let host = host.as_ref().map_or("localhost", |h| h.authority());
    format!("{}://{host}", app.config().scheme())
}

#[derive(Deserialize, utoipa::ToSchema)]
struct CodeRequest {
    client_id: Option<String>,
    scope: Option<String>,
}

#[utoipa::path(
    post,
    path = "/auth/device/code",
    tag = "device flow",
    summary = "RFC 8628: start a device authorization",
    request_body(content = CodeRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The device code, user code and verification URI", body = Object), (status = 400, description = "An RFC 6749 error", body = OAuthError))
)]
async fn device_code(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    uri: http::Uri,
    headers: http::HeaderMap,
    request: Result<Params<CodeRequest>, ApiError>,
) -> Response {
    let Params(request) = match request {
        Ok(params) => params,
        Err(error) => return oauth_rejection(error),
    };
    if let Err(error) = require_accounts(&app) {
        return error.into_response();
    }
    let client_id: String = request
        .client_id
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    if client_id.is_empty() {
        return oauth_error("invalid_request", "client_id is required");
    }
    let requested = match request
        .scope
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(scope) => match Scopes::parse_list(&scope.replace(' ', ",")) {
            Ok(scopes) => Some(scopes),
            Err(message) => return oauth_error("invalid_scope", &message),
        },
        None => None,
    };
    let source = app.limits.key(ip.0).addr();
    let started = match app
        .services
        .auth
        .device
        .start(&client_id, requested, source)
    {
        Ok(started) => started,
        Err(err @ DeviceError::SourceBusy(wait)) => {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                err.to_string(),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, http::HeaderValue::from(wait));
            return response;
        }
        Err(err) => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Busy,
                err.to_string(),
            )
            .into_response();
        }
    };
    let base = public_base(&app, request_authority(&uri, &headers));
    app.audit().record_or_log(
        AuditEvent::new("auth.device_code")
            .actor("anonymous")
            .target(client_id)
            .source_ip(Some(ip.0)),
    );
    Json(serde_json::json!({
        "device_code": started.device_code,
        "user_code": started.user_code,
        "verification_uri": format!("{base}/device"),
        "verification_uri_complete": format!("{base}/device?user_code={}", started.user_code),
        "expires_in": started.expires_in,
        "interval": started.interval,
    }))
    .into_response()
}

#[derive(Deserialize, utoipa::ToSchema)]
struct TokenRequest {
    grant_type: String,
    device_code: Option<String>,
    #[schema(value_type = Option<String>)]
    refresh_token: Option<Secret>,
}

#[utoipa::path(
    post,
    path = "/auth/token",
    tag = "device flow",
    summary = "RFC 8628 / RFC 6749 token endpoint (device code and refresh grants)",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Tokens", body = Object), (status = 400, description = "An RFC 6749 error, such as `authorization_pending`", body = OAuthError))
)]
async fn token(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    request: Result<Params<TokenRequest>, ApiError>,
) -> Response {
    let Params(request) = match request {
        Ok(params) => params,
        Err(error) => return oauth_rejection(error),
    };
    if let Err(error) = require_accounts(&app) {
        return error.into_response();
    }
    match request.grant_type.as_str() {
        DEVICE_GRANT => {
            let Some(device_code) = request.device_code else {
                return oauth_error("invalid_request", "device_code is required");
            };
            match app.services.auth.device.poll(&device_code) {
                Ok(approved) => {
                    let worker = app.clone();
                    let username = approved.username.clone();
                    let issued = tokio::task::spawn_blocking(move || {
                        let auth = &worker.services.auth;
                        let user = auth
                            .accounts
                            .get(&approved.username)?
                            .ok_or(SessionError::InvalidRefresh)?;
                        auth.sessions.login_scoped(&user, approved.scopes)
                    })
                    .await;
                    match issued {
                        Ok(Ok(pair)) => {
                            app.audit().record_or_log(
                                AuditEvent::new("auth.device_token")
                                    .actor(format!("user:{username}"))
                                    .source_ip(Some(ip.0)),
                            );
                            Json(pair).into_response()
                        }
                        _ => {
                            oauth_error("invalid_grant", "the approving account is no longer valid")
                        }
                    }
                }
                Err(poll) => oauth_error(&poll.to_string(), poll.description()),
            }
        }
        "refresh_token" => {
            let Some(refresh) = request.refresh_token else {
                return oauth_error("invalid_request", "refresh_token is required");
            };
            let worker = app.clone();
            match tokio::task::spawn_blocking(move || {
                worker.services.auth.sessions.refresh(&refresh)
            })
            .await
            {
                Ok(Ok((pair, _))) => Json(pair).into_response(),
                _ => oauth_error("invalid_grant", "the refresh token is invalid or expired"),
            }
        }
        _ => oauth_error(
            "unsupported_grant_type",
            "use urn:ietf:params:oauth:grant-type:device_code or refresh_token",
        ),
    }
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// A page in the dashboard's look: its stylesheet and icon from this build's assets, no
/// inline script or style (the server's CSP allows neither).
fn page(status: StatusCode, body: &str) -> Response {
    let css = crate::server::dashboard_routes::asset_url("app.css");
    let icon = crate::server::dashboard_routes::asset_url("icon.svg");
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"theme-color\" content=\"#14532d\">\
         <title>Approve a device · aisopod</title>\
         <link rel=\"icon\" href=\"{icon}\" type=\"image/svg+xml\">\
         <link rel=\"stylesheet\" href=\"{css}\"></head><body>\
         <header class=\"top\"><span class=\"brand\"><img src=\"{icon}\" alt=\"\" width=\"28\" height=\"28\"> aisopod</span></header>\
         <main id=\"device\"><h1>Approve a device</h1><div class=\"card\">{body}</div></main></body></html>"
    );
    (status, Html(html)).into_response()
}

/// A short outcome (`ok`) or refusal (`error`) as the dashboard shows them, with a way on.
fn outcome(status: StatusCode, kind: &str, message: &str) -> Response {
    let role = if kind == "error" { "alert" } else { "status" };
    let more = if kind == "error" {
        "<p><a href=\"/device\">Enter another code</a></p>"
    } else {
        ""
    };
    page(
        status,
        &format!(
            "<p class=\"msg {kind}\" role=\"{role}\" id=\"outcome\">{}</p>{more}",
            escape(message)
        ),
    )
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    user_code: Option<String>,
}

#[utoipa::path(
    get,
    path = "/device",
    tag = "device flow",
    summary = "The page where a person approves a device code",
    params(PageQuery),
    responses((status = 200, description = "The approval form", body = String, content_type = "text/html"))
)]
async fn device_page(State(app): State<Arc<App>>, Query(query): Query<PageQuery>) -> Response {
    let code = query.user_code.unwrap_or_default();
    page(StatusCode::OK, &approval_form(&app, &code, "", None))
}

/// What the program asks for, and the form to answer: shown first, and again after a
/// failed attempt with its error, so the user can simply try again.
fn approval_form(app: &App, code: &str, username: &str, error: Option<&str>) -> String {
    let code = normalize_user_code(code);
    let error = error
        .map(|e| format!("<p class=\"msg error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let detail = match app.services.auth.device.pending(&code) {
        Ok(pending) => format!(
            "<p id=\"asks\">The program <strong>{}</strong> asks to act for you{}.</p>",
            escape(&pending.client_id),
            pending
                .requested
                .map(|s| format!(" with the scopes <code>{}</code>", escape(&s.to_string())))
                .unwrap_or_default()
        ),
        Err(_) if code.is_empty() => {
            "<p class=\"muted\">Enter the code your device shows, then sign in to approve it.</p>"
                .to_string()
        }
        Err(_) => {
            "<p class=\"msg error\" role=\"alert\">That code is unknown or expired.</p>".to_string()
        }
    };
    let grouped = match (code.get(..4), code.get(4..)) {
        (Some(head), Some(tail)) if code.len() == 8 => format!("{head}-{tail}"),
        _ => code,
    };
    // The first empty field takes the focus, so a keyboard user starts typing at once.
    let (code_focus, user_focus, pass_focus) = match (grouped.is_empty(), username.is_empty()) {
        (true, _) => (" autofocus", "", ""),
        (false, true) => ("", " autofocus", ""),
        (false, false) => ("", "", " autofocus"),
    };
    format!(
        "{error}{detail}<form method=\"post\" action=\"/device\"><div class=\"stack\">\
         <label for=\"user-code\">Code <input id=\"user-code\" name=\"user_code\" value=\"{}\" autocomplete=\"off\" autocapitalize=\"characters\" spellcheck=\"false\" required{code_focus}></label>\
         <label for=\"username\">Username <input id=\"username\" name=\"username\" value=\"{}\" autocomplete=\"username\" autocapitalize=\"none\" required{user_focus}></label>\
         <label for=\"password\">Password <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required{pass_focus}></label>\
         <div class=\"row\"><button id=\"approve\" name=\"action\" value=\"approve\">Approve</button> \
         <button id=\"deny\" class=\"quiet\" name=\"action\" value=\"deny\">Deny</button></div>\
         </div></form>",
        escape(&grouped),
        escape(username)
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
struct Decision {
    user_code: String,
    username: String,
    #[schema(value_type = String)]
    password: Secret,
    action: String,
}

#[utoipa::path(
    post,
    path = "/device",
    tag = "device flow",
    summary = "Approve or deny a device code (the form of /device)",
    request_body(content = Decision, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The outcome, as a page", body = String, content_type = "text/html"),
        (status = 400, description = "A form that cannot be read (JSON) or answered (the page again)", content((String = "text/html"), (Object = "application/json")))
    )
)]
async fn device_decide(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    headers: http::HeaderMap,
    Params(decision): Params<Decision>,
) -> Response {
    let allow = match decision.action.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return outcome(StatusCode::BAD_REQUEST, "error", "Choose approve or deny."),
    };
    if decision.username.len() > 1024 || decision.password.len() > 1024 {
        return outcome(
            StatusCode::BAD_REQUEST,
            "error",
            "Username or password too long.",
        );
    }
    let auth = &app.services.auth;
    if auth.device.pending(&decision.user_code).is_err() {
        app.audit().record_or_log(
            AuditEvent::new("auth.device_decision")
                .actor("anonymous")
                .outcome(Outcome::Denied)
                .source_ip(Some(ip.0)),
        );
        return outcome(
            StatusCode::BAD_REQUEST,
            "error",
            "That code is unknown or expired.",
        );
    }
    let user = match auth
        .accounts
        .authenticate(
            &decision.username,
            decision.password,
            ip.0,
            known_client(&app, &headers, None).as_ref(),
        )
        .await
    {
        Ok(user) => user,
        Err(err) => {
            app.audit().record_or_log(
                AuditEvent::new("auth.device_decision")
                    .actor("anonymous")
                    .outcome(Outcome::Denied)
                    .source_ip(Some(ip.0)),
            );
            let (status, message) = match err {
                AccountError::Throttled { retry_after } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Too many sign-in attempts for this username. Try again in {retry_after} s."
                    ),
                ),
                _ => (
                    StatusCode::UNAUTHORIZED,
                    "Invalid username or password. Try again.".to_string(),
                ),
            };
            return page(
                status,
                &approval_form(
                    &app,
                    &decision.user_code,
                    &decision.username,
                    Some(&message),
                ),
            );
        }
    };
    if auth
        .device
        .decide(&decision.user_code, &user.username, user.scopes, allow)
        .is_err()
    {
        return outcome(
            StatusCode::BAD_REQUEST,
            "error",
            "That code is unknown or expired.",
        );
    }
    app.audit().record_or_log(
        AuditEvent::new("auth.device_decision")
            .actor(format!("user:{}", user.username))
            .outcome(if allow {
                Outcome::Success
            } else {
                Outcome::Denied
            })
            .source_ip(Some(ip.0))
            .details(serde_json::json!({ "approved": allow })),
    );
    let message = if allow {
        "Approved. You can return to your device."
    } else {
        "Denied. The device gets no access."
    };
    outcome(StatusCode::OK, "ok", message)
}
