//! The parsers of `POST /v1/chat/completions` and `POST /v1/responses` bodies: OpenAI's
//! request shapes in, the gateway's internal [`ChatRequest`] out. Every field is read by
//! name, so a refusal names it (`messages[2].role`, `tools[0].type`); a field this
//! gateway cannot honour is refused, never silently dropped; `null` counts as absent, as
//! it does for OpenAI. Pure functions of the bytes: they never call a provider, never
//! store, and are what the fuzz target `openai_request` runs.

use serde_json::{Map, Value};

use super::error::OpenAiError;
use crate::gateway::providers::{ChatRequest, Message, ToolCall, ToolDef};

/// Most messages (or input items) one request may carry.
pub const MAX_MESSAGES: usize = 1024;
/// Most tools one request may declare.
pub const MAX_TOOLS: usize = 128;
/// Longest `model` name.
const MAX_MODEL: usize = 256;

/// Chat-completions fields OpenAI defines that this gateway does not serve: each is
/// refused by name when set.
const CHAT_UNSUPPORTED: &[&str] = &[
    "audio",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "metadata",
    "modalities",
    "prediction",
    "presence_penalty",
    "prompt_cache_key",
    "reasoning_effort",
    "response_format",
    "safety_identifier",
    "seed",
    "service_tier",
    "stop",
    "top_logprobs",
    "top_p",
    "verbosity",
    "web_search_options",
];

const CHAT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
    "store",
];

/// Responses fields OpenAI defines that this gateway does not serve.
const RESPONSES_UNSUPPORTED: &[&str] = &[
    "background",
    "conversation",
    "include",
    "max_tool_calls",
    "metadata",
    "previous_response_id",
    "prompt",
    "prompt_cache_key",
    "reasoning",
    "safety_identifier",
    "service_tier",
    "stream_options",
    "top_logprobs",
    "top_p",
];

const RESPONSES_FIELDS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "stream",
    "temperature",
    "max_output_tokens",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
    "store",
    "text",
    "truncation",
];

/// A parsed `POST /v1/chat/completions`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatCall {
    /// `provider/model` or an agent's name, as the client wrote it.
    pub model: String,
    /// The request, its `model` still empty (the route resolves it).
    pub request: ChatRequest,
    pub stream: bool,
    /// `stream_options.include_usage`: send the usage chunk before `[DONE]`.
    pub include_usage: bool,
}

/// A parsed `POST /v1/responses`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesCall {
    pub model: String,
    /// `instructions` first (as a system message), then the input.
    pub request: ChatRequest,
    pub stream: bool,
    /// Echoed in the response object, as OpenAI does.
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u32>,
}

/// Parses a chat-completions body.
pub fn parse_chat(body: &[u8]) -> Result<ChatCall, OpenAiError> {
    let root = json_object(body)?;
    let top = Obj::top(&root);
    top.only(CHAT_FIELDS, CHAT_UNSUPPORTED)?;
    let model = model(&top)?;
    let stream = top.bool("stream")?.unwrap_or(false);
    let include_usage = match top.object("stream_options")? {
        None => false,
        Some(options) if !stream => {
            let _ = options;
            return Err(OpenAiError::invalid(
                "stream_options",
                "stream_options is only allowed with stream: true",
            ));
        }
        Some(options) => {
            options.only(&["include_usage", "include_obfuscation"], &[])?;
            options.bool("include_obfuscation")?;
            options.bool("include_usage")?.unwrap_or(false)
        }
    };
    if let Some(n) = top.uint("n")?
        && n != 1
    {
        return Err(OpenAiError::unsupported(
            "n",
            "n must be 1: this gateway returns one choice per request",
        ));
    }
    common_switches(&top)?;
    let max_tokens = match (top.u32("max_tokens")?, top.u32("max_completion_tokens")?) {
        (Some(a), Some(b)) if a != b => {
            return Err(OpenAiError::invalid(
                "max_completion_tokens",
                "give max_completion_tokens or max_tokens, not both",
            ));
        }
        (a, b) => a.or(b),
    };
    let messages = top.required_array("messages")?;
    if messages.is_empty() {
        return Err(OpenAiError::invalid(
            "messages",
            "messages must hold at least one message",
        ));
    }
    check_count("messages", messages.len(), MAX_MESSAGES)?;
    let mut parsed = Vec::with_capacity(messages.len());
    for (index, value) in messages.iter().enumerate() {
        parsed.push(chat_message(value, &format!("messages[{index}]"))?);
    }
    let tools = match top.array("tools")? {
        None => Vec::new(),
        Some(tools) => {
            check_count("tools", tools.len(), MAX_TOOLS)?;
            let mut defs = Vec::with_capacity(tools.len());
            for (index, value) in tools.iter().enumerate() {
                let at = format!("tools[{index}]");
                let tool = Obj::of(value, &at)?;
                tool.only(&["type", "function"], &[])?;
                expect_function_type(&tool)?;
                let function = tool.required_object("function")?;
                function.only(&["name", "description", "parameters", "strict"], &[])?;
                defs.push(tool_def(&function)?);
            }
            defs
        }
    };
    Ok(ChatCall {
        model,
        request: ChatRequest {
            model: String::new(),
            messages: parsed,
            tools,
            temperature: temperature(&top)?,
            max_tokens,
        },
        stream,
        include_usage,
    })
}

