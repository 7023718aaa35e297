//! HTTP routes for identity: login, refresh, logout, API tokens, the first-run claim,
//! WebSocket tickets, the caller's own account, and user administration.
//!
//! Handlers translate requests into calls on `auth` and audit what happened; every
//! decision is made there. Blocking work (hashing, durable writes) runs off the async
//! workers.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, Outcome};
use crate::auth::KNOWN_CLIENT_TTL_SECS;
use crate::auth::Via;
use crate::auth::scopes::{Scope, Scopes};
use crate::auth::sessions::{SessionError, TokenPair};
use crate::auth::tokens::{LimitsChange, LimitsChanger, TokenLimits, TokenTerms};
use crate::auth::users::{AccountError, KnownClient};
use crate::config::{AuthMode, parse_duration};
use crate::secret::Secret;
use crate::server::api::Api;
use crate::server::auth::{Access, Admin, Caller, ClientIp, refuse};
use crate::server::browser_session;
use crate::server::error::{ApiError, ErrorCode};
use crate::server::json::JsonBody;
use crate::server::state::App;

/// Longest username or password a login reads; anything longer is refused before hashing.
const MAX_LOGIN_FIELD: usize = 1024;
/// Lifetime of a WebSocket ticket.
const WS_TICKET_SECS: i64 = 30;
/// The cookie a browser keeps its known-client token in (see `Auth::remember_client`).
pub const KNOWN_CLIENT_COOKIE: &str = "aisopod_known_client";
/// Longest known-client token read; a real one is about 400 bytes.
const MAX_KNOWN_CLIENT: usize = 1024;

pub fn api() -> Api {
    Api::new()
        .route("/auth/login", Access::Credentials, post(login))
        .route("/auth/refresh", Access::Credentials, post(refresh))
        .route("/setup/claim", Access::Credentials, post(claim))
        .route("/auth/logout", Access::Authenticated, post(logout))
        // The socket carries approvals: the least it needs is seeing them.
        .route(
            "/auth/ws-ticket",
            Access::Scope(Scope::ChatRead),
            post(ws_ticket),
        )
        .route(
            "/auth/create-token",
            Access::Scope(Scope::Admin),
            post(create_token),
        )
        .route(
            "/auth/rotate-token",
            Access::Scope(Scope::Admin),
            post(rotate_token),
        )
        .route("/api/v1/me", Access::Authenticated, get(me))
        .route(
            "/api/v1/me/password",
            Access::Authenticated,
            post(change_password),
        )
        .route(
            "/api/v1/users",
            Access::Scope(Scope::Admin),
            get(list_users).post(create_user),
        )
        .route(
            "/api/v1/users/{name}",
            Access::Scope(Scope::Admin),
            patch(update_user).delete(remove_user),
        )
        .route(
            "/api/v1/users/{name}/unlock",
            Access::Scope(Scope::Admin),
            post(unlock_user),
        )
        .route(
            "/api/v1/tokens",
            Access::Scope(Scope::Admin),
            get(list_tokens).post(create_token),
        )
        .route(
            "/api/v1/tokens/{id}",
            Access::Scope(Scope::Admin),
            delete(revoke_token),
        )
        // An owner may tighten their own token's limits; the handler checks whose it is.
        .route_method(
            Method::PATCH,
            "/api/v1/tokens/{id}",
            Access::Authenticated,
            patch(change_token_limits),
        )
}

/// The operations of these routes, for the OpenAPI document (`server::openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        login,
        refresh,
        claim,
        logout,
        ws_ticket,
        create_token,
        rotate_token,
        me,
        change_password,
        list_users,
        create_user,
        update_user,
        remove_user,
        unlock_user,
        list_tokens,
        change_token_limits,
        revoke_token
    ))]
    struct Doc;
    let mut doc = <Doc as utoipa::OpenApi>::openapi();
    // `POST /api/v1/tokens` is the same handler as `POST /auth/create-token`.
    crate::server::api::also_at(
        &mut doc,
        Method::POST,
        "/auth/create-token",
        "/api/v1/tokens",
    );
    doc
}

