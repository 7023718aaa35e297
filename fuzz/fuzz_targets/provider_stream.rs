//! Fuzz target `provider_stream`: libFuzzer feeds arbitrary bytes to the check in
//! `checks/provider_stream.rs`, which the stable test `fuzz_seeds` also replays over the committed
//! seeds in `seeds/provider_stream/`.
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run provider_stream -- -max_len=8192 -timeout=2
//! ```

#![no_main]

#[path = "../checks/provider_stream.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
