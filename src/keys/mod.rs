//! Keys at rest: the master key, the secrets sealed under it, and the encryption of
//! backup archives. It owns key material and the formats it is stored in; it never
//! speaks HTTP, never decides who may read a secret, and never logs key bytes.

pub mod backup_crypto;
pub mod secrets;
#[cfg(test)]
pub mod testing;
