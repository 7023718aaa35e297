//! The configured providers by name: resolves `provider/model`, expands a model into its
//! chain of fallbacks, and tries that ordered list, moving to the next on a transient
//! failure (429, 5xx, timeout, a connection that failed or dropped) only while nothing
//! has reached the caller yet. The pass-through and the agent loop both go through here.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::StreamExt;

use super::client::{ClientSettings, HttpClient, Pause};
use super::model_ref::ModelRef;
use super::provider::{Provider, ProviderKind};
use super::types::{ChatRequest, Completion, EventStream, ProviderError};
use crate::config::{ProviderConfig, ProviderKindName};

/// Every configured provider.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    by_name: BTreeMap<String, Provider>,
}

impl Providers {
    pub fn new(providers: impl IntoIterator<Item = Provider>) -> Self {
        Self {
            by_name: providers
                .into_iter()
                .map(|p| (p.name().to_string(), p))
                .collect(),
        }
    }

    /// The providers `[[providers]]` configures, each with its own client (timeouts and
    /// retries are per provider); `pause` is how every client waits between tries.
    pub fn from_config(
        configs: &[ProviderConfig],
        pause: Arc<dyn Pause>,
    ) -> Result<Self, ProviderError> {
        let mut providers = Vec::with_capacity(configs.len());
        for config in configs {
            let mut extra_roots = Vec::with_capacity(config.extra_roots.len());
            for path in &config.extra_roots {
                extra_roots.push(std::fs::read(path).map_err(|_| ProviderError::Config {
                    provider: config.name.clone(),
                    what: "an extra_roots file cannot be read",
                })?);
            }
            let settings = ClientSettings {
                connect_timeout: config.connect_timeout,
                read_timeout: config.read_timeout,
                retries: config.retries,
                extra_roots,
                ..ClientSettings::default()
            };
            let client = HttpClient::new(settings, pause.clone())
                .map_err(|err| err.for_provider(&config.name))?;
            let kind = match config.kind {
                ProviderKindName::OpenAi => ProviderKind::OpenAi,
                ProviderKindName::Anthropic => ProviderKind::Anthropic,
            };
            let fallbacks = config
                .fallbacks
                .iter()
                .map(|(model, chain)| {
                    let chain = chain
                        .iter()
                        .map(|m| ModelRef {
                            provider: m.provider.clone(),
                            model: m.model.clone(),
                        })
                        .collect();
                    (model.clone(), chain)
                })
                .collect();
            providers.push(
                Provider::new(
                    &config.name,
                    kind,
                    &config.base_url,
                    config.api_key.clone(),
                    config.models.clone(),
                    client,
                )?
                .with_fallbacks(fallbacks),
            );
        }
        Ok(Self::new(providers))
    }

    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Provider> {
        self.by_name.values()
    }

    /// The provider a `provider/model` names, if it serves that model.
    pub fn resolve(&self, model: &ModelRef) -> Result<&Provider, ProviderError> {
        self.by_name
            .get(&model.provider)
            .filter(|p| p.offers(&model.model))
            .ok_or_else(|| ProviderError::UnknownModel {
                model: model.to_string(),
            })
    }

    /// The models to try for `wanted`, in order: each entry, then the fallbacks its
    /// provider's config names for it (`[[providers]] fallbacks`), each model once. The
    /// pass-through asks with one entry; an agent with its own model and fallbacks.
    pub fn chain(&self, wanted: &[ModelRef]) -> Vec<ModelRef> {
        let mut chain: Vec<ModelRef> = Vec::new();
        for model in wanted {
            let extra = self
                .by_name
                .get(&model.provider)
                .map_or(&[][..], |p| p.fallbacks(&model.model));
            for candidate in std::iter::once(model).chain(extra) {
                if !chain.contains(candidate) {
                    chain.push(candidate.clone());
                }
            }
        }
        chain
    }

