//! JSON-RPC 2.0 as MCP uses it: one message per POST (batches were removed from the
//! transport in 2025-06-18 and are refused), ids that are strings or integers, params
//! that are objects. [`parse`] turns untrusted bytes into a typed [`Incoming`] or an
//! [`RpcError`] in the protocol's own shape, naming the request's id when it could be
//! read. It is public for the fuzz target and never panics on any input.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;

/// The largest message accepted, in bytes; larger ones are refused before parsing.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// The deepest nesting of arrays and objects accepted in a message.
const MAX_DEPTH: usize = 32;

/// A request id: a string or an integer (never null, a fraction or a bool).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Number(i64),
    Text(String),
}

/// One message a client sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A request: it gets exactly one answer.
    Request { id: RequestId, method: Method },
    /// A notification (`notifications/initialized`, `notifications/cancelled`, ...):
    /// accepted with 202 and no body.
    Notification { method: String },
    /// A client's answer to a server request; this server sends none, so it is
    /// accepted and dropped.
    Response,
}

/// The requests this server answers, with their typed params.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    Initialize(InitializeParams),
    Ping,
    ToolsList(ListParams),
    ToolsCall(CallParams),
}

impl Method {
    pub fn name(&self) -> &'static str {
        match self {
            Method::Initialize(_) => "initialize",
            Method::Ping => "ping",
            Method::ToolsList(_) => "tools/list",
            Method::ToolsCall(_) => "tools/call",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeParams {
    pub protocol_version: String,
    pub capabilities: Map<String, Value>,
    pub client_info: Implementation,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Implementation {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CallParams {
    pub name: String,
    #[serde(default)]
    pub arguments: Option<Map<String, Value>>,
    #[serde(default, rename = "_meta")]
    pub meta: Option<RequestMeta>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMeta {
    /// A string or an integer the client will match progress notifications on.
    #[serde(default)]
    pub progress_token: Option<RequestId>,
}

/// A JSON-RPC error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The request's id, or `None` (sent as `null`) when it could not be read.
    pub id: Option<RequestId>,
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(id: Option<RequestId>, code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            id,
            code,
            message: message.into(),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": { "code": self.code, "message": self.message },
        })
    }
}

/// A successful answer.
pub fn result(id: &RequestId, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// A notification this server sends.
pub fn notification(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "method": method, "params": params })
}

/// Parses one message.
pub fn parse(bytes: &[u8]) -> Result<Incoming, RpcError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(RpcError::new(
            None,
            INVALID_REQUEST,
            format!("the message is larger than {MAX_MESSAGE_BYTES} bytes"),
        ));
    }
    if nesting(bytes) > MAX_DEPTH {
        return Err(RpcError::new(
            None,
            INVALID_REQUEST,
            format!("the message nests deeper than {MAX_DEPTH} levels"),
        ));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|err| RpcError::new(None, PARSE_ERROR, format!("not JSON: {err}")))?;
    let object = match value {
        Value::Object(object) => object,
        Value::Array(_) => {
            return Err(RpcError::new(
                None,
                INVALID_REQUEST,
                "batches are not accepted: send one JSON-RPC message per request",
            ));
        }
        _ => {
            return Err(RpcError::new(
                None,
                INVALID_REQUEST,
                "a JSON-RPC message is a JSON object",
            ));
        }
    };
    let id = match object.get("id") {
        None => None,
        Some(raw) => Some(request_id(raw)?),
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(RpcError::new(
            id,
            INVALID_REQUEST,
            "\"jsonrpc\" must be \"2.0\"",
        ));
    }
    let method = match object.get("method") {
        Some(Value::String(method)) => method.as_str(),
        Some(_) => {
            return Err(RpcError::new(
                id,
                INVALID_REQUEST,
                "\"method\" must be a string",
            ));
        }
        None => {
            let answer = object.contains_key("result") || object.contains_key("error");
            return match (id, answer) {
                (Some(_), true) => Ok(Incoming::Response),
                (id, _) => Err(RpcError::new(
                    id,
                    INVALID_REQUEST,
                    "a message needs a \"method\" (or is an answer with \"result\" or \"error\")",
                )),
            };
        }
    };
    let params = match object.get("params") {
        None | Some(Value::Null) => None,
        Some(Value::Object(params)) => Some(params),
        Some(_) => {
            return Err(RpcError::new(
                id,
                INVALID_PARAMS,
                "\"params\" must be an object",
            ));
        }
    };
    let Some(id) = id else {
        return Ok(Incoming::Notification {
            method: method.chars().take(128).collect(),
        });
    };
    let typed = match method {
        "initialize" => Method::Initialize(params_of(&id, params, true)?),
        "ping" => Method::Ping,
        "tools/list" => Method::ToolsList(params_of(&id, params, false)?),
        "tools/call" => Method::ToolsCall(params_of(&id, params, true)?),
        other => {
            let shown: String = other.chars().take(64).collect();
            return Err(RpcError::new(
                Some(id),
                METHOD_NOT_FOUND,
                format!(
                    "method {shown:?} is not offered (initialize, ping, tools/list, tools/call)"
                ),
            ));
        }
    };
    Ok(Incoming::Request { id, method: typed })
}

