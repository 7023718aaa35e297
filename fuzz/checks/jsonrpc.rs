//! Fuzz check: the MCP endpoint's JSON-RPC parser (`gateway::mcp::jsonrpc::parse`)
//! reads any bytes without panicking or recursing without bound. A refusal carries one of
//! JSON-RPC's own codes and a message, and serializes as a JSON-RPC error; a request's
//! arguments, when checked against a tool's schema, give an answer, never a panic.

use aisopod::gateway::mcp::catalogue::{agent_schema, registry_schema};
use aisopod::gateway::mcp::jsonrpc::{
    INVALID_PARAMS, INVALID_REQUEST, Incoming, METHOD_NOT_FOUND, Method, PARSE_ERROR, parse,
};
use aisopod::gateway::mcp::schema::check;

/// Runs the check on one input; panics on a broken promise.
pub fn run(data: &[u8]) {
    match parse(data) {
        Ok(Incoming::Request {
            method: Method::ToolsCall(call),
            ..
        }) => {
            let arguments = serde_json::Value::Object(call.arguments.unwrap_or_default());
            let _ = check(&arguments, &agent_schema());
            for tool in ["code_exec", "shell", "read_file", "write_file", "list_dir"] {
                if let Some(schema) = registry_schema(tool) {
                    let _ = check(&arguments, &schema);
                }
            }
        }
        Ok(_) => {}
        Err(err) => {
            assert!(
                [
                    PARSE_ERROR,
                    INVALID_REQUEST,
                    METHOD_NOT_FOUND,
                    INVALID_PARAMS
                ]
                .contains(&err.code),
                "{err:?}"
            );
            assert!(!err.message.is_empty());
            let shaped = err.to_json();
            assert_eq!(shaped["jsonrpc"], "2.0");
            assert_eq!(shaped["error"]["code"], err.code);
        }
    }
}