/// Parses a responses body.
pub fn parse_responses(body: &[u8]) -> Result<ResponsesCall, OpenAiError> {
    let root = json_object(body)?;
    let top = Obj::top(&root);
    top.only(RESPONSES_FIELDS, RESPONSES_UNSUPPORTED)?;
    let model = model(&top)?;
    let stream = top.bool("stream")?.unwrap_or(false);
    common_switches(&top)?;
    if let Some(text) = top.object("text")? {
        text.only(&["format"], &["verbosity"])?;
        if let Some(format) = text.object("format")? {
            format.only(&["type"], &[])?;
            if format.required_string("type")? != "text" {
                return Err(OpenAiError::unsupported(
                    "text.format.type",
                    "only text output is supported (text.format.type = \"text\")",
                ));
            }
        }
    }
    if let Some(truncation) = top.string("truncation")?
        && truncation != "disabled"
    {
        return Err(OpenAiError::unsupported(
            "truncation",
            "only truncation = \"disabled\" is supported",
        ));
    }
    let instructions = top.string("instructions")?.map(str::to_string);
    let mut messages = Vec::new();
    if let Some(text) = &instructions {
        messages.push(Message::system(text.clone()));
    }
    match top.get("input") {
        None => {
            return Err(OpenAiError::invalid("input", "input is required"));
        }
        Some(Value::String(text)) => messages.push(Message::user(text.clone())),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(OpenAiError::invalid(
                    "input",
                    "input must hold at least one item",
                ));
            }
            check_count("input", items.len(), MAX_MESSAGES)?;
            for (index, item) in items.iter().enumerate() {
                input_item(item, &format!("input[{index}]"), &mut messages)?;
            }
        }
        Some(_) => {
            return Err(OpenAiError::invalid(
                "input",
                "input must be a string or an array of input items",
            ));
        }
    }
    let tools = match top.array("tools")? {
        None => Vec::new(),
        Some(tools) => {
            check_count("tools", tools.len(), MAX_TOOLS)?;
            let mut defs = Vec::with_capacity(tools.len());
            for (index, value) in tools.iter().enumerate() {
                let tool = Obj::of(value, &format!("tools[{index}]"))?;
                expect_function_type(&tool)?;
                tool.only(
                    &["type", "name", "description", "parameters", "strict"],
                    &[],
                )?;
                defs.push(tool_def(&tool)?);
            }
            defs
        }
    };
    let max_output_tokens = top.u32("max_output_tokens")?;
    Ok(ResponsesCall {
        model,
        request: ChatRequest {
            model: String::new(),
            messages,
            tools,
            temperature: temperature(&top)?,
            max_tokens: max_output_tokens,
        },
        stream,
        instructions,
        max_output_tokens,
    })
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, OpenAiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(OpenAiError::Invalid {
            param: None,
            code: "invalid_json",
            message: "the body must be a JSON object".into(),
        }),
        Err(_) => Err(OpenAiError::Invalid {
            param: None,
            code: "invalid_json",
            message: "the body is not valid JSON".into(),
        }),
    }
}

