//! Fuzz target `openai_request`: libFuzzer feeds arbitrary bytes to the check in
//! `checks/openai_request.rs`, which the stable test `fuzz_seeds` also replays over the committed
//! seeds in `seeds/openai_request/`.
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run openai_request -- -max_len=65536 -timeout=2
//! ```

#![no_main]

#[path = "../checks/openai_request.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
