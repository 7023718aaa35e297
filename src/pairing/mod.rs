//! Pairing a phone by a QR code: offers, claims and their confirmation.
//!
//! An offer is a one-time secret (80 bits, 16 characters of uppercase base32), kept only
//! as its SHA-256 and compared in constant time, living 2 minutes by default and 10 at
//! most. At most one offer is open: a second `start` is refused unless it says
//! `replace`, which ends the first. The QR carries `HTTPS://HOST/P#SECRET`: every
//! character but `#` is in QR's alphanumeric set, so with the `#` as a one-byte segment
//! it fits version 3 at level M on a 128x64 display, and the secret sits in the URL
//! fragment, which browsers never send to a
//! server (no log, no `Referer`); the page removes it from history before it claims.
//!
//! A claim (secret, device name, public key) spends the offer whatever happens next.
//! Unless `[pairing] confirm = false`, it waits until a person compares the short code
//! the phone and the display show and confirms ([`Pairing::confirm`], from the admin API
//! or the button); the phone polls with a token only it holds and collects its device
//! tokens once. A new device is announced on [`Pairing::subscribe`].
//!
//! Claims against an open offer share one budget across every address, and polls are
//! limited per address ([`guard`]), on the injected clock.
//!
//! This module decides offers and claims; it never speaks HTTP, never draws (the
//! `hardware` module shows [`PairingOffer::qr_payload`]), and keeps device credentials
//! in `auth::paired`, which it calls.

pub mod guard;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::sync::broadcast;

use crate::auth::opaque;
use crate::auth::paired::{
    DevicePublicKey, DeviceTokens, PairedDevice, PairedDevices, PairedError,
};
use crate::auth::scopes::Scopes;
use crate::clock::{SharedClock, rfc3339};
use crate::config::PairingConfig;
use crate::ids::random_id;
use crate::secret::Secret;

/// The longest an offer may live.
pub const MAX_TTL: Duration = Duration::from_secs(600);
/// The shortest an offer may live.
pub const MIN_TTL: Duration = Duration::from_secs(10);
/// How long a claim waits for confirmation and then for the phone to collect.
pub const CLAIM_TTL_SECS: i64 = 300;
/// Claims kept at once (each spends an offer, so this is never reached by honest use).
const MAX_CLAIMS: usize = 32;
/// The longest host (with its port) a QR payload takes. `#` is not in QR's
/// alphanumeric set, so the payload is three segments: `HTTPS://HOST/P` (alphanumeric,
/// 13 + 5.5 bits a character), `#` (byte mode, 20 bits) and the 16-character secret
/// (alphanumeric, 101 bits); version 3-M holds 352 bits, so the first segment takes at
/// most 39 characters and the host 29.
pub const MAX_HOST_CHARS: usize = 29;
/// Bytes of the offer secret: 80 bits.
const SECRET_BYTES: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    #[error(
        "a pairing offer is already open (until {expires}); revoke it, wait, or start with --replace"
    )]
    OfferOpen { expires: String },
    #[error("the offer lifetime must be between 10 s and 10 min, not {0} s")]
    BadTtl(u64),
    #[error(
        "the host {0:?} is too long or not a host name for the QR code (at most {MAX_HOST_CHARS} characters with the port): set a shorter [server] public_url"
    )]
    BadHost(String),
    /// The secret matched no open offer. Said to the client in the same words as an
    /// expired or spent offer, so a guesser learns nothing.
    #[error("the pairing code is wrong, expired or already used")]
    WrongSecret,
    #[error("the pairing code is wrong, expired or already used")]
    Expired,
    #[error("no pairing claim {0}")]
    NoClaim(String),
    #[error("the pairing claim {0} is not waiting for confirmation")]
    NotWaiting(String),
    #[error("too many pairing claims are waiting; confirm or refuse them first")]
    TooManyClaims,
    /// Too many claims against the open offer, from all addresses together.
    #[error("too many pairing attempts; retry in {} s", .0.as_secs().max(1))]
    TooManyGuesses(Duration),
    #[error("this phone polls too often; retry in {} s", .0.as_secs().max(1))]
    TooManyPolls(Duration),
    #[error(transparent)]
    Device(#[from] PairedError),
}

/// An open offer, as the person who made it sees it (once, with its secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairingOffer {
    pub id: String,
    /// Where the phone reaches this gateway, as the QR names it (`HOST[:PORT]`).
    pub host: String,
    /// `https` or `http` (TLS off).
    pub scheme: String,
    #[serde(serialize_with = "expose")]
    pub secret: Secret,
    pub scopes: Scopes,
    pub expires: i64,
    pub expires_at: String,
}

