//! Fuzz target `command_filter`: libFuzzer feeds arbitrary bytes to the check in
//! `checks/command_filter.rs`, which the stable test `fuzz_seeds` also replays over the committed
//! seeds in `seeds/command_filter/`.
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run command_filter -- -max_len=4096 -timeout=2
//! ```

#![no_main]

#[path = "../checks/command_filter.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
