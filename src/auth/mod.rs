//! Identity and access: who a request acts for and what it may do.
//!
//! This module owns passwords, accounts, sessions, API tokens, scopes and the first-run
//! claim. It decides; it never speaks HTTP (the server maps its answers to responses)
//! and never stores anything but hashes of credentials.

pub mod jwt;
pub mod opaque;
pub mod password;
pub mod scopes;
pub mod sessions;
pub mod tokens;
pub mod users;
