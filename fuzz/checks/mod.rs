//! The fuzz targets' checks, one module per target. Each `run` takes one input and
//! panics when the code under test breaks a promise (a panic of its own, a refusal in the
//! wrong shape, an accepted input outside the caps). The libFuzzer binaries in
//! `fuzz_targets/` and the stable test that replays the committed seeds in `seeds/` call
//! the same functions, so a regression found once stays caught without nightly.

pub mod admin_request;
pub mod command_filter;
pub mod jsonrpc;
pub mod openai_request;
pub mod pairing_claim;
pub mod password_strength;
pub mod provider_stream;
pub mod webhook;
