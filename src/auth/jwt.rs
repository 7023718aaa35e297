//! Signed access tokens (JWT, HS256) and their signing keys.
//!
//! Every token names its key (`kid`), issuer (`iss`), purpose (`aud`: a session access
//! token can never be replayed as a WebSocket ticket or the reverse), subject, the
//! account's id and epoch (so bumping the epoch revokes it), scopes, a unique `jti`,
//! `iat` and `exp`. Verification accepts HS256 only: `alg: none`, any other algorithm,
//! an unknown or retired `kid`, a wrong `aud` or `iss` and an expired `exp` are refused.
//!
//! Keys derive from `master.key` by kid, so nothing secret is stored for them; the
//! keyring in the store only lists kids and until when retired ones still verify.
//! With `[auth] jwt_secret` (or `AISOPOD_JWT_SECRET` / `JWT_SECRET_KEY`) the operator's
//! secret is the only key and rotation means changing it.
//!
//! Verification is on every request's path, so the verifying key of each usable kid is
//! kept once derived, tagged with the master key it came from: a rotation of either the
//! keyring or the master key makes the next check derive afresh. The keyring is always
//! consulted first, so a kept key never outlives its kid's grace.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::auth::scopes::Scopes;
use crate::clock::SharedClock;
use crate::ids::random_id;
use crate::keys::secrets::Secrets;
use crate::secret::{Secret, SecretBytes};
use crate::store::{MetaKey, Store, StoreError, Tree, TreeName};

pub const ISSUER: &str = "aisopod";
const KEYRING_KEY: &str = "jwt.keyring";

/// What a token is for; each purpose has its own audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Session,
    WsTicket,
    /// Not a credential: marks a client that signed in before (see `users`).
    KnownClient,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Session => "aisopod:session",
            Audience::WsTicket => "aisopod:ws-ticket",
            Audience::KnownClient => "aisopod:known-client",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub uid: String,
    pub epoch: u64,
    pub scopes: Scopes,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    /// What the token derives from and ends with: `family:ID` for a login session,
    /// `token:ID` for an API token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signing key is unknown or retired")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the token has expired")]
    Expired,
    #[error(
        "the signing key comes from the configuration ([auth] jwt_secret or AISOPOD_JWT_SECRET); rotate it by changing that secret"
    )]
    ConfiguredKey,
    #[error("keyring storage failed: {0}")]
    Store(String),
}

impl From<StoreError> for JwtError {
    fn from(err: StoreError) -> Self {
        JwtError::Store(err.to_string())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Keyring {
    current: String,
    retired: Vec<Retired>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Retired {
    kid: String,
    verify_until: i64,
}

#[derive(Debug)]
enum KeySource {
    Configured { kid: String, key: SecretBytes },
    Derived { master: Arc<Secrets> },
}

/// A derived verifying key and the master key id it was derived under (empty for a
/// configured secret, which never changes while the gateway runs).
struct CachedKey {
    master_id: String,
    key: Arc<DecodingKey>,
}

/// At most this many verifying keys are kept; the keyring rarely holds more than two.
const MAX_CACHED_KEYS: usize = 8;

/// One validation per audience, built once: they never change while the gateway runs.
struct Validations {
    session: Validation,
    ws_ticket: Validation,
    known_client: Validation,
}

impl Validations {
    fn new() -> Validations {
        Validations {
            session: validation_for(Audience::Session),
            ws_ticket: validation_for(Audience::WsTicket),
            known_client: validation_for(Audience::KnownClient),
        }
    }

    fn get(&self, aud: Audience) -> &Validation {
        match aud {
            Audience::Session => &self.session,
            Audience::WsTicket => &self.ws_ticket,
            Audience::KnownClient => &self.known_client,
        }
    }
}

fn validation_for(aud: Audience) -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[aud.as_str()]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
    // Expiry is checked against the injected clock instead.
    validation.validate_exp = false;
    validation.leeway = 0;
    validation
}

/// Issues and verifies tokens.
pub struct Jwt {
    source: KeySource,
    keyring: RwLock<Keyring>,
    verifying: RwLock<HashMap<String, CachedKey>>,
    validations: Validations,
    tree: Tree<MetaKey, Keyring>,
    store: Store,
    clock: SharedClock,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("source", &self.source)
            .field("keyring", &self.keyring)
            .finish_non_exhaustive()
    }
}

impl Jwt {
    pub fn open(
        store: &Store,
        secrets: Arc<Secrets>,
        configured: Option<&Secret>,
        clock: SharedClock,
    ) -> Result<Jwt, JwtError> {
        let tree: Tree<MetaKey, Keyring> = store.tree(TreeName::Meta)?;
        let (source, keyring) = match configured {
            Some(secret) => {
                let digest =
                    ring::digest::digest(&ring::digest::SHA256, secret.expose().as_bytes());
                let kid = format!(
                    "cfg-{}",
                    hex::encode(digest.as_ref().get(..6).unwrap_or_default())
                );
                let keyring = Keyring {
                    current: kid.clone(),
                    retired: Vec::new(),
                };
                (
                    KeySource::Configured {
                        kid,
                        key: SecretBytes::new(secret.expose().as_bytes().to_vec()),
                    },
                    keyring,
                )
            }
            None => {
                let keyring = match tree.get(&MetaKey::new(KEYRING_KEY))? {
                    Some(keyring) => keyring,
                    None => {
                        let keyring = Keyring {
                            current: random_id(8),
                            retired: Vec::new(),
                        };
                        tree.insert(&MetaKey::new(KEYRING_KEY), &keyring)?;
                        store.sync()?;
                        keyring
                    }
                };
                (KeySource::Derived { master: secrets }, keyring)
            }
        };
        Ok(Jwt {
            source,
            keyring: RwLock::new(keyring),
            verifying: RwLock::new(HashMap::new()),
            validations: Validations::new(),
            tree,
            store: store.clone(),
            clock,
        })
    }

