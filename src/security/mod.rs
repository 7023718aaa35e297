//! Security services that every request path relies on: the audit log and secrets at
//! rest, the encryption of backups, rate limiting, the shell command filter, the approval
//! broker and workspace-confined file access (`paths`). Nothing in this module speaks
//! HTTP; the server calls into it.

pub mod approval;
pub mod audit;
pub mod backup_crypto;
pub mod command_filter;
pub mod paths;
pub mod rate_limit;
pub mod secrets;