fn model(top: &Obj<'_>) -> Result<String, OpenAiError> {
    let model = top.required_string("model")?;
    if model.is_empty() || model.len() > MAX_MODEL || model.chars().any(char::is_control) {
        return Err(OpenAiError::invalid(
            "model",
            format!("model must be 1 to {MAX_MODEL} printable characters"),
        ));
    }
    Ok(model.to_string())
}

/// The switches both APIs share and this gateway only accepts at their default.
fn common_switches(top: &Obj<'_>) -> Result<(), OpenAiError> {
    top.string("user")?;
    if top.bool("store")? == Some(true) {
        return Err(OpenAiError::unsupported(
            "store",
            "store = true is not supported: this gateway keeps no responses",
        ));
    }
    if top.bool("parallel_tool_calls")? == Some(false) {
        return Err(OpenAiError::unsupported(
            "parallel_tool_calls",
            "parallel_tool_calls = false is not supported",
        ));
    }
    match top.get("tool_choice") {
        None => Ok(()),
        Some(Value::String(choice)) if choice == "auto" => Ok(()),
        Some(_) => Err(OpenAiError::unsupported(
            "tool_choice",
            "only tool_choice = \"auto\" is supported",
        )),
    }
}

fn temperature(top: &Obj<'_>) -> Result<Option<f32>, OpenAiError> {
    match top.number("temperature")? {
        None => Ok(None),
        Some(t) if (0.0..=2.0).contains(&t) => Ok(Some(t as f32)),
        Some(_) => Err(OpenAiError::invalid(
            "temperature",
            "temperature must be between 0 and 2",
        )),
    }
}

fn check_count(param: &str, count: usize, max: usize) -> Result<(), OpenAiError> {
    if count > max {
        return Err(OpenAiError::invalid(
            param,
            format!("{param} holds {count} entries; at most {max} are accepted"),
        ));
    }
    Ok(())
}

fn expect_function_type(tool: &Obj<'_>) -> Result<(), OpenAiError> {
    let kind = tool.required_string("type")?;
    if kind != "function" {
        return Err(OpenAiError::unsupported(
            tool.name("type"),
            format!(
                "tool type {:?} is not supported: only function tools are",
                clip(kind)
            ),
        ));
    }
    Ok(())
}

/// A function tool's definition (chat's `function` object or a responses tool).
fn tool_def(function: &Obj<'_>) -> Result<ToolDef, OpenAiError> {
    let name = function.required_string("name")?;
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err(OpenAiError::invalid(
            function.name("name"),
            "a function name is 1 to 64 letters, digits, '_' or '-'",
        ));
    }
    function.bool("strict")?;
    let parameters = match function.get("parameters") {
        None => serde_json::json!({"type": "object", "properties": {}}),
        Some(value @ Value::Object(_)) => value.clone(),
        Some(_) => {
            return Err(OpenAiError::invalid(
                function.name("parameters"),
                "parameters must be a JSON Schema object",
            ));
        }
    };
    Ok(ToolDef {
        name: name.to_string(),
        description: function.string("description")?.unwrap_or("").to_string(),
        parameters,
    })
}

