//! The internal form every provider kind translates to and from: a chat request, the
//! typed events of a streamed answer, the collected non-streaming answer, and the one
//! error type. It never holds an upstream's body, headers or our key, so nothing here can
//! leak them when it is shown, logged or sent to a client.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;
use serde::{Deserialize, Serialize};

/// One turn of the conversation handed to the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    System {
        content: String,
    },
    User {
        content: String,
    },
    /// What the model said before, with the tools it called in that turn.
    Assistant {
        content: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call, answering the call with the same id.
    Tool {
        call_id: String,
        content: String,
    },
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Self::System {
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::User {
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self::Assistant {
            content: content.into(),
            tool_calls,
        }
    }

    pub fn tool(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self::Tool {
            call_id: call_id.into(),
            content: content.into(),
        }
    }
}

/// A tool the model may call; `parameters` is a JSON Schema object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A call the model made. `arguments` is the JSON text the model produced, as it produced
/// it: whether it parses is for the tool registry to judge, not for the transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// A request to one model of one provider.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    /// The model's name at the provider (without the `provider/` prefix).
    pub model: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDef>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
}

/// Tokens the upstream counted for one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A natural end of the answer (or a stop sequence).
    Stop,
    /// The token limit cut the answer short.
    Length,
    /// The model wants the tool calls of this answer run.
    ToolCalls,
    /// The upstream's content filter ended the answer.
    ContentFilter,
    /// A reason this gateway does not know; the answer ended all the same.
    Other,
}

impl FinishReason {
    /// The name OpenAI's API uses, which the OpenAI-compatible routes send on.
    pub fn as_openai(&self) -> &'static str {
        match self {
            Self::Stop | Self::Other => "stop",
            Self::Length => "length",
            Self::ToolCalls => "tool_calls",
            Self::ContentFilter => "content_filter",
        }
    }
}

/// One event of a streamed answer, in order. Tool calls are numbered from 0 in the order
/// they start, whatever the upstream's own numbering; a call's `ToolCallStart` comes
/// before its argument deltas, and its `ToolCallEnd` after them. A stream that ends well
/// ends with exactly one `Finish`; `Usage`, when the upstream reports it, comes before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    TextDelta(String),
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    ToolCallDelta {
        index: usize,
        arguments: String,
    },
    ToolCallEnd {
        index: usize,
    },
    Usage(Usage),
    Finish(FinishReason),
}

/// A streamed answer. Dropping it cancels the upstream request.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

/// A whole answer, as a non-streaming call returns it (or as a stream folds into).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Completion {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Option<Usage>,
    pub finish: Option<FinishReason>,
}

impl Completion {
    /// Folds one event in; the agent loop uses it to keep the answer while it forwards
    /// the deltas.
    pub fn apply(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::TextDelta(text) => self.text.push_str(text),
            StreamEvent::ToolCallStart { index, id, name } => {
                if self.tool_calls.len() <= *index {
                    self.tool_calls.resize_with(*index + 1, || ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    });
                }
                if let Some(call) = self.tool_calls.get_mut(*index) {
                    call.id.clone_from(id);
                    call.name.clone_from(name);
                }
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                if let Some(call) = self.tool_calls.get_mut(*index) {
                    call.arguments.push_str(arguments);
                }
            }
            StreamEvent::ToolCallEnd { .. } => {}
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            StreamEvent::Finish(reason) => self.finish = Some(*reason),
        }
    }

    /// Reads a stream to its end.
    pub async fn collect(mut stream: EventStream) -> Result<Completion, ProviderError> {
        use futures_util::StreamExt;
        let mut completion = Completion::default();
        while let Some(event) = stream.next().await {
            completion.apply(&event?);
        }
        if completion.finish.is_none() {
            return Err(ProviderError::Dropped {
                provider: String::new(),
            });
        }
        Ok(completion)
    }

    /// The events a stream of this answer would have carried, for callers that stream
    /// what was fetched whole (and for tests that compare the two).
    pub fn events(&self) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        if !self.text.is_empty() {
            events.push(StreamEvent::TextDelta(self.text.clone()));
        }
        for (index, call) in self.tool_calls.iter().enumerate() {
            events.push(StreamEvent::ToolCallStart {
                index,
                id: call.id.clone(),
                name: call.name.clone(),
            });
            if !call.arguments.is_empty() {
                events.push(StreamEvent::ToolCallDelta {
                    index,
                    arguments: call.arguments.clone(),
                });
            }
            events.push(StreamEvent::ToolCallEnd { index });
        }
        if let Some(usage) = self.usage {
            events.push(StreamEvent::Usage(usage));
        }
        events.push(StreamEvent::Finish(
            self.finish.unwrap_or(FinishReason::Stop),
        ));
        events
    }
}

