//! `/mcp`: the Model Context Protocol's Streamable HTTP transport over the gateway's
//! tools and agents (`gateway::mcp`), and the OAuth metadata MCP clients read to learn
//! how to authenticate: RFC 9728 protected-resource metadata at
//! `/.well-known/oauth-protected-resource` (and its `/mcp` suffixed form) naming this
//! device as the authorization server, and RFC 8414 metadata at
//! `/.well-known/oauth-authorization-server` describing the device flow.
//!
//! [`guard`] runs before authentication for `/mcp`: a browser `Origin` that is not the
//! gateway's own or a configured CORS origin is refused (403), a credential in the query
//! string is refused (400), and every refusal the layers below make (401, 403, 413, 429)
//! leaves as a JSON-RPC error, a 401 with `WWW-Authenticate: Bearer
//! resource_metadata="…"`. POST carries one JSON-RPC message: notifications and answers
//! get 202, requests JSON, `tools/call` server-sent events when the client takes them
//! (so a call waiting for approval can say so and be kept alive). GET is 405 (no
//! server-initiated stream), DELETE ends the session. Errors become responses here and
//! nowhere else in this file; no message ever carries a store's or a sandbox's internals.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::Stream;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::audit::{AuditEvent, Outcome};
use crate::auth::{Principal, Via};
use crate::gateway::mcp::calls::{self, Caller as McpCaller, Progress, ToolResult};
use crate::gateway::mcp::catalogue;
use crate::gateway::mcp::jsonrpc::{
    self, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, Incoming, Method, RequestId, RpcError,
};
use crate::gateway::mcp::{self as mcp, McpError};
use crate::server::api::Api;
use crate::server::auth::{Access, Caller, ClientIp};
use crate::server::state::App;

/// The MCP endpoint's path.
pub const PATH: &str = "/mcp";
const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
/// Query parameters that would carry a credential; MCP forbids tokens in URLs.
const CREDENTIAL_PARAMS: &[&str] = &[
    "access_token",
    "token",
    "api_key",
    "apikey",
    "key",
    "bearer",
    "authorization",
];
/// Bytes of a lower layer's error body read to rewrite it.
const MAX_ERROR_BODY: usize = 16 * 1024;
/// The interval of SSE comments that keep a waiting call's stream open.
const KEEPALIVE: Duration = Duration::from_secs(15);

pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        post,
        stream_refused,
        end,
        resource_metadata,
        authorization_server_metadata
    ))]
    struct Doc;
    let mut doc = <Doc as utoipa::OpenApi>::openapi();
    crate::server::api::also_at(
        &mut doc,
        http::Method::GET,
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    );
    doc
}

pub fn api() -> Api {
    Api::new()
        .route(
            PATH,
            Access::Authenticated,
            axum::routing::post(post).get(stream_refused).delete(end),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            Access::Public,
            get(resource_metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            Access::Public,
            get(resource_metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            Access::Public,
            get(authorization_server_metadata),
        )
}

/// Where clients reach this gateway: `[server] public_url`, else the request's host.
fn public_base(app: &App, uri: &http::Uri, headers: &HeaderMap) -> String {
    if let Some(url) = &app.config().server.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let named = uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()));
    let host = named.and_then(crate::server::host::RequestHost::parse);
    let host = host.as_ref().map_or("localhost", |h| h.authority());
    format!("{}://{host}", app.config().scheme())
}

/// Whether a browser's `Origin` may call `/mcp`: the gateway's own origin or a
/// configured CORS origin. A request without `Origin` is not a browser's.
fn origin_allowed(app: &App, uri: &http::Uri, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    let config = app.config();
    if config.security.cors_origins.iter().any(|o| o == origin) {
        return true;
    }
    if let Some(url) = &config.server.public_url
        && url.trim_end_matches('/') == origin
    {
        return true;
    }
    let named = uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()));
    named.is_some_and(|host| origin == format!("{}://{host}", config.scheme()))
}

fn credential_in_query(uri: &http::Uri) -> bool {
    uri.query().is_some_and(|query| {
        query.split('&').any(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            CREDENTIAL_PARAMS
                .iter()
                .any(|c| name.eq_ignore_ascii_case(c))
        })
    })
}

