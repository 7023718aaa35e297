//! Secrets at rest: the master key, keys derived from it, and sealed values in the store.
//!
//! `master.key` (32 random bytes, mode 0600) lives in the data directory. Values that
//! must be stored (provider API keys, the audit checkpoint key) are sealed with
//! ChaCha20-Poly1305 under a key derived from it with HKDF-SHA256; each sealed value
//! names the key id it was sealed under and is bound to its own name as associated
//! data, so a ciphertext cannot be moved to another name. Rotation writes the new key
//! to `master.key.next`, re-seals every value in one atomic batch, then renames the
//! file into place; a crash at any point leaves a store that opens, and the next open
//! finishes the rotation. This module never logs or returns plaintext except through
//! [`Secrets::get`], and never writes plaintext to the store.
//!
//! Keys the gateway makes for itself ([`Secrets::get_or_create_key`], such as the audit
//! checkpoint key) are internal: they are stored marked as such, never listed, and
//! neither removed nor overwritten by [`Secrets::set`] / [`Secrets::remove`], because
//! losing one silently breaks what depends on it (the audit chain's checkpoints).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::fsutil::{IoError, write_private_file};
use crate::secret::{Secret, SecretBytes};
use crate::store::{MASTER_KEY_FILE, NEXT_KEY_FILE, SecretName, Store, StoreError, Tree, TreeName};

const KEY_LEN: usize = 32;
const SEAL_PURPOSE: &str = "aisopod/v1/secrets/seal";
/// Names the gateway reserves for its own keys. Records written before the `internal`
/// mark existed are recognised by name; a user may never create one of these either,
/// or they could choose the key the gateway would then adopt.
const RESERVED_NAMES: &[&str] = &["audit.checkpoint-key"];

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(
        "{path} is damaged: it holds {len} bytes, a master key has exactly 32; restore it from a backup"
    )]
    BadKeyFile { path: PathBuf, len: usize },
    #[error(
        "secret {name} was sealed under key {kid}, which is not the current master key; restore the matching master.key from a backup"
    )]
    UnknownKey { name: String, kid: String },
    #[error("secret {name} cannot be opened: the stored value is damaged or was tampered with")]
    Tampered { name: String },
    #[error(
        "{name} is an internal key of the gateway: it is not listed and cannot be changed or removed"
    )]
    Internal { name: String },
    #[error("the system random number generator failed")]
    Random,
    #[error("the cryptographic library refused a key or nonce")]
    Crypto,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A 32-byte master key and its public id.
#[derive(Debug)]
struct MasterKey {
    bytes: SecretBytes,
    id: String,
}

impl MasterKey {
    fn from_bytes(bytes: Vec<u8>) -> Self {
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            &[b"aisopod key id\0".as_slice(), &bytes].concat(),
        );
        let id = hex::encode(digest.as_ref().get(..8).unwrap_or_default());
        MasterKey {
            bytes: SecretBytes::new(bytes),
            id,
        }
    }

    fn generate() -> Result<Self, SecretsError> {
        let mut bytes = vec![0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SecretsError::Random)?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// HKDF-SHA256 expansion of the master key for one purpose.
    fn derive(&self, purpose: &str) -> SecretBytes {
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"aisopod master key v1");
        let prk = salt.extract(self.bytes.expose());
        let mut out = vec![0u8; KEY_LEN];
        let info = [purpose.as_bytes()];
        // Expanding 32 bytes from SHA-256 HKDF cannot fail: the limit is 255 * 32.
        if let Ok(okm) = prk.expand(&info, Len32) {
            let _ = okm.fill(&mut out);
        }
        SecretBytes::new(out)
    }
}

struct Len32;

impl ring::hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        KEY_LEN
    }
}

/// A sealed value as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sealed {
    kid: String,
    nonce: String,
    ciphertext: String,
    /// Made by the gateway for itself (see the module comment).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    internal: bool,
}

impl Sealed {
    fn is_internal(&self, name: &SecretName) -> bool {
        self.internal || is_reserved(name)
    }
}

/// Whether `name` is reserved for one of the gateway's own keys.
pub fn is_reserved(name: &SecretName) -> bool {
    RESERVED_NAMES.contains(&name.as_str())
}

