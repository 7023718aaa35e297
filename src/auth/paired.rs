//! Paired devices: the credential a phone holds after pairing, bound to its own key.
//!
//! A paired device has an ECDSA P-256 public key (made by the phone's WebCrypto, the
//! private half never leaves it), a short-lived access token (`aisd_<id>_<secret>`) and
//! a refresh token (`aisdr_<id>_<secret>`). A refresh needs the refresh token AND a
//! signature by the device key over a fresh, single-use server nonce, so a stolen
//! refresh token alone is useless and a captured refresh cannot be replayed. The store
//! keeps only SHA-256 hashes of both tokens; a refresh replaces both. Scopes default to
//! `chat:read chat:write`; more are only ever a pending request an admin approves.
//!
//! This module owns the device records, their tokens and the refresh nonces. It never
//! speaks HTTP and never decides whether a pairing offer was valid (`pairing` does).

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::auth::opaque;
use crate::auth::scopes::{Scope, Scopes};
use crate::auth::users::Accounts;
use crate::clock::{SharedClock, rfc3339};
use crate::ids::random_id;
use crate::secret::Secret;
use crate::store::{Store, StoreError, Tree, TreeName};

/// The prefix of a paired device's access token.
pub const ACCESS_PREFIX: &str = "aisd";
/// The prefix of a paired device's refresh token.
pub const REFRESH_PREFIX: &str = "aisdr";
/// How long an access token lives.
pub const ACCESS_TTL_SECS: i64 = 15 * 60;
/// How long a refresh token lives without use.
pub const REFRESH_TTL_SECS: i64 = 30 * 86_400;
/// How long a refresh nonce may wait for its signature.
pub const NONCE_TTL_SECS: i64 = 60;
/// At most this many nonces wait at once; the oldest go first.
const MAX_NONCES: usize = 1024;
/// What a refresh signature covers: this label, the device id and the nonce, so a
/// signature made for one purpose or device never serves another.
pub const REFRESH_LABEL: &str = "aisopod-device-refresh";
/// The longest device name kept.
pub const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum PairedError {
    #[error("the device credential is invalid, expired or revoked")]
    Invalid,
    #[error("the public key is not usable: {0}")]
    BadKey(String),
    #[error(
        "the refresh is refused: the nonce is unknown, expired or used, or the signature does not verify"
    )]
    BadProof,
    #[error("invalid device name: {0}")]
    BadName(String),
    #[error("no paired device {0}")]
    NotFound(String),
    #[error("the device {0} has no pending scope request")]
    NothingPending(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A device's public key: an uncompressed P-256 point (65 bytes, `0x04 || x || y`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DevicePublicKey(#[serde(with = "b64")] Vec<u8>);

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";

fn curve_name(oid: &str) -> &str {
    match oid {
        "1.3.132.0.34" => "P-384",
        "1.3.132.0.35" => "P-521",
        "1.3.132.0.10" => "secp256k1",
        other => other,
    }
}

impl DevicePublicKey {
    /// Reads a key as WebCrypto exports it: an SPKI (DER, base64 or base64url text) or
    /// a JWK object. Anything but an uncompressed P-256 point is refused, by name.
    pub fn parse(value: &serde_json::Value) -> Result<DevicePublicKey, PairedError> {
        match value {
            serde_json::Value::String(text) => Self::from_spki_text(text),
            serde_json::Value::Object(jwk) => Self::from_jwk(jwk),
            _ => Err(PairedError::BadKey(
                "send the key as base64 SPKI text or as a JWK object".into(),
            )),
        }
    }

    fn from_spki_text(text: &str) -> Result<DevicePublicKey, PairedError> {
        let text = text.trim();
        let der = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| PairedError::BadKey("the SPKI text is not base64".into()))?;
        Self::from_spki(&der)
    }

    /// An SPKI in DER.
    pub fn from_spki(der: &[u8]) -> Result<DevicePublicKey, PairedError> {
        use x509_parser::prelude::FromDer;
        let (rest, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der)
            .map_err(|_| PairedError::BadKey("not a DER SubjectPublicKeyInfo".into()))?;
        if !rest.is_empty() {
            return Err(PairedError::BadKey(
                "trailing bytes after the SubjectPublicKeyInfo".into(),
            ));
        }
        let algorithm = spki.algorithm.algorithm.to_id_string();
        if algorithm != OID_EC_PUBLIC_KEY {
            return Err(PairedError::BadKey(format!(
                "the key is not an elliptic-curve key (algorithm {algorithm}); use ECDSA P-256"
            )));
        }
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|oid| oid.to_id_string())
            .unwrap_or_default();
        if curve != OID_P256 {
            return Err(PairedError::BadKey(format!(
                "the key is on curve {}, not P-256",
                curve_name(&curve)
            )));
        }
        Self::from_point(&spki.subject_public_key.data)
    }

    fn from_jwk(jwk: &serde_json::Map<String, serde_json::Value>) -> Result<Self, PairedError> {
        let field = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
        if field("kty") != Some("EC") {
            return Err(PairedError::BadKey(format!(
                "the JWK's kty is {:?}, not \"EC\"; use ECDSA P-256",
                field("kty").unwrap_or_default()
            )));
        }
        if field("crv") != Some("P-256") {
            return Err(PairedError::BadKey(format!(
                "the key is on curve {:?}, not P-256",
                field("crv").unwrap_or_default()
            )));
        }
        let coordinate = |name: &str| {
            field(name)
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                .filter(|v| v.len() == 32)
                .ok_or_else(|| {
                    PairedError::BadKey(format!("the JWK's {name} is not 32 bytes of base64url"))
                })
        };
        let mut point = vec![0x04];
        point.extend(coordinate("x")?);
        point.extend(coordinate("y")?);
        Self::from_point(&point)
    }

    fn from_point(point: &[u8]) -> Result<DevicePublicKey, PairedError> {
        if point.len() != 65 || point.first() != Some(&0x04) {
            return Err(PairedError::BadKey(
                "the P-256 point must be uncompressed (65 bytes starting with 0x04)".into(),
            ));
        }
        Ok(DevicePublicKey(point.to_vec()))
    }

    /// Whether `signature` (IEEE P1363 `r || s`, as WebCrypto makes it, or DER) by this
    /// key covers `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        use ring::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
        let algorithm = if signature.len() == 64 {
            &ECDSA_P256_SHA256_FIXED
        } else {
            &ECDSA_P256_SHA256_ASN1
        };
        UnparsedPublicKey::new(algorithm, &self.0)
            .verify(message, signature)
            .is_ok()
    }

    /// A short fingerprint for people and the audit log.
    pub fn fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.0);
        hex::encode(digest.as_ref().get(..8).unwrap_or_default())
    }
}