/// Runs before authentication for `/mcp` (see the module's doc).
pub async fn guard<F: Future<Output = Response>>(
    app: &App,
    request: Request,
    inner: impl FnOnce(Request) -> F,
) -> Response {
    if request.uri().path() != PATH {
        return inner(request).await;
    }
    let ip = app.limits.client_ip(
        request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)), |c| c.0),
        request.headers(),
    );
    if !origin_allowed(app, request.uri(), request.headers()) {
        let error = RpcError::new(
            None,
            INVALID_REQUEST,
            "this origin may not call the MCP endpoint ([security] cors_origins)",
        );
        audit_refusal(app, ip, None, &error, StatusCode::FORBIDDEN);
        return rpc_response(StatusCode::FORBIDDEN, &error);
    }
    if credential_in_query(request.uri()) {
        let error = RpcError::new(
            None,
            INVALID_REQUEST,
            "credentials are not accepted in the URL: send Authorization: Bearer <token> or X-API-Key",
        );
        audit_refusal(app, ip, None, &error, StatusCode::BAD_REQUEST);
        return rpc_response(StatusCode::BAD_REQUEST, &error);
    }
    let base = public_base(app, request.uri(), request.headers());
    let response = inner(request).await;
    as_rpc_error(response, &base).await
}

/// A lower layer's refusal as a JSON-RPC error, a 401 with the resource metadata's URL.
async fn as_rpc_error(response: Response, base: &str) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<RpcShaped>().is_some()
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("error")?.get("message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("the request was refused")
                .to_string()
        });
    let code = if status.is_server_error() {
        INTERNAL_ERROR
    } else {
        INVALID_REQUEST
    };
    let body = RpcError::new(None, code, message).to_json().to_string();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    if status == StatusCode::UNAUTHORIZED
        && let Ok(value) = HeaderValue::from_str(&format!(
            "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource\""
        ))
    {
        parts.headers.insert(header::WWW_AUTHENTICATE, value);
    }
    Response::from_parts(parts, Body::from(body))
}

/// Marks a response that is already a JSON-RPC message.
#[derive(Debug, Clone, Copy)]
struct RpcShaped;

fn rpc_response(status: StatusCode, error: &RpcError) -> Response {
    json_message(status, &error.to_json())
}

fn json_message(status: StatusCode, message: &Value) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        message.to_string(),
    )
        .into_response();
    response.extensions_mut().insert(RpcShaped);
    response
}

/// Records a refused MCP message, at most once per client address and minute.
fn audit_refusal(
    app: &App,
    ip: std::net::IpAddr,
    principal: Option<&Principal>,
    error: &RpcError,
    status: StatusCode,
) {
    if let Some(suppressed) = app.refusals.should_audit(app.limits.key(ip)) {
        app.audit().record_or_log(
            AuditEvent::new("mcp.refused")
                .actor(
                    principal
                        .map(Principal::actor)
                        .unwrap_or_else(|| "anonymous".into()),
                )
                .target(PATH.to_string())
                .outcome(Outcome::Denied)
                .source_ip(Some(ip))
                .details(json!({
                    "status": status.as_u16(),
                    "rpc_code": error.code,
                    "message": error.message.chars().take(256).collect::<String>(),
                    "unrecorded_before": suppressed,
                })),
        );
    }
}