    fn key(&self, kid: &str) -> Option<SecretBytes> {
        match &self.source {
            KeySource::Configured { kid: own, key } => (own == kid).then(|| key.clone()),
            KeySource::Derived { master } => Some(master.derive(&format!("aisopod/v1/jwt/{kid}"))),
        }
    }

    fn master_id(&self) -> String {
        match &self.source {
            KeySource::Configured { .. } => String::new(),
            KeySource::Derived { master } => master.key_id(),
        }
    }

    /// The verifying key for a usable `kid`, derived once per kid and master key.
    fn verifying_key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        let master_id = self.master_id();
        if let Some(cached) = self
            .verifying
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(kid)
            .filter(|cached| cached.master_id == master_id)
        {
            return Some(Arc::clone(&cached.key));
        }
        let key = Arc::new(DecodingKey::from_secret(self.key(kid)?.expose()));
        let mut cache = self
            .verifying
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() >= MAX_CACHED_KEYS {
            cache.clear();
        }
        cache.insert(
            kid.to_string(),
            CachedKey {
                master_id,
                key: Arc::clone(&key),
            },
        );
        Some(key)
    }

    fn read(&self) -> Keyring {
        self.keyring
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The kid new tokens are signed with.
    pub fn current_kid(&self) -> String {
        self.read().current
    }

    /// Signs a token for `aud` lasting `ttl_secs`.
    pub fn issue(
        &self,
        aud: Audience,
        sub: &str,
        uid: &str,
        epoch: u64,
        scopes: Scopes,
        ttl_secs: i64,
    ) -> Result<(String, Claims), JwtError> {
        self.issue_bound(aud, sub, uid, epoch, scopes, ttl_secs, None)
    }

    /// Signs a token bound to the session or API token it derives from (see
    /// [`Claims::sid`]).
    #[allow(clippy::too_many_arguments)]
    pub fn issue_bound(
        &self,
        aud: Audience,
        sub: &str,
        uid: &str,
        epoch: u64,
        scopes: Scopes,
        ttl_secs: i64,
        sid: Option<String>,
    ) -> Result<(String, Claims), JwtError> {
        let now = self.clock.now().unix_timestamp();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: aud.as_str().into(),
            sub: sub.into(),
            uid: uid.into(),
            epoch,
            scopes,
            jti: random_id(16),
            iat: now,
            exp: now + ttl_secs,
            sid,
        };
        let kid = self.current_kid();
        let key = self.key(&kid).ok_or(JwtError::UnknownKey)?;
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid);
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(key.expose()))
            .map_err(|e| JwtError::Invalid(e.to_string()))?;
        Ok((token, claims))
    }

    /// Verifies signature, algorithm, key, issuer, audience and expiry.
    pub fn verify(&self, token: &str, aud: Audience) -> Result<Claims, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        if header.alg != Algorithm::HS256 {
            return Err(JwtError::Invalid("only HS256 is accepted".into()));
        }
        let kid = header.kid.ok_or(JwtError::UnknownKey)?;
        let now = self.clock.now().unix_timestamp();
        let usable = {
            let keyring = self
                .keyring
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            kid == keyring.current
                || keyring
                    .retired
                    .iter()
                    .any(|r| r.kid == kid && r.verify_until > now)
        };
        if !usable {
            return Err(JwtError::UnknownKey);
        }
        let key = self.verifying_key(&kid).ok_or(JwtError::UnknownKey)?;
        let data = jsonwebtoken::decode::<Claims>(token, &key, self.validations.get(aud))
            .map_err(|e| JwtError::Invalid(e.to_string()))?;
        if data.claims.exp <= now {
            return Err(JwtError::Expired);
        }
        Ok(data.claims)
    }

    /// Starts signing with a new key; the old one verifies for `grace_secs` more (the
    /// longest lifetime of a token signed with it).
    pub fn rotate(&self, grace_secs: i64) -> Result<String, JwtError> {
        if matches!(self.source, KeySource::Configured { .. }) {
            return Err(JwtError::ConfiguredKey);
        }
        let now = self.clock.now().unix_timestamp();
        let mut keyring = self
            .keyring
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = keyring.clone();
        next.retired.retain(|r| r.verify_until > now);
        next.retired.push(Retired {
            kid: next.current.clone(),
            verify_until: now + grace_secs,
        });
        next.current = random_id(8);
        self.tree.insert(&MetaKey::new(KEYRING_KEY), &next)?;
        self.store.sync()?;
        *keyring = next;
        self.verifying
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
        Ok(keyring.current.clone())
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    use super::*;
    use crate::clock::ManualClock;
    use crate::keys::testing::{KeyedStore, keyed_store};

    fn fixture(configured: Option<&str>) -> (KeyedStore, Jwt, ManualClock) {
        let keyed = keyed_store();
        let clock =
            ManualClock::new(time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap());
        let configured = configured.map(Secret::new);
        let jwt = Jwt::open(
            &keyed.store,
            Arc::clone(&keyed.secrets),
            configured.as_ref(),
            Arc::new(clock.clone()),
        )
        .unwrap();
        (keyed, jwt, clock)
    }

    fn issue(jwt: &Jwt) -> String {
        jwt.issue(Audience::Session, "alice", "u1", 1, Scopes::all(), 3600)
            .unwrap()
            .0
    }

    fn forge(header: serde_json::Value, claims: serde_json::Value, key: &[u8]) -> String {
        let head = B64.encode(header.to_string());
        let body = B64.encode(claims.to_string());
        let signing_input = format!("{head}.{body}");
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
            signing_input.as_bytes(),
        );
        format!("{signing_input}.{}", B64.encode(tag.as_ref()))
    }

    #[test]
    fn tokens_verify_for_their_audience_only_and_expire() {
        let (_dir, jwt, clock) = fixture(None);
        let token = issue(&jwt);
        let claims = jwt.verify(&token, Audience::Session).unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.scopes, Scopes::all());
        assert!(matches!(
            jwt.verify(&token, Audience::WsTicket),
            Err(JwtError::Invalid(_))
        ));
        clock.advance(time::Duration::seconds(3601));
        assert_eq!(
            jwt.verify(&token, Audience::Session),
            Err(JwtError::Expired)
        );
    }

    #[test]
    fn forged_and_tampered_tokens_are_refused() {
        let (_dir, jwt, _) = fixture(None);
        let token = issue(&jwt);
        let parts: Vec<&str> = token.split('.').collect();
        let claims: serde_json::Value =
            serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        let kid = jwt.current_kid();

        // alg: none with no signature.
        let none = format!(
            "{}.{}.",
            B64.encode(serde_json::json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string()),
            parts[1]
        );
        assert!(jwt.verify(&none, Audience::Session).is_err());
        // Another algorithm, signed with a guessed key.
        let hs512 = forge(
            serde_json::json!({"alg": "HS512", "kid": kid}),
            claims.clone(),
            b"guess",
        );
        assert!(jwt.verify(&hs512, Audience::Session).is_err());
        // Right algorithm, wrong key.
        let wrong_key = forge(
            serde_json::json!({"alg": "HS256", "kid": kid}),
            claims.clone(),
            b"not the key",
        );
        assert!(matches!(
            jwt.verify(&wrong_key, Audience::Session),
            Err(JwtError::Invalid(_))
        ));
        // Unknown kid.
        let other_kid = forge(
            serde_json::json!({"alg": "HS256", "kid": "deadbeef"}),
            claims.clone(),
            b"x",
        );
        assert_eq!(
            jwt.verify(&other_kid, Audience::Session),
            Err(JwtError::UnknownKey)
        );
        // Escalated scopes with the original signature.
        let mut escalated = claims.clone();
        escalated["sub"] = serde_json::json!("mallory");
        let resigned = format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(escalated.to_string()),
            parts[2]
        );
        assert!(jwt.verify(&resigned, Audience::Session).is_err());
        // Truncated and garbage tokens.
        for bad in [
            &token[..token.len() - 5],
            "a.b.c",
            "",
            "....",
            &token.replace('.', ""),
        ] {
            assert!(jwt.verify(bad, Audience::Session).is_err(), "{bad}");
        }
        // Wrong issuer with a valid signature is refused too.
        let key = jwt.key(&kid).unwrap();
        let mut foreign = claims;
        foreign["iss"] = serde_json::json!("someone-else");
        let foreign = forge(
            serde_json::json!({"alg": "HS256", "kid": kid}),
            foreign,
            key.expose(),
        );
        assert!(jwt.verify(&foreign, Audience::Session).is_err());
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_until_the_grace_ends() {
        let (dir, jwt, clock) = fixture(None);
        let old = issue(&jwt);
        let old_kid = jwt.current_kid();
        let new_kid = jwt.rotate(3600).unwrap();
        assert_ne!(old_kid, new_kid);
        let new = issue(&jwt);
        assert!(jwt.verify(&old, Audience::Session).is_ok());
        clock.advance(time::Duration::seconds(1800));
        assert!(jwt.verify(&new, Audience::Session).is_ok());
        clock.advance(time::Duration::seconds(1801));
        assert_eq!(
            jwt.verify(&old, Audience::Session),
            Err(JwtError::UnknownKey)
        );
        assert!(
            jwt.verify(&new, Audience::Session).is_err(),
            "new token expired by now too"
        );
        drop(dir);
    }

    #[test]
    fn a_master_key_rotation_refuses_tokens_whose_key_was_already_verified() {
        let KeyedStore { store, secrets, .. } = &keyed_store();
        let clock =
            ManualClock::new(time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap());
        let jwt = Jwt::open(store, Arc::clone(secrets), None, Arc::new(clock)).unwrap();
        let before = issue(&jwt);
        for _ in 0..3 {
            assert!(jwt.verify(&before, Audience::Session).is_ok());
        }
        secrets.rotate_master_key().unwrap();
        assert!(matches!(
            jwt.verify(&before, Audience::Session),
            Err(JwtError::Invalid(_))
        ));
        let after = issue(&jwt);
        assert!(jwt.verify(&after, Audience::Session).is_ok());
    }

    #[test]
    fn a_keyring_rotation_keeps_verified_keys_only_for_their_grace() {
        let (_dir, jwt, clock) = fixture(None);
        let old = issue(&jwt);
        assert!(jwt.verify(&old, Audience::Session).is_ok());
        jwt.rotate(60).unwrap();
        assert!(jwt.verify(&old, Audience::Session).is_ok());
        clock.advance(time::Duration::seconds(61));
        assert_eq!(
            jwt.verify(&old, Audience::Session),
            Err(JwtError::UnknownKey)
        );
    }

    #[test]
    fn a_configured_secret_is_the_only_key_and_is_not_rotated_here() {
        let (_dir, jwt, _) = fixture(Some("0123456789abcdef0123456789abcdef-configured"));
        assert!(jwt.current_kid().starts_with("cfg-"));
        let token = issue(&jwt);
        assert!(jwt.verify(&token, Audience::Session).is_ok());
        assert_eq!(jwt.rotate(60), Err(JwtError::ConfiguredKey));
    }
}