/// A paired device as stored (token hashes included; [`PairedDevice::listed`] drops them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedDevice {
    pub id: String,
    pub name: String,
    /// The account the device acts for.
    pub owner: String,
    /// That account's id, so a removed and re-made account of the same name does not
    /// inherit the device.
    pub owner_id: String,
    pub public_key: DevicePublicKey,
    pub scopes: Scopes,
    /// Scopes the device asked for beyond the default, waiting for an admin.
    #[serde(default)]
    pub requested_scopes: Scopes,
    pub created: String,
    pub last_refresh: Option<i64>,
    pub revoked: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    access_hash: String,
    #[serde(default)]
    access_expires: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    refresh_hash: String,
    #[serde(default)]
    refresh_expires: i64,
}

impl PairedDevice {
    /// The record as listed: everything but the token hashes.
    pub fn listed(&self) -> PairedDevice {
        PairedDevice {
            access_hash: String::new(),
            refresh_hash: String::new(),
            ..self.clone()
        }
    }
}

/// A device's tokens, shown to it once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceTokens {
    pub device_id: String,
    #[serde(serialize_with = "expose")]
    pub access_token: Secret,
    #[serde(serialize_with = "expose")]
    pub refresh_token: Secret,
    pub expires_in: i64,
    pub scopes: Scopes,
}