/// One chat message.
fn chat_message(value: &Value, at: &str) -> Result<Message, OpenAiError> {
    let message = Obj::of(value, at)?;
    let role = message.required_string("role")?;
    match role {
        "system" | "developer" => {
            message.only(&["role", "content", "name"], &[])?;
            message.string("name")?;
            Ok(Message::system(text_content(&message, &["text"])?))
        }
        "user" => {
            message.only(&["role", "content", "name"], &[])?;
            message.string("name")?;
            Ok(Message::user(text_content(&message, &["text"])?))
        }
        "assistant" => {
            message.only(
                &["role", "content", "name", "tool_calls", "refusal"],
                &["audio", "function_call"],
            )?;
            message.string("name")?;
            message.string("refusal")?;
            let content = match message.get("content") {
                None => String::new(),
                Some(_) => text_content(&message, &["text", "refusal"])?,
            };
            let mut calls = Vec::new();
            if let Some(list) = message.array("tool_calls")? {
                for (index, call) in list.iter().enumerate() {
                    let call = Obj::of(call, &format!("{at}.tool_calls[{index}]"))?;
                    call.only(&["id", "type", "function"], &[])?;
                    expect_function_type(&call)?;
                    let function = call.required_object("function")?;
                    function.only(&["name", "arguments"], &[])?;
                    calls.push(ToolCall {
                        id: call.required_string("id")?.to_string(),
                        name: function.required_string("name")?.to_string(),
                        arguments: function.string("arguments")?.unwrap_or("").to_string(),
                    });
                }
            }
            if content.is_empty() && calls.is_empty() {
                return Err(OpenAiError::invalid(
                    message.name("content"),
                    "an assistant message needs content or tool_calls",
                ));
            }
            Ok(Message::assistant(content, calls))
        }
        "tool" => {
            message.only(&["role", "content", "tool_call_id"], &[])?;
            let id = message.required_string("tool_call_id")?;
            Ok(Message::tool(id, text_content(&message, &["text"])?))
        }
        "function" => Err(OpenAiError::unsupported(
            message.name("role"),
            "role \"function\" is not supported: answer tool calls with role \"tool\"",
        )),
        other => Err(OpenAiError::invalid(
            message.name("role"),
            format!(
                "unknown role {:?}: use system, developer, user, assistant or tool",
                clip(other)
            ),
        )),
    }
}

/// One responses input item, appended to `messages`; a function call joins the
/// assistant message before it, as one turn.
fn input_item(value: &Value, at: &str, messages: &mut Vec<Message>) -> Result<(), OpenAiError> {
    let item = Obj::of(value, at)?;
    let kind = item.string("type")?.unwrap_or("message");
    match kind {
        "message" => {
            item.only(&["type", "role", "content", "id", "status"], &[])?;
            item.string("id")?;
            item.string("status")?;
            let role = item.required_string("role")?;
            let text = text_content(&item, &["input_text", "output_text", "text"])?;
            messages.push(match role {
                "user" => Message::user(text),
                "system" | "developer" => Message::system(text),
                "assistant" => Message::assistant(text, Vec::new()),
                other => {
                    return Err(OpenAiError::invalid(
                        item.name("role"),
                        format!(
                            "unknown role {:?}: use user, system, developer or assistant",
                            clip(other)
                        ),
                    ));
                }
            });
        }
        "function_call" => {
            item.only(
                &["type", "call_id", "name", "arguments", "id", "status"],
                &[],
            )?;
            item.string("id")?;
            item.string("status")?;
            let call = ToolCall {
                id: item.required_string("call_id")?.to_string(),
                name: item.required_string("name")?.to_string(),
                arguments: item.required_string("arguments")?.to_string(),
            };
            match messages.last_mut() {
                Some(Message::Assistant { tool_calls, .. }) => tool_calls.push(call),
                _ => messages.push(Message::assistant(String::new(), vec![call])),
            }
        }
        "function_call_output" => {
            item.only(&["type", "call_id", "output", "id", "status"], &[])?;
            item.string("id")?;
            item.string("status")?;
            let output = match item.get("output") {
                Some(Value::String(text)) => text.clone(),
                Some(_) => text_content_at(&item, "output", &["input_text", "output_text"])?,
                None => {
                    return Err(OpenAiError::invalid(
                        item.name("output"),
                        "output is required",
                    ));
                }
            };
            messages.push(Message::tool(item.required_string("call_id")?, output));
        }
        other => {
            return Err(OpenAiError::unsupported(
                item.name("type"),
                format!(
                    "input item type {:?} is not supported: use messages, function_call and function_call_output",
                    clip(other)
                ),
            ));
        }
    }
    Ok(())
}

/// `content`: a string, or an array of parts whose `type` is one of `kinds`, joined.
fn text_content(message: &Obj<'_>, kinds: &[&str]) -> Result<String, OpenAiError> {
    text_content_at(message, "content", kinds)
}

