//! Identity and access: who a request acts for and what it may do.
//!
//! This module owns passwords, accounts, sessions, API tokens, scopes and the first-run
//! claim. It decides; it never speaks HTTP (the server maps its answers to responses)
//! and never stores anything but hashes of credentials.
//!
//! [`Auth::resolve`] turns a presented credential into a [`Principal`]: a session access
//! token (JWT), an API token (`aisp_...`), or, in `token` mode, the one static token.
//! A credential that is presented but wrong is an error, never "anonymous".

pub mod claim;
pub mod device;
pub mod jwt;
pub mod opaque;
pub mod paired;
pub mod password;
pub mod scopes;
pub mod sessions;
pub mod strength;
#[cfg(test)]
pub(crate) mod testing;
pub mod throttle;
pub mod tokens;
pub mod users;

use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::clock::SharedClock;
use crate::config::{AuthConfig, AuthMode};
use crate::keys::secrets::Secrets;
use crate::secret::Secret;
use crate::store::Store;

use self::claim::Claim;
use self::device::DeviceFlow;
use self::jwt::{Claims, Jwt, JwtError};
use self::paired::{PairedDevices, PairedError};
use self::scopes::{Scope, Scopes};
use self::sessions::{SessionError, Sessions};
use self::tokens::{ApiTokens, TokenError};
use self::users::{AccountError, Accounts, KnownClient, UserRecord};

/// The [`Claims::sid`] prefix of tokens derived from an API token.
pub const TOKEN_SID: &str = "token:";
/// The [`Claims::sid`] prefix of tokens derived from a paired device's credential.
pub const DEVICE_SID: &str = "device:";
/// How long a client that signed in stays known (see [`Auth::remember_client`]).
pub const KNOWN_CLIENT_TTL_SECS: i64 = 180 * 86_400;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the credential is invalid, expired or revoked")]
    InvalidCredential,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Jwt(#[from] JwtError),
    #[error(transparent)]
    Paired(#[from] PairedError),
}

/// How a principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Session(Box<Claims>),
    ApiToken {
        id: String,
    },
    StaticToken,
    /// `[auth] mode = "none"`: every request acts as the built-in `local` admin.
    Local,
    /// A phone paired by QR code, with its access token (see `paired`).
    PairedDevice {
        id: String,
    },
}

/// Who a request acts for and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub username: String,
    pub scopes: Scopes,
    pub via: Via,
}

impl Principal {
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.allows(scope)
    }

    /// The API token behind this principal: the one it presented, or the one a session
    /// (a WebSocket ticket) was derived from, so limits on a token follow it there.
    pub fn api_token_id(&self) -> Option<&str> {
        match &self.via {
            Via::ApiToken { id } => Some(id),
            Via::Session(claims) => claims.sid.as_deref()?.strip_prefix(TOKEN_SID),
            Via::StaticToken | Via::Local | Via::PairedDevice { .. } => None,
        }
    }

    /// A short label for the audit log's `actor` field.
    pub fn actor(&self) -> String {
        match &self.via {
            Via::Session(_) => format!("user:{}", self.username),
            Via::ApiToken { id } => format!("user:{} token:{id}", self.username),
            Via::StaticToken => "static-token".into(),
            Via::Local => "local".into(),
            Via::PairedDevice { id } => format!("user:{} device:{id}", self.username),
        }
    }
}

/// Every identity service, built once.
#[derive(Debug)]
pub struct Auth {
    pub mode: AuthMode,
    pub accounts: Accounts,
    pub jwt: Arc<Jwt>,
    pub sessions: Sessions,
    pub tokens: ApiTokens,
    pub claim: Claim,
    pub device: DeviceFlow,
    pub paired: Arc<PairedDevices>,
    static_token: Option<Secret>,
    clock: SharedClock,
}