/// What went wrong talking to an upstream. Variants name the provider (our config's name
/// for it) and a fixed description; never the upstream's body, headers, URL or our key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The upstream answered with an error status we do not retry or ran out of retries.
    #[error("provider {provider} answered HTTP {status} ({})", status_class(*status))]
    Status { provider: String, status: u16 },
    /// 429 after the retries (or a wait longer than we are willing to sleep).
    #[error("provider {provider} is rate limiting requests{}", retry_after_text(*retry_after))]
    RateLimited {
        provider: String,
        retry_after: Option<Duration>,
    },
    #[error("provider {provider} did not answer within {} ({phase})", humantime::format_duration(*after))]
    Timeout {
        provider: String,
        phase: TimeoutPhase,
        after: Duration,
    },
    /// No connection could be made (refused, unreachable, TLS failed).
    #[error("could not connect to provider {provider}")]
    Connection { provider: String },
    /// The connection closed before the answer was complete.
    #[error("provider {provider} closed the connection before the answer was complete")]
    Dropped { provider: String },
    /// The upstream answered something that is not the protocol it should speak.
    #[error("provider {provider} sent a response this gateway cannot read: {what}")]
    BadResponse {
        provider: String,
        what: &'static str,
    },
    /// 401 or 403: the key is missing, wrong or lacks access.
    #[error("provider {provider} rejected our credentials (check its api_key)")]
    AuthRejected { provider: String },
    /// The caller stopped waiting.
    #[error("the request to provider {provider} was cancelled")]
    Cancelled { provider: String },
    /// `provider/model` names no configured provider, or a model it does not offer.
    #[error("no provider serves model {model:?}")]
    UnknownModel { model: String },
    /// The provider cannot be built from its settings (such as a base URL that is not
    /// http or https).
    #[error("provider {provider} is misconfigured: {what}")]
    Config {
        provider: String,
        what: &'static str,
    },
}

/// Which wait ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    Connect,
    Read,
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connecting",
            Self::Read => "waiting for data",
        })
    }
}

impl ProviderError {
    /// True for the failures a fallback should be tried on: rate limits, server errors,
    /// timeouts and connections that failed or dropped. A rejected key, a bad request or
    /// a garbled answer would fail the same way elsewhere or needs the owner.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status >= 500,
            Self::RateLimited { .. }
            | Self::Timeout { .. }
            | Self::Connection { .. }
            | Self::Dropped { .. } => true,
            Self::BadResponse { .. }
            | Self::AuthRejected { .. }
            | Self::Cancelled { .. }
            | Self::UnknownModel { .. }
            | Self::Config { .. } => false,
        }
    }

    /// A stable code for clients (the OpenAI-compatible routes and `/ws` send it).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Status { status, .. } if *status >= 500 => "upstream_error",
            Self::Status { .. } => "upstream_rejected",
            Self::RateLimited { .. } => "upstream_rate_limited",
            Self::Timeout { .. } => "upstream_timeout",
            Self::Connection { .. } => "upstream_unreachable",
            Self::Dropped { .. } => "upstream_dropped",
            Self::BadResponse { .. } => "upstream_bad_response",
            Self::AuthRejected { .. } => "upstream_auth",
            Self::Cancelled { .. } => "cancelled",
            Self::UnknownModel { .. } => "model_not_found",
            Self::Config { .. } => "provider_misconfigured",
        }
    }

    /// The same error, naming `provider` (used where a stream's parser did not know it).
    pub(crate) fn for_provider(mut self, name: &str) -> Self {
        match &mut self {
            Self::Status { provider, .. }
            | Self::RateLimited { provider, .. }
            | Self::Timeout { provider, .. }
            | Self::Connection { provider }
            | Self::Dropped { provider }
            | Self::BadResponse { provider, .. }
            | Self::AuthRejected { provider }
            | Self::Cancelled { provider }
            | Self::Config { provider, .. } => {
                if provider.is_empty() {
                    *provider = name.to_string();
                }
            }
            Self::UnknownModel { .. } => {}
        }
        self
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        400..=499 => "the request was refused",
        500..=599 => "the upstream failed",
        _ => "unexpected status",
    }
}

fn retry_after_text(retry_after: Option<Duration>) -> String {
    retry_after
        .map(|wait| format!("; retry after {}", humantime::format_duration(wait)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folded_stream_is_the_whole_answer_and_back() {
        let events = vec![
            StreamEvent::TextDelta("Hel".into()),
            StreamEvent::TextDelta("lo".into()),
            StreamEvent::ToolCallStart {
                index: 0,
                id: "c1".into(),
                name: "shell".into(),
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "{\"cmd\":".into(),
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "\"ls\"}".into(),
            },
            StreamEvent::ToolCallEnd { index: 0 },
            StreamEvent::Usage(Usage {
                prompt_tokens: 3,
                completion_tokens: 4,
            }),
            StreamEvent::Finish(FinishReason::ToolCalls),
        ];
        let mut completion = Completion::default();
        for event in &events {
            completion.apply(event);
        }
        assert_eq!(completion.text, "Hello");
        assert_eq!(completion.tool_calls.len(), 1);
        assert_eq!(completion.tool_calls[0].arguments, "{\"cmd\":\"ls\"}");
        assert_eq!(completion.usage.map(|u| u.total()), Some(7));
        let mut again = Completion::default();
        for event in completion.events() {
            again.apply(&event);
        }
        assert_eq!(again, completion);
    }

    #[test]
    fn only_failures_another_upstream_could_avoid_are_transient() {
        let p = || "p".to_string();
        assert!(
            ProviderError::Status {
                provider: p(),
                status: 503
            }
            .is_transient()
        );
        assert!(
            !ProviderError::Status {
                provider: p(),
                status: 400
            }
            .is_transient()
        );
        assert!(!ProviderError::AuthRejected { provider: p() }.is_transient());
        assert!(ProviderError::Dropped { provider: p() }.is_transient());
        assert!(
            !ProviderError::BadResponse {
                provider: p(),
                what: "x"
            }
            .is_transient()
        );
    }
}