fn text_content_at(message: &Obj<'_>, key: &str, kinds: &[&str]) -> Result<String, OpenAiError> {
    match message.get(key) {
        None => Err(OpenAiError::invalid(
            message.name(key),
            format!("{key} is required"),
        )),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (index, part) in parts.iter().enumerate() {
                let part = Obj::of(part, &format!("{}[{index}]", message.name(key)))?;
                let kind = part.required_string("type")?;
                if !kinds.contains(&kind) {
                    return Err(OpenAiError::unsupported(
                        part.name("type"),
                        format!(
                            "content part type {:?} is not supported here: use {}",
                            clip(kind),
                            kinds.join(" or ")
                        ),
                    ));
                }
                part.only(&["type", "text", "refusal", "annotations", "logprobs"], &[])?;
                let text = match kind {
                    "refusal" => part.required_string("refusal")?,
                    _ => part.required_string("text")?,
                };
                texts.push(text);
            }
            Ok(texts.join("\n"))
        }
        Some(_) => Err(OpenAiError::invalid(
            message.name(key),
            format!("{key} must be a string or an array of content parts"),
        )),
    }
}

/// At most 40 characters of a client's value, for messages that quote it.
fn clip(text: &str) -> String {
    text.chars().take(40).collect()
}

/// A JSON object being read, with its path for messages.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    at: String,
}

impl<'a> Obj<'a> {
    fn top(map: &'a Map<String, Value>) -> Self {
        Self {
            map,
            at: String::new(),
        }
    }

    fn of(value: &'a Value, at: &str) -> Result<Self, OpenAiError> {
        match value {
            Value::Object(map) => Ok(Self {
                map,
                at: at.to_string(),
            }),
            _ => Err(OpenAiError::invalid(at, format!("{at} must be an object"))),
        }
    }

