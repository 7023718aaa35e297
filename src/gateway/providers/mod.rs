//! LLM providers behind one guarded HTTP client: the internal request and event types
//! the agent loop and the OpenAI-compatible routes use, the `openai` and `anthropic`
//! kinds that translate them to and from each upstream's protocol, and the registry that
//! resolves `provider/model` and tries fallbacks. It never stores anything, never speaks
//! to clients, and never lets an upstream's body, headers or our key out through an
//! error, a log line or a `Debug`.

pub mod anthropic;
mod client;
mod exposure;
mod model_ref;
pub mod openai;
mod provider;
mod registry;
pub mod sse;
mod stream;
pub mod types;

pub use client::{ClientSettings, HttpClient, Pause, TokioPause};
pub use exposure::{Exposure, exposed_local_upstreams, local_addresses};
pub use model_ref::ModelRef;
pub use provider::{Provider, ProviderKind};
pub use registry::Providers;
pub use stream::{Decoder, MAX_EVENT};
pub use types::{
    ChatRequest, Completion, EventStream, FinishReason, Message, ProviderError, StreamEvent,
    TimeoutPhase, ToolCall, ToolDef, Usage,
};
