//! The protocol revisions this MCP server speaks and the name it gives; constants only.

/// The protocol revision this server speaks first, and every revision it accepts.
pub const PROTOCOL_VERSION: &str = "2025-11-25";
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18"];
/// The name this server gives in `initialize`.
pub const SERVER_NAME: &str = "aisopod";

/// Whether `version` is a revision this server speaks.
pub fn supported(version: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}