    /// The full name of `key` for messages: `messages[1].role`.
    fn name(&self, key: &str) -> String {
        if self.at.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.at)
        }
    }

    /// Refuses every key set (not null) that is not in `known`: by name, saying whether
    /// it is a field this gateway does not serve (in `unsupported`) or no field at all.
    fn only(&self, known: &[&str], unsupported: &[&str]) -> Result<(), OpenAiError> {
        for (key, value) in self.map {
            if value.is_null() || known.contains(&key.as_str()) {
                continue;
            }
            let name = self.name(&clip(key));
            return Err(if unsupported.contains(&key.as_str()) {
                OpenAiError::unsupported(&name, format!("{name} is not supported by this gateway"))
            } else {
                OpenAiError::unsupported(&name, format!("unknown parameter {name}"))
            });
        }
        Ok(())
    }

    /// The value at `key`; `None` when missing or null.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn wrong(&self, key: &str, what: &str) -> OpenAiError {
        let name = self.name(key);
        OpenAiError::invalid(&name, format!("{name} must be {what}"))
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, OpenAiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong(key, "a string")),
        }
    }

    fn required_string(&self, key: &str) -> Result<&'a str, OpenAiError> {
        self.string(key)?.ok_or_else(|| {
            let name = self.name(key);
            OpenAiError::invalid(&name, format!("{name} is required"))
        })
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, OpenAiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong(key, "true or false")),
        }
    }

    fn number(&self, key: &str) -> Result<Option<f64>, OpenAiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a number")),
            Some(_) => Err(self.wrong(key, "a number")),
        }
    }

    fn uint(&self, key: &str) -> Result<Option<u64>, OpenAiError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => value
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a whole number of at least 0")),
        }
    }

    fn u32(&self, key: &str) -> Result<Option<u32>, OpenAiError> {
        match self.uint(key)? {
            None => Ok(None),
            Some(n) => u32::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a whole number from 1 to 4294967295")),
        }
    }

    fn array(&self, key: &str) -> Result<Option<&'a Vec<Value>>, OpenAiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(self.wrong(key, "an array")),
        }
    }

    fn required_array(&self, key: &str) -> Result<&'a Vec<Value>, OpenAiError> {
        self.array(key)?.ok_or_else(|| {
            let name = self.name(key);
            OpenAiError::invalid(&name, format!("{name} is required"))
        })
    }

    fn object(&self, key: &str) -> Result<Option<Obj<'a>>, OpenAiError> {
        match self.get(key) {
            None => Ok(None),
            Some(value @ Value::Object(_)) => Obj::of(value, &self.name(key)).map(Some),
            Some(_) => Err(self.wrong(key, "an object")),
        }
    }

    fn required_object(&self, key: &str) -> Result<Obj<'a>, OpenAiError> {
        self.object(key)?.ok_or_else(|| {
            let name = self.name(key);
            OpenAiError::invalid(&name, format!("{name} is required"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: serde_json::Value) -> Result<ChatCall, OpenAiError> {
        parse_chat(body.to_string().as_bytes())
    }

    fn param(err: OpenAiError) -> String {
        err.param().unwrap_or("").to_string()
    }

    #[test]
    fn a_chat_request_with_tools_and_history_becomes_the_internal_request() {
        let call = chat(serde_json::json!({
            "model": "local/m1", "stream": true, "stream_options": {"include_usage": true},
            "temperature": 0.5, "max_completion_tokens": 20, "n": 1, "user": "u1",
            "top_p": null,
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "3"},
            ],
            "tools": [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}],
        }))
        .unwrap();
        assert_eq!(call.model, "local/m1");
        assert!(call.stream && call.include_usage);
        assert_eq!(call.request.max_tokens, Some(20));
        assert_eq!(call.request.messages[0], Message::system("be brief"));
        assert_eq!(call.request.messages[1], Message::user("a\nb"));
        assert_eq!(call.request.messages[3], Message::tool("c1", "3"));
        assert_eq!(call.request.tools[0].name, "add");
    }

    #[test]
    fn refusals_name_the_field_at_fault() {
        let base = |extra: serde_json::Value| {
            let mut body = serde_json::json!({"model": "p/m", "messages": [{"role": "user", "content": "hi"}]});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            param(chat(body).unwrap_err())
        };
        assert_eq!(base(serde_json::json!({"n": 2})), "n");
        assert_eq!(base(serde_json::json!({"top_p": 0.5})), "top_p");
        assert_eq!(base(serde_json::json!({"frobnicate": 1})), "frobnicate");
        assert_eq!(
            base(serde_json::json!({"temperature": "hot"})),
            "temperature"
        );
        assert_eq!(
            base(serde_json::json!({"stream_options": {"include_usage": true}})),
            "stream_options"
        );
        assert_eq!(
            base(serde_json::json!({"messages": [{"role": "wizard", "content": "x"}]})),
            "messages[0].role"
        );
        assert_eq!(
            base(
                serde_json::json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]})
            ),
            "messages[0].content[0].type"
        );
        assert_eq!(
            base(serde_json::json!({"tools": [{"type": "code_interpreter"}]})),
            "tools[0].type"
        );
        let many: Vec<_> = (0..=MAX_MESSAGES)
            .map(|_| serde_json::json!({"role": "user", "content": "x"}))
            .collect();
        assert_eq!(base(serde_json::json!({"messages": many})), "messages");
        assert!(parse_chat(b"[1]").is_err());
        assert!(parse_chat(b"{\"model\": ").is_err());
    }

    #[test]
    fn responses_input_items_join_calls_to_their_turn_and_refuse_what_is_not_served() {
        let call = parse_responses(
            serde_json::json!({
                "model": "p/m", "instructions": "be kind", "store": false,
                "input": [
                    {"role": "user", "content": [{"type": "input_text", "text": "add"}]},
                    {"type": "function_call", "call_id": "c1", "name": "add", "arguments": "{}"},
                    {"type": "function_call", "call_id": "c2", "name": "add", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "c1", "output": "3"},
                ],
                "tools": [{"type": "function", "name": "add", "parameters": {"type": "object"}}],
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(call.request.messages[0], Message::system("be kind"));
        match &call.request.messages[2] {
            Message::Assistant { tool_calls, .. } => assert_eq!(tool_calls.len(), 2),
            other => panic!("{other:?}"),
        }
        for (field, value, expected) in [
            (
                "previous_response_id",
                serde_json::json!("resp_1"),
                "previous_response_id",
            ),
            ("store", serde_json::json!(true), "store"),
            (
                "tools",
                serde_json::json!([{"type": "web_search"}]),
                "tools[0].type",
            ),
            (
                "input",
                serde_json::json!([{"type": "reasoning"}]),
                "input[0].type",
            ),
        ] {
            let mut body = serde_json::json!({"model": "p/m", "input": "hi"});
            body[field] = value;
            let err = parse_responses(body.to_string().as_bytes()).unwrap_err();
            assert_eq!(param(err), expected, "{field}");
        }
    }
}
