//! Errors become HTTP responses here, and only here.
//!
//! Every error a client sees is `{"error":{"code","message"}}` with a stable `code` and
//! a message fit for the user. The cause of a 5xx is logged with the request id and
//! never sent: no paths, no internal type names, no stack traces.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::error::Error;

/// An error as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After`, when the refusal ends by itself.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
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
            StatusCode::BAD_REQUEST => ("bad_request", "the request is malformed"),
            StatusCode::UNAUTHORIZED => ("unauthorized", "authentication is required"),
            StatusCode::FORBIDDEN => ("forbidden", "not allowed"),
            StatusCode::NOT_FOUND => ("not_found", "no such resource"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "this method is not allowed on this resource",
            ),
            StatusCode::REQUEST_TIMEOUT => {
                ("request_timeout", "the request took too long to arrive")
            }
            StatusCode::PAYLOAD_TOO_LARGE => (
                "payload_too_large",
                "the request body is larger than this server accepts",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "send the body as application/json",
            ),
            StatusCode::UNPROCESSABLE_ENTITY => (
                "invalid_request",
                "the request body does not have the expected fields",
            ),
            StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests; retry later"),
            StatusCode::SERVICE_UNAVAILABLE => {
                ("unavailable", "the gateway is busy; retry shortly")
            }
            StatusCode::GATEWAY_TIMEOUT => ("timeout", "the request took too long to process"),
            s if s.is_client_error() => ("bad_request", "the request was refused"),
            _ => ("internal", "internal error; the gateway logged the cause"),
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

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        use crate::security::audit::AuditError;
        match &err {
            Error::Audit(AuditError::DiskFull) => {
                tracing::error!(error = %err, "refusing request: audit log cannot be written");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_full",
                    "the gateway's storage is full; the operator must free space",
                )
            }
            Error::Refused(message) => {
                ApiError::new(StatusCode::FORBIDDEN, "refused", message.clone())
            }
            _ => {
                tracing::error!(error = %err, "request failed");
                ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
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
                "invalid_credentials",
                "invalid username or password (repeated failures lock an account for a while)",
            ),
            // No password was checked; unknown names get the same budget and answer.
            E::Throttled { retry_after } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "throttled", err.to_string())
                    .retry_after(u64::try_from(retry_after).unwrap_or(1))
            }
            E::InvalidUsername(_) | E::LastAdmin => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", err.to_string())
            }
            E::Exists(_) => ApiError::new(StatusCode::CONFLICT, "conflict", err.to_string()),
            E::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", err.to_string()),
            E::Password(PasswordError::Busy) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                PasswordError::Busy.to_string(),
            ),
            E::Password(
                p @ (PasswordError::TooShort(_)
                | PasswordError::TooLong(_)
                | PasswordError::TooCommon),
            ) => ApiError::new(StatusCode::BAD_REQUEST, "weak_password", p.to_string()),
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
                "invalid_credential",
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
                "invalid_credential",
                err.to_string(),
            ),
            E::ScopeNotHeld(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", err.to_string())
            }
            E::InvalidName(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", err.to_string())
            }
            E::NameTaken(_) => ApiError::new(StatusCode::CONFLICT, "conflict", err.to_string()),
            E::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", err.to_string()),
            E::Account(err) => err.into(),
            E::Store(err) => Error::Store(err).into(),
        }
    }
}

impl From<crate::auth::jwt::JwtError> for ApiError {
    fn from(err: crate::auth::jwt::JwtError) -> Self {
        use crate::auth::jwt::JwtError as E;
        match err {
            E::ConfiguredKey => ApiError::new(StatusCode::CONFLICT, "conflict", err.to_string()),
            E::Store(message) => {
                tracing::error!(error = %message, "signing keyring storage failed");
                ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR)
            }
            _ => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credential",
                "the credential is invalid, expired or revoked",
            ),
        }
    }
}

impl From<crate::auth::claim::ClaimError> for ApiError {
    fn from(err: crate::auth::claim::ClaimError) -> Self {
        use crate::auth::claim::ClaimError as E;
        match err {
            E::AlreadyClaimed => {
                ApiError::new(StatusCode::CONFLICT, "already_claimed", err.to_string())
            }
            E::WrongCode => {
                ApiError::new(StatusCode::FORBIDDEN, "wrong_claim_code", err.to_string())
            }
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(err: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError as E;
        match err {
            E::InvalidCredential => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credential",
                err.to_string(),
            ),
            E::Account(err) => err.into(),
            E::Session(err) => err.into(),
            E::Token(err) => err.into(),
            E::Jwt(err) => err.into(),
        }
    }
}

impl From<crate::security::approval::ApprovalError> for ApiError {
    fn from(err: crate::security::approval::ApprovalError) -> Self {
        use crate::security::approval::ApprovalError as E;
        let (status, code) = match err {
            // Another user's request is "not found" to the asker, so ids cannot be probed.
            // A malformed id names no request either.
            E::NotFound(_) | E::NotEligible(_) | E::InvalidId(_) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            E::AlreadyResolved(_) => (StatusCode::CONFLICT, "already_resolved"),
            E::InputChanged { .. } => (StatusCode::CONFLICT, "input_changed"),
            E::RememberNotOffered(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        };
        let message = match &err {
            E::NotEligible(id) => E::NotFound(id.clone()).to_string(),
            _ => err.to_string(),
        };
        ApiError::new(status, code, message)
    }
}
