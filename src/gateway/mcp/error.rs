//! The MCP module's one error type: each variant knows its JSON-RPC code; the server
//! picks the HTTP status in `server::mcp_routes`.

use super::jsonrpc::{INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McpError {
    #[error(
        "no MCP session {0:?}: it ended, expired or belongs to another credential; initialize again"
    )]
    UnknownSession(String),
    #[error("this request needs the Mcp-Session-Id header that initialize returned")]
    MissingSession,
    #[error("MCP-Protocol-Version {0:?} is not supported; this server speaks {supported}", supported = super::protocol::SUPPORTED_VERSIONS.join(", "))]
    UnsupportedVersion(String),
    #[error("too many MCP sessions are open on this gateway ({0}); try again later")]
    GatewayFull(usize),
    #[error("unknown tool {0:?}; tools/list names the tools")]
    UnknownTool(String),
    #[error("invalid arguments for {tool}: {message}")]
    BadArguments { tool: String, message: String },
    #[error("calling {tool} needs the {scope} scope")]
    Scope { tool: String, scope: &'static str },
    #[error("the agents cannot be read (the gateway's log says why)")]
    Store,
}

impl McpError {
    /// The JSON-RPC error code clients get.
    pub fn rpc_code(&self) -> i64 {
        match self {
            McpError::UnknownSession(_)
            | McpError::MissingSession
            | McpError::UnsupportedVersion(_)
            | McpError::GatewayFull(_)
            | McpError::Scope { .. } => INVALID_REQUEST,
            McpError::UnknownTool(_) | McpError::BadArguments { .. } => INVALID_PARAMS,
            McpError::Store => INTERNAL_ERROR,
        }
    }
}
