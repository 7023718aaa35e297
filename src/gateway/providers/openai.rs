//! The `openai` kind: any server speaking OpenAI's `/v1/chat/completions` (OpenAI,
//! Ollama's `/v1`, llama.cpp, vLLM, LM Studio, OpenRouter). It translates the internal
//! form to that wire shape and the answers (whole or streamed, tool calls and usage
//! included) back. It never sends anything but the request it was given and our key as
//! a bearer token, and never passes on what the upstream wrote beyond the fields it reads.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::sse::SseEvent;
use super::stream::Decoder;
use super::types::{
    ChatRequest, Completion, FinishReason, Message, ProviderError, StreamEvent, ToolCall, Usage,
};

/// The request body for `POST {base_url}/chat/completions`.
pub fn request_body(request: &ChatRequest, stream: bool) -> Value {
    let messages: Vec<Value> = request.messages.iter().map(message).collect();
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(stream));
    if stream {
        body.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    if !request.tools.is_empty() {
        body.insert(
            "tools".into(),
            request
                .tools
                .iter()
                .map(|tool| {
                    json!({
                        "type": "function",
                        "function": {
                            "name": tool.name,
                            "description": tool.description,
                            "parameters": tool.parameters,
                        }
                    })
                })
                .collect(),
        );
    }
    if let Some(temperature) = request.temperature {
        body.insert("temperature".into(), json!(temperature));
    }
    if let Some(max_tokens) = request.max_tokens {
        body.insert("max_tokens".into(), json!(max_tokens));
    }
    Value::Object(body)
}

fn message(message: &Message) -> Value {
    match message {
        Message::System { content } => json!({ "role": "system", "content": content }),
        Message::User { content } => json!({ "role": "user", "content": content }),
        Message::Assistant {
            content,
            tool_calls,
        } => {
            let mut value = Map::new();
            value.insert("role".into(), json!("assistant"));
            value.insert("content".into(), json!(content));
            if !tool_calls.is_empty() {
                if content.is_empty() {
                    value.insert("content".into(), Value::Null);
                }
                value.insert(
                    "tool_calls".into(),
                    tool_calls
                        .iter()
                        .map(|call| {
                            json!({
                                "id": call.id,
                                "type": "function",
                                "function": { "name": call.name, "arguments": call.arguments },
                            })
                        })
                        .collect(),
                );
            }
            Value::Object(value)
        }
        Message::Tool { call_id, content } => {
            json!({ "role": "tool", "tool_call_id": call_id, "content": content })
        }
    }
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl From<WireUsage> for Usage {
    fn from(usage: WireUsage) -> Self {
        Usage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        }
    }
}

#[derive(Deserialize)]
struct WireCompletion {
    choices: Vec<WireChoice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: String,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: String,
}

fn bad(what: &'static str) -> ProviderError {
    ProviderError::BadResponse {
        provider: String::new(),
        what,
    }
}

/// Reads a non-streamed answer.
pub fn parse_completion(body: &[u8]) -> Result<Completion, ProviderError> {
    let wire: WireCompletion =
        serde_json::from_slice(body).map_err(|_| bad("not a chat completion"))?;
    let choice = wire
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| bad("a chat completion without choices"))?;
    let tool_calls: Vec<ToolCall> = choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .map(|call| ToolCall {
            id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
        })
        .collect();
    Ok(Completion {
        text: choice.message.content.unwrap_or_default(),
        finish: Some(finish_reason(
            choice.finish_reason.as_deref(),
            !tool_calls.is_empty(),
        )),
        tool_calls,
        usage: wire.usage.map(Usage::from),
    })
}

fn finish_reason(reason: Option<&str>, has_tools: bool) -> FinishReason {
    match reason {
        Some("stop") | Some("eos") | None if !has_tools => FinishReason::Stop,
        Some("length") => FinishReason::Length,
        Some("tool_calls") | Some("function_call") => FinishReason::ToolCalls,
        Some("content_filter") => FinishReason::ContentFilter,
        // Some servers say "stop" after tool calls; the calls still want running.
        _ if has_tools => FinishReason::ToolCalls,
        _ => FinishReason::Other,
    }
}

/// Reads `GET {base_url}/models`: the ids it lists.
pub fn parse_models(body: &[u8]) -> Result<Vec<String>, ProviderError> {
    #[derive(Deserialize)]
    struct List {
        data: Vec<Model>,
    }
    #[derive(Deserialize)]
    struct Model {
        id: String,
    }
    let list: List = serde_json::from_slice(body).map_err(|_| bad("not a model list"))?;
    Ok(list.data.into_iter().map(|model| model.id).collect())
}

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    choices: Vec<WireChunkChoice>,
    usage: Option<WireUsage>,
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct WireChunkChoice {
    #[serde(default)]
    delta: Option<WireDelta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireDelta {
    content: Option<String>,
    tool_calls: Option<Vec<WireDeltaCall>>,
}

#[derive(Deserialize)]
struct WireDeltaCall {
    index: Option<u64>,
    id: Option<String>,
    function: Option<WireDeltaFunction>,
}

#[derive(Deserialize)]
struct WireDeltaFunction {
    name: Option<String>,
    arguments: Option<String>,
}

/// The state of one streamed answer: which upstream tool-call index is which of ours,
/// which calls are still open, and how the answer ended.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    calls: BTreeMap<u64, usize>,
    open: Vec<usize>,
    finish: Option<FinishReason>,
    done: bool,
}

