//! Agent tools.

/// Every tool an agent may be given.
pub const TOOL_NAMES: [&str; 5] = ["code_exec", "shell", "read_file", "write_file", "list_dir"];
