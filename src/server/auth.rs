//! Who is calling, and may they: the server's side of authentication and authorization.
//!
//! Two layers. [`identify`] runs on every request before routing: it finds the client
//! address (see `server::rate_limit`), resolves a presented credential
//! (`Authorization: Bearer`, or `X-API-Key`) into a [`Principal`], and refuses a wrong
//! credential with 401 at once. [`authorize`] runs after routing on every route: it looks
//! the matched route up in the [`AccessTable`] and refuses what the route does not allow.
//! A route with no declaration is refused (403), so forgetting to declare one fails
//! closed. Handlers then take a capability ([`Caller`], [`Admin`]) that only a principal
//! with the right scope yields, so a handler cannot be reached without its check.
//! Refusals (401, 403, 429) are audited, at most once per client address and minute so
//! that a flood cannot turn into a flood of disk writes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode, header};

use crate::audit::{AuditEvent, Outcome};
use crate::auth::scopes::Scope;
use crate::auth::{Principal, Via};
use crate::config::AuthMode;
use crate::server::error::{ApiError, ErrorCode};
use crate::server::rate_limit::RouteClass;
use crate::server::state::App;

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: probes, the CA certificate.
    Public,
    /// Anyone, but limited as a guessing target (login, refresh, claim, device flow).
    Credentials,
    /// Any authenticated principal.
    Authenticated,
    /// A principal holding this scope.
    Scope(Scope),
}

/// Every route's access declaration, keyed by path pattern and optionally method.
#[derive(Debug, Default, Clone)]
pub struct AccessTable {
    entries: HashMap<(Option<Method>, &'static str), Access>,
}

impl AccessTable {
    pub fn declare(&mut self, method: Option<Method>, path: &'static str, access: Access) {
        self.entries.insert((method, path), access);
    }

    pub fn lookup(&self, method: &Method, path: &str) -> Option<Access> {
        self.entries
            .get(&(Some(method.clone()), path))
            .or_else(|| self.entries.get(&(None, path)))
            .copied()
    }

    pub fn entries(&self) -> impl Iterator<Item = (Option<&Method>, &'static str, Access)> {
        self.entries.iter().map(|((m, p), a)| (m.as_ref(), *p, *a))
    }
}

/// The client address as rate limits and the audit log see it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// The principal behind the request's credential, if it presented one.
#[derive(Debug, Clone)]
struct Identity(Option<Principal>);

/// The principal a request authenticated as, for the layers that run after [`identify`].
pub fn principal(request: &Request) -> Option<&Principal> {
    request
        .extensions()
        .get::<Identity>()
        .and_then(|i| i.0.as_ref())
}

/// Audits a refused request (once per address and minute, with the count of those
/// refused in between) and builds the response.
pub fn refuse(
    app: &App,
    ip: IpAddr,
    path: &str,
    error: ApiError,
    actor: Option<&Principal>,
) -> Response {
    if let Some(suppressed) = app.refusals.should_audit(app.limits.key(ip)) {
        let event = AuditEvent::new("http.refused")
            .actor(
                actor
                    .map(Principal::actor)
                    .unwrap_or_else(|| "anonymous".into()),
            )
            .target(path.to_string())
            .outcome(Outcome::Denied)
            .source_ip(Some(ip))
            .details(serde_json::json!({ "status": error.status.as_u16(), "code": error.code, "unrecorded_before": suppressed }));
        let app_audit = app.audit();
        app_audit.record_or_log(event);
    }
    error.into_response()
}

pub fn too_many(wait: Duration) -> ApiError {
    let secs = wait.as_secs().max(1);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        format!("too many requests; retry in {secs} s"),
    )
}

/// Adds `Retry-After` to a 429.
pub fn with_retry_after(mut response: Response, wait: Duration) -> Response {
    if let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The credential a request presents, if any.
fn presented_credential(request: &Request) -> Option<String> {
    let headers = request.headers();
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
            return Some(token.trim().to_string());
        }
        // Some other scheme: treated as a wrong credential below.
        return Some(String::new());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

/// Resolves the caller before routing; wrong credentials end here with 401.
pub async fn identify<F: Future<Output = Response>>(
    app: &App,
    mut request: Request,
    inner: impl FnOnce(Request) -> F,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let ip = app.limits.client_ip(peer, request.headers());
    request.extensions_mut().insert(ClientIp(ip));
    let auth = &app.services.auth;
    let principal = if auth.mode == AuthMode::None {
        auth.resolve("").ok()
    } else {
        match presented_credential(&request) {
            None => None,
            Some(credential) => {
                // On the async worker: a check is a hash and a few reads of the store's
                // cache (a few µs, benches/auth.rs), less than handing it to the blocking
                // pool and back, which cost two thread wake-ups on every request.
                match auth.resolve(&credential) {
                    Ok(principal) => Some(principal),
                    _ => {
                        if let Err(wait) = app.limits.check(RouteClass::Api, ip, None) {
                            let response =
                                refuse(app, ip, request.uri().path(), too_many(wait), None);
                            return with_retry_after(response, wait);
                        }
                        let error = ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            ErrorCode::InvalidCredential,
                            "the credential is invalid, expired or revoked",
                        );
                        let mut response = refuse(app, ip, request.uri().path(), error, None);
                        response
                            .headers_mut()
                            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                        return response;
                    }
                }
            }
        }
    };
    request.extensions_mut().insert(Identity(principal));
    let mut response = inner(request).await;
    if auth.mode == AuthMode::None {
        response.headers_mut().insert(
            "x-aisopod-warning",
            HeaderValue::from_static(
                "authentication is disabled ([auth] mode = \"none\"); do not expose this gateway",
            ),
        );
    }
    response
}

