//! Opaque credentials: `<prefix>_<id>_<secret>` strings such as API and refresh tokens.
//!
//! The prefix lets secret scanners recognize a leaked token; the id finds the record
//! with one lookup; the 256-bit secret is stored only as its SHA-256 and compared in
//! constant time. A fast hash is right here (unlike passwords): the secret is random and
//! long, so there is nothing to brute-force, and checking stays a hash and a lookup.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SecureRandom;
use subtle::ConstantTimeEq;

use crate::ids::random_id;
use crate::secret::Secret;

/// A freshly made credential: the plaintext (shown once) and what is stored.
#[derive(Debug)]
pub struct Minted {
    pub plaintext: Secret,
    pub id: String,
    pub secret_hash: String,
}

/// Makes a new credential with `prefix` (`aisp`, `aisr`).
pub fn mint(prefix: &str) -> Minted {
    mint_for(prefix, &random_id(8))
}

/// Makes a new credential with `prefix` for the record `id` (16 hex digits), for
/// records that hold their current credential themselves (paired devices).
pub fn mint_for(prefix: &str, id: &str) -> Minted {
    let id = id.to_string();
    let mut secret = [0u8; 32];
    let _ = ring::rand::SystemRandom::new().fill(&mut secret);
    let secret = B64.encode(secret);
    let secret_hash = hash(&secret);
    Minted {
        plaintext: Secret::new(format!("{prefix}_{id}_{secret}")),
        id,
        secret_hash,
    }
}

/// Splits `<prefix>_<id>_<secret>`; `None` for anything else.
pub fn parse<'a>(prefix: &str, text: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = text.strip_prefix(prefix)?.strip_prefix('_')?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

pub fn hash(secret: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        secret.as_bytes(),
    ))
}

/// Constant-time comparison of a presented secret with a stored hash.
pub fn matches(secret: &str, stored_hash: &str) -> bool {
    hash(secret).as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_parse_and_match_only_themselves() {
        let minted = mint("aisp");
        let text = minted.plaintext.expose();
        assert!(text.starts_with("aisp_"));
        let (id, secret) = parse("aisp", text).unwrap();
        assert_eq!(id, minted.id);
        assert!(matches(secret, &minted.secret_hash));
        assert!(!matches("x", &minted.secret_hash));
        assert!(
            parse("aisr", text).is_none(),
            "a token of one kind is not another"
        );
        for bad in [
            "",
            "aisp",
            "aisp__",
            "aisp_zz_yy",
            &format!("{text}x"),
            &text.replace("aisp_", "aisp-"),
        ] {
            assert!(parse("aisp", bad).is_none(), "{bad}");
        }
        assert_ne!(mint("aisp").plaintext, minted.plaintext);
    }
}
