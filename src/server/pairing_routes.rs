//! HTTP routes of pairing: the page a QR code opens (`/p` and `/P`), the phone's claim,
//! poll, nonce and refresh endpoints, the CA as an iOS profile, and the admin API that
//! opens offers and confirms or refuses claims.
//!
//! Refused claims and refreshes are limited like every guessing target (the
//! `Credentials` class, per address) and audited through `server::auth::refuse`, so a
//! flood costs no disk writes; the owner, from another address, pairs normally. The
//! pairing service decides; these handlers only translate.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use http::{HeaderMap, StatusCode, header};
use serde::Deserialize;

use crate::audit::{AuditEvent, Outcome};
use crate::auth::paired::DevicePublicKey;
use crate::auth::scopes::{Scope, Scopes};
use crate::pairing::{ClaimRequest, OfferRequest, PairingError};
use crate::server::api::Api;
use crate::server::auth::{Access, Admin, ClientIp, refuse, with_retry_after};
use crate::server::error::{ApiError, ErrorCode};
use crate::server::json::JsonBody;
use crate::server::state::App;

const PAGE: &str = include_str!("pairing_page.html");
const SCRIPT: &str = include_str!("pairing_page.js");

pub fn api() -> Api {
    Api::new()
        .route("/p", Access::Public, get(page))
        .route("/P", Access::Public, get(page))
        .route("/pair.js", Access::Public, get(script))
        .route("/ca.mobileconfig", Access::Public, get(mobileconfig))
        .route("/pair/claim", Access::Credentials, post(claim))
        // The poll token is 256 random bits: nothing to guess, and a phone polls often,
        // so polls have their own per-address limit (the pairing service's guard).
        .route("/pair/claim/{id}/poll", Access::Public, post(poll))
        .route("/pair/nonce", Access::Credentials, get(nonce))
        .route("/pair/refresh", Access::Credentials, post(refresh))
        .route(
            "/api/v1/pairing",
            Access::Scope(Scope::Admin),
            get(list).post(start),
        )
        .route(
            "/api/v1/pairing/{id}",
            Access::Scope(Scope::Admin),
            axum::routing::delete(cancel),
        )
        .route(
            "/api/v1/pairing/{id}/confirm",
            Access::Scope(Scope::Admin),
            post(confirm),
        )
        .route(
            "/api/v1/pairing/{id}/refuse",
            Access::Scope(Scope::Admin),
            post(refuse_claim),
        )
}

/// The operations of these routes, for the OpenAPI document (`server::openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        page,
        script,
        mobileconfig,
        claim,
        poll,
        nonce,
        refresh,
        list,
        start,
        cancel,
        confirm,
        refuse_claim
    ))]
    struct Doc;

    let mut doc = <Doc as utoipa::OpenApi>::openapi();
    // `/P` serves the same page as `/p` (a QR code's alphanumeric mode is upper case).
    crate::server::api::also_at(&mut doc, http::Method::GET, "/p", "/P");
    doc
}

fn no_store(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// `GET /p`: the page. The secret is in the URL's fragment, which never reaches us.
#[utoipa::path(
    get,
    path = "/p",
    tag = "pairing",
    summary = "The pairing page a QR code opens",
    responses((status = 200, description = "The page", body = String, content_type = "text/html"))
)]
async fn page() -> Response {
    no_store("text/html; charset=utf-8", PAGE)
}

#[utoipa::path(
    get,
    path = "/pair.js",
    tag = "pairing",
    summary = "The pairing page's script",
    responses((status = 200, description = "The script", body = String, content_type = "text/javascript"))
)]
async fn script() -> Response {
    no_store("text/javascript; charset=utf-8", SCRIPT)
}

