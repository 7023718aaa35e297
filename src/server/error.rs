//! Errors become HTTP responses here, and only here.
//!
//! Every error a client sees is `{"error":{"code","message"}}` with a stable `code` and
//! a message fit for the user. The cause of a 5xx is logged with the request id and
//! never sent: no paths, no internal type names, no stack traces. The codes are one
//! enum, [`ErrorCode`], shared by HTTP answers and the WebSocket's `error` messages.
//! The routes OpenAI clients call (`/v1/*`) answer in OpenAI's own shape instead,
//! through [`openai_error`].

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use serde::Serialize;

use crate::error::Error;
use crate::gateway::quota::{Limit, QuotaExceeded};

/// Every `code` a client can see in an error, HTTP or WebSocket. Clients and scripts
/// match on these strings, so a variant's wire name never changes once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidRequest,
    InvalidJson,
    RateLimited,
    /// Too many sign-in attempts for a username from unknown clients; no password checked.
    Throttled,
    Unavailable,
    Overloaded,
    NotReady,
    Busy,
    Timeout,
    Internal,
    StorageFull,
    Refused,
    /// A failed login: one code whether the user exists, is locked or disabled.
    InvalidCredentials,
    /// A presented token, session or refresh credential that is invalid or expired.
    InvalidCredential,
    Conflict,
    WeakPassword,
    AlreadyClaimed,
    WrongClaimCode,
    AlreadyResolved,
    InputChanged,
    // The WebSocket's own refusals.
    OriginNotAllowed,
    InvalidTicket,
    NotAWebsocket,
    MessageTooLarge,
    BinaryNotAccepted,
    Malformed,
    UnknownType,
    InvalidMessage,
    SessionRevoked,
    // Chats and agents.
    BadCursor,
    PageTooLarge,
    LimitReached,
    ReadOnly,
    // Webhook deliveries.
    BadSignature,
    StaleSignature,
    Replayed,
}

impl ErrorCode {
    /// The wire string, as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Throttled => "throttled",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::Busy => "busy",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Internal => "internal",
            ErrorCode::StorageFull => "storage_full",
            ErrorCode::Refused => "refused",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::InvalidCredential => "invalid_credential",
            ErrorCode::Conflict => "conflict",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::AlreadyClaimed => "already_claimed",
            ErrorCode::WrongClaimCode => "wrong_claim_code",
            ErrorCode::AlreadyResolved => "already_resolved",
            ErrorCode::InputChanged => "input_changed",
            ErrorCode::OriginNotAllowed => "origin_not_allowed",
            ErrorCode::InvalidTicket => "invalid_ticket",
            ErrorCode::NotAWebsocket => "not_a_websocket",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::BinaryNotAccepted => "binary_not_accepted",
            ErrorCode::Malformed => "malformed",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::SessionRevoked => "session_revoked",
            ErrorCode::BadCursor => "bad_cursor",
            ErrorCode::PageTooLarge => "page_too_large",
            ErrorCode::LimitReached => "limit_reached",
            ErrorCode::ReadOnly => "read_only",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::StaleSignature => "stale_signature",
            ErrorCode::Replayed => "replayed",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Seconds for `Retry-After`, when the refusal ends by itself.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Says when to try again (`Retry-After`).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// The generic error for a status, used when a layer below produced only a status.
    pub fn for_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::BAD_REQUEST => (ErrorCode::BadRequest, "the request is malformed"),
            StatusCode::UNAUTHORIZED => (ErrorCode::Unauthorized, "authentication is required"),
            StatusCode::FORBIDDEN => (ErrorCode::Forbidden, "not allowed"),
            StatusCode::NOT_FOUND => (ErrorCode::NotFound, "no such resource"),
            StatusCode::METHOD_NOT_ALLOWED => (
                ErrorCode::MethodNotAllowed,
                "this method is not allowed on this resource",
            ),
            StatusCode::REQUEST_TIMEOUT => (
                ErrorCode::RequestTimeout,
                "the request took too long to arrive",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                ErrorCode::PayloadTooLarge,
                "the request body is larger than this server accepts",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                ErrorCode::UnsupportedMediaType,
                "send the body as application/json",
            ),
            StatusCode::UNPROCESSABLE_ENTITY => (
                ErrorCode::InvalidRequest,
                "the request body does not have the expected fields",
            ),
            StatusCode::TOO_MANY_REQUESTS => {
                (ErrorCode::RateLimited, "too many requests; retry later")
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                (ErrorCode::Unavailable, "the gateway is busy; retry shortly")
            }
            StatusCode::GATEWAY_TIMEOUT => {
                (ErrorCode::Timeout, "the request took too long to process")
            }
            s if s.is_client_error() => (ErrorCode::BadRequest, "the request was refused"),
            _ => (
                ErrorCode::Internal,
                "internal error; the gateway logged the cause",
            ),
        };
        ApiError::new(status, code, message)
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code, "message": self.message } })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        response
    }
}