    /// Streams from the first of `chain` that starts answering. A transient failure, at
    /// the request or as the stream's first item, moves on to the next; any other failure
    /// ends the search at once. Returns which one answers. `request.model` is replaced
    /// by each entry's model.
    pub async fn stream(
        &self,
        chain: &[ModelRef],
        request: &ChatRequest,
    ) -> Result<(ModelRef, EventStream), ProviderError> {
        let mut last = None;
        for model in chain {
            let provider = self.resolve(model)?;
            let request = ChatRequest {
                model: model.model.clone(),
                ..request.clone()
            };
            let mut stream = match provider.stream(&request).await {
                Ok(stream) => stream,
                Err(err) if err.is_transient() => {
                    tracing::warn!(model = %model, code = err.code(), "provider failed; trying the next");
                    last = Some(err);
                    continue;
                }
                Err(err) => return Err(err),
            };
            match stream.next().await {
                Some(Err(err)) if err.is_transient() => {
                    tracing::warn!(model = %model, code = err.code(), "provider failed before answering; trying the next");
                    last = Some(err);
                }
                Some(Err(err)) => return Err(err),
                Some(Ok(first)) => {
                    let whole = futures_util::stream::once(async move { Ok(first) }).chain(stream);
                    return Ok((model.clone(), Box::pin(whole)));
                }
                None => {
                    last = Some(ProviderError::Dropped {
                        provider: model.provider.clone(),
                    });
                }
            }
        }
        Err(last.unwrap_or_else(|| ProviderError::UnknownModel {
            model: String::new(),
        }))
    }

    /// [`Providers::stream`] without streaming: the first whole answer of `chain`.
    pub async fn complete(
        &self,
        chain: &[ModelRef],
        request: &ChatRequest,
    ) -> Result<(ModelRef, Completion), ProviderError> {
        let mut last = None;
        for model in chain {
            let provider = self.resolve(model)?;
            let request = ChatRequest {
                model: model.model.clone(),
                ..request.clone()
            };
            match provider.complete(&request).await {
                Ok(completion) => return Ok((model.clone(), completion)),
                Err(err) if err.is_transient() => {
                    tracing::warn!(model = %model, code = err.code(), "provider failed; trying the next");
                    last = Some(err);
                }
                Err(err) => return Err(err),
            }
        }
        Err(last.unwrap_or_else(|| ProviderError::UnknownModel {
            model: String::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(text: &str) -> ModelRef {
        ModelRef::parse(text).unwrap()
    }

    #[test]
    fn a_chain_adds_each_models_configured_fallbacks_once() {
        let client = HttpClient::new(
            ClientSettings::default(),
            Arc::new(super::super::client::TokioPause),
        )
        .unwrap();
        let provider = |name: &str, fallbacks: &[(&str, &[&str])]| {
            Provider::new(
                name,
                ProviderKind::OpenAi,
                "http://127.0.0.1:1/v1",
                None,
                Vec::new(),
                client.clone(),
            )
            .unwrap()
            .with_fallbacks(
                fallbacks
                    .iter()
                    .map(|(m, chain)| (m.to_string(), chain.iter().map(|c| model(c)).collect()))
                    .collect(),
            )
        };
        let providers = Providers::new([
            provider("a", &[("m", &["b/m", "c/m"])]),
            provider("b", &[("m", &["c/m"])]),
            provider("c", &[]),
        ]);
        let names = |chain: Vec<ModelRef>| -> Vec<String> {
            chain.iter().map(ToString::to_string).collect()
        };
        assert_eq!(
            names(providers.chain(&[model("a/m")])),
            ["a/m", "b/m", "c/m"]
        );
        assert_eq!(names(providers.chain(&[model("a/x")])), ["a/x"]);
        // An agent's own chain comes first; each entry's fallbacks follow it.
        assert_eq!(
            names(providers.chain(&[model("b/m"), model("a/m")])),
            ["b/m", "c/m", "a/m"]
        );
    }

    #[test]
    fn a_model_ref_splits_at_the_first_slash() {
        let parsed = ModelRef::parse("router/meta/llama").unwrap();
        assert_eq!(parsed.provider, "router");
        assert_eq!(parsed.model, "meta/llama");
        assert_eq!(parsed.to_string(), "router/meta/llama");
        assert!(ModelRef::parse("nomodel").is_err());
        assert!(ModelRef::parse("/m").is_err());
        assert!(ModelRef::parse("p/").is_err());
    }
}
