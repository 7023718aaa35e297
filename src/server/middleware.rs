//! Middleware every request passes through, outermost first: request id and the log
//! line, security headers, JSON errors, load shedding, CORS, the request timeout and
//! the body limit.
//!
//! Each layer is an async function that takes what runs inside it as `inner`; the
//! server composes them (`server::with_middleware`) into a few axum layers.
//!
//! Nothing here authenticates (that is the auth layer's job) or looks inside bodies.
//! The log line carries method, path (never the query string, which may hold a
//! one-time ticket), status, latency, request id, peer address and the client address
//! a trusted proxy forwarded for.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode, header};
use ring::rand::SecureRandom;

use crate::server::error::{ApiError, ErrorCode};
use crate::server::state::App;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of the current request, for handlers that log.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn new_request_id() -> String {
    let mut bytes = [0u8; 8];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    hex::encode(bytes)
}

fn acceptable_request_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let ok = (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| text.to_string())
}

/// Assigns a request id (keeping a well-formed incoming one), logs one line per request.
/// The line names the TCP peer and, where a trusted proxy forwarded the request, the
/// client it forwarded for (the address rate limits and the audit log use).
pub async fn request_log<F: Future<Output = Response>>(
    app: &App,
    mut request: Request,
    inner: impl FnOnce(Request) -> F,
) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(acceptable_request_id)
        .unwrap_or_else(new_request_id);
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client = peer.map(|p| app.limits.client_ip(p, request.headers()));
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = inner(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let client = client.map(|ip| ip.to_string()).unwrap_or_default();
    let peer = peer.map(|p| p.ip().to_string()).unwrap_or_default();
    tracing::info!(target: "aisopod::http", request_id = %id, %method, %path, status, latency_ms = format!("{latency_ms:.2}"), %client, %peer, "request");
    response
}

/// Security headers on every response; HSTS only when served over TLS.
pub async fn security_headers<F: Future<Output = Response>>(
    app: &App,
    request: Request,
    inner: impl FnOnce(Request) -> F,
) -> Response {
    let mut response = inner(request).await;
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if app.tls.is_some() {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Turns every error response that is not already JSON (404 from the router, 405, 413
/// from the body limit, ...) into the JSON error shape.
pub async fn json_errors<F: Future<Output = Response>>(
    request: Request,
    inner: impl FnOnce(Request) -> F,
) -> Response {
    // OpenAI's clients read only OpenAI's error shape, refusals of the auth layer included.
    let openai = request.uri().path().starts_with("/v1/");
    let response = json_error_body(inner(request).await);
    if openai {
        return crate::server::error::into_openai_shape(response).await;
    }
    response
}

fn json_error_body(response: Response) -> Response {
    let status = response.status();
    // JSON errors stay as they are; HTML pages (the device approval page) carry their own.
    let has_own_body = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if (status.is_client_error() || status.is_server_error()) && !has_own_body {
        let (mut parts, _) = response.into_parts();
        let error = ApiError::for_status(status);
        let body = Body::from(error.body().to_string());
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, body);
    }
    response
}

/// Load shedding: above `max_in_flight` concurrent requests or the memory budget, new
/// work gets 503 with `Retry-After` instead of growing the process. Memory is judged by
/// what is in use (see `load::Load`), so shedding ends as soon as that falls again.
/// Health and readiness probes are always answered.
pub async fn shed_load<F: Future<Output = Response>>(
    app: &App,
    request: Request,
    inner: impl FnOnce(Request) -> F,
) -> Response {
    let path = request.uri().path();
    if path == "/health" || path == "/ready" {
        return inner(request).await;
    }
    let limits = &app.config().server;
    let in_flight = app.load.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlight(app);
    let in_use = app.load.in_use_bytes.load(Ordering::Relaxed);
    let reason = if in_flight > limits.max_in_flight {
        Some("too many requests in flight")
    } else if in_use > limits.memory_budget {
        Some("memory budget exceeded")
    } else {
        None
    };
    if let Some(reason) = reason {
        tracing::warn!(reason, in_flight, in_use, "shedding load");
        let error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Overloaded,
            format!("the gateway is overloaded ({reason}); retry shortly"),
        );
        let mut response = error.into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    inner(request).await
}

struct InFlight<'a>(&'a App);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.load.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Ends a request that runs longer than `request_timeout` with a JSON 504.
pub async fn timeout<F: Future<Output = Response>>(
    app: &App,
    request: Request,
    inner: impl FnOnce(Request) -> F,
) -> Response {
    match tokio::time::timeout(app.config().server.request_timeout, inner(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::for_status(StatusCode::GATEWAY_TIMEOUT).into_response(),
    }
}