/// How the dashboard's refresh cookie is set here.
fn cookie_settings(app: &App) -> browser_session::CookieSettings {
    browser_session::CookieSettings {
        secure: app.tls.is_some(),
        refresh_ttl: app.services.auth.sessions.refresh_ttl(),
    }
}

/// Runs blocking work (hashing, durable writes) on the blocking pool.
async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    work: impl FnOnce(&App) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let app = app.clone();
    crate::server::chat_routes::blocking(move || work(&app)).await
}

fn not_in_this_mode() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such resource in this authentication mode",
    )
}

/// Routes of user accounts exist only in `password` and `device` modes.
pub fn require_accounts(app: &App) -> Result<(), ApiError> {
    if app.services.auth.has_accounts() {
        Ok(())
    } else {
        Err(not_in_this_mode())
    }
}

fn event(action: &str, actor: &str, ip: ClientIp) -> AuditEvent {
    AuditEvent::new(action).actor(actor).source_ip(Some(ip.0))
}

/// A username as it may appear in the audit log: bounded and printable.
fn loggable(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// The known client a request presents: `field` from its body, else the cookie. An
/// invalid token counts as none.
pub fn known_client(app: &App, headers: &HeaderMap, field: Option<&Secret>) -> Option<KnownClient> {
    let token = match field {
        Some(token) => token.expose().to_string(),
        None => headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == KNOWN_CLIENT_COOKIE)
            .map(|(_, token)| token.to_string())?,
    };
    if token.len() > MAX_KNOWN_CLIENT {
        return None;
    }
    app.services.auth.known_client(&token)
}

/// The cookie that keeps a known-client token in a browser: sent back on every request
/// to this origin only, never readable by scripts.
fn known_client_cookie(app: &App, token: &str) -> Option<HeaderValue> {
    let secure = if app.tls.is_some() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{KNOWN_CLIENT_COOKIE}={token}; Path=/; Max-Age={KNOWN_CLIENT_TTL_SECS}; HttpOnly; SameSite=Strict{secure}"
    ))
    .ok()
}

/// The answer to a login, with the known-client token also set as the cookie. The
/// dashboard gets both tokens only as cookies (see `browser_session`).
fn login_response(app: &App, headers: &HeaderMap, answer: LoginAnswer) -> Response {
    let cookie = known_client_cookie(app, &answer.known_client);
    let mut response = if browser_session::is_dashboard(headers) {
        let mut body = serde_json::to_value(&answer).unwrap_or_default();
        if let Some(object) = body.as_object_mut() {
            object.remove("known_client");
        }
        browser_session::into_cookie(cookie_settings(app), StatusCode::OK, body)
    } else {
        Json(answer).into_response()
    };
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    #[schema(value_type = String)]
    password: Secret,
    /// The token an earlier login answered with, for clients that keep no cookies.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    known_client: Option<Secret>,
}

/// A login's answer: the OAuth 2.0 token response plus the client's known-client token.
#[derive(Serialize)]
struct LoginAnswer {
    #[serde(flatten)]
    pair: TokenPair,
    known_client: String,
}

