//! JSON request bodies with errors in the API's own shape.
//!
//! axum's `Json` rejects bad bodies with plain-text messages; this extractor turns each
//! kind of rejection into the JSON error a client can act on: 415 without a JSON content
//! type, 400 for malformed JSON, 422 for the wrong fields or types (naming the field),
//! 413 for a body over the limit.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use http::StatusCode;
use serde::de::DeserializeOwned;

use crate::server::error::{ApiError, ErrorCode};

/// A deserialized JSON body.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::MissingJsonContentType(_) => {
                    ApiError::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
                }
                JsonRejection::JsonSyntaxError(_) => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidJson,
                    "the body is not valid JSON",
                ),
                JsonRejection::JsonDataError(err) => {
                    let detail = err.body_text();
                    let detail = detail
                        .split_once(": ")
                        .map_or(detail.as_str(), |(_, rest)| rest)
                        .to_string();
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        ErrorCode::InvalidRequest,
                        detail,
                    )
                }
                other => ApiError::for_status(other.status()),
            }),
        }
    }
}

/// An optional JSON body: `None` when the request has no body at all.
impl<S: Send + Sync, T: DeserializeOwned> axum::extract::OptionalFromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let headers = request.headers();
        let empty_length = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0");
        let no_body = empty_length
            || (!headers.contains_key(http::header::CONTENT_TYPE)
                && !headers.contains_key(http::header::TRANSFER_ENCODING)
                && !headers.contains_key(http::header::CONTENT_LENGTH));
        if no_body {
            return Ok(None);
        }
        <JsonBody<T> as FromRequest<S>>::from_request(request, state)
            .await
            .map(Some)
    }
}