impl From<PairingError> for ApiError {
    fn from(err: PairingError) -> Self {
        let (status, code) = match &err {
            PairingError::OfferOpen { .. } => (StatusCode::CONFLICT, ErrorCode::Conflict),
            PairingError::BadTtl(_) | PairingError::BadHost(_) => {
                (StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest)
            }
            PairingError::WrongSecret | PairingError::Expired => {
                (StatusCode::UNAUTHORIZED, ErrorCode::InvalidCredential)
            }
            PairingError::NoClaim(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            PairingError::NotWaiting(_) => (StatusCode::CONFLICT, ErrorCode::AlreadyResolved),
            PairingError::TooManyClaims => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::Busy),
            PairingError::TooManyGuesses(_) | PairingError::TooManyPolls(_) => {
                (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited)
            }
            PairingError::Device(_) => {
                if let PairingError::Device(device) = err {
                    return device.into();
                }
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal)
            }
        };
        ApiError::new(status, code, err.to_string())
    }
}

/// Scopes as a list or a space- or comma-separated string; unknown names refused.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, serde::Serialize)]
#[serde(untagged)]
enum ScopeList {
    #[default]
    None,
    Text(String),
    List(Vec<String>),
}

impl ScopeList {
    fn parse(&self) -> Result<Scopes, ApiError> {
        let text = match self {
            ScopeList::None => return Ok(Scopes::none()),
            ScopeList::Text(text) => text.replace(' ', ","),
            ScopeList::List(list) => list.join(","),
        };
        if text.trim().is_empty() {
            return Ok(Scopes::none());
        }
        Scopes::parse_list(&text)
            .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, m))
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Claim {
    secret: String,
    device_name: String,
    public_key: serde_json::Value,
    #[serde(default)]
    scopes: ScopeList,
}

/// `POST /pair/claim`.
#[utoipa::path(
    post,
    path = "/pair/claim",
    tag = "pairing",
    summary = "A phone claims the open pairing offer",
    request_body(content = Claim, content_type = "application/json"),
    responses((status = 200, description = "Paired: the device's tokens", body = Object), (status = 202, description = "Waiting for the owner's confirmation; poll", body = Object))
)]
async fn claim(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    JsonBody(body): JsonBody<Claim>,
) -> Response {
    let path = "/pair/claim";
    let request = DevicePublicKey::parse(&body.public_key)
        .map_err(ApiError::from)
        .and_then(|public_key| {
            Ok(ClaimRequest {
                secret: body.secret,
                device_name: body.device_name,
                public_key,
                requested: body.scopes.parse()?,
            })
        });
    let request = match request {
        Ok(request) => request,
        Err(error) => return refuse(&app, ip.0, path, error, None),
    };
    let worker = app.clone();
    let name = request.device_name.clone();
    let fingerprint = request.public_key.fingerprint();
    let result = tokio::task::spawn_blocking(move || worker.pairing.claim(request)).await;
    match result {
        Ok(Ok(started)) => {
            app.audit().record_or_log(
                AuditEvent::new("pairing.claim")
                    .actor("anonymous")
                    .target(started.id.clone())
                    .source_ip(Some(ip.0))
                    .outcome(Outcome::Success)
                    .details(serde_json::json!({
                        "device_name": name.chars().take(64).collect::<String>(),
                        "key": fingerprint,
                        "confirmed": started.tokens.is_some(),
                    })),
            );
            let status = if started.tokens.is_some() {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            (status, Json(started)).into_response()
        }
        Ok(Err(PairingError::TooManyGuesses(wait))) => {
            let error = PairingError::TooManyGuesses(wait).into();
            with_retry_after(refuse(&app, ip.0, path, error, None), wait)
        }
        Ok(Err(error)) => refuse(&app, ip.0, path, error.into(), None),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "the claim failed",
        )
        .into_response(),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Poll {
    poll_token: String,
}

/// `POST /pair/claim/{id}/poll`: waiting, confirmed (with the tokens, once), refused
/// or expired.
#[utoipa::path(
    post,
    path = "/pair/claim/{id}/poll",
    tag = "pairing",
    summary = "A claim's state: waiting, confirmed (with the tokens, once), refused or expired",
    params(("id" = String, Path, description = "The claim id")),
    request_body(content = Poll, content_type = "application/json"),
    responses((status = 200, description = "The claim's state", body = Object), (status = 404, description = "Not found", body = Object))
)]
async fn poll(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Poll>,
) -> Response {
    let from = app.limits.key(ip.0).addr();
    match app.pairing.poll(from, &id, &body.poll_token) {
        Ok(status) => Json(status).into_response(),
        Err(PairingError::TooManyPolls(wait)) => {
            let error = PairingError::TooManyPolls(wait).into();
            with_retry_after(refuse(&app, ip.0, "/pair/claim/poll", error, None), wait)
        }
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// `GET /pair/nonce`: a single-use nonce for the next refresh.
#[utoipa::path(
    get,
    path = "/pair/nonce",
    tag = "pairing",
    summary = "A single-use nonce for the next /pair/refresh",
    responses((status = 200, description = "Success", body = Object))
)]
async fn nonce(State(app): State<Arc<App>>) -> Response {
    let nonce = app.services.auth.paired.nonce();
    Json(serde_json::json!({
        "nonce": nonce,
        "expires_in": crate::auth::paired::NONCE_TTL_SECS,
        "sign": format!("{}\\n<device_id>\\n<nonce>", crate::auth::paired::REFRESH_LABEL),
    }))
    .into_response()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Refresh {
    refresh_token: String,
    nonce: String,
    signature: String,
}

/// `POST /pair/refresh`: new tokens for the refresh token and the device key's
/// signature over a fresh nonce.
#[utoipa::path(
    post,
    path = "/pair/refresh",
    tag = "pairing",
    summary = "New device tokens, for the refresh token and the device key's signature over a nonce",
    request_body(content = Refresh, content_type = "application/json"),
    responses((status = 200, description = "New tokens", body = Object))
)]
async fn refresh(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    JsonBody(body): JsonBody<Refresh>,
) -> Response {
    let path = "/pair/refresh";
    let signature = base64::engine::general_purpose::STANDARD
        .decode(body.signature.trim())
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(body.signature.trim().trim_end_matches('='))
        });
    let Ok(signature) = signature else {
        let error = ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            "the signature is not base64",
        );
        return refuse(&app, ip.0, path, error, None);
    };
    let worker = app.clone();
    let result = tokio::task::spawn_blocking(move || {
        worker
            .services
            .auth
            .paired
            .refresh(&body.refresh_token, &body.nonce, &signature)
    })
    .await;
    match result {
        Ok(Ok(tokens)) => Json(tokens).into_response(),
        Ok(Err(error)) => refuse(&app, ip.0, path, error.into(), None),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "the refresh failed",
        )
        .into_response(),
    }
}