impl StreamDecoder {
    fn close_calls(&mut self, out: &mut Vec<StreamEvent>) {
        for index in self.open.drain(..) {
            out.push(StreamEvent::ToolCallEnd { index });
        }
    }
}

impl Decoder for StreamDecoder {
    fn feed(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if self.done {
            return Ok(());
        }
        let data = event.data.trim();
        if data == "[DONE]" {
            self.close_calls(out);
            out.push(StreamEvent::Finish(
                self.finish.unwrap_or(FinishReason::Stop),
            ));
            self.done = true;
            return Ok(());
        }
        let chunk: WireChunk =
            serde_json::from_str(data).map_err(|_| bad("a stream event that is not a chunk"))?;
        if chunk.error.is_some() {
            return Err(bad("the upstream reported an error in the stream"));
        }
        for choice in chunk.choices.into_iter().take(1) {
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content.filter(|text| !text.is_empty()) {
                    out.push(StreamEvent::TextDelta(text));
                }
                for (position, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate()
                {
                    let key = call.index.unwrap_or(position as u64);
                    let (name, arguments) = call
                        .function
                        .map(|f| (f.name, f.arguments))
                        .unwrap_or((None, None));
                    let index = match self.calls.get(&key) {
                        Some(index) => *index,
                        None => {
                            let index = self.calls.len();
                            self.calls.insert(key, index);
                            self.open.push(index);
                            out.push(StreamEvent::ToolCallStart {
                                index,
                                id: call.id.unwrap_or_else(|| format!("call_{index}")),
                                name: name.unwrap_or_default(),
                            });
                            index
                        }
                    };
                    if let Some(arguments) = arguments.filter(|a| !a.is_empty()) {
                        out.push(StreamEvent::ToolCallDelta { index, arguments });
                    }
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.close_calls(out);
                self.finish = Some(finish_reason(Some(&reason), !self.calls.is_empty()));
            }
        }
        if let Some(usage) = chunk.usage {
            out.push(StreamEvent::Usage(usage.into()));
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.done
    }

    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if self.done {
            return Ok(());
        }
        // A server that ends the body after the finishing chunk without `[DONE]` (some
        // local servers do) still gave a whole answer.
        match self.finish {
            Some(reason) => {
                self.close_calls(out);
                out.push(StreamEvent::Finish(reason));
                self.done = true;
                Ok(())
            }
            None => Err(ProviderError::Dropped {
                provider: String::new(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::providers::types::ToolDef;

    fn feed(decoder: &mut StreamDecoder, data: &str) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        decoder
            .feed(
                SseEvent {
                    event: String::new(),
                    data: data.into(),
                },
                &mut out,
            )
            .unwrap();
        out
    }

    #[test]
    fn the_request_has_openai_shape() {
        let request = ChatRequest {
            model: "gpt-x".into(),
            messages: vec![
                Message::system("be brief"),
                Message::user("list files"),
                Message::assistant(
                    "",
                    vec![ToolCall {
                        id: "c1".into(),
                        name: "shell".into(),
                        arguments: "{}".into(),
                    }],
                ),
                Message::tool("c1", "a.txt"),
            ],
            tools: vec![ToolDef {
                name: "shell".into(),
                description: "run".into(),
                parameters: json!({"type":"object"}),
            }],
            temperature: Some(0.5),
            max_tokens: Some(10),
        };
        let body = request_body(&request, true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["messages"][2]["content"], Value::Null);
        assert_eq!(
            body["messages"][2]["tool_calls"][0]["function"]["name"],
            "shell"
        );
        assert_eq!(body["messages"][3]["tool_call_id"], "c1");
        assert_eq!(body["tools"][0]["function"]["parameters"]["type"], "object");
        assert_eq!(body["max_tokens"], 10);
    }

    #[test]
    fn tool_call_fragments_join_by_index() {
        let mut decoder = StreamDecoder::default();
        let mut events = feed(
            &mut decoder,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":""}},{"index":1,"id":"b","function":{"name":"g","arguments":"{"}}]}}]}"#,
        );
        events.extend(feed(
            &mut decoder,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"function":{"arguments":"}"}},{"index":0,"function":{"arguments":"[]"}}]},"finish_reason":"tool_calls"}]}"#,
        ));
        events.extend(feed(
            &mut decoder,
            r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#,
        ));
        events.extend(feed(&mut decoder, "[DONE]"));
        let mut completion = Completion::default();
        for event in &events {
            completion.apply(event);
        }
        assert_eq!(completion.tool_calls[0].arguments, "[]");
        assert_eq!(completion.tool_calls[1].arguments, "{}");
        assert_eq!(completion.finish, Some(FinishReason::ToolCalls));
        assert_eq!(completion.usage.map(|u| u.total()), Some(3));
        assert!(decoder.done());
    }
}
