//! The admin socket's pairing commands that need the running gateway: opening an
//! offer (`pair start`), confirming a claim (`pair confirm`) and listing the live offer
//! and claims beside the devices (`pair list`). Each is audited like every admin
//! command; the pairing service decides.

use crate::admin::protocol::{
    AdminRequest, AdminResponse, CommandError, IssuedOffer, PairingState,
};
use crate::audit::{AuditEvent, Outcome};
use crate::config::AuthMode;
use crate::pairing::OfferRequest;
use crate::server::state::App;

/// Where phones reach the gateway when `--host` is not given: `[server] public_url`'s
/// authority, else `HOSTNAME.local` with the port the gateway listens on (which the
/// configured one is not when it is 0).
pub fn default_host(app: &App) -> Result<String, CommandError> {
    let server = &app.config().server;
    if let Some(authority) = server
        .public_url
        .as_deref()
        .and_then(|url| url.parse::<http::Uri>().ok())
        .and_then(|uri| uri.authority().map(|a| a.to_string()))
    {
        return Ok(authority);
    }
    let port = app.listening.get().map_or(server.bind.port(), |a| a.port());
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty());
    match (host, port) {
        (Some(host), 443) => Ok(format!("{host}.local")),
        (Some(host), port) if port != 0 => Ok(format!("{host}.local:{port}")),
        _ => Err(CommandError::InvalidRequest {
            reason: "the gateway's address for phones is unknown: pass --host HOST[:PORT] or set [server] public_url".into(),
        }),
    }
}

/// Runs a pairing command on the live gateway, auditing it.
pub fn live(app: &App, actor: &str, request: AdminRequest) -> Result<AdminResponse, CommandError> {
    let name = request.name();
    let target = request.target();
    let result = run(app, request);
    let mut event = AuditEvent::new(&format!("admin.{name}"))
        .actor(actor)
        .outcome(if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        });
    event = match &result {
        Ok(AdminResponse::PairingOffer(issued)) => event.target(issued.offer.id.clone()),
        _ => event.target(target),
    };
    if let Err(err) = &result {
        event = event.details(serde_json::json!({ "error": err.to_string() }));
    }
    if name != "pairing.list" || result.is_err() {
        app.audit().record_or_log(event);
    }
    result
}

fn run(app: &App, request: AdminRequest) -> Result<AdminResponse, CommandError> {
    let command = request.name();
    let failed = |err: &dyn std::fmt::Display| CommandError::failed(command, err);
    match request {
        AdminRequest::PairStart {
            scopes,
            ttl,
            host,
            owner,
            replace,
        } => {
            let auth = &app.services.auth;
            let (owner, owner_id) = match auth.mode {
                AuthMode::Password | AuthMode::Device => {
                    let user = match owner {
                        Some(name) => auth
                            .accounts
                            .get(&name)
                            .map_err(|e| failed(&e))?
                            .ok_or(CommandError::NoSuchUser { name })?,
                        None => crate::admin::owner::sole_admin(&app.services)?,
                    };
                    if !crate::auth::scopes::Scopes::grantable_by(scopes, user.scopes) {
                        return Err(failed(&"an offer cannot grant scopes its owner lacks"));
                    }
                    (user.username, user.id)
                }
                AuthMode::Token => ("token".to_string(), String::new()),
                AuthMode::None => ("local".to_string(), String::new()),
            };
            let ttl = ttl
                .as_deref()
                .map(crate::config::parse_duration)
                .transpose()
                .map_err(|_| CommandError::InvalidDuration {
                    text: ttl.clone().unwrap_or_default(),
                })?;
            let host = match host {
                Some(host) => host,
                None => default_host(app)?,
            };
            let offer = app
                .pairing
                .start(OfferRequest {
                    owner,
                    owner_id,
                    host,
                    scheme: app.config().scheme().to_string(),
                    scopes,
                    ttl,
                    replace,
                })
                .map_err(|e| failed(&e))?;
            let payload = offer.qr_payload();
            Ok(AdminResponse::PairingOffer(IssuedOffer { offer, payload }))
        }
        AdminRequest::PairConfirm { id } => app
            .pairing
            .confirm(&id)
            .map(AdminResponse::PairingConfirmed)
            .map_err(|e| failed(&e)),
        AdminRequest::PairList => Ok(AdminResponse::Pairing(PairingState {
            devices: app.services.auth.paired.list().map_err(|e| failed(&e))?,
            offer: app.pairing.offer(),
            claims: app.pairing.pending(),
        })),
        other => Err(CommandError::InvalidRequest {
            reason: format!("{} is not a pairing command", other.name()),
        }),
    }
}