#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    summary = "Log in with a username and password",
    request_body(content = LoginRequest, content_type = "application/json"),
    responses((status = 200, description = "Access and refresh tokens", body = Object))
)]
async fn login(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    headers: HeaderMap,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    require_accounts(&app)?;
    if request.username.len() > MAX_LOGIN_FIELD || request.password.len() > MAX_LOGIN_FIELD {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            "username or password too long",
        ));
    }
    let target = loggable(&request.username);
    let result = app
        .services
        .auth
        .accounts
        .authenticate(
            &request.username,
            request.password,
            ip.0,
            known_client(&app, &headers, request.known_client.as_ref()).as_ref(),
        )
        .await;
    match result {
        Ok(user) => {
            let answer = blocking(&app, move |app| {
                let auth = &app.services.auth;
                let pair = auth.sessions.login(&user)?;
                let known_client = auth
                    .remember_client(&user)
                    .map_err(crate::error::Error::from)?;
                Ok(LoginAnswer { pair, known_client })
            })
            .await?;
            app.audit()
                .record_or_log(event("auth.login", &format!("user:{target}"), ip).target(target));
            Ok(login_response(&app, &headers, answer))
        }
        // Refused before any check, so cheap to send from many addresses: summarised per
        // address like every other 429, so the guessers cannot make the log write per try.
        Err(err @ AccountError::Throttled { .. }) => {
            Ok(refuse(&app, ip.0, "/auth/login", ApiError::from(err), None))
        }
        Err(err) => {
            if !matches!(err, AccountError::Password(_)) {
                let reason = match &err {
                    AccountError::Locked { .. } => "locked",
                    AccountError::Disabled => "disabled",
                    _ => "invalid credentials",
                };
                app.audit().record_or_log(
                    event("auth.login", "anonymous", ip)
                        .target(target)
                        .outcome(Outcome::Denied)
                        .details(serde_json::json!({ "reason": reason })),
                );
            }
            Err(err.into())
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    #[schema(value_type = String)]
    refresh_token: Secret,
}

/// `POST /auth/refresh`: the refresh token in the body (API clients), or, with no body,
/// in the dashboard's cookie under `browser_session`'s cross-site checks.
#[utoipa::path(
    post,
    path = "/auth/refresh",
    tag = "auth",
    summary = "Exchange a refresh token for new tokens",
    request_body(content = RefreshRequest, content_type = "application/json"),
    responses((status = 200, description = "New access and refresh tokens", body = Object))
)]
async fn refresh(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    uri: http::Uri,
    headers: HeaderMap,
    body: Option<JsonBody<RefreshRequest>>,
) -> Result<Response, ApiError> {
    require_accounts(&app)?;
    let (token, by_cookie) = match body {
        Some(JsonBody(request)) => (request.refresh_token, false),
        None => match browser_session::cookie_refresh(&headers, &uri) {
            Ok(token) => (token, true),
            Err(err) => {
                let mut response = refuse(&app, ip.0, "/auth/refresh", err.into(), None);
                response.headers_mut().append(
                    header::SET_COOKIE,
                    browser_session::clear_cookie(cookie_settings(&app)),
                );
                return Ok(response);
            }
        },
    };
    let result = refresh_with(&app, ip, token).await;
    match result {
        Ok(pair) if by_cookie => Ok(browser_session::pair_response(
            cookie_settings(&app),
            &headers,
            StatusCode::OK,
            &pair,
        )),
        Ok(pair) => Ok(Json(pair).into_response()),
        Err(err) if by_cookie => {
            let mut response = err.into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                browser_session::clear_cookie(cookie_settings(&app)),
            );
            Ok(response)
        }
        Err(err) => Err(err),
    }
}

async fn refresh_with(
    app: &Arc<App>,
    ip: ClientIp,
    refresh_token: Secret,
) -> Result<TokenPair, ApiError> {
    let worker = app.clone();
    let result =
        tokio::task::spawn_blocking(move || worker.services.auth.sessions.refresh(&refresh_token))
            .await
            .map_err(|_| ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR))?;
    match result {
        Ok((pair, user)) => {
            app.audit().record_or_log(
                event("auth.refresh", &format!("user:{}", user.username), ip).target(user.username),
            );
            Ok(pair)
        }
        Err(SessionError::Reused { username, family }) => {
            app.audit().record_or_log(
                event("auth.refresh_reuse", "anonymous", ip)
                    .target(username)
                    .outcome(Outcome::Denied)
                    .details(
                        serde_json::json!({ "family": family, "effect": "session family revoked" }),
                    ),
            );
            Err(SessionError::InvalidRefresh.into())
        }
        Err(err) => {
            app.audit()
                .record_or_log(event("auth.refresh", "anonymous", ip).outcome(Outcome::Denied));
            Err(err.into())
        }
    }
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LogoutRequest {
    #[schema(value_type = Option<String>)]
    refresh_token: Option<Secret>,
}

