//! The HTTP(S) server: the router, its middleware stack and the connection loop.
//!
//! [`serve`] takes an already bound listener and a shutdown future, so tests bind
//! `127.0.0.1:0` and drive shutdown themselves. Each connection gets a permit from a
//! fixed pool (excess connections are closed at once), a TLS handshake bounded in time
//! (slow or silent clients are dropped), and HTTP/1.1 header reads bounded in time
//! (slowloris). A client that speaks plain HTTP to the TLS port gets a plain `400`
//! telling it to use HTTPS. On shutdown the listener closes and in-flight requests get
//! `shutdown_timeout` to finish. Handlers never see TLS or sockets.

pub mod approval_routes;
pub mod auth;
pub mod auth_routes;
pub mod device_routes;
pub mod error;
pub mod json;
pub mod middleware;
pub mod routes;
pub mod ws;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::routing::{MethodRouter, get};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::app::App;
use crate::server::auth::{Access, AccessTable, Guard};

/// The first byte of a TLS ClientHello record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

const PLAIN_HTTP_ON_TLS_PORT: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 52\r\n\r\nThis port speaks HTTPS; use an https:// URL instead.\n";

/// Routes with their access declarations; every route is added through [`Api::route`].
#[derive(Debug, Default)]
pub struct Api {
    router: Router<Arc<App>>,
    access: AccessTable,
}

impl Api {
    pub fn new() -> Api {
        Api::default()
    }

    /// Adds a route and declares who may call it.
    pub fn route(
        mut self,
        path: &'static str,
        access: Access,
        handler: MethodRouter<Arc<App>>,
    ) -> Api {
        self.access.declare(None, path, access);
        self.router = self.router.route(path, handler);
        self
    }

    pub fn merge(mut self, other: Api) -> Api {
        for (method, path, access) in other.access.entries() {
            self.access.declare(method.cloned(), path, access);
        }
        self.router = self.router.merge(other.router);
        self
    }

    /// The declarations, for tests that walk every route.
    pub fn access(&self) -> &AccessTable {
        &self.access
    }
}

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
}

/// Every route the gateway serves, wrapped in the middleware stack.
pub fn router(app: Arc<App>) -> Router {
    with_middleware(app, api())
}

/// Wraps routes in the middleware stack every request passes through.
pub fn with_middleware(app: Arc<App>, api: Api) -> Router {
    let server = &app.config().server;
    let max_body = usize::try_from(server.max_body).unwrap_or(usize::MAX);
    let cors = cors_layer(&app.config().security.cors_origins);
    let guard = Guard {
        app: app.clone(),
        access: Arc::new(api.access),
    };
    api.router
        .route_layer(axum::middleware::from_fn_with_state(guard, auth::authorize))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(max_body))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            middleware::timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::identify,
        ))
        .layer(cors)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            middleware::shed_load,
        ))
        .layer(axum::middleware::from_fn(middleware::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            middleware::security_headers,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            middleware::request_log,
        ))
        .with_state(app)
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

/// Connection limits the accept loop enforces.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub shutdown_timeout: Duration,
}

impl ConnectionLimits {
    pub fn from_app(app: &App) -> Self {
        let server = &app.config().server;
        ConnectionLimits {
            max_connections: server.max_connections,
            handshake_timeout: server.handshake_timeout,
            shutdown_timeout: server.shutdown_timeout,
        }
    }
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until `shutdown`
/// resolves, then drains in-flight requests for up to `limits.shutdown_timeout`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; closing new connection");
            drop(stream);
            continue;
        };
        let router = router.clone();
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            match acceptor {
                Some(acceptor) => {
                    let Some(stream) =
                        tls_handshake(stream, &acceptor, limits.handshake_timeout, peer).await
                    else {
                        return;
                    };
                    serve_connection(stream, router, peer, limits, watcher).await;
                }
                None => serve_connection(stream, router, peer, limits, watcher).await,
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::debug!("all connections drained"),
        () = tokio::time::sleep(limits.shutdown_timeout) => tracing::warn!("shutdown timeout reached; closing remaining connections"),
    }
}

async fn tls_handshake(
    mut stream: TcpStream,
    acceptor: &TlsAcceptor,
    limit: Duration,
    peer: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(limit, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] != TLS_HANDSHAKE_RECORD => {
            tracing::debug!(%peer, "plain bytes on the TLS port");
            let _ = tokio::time::timeout(limit, stream.write_all(PLAIN_HTTP_ON_TLS_PORT)).await;
            let _ = stream.shutdown().await;
            return None;
        }
        Ok(Ok(1)) => {}
        _ => return None,
    }
    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(err)) => {
            tracing::debug!(%peer, error = %err, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

async fn serve_connection<S>(
    stream: S,
    router: Router,
    peer: SocketAddr,
    limits: ConnectionLimits,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move {
            Ok::<_, Infallible>(
                router
                    .oneshot(request.map(axum::body::Body::new))
                    .await
                    .unwrap_or_else(|e| match e {}),
            )
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.handshake_timeout)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .keep_alive_interval(Duration::from_secs(30))
        .max_header_list_size(64 * 1024);
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    if let Err(err) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(%peer, error = %err, "connection ended with an error");
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
                    .and_then(|h| {
                        h.rsplit_once(':')
                            .map(|(host, _)| host.to_string())
                            .or(Some(h.to_string()))
                    })
                    .filter(|h| {
                        !h.is_empty()
                            && h.chars()
                                .all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c))
                    })
                    .unwrap_or_else(|| "localhost".into());
                format!("https://{host}:{https_port}")
            });
            axum::response::Redirect::permanent(&format!("{base}{path}"))
        }
    };
    let router = Router::new().fallback(redirect);
    serve(listener, router, None, limits, shutdown).await;
}
