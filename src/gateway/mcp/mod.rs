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
pub mod protocol;
pub mod schema;
pub mod sessions;

pub use error::McpError;
pub use protocol::{PROTOCOL_VERSION, SERVER_NAME, SUPPORTED_VERSIONS, supported};
pub use sessions::{SessionLimits, Sessions};
