//! The OpenAI-compatible API: `GET /v1/models`, `POST /v1/chat/completions` and
//! `POST /v1/responses`, so OpenAI's own clients (and anything built on them) use this
//! gateway by changing only their base URL and key. `model` is a configured
//! `provider/model` (a guarded pass-through through `gateway::providers`) or an agent.
//! The request parsers are public for the fuzz target. Errors are OpenAI's shape
//! (`server::error::openai_error`); this module never forwards a client's body or an
//! upstream's answer as they are, and never stores a conversation.

mod agent;
mod chat_completions;
mod dispatch;
pub mod error;
mod models;
pub mod request;
mod responses;
mod sse;
mod upstream;

use axum::routing::{get, post};

use crate::auth::scopes::Scope;
use crate::server::api::Api;
use crate::server::auth::Access;

pub fn api() -> Api {
    Api::new()
        .route("/v1/models", Access::Authenticated, get(models::list))
        .route(
            "/v1/chat/completions",
            Access::Scope(Scope::ChatWrite),
            post(chat_completions::create),
        )
        .route(
            "/v1/responses",
            Access::Scope(Scope::ChatWrite),
            post(responses::create),
        )
}

/// The operations of these routes, for the OpenAPI document (`server::openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(models::list, chat_completions::create, responses::create))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}
