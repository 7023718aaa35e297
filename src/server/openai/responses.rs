//! `POST /v1/responses` (`chat:write`): OpenAI's Responses API on the same providers as
//! chat completions, translated onto the internal request (instructions become the
//! system message, input items the conversation, function tools and
//! `function_call_output` items the tool turns). Whole, or streamed as `response.*`
//! events from `response.created` to `response.completed` or `response.failed`. Nothing
//! is stored: `previous_response_id` and `store: true` are refused by the parser.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};

use super::dispatch;
use super::error::OpenAiError;
use super::request::{ResponsesCall, parse_responses};
use super::sse::{Frames, json_event, respond, set};
use super::upstream::{self, Asker};
use crate::gateway::providers::{Completion, FinishReason, StreamEvent, ToolDef, Usage};
use crate::server::auth::Caller;
use crate::server::state::App;

#[utoipa::path(
    post,
    path = "/v1/responses",
    tag = "openai",
    summary = "OpenAI-compatible Responses API (JSON or an SSE stream)",
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, description = "A response, or with `stream: true` an SSE stream of events", body = Object), (status = 404, description = "No such model", body = Object), (status = 422, description = "The upstream refused the request", body = Object))
)]
pub async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, OpenAiError> {
    let call = parse_responses(&body)?;
    let asker = Asker::of(&caller);
    let target = upstream::resolve(&app, &call.model).await?;
    let meta = Meta::new(&app, &call);
    if !call.stream {
        let completion = dispatch::whole(&app, &asker, &target, call.request).await?;
        let output = whole_output(&completion);
        return Ok(
            Json(meta.object(Status::of(&completion), output, Some(&completion))).into_response(),
        );
    }
    let streamed = dispatch::streamed(&app, &asker, &target, call.request).await?;
    let mut frames = ResponseFrames::new(meta);
    let first = frames.opening();
    Ok(respond(
        first,
        streamed.source,
        frames,
        app.config().server.sse_keepalive,
        streamed.ended_early,
        streamed.done,
    ))
}

/// Where a response stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    InProgress,
    Completed,
    /// The token limit cut it short.
    Incomplete,
    Failed,
}

impl Status {
    fn of(completion: &Completion) -> Self {
        if completion.finish == Some(FinishReason::Length) {
            Self::Incomplete
        } else {
            Self::Completed
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Incomplete => "incomplete",
            Self::Failed => "failed",
        }
    }
}

/// What every response object of one request repeats.
struct Meta {
    id: String,
    created: i64,
    model: String,
    instructions: Option<String>,
    max_output_tokens: Option<u32>,
    temperature: Option<f32>,
    tools: Vec<ToolDef>,
}

impl Meta {
    fn new(app: &App, call: &ResponsesCall) -> Self {
        Self {
            id: upstream::new_id("resp_"),
            created: upstream::now(app),
            model: call.model.clone(),
            instructions: call.instructions.clone(),
            max_output_tokens: call.max_output_tokens,
            temperature: call.request.temperature,
            tools: call.request.tools.clone(),
        }
    }

    /// The response object as OpenAI shapes it.
    fn object(&self, status: Status, output: Vec<Value>, completion: Option<&Completion>) -> Value {
        let tools: Vec<Value> = self
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "name": t.name, "description": t.description,
                       "parameters": t.parameters, "strict": false})
            })
            .collect();
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status.as_str(),
            "error": null,
            "incomplete_details": if status == Status::Incomplete {
                json!({"reason": "max_output_tokens"})
            } else {
                Value::Null
            },
            "instructions": self.instructions,
            "max_output_tokens": self.max_output_tokens,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": true,
            "previous_response_id": null,
            "reasoning": {"effort": null, "summary": null},
            "store": false,
            "temperature": self.temperature,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": tools,
            "top_p": null,
            "truncation": "disabled",
            "usage": completion.map(|c| usage_body(c.usage.unwrap_or_default())),
            "user": null,
            "metadata": {},
        })
    }
}

fn usage_body(usage: Usage) -> Value {
    json!({
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total(),
    })
}

fn message_item(id: &str, status: &str, text: &str) -> Value {
    json!({
        "id": id, "type": "message", "status": status, "role": "assistant",
        "content": if status == "in_progress" && text.is_empty() {
            json!([])
        } else {
            json!([text_part(text)])
        },
    })
}

fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": []})
}

fn call_item(id: &str, status: &str, call_id: &str, name: &str, arguments: &str) -> Value {
    json!({"id": id, "type": "function_call", "status": status, "call_id": call_id,
           "name": name, "arguments": arguments})
}

/// A whole answer's output items: its text as one message, then one item per call.
fn whole_output(completion: &Completion) -> Vec<Value> {
    let mut output = Vec::new();
    if !completion.text.is_empty() || completion.tool_calls.is_empty() {
        output.push(message_item(
            &upstream::new_id("msg_"),
            "completed",
            &completion.text,
        ));
    }
    for call in &completion.tool_calls {
        output.push(call_item(
            &upstream::new_id("fc_"),
            "completed",
            &call.id,
            &call.name,
            &call.arguments,
        ));
    }
    output
}

/// A function call being streamed.
struct OpenCall {
    output_index: usize,
    item_id: String,
    call_id: String,
    name: String,
    arguments: String,
}