/// A token limit's refusal in OpenAI's shape, as OpenAI answers its own: 429,
/// `rate_limit_exceeded`, and `Retry-After`.
pub fn openai_quota_error(exceeded: &QuotaExceeded) -> Response {
    let kind = match exceeded.limit {
        Limit::RequestsPerMinute => "requests",
        Limit::TokensPerDay => "tokens",
    };
    let mut response = openai_error_of_type(
        StatusCode::TOO_MANY_REQUESTS,
        kind,
        "rate_limit_exceeded",
        &exceeded.to_string(),
    );
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from(exceeded.retry_after.as_secs().max(1)),
    );
    response
}

impl From<&QuotaExceeded> for ApiError {
    fn from(exceeded: &QuotaExceeded) -> Self {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            exceeded.to_string(),
        )
        .retry_after(exceeded.retry_after.as_secs())
    }
}

/// The error as OpenAI's API shapes it, `{"error":{"message","type","param","code"}}`,
/// for the OpenAI-compatible routes (`/v1/*`), whose clients read exactly this shape:
/// the official client raises the exception its status calls for and shows `message`.
/// `type` follows the status as OpenAI's own answers do.
pub fn openai_error(status: StatusCode, code: &str, message: &str) -> Response {
    openai_error_for(status, code, message, None)
}

/// [`openai_error`] naming the request field at fault in `param`.
pub fn openai_error_for(
    status: StatusCode,
    code: &str,
    message: &str,
    param: Option<&str>,
) -> Response {
    (
        status,
        Json(openai_error_value(status, code, message, param)),
    )
        .into_response()
}

/// The body of [`openai_error_for`], which OpenAI's streams also carry in an error event.
/// `type` is the one OpenAI's own answers carry for the status (`invalid_request_error`
/// for a bad key too, as OpenAI answers it).
pub fn openai_error_value(
    status: StatusCode,
    code: &str,
    message: &str,
    param: Option<&str>,
) -> serde_json::Value {
    let kind = match status.as_u16() {
        429 => "requests",
        500.. => "server_error",
        _ => "invalid_request_error",
    };
    openai_body(kind, code, message, param)
}

fn openai_body(kind: &str, code: &str, message: &str, param: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "error": { "message": message, "type": kind, "param": param, "code": code }
    })
}

/// [`openai_error`] with OpenAI's `type` named, where the status does not tell it: a
/// rate limit on requests is `requests`, one on tokens `tokens`.
pub fn openai_error_of_type(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    (status, Json(openai_body(kind, code, message, None))).into_response()
}

/// Rewrites an error answer in this API's shape (`{"error":{"code","message"}}`, as the
/// middleware and the auth layer make them) into OpenAI's, keeping status and headers
/// (`Retry-After`, `WWW-Authenticate`). Anything else, an answer already in OpenAI's
/// shape included, passes unchanged.
pub async fn into_openai_shape(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return openai_error(status, ErrorCode::Internal.as_str(), "internal error");
    };
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let ours = parsed.as_ref().and_then(|v| {
        let error = v.get("error")?;
        if error.get("type").is_some() {
            return None;
        }
        Some((
            error.get("code")?.as_str()?,
            error.get("message")?.as_str()?,
        ))
    });
    match ours {
        Some((code, message)) => {
            let shaped = openai_error(status, code, message);
            let (_, body) = shaped.into_parts();
            let mut parts = parts;
            parts.headers.remove(http::header::CONTENT_LENGTH);
            parts.headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            Response::from_parts(parts, body)
        }
        None => Response::from_parts(parts, axum::body::Body::from(bytes)),
    }
}