/// Reads a master key file, refusing anything but exactly 32 bytes.
fn read_key_file(path: &Path) -> Result<Option<MasterKey>, SecretsError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SecretsError::Io(IoError::new("read", path, source)));
        }
    };
    let mut bytes = Vec::with_capacity(KEY_LEN);
    Read::by_ref(&mut file)
        .take(KEY_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| SecretsError::Io(IoError::new("read", path, source)))?;
    if bytes.len() != KEY_LEN {
        return Err(SecretsError::BadKeyFile {
            path: path.into(),
            len: bytes.len(),
        });
    }
    Ok(Some(MasterKey::from_bytes(bytes)))
}

/// The master key file's path in a data directory.
pub fn master_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(MASTER_KEY_FILE)
}

/// What a rotation did.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Rotation {
    pub old_key_id: String,
    pub new_key_id: String,
    pub resealed: usize,
}

/// The keyring and the sealed-secrets tree.
#[derive(Debug)]
pub struct Secrets {
    data_dir: PathBuf,
    store: Store,
    tree: Tree<SecretName, Sealed>,
    keys: RwLock<Keys>,
    random: SystemRandom,
}

#[derive(Debug)]
struct Keys {
    current: MasterKey,
    next: Option<MasterKey>,
}

impl Secrets {
    /// Loads `master.key` (creating it on first start) and finishes an interrupted
    /// rotation if one is found.
    pub fn open(data_dir: &Path, store: &Store) -> Result<Secrets, SecretsError> {
        let path = master_key_path(data_dir);
        let current = match read_key_file(&path)? {
            Some(key) => key,
            None => {
                let key = MasterKey::generate()?;
                write_private_file(&path, key.bytes.expose()).map_err(|source| {
                    SecretsError::Io(IoError::new("write", path.clone(), source))
                })?;
                tracing::info!(path = %path.display(), key_id = %key.id, "created master key");
                key
            }
        };
        let next = read_key_file(&data_dir.join(NEXT_KEY_FILE))?;
        let secrets = Secrets {
            data_dir: data_dir.to_path_buf(),
            store: store.clone(),
            tree: store.tree(TreeName::Secrets)?,
            keys: RwLock::new(Keys { current, next }),
            random: SystemRandom::new(),
        };
        if secrets.read_keys().next.is_some() {
            tracing::warn!("finishing an interrupted master key rotation");
            secrets.finish_rotation()?;
        }
        Ok(secrets)
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The id of the current master key (public; shown by `secrets list`).
    pub fn key_id(&self) -> String {
        self.read_keys().current.id.clone()
    }

    /// The mode bits of `master.key`, for the strict-mode permission check.
    pub fn key_file_mode(&self) -> Option<u32> {
        std::fs::metadata(master_key_path(&self.data_dir))
            .ok()
            .map(|meta| meta.permissions().mode() & 0o777)
    }

    /// A key derived from the current master key for `purpose` (such as signing keys).
    pub fn derive(&self, purpose: &str) -> SecretBytes {
        self.read_keys().current.derive(purpose)
    }

    fn seal_with(
        &self,
        key: &MasterKey,
        name: &SecretName,
        plaintext: &[u8],
        internal: bool,
    ) -> Result<Sealed, SecretsError> {
        let mut nonce = [0u8; aead::NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| SecretsError::Random)?;
        let sealing = aead_key(key)?;
        let mut in_out = plaintext.to_vec();
        sealing
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_str()),
                &mut in_out,
            )
            .map_err(|_| SecretsError::Crypto)?;
        Ok(Sealed {
            kid: key.id.clone(),
            nonce: B64.encode(nonce),
            ciphertext: B64.encode(in_out),
            internal,
        })
    }

    fn open_sealed(
        &self,
        keys: &Keys,
        name: &SecretName,
        sealed: &Sealed,
    ) -> Result<Vec<u8>, SecretsError> {
        let key = [Some(&keys.current), keys.next.as_ref()]
            .into_iter()
            .flatten()
            .find(|key| key.id == sealed.kid)
            .ok_or_else(|| SecretsError::UnknownKey {
                name: name.to_string(),
                kid: sealed.kid.clone(),
            })?;
        let tampered = || SecretsError::Tampered {
            name: name.to_string(),
        };
        let nonce: [u8; aead::NONCE_LEN] = B64
            .decode(&sealed.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(tampered)?;
        let mut in_out = B64.decode(&sealed.ciphertext).map_err(|_| tampered())?;
        let plain = aead_key(key)?
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_str()),
                &mut in_out,
            )
            .map_err(|_| tampered())?;
        Ok(plain.to_vec())
    }

    /// Seals and stores a value durably, replacing any previous one; refuses the
    /// gateway's internal keys.
    pub fn set(&self, name: &SecretName, value: &Secret) -> Result<(), SecretsError> {
        self.refuse_internal(name)?;
        let keys = self.read_keys();
        let sealed = self.seal_with(&keys.current, name, value.expose().as_bytes(), false)?;
        // Checked and written by compare-and-swap, so that a key the gateway creates
        // meanwhile is never overwritten.
        loop {
            let swapped = match self.tree.get(name)? {
                Some(old) if old.is_internal(name) => {
                    return Err(SecretsError::Internal {
                        name: name.to_string(),
                    });
                }
                Some(old) => self.tree.compare_and_swap(name, &old, &sealed)?,
                None => self.tree.insert_new(name, &sealed)?,
            };
            if swapped {
                break;
            }
        }
        drop(keys);
        self.store.sync()?;
        Ok(())
    }

    /// The plaintext of a stored secret.
    pub fn get(&self, name: &SecretName) -> Result<Option<Secret>, SecretsError> {
        let Some(sealed) = self.tree.get(name)? else {
            return Ok(None);
        };
        let plain = self.open_sealed(&self.read_keys(), name, &sealed)?;
        String::from_utf8(plain)
            .map(|text| Some(Secret::new(text)))
            .map_err(|_| SecretsError::Tampered {
                name: name.to_string(),
            })
    }

    /// A random 32-byte key stored sealed under `name`, made on first use. Keys kept
    /// this way survive master key rotation (they are re-sealed, not re-derived).
    pub fn get_or_create_key(&self, name: &SecretName) -> Result<SecretBytes, SecretsError> {
        if let Some(existing) = self.get(name)? {
            return B64
                .decode(existing.expose())
                .map(SecretBytes::new)
                .map_err(|_| SecretsError::Tampered {
                    name: name.to_string(),
                });
        }
        let mut bytes = vec![0u8; KEY_LEN];
        self.random
            .fill(&mut bytes)
            .map_err(|_| SecretsError::Random)?;
        let keys = self.read_keys();
        let sealed = self.seal_with(&keys.current, name, B64.encode(&bytes).as_bytes(), true)?;
        drop(keys);
        if !self.tree.insert_new(name, &sealed)? {
            // Another caller created it first; use theirs.
            return self.get_or_create_key(name);
        }
        self.store.sync()?;
        Ok(SecretBytes::new(bytes))
    }

    /// Names of the user's stored secrets with the key id each is sealed under. Never
    /// values, never the gateway's internal keys.
    pub fn list(&self) -> Result<Vec<(SecretName, String)>, SecretsError> {
        let mut names = Vec::new();
        for entry in self.tree.iter_from(None) {
            let (name, sealed) = entry?;
            if !sealed.is_internal(&name) {
                names.push((name, sealed.kid));
            }
        }
        Ok(names)
    }

    /// Removes one of the user's secrets; refuses the gateway's internal keys.
    pub fn remove(&self, name: &SecretName) -> Result<bool, SecretsError> {
        self.refuse_internal(name)?;
        if let Some(sealed) = self.tree.get(name)?
            && sealed.is_internal(name)
        {
            return Err(SecretsError::Internal {
                name: name.to_string(),
            });
        }
        let removed = self.tree.remove(name)?;
        self.store.sync()?;
        Ok(removed)
    }

    fn refuse_internal(&self, name: &SecretName) -> Result<(), SecretsError> {
        if is_reserved(name) {
            return Err(SecretsError::Internal {
                name: name.to_string(),
            });
        }
        Ok(())
    }

    /// Replaces the master key and re-seals every stored value under the new one.
    pub fn rotate_master_key(&self) -> Result<Rotation, SecretsError> {
        let next = MasterKey::generate()?;
        let next_path = self.data_dir.join(NEXT_KEY_FILE);
        write_private_file(&next_path, next.bytes.expose())
            .map_err(|source| SecretsError::Io(IoError::new("write", next_path, source)))?;
        self.keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .next = Some(next);
        self.finish_rotation()
    }

    fn finish_rotation(&self) -> Result<Rotation, SecretsError> {
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(next) = keys.next.as_ref() else {
            return Err(SecretsError::Crypto);
        };
        let mut resealed = Vec::new();
        for entry in self.tree.iter_from(None) {
            let (name, sealed) = entry?;
            let plain = self.open_sealed(&keys, &name, &sealed)?;
            let internal = sealed.is_internal(&name);
            resealed.push((name.clone(), self.seal_with(next, &name, &plain, internal)?));
        }
        self.tree.replace_all(&resealed)?;
        self.store.sync()?;
        let path = master_key_path(&self.data_dir);
        let next_path = self.data_dir.join(NEXT_KEY_FILE);
        std::fs::rename(&next_path, &path)
            .and_then(|()| File::open(&self.data_dir)?.sync_all())
            .map_err(|source| SecretsError::Io(IoError::new("install", next_path, source)))?;
        let rotation = Rotation {
            old_key_id: keys.current.id.clone(),
            new_key_id: next.id.clone(),
            resealed: resealed.len(),
        };
        if let Some(next) = keys.next.take() {
            keys.current = next;
        }
        Ok(rotation)
    }
}

