//! The `anthropic` kind: Anthropic's Messages API (`POST {base_url}/v1/messages` with
//! `x-api-key` and `anthropic-version`). System messages become the `system` field, tool
//! calls `tool_use` blocks, tool results `tool_result` blocks in a user turn; streamed
//! events (`message_start`, `content_block_*` with `input_json_delta`, `message_delta`,
//! `message_stop`, `error`) become the internal events. It never passes on what the
//! upstream wrote beyond the fields it reads.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::sse::SseEvent;
use super::stream::Decoder;
use super::types::{
    ChatRequest, Completion, FinishReason, Message, ProviderError, StreamEvent, ToolCall, Usage,
};

/// The API version this translation speaks.
pub const API_VERSION: &str = "2023-06-01";
/// The Messages API requires `max_tokens`; this is sent when the request names none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The request body for `POST {base_url}/v1/messages`.
pub fn request_body(request: &ChatRequest, stream: bool) -> Value {
    let system: Vec<&str> = request
        .messages
        .iter()
        .filter_map(|m| match m {
            Message::System { content } => Some(content.as_str()),
            _ => None,
        })
        .collect();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in &request.messages {
        let (role, blocks) = match message {
            Message::System { .. } => continue,
            Message::User { content } => ("user", vec![json!({"type": "text", "text": content})]),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                let mut blocks = Vec::new();
                if !content.is_empty() {
                    blocks.push(json!({"type": "text", "text": content}));
                }
                for call in tool_calls {
                    // The model's arguments went out as text; Anthropic wants an object
                    // back. Text that is no JSON object is sent as one under "input".
                    let input = match serde_json::from_str::<Value>(&call.arguments) {
                        Ok(value @ Value::Object(_)) => value,
                        _ => json!({ "input": call.arguments }),
                    };
                    blocks.push(json!({
                        "type": "tool_use", "id": call.id, "name": call.name, "input": input,
                    }));
                }
                ("assistant", blocks)
            }
            Message::Tool { call_id, content } => (
                "user",
                vec![json!({"type": "tool_result", "tool_use_id": call_id, "content": content})],
            ),
        };
        // The API wants user and assistant turns to alternate: consecutive blocks of one
        // role (several tool results, say) share one turn.
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert(
        "max_tokens".into(),
        json!(request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
    );
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(stream));
    if !system.is_empty() {
        body.insert("system".into(), json!(system.join("\n\n")));
    }
    if !request.tools.is_empty() {
        body.insert(
            "tools".into(),
            request
                .tools
                .iter()
                .map(|tool| {
                    json!({
                        "name": tool.name,
                        "description": tool.description,
                        "input_schema": tool.parameters,
                    })
                })
                .collect(),
        );
    }
    if let Some(temperature) = request.temperature {
        body.insert("temperature".into(), json!(temperature));
    }
    Value::Object(body)
}

fn bad(what: &'static str) -> ProviderError {
    ProviderError::BadResponse {
        provider: String::new(),
        what,
    }
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireMessage {
    content: Vec<WireBlock>,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
}

fn stop_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("end_turn") | Some("stop_sequence") | None => FinishReason::Stop,
        Some("max_tokens") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        Some(_) => FinishReason::Other,
    }
}

/// Reads a non-streamed answer.
pub fn parse_completion(body: &[u8]) -> Result<Completion, ProviderError> {
    let wire: WireMessage =
        serde_json::from_slice(body).map_err(|_| bad("not a Messages API answer"))?;
    let mut completion = Completion {
        finish: Some(stop_reason(wire.stop_reason.as_deref())),
        usage: wire.usage.map(|u| Usage {
            prompt_tokens: u.input_tokens,
            completion_tokens: u.output_tokens,
        }),
        ..Completion::default()
    };
    for block in wire.content {
        match block {
            WireBlock::Text { text } => completion.text.push_str(&text),
            WireBlock::ToolUse { id, name, input } => completion.tool_calls.push(ToolCall {
                id,
                name,
                arguments: input.to_string(),
            }),
            WireBlock::Other => {}
        }
    }
    Ok(completion)
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: WireStart,
    },
    ContentBlockStart {
        index: u64,
        content_block: WireBlock,
    },
    ContentBlockDelta {
        index: u64,
        delta: WireDelta,
    },
    ContentBlockStop {
        index: u64,
    },
    MessageDelta {
        delta: WireMessageDelta,
        #[serde(default)]
        usage: WireUsage,
    },
    MessageStop,
    Ping,
    Error {
        error: WireError,
    },
}