/// What [`authorize`] needs: the app and the table of declarations.
#[derive(Debug, Clone)]
pub struct Guard {
    pub app: Arc<App>,
    pub access: Arc<AccessTable>,
}

/// Enforces the matched route's declaration and the rate limits.
pub async fn authorize<F: Future<Output = Response>>(
    guard: &Guard,
    request: Request,
    inner: impl FnOnce(Request) -> F,
) -> Response {
    let app = &guard.app;
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let ip = request
        .extensions()
        .get::<ClientIp>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0);
    let principal = request
        .extensions()
        .get::<Identity>()
        .and_then(|i| i.0.clone());
    let Some(access) = guard.access.lookup(request.method(), &path) else {
        tracing::error!(%path, "route has no access declaration; refusing");
        let error = ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, "not allowed");
        return refuse(app, ip, &path, error, principal.as_ref());
    };
    let credential_key = principal.as_ref().map(|p| match &p.via {
        Via::ApiToken { id } => format!("token:{id}"),
        Via::PairedDevice { id } => format!("device:{id}"),
        _ => format!("user:{}", p.username),
    });
    let limited = match access {
        Access::Public => Ok(()),
        Access::Credentials => app.limits.check(RouteClass::Auth, ip, None),
        Access::Authenticated | Access::Scope(_) => {
            app.limits
                .check(RouteClass::Api, ip, credential_key.as_deref())
        }
    };
    if let Err(wait) = limited {
        let response = refuse(app, ip, &path, too_many(wait), principal.as_ref());
        return with_retry_after(response, wait);
    }
    let refusal = match (access, &principal) {
        (Access::Public | Access::Credentials, _) => None,
        (Access::Authenticated | Access::Scope(_), None) => Some(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "authentication is required: send Authorization: Bearer <token>",
        )),
        (Access::Scope(scope), Some(p)) if !p.allows(scope) => Some(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!("this needs the {scope} scope"),
        )),
        _ => None,
    };
    if let Some(error) = refusal {
        let unauthorized = error.status == StatusCode::UNAUTHORIZED;
        let mut response = refuse(app, ip, &path, error, principal.as_ref());
        if unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        return response;
    }
    inner(request).await
}

fn principal_of(parts: &Parts) -> Result<Principal, ApiError> {
    parts
        .extensions
        .get::<Identity>()
        .and_then(|i| i.0.clone())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "authentication is required",
            )
        })
}

/// Any authenticated caller. Sealed: its field is private and only this extractor makes
/// one, so holding a `Caller` proves the request authenticated.
///
/// A handler cannot forge one:
///
/// ```compile_fail,E0423
/// use aisopod::auth::Principal;
/// use aisopod::server::auth::Caller;
///
/// fn forge(principal: Principal) -> Caller {
///     Caller(principal)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Caller(Principal);

impl Caller {
    /// The principal, for handlers that keep or pass it on.
    pub fn into_principal(self) -> Principal {
        self.0
    }
}

impl std::ops::Deref for Caller {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        principal_of(parts).map(Caller)
    }
}

/// The caller if it authenticated, for routes that also accept other proof (`/ws`).
/// Sealed like [`Caller`].
#[derive(Debug, Clone)]
pub struct MaybeCaller(Option<Principal>);

impl MaybeCaller {
    /// The principal, when the request authenticated.
    pub fn into_principal(self) -> Option<Principal> {
        self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(MaybeCaller(principal_of(parts).ok()))
    }
}

/// A caller holding the `admin` scope. Sealed: only this extractor makes one, after
/// checking the scope, so a handler taking an `Admin` cannot run without that check.
///
/// A handler cannot forge one, not even from a [`Caller`]'s principal:
///
/// ```compile_fail,E0423
/// use aisopod::server::auth::{Admin, Caller};
///
/// fn promote(caller: Caller) -> Admin {
///     Admin(caller.into_principal())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Admin(Principal);

impl Admin {
    /// The principal, for handlers that keep or pass it on.
    pub fn into_principal(self) -> Principal {
        self.0
    }
}

impl std::ops::Deref for Admin {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let principal = principal_of(parts)?;
        if principal.allows(Scope::Admin) {
            Ok(Admin(principal))
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "this needs the admin scope",
            ))
        }
    }
}

/// The client address, for handlers that audit.
impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .unwrap_or(ClientIp(IpAddr::from([0, 0, 0, 0]))))
    }
}
