//! `POST /v1/chat/completions` (`chat:write`): OpenAI's chat completions, whole or as
//! `chat.completion.chunk` events ending in `data: [DONE]`, for a configured
//! `provider/model` (a guarded pass-through: the request is rebuilt from its parsed
//! fields, never forwarded, and the upstream's body and headers never come back). Errors
//! before the stream starts are plain OpenAI errors with their status; after it started,
//! one `data: {"error": …}` event, then the stream closes without `[DONE]`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};

use super::dispatch;
use super::error::OpenAiError;
use super::request::parse_chat;
use super::sse::{Frames, json_event, respond, set};
use super::upstream::{self, Asker};
use crate::gateway::providers::{Completion, StreamEvent, Usage};
use crate::server::auth::Caller;
use crate::server::state::App;

#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "openai",
    summary = "OpenAI-compatible chat completions (JSON or an SSE stream)",
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, description = "A chat completion, or with `stream: true` an SSE stream of chunks", body = Object), (status = 404, description = "No such model", body = Object), (status = 422, description = "The upstream refused the request", body = Object))
)]
pub async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, OpenAiError> {
    let call = parse_chat(&body)?;
    let asker = Asker::of(&caller);
    let target = upstream::resolve(&app, &call.model).await?;
    let id = upstream::new_id("chatcmpl-");
    let created = upstream::now(&app);
    if !call.stream {
        let completion = dispatch::whole(&app, &asker, &target, call.request).await?;
        return Ok(Json(completion_body(&id, created, &call.model, &completion)).into_response());
    }
    let streamed = dispatch::streamed(&app, &asker, &target, call.request).await?;
    let frames = ChatFrames {
        id,
        created,
        model: call.model.clone(),
        include_usage: call.include_usage,
    };
    let first = vec![frames.chunk(json!({"role": "assistant", "content": ""}), None)];
    Ok(respond(
        first,
        streamed.source,
        frames,
        app.config().server.sse_keepalive,
        streamed.ended_early,
        streamed.done,
    ))
}

/// A whole answer as OpenAI's `chat.completion` object.
pub fn completion_body(id: &str, created: i64, model: &str, completion: &Completion) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": if completion.text.is_empty() && !completion.tool_calls.is_empty() {
            Value::Null
        } else {
            Value::String(completion.text.clone())
        },
        "refusal": null,
    });
    if !completion.tool_calls.is_empty() {
        let calls: Vec<Value> = completion
            .tool_calls
            .iter()
            .map(|call| {
                json!({"id": call.id, "type": "function",
                       "function": {"name": call.name, "arguments": call.arguments}})
            })
            .collect();
        set(&mut message, "tool_calls", Value::Array(calls));
    }
    let finish = completion.finish.map_or("stop", |f| f.as_openai());
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": null}],
        "usage": usage_body(completion.usage.unwrap_or_default()),
    })
}

fn usage_body(usage: Usage) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total(),
    })
}

/// The chunks of one streamed answer.
struct ChatFrames {
    id: String,
    created: i64,
    model: String,
    include_usage: bool,
}

impl ChatFrames {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Event {
        json_event(
            None,
            &json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
            }),
        )
    }
}

impl Frames for ChatFrames {
    fn event(&mut self, event: &StreamEvent) -> Vec<Event> {
        let delta = match event {
            StreamEvent::TextDelta(text) => json!({"content": text}),
            StreamEvent::ToolCallStart { index, id, name } => json!({"tool_calls": [{
                "index": index, "id": id, "type": "function",
                "function": {"name": name, "arguments": ""}}]}),
            StreamEvent::ToolCallDelta { index, arguments } => {
                json!({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})
            }
            StreamEvent::Finish(reason) => {
                return vec![self.chunk(json!({}), Some(reason.as_openai()))];
            }
            StreamEvent::ToolCallEnd { .. } | StreamEvent::Usage(_) => return Vec::new(),
        };
        vec![self.chunk(delta, None)]
    }

    fn finish(&mut self, completion: &Completion) -> Vec<Event> {
        let mut events = Vec::new();
        if self.include_usage {
            events.push(json_event(
                None,
                &json!({
                    "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                    "model": self.model, "choices": [],
                    "usage": usage_body(completion.usage.unwrap_or_default()),
                }),
            ));
        }
        events.push(Event::default().data("[DONE]"));
        events
    }

    fn fail(&mut self, error: &OpenAiError) -> Vec<Event> {
        vec![json_event(None, &error.body())]
    }
}
