//! The MCP server: what `/mcp` speaks, without the HTTP. It owns the JSON-RPC 2.0
//! messages of the Model Context Protocol (typed, parsed strictly, bounded in size), the
//! table of MCP sessions (per-owner and total caps, idle and absolute expiry on an
//! injected clock), and the tool catalogue MCP clients see: every agent as a tool
//! (`chat:write`) and each agent's registry tools as `<agent>__<tool>` (`agent:manage`),
//! with their arguments checked against the published schema before anything runs.
//!
//! A call goes the same way as the agent loop's: [`crate::gateway::tools::Tools::call`]
//! (command filter, approval broker, sandbox or path guard) or a whole agent turn through
//! [`crate::gateway::agent_loop::run`]. A refused or unanswered approval is a tool result
//! with `isError: true`, never a protocol error. This module never speaks HTTP, never
//! authenticates a caller and never decides an approval; `server::mcp_routes` does the
//! transport and the broker's deciders answer.

pub mod calls;
pub mod catalogue;
pub mod error;
pub mod jsonrpc;
pub mod schema;
pub mod sessions;

pub use error::McpError;
pub use sessions::{SessionLimits, Sessions};

/// The protocol revision this server speaks first, and every revision it accepts.
pub const PROTOCOL_VERSION: &str = "2025-11-25";
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18"];
/// What a request without `MCP-Protocol-Version` is taken to speak (the transport's
/// rule for clients older than the header), if it is supported at all.
pub const DEFAULT_HEADER_VERSION: &str = "2025-03-26";

/// The name this server gives in `initialize`.
pub const SERVER_NAME: &str = "aisopod";

/// Whether `version` is a revision this server speaks.
pub fn supported(version: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}
