//! Integration tests: the real `aisopod` binary and the real server on 127.0.0.1, with
//! real TLS and a temporary store, driven as a client or an operator would.
//!
//! All integration tests live in this one binary (each test binary links the whole
//! crate, which costs minutes on a small machine).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

mod agent_loop;
mod agents;
mod attack;
mod auth;
mod backup;
mod browser;
mod chats;
mod cli;
mod dashboard;
mod device;
mod durability;
mod fuzz_seeds;
mod hardware;
mod http;
mod mcp;
mod openai;
mod openapi;
mod pairing;
mod passwords;
mod provider_keys;
mod providers;
mod proxy;
mod sandbox;
mod security_audit;
mod service;
mod token_limits;
mod tools;
mod upstream;
mod usage;
mod webhooks;
mod ws_chat;