/// The status an OpenAI-compatible answer carries for a provider's failure. None is a
/// 401 or 403: those would tell the client its own key is wrong, when it is ours
/// upstream that was refused.
pub fn provider_status(err: &crate::gateway::providers::ProviderError) -> StatusCode {
    use crate::gateway::providers::ProviderError as E;
    match err {
        E::UnknownModel { .. } => StatusCode::NOT_FOUND,
        E::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        E::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        E::Status { status, .. } if *status < 500 => StatusCode::BAD_REQUEST,
        E::Config { .. } | E::Cancelled { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        E::Status { .. }
        | E::Connection { .. }
        | E::Dropped { .. }
        | E::BadResponse { .. }
        | E::AuthRejected { .. } => StatusCode::BAD_GATEWAY,
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        use crate::audit::AuditError;
        match &err {
            Error::Audit(AuditError::DiskFull) => {
                tracing::error!(error = %err, "refusing request: audit log cannot be written");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::StorageFull,
                    "the gateway's storage is full; the operator must free space",
                )
            }
            Error::Refused(message) => {
                ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Refused, message.clone())
            }
            _ => {
                tracing::error!(error = %err, "request failed");
                ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

impl From<crate::security_audit::SecurityAuditError> for ApiError {
    fn from(err: crate::security_audit::SecurityAuditError) -> Self {
        tracing::error!(error = %err, "the security audit could not run");
        ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<crate::auth::users::AccountError> for ApiError {
    fn from(err: crate::auth::users::AccountError) -> Self {
        use crate::auth::password::PasswordError;
        use crate::auth::users::AccountError as E;
        match err {
            // One answer for every failed login, so it cannot tell whether a user exists.
            E::InvalidCredentials | E::Locked { .. } | E::Disabled => ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidCredentials,
                "invalid username or password (repeated failures lock an account for a while)",
            ),
            // No password was checked; unknown names get the same budget and answer.
            E::Throttled { retry_after } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::Throttled,
                err.to_string(),
            )
            .retry_after(u64::try_from(retry_after).unwrap_or(1)),
            E::InvalidUsername(_) | E::LastAdmin => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                err.to_string(),
            ),
            E::Exists(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, err.to_string())
            }
            E::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, err.to_string())
            }
            E::Password(PasswordError::Busy) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Busy,
                PasswordError::Busy.to_string(),
            ),
            E::Password(
                p @ (PasswordError::TooShort(_)
                | PasswordError::TooLong(_)
                | PasswordError::TooCommon),
            ) => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::WeakPassword,
                p.to_string(),
            ),
            E::Password(_) | E::Store(_) => Error::Account(err).into(),
        }
    }
}

impl From<crate::auth::sessions::SessionError> for ApiError {
    fn from(err: crate::auth::sessions::SessionError) -> Self {
        use crate::auth::sessions::SessionError as E;
        match err {
            E::InvalidRefresh | E::Reused { .. } | E::Jwt(_) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidCredential,
                "the credential is invalid, expired or revoked",
            ),
            E::Account(err) => err.into(),
            E::Store(err) => Error::Store(err).into(),
        }
    }
}

impl From<crate::auth::tokens::TokenError> for ApiError {
    fn from(err: crate::auth::tokens::TokenError) -> Self {
        use crate::auth::tokens::TokenError as E;
        match err {
            E::Invalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidCredential,
                err.to_string(),
            ),
            E::ScopeNotHeld(_) => {
                ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, err.to_string())
            }
            E::InvalidName(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                err.to_string(),
            ),
            E::NameTaken(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, err.to_string())
            }
            E::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, err.to_string())
            }
            E::InvalidLimit { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidRequest,
                err.to_string(),
            ),
            E::NotYours(_) | E::OnlyAdminLoosens { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, err.to_string())
            }
            E::Account(err) => err.into(),
            E::Store(err) => Error::Store(err).into(),
        }
    }
}

impl From<crate::auth::jwt::JwtError> for ApiError {
    fn from(err: crate::auth::jwt::JwtError) -> Self {
        use crate::auth::jwt::JwtError as E;
        match err {
            E::ConfiguredKey => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, err.to_string())
            }
            E::Store(message) => {
                tracing::error!(error = %message, "signing keyring storage failed");
                ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR)
            }
            _ => ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidCredential,
                "the credential is invalid, expired or revoked",
            ),
        }
    }
}