/// The status an MCP error is sent with.
fn status_of(err: &McpError) -> StatusCode {
    match err {
        McpError::UnknownSession(_) => StatusCode::NOT_FOUND,
        McpError::MissingSession
        | McpError::UnsupportedVersion(_)
        | McpError::UnknownTool(_)
        | McpError::BadArguments { .. } => StatusCode::BAD_REQUEST,
        McpError::Scope { .. } => StatusCode::FORBIDDEN,
        McpError::GatewayFull(_) => StatusCode::SERVICE_UNAVAILABLE,
        McpError::Store => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What each request to `/mcp` carries besides its body.
struct Exchange {
    app: Arc<App>,
    principal: Principal,
    ip: std::net::IpAddr,
}

impl Exchange {
    /// The error as a response, audited.
    fn refuse(&self, id: Option<RequestId>, err: &McpError) -> Response {
        if matches!(err, McpError::Store) {
            tracing::error!("an MCP request could not read the agents");
        }
        let status = status_of(err);
        let error = RpcError::new(id, err.rpc_code(), err.to_string());
        audit_refusal(&self.app, self.ip, Some(&self.principal), &error, status);
        let mut response = rpc_response(status, &error);
        if let McpError::Scope { scope, .. } = err
            && let Ok(value) = HeaderValue::from_str(&format!(
                "Bearer error=\"insufficient_scope\", scope=\"{scope}\""
            ))
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }

    fn refuse_rpc(&self, error: &RpcError) -> Response {
        audit_refusal(
            &self.app,
            self.ip,
            Some(&self.principal),
            error,
            StatusCode::BAD_REQUEST,
        );
        rpc_response(StatusCode::BAD_REQUEST, error)
    }

    /// The key sessions are bound to: the API token, the paired device, or the user.
    fn owner(&self) -> String {
        match (&self.principal.via, self.principal.api_token_id()) {
            (_, Some(token)) => format!("token:{token}"),
            (Via::PairedDevice { id }, None) => format!("device:{id}"),
            _ => format!("user:{}", self.principal.username),
        }
    }

    /// The session the request names, alive and the caller's; its protocol revision.
    fn session(&self, headers: &HeaderMap) -> Result<(String, &'static str), McpError> {
        let id = headers
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or(McpError::MissingSession)?;
        let protocol = self.app.mcp.touch(id, &self.owner())?;
        if let Some(version) = headers.get(VERSION_HEADER) {
            let version = version.to_str().unwrap_or_default();
            if !mcp::supported(version) {
                return Err(McpError::UnsupportedVersion(
                    version.chars().take(32).collect(),
                ));
            }
        }
        Ok((id.to_string(), protocol))
    }
}

/// What the client's `Accept` admits.
struct Accepts {
    json: bool,
    sse: bool,
}

fn accepts(headers: &HeaderMap) -> Accepts {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase();
    let any = accept.contains("*/*");
    Accepts {
        json: any || accept.contains("application/json"),
        sse: any || accept.contains("text/event-stream"),
    }
}

/// `POST /mcp`: one JSON-RPC message.
#[utoipa::path(
    post,
    path = "/mcp",
    tag = "mcp",
    summary = "One MCP JSON-RPC message (Streamable HTTP); see the MCP specification",
    params(("MCP-Session-Id" = Option<String>, Header, description = "The session `initialize` issued; required after it"), ("MCP-Protocol-Version" = Option<String>, Header, description = "The negotiated protocol revision")),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "A JSON-RPC response, as JSON or as server-sent events", content(
            (Object = "application/json"),
            (String = "text/event-stream")
        )),
        (status = 202, description = "A notification or response was accepted"),
        (status = 404, description = "The session ended or never was", body = Object),
        (status = 406, description = "The client accepts neither JSON nor server-sent events", body = Object),
        (status = 415, description = "The body is not JSON", body = Object)
    )
)]
async fn post(
    State(app): State<Arc<App>>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let exchange = Exchange {
        app,
        principal: caller.into_principal(),
        ip,
    };
    let accepts = accepts(&headers);
    if !accepts.json && !accepts.sse {
        let error = RpcError::new(
            None,
            INVALID_REQUEST,
            "send Accept: application/json, text/event-stream",
        );
        return rpc_response(StatusCode::NOT_ACCEPTABLE, &error);
    }
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    if !json_body {
        let error = RpcError::new(None, INVALID_REQUEST, "send Content-Type: application/json");
        return rpc_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, &error);
    }
    let incoming = match jsonrpc::parse(&body) {
        Ok(incoming) => incoming,
        Err(error) => return exchange.refuse_rpc(&error),
    };
    match incoming {
        Incoming::Notification { .. } | Incoming::Response => match exchange.session(&headers) {
            Ok(_) => StatusCode::ACCEPTED.into_response(),
            Err(err) => exchange.refuse(None, &err),
        },
        Incoming::Request {
            id,
            method: Method::Initialize(params),
        } => initialize(&exchange, id, &params),
        Incoming::Request { id, method } => {
            if let Err(err) = exchange.session(&headers) {
                return exchange.refuse(Some(id), &err);
            }
            match method {
                Method::Ping => json_message(StatusCode::OK, &jsonrpc::result(&id, json!({}))),
                Method::ToolsList(params) => list(&exchange, id, params.cursor.as_deref()),
                Method::ToolsCall(params) => tools_call(exchange, id, params, &accepts).await,
                Method::Initialize(_) => {
                    // Matched above; kept so a new method cannot be forgotten here.
                    exchange.refuse_rpc(&RpcError::new(Some(id), INVALID_REQUEST, "initialize"))
                }
            }
        }
    }
}