#[derive(Deserialize)]
struct WireStart {
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireMessageDelta {
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(rename = "type")]
    kind: String,
}

/// The state of one streamed answer: which content block is which tool call, the input
/// tokens from `message_start`, and how the answer ended.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    tools: BTreeMap<u64, usize>,
    prompt_tokens: u64,
    finish: Option<FinishReason>,
    done: bool,
}

impl Decoder for StreamDecoder {
    fn feed(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if self.done {
            return Ok(());
        }
        let wire: WireEvent = serde_json::from_str(&event.data)
            .map_err(|_| bad("a stream event that is not a Messages API event"))?;
        match wire {
            WireEvent::MessageStart { message } => self.prompt_tokens = message.usage.input_tokens,
            WireEvent::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                WireBlock::Text { text } if !text.is_empty() => {
                    out.push(StreamEvent::TextDelta(text))
                }
                WireBlock::ToolUse { id, name, .. } => {
                    if self.tools.contains_key(&index) {
                        return Err(bad("a content block started twice"));
                    }
                    let ours = self.tools.len();
                    self.tools.insert(index, ours);
                    out.push(StreamEvent::ToolCallStart {
                        index: ours,
                        id,
                        name,
                    });
                }
                _ => {}
            },
            WireEvent::ContentBlockDelta { index, delta } => match delta {
                WireDelta::TextDelta { text } if !text.is_empty() => {
                    out.push(StreamEvent::TextDelta(text))
                }
                WireDelta::InputJsonDelta { partial_json } => {
                    let ours = *self
                        .tools
                        .get(&index)
                        .ok_or_else(|| bad("tool input for a block that is no tool call"))?;
                    if !partial_json.is_empty() {
                        out.push(StreamEvent::ToolCallDelta {
                            index: ours,
                            arguments: partial_json,
                        });
                    }
                }
                _ => {}
            },
            WireEvent::ContentBlockStop { index } => {
                if let Some(ours) = self.tools.get(&index) {
                    out.push(StreamEvent::ToolCallEnd { index: *ours });
                }
            }
            WireEvent::MessageDelta { delta, usage } => {
                self.finish = Some(stop_reason(delta.stop_reason.as_deref()));
                out.push(StreamEvent::Usage(Usage {
                    prompt_tokens: self.prompt_tokens.max(usage.input_tokens),
                    completion_tokens: usage.output_tokens,
                }));
            }
            WireEvent::MessageStop => {
                out.push(StreamEvent::Finish(
                    self.finish.unwrap_or(FinishReason::Stop),
                ));
                self.done = true;
            }
            WireEvent::Ping => {}
            WireEvent::Error { error } => {
                return Err(match error.kind.as_str() {
                    "overloaded_error" => ProviderError::Status {
                        provider: String::new(),
                        status: 529,
                    },
                    "api_error" => ProviderError::Status {
                        provider: String::new(),
                        status: 500,
                    },
                    "rate_limit_error" => ProviderError::RateLimited {
                        provider: String::new(),
                        retry_after: None,
                    },
                    _ => bad("the upstream reported an error in the stream"),
                });
            }
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.done
    }

    fn end(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if self.done {
            Ok(())
        } else {
            Err(ProviderError::Dropped {
                provider: String::new(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_goes_apart_and_tool_results_share_a_user_turn() {
        let request = ChatRequest {
            model: "claude".into(),
            messages: vec![
                Message::system("be brief"),
                Message::user("go"),
                Message::assistant(
                    "sure",
                    vec![
                        ToolCall {
                            id: "t1".into(),
                            name: "a".into(),
                            arguments: r#"{"x":1}"#.into(),
                        },
                        ToolCall {
                            id: "t2".into(),
                            name: "b".into(),
                            arguments: "not json".into(),
                        },
                    ],
                ),
                Message::tool("t1", "one"),
                Message::tool("t2", "two"),
            ],
            ..ChatRequest::default()
        };
        let body = request_body(&request, false);
        assert_eq!(body["system"], "be brief");
        assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[1]["content"][1]["input"]["x"], 1);
        assert_eq!(messages[1]["content"][2]["input"]["input"], "not json");
        assert_eq!(messages[2]["role"], "user");
        assert_eq!(messages[2]["content"][1]["tool_use_id"], "t2");
    }
}