impl Auth {
    pub fn open(
        config: &AuthConfig,
        store: &Store,
        secrets: Arc<Secrets>,
        accounts: Accounts,
        clock: SharedClock,
    ) -> Result<Auth, AuthError> {
        let jwt = Arc::new(Jwt::open(
            store,
            secrets,
            config.jwt_secret.as_ref(),
            clock.clone(),
        )?);
        let sessions = Sessions::open(
            store,
            jwt.clone(),
            accounts.clone(),
            clock.clone(),
            config.access_token_ttl,
            config.refresh_token_ttl,
        )?;
        let tokens = ApiTokens::open(store, accounts.clone(), clock.clone())?;
        let paired = Arc::new(PairedDevices::open(store, accounts.clone(), clock.clone())?);
        Ok(Auth {
            mode: config.mode,
            accounts,
            jwt,
            sessions,
            tokens,
            claim: Claim::new(clock.clone(), config.claim_code_ttl),
            device: DeviceFlow::new(
                clock.clone(),
                config.device_code_ttl,
                config.device_poll_interval,
            ),
            paired,
            static_token: config.token.clone(),
            clock,
        })
    }

    /// A token for a client that just logged in as `user`: presented at a later login of
    /// the same account, it exempts that client from the account's guess budget (see
    /// `users`). It grants nothing else: its audience is its own, it carries no scope,
    /// and a new epoch (password change, disable) or signing key ends it.
    pub fn remember_client(&self, user: &UserRecord) -> Result<String, AuthError> {
        let (token, _) = self.jwt.issue(
            jwt::Audience::KnownClient,
            &user.username,
            &user.id,
            user.epoch,
            Scopes::none(),
            KNOWN_CLIENT_TTL_SECS,
        )?;
        Ok(token)
    }

    /// What a presented known-client token vouches for; `None` for anything invalid,
    /// which then counts as no token at all.
    pub fn known_client(&self, token: &str) -> Option<KnownClient> {
        let claims = self.jwt.verify(token, jwt::Audience::KnownClient).ok()?;
        Some(KnownClient {
            uid: claims.uid,
            epoch: claims.epoch,
            id: claims.jti,
        })
    }

    /// The principal behind a presented credential.
    pub fn resolve(&self, credential: &str) -> Result<Principal, AuthError> {
        if self.mode != AuthMode::None && credential.starts_with(paired::ACCESS_PREFIX) {
            let (device, scopes) = self.paired.authenticate(credential)?;
            return Ok(Principal {
                username: device.owner,
                scopes,
                via: Via::PairedDevice { id: device.id },
            });
        }
        match self.mode {
            AuthMode::None => Ok(Principal {
                username: "local".into(),
                scopes: Scopes::all(),
                via: Via::Local,
            }),
            AuthMode::Token => {
                let expected = self
                    .static_token
                    .as_ref()
                    .ok_or(AuthError::InvalidCredential)?;
                if bool::from(credential.as_bytes().ct_eq(expected.expose().as_bytes())) {
                    Ok(Principal {
                        username: "token".into(),
                        scopes: Scopes::all(),
                        via: Via::StaticToken,
                    })
                } else {
                    Err(AuthError::InvalidCredential)
                }
            }
            AuthMode::Password | AuthMode::Device => {
                if credential.starts_with(tokens::TOKEN_PREFIX) {
                    let (record, owner) = self.tokens.authenticate(credential)?;
                    Ok(Principal {
                        username: owner.username,
                        scopes: Scopes::from_iter(
                            record.scopes.iter().filter(|s| owner.scopes.allows(*s)),
                        ),
                        via: Via::ApiToken { id: record.id },
                    })
                } else {
                    let (claims, user) = self.sessions.check_access(credential)?;
                    Ok(Principal {
                        username: user.username,
                        scopes: Scopes::from_iter(
                            claims.scopes.iter().filter(|s| user.scopes.allows(*s)),
                        ),
                        via: Via::Session(Box::new(claims)),
                    })
                }
            }
        }
    }

    /// A one-time WebSocket ticket for `principal`, lasting `ttl_secs`, bound to the
    /// session or API token the principal came with.
    pub fn ws_ticket(&self, principal: &Principal, ttl_secs: i64) -> Result<String, AuthError> {
        let (uid, epoch) = match self.accounts.get(&principal.username)? {
            Some(user) => (user.id, user.epoch),
            None => (String::new(), 0),
        };
        let sid = match &principal.via {
            Via::Session(claims) => claims.sid.clone(),
            Via::ApiToken { id } => Some(format!("{TOKEN_SID}{id}")),
            Via::PairedDevice { id } => Some(format!("{DEVICE_SID}{id}")),
            Via::StaticToken | Via::Local => None,
        };
        let (ticket, _) = self.jwt.issue_bound(
            jwt::Audience::WsTicket,
            &principal.username,
            &uid,
            epoch,
            principal.scopes,
            ttl_secs,
            sid,
        )?;
        Ok(ticket)
    }