#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    summary = "End the session (and revoke a refresh token)",
    request_body(content = Option<LogoutRequest>, content_type = "application/json"),
    responses((status = 204, description = "Logged out"))
)]
async fn logout(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    caller: Caller,
    body: Option<JsonBody<LogoutRequest>>,
) -> Result<Response, ApiError> {
    let refresh = body.and_then(|JsonBody(b)| b.refresh_token);
    let claims = match &caller.via {
        Via::Session(claims) => Some(claims.as_ref().clone()),
        _ => None,
    };
    blocking(&app, move |app| {
        Ok(app
            .services
            .auth
            .sessions
            .logout(refresh.as_ref(), claims.as_ref())?)
    })
    .await?;
    app.audit()
        .record_or_log(event("auth.logout", &caller.actor(), ip).target(caller.username.clone()));
    // A browser's refresh cookie goes with the session it belonged to.
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            browser_session::clear_cookie(cookie_settings(&app)),
        )],
    )
        .into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateTokenRequest {
    name: String,
    #[schema(value_type = Vec<String>)]
    scopes: Scopes,
    /// Lifetime such as "90d"; none means until revoked.
    expires: Option<String>,
    /// The account the token acts for; the caller's own by default.
    owner: Option<String>,
    /// Requests a minute to the routes that call a model; none means no limit.
    requests_per_minute: Option<u32>,
    /// Prompt plus completion tokens a UTC day; none means no limit.
    tokens_per_day: Option<u64>,
}

#[utoipa::path(
    post,
    path = "/auth/create-token",
    tag = "tokens",
    summary = "Create an API token (shown once)",
    request_body(content = CreateTokenRequest, content_type = "application/json"),
    responses((status = 201, description = "The token, shown only now", body = Object), (status = 404, description = "No such owner", body = Object))
)]
async fn create_token(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    caller: Admin,
    JsonBody(request): JsonBody<CreateTokenRequest>,
) -> Result<Response, ApiError> {
    match app.services.auth.mode {
        AuthMode::Password => {}
        AuthMode::Device => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "in device mode, programs get tokens through the device flow (aisopod login --device)",
            ));
        }
        AuthMode::Token | AuthMode::None => return Err(not_in_this_mode()),
    }
    let ttl = match &request.expires {
        Some(text) => Some(
            parse_duration(text)
                .ok()
                .and_then(|d| i64::try_from(d.as_secs()).ok())
                .filter(|secs| *secs > 0)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        ErrorCode::InvalidRequest,
                        "expires must be a duration such as 90d",
                    )
                })?,
        ),
        None => None,
    };
    let owner_name = request
        .owner
        .clone()
        .unwrap_or_else(|| caller.username.clone());
    let actor = caller.actor();
    let holder = caller.scopes;
    let (secret, record) = blocking(&app, move |app| {
        let owner = app
            .services
            .auth
            .accounts
            .get(&owner_name)?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    ErrorCode::NotFound,
                    format!("no user named {owner_name}"),
                )
            })?;
        Ok(app.services.auth.tokens.create(
            &owner,
            &request.name,
            request.scopes,
            holder,
            TokenTerms {
                ttl_secs: ttl,
                limits: TokenLimits {
                    requests_per_minute: request.requests_per_minute,
                    tokens_per_day: request.tokens_per_day,
                },
            },
            &actor,
        )?)
    })
    .await?;
    app.audit().record_or_log(
        event("auth.token_created", &caller.actor(), ip)
            .target(record.name.clone())
            .details(serde_json::json!({ "id": record.id, "owner": record.owner, "scopes": record.scopes, "expires": record.expires, "requests_per_minute": record.limits.requests_per_minute, "tokens_per_day": record.limits.tokens_per_day })),
    );
    let mut body = serde_json::to_value(&record)
        .map_err(|_| ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR))?;
    if let Some(object) = body.as_object_mut() {
        object.insert(
            "token".into(),
            serde_json::Value::String(secret.expose().to_string()),
        );
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    /// Rotate this API token; without it, rotate the session signing key.
    name: Option<String>,
    grace: Option<String>,
}