impl From<crate::auth::claim::ClaimError> for ApiError {
    fn from(err: crate::auth::claim::ClaimError) -> Self {
        use crate::auth::claim::ClaimError as E;
        match err {
            E::AlreadyClaimed => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::AlreadyClaimed,
                err.to_string(),
            ),
            E::WrongCode => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::WrongClaimCode,
                err.to_string(),
            ),
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(err: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError as E;
        match err {
            E::InvalidCredential => ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidCredential,
                err.to_string(),
            ),
            E::Account(err) => err.into(),
            E::Session(err) => err.into(),
            E::Token(err) => err.into(),
            E::Jwt(err) => err.into(),
            E::Paired(err) => err.into(),
        }
    }
}

impl From<crate::auth::paired::PairedError> for ApiError {
    fn from(err: crate::auth::paired::PairedError) -> Self {
        use crate::auth::paired::PairedError as E;
        let (status, code) = match &err {
            E::Invalid | E::BadProof => (StatusCode::UNAUTHORIZED, ErrorCode::InvalidCredential),
            E::BadKey(_) | E::BadName(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest),
            E::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            E::NothingPending(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            E::Store(_) => {
                if let E::Store(store) = err {
                    return Error::Store(store).into();
                }
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal)
            }
        };
        ApiError::new(status, code, err.to_string())
    }
}

impl From<crate::gateway::approval::ApprovalError> for ApiError {
    fn from(err: crate::gateway::approval::ApprovalError) -> Self {
        use crate::gateway::approval::ApprovalError as E;
        let (status, code) = match err {
            // Another user's request is "not found" to the asker, so ids cannot be probed.
            // A malformed id names no request either.
            E::NotFound(_) | E::NotEligible(_) | E::InvalidId(_) => {
                (StatusCode::NOT_FOUND, ErrorCode::NotFound)
            }
            E::AlreadyResolved(_) => (StatusCode::CONFLICT, ErrorCode::AlreadyResolved),
            E::InputChanged { .. } => (StatusCode::CONFLICT, ErrorCode::InputChanged),
            E::RememberNotOffered(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest),
        };
        let message = match &err {
            E::NotEligible(id) => E::NotFound(id.clone()).to_string(),
            _ => err.to_string(),
        };
        ApiError::new(status, code, message)
    }
}

impl From<crate::gateway::chats::ChatError> for ApiError {
    fn from(err: crate::gateway::chats::ChatError) -> Self {
        use crate::gateway::chats::ChatError as E;
        let (status, code) = match &err {
            E::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            E::BadCursor(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadCursor),
            E::TooLong { .. } => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::MessageTooLarge),
            E::PageTooLarge { .. } => (StatusCode::BAD_REQUEST, ErrorCode::PageTooLarge),
            E::TooManyChats { .. } => (StatusCode::CONFLICT, ErrorCode::LimitReached),
            E::VisibilityNotAllowed(_) | E::NotOwner => {
                (StatusCode::FORBIDDEN, ErrorCode::Forbidden)
            }
            E::InvalidId(_) | E::Empty | E::InvalidTitle | E::TooManyMembers => {
                (StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest)
            }
            E::Store(_) => {
                return match err {
                    E::Store(err) => Error::Store(err).into(),
                    _ => ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR),
                };
            }
        };
        ApiError::new(status, code, err.to_string())
    }
}

impl From<crate::gateway::agents::AgentError> for ApiError {
    fn from(err: crate::gateway::agents::AgentError) -> Self {
        use crate::gateway::agents::AgentError as E;
        let (status, code) = match &err {
            E::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            E::Exists(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            E::ReadOnly(_) => (StatusCode::CONFLICT, ErrorCode::ReadOnly),
            E::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidRequest),
            E::Store(_) => {
                return match err {
                    E::Store(err) => Error::Store(err).into(),
                    _ => ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR),
                };
            }
        };
        ApiError::new(status, code, err.to_string())
    }
}

impl From<crate::gateway::usage::UsageError> for ApiError {
    fn from(err: crate::gateway::usage::UsageError) -> Self {
        use crate::gateway::usage::UsageError as E;
        match err {
            E::BadDay(_) | E::EmptyRange { .. } => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                err.to_string(),
            ),
            E::Store(err) => Error::Store(err).into(),
        }
    }
}