    /// Redeems a WebSocket ticket: valid, unexpired, never used before, and its account
    /// (and session or token) still standing. A second use is refused.
    pub fn redeem_ws_ticket(&self, ticket: &str) -> Result<Principal, AuthError> {
        let claims = self.jwt.verify(ticket, jwt::Audience::WsTicket)?;
        if !self.sessions.spend_once(&claims.jti, claims.exp)? {
            return Err(AuthError::InvalidCredential);
        }
        let principal = match self.mode {
            AuthMode::None | AuthMode::Token => Principal {
                username: claims.sub.clone(),
                scopes: claims.scopes,
                via: if self.mode == AuthMode::None {
                    Via::Local
                } else {
                    Via::StaticToken
                },
            },
            AuthMode::Password | AuthMode::Device => Principal {
                username: claims.sub.clone(),
                scopes: claims.scopes,
                via: Via::Session(Box::new(claims)),
            },
        };
        if !self.still_stands(&principal) {
            return Err(AuthError::InvalidCredential);
        }
        Ok(principal)
    }

    /// Whether what `principal` authenticated with still holds: for long-lived
    /// connections, which must end when their session or token is revoked, their
    /// account disabled or its password changed.
    pub fn still_stands(&self, principal: &Principal) -> bool {
        match &principal.via {
            Via::StaticToken | Via::Local => true,
            Via::ApiToken { id } => self.tokens.is_active(id).unwrap_or(false),
            Via::PairedDevice { id } => self.paired.is_active(id).unwrap_or(false),
            Via::Session(claims) => {
                let account_stands =
                    self.accounts
                        .get(&claims.sub)
                        .ok()
                        .flatten()
                        .is_some_and(|user| {
                            user.id == claims.uid && user.epoch == claims.epoch && !user.disabled
                        });
                let source_stands = match claims.sid.as_deref() {
                    Some(sid) => match (
                        sid.strip_prefix(sessions::FAMILY_SID),
                        sid.strip_prefix(TOKEN_SID),
                    ) {
                        (Some(family), _) => self.sessions.family_alive(family).unwrap_or(false),
                        (_, Some(token)) => self.tokens.is_active(token).unwrap_or(false),
                        _ => sid
                            .strip_prefix(DEVICE_SID)
                            .is_some_and(|id| self.paired.is_active(id).unwrap_or(false)),
                    },
                    // Unbound: stands only as long as the token itself.
                    None => claims.exp > self.clock.now().unix_timestamp(),
                };
                account_stands && source_stands
            }
        }
    }

    /// True when people log in with passwords (password and device modes).
    pub fn has_accounts(&self) -> bool {
        matches!(self.mode, AuthMode::Password | AuthMode::Device)
    }
}

impl Auth {
    /// Wakes whenever a token is revoked or a login ends, so that long-lived
    /// connections re-check [`Auth::still_stands`] at once.
    pub fn revocations(&self) -> RevocationWatch {
        RevocationWatch::new(vec![self.tokens.revocations(), self.sessions.revocations()])
    }
}

/// Wakes when any credential may have been revoked (see [`Auth::revocations`]).
#[derive(Debug)]
pub struct RevocationWatch {
    receivers: Vec<tokio::sync::watch::Receiver<u64>>,
}

impl RevocationWatch {
    pub fn new(receivers: Vec<tokio::sync::watch::Receiver<u64>>) -> Self {
        Self { receivers }
    }

    /// One that never wakes.
    pub fn never() -> Self {
        Self::new(Vec::new())
    }

    /// Returns once a revocation happened since the last call (or since it was made).
    pub async fn changed(&mut self) {
        let waits = self
            .receivers
            .iter_mut()
            .filter(|r| r.has_changed().is_ok())
            .map(|r| Box::pin(r.changed()))
            .collect::<Vec<_>>();
        if waits.is_empty() {
            return std::future::pending().await;
        }
        let (result, _, _) = futures_util::future::select_all(waits).await;
        if result.is_err() {
            // A sender went away with its service: nothing more will come from it.
            std::future::pending::<()>().await;
        }
    }
}