/// `GET /api/v1/pairing`: the open offer (without its secret) and the waiting claims.
#[utoipa::path(
    get,
    path = "/api/v1/pairing",
    tag = "pairing",
    summary = "The open offer (without its secret) and the waiting claims",
    responses((status = 200, description = "Success", body = Object))
)]
async fn list(State(app): State<Arc<App>>, _admin: Admin) -> Response {
    Json(serde_json::json!({
        "offer": app.pairing.offer(),
        "claims": app.pairing.pending(),
    }))
    .into_response()
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
struct Start {
    scopes: ScopeList,
    ttl: Option<String>,
    replace: bool,
}

/// Where phones reach this gateway: `[server] public_url`'s authority, else the
/// authority this request came to.
pub fn pairing_host(app: &App, uri: &http::Uri, headers: &HeaderMap) -> String {
    if let Some(host) = app
        .config()
        .server
        .public_url
        .as_deref()
        .and_then(|url| url.parse::<http::Uri>().ok())
        .and_then(|uri| uri.authority().map(|a| a.to_string()))
    {
        return host;
    }
    let presented = uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()));
    presented
        .and_then(crate::server::host::RequestHost::parse)
        .map_or_else(|| "localhost".into(), |h| h.authority().to_string())
}

/// The account id behind a principal, empty for the built-in ones.
pub fn owner_id(app: &App, username: &str) -> String {
    app.services
        .auth
        .accounts
        .get(username)
        .ok()
        .flatten()
        .map(|u| u.id)
        .unwrap_or_default()
}

