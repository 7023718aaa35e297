//! One answer to one parsed request, whatever `model` names: a configured
//! `provider/model` through the providers (usage recorded here), or an agent's turn
//! (usage recorded by the loop). The routes shape what comes back; this file never does.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;

use super::agent;
use super::error::OpenAiError;
use super::upstream::{self, Asker, Target};
use crate::gateway::providers::{ChatRequest, Completion, ProviderError, StreamEvent};
use crate::server::state::App;

/// A streamed answer's events.
pub type Source = Pin<Box<dyn Stream<Item = Result<StreamEvent, OpenAiError>> + Send>>;

/// What to do with a streamed answer that ended well.
pub type OnDone = Box<dyn FnOnce(&Completion) + Send>;

/// A streamed answer: its events, what a source that ends early counts as, and what to
/// run with the whole answer.
pub struct Streamed {
    pub source: Source,
    pub ended_early: OpenAiError,
    pub done: OnDone,
}

/// The whole answer.
pub async fn whole(
    app: &Arc<App>,
    asker: &Asker,
    target: &Target,
    request: ChatRequest,
) -> Result<Completion, OpenAiError> {
    match target {
        Target::Model(model) => {
            let (answering, completion) = upstream::complete(app, model, &request).await?;
            upstream::record(app, asker, None, &answering.to_string(), &completion);
            Ok(completion)
        }
        Target::Agent(name) => {
            agent::check(&request)?;
            agent::complete(app, asker, name, request).await
        }
    }
}

/// The streamed answer; a failure before it started is returned as an error.
pub async fn streamed(
    app: &Arc<App>,
    asker: &Asker,
    target: &Target,
    request: ChatRequest,
) -> Result<Streamed, OpenAiError> {
    match target {
        Target::Model(model) => {
            let (answering, source) = upstream::stream(app, model, &request).await?;
            let (recorder, asker, label) = (app.clone(), asker.clone(), answering.to_string());
            Ok(Streamed {
                source: Box::pin(source),
                ended_early: OpenAiError::Provider(ProviderError::Dropped {
                    provider: answering.provider.clone(),
                }),
                done: Box::new(move |completion: &Completion| {
                    upstream::record(&recorder, &asker, None, &label, completion);
                }),
            })
        }
        Target::Agent(name) => {
            agent::check(&request)?;
            Ok(Streamed {
                source: agent::stream(app, asker, name, request).await?,
                ended_early: OpenAiError::Internal,
                done: Box::new(|_: &Completion| {}),
            })
        }
    }
}
