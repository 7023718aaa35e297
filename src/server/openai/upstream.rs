//! What both OpenAI-compatible routes do around the model: resolve `model` to a
//! configured `provider/model` (or an agent), call the providers (streamed or whole),
//! record usage under the caller and its API token, and make the ids and timestamps the
//! answers carry. It never writes an answer's shape (the route files do) and records
//! usage only for answers that ended well.

use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use ring::rand::SecureRandom;

use super::error::OpenAiError;
use crate::auth::Principal;
use crate::gateway::providers::{ChatRequest, Completion, ModelRef, StreamEvent};
use crate::gateway::usage::UsageEvent;
use crate::server::state::App;

/// Who asked, as usage is counted.
#[derive(Debug, Clone)]
pub struct Asker {
    pub user: String,
    /// The API token's id, when the request came with one.
    pub token: Option<String>,
}

impl Asker {
    pub fn of(principal: &Principal) -> Self {
        Self {
            user: principal.username.clone(),
            // A session a token's WebSocket ticket made counts under that token too.
            token: principal.api_token_id().map(str::to_owned),
        }
    }
}

/// What a request's `model` names.
#[derive(Debug, Clone)]
pub enum Target {
    /// A configured provider's model: a guarded pass-through.
    Model(ModelRef),
    /// An agent, by name.
    Agent(String),
}

/// Resolves `model`: `provider/model` when it holds a `/`, else an agent's name.
pub async fn resolve(app: &Arc<App>, model: &str) -> Result<Target, OpenAiError> {
    if model.contains('/') {
        let parsed =
            ModelRef::parse(model).map_err(|_| OpenAiError::UnknownModel(model.to_string()))?;
        app.gateway
            .upstreams
            .current()
            .resolve(&parsed)
            .map_err(|_| OpenAiError::UnknownModel(model.to_string()))?;
        return Ok(Target::Model(parsed));
    }
    let worker = app.clone();
    let name = model.to_string();
    let found = tokio::task::spawn_blocking(move || worker.gateway.agents.get(&name))
        .await
        .map_err(|_| OpenAiError::Internal)?;
    match found {
        Ok(agent) => Ok(Target::Agent(agent.name)),
        Err(_) => Err(OpenAiError::UnknownModel(model.to_string())),
    }
}

/// The whole answer of `model` (or of its first fallback that answers) to `request`,
/// with the model that gave it.
pub async fn complete(
    app: &App,
    model: &ModelRef,
    request: &ChatRequest,
) -> Result<(ModelRef, Completion), OpenAiError> {
    let providers = app.gateway.upstreams.current();
    let chain = providers.chain(std::slice::from_ref(model));
    Ok(providers.complete(&chain, request).await?)
}

/// The streamed answer of `model` to `request`, from its fallbacks in order when it
/// fails before its first event; a failure of them all is returned here, so the route
/// can still answer with a plain error status. Comes with the model that answers.
pub async fn stream(
    app: &App,
    model: &ModelRef,
    request: &ChatRequest,
) -> Result<
    (
        ModelRef,
        impl Stream<Item = Result<StreamEvent, OpenAiError>> + Send + Unpin + use<>,
    ),
    OpenAiError,
> {
    let providers = app.gateway.upstreams.current();
    let chain = providers.chain(std::slice::from_ref(model));
    let (answering, events) = providers.stream(&chain, request).await?;
    Ok((
        answering,
        events.map(|item| item.map_err(OpenAiError::from)),
    ))
}

/// Adds one answer's usage to the caller's row (in memory; see `gateway::usage`).
pub fn record(app: &App, asker: &Asker, agent: Option<&str>, model: &str, completion: &Completion) {
    let usage = completion.usage.unwrap_or_default();
    app.gateway.usage.record(UsageEvent {
        user: &asker.user,
        token: asker.token.as_deref(),
        agent,
        model,
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
    });
}

/// A fresh id such as `chatcmpl-3f9a…` (96 random bits).
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// Seconds since the epoch on the gateway's clock, as `created` fields carry them.
pub fn now(app: &App) -> i64 {
    app.services.clock.now().unix_timestamp()
}