fn initialize(exchange: &Exchange, id: RequestId, params: &jsonrpc::InitializeParams) -> Response {
    let protocol = mcp::SUPPORTED_VERSIONS
        .iter()
        .find(|v| **v == params.protocol_version)
        .copied()
        .unwrap_or(mcp::PROTOCOL_VERSION);
    let opened = match exchange.app.mcp.open(&exchange.owner(), protocol) {
        Ok(opened) => opened,
        Err(err) => return exchange.refuse(Some(id), &err),
    };
    exchange.app.audit().record_or_log(
        AuditEvent::new("mcp.session")
            .actor(exchange.principal.actor())
            .target(PATH.to_string())
            .source_ip(Some(exchange.ip))
            .details(json!({
                "phase": "open",
                "protocol": protocol,
                "client": params.client_info.name.chars().take(64).collect::<String>(),
                "ended_oldest": opened.evicted.is_some(),
            })),
    );
    let result = json!({
        "protocolVersion": protocol,
        "capabilities": { "tools": { "listChanged": false } },
        "serverInfo": {
            "name": mcp::SERVER_NAME,
            "title": "aisopod gateway",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "instructions": "Each agent of this gateway is a tool (ask it with a prompt); its own tools are <agent>__<tool>. Commands pass the gateway's command filter, and some wait for a person to approve them on their phone or dashboard.",
    });
    let mut response = json_message(StatusCode::OK, &jsonrpc::result(&id, result));
    if let Ok(value) = HeaderValue::from_str(&opened.id) {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
    response
}

fn list(exchange: &Exchange, id: RequestId, cursor: Option<&str>) -> Response {
    if cursor.is_some() {
        let error = RpcError::new(
            Some(id),
            INVALID_PARAMS,
            "unknown cursor: tools/list answers in one page",
        );
        return exchange.refuse_rpc(&error);
    }
    match catalogue::list(&exchange.app.gateway.agents, exchange.principal.scopes) {
        Ok(tools) => json_message(
            StatusCode::OK,
            &jsonrpc::result(&id, json!({ "tools": tools })),
        ),
        Err(err) => exchange.refuse(Some(id), &err),
    }
}

async fn tools_call(
    exchange: Exchange,
    id: RequestId,
    params: jsonrpc::CallParams,
    accepts: &Accepts,
) -> Response {
    let tool = match catalogue::resolve(&exchange.app.gateway.agents, &params.name) {
        Ok(tool) => tool,
        Err(err) => return exchange.refuse(Some(id), &err),
    };
    let scope = tool.scope();
    if !exchange.principal.allows(scope) {
        let err = McpError::Scope {
            tool: tool.name(),
            scope: scope.as_str(),
        };
        return exchange.refuse(Some(id), &err);
    }
    let arguments = Value::Object(params.arguments.unwrap_or_default());
    if let Err(err) = calls::check_arguments(&tool, &arguments) {
        return exchange.refuse(Some(id), &err);
    }
    let caller = McpCaller {
        user: exchange.principal.username.clone(),
        token: exchange.principal.api_token_id().map(str::to_owned),
        // Not the session id: approval requests are shown to the owner's other clients.
        tag: format!("mcp:{}", crate::ids::random_id(12)),
    };
    let progress_token = params.meta.and_then(|m| m.progress_token);
    if !accepts.sse {
        let app = exchange.app.clone();
        let deps = app.agent_loop().await;
        // Nobody reads progress on a plain JSON answer.
        let (progress, _) = mpsc::channel(1);
        let outcome = calls::call(&deps, &caller, &tool, arguments, progress).await;
        return match outcome {
            Ok(result) => json_message(StatusCode::OK, &jsonrpc::result(&id, result.to_json())),
            Err(err) => exchange.refuse(Some(id), &err),
        };
    }
    let (progress, progress_rx) = mpsc::channel(8);
    let (done, done_rx) = oneshot::channel();
    let cancel = CancellationToken::new();
    let guard = cancel.clone().drop_guard();
    let app = exchange.app.clone();
    tokio::spawn(async move {
        let deps = app.agent_loop().await;
        tokio::select! {
            () = cancel.cancelled() => {}
            outcome = calls::call(&deps, &caller, &tool, arguments, progress) => {
                let _ = done.send(outcome);
            }
        }
    });
    let events = CallEvents {
        id,
        progress_token,
        progress: progress_rx,
        done: Some(done_rx),
        steps: 0,
        _guard: guard,
    };
    Sse::new(events.into_stream())
        .keep_alive(KeepAlive::new().interval(KEEPALIVE))
        .into_response()
}

/// What one streamed `tools/call` answer is made of; dropping it (the client went
/// away) cancels the call.
struct CallEvents {
    id: RequestId,
    progress_token: Option<RequestId>,
    progress: mpsc::Receiver<Progress>,
    done: Option<oneshot::Receiver<Result<ToolResult, McpError>>>,
    steps: u32,
    _guard: DropGuard,
}

impl CallEvents {
    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> + Send {
        futures_util::stream::unfold(self, |mut state| async move {
            let done = state.done.as_mut()?;
            let message = tokio::select! {
                Some(step) = state.progress.recv() => {
                    let Some(token) = &state.progress_token else {
                        return Some((Ok(Event::default().comment("progress")), state));
                    };
                    state.steps += 1;
                    let Progress::AwaitingApproval { approval_id, summary } = step;
                    jsonrpc::notification("notifications/progress", json!({
                        "progressToken": token,
                        "progress": state.steps,
                        "message": format!("waiting for a person to approve {summary:?} ({approval_id})"),
                    }))
                }
                outcome = done => {
                    state.done = None;
                    match outcome {
                        Ok(Ok(result)) => jsonrpc::result(&state.id, result.to_json()),
                        Ok(Err(err)) => RpcError::new(Some(state.id.clone()), err.rpc_code(), err.to_string()).to_json(),
                        Err(_) => RpcError::new(Some(state.id.clone()), INTERNAL_ERROR, "the call ended without an answer").to_json(),
                    }
                }
            };
            Some((
                Ok(Event::default().event("message").data(message.to_string())),
                state,
            ))
        })
    }
}

/// `GET /mcp`: this server opens no stream of its own.
#[utoipa::path(
    get,
    path = "/mcp",
    tag = "mcp",
    summary = "No server-initiated stream is offered",
    responses((status = 405, description = "A JSON-RPC error; POST instead", body = Object))
)]
async fn stream_refused(_caller: Caller) -> Response {
    let mut response = rpc_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &RpcError::new(
            None,
            INVALID_REQUEST,
            "this server offers no server-initiated stream: POST requests to /mcp",
        ),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
    response
}

