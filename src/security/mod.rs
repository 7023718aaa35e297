//! Security services that every request path relies on: the audit log and secrets at
//! rest. Later issues add rate limiting, the command filter, approvals and path guards
//! here. Nothing in this module speaks HTTP; the server calls into it.

pub mod audit;
pub mod command_filter;
pub mod rate_limit;
pub mod secrets;
