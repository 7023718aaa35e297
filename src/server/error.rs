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
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
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
        (self.status, Json(self.body())).into_response()
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