fn expose<S: serde::Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

impl PairingOffer {
    /// The URL the QR code carries: uppercase throughout (scheme and host are
    /// case-insensitive, `/P` is served as well as `/p`, the secret is uppercase
    /// base32), so all of it but the `#` encodes in QR's alphanumeric mode.
    pub fn qr_payload(&self) -> String {
        format!(
            "{}://{}/P#{}",
            self.scheme.to_ascii_uppercase(),
            self.host.to_ascii_uppercase(),
            self.secret.expose()
        )
    }
}

/// `payload` as a version 3 QR code at error correction M, the largest a 128x64
/// display shows at 2 pixels a module: runs of alphanumeric characters in alphanumeric
/// segments, everything else in byte segments (the layout the display draws first). The
/// segments are chosen here, not by the crate's optimizer, so that what fits does not
/// depend on its heuristics.
pub fn qr_code(payload: &str) -> Result<qrcode::QrCode, qrcode::types::QrError> {
    let mut bits = qrcode::bits::Bits::new(qrcode::Version::Normal(3));
    crate::hardware::qr::push_runs(&mut bits, payload.as_bytes())?;
    bits.push_terminator(qrcode::EcLevel::M)?;
    qrcode::QrCode::with_bits(bits, qrcode::EcLevel::M)
}

/// Whether `payload` fits a version 3 QR code at error correction M.
pub fn fits_display(payload: &str) -> bool {
    qr_code(payload).is_ok()
}

/// The open offer without its secret, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferView {
    pub id: String,
    pub owner: String,
    pub scopes: Scopes,
    pub created: String,
    pub expires: i64,
}

/// A claim waiting for a person, for the admin API, the CLI and the display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimView {
    pub id: String,
    pub device_name: String,
    /// The code the phone shows; the person compares it before confirming.
    pub code: String,
    pub owner: String,
    pub key_fingerprint: String,
    pub requested_scopes: Scopes,
    pub expires: i64,
}

/// What a phone learns right after its claim.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimStarted {
    pub id: String,
    /// Shown only to the claiming phone; it polls with it.
    #[serde(serialize_with = "expose")]
    pub poll_token: Secret,
    pub code: String,
    pub expires: i64,
    /// Set when no confirmation is needed: the device's tokens at once.
    pub tokens: Option<DeviceTokens>,
}

/// A claim's state as its phone polls it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ClaimStatus {
    Waiting { code: String, expires: i64 },
    Confirmed { tokens: DeviceTokens },
    Refused,
    Expired,
}

/// What the owner's connected clients hear: the device events of `auth::paired`.
pub use crate::auth::paired::DeviceEvent as PairingEvent;

#[derive(Debug)]
struct OpenOffer {
    id: String,
    secret_hash: String,
    owner: String,
    owner_id: String,
    scopes: Scopes,
    created: String,
    expires: i64,
    /// The QR payload, kept while the offer is open so the display can show it.
    payload: Secret,
}

/// What the device's display should show for pairing, if anything: the open offer's
/// QR, or the claim a short press would confirm (only when exactly one waits, so the
/// press can never confirm a phone the display did not name).
#[derive(Debug, Clone, PartialEq)]
pub enum Showing {
    Offer {
        payload: Secret,
        expires: i64,
    },
    Confirm {
        id: String,
        device: String,
        code: String,
        expires: i64,
    },
    /// Several claims wait; the person confirms them elsewhere, by their codes.
    SeveralWaiting(usize),
}

#[derive(Debug)]
enum ClaimState {
    Waiting,
    Confirmed(Box<DeviceTokens>),
    Refused,
}

#[derive(Debug)]
struct PendingClaim {
    id: String,
    poll_hash: String,
    code: String,
    device_name: String,
    public_key: DevicePublicKey,
    owner: String,
    owner_id: String,
    granted: Scopes,
    requested: Scopes,
    expires: i64,
    state: ClaimState,
}