#[utoipa::path(
    post,
    path = "/auth/rotate-token",
    tag = "tokens",
    summary = "Rotate an API token, or the session signing key",
    request_body(content = Option<RotateRequest>, content_type = "application/json"),
    responses((status = 200, description = "The new token, or the rotation done", body = Object), (status = 404, description = "Not found", body = Object))
)]
async fn rotate_token(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    caller: Admin,
    body: Option<JsonBody<RotateRequest>>,
) -> Result<Response, ApiError> {
    let request = body.map(|JsonBody(b)| b).unwrap_or_default();
    let grace = match &request.grace {
        Some(text) => parse_duration(text)
            .ok()
            .and_then(|d| i64::try_from(d.as_secs()).ok())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidRequest,
                    "grace must be a duration such as 1h",
                )
            })?,
        None => 3600,
    };
    let actor = caller.actor();
    match request.name {
        Some(name) => {
            let by = actor.clone();
            let (secret, record) = blocking(&app, move |app| {
                Ok(app.services.auth.tokens.rotate(&name, grace, &by)?)
            })
            .await?;
            app.audit().record_or_log(
                event("auth.token_rotated", &actor, ip)
                    .target(record.name.clone())
                    .details(serde_json::json!({ "id": record.id, "grace_secs": grace })),
            );
            let mut body = serde_json::to_value(&record)
                .map_err(|_| ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR))?;
            if let Some(object) = body.as_object_mut() {
                object.insert(
                    "token".into(),
                    serde_json::Value::String(secret.expose().to_string()),
                );
            }
            Ok(Json(body).into_response())
        }
        None => {
            let longest = app.services.auth.sessions.access_ttl();
            let kid = blocking(&app, move |app| {
                Ok(app.services.auth.jwt.rotate(longest)?)
            })
            .await?;
            app.audit().record_or_log(
                event("auth.signing_key_rotated", &actor, ip)
                    .details(serde_json::json!({ "kid": kid })),
            );
            Ok(
                Json(serde_json::json!({ "kid": kid, "previous_valid_for": longest }))
                    .into_response(),
            )
        }
    }
}

#[utoipa::path(
    post,
    path = "/auth/ws-ticket",
    tag = "auth",
    summary = "A one-time WebSocket ticket, valid 30 s",
    responses((status = 200, description = "The ticket", body = Object))
)]
async fn ws_ticket(State(app): State<Arc<App>>, caller: Caller) -> Result<Response, ApiError> {
    let ticket = app.services.auth.ws_ticket(&caller, WS_TICKET_SECS)?;
    Ok(Json(serde_json::json!({ "ticket": ticket, "expires_in": WS_TICKET_SECS })).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ClaimRequest {
    #[schema(value_type = String)]
    code: Secret,
    username: String,
    #[schema(value_type = String)]
    password: Secret,
}

#[utoipa::path(
    post,
    path = "/setup/claim",
    tag = "auth",
    summary = "First run: claim the device with its setup code and create the owner",
    request_body(content = ClaimRequest, content_type = "application/json"),
    responses((status = 201, description = "The owner account was created; its tokens", body = Object))
)]
async fn claim(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    headers: HeaderMap,
    JsonBody(request): JsonBody<ClaimRequest>,
) -> Result<Response, ApiError> {
    require_accounts(&app)?;
    let username = loggable(&request.username);
    let result = blocking(&app, move |app| {
        let auth = &app.services.auth;
        let created = auth.claim.redeem(request.code.expose(), || {
            auth.accounts
                .create(&request.username, &request.password, Scopes::all())
        })?;
        let user = created?;
        Ok(auth.sessions.login(&user)?)
    })
    .await;
    match result {
        Ok(pair) => {
            app.audit().record_or_log(
                event("auth.claim", &format!("user:{username}"), ip).target(username),
            );
            Ok(browser_session::pair_response(
                cookie_settings(&app),
                &headers,
                StatusCode::CREATED,
                &pair,
            ))
        }
        Err(err) => {
            if matches!(
                err.code,
                ErrorCode::WrongClaimCode | ErrorCode::AlreadyClaimed
            ) {
                app.audit().record_or_log(
                    event("auth.claim", "anonymous", ip)
                        .target(username)
                        .outcome(Outcome::Denied),
                );
            }
            Err(err)
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "users",
    summary = "The caller's account and scopes",
    responses((status = 200, description = "Success", body = Object))
)]
async fn me(caller: Caller) -> Json<serde_json::Value> {
    let via = match &caller.via {
        Via::Session(_) => "session",
        Via::ApiToken { .. } => "api_token",
        Via::StaticToken => "static_token",
        Via::Local => "local",
        Via::PairedDevice { .. } => "paired_device",
    };
    Json(serde_json::json!({ "username": caller.username, "scopes": caller.scopes, "via": via }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    #[schema(value_type = String)]
    current_password: Secret,
    #[schema(value_type = String)]
    new_password: Secret,
}

#[utoipa::path(
    post,
    path = "/api/v1/me/password",
    tag = "users",
    summary = "Change the caller's password",
    request_body(content = PasswordChange, content_type = "application/json"),
    responses((status = 200, description = "Changed", body = Object))
)]
async fn change_password(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    headers: HeaderMap,
    caller: Caller,
    JsonBody(request): JsonBody<PasswordChange>,
) -> Result<Response, ApiError> {
    if !matches!(caller.via, Via::Session(_)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "change a password from a signed-in session",
        ));
    }
    let user = app
        .services
        .auth
        .accounts
        .authenticate(
            &caller.username,
            request.current_password,
            ip.0,
            known_client(&app, &headers, None).as_ref(),
        )
        .await?;
    let new_password = request.new_password;
    let answer = blocking(&app, move |app| {
        let auth = &app.services.auth;
        let user = auth.accounts.set_password(&user.username, &new_password)?;
        // The new epoch ended this client's known-client token with the rest.
        let pair = auth.sessions.login(&user)?;
        let known_client = auth
            .remember_client(&user)
            .map_err(crate::error::Error::from)?;
        Ok(LoginAnswer { pair, known_client })
    })
    .await?;
    app.audit().record_or_log(
        event("user.password_changed", &caller.actor(), ip)
            .target(caller.username.clone())
            .details(serde_json::json!({ "effect": "every other session revoked" })),
    );
    Ok(login_response(&app, &headers, answer))
}