fn expose<S: serde::Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

/// The scopes a paired device gets without an admin's approval.
pub fn default_scopes() -> Scopes {
    Scopes::from_iter([Scope::ChatRead, Scope::ChatWrite])
}

/// Cleans a device name a phone sent: control characters dropped, trimmed, bounded.
pub fn clean_name(name: &str) -> Result<String, PairedError> {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect::<String>()
        .trim()
        .to_string();
    if cleaned.is_empty() {
        return Err(PairedError::BadName(
            "give the device a name (1-64 characters)".into(),
        ));
    }
    Ok(cleaned)
}

/// The paired-device service.
#[derive(Debug)]
pub struct PairedDevices {
    tree: Tree<String, PairedDevice>,
    accounts: Accounts,
    store: Store,
    clock: SharedClock,
    /// Outstanding refresh nonces and until when they may be used.
    nonces: Mutex<HashMap<String, i64>>,
    events: tokio::sync::broadcast::Sender<DeviceEvent>,
}

/// What connected clients hear about devices: a new one (told to its owner), and a
/// revoked one (its own open connections end at once instead of at their next recheck).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    DevicePaired {
        owner: String,
        device_id: String,
        name: String,
    },
    DeviceRevoked {
        device_id: String,
    },
}

impl PairedDevices {
    pub fn open(
        store: &Store,
        accounts: Accounts,
        clock: SharedClock,
    ) -> Result<PairedDevices, PairedError> {
        Ok(PairedDevices {
            tree: store.tree(TreeName::PairedDevices)?,
            accounts,
            store: store.clone(),
            clock,
            nonces: Mutex::new(HashMap::new()),
            events: tokio::sync::broadcast::Sender::new(64),
        })
    }