fn aead_key(key: &MasterKey) -> Result<LessSafeKey, SecretsError> {
    let derived = key.derive(SEAL_PURPOSE);
    UnboundKey::new(&aead::CHACHA20_POLY1305, derived.expose())
        .map(LessSafeKey::new)
        .map_err(|_| SecretsError::Crypto)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> (Store, Secrets) {
        let store = Store::open(dir, 1 << 20).unwrap();
        let secrets = Secrets::open(dir, &store).unwrap();
        (store, secrets)
    }

    fn name(n: &str) -> SecretName {
        SecretName::parse(n).unwrap()
    }

    #[test]
    fn master_key_is_created_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let (_, secrets) = open(dir.path());
            assert_eq!(secrets.key_file_mode(), Some(0o600));
            secrets.key_id()
        };
        let (_, secrets) = open(dir.path());
        assert_eq!(secrets.key_id(), id);
        assert_eq!(
            std::fs::read(master_key_path(dir.path())).unwrap().len(),
            32
        );
    }

    #[test]
    fn sealed_values_round_trip_and_never_hit_the_disk_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let plaintext = "sk-live-PLAINTEXT-CANARY-7f3a9c";
        {
            let (_, secrets) = open(dir.path());
            secrets
                .set(&name("providers.openai"), &Secret::new(plaintext))
                .unwrap();
            assert_eq!(
                secrets
                    .get(&name("providers.openai"))
                    .unwrap()
                    .unwrap()
                    .expose(),
                plaintext
            );
        }
        let mut found = Vec::new();
        for entry in walk(dir.path()) {
            let bytes = std::fs::read(&entry).unwrap();
            if bytes
                .windows(plaintext.len())
                .any(|w| w == plaintext.as_bytes())
            {
                found.push(entry);
            }
        }
        assert!(found.is_empty(), "plaintext found in {found:?}");
        let (_, secrets) = open(dir.path());
        assert_eq!(
            secrets
                .get(&name("providers.openai"))
                .unwrap()
                .unwrap()
                .expose(),
            plaintext
        );
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }

    #[test]
    fn a_ciphertext_moved_to_another_name_or_altered_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, secrets) = open(dir.path());
        secrets.set(&name("a"), &Secret::new("alpha")).unwrap();
        let sealed = secrets.tree.get(&name("a")).unwrap().unwrap();
        secrets.tree.insert(&name("b"), &sealed).unwrap();
        assert!(matches!(
            secrets.get(&name("b")),
            Err(SecretsError::Tampered { .. })
        ));
        let mut altered = sealed.clone();
        altered.ciphertext = B64.encode(b"0000000000000000000000000");
        secrets.tree.insert(&name("a"), &altered).unwrap();
        assert!(matches!(
            secrets.get(&name("a")),
            Err(SecretsError::Tampered { .. })
        ));
    }

    #[test]
    fn rotation_reseals_everything_under_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let (_, secrets) = open(dir.path());
        for i in 0..5 {
            secrets
                .set(&name(&format!("s{i}")), &Secret::new(format!("value-{i}")))
                .unwrap();
        }
        let key = secrets
            .get_or_create_key(&name("audit.checkpoint"))
            .unwrap();
        let old_id = secrets.key_id();
        let old_file = std::fs::read(master_key_path(dir.path())).unwrap();
        let rotation = secrets.rotate_master_key().unwrap();
        assert_eq!(rotation.old_key_id, old_id);
        assert_ne!(rotation.new_key_id, old_id);
        assert_eq!(rotation.resealed, 6);
        assert_ne!(
            std::fs::read(master_key_path(dir.path())).unwrap(),
            old_file
        );
        assert!(!dir.path().join(NEXT_KEY_FILE).exists());
        drop(secrets);
        let store = Store::open(dir.path(), 1 << 20);
        drop(store);
        let (_, secrets) = open(dir.path());
        assert_eq!(secrets.key_id(), rotation.new_key_id);
        for (_, kid) in secrets.list().unwrap() {
            assert_eq!(kid, rotation.new_key_id);
        }
        assert_eq!(
            secrets.get(&name("s3")).unwrap().unwrap().expose(),
            "value-3"
        );
        assert_eq!(
            secrets
                .get_or_create_key(&name("audit.checkpoint"))
                .unwrap(),
            key
        );
    }

    #[test]
    fn internal_keys_are_hidden_and_cannot_be_removed_or_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let (store, secrets) = open(dir.path());
        secrets
            .set(&name("providers.openai"), &Secret::new("sk-x"))
            .unwrap();
        let made = secrets.get_or_create_key(&name("gateway.own-key")).unwrap();
        // A record from before the internal mark existed, known by its reserved name.
        let legacy = name("audit.checkpoint-key");
        let legacy_key = secrets.get_or_create_key(&legacy).unwrap();
        let tree: Tree<SecretName, serde_json::Value> = store.tree(TreeName::Secrets).unwrap();
        let mut unmarked = tree.get(&legacy).unwrap().unwrap();
        assert_eq!(
            unmarked.as_object_mut().unwrap().remove("internal"),
            Some(true.into())
        );
        tree.insert(&legacy, &unmarked).unwrap();

        let listed = |secrets: &Secrets| -> Vec<String> {
            secrets
                .list()
                .unwrap()
                .into_iter()
                .map(|(n, _)| n.to_string())
                .collect()
        };
        assert_eq!(listed(&secrets), ["providers.openai"]);
        for internal in [name("gateway.own-key"), legacy.clone()] {
            assert!(matches!(
                secrets.remove(&internal),
                Err(SecretsError::Internal { .. })
            ));
            assert!(matches!(
                secrets.set(&internal, &Secret::new("chosen by the user")),
                Err(SecretsError::Internal { .. })
            ));
        }
        // Reserved even before the gateway made it: a user must not choose its value.
        assert!(matches!(
            secrets.set(&name("audit.checkpoint-key"), &Secret::new("x")),
            Err(SecretsError::Internal { .. })
        ));
        assert!(secrets.remove(&name("providers.openai")).unwrap());

        // The mark survives a master key rotation, and the key itself is unchanged.
        secrets.rotate_master_key().unwrap();
        assert!(listed(&secrets).is_empty());
        assert_eq!(
            secrets.get_or_create_key(&name("gateway.own-key")).unwrap(),
            made
        );
        assert_eq!(secrets.get_or_create_key(&legacy).unwrap(), legacy_key);
        assert!(matches!(
            secrets.remove(&name("gateway.own-key")),
            Err(SecretsError::Internal { .. })
        ));
    }

    #[test]
    fn an_interrupted_rotation_is_finished_on_next_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (_, secrets) = open(dir.path());
            secrets
                .set(&name("kept"), &Secret::new("still-here"))
                .unwrap();
            // Crash after writing the next key but before re-sealing.
            let next = MasterKey::generate().unwrap();
            write_private_file(&dir.path().join(NEXT_KEY_FILE), next.bytes.expose()).unwrap();
        }
        let (_, secrets) = open(dir.path());
        assert!(!dir.path().join(NEXT_KEY_FILE).exists());
        assert_eq!(
            secrets.get(&name("kept")).unwrap().unwrap().expose(),
            "still-here"
        );
    }

    #[test]
    fn damaged_key_files_are_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(master_key_path(dir.path()), b"short").unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let err = Secrets::open(dir.path(), &store).unwrap_err();
        assert!(err.to_string().contains("holds 5 bytes"), "{err}");
    }
}