/// `DELETE /mcp`: ends the session the header names.
#[utoipa::path(
    delete,
    path = "/mcp",
    tag = "mcp",
    summary = "End an MCP session",
    params(("MCP-Session-Id" = String, Header, description = "The session to end")),
    responses((status = 204, description = "Ended"), (status = 404, description = "No such session", body = Object))
)]
async fn end(
    State(app): State<Arc<App>>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Response {
    let exchange = Exchange {
        app,
        principal: caller.into_principal(),
        ip,
    };
    let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return exchange.refuse(None, &McpError::MissingSession);
    };
    match exchange.app.mcp.close(id, &exchange.owner()) {
        Ok(()) => {
            exchange.app.audit().record_or_log(
                AuditEvent::new("mcp.session")
                    .actor(exchange.principal.actor())
                    .target(PATH.to_string())
                    .source_ip(Some(ip))
                    .details(json!({ "phase": "end" })),
            );
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => exchange.refuse(None, &err),
    }
}

/// RFC 9728: this gateway is the resource, and its own authorization server.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-protected-resource",
    tag = "mcp",
    summary = "Protected-resource metadata (RFC 9728) for MCP clients",
    responses((status = 200, description = "The metadata", body = Object))
)]
async fn resource_metadata(
    State(app): State<Arc<App>>,
    uri: http::Uri,
    headers: HeaderMap,
) -> Response {
    let base = public_base(&app, &uri, &headers);
    let scopes: Vec<&str> = crate::auth::scopes::Scopes::all().names();
    axum::Json(json!({
        "resource": format!("{base}{PATH}"),
        "authorization_servers": [base],
        "bearer_methods_supported": ["header"],
        "scopes_supported": scopes,
        "resource_name": "aisopod gateway MCP endpoint",
        "resource_documentation": format!("{base}/"),
    }))
    .into_response()
}

/// RFC 8414: the device authorization grant this gateway issues API tokens through.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "mcp",
    summary = "Authorization-server metadata (RFC 8414): the device flow",
    responses((status = 200, description = "The metadata", body = Object))
)]
async fn authorization_server_metadata(
    State(app): State<Arc<App>>,
    uri: http::Uri,
    headers: HeaderMap,
) -> Response {
    let base = public_base(&app, &uri, &headers);
    let scopes: Vec<&str> = crate::auth::scopes::Scopes::all().names();
    axum::Json(json!({
        "issuer": base,
        "token_endpoint": format!("{base}/auth/token"),
        "device_authorization_endpoint": format!("{base}/auth/device/code"),
        "grant_types_supported": ["urn:ietf:params:oauth:grant-type:device_code"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": scopes,
    }))
    .into_response()
}