/// `POST /api/v1/pairing`: opens an offer; the answer carries the secret and the QR
/// payload, once.
#[utoipa::path(
    post,
    path = "/api/v1/pairing",
    tag = "pairing",
    summary = "Open a pairing offer (shown as a QR code)",
    request_body(content = Start, content_type = "application/json"),
    responses((status = 201, description = "The offer", body = Object), (status = 409, description = "An offer is already open", body = Object))
)]
async fn start(
    State(app): State<Arc<App>>,
    admin: Admin,
    ip: ClientIp,
    uri: http::Uri,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Start>,
) -> Result<Response, ApiError> {
    let scopes = body.scopes.parse()?;
    if !Scopes::grantable_by(scopes, admin.scopes) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "an offer cannot grant scopes its maker lacks",
        ));
    }
    let ttl = body
        .ttl
        .as_deref()
        .map(crate::config::parse_duration)
        .transpose()
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, m))?;
    let request = OfferRequest {
        owner: admin.username.clone(),
        owner_id: owner_id(&app, &admin.username),
        host: pairing_host(&app, &uri, &headers),
        scheme: app.config().scheme().to_string(),
        scopes,
        ttl,
        replace: body.replace,
    };
    let offer = app.pairing.start(request)?;
    app.audit().record_or_log(
        AuditEvent::new("pairing.offer")
            .actor(admin.actor())
            .target(offer.id.clone())
            .source_ip(Some(ip.0))
            .outcome(Outcome::Success)
            .details(serde_json::json!({ "expires": offer.expires, "replace": body.replace })),
    );
    let payload = offer.qr_payload();
    let mut value = serde_json::to_value(&offer).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        // The QR's modules, row by row ("1" dark), for the dashboard to draw.
        if let Ok(code) = crate::pairing::qr_code(&payload) {
            let width = code.width();
            let modules: String = code
                .to_colors()
                .iter()
                .map(|c| if *c == qrcode::Color::Dark { '1' } else { '0' })
                .collect();
            object.insert(
                "qr".into(),
                serde_json::json!({ "width": width, "modules": modules }),
            );
        }
        object.insert("payload".into(), serde_json::Value::String(payload));
    }
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// `DELETE /api/v1/pairing/{id}`: ends the open offer.
#[utoipa::path(
    delete,
    path = "/api/v1/pairing/{id}",
    tag = "pairing",
    summary = "Withdraw a pairing offer",
    params(("id" = String, Path, description = "The offer id")),
    responses((status = 204, description = "Withdrawn"), (status = 404, description = "Not found", body = Object))
)]
async fn cancel(
    State(app): State<Arc<App>>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !app.pairing.cancel(&id) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no open pairing offer with that id",
        ));
    }
    app.audit().record_or_log(
        AuditEvent::new("pairing.cancel")
            .actor(admin.actor())
            .target(id),
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/pairing/{id}/confirm`: the admin compared the codes.
#[utoipa::path(
    post,
    path = "/api/v1/pairing/{id}/confirm",
    tag = "pairing",
    summary = "Confirm a waiting claim",
    params(("id" = String, Path, description = "The claim id")),
    responses((status = 200, description = "Confirmed", body = Object), (status = 404, description = "Not found", body = Object), (status = 409, description = "Not waiting", body = Object))
)]
async fn confirm(
    State(app): State<Arc<App>>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let worker = app.clone();
    let claim = id.clone();
    let device = tokio::task::spawn_blocking(move || worker.pairing.confirm(&claim))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "the confirmation failed",
            )
        })??;
    app.audit().record_or_log(
        AuditEvent::new("pairing.confirm")
            .actor(admin.actor())
            .target(device.id.clone())
            .outcome(Outcome::Success)
            .details(serde_json::json!({ "claim": id, "name": device.name, "key": device.public_key.fingerprint() })),
    );
    Ok(Json(device).into_response())
}

/// `POST /api/v1/pairing/{id}/refuse`.
#[utoipa::path(
    post,
    path = "/api/v1/pairing/{id}/refuse",
    tag = "pairing",
    summary = "Refuse a waiting claim",
    params(("id" = String, Path, description = "The claim id")),
    responses((status = 200, description = "Refused", body = Object), (status = 404, description = "Not found", body = Object), (status = 409, description = "Not waiting", body = Object))
)]
async fn refuse_claim(
    State(app): State<Arc<App>>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let claim = app.pairing.refuse(&id)?;
    app.audit().record_or_log(
        AuditEvent::new("pairing.refuse")
            .actor(admin.actor())
            .target(id)
            .outcome(Outcome::Denied)
            .details(serde_json::json!({ "name": claim.device_name })),
    );
    Ok(Json(claim).into_response())
}

/// `GET /ca.mobileconfig`: the device CA wrapped in an iOS configuration profile, so
/// an iPhone can install it (Settings, then General, then About, then Certificate
/// Trust Settings to trust it).
#[utoipa::path(
    get,
    path = "/ca.mobileconfig",
    tag = "pairing",
    summary = "The device CA as an iOS configuration profile",
    responses((status = 200, description = "The profile", body = String, content_type = "application/x-apple-aspen-config"), (status = 404, description = "TLS is off or uses the operator's certificate", body = Object))
)]
async fn mobileconfig(State(app): State<Arc<App>>) -> Response {
    let Some(pem) = app.tls.as_ref().and_then(|tls| tls.ca_pem()) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "this gateway has no device CA (TLS is off or uses the operator's certificate)",
        )
        .into_response();
    };
    match mobileconfig_for(&pem) {
        Some(profile) => (
            [
                (header::CONTENT_TYPE, "application/x-apple-aspen-config"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"aisopod-ca.mobileconfig\"",
                ),
            ],
            profile,
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "the device CA could not be read",
        )
        .into_response(),
    }
}

/// A profile with one root-certificate payload; the UUIDs derive from the
/// certificate, so the same CA always yields the same profile.
pub fn mobileconfig_for(pem_text: &str) -> Option<String> {
    let der = pem::parse(pem_text).ok()?.into_contents();
    let digest = ring::digest::digest(&ring::digest::SHA256, &der);
    let hex = hex::encode(digest.as_ref());
    let uuid = |offset: usize| {
        let h = hex.get(offset..offset + 32)?;
        Some(format!(
            "{}-{}-{}-{}-{}",
            h.get(..8)?,
            h.get(8..12)?,
            h.get(12..16)?,
            h.get(16..20)?,
            h.get(20..32)?
        ))
    };
    let (profile_uuid, payload_uuid) = (uuid(0)?, uuid(32)?);
    let data = base64::engine::general_purpose::STANDARD.encode(&der);
    Some(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>PayloadContent</key>
  <array>
    <dict>
      <key>PayloadCertificateFileName</key>
      <string>aisopod-ca.cer</string>
      <key>PayloadContent</key>
      <data>{data}</data>
      <key>PayloadDescription</key>
      <string>The aisopod device CA (name-constrained to this device's names)</string>
      <key>PayloadDisplayName</key>
      <string>aisopod device CA</string>
      <key>PayloadIdentifier</key>
      <string>net.aisopod.ca.{payload_uuid}</string>
      <key>PayloadType</key>
      <string>com.apple.security.root</string>
      <key>PayloadUUID</key>
      <string>{payload_uuid}</string>
      <key>PayloadVersion</key>
      <integer>1</integer>
    </dict>
  </array>
  <key>PayloadDisplayName</key>
  <string>aisopod device CA</string>
  <key>PayloadIdentifier</key>
  <string>net.aisopod.profile.{profile_uuid}</string>
  <key>PayloadRemovalDisallowed</key>
  <false/>
  <key>PayloadType</key>
  <string>Configuration</string>
  <key>PayloadUUID</key>
  <string>{profile_uuid}</string>
  <key>PayloadVersion</key>
  <integer>1</integer>
</dict>
</plist>
"#
    ))
}
