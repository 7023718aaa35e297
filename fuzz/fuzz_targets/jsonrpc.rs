//! Fuzz target `jsonrpc`: libFuzzer feeds arbitrary bytes to the check in
//! `checks/jsonrpc.rs`, which the stable test `fuzz_seeds` also replays over the committed
//! seeds in `seeds/jsonrpc/`.
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run jsonrpc -- -max_len=65536 -timeout=2
//! ```

#![no_main]

#[path = "../checks/jsonrpc.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