impl From<crate::gateway::channels::ChannelError> for ApiError {
    fn from(err: crate::gateway::channels::ChannelError) -> Self {
        use crate::gateway::channels::ChannelError as E;
        let (status, code) = match &err {
            E::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            E::Exists(_) | E::SecretReused => (StatusCode::CONFLICT, ErrorCode::Conflict),
            E::ReadOnly(_) => (StatusCode::CONFLICT, ErrorCode::ReadOnly),
            E::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidRequest),
            E::MalformedHeader(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            E::BadSignature => (StatusCode::UNAUTHORIZED, ErrorCode::BadSignature),
            E::Stale => (StatusCode::UNAUTHORIZED, ErrorCode::StaleSignature),
            E::Replayed(_) => (StatusCode::CONFLICT, ErrorCode::Replayed),
            E::SeenFull => {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    err.to_string(),
                )
                .retry_after(60);
            }
            E::BadBody => (StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest),
            E::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
            E::Reply(_) => (StatusCode::BAD_GATEWAY, ErrorCode::Unavailable),
            E::Secrets(_) | E::Store(_) => {
                return match err {
                    E::Secrets(err) => Error::Secrets(err).into(),
                    E::Store(err) => Error::Store(err).into(),
                    _ => ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR),
                };
            }
        };
        ApiError::new(status, code, err.to_string())
    }
}

impl From<crate::server::browser_session::BrowserSessionError> for ApiError {
    fn from(err: crate::server::browser_session::BrowserSessionError) -> Self {
        use crate::server::browser_session::BrowserSessionError as E;
        match err {
            E::MissingHeader => {
                ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, err.to_string())
            }
            E::CrossSite => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::OriginNotAllowed,
                err.to_string(),
            ),
            E::NoCookie => ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidCredential,
                err.to_string(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_keep_the_wire_strings_clients_match_on() {
        use ErrorCode as C;
        let released = [
            (C::BadRequest, "bad_request"),
            (C::Unauthorized, "unauthorized"),
            (C::Forbidden, "forbidden"),
            (C::NotFound, "not_found"),
            (C::MethodNotAllowed, "method_not_allowed"),
            (C::RequestTimeout, "request_timeout"),
            (C::PayloadTooLarge, "payload_too_large"),
            (C::UnsupportedMediaType, "unsupported_media_type"),
            (C::InvalidRequest, "invalid_request"),
            (C::InvalidJson, "invalid_json"),
            (C::RateLimited, "rate_limited"),
            (C::Throttled, "throttled"),
            (C::Unavailable, "unavailable"),
            (C::Overloaded, "overloaded"),
            (C::NotReady, "not_ready"),
            (C::Busy, "busy"),
            (C::Timeout, "timeout"),
            (C::Internal, "internal"),
            (C::StorageFull, "storage_full"),
            (C::Refused, "refused"),
            (C::InvalidCredentials, "invalid_credentials"),
            (C::InvalidCredential, "invalid_credential"),
            (C::Conflict, "conflict"),
            (C::WeakPassword, "weak_password"),
            (C::AlreadyClaimed, "already_claimed"),
            (C::WrongClaimCode, "wrong_claim_code"),
            (C::AlreadyResolved, "already_resolved"),
            (C::BadSignature, "bad_signature"),
            (C::StaleSignature, "stale_signature"),
            (C::Replayed, "replayed"),
            (C::InputChanged, "input_changed"),
            (C::OriginNotAllowed, "origin_not_allowed"),
            (C::InvalidTicket, "invalid_ticket"),
            (C::NotAWebsocket, "not_a_websocket"),
            (C::MessageTooLarge, "message_too_large"),
            (C::BinaryNotAccepted, "binary_not_accepted"),
            (C::Malformed, "malformed"),
            (C::UnknownType, "unknown_type"),
            (C::InvalidMessage, "invalid_message"),
            (C::SessionRevoked, "session_revoked"),
            (C::BadCursor, "bad_cursor"),
            (C::PageTooLarge, "page_too_large"),
            (C::LimitReached, "limit_reached"),
            (C::ReadOnly, "read_only"),
        ];
        for (code, wire) in released {
            assert_eq!(serde_json::to_value(code).unwrap(), wire, "{code:?}");
            assert_eq!(code.as_str(), wire, "{code:?}");
        }
        let error = ApiError::new(StatusCode::CONFLICT, C::AlreadyResolved, "answered");
        assert_eq!(
            error.body(),
            serde_json::json!({"error": {"code": "already_resolved", "message": "answered"}})
        );
        assert_eq!(
            ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE).body()["error"]["code"],
            "payload_too_large"
        );
    }
}
