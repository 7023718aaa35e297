//! Fuzz target `password_strength`: libFuzzer feeds arbitrary bytes to the check in
//! `checks/password_strength.rs`, which the stable test `fuzz_seeds` also replays over the committed
//! seeds in `seeds/password_strength/`.
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run password_strength -- -max_len=1024 -timeout=2
//! ```

#![no_main]

#[path = "../checks/password_strength.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
