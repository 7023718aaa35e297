//! Fuzz target `admin_request`: libFuzzer feeds arbitrary bytes to the check in
//! `checks/admin_request.rs`, which the stable test `fuzz_seeds` also replays over the committed
//! seeds in `seeds/admin_request/`.
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run admin_request -- -max_len=4096 -timeout=2
//! ```

#![no_main]

#[path = "../checks/admin_request.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