impl PendingClaim {
    fn view(&self) -> ClaimView {
        ClaimView {
            id: self.id.clone(),
            device_name: self.device_name.clone(),
            code: self.code.clone(),
            owner: self.owner.clone(),
            key_fingerprint: self.public_key.fingerprint(),
            requested_scopes: self.requested,
            expires: self.expires,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    offer: Option<OpenOffer>,
    claims: HashMap<String, PendingClaim>,
}

/// The pairing service of a running gateway (offers live in memory: a restart ends
/// them, which is what a short-lived one-time code should do).
#[derive(Debug)]
pub struct Pairing {
    clock: SharedClock,
    config: PairingConfig,
    devices: Arc<PairedDevices>,
    state: Mutex<State>,
    guard: guard::Guard,
}

/// A new offer's parameters.
#[derive(Debug, Clone)]
pub struct OfferRequest {
    pub owner: String,
    /// The owner's account id; empty for the built-in principal of token and none modes.
    pub owner_id: String,
    pub host: String,
    pub scheme: String,
    pub scopes: Scopes,
    pub ttl: Option<Duration>,
    pub replace: bool,
}

/// A claim as the phone sends it.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub secret: String,
    pub device_name: String,
    pub public_key: DevicePublicKey,
    pub requested: Scopes,
}

fn base32_secret() -> Secret {
    let mut bytes = [0u8; SECRET_BYTES];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    Secret::new(data_encoding::BASE32_NOPAD.encode(&bytes))
}

fn short_code() -> String {
    let mut bytes = [0u8; 4];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    format!("{:06}", u32::from_be_bytes(bytes) % 1_000_000)
}

/// A host the QR may carry: a DNS name or address with an optional port, short enough.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= MAX_HOST_CHARS
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

impl Pairing {
    pub fn new(config: &PairingConfig, devices: Arc<PairedDevices>, clock: SharedClock) -> Self {
        Pairing {
            guard: guard::Guard::new(clock.clone()),
            clock,
            config: config.clone(),
            devices,
            state: Mutex::new(State::default()),
        }
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drops what has expired: the offer, and claims past their time.
    fn sweep(state: &mut State, now: i64) {
        if state.offer.as_ref().is_some_and(|o| o.expires <= now) {
            state.offer = None;
        }
        state.claims.retain(|_, claim| claim.expires > now);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<PairingEvent> {
        self.devices.subscribe()
    }

    /// Opens an offer. Refused while another is open unless `replace` is set.
    pub fn start(&self, request: OfferRequest) -> Result<PairingOffer, PairingError> {
        let ttl = request.ttl.unwrap_or(self.config.offer_ttl);
        if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
            return Err(PairingError::BadTtl(ttl.as_secs()));
        }
        if !valid_host(&request.host) {
            return Err(PairingError::BadHost(
                request.host.chars().take(80).collect(),
            ));
        }
        let now = self.now();
        let mut state = self.state();
        Self::sweep(&mut state, now);
        if let (Some(open), false) = (&state.offer, request.replace) {
            return Err(PairingError::OfferOpen {
                expires: time::OffsetDateTime::from_unix_timestamp(open.expires)
                    .map(rfc3339)
                    .unwrap_or_default(),
            });
        }
        let secret = base32_secret();
        let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(600);
        let offer = PairingOffer {
            id: random_id(8),
            host: request.host.clone(),
            scheme: request.scheme.clone(),
            secret,
            scopes: request.scopes,
            expires: now + ttl_secs,
            expires_at: time::OffsetDateTime::from_unix_timestamp(now + ttl_secs)
                .map(rfc3339)
                .unwrap_or_default(),
        };
        if !fits_display(&offer.qr_payload()) {
            return Err(PairingError::BadHost(request.host));
        }
        state.offer = Some(OpenOffer {
            id: offer.id.clone(),
            secret_hash: opaque::hash(offer.secret.expose()),
            owner: request.owner,
            owner_id: request.owner_id,
            scopes: request.scopes,
            created: rfc3339(self.clock.now()),
            expires: offer.expires,
            payload: Secret::new(offer.qr_payload()),
        });
        Ok(offer)
    }

    /// The open offer, if any.
    pub fn offer(&self) -> Option<OfferView> {
        let mut state = self.state();
        Self::sweep(&mut state, self.now());
        state.offer.as_ref().map(|o| OfferView {
            id: o.id.clone(),
            owner: o.owner.clone(),
            scopes: o.scopes,
            created: o.created.clone(),
            expires: o.expires,
        })
    }

    /// What the display should show now: a waiting claim before an open offer, since a
    /// short press acts on the claim; `None` when pairing has nothing to show.
    pub fn showing(&self) -> Option<Showing> {
        let mut state = self.state();
        Self::sweep(&mut state, self.now());
        let mut waiting = state
            .claims
            .values()
            .filter(|c| matches!(c.state, ClaimState::Waiting));
        match (waiting.next(), waiting.count()) {
            (Some(claim), 0) => {
                return Some(Showing::Confirm {
                    id: claim.id.clone(),
                    device: claim.device_name.clone(),
                    code: claim.code.clone(),
                    expires: claim.expires,
                });
            }
            (Some(_), more) => return Some(Showing::SeveralWaiting(more + 1)),
            (None, _) => {}
        }
        state.offer.as_ref().map(|o| Showing::Offer {
            payload: o.payload.clone(),
            expires: o.expires,
        })
    }

    /// Ends the open offer `id`; `false` if it is not the open one.
    pub fn cancel(&self, id: &str) -> bool {
        let mut state = self.state();
        if state.offer.as_ref().is_some_and(|o| o.id == id) {
            state.offer = None;
            true
        } else {
            false
        }
    }

    /// Claims the open offer with its secret. The offer is spent by a right secret,
    /// whatever follows; a wrong one leaves it open for its owner.
    pub fn claim(&self, request: ClaimRequest) -> Result<ClaimStarted, PairingError> {
        let now = self.now();
        let presented = request.secret.trim().to_ascii_uppercase();
        let mut state = self.state();
        let Some(offer) = &state.offer else {
            return Err(PairingError::WrongSecret);
        };
        // Checked before the secret, so a guesser past the budget learns nothing.
        self.guard.claim().map_err(PairingError::TooManyGuesses)?;
        let matches: bool = opaque::hash(&presented)
            .as_bytes()
            .ct_eq(offer.secret_hash.as_bytes())
            .into();
        if !matches {
            return Err(PairingError::WrongSecret);
        }
        if offer.expires <= now {
            state.offer = None;
            return Err(PairingError::Expired);
        }
        state.claims.retain(|_, claim| claim.expires > now);
        if state.claims.len() >= MAX_CLAIMS {
            return Err(PairingError::TooManyClaims);
        }
        let Some(offer) = state.offer.take() else {
            return Err(PairingError::WrongSecret);
        };
        let device_name = crate::auth::paired::clean_name(&request.device_name)?;
        let poll = opaque::mint_for("aispoll", &random_id(8));
        let mut claim = PendingClaim {
            id: random_id(8),
            poll_hash: poll.secret_hash,
            code: short_code(),
            device_name,
            public_key: request.public_key,
            owner: offer.owner,
            owner_id: offer.owner_id,
            granted: if offer.scopes.is_empty() {
                crate::auth::paired::default_scopes()
            } else {
                offer.scopes
            },
            requested: request.requested,
            expires: now + CLAIM_TTL_SECS,
            state: ClaimState::Waiting,
        };
        let tokens = if self.config.confirm {
            None
        } else {
            let (_, tokens) = self.pair(&claim)?;
            claim.state = ClaimState::Confirmed(Box::new(tokens.clone()));
            Some(tokens)
        };
        let started = ClaimStarted {
            id: claim.id.clone(),
            poll_token: poll.plaintext,
            code: claim.code.clone(),
            expires: claim.expires,
            tokens,
        };
        if started.tokens.is_some() {
            // Nothing left to collect: the tokens went out with this answer.
            claim.state = ClaimState::Refused;
            claim.expires = now;
        }
        state.claims.insert(claim.id.clone(), claim);
        Ok(started)
    }

    fn pair(&self, claim: &PendingClaim) -> Result<(PairedDevice, DeviceTokens), PairingError> {
        let (device, tokens) = self.devices.create(
            &claim.owner,
            &claim.owner_id,
            &claim.device_name,
            claim.public_key.clone(),
            claim.granted,
            claim.requested,
        )?;
        self.devices.announce(PairingEvent::DevicePaired {
            owner: device.owner.clone(),
            device_id: device.id.clone(),
            name: device.name.clone(),
        });
        Ok((device, tokens))
    }

    /// Claims waiting for a person.
    pub fn pending(&self) -> Vec<ClaimView> {
        let mut state = self.state();
        Self::sweep(&mut state, self.now());
        let mut views: Vec<ClaimView> = state
            .claims
            .values()
            .filter(|c| matches!(c.state, ClaimState::Waiting))
            .map(PendingClaim::view)
            .collect();
        views.sort_by_key(|v| v.expires);
        views
    }

    /// Confirms a waiting claim (an admin's click or the button): the device is paired
    /// and its phone collects the tokens at its next poll.
    pub fn confirm(&self, id: &str) -> Result<PairedDevice, PairingError> {
        let mut state = self.state();
        Self::sweep(&mut state, self.now());
        let claim = state
            .claims
            .get_mut(id)
            .ok_or_else(|| PairingError::NoClaim(id.chars().take(64).collect()))?;
        if !matches!(claim.state, ClaimState::Waiting) {
            return Err(PairingError::NotWaiting(id.to_string()));
        }
        let (device, tokens) = self.pair(claim)?;
        claim.state = ClaimState::Confirmed(Box::new(tokens));
        Ok(device)
    }

    /// Refuses a waiting claim; its phone learns so at its next poll.
    pub fn refuse(&self, id: &str) -> Result<ClaimView, PairingError> {
        let mut state = self.state();
        Self::sweep(&mut state, self.now());
        let claim = state
            .claims
            .get_mut(id)
            .ok_or_else(|| PairingError::NoClaim(id.chars().take(64).collect()))?;
        if !matches!(claim.state, ClaimState::Waiting) {
            return Err(PairingError::NotWaiting(id.to_string()));
        }
        claim.state = ClaimState::Refused;
        Ok(claim.view())
    }

    /// A claim's state for the phone holding its poll token, asked `from` an address
    /// (as the server counts clients; limited per address). Confirmed tokens are handed
    /// out once; the claim is gone after that.
    pub fn poll(
        &self,
        from: std::net::IpAddr,
        id: &str,
        poll_token: &str,
    ) -> Result<ClaimStatus, PairingError> {
        self.guard.poll(from).map_err(PairingError::TooManyPolls)?;
        let now = self.now();
        let mut state = self.state();
        let unknown = || PairingError::NoClaim(id.chars().take(64).collect());
        let claim = state.claims.get(id).ok_or_else(unknown)?;
        let (_, secret) = opaque::parse("aispoll", poll_token).ok_or_else(unknown)?;
        let token_ok: bool = opaque::hash(secret)
            .as_bytes()
            .ct_eq(claim.poll_hash.as_bytes())
            .into();
        if !token_ok {
            return Err(unknown());
        }
        if claim.expires <= now {
            state.claims.remove(id);
            return Ok(ClaimStatus::Expired);
        }
        match &claim.state {
            ClaimState::Waiting => Ok(ClaimStatus::Waiting {
                code: claim.code.clone(),
                expires: claim.expires,
            }),
            ClaimState::Refused => {
                state.claims.remove(id);
                Ok(ClaimStatus::Refused)
            }
            ClaimState::Confirmed(_) => match state.claims.remove(id).map(|c| c.state) {
                Some(ClaimState::Confirmed(tokens)) => {
                    Ok(ClaimStatus::Confirmed { tokens: *tokens })
                }
                _ => Err(unknown()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::paired::default_scopes;

    const LOCAL: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn service(confirm: bool) -> (crate::auth::testing::Fixture, Pairing) {
        let f = crate::auth::testing::fixture("");
        let devices =
            Arc::new(PairedDevices::open(&f.store, f.accounts.clone(), f.shared.clone()).unwrap());
        let config = PairingConfig {
            offer_ttl: Duration::from_secs(120),
            confirm,
            mdns: false,
        };
        let pairing = Pairing::new(&config, devices, f.shared.clone());
        (f, pairing)
    }

    fn offer_request(host: &str, replace: bool) -> OfferRequest {
        OfferRequest {
            owner: "local".into(),
            owner_id: String::new(),
            host: host.into(),
            scheme: "https".into(),
            scopes: Scopes::none(),
            ttl: None,
            replace,
        }
    }

    fn key() -> DevicePublicKey {
        use rcgen::PublicKeyData;
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        DevicePublicKey::from_spki(&pair.subject_public_key_info()).unwrap()
    }

    fn claim_with(secret: &str) -> ClaimRequest {
        ClaimRequest {
            secret: secret.into(),
            device_name: "phone".into(),
            public_key: key(),
            requested: Scopes::none(),
        }
    }

    #[test]
    fn the_payload_for_the_longest_accepted_host_fits_version_3_m_in_alphanumeric_mode() {
        let (_f, pairing) = service(true);
        let longest = format!("{}.local:65535", "a".repeat(MAX_HOST_CHARS - 12));
        assert_eq!(longest.len(), MAX_HOST_CHARS);
        let offer = pairing.start(offer_request(&longest, false)).unwrap();
        let payload = offer.qr_payload();
        assert_eq!(payload.len(), 56, "{payload}");
        assert!(
            payload
                .bytes()
                .filter(|b| *b != b'#')
                .all(|b| b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".contains(&b)),
            "{payload} leaves QR's alphanumeric set"
        );
        assert_eq!(payload.matches('#').count(), 1);
        let code = qr_code(&payload).unwrap();
        assert_eq!(code.width(), 29);
        assert_eq!(code.error_correction_level(), qrcode::EcLevel::M);
        let secret = payload.rsplit_once('#').unwrap().1;
        assert_eq!(secret.len(), 16, "80 bits of base32");
        assert!(
            pairing
                .start(offer_request(&format!("x{longest}"), true))
                .is_err_and(|e| matches!(e, PairingError::BadHost(_)))
        );
    }

    #[test]
    fn the_display_draws_the_same_version_3_m_modules_as_qr_code_for_the_longest_host() {
        use crate::hardware::QrMatrix;
        use crate::hardware::qr::Correction;
        let (_f, pairing) = service(true);
        let longest = format!("{}.local:65535", "a".repeat(MAX_HOST_CHARS - 12));
        // Secrets are random and some once spilled the display's code over to level L:
        // enough of them that such a secret turns up.
        for _ in 0..64 {
            let offer = pairing.start(offer_request(&longest, true)).unwrap();
            let payload = offer.qr_payload();
            let ours = qr_code(&payload).unwrap();
            let drawn = QrMatrix::encode(&payload).unwrap();
            assert_eq!(drawn.correction(), Correction::Medium, "{payload}");
            assert_eq!(drawn.width(), 29);
            let colors = ours.to_colors();
            for y in 0..29u32 {
                for x in 0..29u32 {
                    let module = colors[(y * 29 + x) as usize] == qrcode::Color::Dark;
                    assert_eq!(
                        drawn.is_dark(x, y),
                        module,
                        "module ({x}, {y}) of {payload}"
                    );
                }
            }
            match pairing.showing() {
                Some(Showing::Offer { payload: shown, .. }) => {
                    assert_eq!(shown.expose(), payload)
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn one_offer_at_a_time_replace_ends_the_first_and_a_claim_spends_it() {
        let (_f, pairing) = service(true);
        let first = pairing.start(offer_request("pi.local", false)).unwrap();
        assert!(matches!(
            pairing.start(offer_request("pi.local", false)),
            Err(PairingError::OfferOpen { .. })
        ));
        let second = pairing.start(offer_request("pi.local", true)).unwrap();
        assert!(matches!(
            pairing.claim(claim_with(first.secret.expose())),
            Err(PairingError::WrongSecret)
        ));
        let started = pairing
            .claim(claim_with(&second.secret.expose().to_lowercase()))
            .unwrap();
        assert!(started.tokens.is_none(), "waits for confirmation");
        assert!(matches!(
            pairing.claim(claim_with(second.secret.expose())),
            Err(PairingError::WrongSecret)
        ));
        let poll = started.poll_token.expose().to_string();
        assert!(matches!(
            pairing.poll(LOCAL, &started.id, &poll).unwrap(),
            ClaimStatus::Waiting { .. }
        ));
        assert_eq!(pairing.pending().len(), 1);
        let device = pairing.confirm(&started.id).unwrap();
        assert_eq!(device.scopes, default_scopes());
        assert!(matches!(
            pairing.poll(LOCAL, &started.id, &poll).unwrap(),
            ClaimStatus::Confirmed { .. }
        ));
        assert!(
            pairing.poll(LOCAL, &started.id, &poll).is_err(),
            "collected once"
        );
    }

    #[test]
    fn an_expired_offer_is_refused_and_without_confirmation_tokens_come_at_once() {
        let (f, pairing) = service(false);
        let offer = pairing.start(offer_request("pi.local", false)).unwrap();
        f.clock.advance(time::Duration::seconds(121));
        assert!(matches!(
            pairing.claim(claim_with(offer.secret.expose())),
            Err(PairingError::Expired)
        ));
        let offer = pairing.start(offer_request("pi.local", false)).unwrap();
        let started = pairing.claim(claim_with(offer.secret.expose())).unwrap();
        assert!(started.tokens.is_some());
        let mut ttl = offer_request("pi.local", true);
        ttl.ttl = Some(Duration::from_secs(601));
        assert!(matches!(pairing.start(ttl), Err(PairingError::BadTtl(601))));
    }
}
