//! The one error type of the OpenAI-compatible routes and how each becomes an answer in
//! OpenAI's shape (through `server::error::openai_error`). It never carries an upstream's
//! body, headers or key: provider failures arrive as `ProviderError`, which holds none.

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::gateway::agent_loop::LoopError;
use crate::gateway::providers::ProviderError;
use crate::server::error::{openai_error_for, openai_error_value, provider_status};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpenAiError {
    /// The request is malformed or asks for what this gateway does not do; `param` names
    /// the field (`messages[2].role`), as OpenAI's own answers do.
    #[error("{message}")]
    Invalid {
        param: Option<String>,
        code: &'static str,
        message: String,
    },
    /// `model` names neither an agent nor a configured `provider/model`.
    #[error("the model {0:?} does not exist or you do not have access to it")]
    UnknownModel(String),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// An agent's turn ended without an answer (a provider's failure and an unknown
    /// agent are told apart as `Provider` and `UnknownModel`).
    #[error(transparent)]
    Agent(LoopError),
    /// Work that had to run off the async workers failed; the cause is logged.
    #[error("internal error; the gateway logged the cause")]
    Internal,
    /// An agent's turn failed after its tools had run: the same error, answered with
    /// `x-should-retry: false` so that clients do not repeat the tools' side effects
    /// by retrying on their own (OpenAI's clients honour the header).
    #[error(transparent)]
    AfterTools(Box<OpenAiError>),
}

impl OpenAiError {
    /// A malformed field.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            param: Some(param.into()),
            code: "invalid_value",
            message: message.into(),
        }
    }

    /// A field or value this gateway does not serve (it is never silently ignored).
    pub fn unsupported(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            param: Some(param.into()),
            code: "unsupported_parameter",
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid { .. } => StatusCode::BAD_REQUEST,
            Self::UnknownModel(_) => StatusCode::NOT_FOUND,
            Self::Provider(err) => provider_status(err),
            // Neither is retried by OpenAI's clients, which would run the agent's tools
            // again: a 5xx would be.
            Self::Agent(err) if err.is_caller_error() => StatusCode::BAD_REQUEST,
            Self::Agent(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::AfterTools(err) => err.status(),
        }
    }

    /// The `code` clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { code, .. } => code,
            Self::UnknownModel(_) => "model_not_found",
            Self::Provider(err) => err.code(),
            Self::Agent(err) => err.code(),
            Self::Internal => "internal",
            Self::AfterTools(err) => err.code(),
        }
    }

    pub fn param(&self) -> Option<&str> {
        match self {
            Self::Invalid { param, .. } => param.as_deref(),
            Self::UnknownModel(_) => Some("model"),
            Self::AfterTools(err) => err.param(),
            _ => None,
        }
    }

    /// The whole error body, as a stream's error event carries it.
    pub fn body(&self) -> serde_json::Value {
        openai_error_value(self.status(), self.code(), &self.to_string(), self.param())
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let mut response =
            openai_error_for(self.status(), self.code(), &self.to_string(), self.param());
        if matches!(self, Self::AfterTools(_)) {
            response.headers_mut().insert(
                http::HeaderName::from_static(SHOULD_RETRY),
                http::HeaderValue::from_static("false"),
            );
        }
        response
    }
}

/// The header OpenAI's clients read to decide whether to retry a failed request.
pub const SHOULD_RETRY: &str = "x-should-retry";
