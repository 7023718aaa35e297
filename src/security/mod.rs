//! Security services that every request path relies on: the audit log and secrets at
//! rest, the encryption of backups, rate limiting, and workspace-confined file access
//! (`paths`). Later issues add the command filter and approvals here. Nothing in this
//! module speaks HTTP; the server calls into it.

pub mod audit;
pub mod backup_crypto;
pub mod paths;
pub mod rate_limit;
pub mod secrets;
