//! `GET /v1/models` (any authenticated credential): what `model` may name, in OpenAI's
//! list shape: every agent by name, then each configured provider's models as
//! `provider/model`. A provider configured without a `models` list offers whatever its
//! upstream lists; an upstream that cannot be asked is left out (and logged), so one
//! dead provider never fails the list. It never shows keys or base URLs.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::OpenAiError;
use super::upstream;
use crate::server::auth::Caller;
use crate::server::state::App;

#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "openai",
    summary = "OpenAI-compatible: the models and agents this caller may use",
    responses((status = 200, description = "An OpenAI model list", body = Object))
)]
pub async fn list(State(app): State<Arc<App>>, _caller: Caller) -> Response {
    match models(&app).await {
        Ok(data) => Json(json!({"object": "list", "data": data})).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn models(app: &Arc<App>) -> Result<Vec<Value>, OpenAiError> {
    let created = upstream::now(app);
    let entry = |id: String, owner: &str| json!({"id": id, "object": "model", "created": created, "owned_by": owner});
    let worker = app.clone();
    let agents = tokio::task::spawn_blocking(move || worker.gateway.agents.list())
        .await
        .map_err(|_| OpenAiError::Internal)?
        .map_err(|err| {
            tracing::error!(error = %err, "listing agents failed");
            OpenAiError::Internal
        })?;
    let mut data: Vec<Value> = agents
        .into_iter()
        .map(|agent| entry(agent.name, "aisopod"))
        .collect();
    let providers = app.gateway.upstreams.current();
    for provider in providers.iter() {
        let names = if provider.models().is_empty() {
            match provider.list_models().await {
                Ok(names) => names,
                Err(err) => {
                    tracing::warn!(
                        provider = provider.name(),
                        code = err.code(),
                        "listing the upstream's models failed"
                    );
                    Vec::new()
                }
            }
        } else {
            provider.models().to_vec()
        };
        data.extend(
            names
                .into_iter()
                .map(|model| entry(format!("{}/{model}", provider.name()), provider.name())),
        );
    }
    Ok(data)
}
