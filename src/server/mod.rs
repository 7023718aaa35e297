//! The HTTP(S) server: the router, its middleware stack and the redirect listener.
//!
//! [`serve`] (in [`connection`], which owns connection caps, deadlines and protocol
//! settings) takes an already bound listener and a shutdown future, so tests bind
//! `127.0.0.1:0` and drive shutdown themselves. Handlers never see TLS or sockets.

pub mod agent_routes;
pub mod api;
pub mod approval_routes;
pub mod audit_routes;
pub mod auth;
pub mod auth_routes;
pub mod browser_session;
pub mod channel_routes;
pub mod chat_routes;
pub mod connection;
pub mod dashboard_routes;
pub mod device_routes;
pub mod devices_routes;
pub mod error;
pub mod host;
pub mod json;
pub mod load;
pub mod mcp_routes;
pub mod middleware;
pub mod openai;
pub mod openapi;
pub mod pairing_routes;
pub mod provider_routes;
pub mod quota;
pub mod rate_limit;
pub mod routes;
pub mod security_routes;
pub mod state;
pub mod usage_routes;
pub mod ws;
pub mod ws_chat;

pub use api::Api;
pub use connection::{ConnectionLimits, serve};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::server::auth::{Access, Guard};
use crate::server::state::App;

/// Every route the gateway serves, with their access declarations.
pub fn api() -> Api {
    Api::new()
        .route("/health", Access::Public, get(routes::health))
        .route("/ready", Access::Public, get(routes::ready))
        .route("/ca.crt", Access::Public, get(routes::ca_certificate))
        // Authenticated in the handler: a ticket in the URL or a bearer header.
        .route("/ws", Access::Public, get(ws::upgrade))
        .merge(auth_routes::api())
        .merge(device_routes::api())
        .merge(approval_routes::api())
        .merge(chat_routes::api())
        .merge(agent_routes::api())
        .merge(usage_routes::api())
        .merge(provider_routes::api())
        .merge(pairing_routes::api())
        .merge(devices_routes::api())
        .merge(security_routes::api())
        .merge(openai::api())
        .merge(channel_routes::api())
        .merge(mcp_routes::api())
        .merge(openapi::api())
        .merge(dashboard_routes::api())
        .merge(audit_routes::api())
}

/// Every route the gateway serves, wrapped in the middleware stack.
pub fn router(app: Arc<App>) -> Router {
    with_middleware(app, api())
}

/// Wraps routes in the middleware stack every request passes through.
///
/// The checks that need the matched route (the caller's access and limits) are route
/// layers; the rest wrap the routed router once, outermost first. Wrapping it once
/// instead of each route (`Router::layer`) saves two boxed clones of the route per layer
/// on every request.
pub fn with_middleware(app: Arc<App>, api: Api) -> Router {
    let server = &app.config().server;
    let max_body = usize::try_from(server.max_body).unwrap_or(usize::MAX);
    let cors = cors_layer(&app.config().security.cors_origins);
    let guard = Guard {
        app: app.clone(),
        access: Arc::new(api.access),
    };
    let routed = api
        .router
        .route_layer(axum::middleware::from_fn_with_state(guard, route_checks))
        .with_state(app.clone());
    let stack = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            before_cors,
        ))
        .layer(cors)
        .layer(axum::middleware::from_fn_with_state(app, after_cors))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(max_body))
        .layer(DefaultBodyLimit::max(max_body))
        .service(routed);
    Router::new().fallback_service(stack)
}

// The layers are composed here as plain async functions, a few to each axum layer:
// axum's `from_fn` boxes the layer's future, boxes a clone of everything beneath it and
// boxes that clone's future, per layer and request. Three `from_fn` layers instead of
// nine cost about 9% less of the gateway's CPU at 1,000 rps (docs/src/benchmarks.md,
// round five).

/// Outermost first: the request log, security headers, JSON error bodies, load shedding
/// and `/mcp`'s Origin and URL checks (which must come before CORS and authentication).
async fn before_cors(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    middleware::request_log(&app, request, |request| {
        middleware::security_headers(&app, request, |request| {
            middleware::json_errors(request, |request| {
                middleware::shed_load(&app, request, |request| {
                    mcp_routes::guard(&app, request, |request| next.run(request))
                })
            })
        })
    })
    .await
}

/// Who is calling, then the request timeout around the rest.
async fn after_cors(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    auth::identify(&app, request, |request| {
        middleware::timeout(&app, request, |request| next.run(request))
    })
    .await
}

/// Around each route: its access declaration and rate limits, then, inside them (only
/// callers the route admits count against their limits), an API token's quota.
async fn route_checks(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    auth::authorize(&guard, request, |request| {
        quota::enforce(&guard.app, request, |request| next.run(request))
    })
    .await
}

fn cors_layer(origins: &[String]) -> CorsLayer {
    let allowed: Vec<http::HeaderValue> = origins
        .iter()
        .filter_map(|o| http::HeaderValue::from_str(o).ok())
        .collect();
    let layer = CorsLayer::new()
        .allow_methods([
            http::Method::GET,
            http::Method::POST,
            http::Method::PUT,
            http::Method::PATCH,
            http::Method::DELETE,
        ])
        .allow_headers([
            http::header::AUTHORIZATION,
            http::header::CONTENT_TYPE,
            http::HeaderName::from_static("x-api-key"),
        ])
        .max_age(Duration::from_secs(600));
    if origins.iter().any(|o| o == "*") {
        layer.allow_origin(AllowOrigin::any())
    } else {
        layer.allow_origin(AllowOrigin::list(allowed))
    }
}

/// Serves plain HTTP that only redirects to the HTTPS address.
pub async fn serve_redirect(
    listener: TcpListener,
    https_port: u16,
    public_url: Option<String>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let redirect = move |request: axum::extract::Request| {
        let public_url = public_url.clone();
        async move {
            let path = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .to_string();
            let base = public_url.unwrap_or_else(|| {
                let host = request
                    .headers()
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .and_then(host::RequestHost::parse)
                    .map_or_else(|| "localhost".into(), |h| h.host().to_string());
                format!("https://{host}:{https_port}")
            });
            axum::response::Redirect::permanent(&format!("{base}{path}"))
        }
    };
    let router = Router::new().fallback(redirect);
    serve(listener, router, None, limits, shutdown).await;
}