    /// Device events from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<DeviceEvent> {
        self.events.subscribe()
    }

    /// Tells every subscriber (nobody listening is fine).
    pub fn announce(&self, event: DeviceEvent) {
        let _ = self.events.send(event);
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// Records a newly paired device for `owner` (an account, or the built-in principal
    /// of the token and none modes, whose id is empty) and issues its first tokens.
    /// `granted` are the scopes the person who offered and confirmed the pairing chose
    /// (normally [`default_scopes`]); `requested` beyond them are not granted: they
    /// become a pending request an admin approves.
    pub fn create(
        &self,
        owner: &str,
        owner_id: &str,
        name: &str,
        public_key: DevicePublicKey,
        granted: Scopes,
        requested: Scopes,
    ) -> Result<(PairedDevice, DeviceTokens), PairedError> {
        let name = clean_name(name)?;
        let extra = Scopes::from_iter(requested.iter().filter(|s| !granted.allows(*s)));
        let mut device = PairedDevice {
            id: random_id(8),
            name,
            owner: owner.to_string(),
            owner_id: owner_id.to_string(),
            public_key,
            scopes: granted,
            requested_scopes: extra,
            created: rfc3339(self.clock.now()),
            last_refresh: None,
            revoked: None,
            access_hash: String::new(),
            access_expires: 0,
            refresh_hash: String::new(),
            refresh_expires: 0,
        };
        let tokens = self.issue(&mut device);
        if !self.tree.insert_new(&device.id, &device)? {
            return Err(PairedError::Store(StoreError::Corrupt {
                tree: "paired_devices",
                message: "device id collision".into(),
            }));
        }
        self.store.sync()?;
        Ok((device.listed(), tokens))
    }

    /// New tokens for `device`, written into the record (the caller stores it).
    fn issue(&self, device: &mut PairedDevice) -> DeviceTokens {
        let now = self.now();
        let access = opaque::mint_for(ACCESS_PREFIX, &device.id);
        let refresh = opaque::mint_for(REFRESH_PREFIX, &device.id);
        device.access_hash = access.secret_hash;
        device.access_expires = now + ACCESS_TTL_SECS;
        device.refresh_hash = refresh.secret_hash;
        device.refresh_expires = now + REFRESH_TTL_SECS;
        DeviceTokens {
            device_id: device.id.clone(),
            access_token: access.plaintext,
            refresh_token: refresh.plaintext,
            expires_in: ACCESS_TTL_SECS,
            scopes: device.scopes,
        }
    }

    /// Whether the device's owner still stands behind it.
    fn owner_stands(&self, device: &PairedDevice) -> bool {
        if device.owner_id.is_empty() {
            return true;
        }
        self.accounts
            .get(&device.owner)
            .ok()
            .flatten()
            .is_some_and(|user| user.id == device.owner_id && !user.disabled)
    }

    /// Checks a presented access token: the device and the scopes it acts with (the
    /// device's, within its owner's).
    pub fn authenticate(&self, presented: &str) -> Result<(PairedDevice, Scopes), PairedError> {
        let (id, secret) = opaque::parse(ACCESS_PREFIX, presented).ok_or(PairedError::Invalid)?;
        let device = self
            .tree
            .get(&id.to_string())?
            .ok_or(PairedError::Invalid)?;
        if device.revoked.is_some()
            || device.access_expires <= self.now()
            || !opaque::matches(secret, &device.access_hash)
        {
            return Err(PairedError::Invalid);
        }
        let owner_scopes = if device.owner_id.is_empty() {
            Scopes::all()
        } else {
            match self.accounts.get(&device.owner).ok().flatten() {
                Some(user) if user.id == device.owner_id && !user.disabled => user.scopes,
                _ => return Err(PairedError::Invalid),
            }
        };
        let scopes = Scopes::from_iter(device.scopes.iter().filter(|s| owner_scopes.allows(*s)));
        Ok((device.listed(), scopes))
    }

    /// Whether the device is still paired (not revoked, its owner standing).
    pub fn is_active(&self, id: &str) -> Result<bool, PairedError> {
        Ok(self
            .tree
            .get(&id.to_string())?
            .is_some_and(|d| d.revoked.is_none() && self.owner_stands(&d)))
    }

    /// A fresh single-use nonce for a refresh.
    pub fn nonce(&self) -> String {
        let now = self.now();
        let mut bytes = [0u8; 24];
        let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
        let nonce = URL_SAFE_NO_PAD.encode(bytes);
        let mut nonces = self
            .nonces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        nonces.retain(|_, until| *until > now);
        while nonces.len() >= MAX_NONCES {
            let oldest = nonces
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(n, _)| n.clone());
            match oldest {
                Some(n) => nonces.remove(&n),
                None => break,
            };
        }
        nonces.insert(nonce.clone(), now + NONCE_TTL_SECS);
        nonce
    }

    /// The message a refresh signature covers.
    pub fn refresh_message(device_id: &str, nonce: &str) -> String {
        format!("{REFRESH_LABEL}\n{device_id}\n{nonce}")
    }

    /// Refreshes with proof of possession: the refresh token, a nonce from
    /// [`PairedDevices::nonce`] (spent here, whatever the outcome) and the device key's
    /// signature over [`PairedDevices::refresh_message`]. Both tokens are replaced.
    pub fn refresh(
        &self,
        refresh_token: &str,
        nonce: &str,
        signature: &[u8],
    ) -> Result<DeviceTokens, PairedError> {
        let now = self.now();
        let fresh = self
            .nonces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(nonce)
            .is_some_and(|until| until > now);
        let (id, secret) =
            opaque::parse(REFRESH_PREFIX, refresh_token).ok_or(PairedError::Invalid)?;
        let device = self
            .tree
            .get(&id.to_string())?
            .ok_or(PairedError::Invalid)?;
        let token_ok: bool = opaque::hash(secret)
            .as_bytes()
            .ct_eq(device.refresh_hash.as_bytes())
            .into();
        if !token_ok
            || device.revoked.is_some()
            || device.refresh_expires <= now
            || !self.owner_stands(&device)
        {
            return Err(PairedError::Invalid);
        }
        let message = Self::refresh_message(&device.id, nonce);
        if !fresh || !device.public_key.verifies(message.as_bytes(), signature) {
            return Err(PairedError::BadProof);
        }
        let mut tokens = None;
        self.tree.update(&device.id, |current| {
            if current.refresh_hash != device.refresh_hash || current.revoked.is_some() {
                // Another refresh or a revocation won the race.
                return Err(PairedError::Invalid);
            }
            let mut next = current.clone();
            tokens = Some(self.issue(&mut next));
            next.last_refresh = Some(now);
            Ok(Some(next))
        })?;
        self.store.sync()?;
        tokens.ok_or(PairedError::Invalid)
    }

    pub fn get(&self, id: &str) -> Result<PairedDevice, PairedError> {
        self.tree
            .get(&id.to_string())?
            .map(|d| d.listed())
            .ok_or_else(|| PairedError::NotFound(id.to_string()))
    }

    /// Every paired device, revoked ones included (they say so).
    pub fn list(&self) -> Result<Vec<PairedDevice>, PairedError> {
        self.tree
            .iter_from(None)
            .map(|entry| entry.map(|(_, d)| d.listed()).map_err(PairedError::from))
            .collect()
    }

    fn change(
        &self,
        id: &str,
        apply: impl Fn(&mut PairedDevice) -> Result<(), PairedError>,
    ) -> Result<PairedDevice, PairedError> {
        let updated = self.tree.update(&id.to_string(), |current| {
            let mut next = current.clone();
            apply(&mut next)?;
            Ok::<_, PairedError>(Some(next))
        })?;
        self.store.sync()?;
        updated
            .map(|device| device.listed())
            .ok_or_else(|| PairedError::NotFound(id.to_string()))
    }

    pub fn rename(&self, id: &str, name: &str) -> Result<PairedDevice, PairedError> {
        let name = clean_name(name)?;
        self.change(id, |device| {
            device.name = name.clone();
            Ok(())
        })
    }

    /// Revokes a device: its tokens stop working at once, and so does everything that
    /// rechecks [`PairedDevices::is_active`] (open WebSockets).
    pub fn revoke(&self, id: &str) -> Result<PairedDevice, PairedError> {
        let now = self.now();
        let revoked = self.change(id, |device| {
            if device.revoked.is_none() {
                device.revoked = Some(now);
            }
            device.access_hash.clear();
            device.refresh_hash.clear();
            Ok(())
        })?;
        self.announce(DeviceEvent::DeviceRevoked {
            device_id: revoked.id.clone(),
        });
        Ok(revoked)
    }

    /// Grants the scopes the device asked for at pairing (an admin's decision).
    pub fn approve_scopes(&self, id: &str) -> Result<PairedDevice, PairedError> {
        let id_text = id.to_string();
        self.change(id, |device| {
            if device.requested_scopes.is_empty() {
                return Err(PairedError::NothingPending(id_text.clone()));
            }
            device.scopes =
                Scopes::from_iter(device.scopes.iter().chain(device.requested_scopes.iter()));
            device.requested_scopes = Scopes::none();
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::PublicKeyData;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    struct Phone {
        key: EcdsaKeyPair,
    }

    impl Phone {
        fn new() -> Phone {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            Phone {
                key: EcdsaKeyPair::from_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8.as_ref(),
                    &rng,
                )
                .unwrap(),
            }
        }

        fn public(&self) -> DevicePublicKey {
            DevicePublicKey::from_point(self.key.public_key().as_ref()).unwrap()
        }

        fn sign(&self, message: &str) -> Vec<u8> {
            let rng = ring::rand::SystemRandom::new();
            self.key
                .sign(&rng, message.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec()
        }
    }

    fn service() -> (crate::auth::testing::Fixture, PairedDevices) {
        let f = crate::auth::testing::fixture("");
        let devices = PairedDevices::open(&f.store, f.accounts.clone(), f.shared.clone()).unwrap();
        (f, devices)
    }

    #[test]
    fn a_refresh_needs_the_key_a_fresh_nonce_and_the_current_token() {
        let (_f, devices) = service();
        let phone = Phone::new();
        let (device, tokens) = devices
            .create(
                "local",
                "",
                "phone",
                phone.public(),
                default_scopes(),
                Scopes::none(),
            )
            .unwrap();
        let refresh = tokens.refresh_token.expose().to_string();
        // Right token, no signature by the key: refused.
        let nonce = devices.nonce();
        let thief = Phone::new();
        let forged = thief.sign(&PairedDevices::refresh_message(&device.id, &nonce));
        assert!(matches!(
            devices.refresh(&refresh, &nonce, &forged),
            Err(PairedError::BadProof)
        ));
        // The nonce was spent by the failed try: the right signature over it now fails.
        let signed = phone.sign(&PairedDevices::refresh_message(&device.id, &nonce));
        assert!(matches!(
            devices.refresh(&refresh, &nonce, &signed),
            Err(PairedError::BadProof)
        ));
        // A nonce the server never gave: refused.
        let made_up = phone.sign(&PairedDevices::refresh_message(&device.id, "made-up"));
        assert!(devices.refresh(&refresh, "made-up", &made_up).is_err());
        // Fresh nonce, right key: new tokens, and the old refresh token is dead.
        let nonce = devices.nonce();
        let signed = phone.sign(&PairedDevices::refresh_message(&device.id, &nonce));
        let next = devices.refresh(&refresh, &nonce, &signed).unwrap();
        assert!(devices.authenticate(next.access_token.expose()).is_ok());
        assert!(devices.authenticate(tokens.access_token.expose()).is_err());
        let nonce = devices.nonce();
        let signed = phone.sign(&PairedDevices::refresh_message(&device.id, &nonce));
        assert!(matches!(
            devices.refresh(&refresh, &nonce, &signed),
            Err(PairedError::Invalid)
        ));
    }

    #[test]
    fn asking_for_more_scopes_grants_the_default_and_leaves_the_rest_pending() {
        let (_f, devices) = service();
        let asked = Scopes::parse_list("chat:read,admin").unwrap();
        let (device, tokens) = devices
            .create(
                "local",
                "",
                "phone",
                Phone::new().public(),
                default_scopes(),
                asked,
            )
            .unwrap();
        assert_eq!(device.scopes, default_scopes());
        assert_eq!(tokens.scopes, default_scopes());
        assert_eq!(
            device.requested_scopes,
            Scopes::parse_list("admin").unwrap()
        );
        let (_, scopes) = devices.authenticate(tokens.access_token.expose()).unwrap();
        assert!(!scopes.allows(Scope::Admin));
        let approved = devices.approve_scopes(&device.id).unwrap();
        assert!(approved.scopes.allows(Scope::Admin));
        assert!(approved.requested_scopes.is_empty());
    }

    #[test]
    fn keys_that_are_not_p256_are_refused_by_name() {
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let err = DevicePublicKey::from_spki(&p384.subject_public_key_info()).unwrap_err();
        assert!(err.to_string().contains("P-384"), "{err}");
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let err = DevicePublicKey::from_spki(&ed.subject_public_key_info()).unwrap_err();
        assert!(
            err.to_string().contains("not an elliptic-curve key"),
            "{err}"
        );
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"});
        assert!(DevicePublicKey::parse(&jwk).is_err());
        let p256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let text = serde_json::Value::String(STANDARD.encode(p256.subject_public_key_info()));
        assert!(DevicePublicKey::parse(&text).is_ok());
    }
}
