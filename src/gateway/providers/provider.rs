//! One configured upstream: its name, kind, base URL, key and model list, and the three
//! calls the rest of the gateway makes of it (stream, complete, list models), and the
//! fallbacks its config names per model. It builds each kind's request and attaches the
//! key in that kind's header, and nothing else.

use std::collections::BTreeMap;

use super::client::HttpClient;
use super::model_ref::ModelRef;
use super::types::{ChatRequest, Completion, EventStream, ProviderError};
use super::{anthropic, openai, stream};
use crate::secret::Secret;

/// Which protocol an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// `POST {base_url}/chat/completions`, bearer key; `base_url` ends in `/v1` as in
    /// OpenAI's own clients (`http://127.0.0.1:11434/v1` for Ollama).
    OpenAi,
    /// `POST {base_url}/v1/messages`, `x-api-key`; `base_url` is the host, as in
    /// Anthropic's clients (`https://api.anthropic.com`).
    Anthropic,
}

/// One configured upstream.
#[derive(Debug, Clone)]
pub struct Provider {
    name: String,
    kind: ProviderKind,
    base_url: String,
    /// Where chat requests go, parsed once rather than on every request (1.3% of the
    /// gateway's CPU at 1,000 requests a second in `perf`).
    chat_url: reqwest::Url,
    key: Option<Secret>,
    models: Vec<String>,
    /// Per model, the `provider/model`s to try in its place, in order.
    fallbacks: BTreeMap<String, Vec<ModelRef>>,
    client: HttpClient,
}

impl Provider {
    /// A provider; `base_url` must be an http or https URL (a trailing `/` is dropped).
    /// `models` limits what `provider/model` may name; empty allows any.
    pub fn new(
        name: &str,
        kind: ProviderKind,
        base_url: &str,
        key: Option<Secret>,
        models: Vec<String>,
        client: HttpClient,
    ) -> Result<Self, ProviderError> {
        let base_url = base_url.trim_end_matches('/');
        let valid = reqwest::Url::parse(base_url)
            .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
        let chat_url = match kind {
            ProviderKind::OpenAi => format!("{base_url}/chat/completions"),
            ProviderKind::Anthropic => format!("{base_url}/v1/messages"),
        };
        let (true, Ok(chat_url)) = (valid, reqwest::Url::parse(&chat_url)) else {
            return Err(ProviderError::Config {
                provider: name.to_string(),
                what: "base_url is not an http or https URL",
            });
        };
        Ok(Self {
            name: name.to_string(),
            kind,
            base_url: base_url.to_string(),
            chat_url,
            key,
            models,
            fallbacks: BTreeMap::new(),
            client,
        })
    }

    /// The same upstream with `fallbacks`: per model, what to try in its place.
    pub fn with_fallbacks(self, fallbacks: BTreeMap<String, Vec<ModelRef>>) -> Self {
        Self { fallbacks, ..self }
    }

    /// What to try, in order, when `model` of this provider fails before answering.
    pub fn fallbacks(&self, model: &str) -> &[ModelRef] {
        self.fallbacks.get(model).map_or(&[], Vec::as_slice)
    }

    /// The same upstream with `key` in place of its own; the client is shared.
    pub fn with_key(&self, key: Option<Secret>) -> Self {
        Self {
            key,
            ..self.clone()
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The models the config names for it (empty: any).
    pub fn models(&self) -> &[String] {
        &self.models
    }

    /// True when `model` may be asked of this provider.
    pub fn offers(&self, model: &str) -> bool {
        !model.is_empty() && (self.models.is_empty() || self.models.iter().any(|m| m == model))
    }

    /// Streams the answer to `request`. Retries happen before this returns; once it has,
    /// what goes wrong arrives as an error item. Dropping the stream cancels the request.
    pub async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        let response = self.post(request, true).await?;
        if answers_whole(&response) {
            // Some servers (and proxies in front of them) ignore `stream: true` and
            // answer one JSON document: read it whole and stream its events.
            let completion = self.parse_whole(response).await?;
            let events = completion.events().into_iter().map(Ok);
            return Ok(Box::pin(futures_util::stream::iter(events)));
        }
        let body = Box::pin(self.client.body_stream(&self.name, response));
        Ok(match self.kind {
            ProviderKind::OpenAi => {
                stream::decode(&self.name, body, openai::StreamDecoder::default())
            }
            ProviderKind::Anthropic => {
                stream::decode(&self.name, body, anthropic::StreamDecoder::default())
            }
        })
    }

    /// The whole answer to `request`, fetched without streaming.
    pub async fn complete(&self, request: &ChatRequest) -> Result<Completion, ProviderError> {
        let response = self.post(request, false).await?;
        self.parse_whole(response).await
    }

    async fn parse_whole(&self, response: reqwest::Response) -> Result<Completion, ProviderError> {
        let body = self.client.read_body(&self.name, response).await?;
        let parsed = match self.kind {
            ProviderKind::OpenAi => openai::parse_completion(&body),
            ProviderKind::Anthropic => anthropic::parse_completion(&body),
        };
        parsed.map_err(|err| err.for_provider(&self.name))
    }

    /// The models the upstream lists (`GET /v1/models`; both kinds serve it).
    pub async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        let url = match self.kind {
            ProviderKind::OpenAi => format!("{}/models", self.base_url),
            ProviderKind::Anthropic => format!("{}/v1/models", self.base_url),
        };
        let response = self
            .client
            .send(&self.name, |client| self.authorize(client.get(&url)))
            .await?;
        let body = self.client.read_body(&self.name, response).await?;
        openai::parse_models(&body).map_err(|err| err.for_provider(&self.name))
    }

    async fn post(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<reqwest::Response, ProviderError> {
        let body = match self.kind {
            ProviderKind::OpenAi => openai::request_body(request, stream),
            ProviderKind::Anthropic => anthropic::request_body(request, stream),
        };
        let body = serde_json::to_vec(&body).map_err(|_| ProviderError::Config {
            provider: self.name.clone(),
            what: "the request could not be encoded",
        })?;
        // Shared by every try without a copy.
        let body = bytes::Bytes::from(body);
        self.client
            .send(&self.name, |client| {
                let builder = client
                    .post(self.chat_url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(
                        reqwest::header::ACCEPT,
                        if stream {
                            "text/event-stream"
                        } else {
                            "application/json"
                        },
                    )
                    .body(body.clone());
                self.authorize(builder)
            })
            .await
    }

    fn authorize(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match (self.kind, &self.key) {
            (ProviderKind::OpenAi, Some(key)) => builder.bearer_auth(key.expose()),
            (ProviderKind::OpenAi, None) => builder,
            (ProviderKind::Anthropic, key) => {
                let builder = builder.header("anthropic-version", anthropic::API_VERSION);
                match key {
                    Some(key) => builder.header("x-api-key", key.expose()),
                    None => builder,
                }
            }
        }
    }
}

/// Whether an answer to a streaming request came as one JSON document instead of
/// server-sent events.
fn answers_whole(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}
