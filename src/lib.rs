//! aisopod: a secure AI gateway appliance.
//!
//! One binary serves an HTTPS API and dashboard on the LAN with a certificate it made
//! itself, keeps its state in an embedded store with a tamper-evident audit log, and is
//! driven from the console through the `aisopod` CLI, which talks to a running gateway
//! over a local admin socket.
//!
//! The modules form one-way layers: a module imports only modules on its own layer or
//! below (`tests/layers.rs` checks it, with the same table):
//!
//! ```text
//! 8  app  cli  (main.rs)         wiring and entry
//! 7  server  admin               HTTP and the gateway's state; the admin socket
//! 6  gateway  pairing  error     tools, approvals, the path guard; QR pairing (and `hardware`,
//!                                `discovery`: the device's display and mDNS); `error` aggregates;
//!                                `security_audit` inspects the config and machine
//! 5  auth  policy                accounts, sessions, tokens, scopes; the command filter
//! 4  audit  tls  sandbox         the hash-chained log; certificates; the tool sandbox
//! 3  store  keys                 sled trees and the backup archive; master key, sealed secrets
//! 2  config  logging             the validated configuration (a leaf); log setup from it
//! 1  clock  secret  fsutil  ids  ground: time, secret types, private files and IO errors, ids
//! ```

pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod discovery;
pub mod error;
pub mod fsutil;
pub mod gateway;
pub mod hardware;
pub mod ids;
pub mod keys;
pub mod logging;
pub mod pairing;
pub mod policy;
pub mod sandbox;
pub mod secret;
pub mod security_audit;
pub mod server;
pub mod store;
pub mod tls;

pub use error::{Error, Result};