/// The `response.*` events of one streamed answer, numbered in order.
struct ResponseFrames {
    meta: Meta,
    sequence: u64,
    next_index: usize,
    /// The message item being written: its output index, id and text so far.
    text: Option<(usize, String, String)>,
    calls: BTreeMap<usize, OpenCall>,
    /// Finished items by output index.
    done: BTreeMap<usize, Value>,
}

impl ResponseFrames {
    fn new(meta: Meta) -> Self {
        Self {
            meta,
            sequence: 0,
            next_index: 0,
            text: None,
            calls: BTreeMap::new(),
            done: BTreeMap::new(),
        }
    }

    fn emit(&mut self, kind: &str, mut data: Value) -> Event {
        set(&mut data, "type", json!(kind));
        set(&mut data, "sequence_number", json!(self.sequence));
        self.sequence += 1;
        json_event(Some(kind), &data)
    }

    fn opening(&mut self) -> Vec<Event> {
        let object = self.meta.object(Status::InProgress, Vec::new(), None);
        vec![
            self.emit("response.created", json!({"response": object.clone()})),
            self.emit("response.in_progress", json!({"response": object})),
        ]
    }

    fn output(&self) -> Vec<Value> {
        self.done.values().cloned().collect()
    }

    fn close_text(&mut self) -> Vec<Event> {
        let Some((index, id, text)) = self.text.take() else {
            return Vec::new();
        };
        let item = message_item(&id, "completed", &text);
        self.done.insert(index, item.clone());
        vec![
            self.emit(
                "response.output_text.done",
                json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
            ),
            self.emit(
                "response.content_part.done",
                json!({"item_id": id, "output_index": index, "content_index": 0, "part": text_part(&text)}),
            ),
            self.emit(
                "response.output_item.done",
                json!({"output_index": index, "item": item}),
            ),
        ]
    }

    fn close_call(&mut self, index: usize) -> Vec<Event> {
        let Some(call) = self.calls.remove(&index) else {
            return Vec::new();
        };
        let item = call_item(
            &call.item_id,
            "completed",
            &call.call_id,
            &call.name,
            &call.arguments,
        );
        self.done.insert(call.output_index, item.clone());
        vec![
            self.emit(
                "response.function_call_arguments.done",
                json!({"item_id": call.item_id, "output_index": call.output_index, "arguments": call.arguments}),
            ),
            self.emit(
                "response.output_item.done",
                json!({"output_index": call.output_index, "item": item}),
            ),
        ]
    }
}

impl Frames for ResponseFrames {
    fn event(&mut self, event: &StreamEvent) -> Vec<Event> {
        match event {
            StreamEvent::TextDelta(delta) => {
                let mut events = Vec::new();
                if self.text.is_none() {
                    let index = self.next_index;
                    self.next_index += 1;
                    let id = upstream::new_id("msg_");
                    events.push(self.emit(
                        "response.output_item.added",
                        json!({"output_index": index, "item": message_item(&id, "in_progress", "")}),
                    ));
                    events.push(self.emit(
                        "response.content_part.added",
                        json!({"item_id": id, "output_index": index, "content_index": 0, "part": text_part("")}),
                    ));
                    self.text = Some((index, id, String::new()));
                }
                let (index, id) = match self.text.as_mut() {
                    Some((index, id, text)) => {
                        text.push_str(delta);
                        (*index, id.clone())
                    }
                    None => return events,
                };
                events.push(self.emit(
                    "response.output_text.delta",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta, "logprobs": []}),
                ));
                events
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                let mut events = self.close_text();
                let output_index = self.next_index;
                self.next_index += 1;
                let item_id = upstream::new_id("fc_");
                events.push(self.emit(
                    "response.output_item.added",
                    json!({"output_index": output_index,
                           "item": call_item(&item_id, "in_progress", id, name, "")}),
                ));
                self.calls.insert(
                    *index,
                    OpenCall {
                        output_index,
                        item_id,
                        call_id: id.clone(),
                        name: name.clone(),
                        arguments: String::new(),
                    },
                );
                events
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                let Some(call) = self.calls.get_mut(index) else {
                    return Vec::new();
                };
                call.arguments.push_str(arguments);
                let data = json!({"item_id": call.item_id, "output_index": call.output_index, "delta": arguments});
                vec![self.emit("response.function_call_arguments.delta", data)]
            }
            StreamEvent::ToolCallEnd { index } => self.close_call(*index),
            StreamEvent::Usage(_) | StreamEvent::Finish(_) => Vec::new(),
        }
    }

    fn finish(&mut self, completion: &Completion) -> Vec<Event> {
        let mut events = self.close_text();
        let open: Vec<usize> = self.calls.keys().copied().collect();
        for index in open {
            events.extend(self.close_call(index));
        }
        let object = self
            .meta
            .object(Status::of(completion), self.output(), Some(completion));
        let kind = if Status::of(completion) == Status::Incomplete {
            "response.incomplete"
        } else {
            "response.completed"
        };
        events.push(self.emit(kind, json!({"response": object})));
        events
    }

    fn fail(&mut self, error: &OpenAiError) -> Vec<Event> {
        let mut object = self.meta.object(Status::Failed, self.output(), None);
        set(
            &mut object,
            "error",
            json!({"code": error.code(), "message": error.to_string()}),
        );
        vec![self.emit("response.failed", json!({"response": object}))]
    }
}