#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    summary = "List the accounts",
    responses((status = 200, description = "Success", body = [Object]))
)]
async fn list_users(State(app): State<Arc<App>>, _: Admin) -> Result<Response, ApiError> {
    let users = app.services.auth.accounts.list()?;
    Ok(Json(users.iter().map(|u| u.view()).collect::<Vec<_>>()).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    #[schema(value_type = String)]
    password: Secret,
    #[schema(value_type = Vec<String>)]
    scopes: Scopes,
}

#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    summary = "Create an account",
    request_body(content = NewUser, content_type = "application/json"),
    responses((status = 201, description = "The account", body = Object), (status = 409, description = "The name is taken", body = Object))
)]
async fn create_user(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    caller: Admin,
    JsonBody(request): JsonBody<NewUser>,
) -> Result<Response, ApiError> {
    require_accounts(&app)?;
    let user = blocking(&app, move |app| {
        Ok(app.services.auth.accounts.create(
            &request.username,
            &request.password,
            request.scopes,
        )?)
    })
    .await?;
    app.audit().record_or_log(
        event("user.created", &caller.actor(), ip)
            .target(user.username.clone())
            .details(serde_json::json!({ "scopes": user.scopes })),
    );
    Ok((StatusCode::CREATED, Json(user.view())).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UserUpdate {
    disabled: Option<bool>,
    #[schema(value_type = Option<Vec<String>>)]
    scopes: Option<Scopes>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/users/{name}",
    tag = "users",
    summary = "Disable, enable or change the scopes of an account",
    params(("name" = String, Path, description = "The username")),
    request_body(content = UserUpdate, content_type = "application/json"),
    responses((status = 200, description = "The account", body = Object), (status = 404, description = "Not found", body = Object))
)]
async fn update_user(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    caller: Admin,
    Path(name): Path<String>,
    JsonBody(update): JsonBody<UserUpdate>,
) -> Result<Response, ApiError> {
    let target = loggable(&name);
    let user = blocking(&app, move |app| {
        let accounts = &app.services.auth.accounts;
        let mut user = accounts
            .get(&name)?
            .ok_or_else(|| AccountError::NotFound(loggable(&name)))?;
        if let Some(scopes) = update.scopes {
            user = accounts.set_scopes(&name, scopes)?;
        }
        if let Some(disabled) = update.disabled {
            user = accounts.set_disabled(&name, disabled)?;
        }
        Ok(user)
    })
    .await?;
    app.audit().record_or_log(
        event("user.updated", &caller.actor(), ip)
            .target(target)
            .details(serde_json::json!({ "scopes": user.scopes, "disabled": user.disabled })),
    );
    Ok(Json(user.view()).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/users/{name}",
    tag = "users",
    summary = "Remove an account",
    params(("name" = String, Path, description = "The username")),
    responses((status = 204, description = "Removed"), (status = 404, description = "Not found", body = Object))
)]
async fn remove_user(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    caller: Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = blocking(&app, move |app| {
        Ok(app.services.auth.accounts.remove(&name)?)
    })
    .await?;
    app.audit()
        .record_or_log(event("user.removed", &caller.actor(), ip).target(user.username));
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v1/users/{name}/unlock",
    tag = "users",
    summary = "Unlock an account locked by failed logins",
    params(("name" = String, Path, description = "The username")),
    responses((status = 200, description = "Unlocked", body = Object), (status = 404, description = "Not found", body = Object))
)]
async fn unlock_user(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    caller: Admin,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let user = blocking(&app, move |app| {
        Ok(app.services.auth.accounts.unlock(&name)?)
    })
    .await?;
    app.audit()
        .record_or_log(event("user.unlocked", &caller.actor(), ip).target(user.username.clone()));
    Ok(Json(user.view()).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "tokens",
    summary = "List the API tokens (never their secrets)",
    responses((status = 200, description = "Success", body = [Object]))
)]
async fn list_tokens(State(app): State<Arc<App>>, _: Admin) -> Result<Response, ApiError> {
    Ok(Json(app.services.auth.tokens.list()?).into_response())
}

