//! Newtype keys for the store's trees and their byte encodings.
//!
//! Integer keys are big-endian so that sled's byte order is numeric order. Keys never
//! carry secrets.

use std::fmt;

/// How a key is laid out in a tree.
pub trait StoreKey: Sized {
    fn to_bytes(&self) -> Vec<u8>;
    fn from_bytes(bytes: &[u8]) -> Option<Self>;
}

/// The sequence number of an audit record; the first record is 1.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct AuditSeq(pub u64);

impl StoreKey for AuditSeq {
    fn to_bytes(&self) -> Vec<u8> {
        self.0.to_be_bytes().to_vec()
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(AuditSeq(u64::from_be_bytes(bytes.try_into().ok()?)))
    }
}

impl fmt::Display for AuditSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The name of a sealed secret: lowercase letters, digits, `.`, `_`, `-`; 1–64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct SecretName(String);

impl SecretName {
    pub fn parse(name: &str) -> Result<Self, String> {
        let valid = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && name.starts_with(|c: char| c.is_ascii_alphanumeric());
        if valid {
            Ok(SecretName(name.to_string()))
        } else {
            Err(format!(
                "invalid secret name {name:?}: use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
            ))
        }
    }

    /// A name fixed in the source, such as `audit.checkpoint-key`; a unit test checks
    /// every such constant against [`SecretName::parse`].
    pub fn constant(name: &'static str) -> Self {
        debug_assert!(
            SecretName::parse(name).is_ok(),
            "bad constant secret name {name}"
        );
        SecretName(name.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for SecretName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        SecretName::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl StoreKey for SecretName {
    fn to_bytes(&self) -> Vec<u8> {
        self.0.as_bytes().to_vec()
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        SecretName::parse(std::str::from_utf8(bytes).ok()?).ok()
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key in the `meta` tree: a fixed name chosen by the module that owns the entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetaKey(pub String);

impl MetaKey {
    pub fn new(name: &str) -> Self {
        MetaKey(name.to_string())
    }
}

impl StoreKey for MetaKey {
    fn to_bytes(&self) -> Vec<u8> {
        self.0.as_bytes().to_vec()
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        std::str::from_utf8(bytes)
            .ok()
            .map(|s| MetaKey(s.to_string()))
    }
}

/// Keys chosen by the owning module (user names, token ids): their UTF-8 bytes, so
/// byte order is string order.
impl StoreKey for String {
    fn to_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_seq_orders_numerically_as_bytes() {
        assert!(AuditSeq(255).to_bytes() < AuditSeq(256).to_bytes());
        assert_eq!(
            AuditSeq::from_bytes(&AuditSeq(42).to_bytes()),
            Some(AuditSeq(42))
        );
        assert_eq!(AuditSeq::from_bytes(b"short"), None);
    }

    #[test]
    fn secret_names_are_restricted() {
        assert!(SecretName::parse("providers.openai").is_ok());
        for bad in [
            "",
            "UPPER",
            "../etc",
            "a b",
            ".hidden",
            &"x".repeat(65),
            "naïve",
        ] {
            assert!(SecretName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