fn request_id(raw: &Value) -> Result<RequestId, RpcError> {
    match raw {
        Value::String(text) if text.len() <= 256 => Ok(RequestId::Text(text.clone())),
        Value::Number(number) if number.is_i64() => {
            Ok(RequestId::Number(number.as_i64().unwrap_or_default()))
        }
        _ => Err(RpcError::new(
            None,
            INVALID_REQUEST,
            "\"id\" must be a string (at most 256 bytes) or an integer",
        )),
    }
}

fn params_of<T: DeserializeOwned + Default0>(
    id: &RequestId,
    params: Option<&Map<String, Value>>,
    required: bool,
) -> Result<T, RpcError> {
    let invalid = |message: String| RpcError::new(Some(id.clone()), INVALID_PARAMS, message);
    match params {
        None if required => Err(invalid("\"params\" is required".into())),
        None => T::empty().ok_or_else(|| invalid("\"params\" is required".into())),
        Some(params) => {
            let value = Value::Object(params.clone());
            serde_path_to_error::deserialize(value).map_err(|err| {
                let path = err.path().to_string();
                let inner = err.into_inner().to_string();
                invalid(if path == "." {
                    format!("params: {inner}")
                } else {
                    format!("params.{path}: {inner}")
                })
            })
        }
    }
}

/// The params a method takes when a request leaves them out, if it may.
trait Default0: Sized {
    fn empty() -> Option<Self>;
}

impl Default0 for InitializeParams {
    fn empty() -> Option<Self> {
        None
    }
}

impl Default0 for CallParams {
    fn empty() -> Option<Self> {
        None
    }
}

impl Default0 for ListParams {
    fn empty() -> Option<Self> {
        Some(ListParams::default())
    }
}

/// The deepest nesting of `[` and `{` outside strings, counted without parsing, so a
/// hostile message cannot make the parser recurse deeply.
fn nesting(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &byte in bytes {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn error_of(text: &str) -> RpcError {
        parse(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_tools_call_parses_with_its_arguments_and_progress_token() {
        let parsed = parse(br#"{"jsonrpc":"2.0","id":"a1","method":"tools/call","params":{"name":"helper","arguments":{"prompt":"hi"},"_meta":{"progressToken":7}}}"#).unwrap();
        let Incoming::Request {
            id,
            method: Method::ToolsCall(call),
        } = parsed
        else {
            panic!("{parsed:?}");
        };
        assert_eq!(id, RequestId::Text("a1".into()));
        assert_eq!(call.name, "helper");
        assert_eq!(call.arguments.unwrap()["prompt"], "hi");
        assert_eq!(
            call.meta.unwrap().progress_token,
            Some(RequestId::Number(7))
        );
    }

    #[test]
    fn notifications_and_answers_are_told_apart_from_requests() {
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap(),
            Incoming::Notification {
                method: "notifications/initialized".into()
            }
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#).unwrap(),
            Incoming::Response
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap(),
            Incoming::Request {
                id: RequestId::Number(1),
                method: Method::ToolsList(ListParams::default())
            }
        );
    }

    #[test]
    fn bad_messages_get_the_protocols_own_codes_with_the_id_when_readable() {
        assert_eq!(error_of("{nope").code, PARSE_ERROR);
        assert_eq!(error_of("[]").code, INVALID_REQUEST);
        assert_eq!(
            error_of("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]").code,
            INVALID_REQUEST
        );
        let wrong = error_of(r#"{"jsonrpc":"1.0","id":4,"method":"ping"}"#);
        assert_eq!(
            (wrong.code, wrong.id),
            (INVALID_REQUEST, Some(RequestId::Number(4)))
        );
        let unknown = error_of(r#"{"jsonrpc":"2.0","id":"x","method":"resources/list"}"#);
        assert_eq!(
            (unknown.code, unknown.id),
            (METHOD_NOT_FOUND, Some(RequestId::Text("x".into())))
        );
        let params =
            error_of(r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":3}}"#);
        assert_eq!(params.code, INVALID_PARAMS);
        assert!(params.message.contains("name"), "{}", params.message);
        assert_eq!(
            error_of(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#).code,
            INVALID_REQUEST
        );
        assert_eq!(
            error_of(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#).code,
            INVALID_REQUEST
        );
        assert_eq!(
            error_of(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}"#).code,
            INVALID_PARAMS
        );
        assert_eq!(
            error_of(r#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#).code,
            INVALID_PARAMS
        );
    }

    #[test]
    fn huge_and_deep_messages_are_refused_before_parsing() {
        let huge = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"x","arguments":{{"a":"{}"}}}}}}"#,
            "a".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(error_of(&huge).code, INVALID_REQUEST);
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(error_of(&deep).code, INVALID_REQUEST);
        // Brackets inside strings do not count.
        let quoted = format!(
            r#"{{"jsonrpc":"2.0","id":"{}","method":"ping"}}"#,
            "[".repeat(100)
        );
        assert!(parse(quoted.as_bytes()).is_ok());
    }
}