/// `PATCH /api/v1/tokens/{id}`: `{"requests_per_minute": n | null, "tokens_per_day":
/// n | null}`, an absent field unchanged (no body changes nothing). An administrator
/// may change any token; an owner only their own, and only tighter.
#[utoipa::path(
    patch,
    path = "/api/v1/tokens/{id}",
    tag = "tokens",
    summary = "Change a token's rate and usage limits (an owner may only tighten its own)",
    params(("id" = String, Path, description = "The token id")),
    request_body(content = Option<Object>, content_type = "application/json"),
    responses((status = 200, description = "The token's limits", body = Object), (status = 404, description = "Not found", body = Object))
)]
async fn change_token_limits(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<JsonBody<LimitsChange>>,
) -> Result<Response, ApiError> {
    let change = body.map(|JsonBody(change)| change).unwrap_or_default();
    let admin = caller.allows(Scope::Admin);
    let name = caller.username.clone();
    let record = blocking(&app, move |app| {
        let by = if admin {
            LimitsChanger::Admin
        } else {
            LimitsChanger::Owner(&name)
        };
        Ok(app.services.auth.tokens.set_limits(&id, change, by)?)
    })
    .await?;
    app.audit().record_or_log(
        event("auth.token_limits_changed", &caller.actor(), ip)
            .target(record.name.clone())
            .details(serde_json::json!({ "id": record.id, "requests_per_minute": record.limits.requests_per_minute, "tokens_per_day": record.limits.tokens_per_day })),
    );
    Ok(Json(record).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    tag = "tokens",
    summary = "Revoke an API token",
    params(("id" = String, Path, description = "The token id")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "Not found", body = Object))
)]
async fn revoke_token(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    caller: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let record = blocking(&app, move |app| Ok(app.services.auth.tokens.revoke(&id)?)).await?;
    app.audit().record_or_log(
        event("auth.token_revoked", &caller.actor(), ip)
            .target(record.name)
            .details(serde_json::json!({ "id": record.id })),
    );
    Ok(StatusCode::NO_CONTENT)
}
