//! Fuzz target `pairing_claim`: libFuzzer feeds arbitrary bytes to the check in
//! `checks/pairing_claim.rs`, which the stable test `fuzz_seeds` also replays over the committed
//! seeds in `seeds/pairing_claim/`.
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run pairing_claim -- -max_len=4096 -timeout=2
//! ```

#![no_main]

#[path = "../checks/pairing_claim.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
