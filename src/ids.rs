//! Random identifiers for records, tokens and sessions: hex text from the system RNG.
//! The typed keys of the store's trees are `store::ids`; this module only draws.

/// Random hex identifier of `bytes` bytes.
pub fn random_id(bytes: usize) -> String {
    use ring::rand::SecureRandom;
    let mut buf = vec![0u8; bytes];
    // The system RNG does not fail on Linux once booted; a zero id would still be unique
    // enough to be caught by insert_new.
    let _ = ring::rand::SystemRandom::new().fill(&mut buf);
    hex::encode(buf)
}
