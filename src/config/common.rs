//! The small types and limits that the configuration's files share (the security mode,
//! model names, tool names, the minimum secret length). A leaf of `config/`: it imports
//! nothing from its siblings, so they can all import it without a circle.

use serde::{Deserialize, Serialize};

/// Secrets shorter than this are refused in strict mode.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    Local,
    Strict,
}

impl SecurityMode {
    pub(super) fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "local" => Some(SecurityMode::Local),
            "strict" => Some(SecurityMode::Strict),
            _ => None,
        }
    }
}

/// A `provider/model` name, as fallbacks and the OpenAI API's `model` field give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    pub provider: String,
    pub model: String,
}

impl std::fmt::Display for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

/// Every tool an agent may be given; the gateway's tools answer to these names.
pub const TOOL_NAMES: [&str; 5] = ["code_exec", "shell", "read_file", "write_file", "list_dir"];
