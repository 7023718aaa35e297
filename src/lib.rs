//! aisopod: a secure AI gateway appliance.
//!
//! One binary serves an HTTPS API and dashboard on the LAN with a certificate it made
//! itself, keeps its state in an embedded store with a tamper-evident audit log, and is
//! driven from the console through the `aisopod` CLI, which talks to a running gateway
//! over a local admin socket. The module tree follows the request path: `server` speaks
//! HTTP, `auth`, `policy` and `tls` guard it, `audit` records it, `store` keeps what must survive.

pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod fsutil;
pub mod gateway;
pub mod ids;
pub mod keys;
pub mod logging;
pub mod policy;
pub mod sandbox;
pub mod secret;
pub mod server;
pub mod store;
pub mod tls;

pub use error::{Error, Result};
