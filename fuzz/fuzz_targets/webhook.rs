//! Fuzz target `webhook`: libFuzzer feeds arbitrary bytes to the check in
//! `checks/webhook.rs`, which the stable test `fuzz_seeds` also replays over the committed
//! seeds in `seeds/webhook/`.
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run webhook -- -max_len=4096 -timeout=2
//! ```

#![no_main]

#[path = "../checks/webhook.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
