//! The admin socket: how the CLI drives a running gateway, and the commands it carries.
//!
//! A running gateway holds the store, so state-changing CLI commands cannot open it;
//! they send an [`AdminRequest`] as one versioned JSON line ([`protocol`]) over a Unix socket in the runtime
//! directory (mode 0600, in a 0700 directory, and the peer's uid is checked: only root
//! and the gateway's own user are served). The peer must also be in the gateway's own
//! user namespace: a sandboxed run's one id maps to the service user on a host that
//! cannot give it another, so the uid alone would let it through. With no gateway running the CLI runs the
//! same [`execute`] against the store directly, so both paths behave alike. Every
//! command except `status` is audited with the caller's uid. This module never parses
//! command-line flags and never speaks HTTP.
//!
//! One typed answer per request ([`AdminResponse`] or [`CommandError`]), except that a
//! tool call waiting for approval first sends one [`PendingApproval`] line per request
//! it waits for, so the console can say what it waits for and where to answer instead
//! of looking hung.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::audit::{AuditEvent, Outcome};
use crate::auth::tokens::{LimitsChanger, TokenLimits, TokenTerms};
use crate::config::Config;
use crate::server::state::{App, Services, tls_audit_event};
use crate::store::SecretName;
use crate::tls::{Tls, TlsSummary, summarize_files};

mod client;
mod owner;
pub(crate) mod pairing;
pub mod protocol;

use owner::sole_admin;

pub use client::{AdminError, send, send_noting};
pub use protocol::{
    AdminRequest, AdminResponse, CommandError, IssuedToken, PendingApproval, SecretEntry,
    StatusReport,
};
use protocol::{MAX_REQUEST_BYTES, Reply, ReplyLine};

/// Where the certificate commands find TLS: the live service, or files on disk.
#[derive(Debug)]
pub enum TlsAccess<'a> {
    Live(Option<&'a Tls>),
    Offline,
}

/// The socket path for a configuration.
pub fn socket_path(config: &Config) -> PathBuf {
    config.storage.runtime_dir.join("admin.sock")
}

/// Runs one command against open services; used by the socket and the offline CLI.
pub fn execute(
    services: &Services,
    tls: TlsAccess<'_>,
    actor: &str,
    request: AdminRequest,
) -> Result<AdminResponse, CommandError> {
    let name = request.name();
    let target = request.target();
    let result = run(services, tls, request);
    if name != "status" {
        let outcome = if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let mut event = AuditEvent::new(&format!("admin.{name}"))
            .actor(actor)
            .target(target)
            .outcome(outcome);
        if let Err(err) = &result {
            event = event.details(serde_json::json!({ "error": err.to_string() }));
        }
        services.audit.record_or_log(event);
    }
    result
}

fn run(
    services: &Services,
    tls: TlsAccess<'_>,
    request: AdminRequest,
) -> Result<AdminResponse, CommandError> {
    let command = request.name();
    let failed = |err: &dyn std::fmt::Display| CommandError::failed(command, err);
    match request {
        AdminRequest::Status => Ok(AdminResponse::Status(StatusReport {
            running: matches!(tls, TlsAccess::Live(_)),
            data_dir: services.config.storage.data_dir.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            sandbox: None,
        })),
        AdminRequest::AuditList { query } => services
            .audit
            .list(&query)
            .map(AdminResponse::AuditRecords)
            .map_err(|e| failed(&e)),
        AdminRequest::AuditVerify => services
            .audit
            .verify()
            .map(AdminResponse::AuditVerified)
            .map_err(|e| failed(&e)),
        AdminRequest::AuditExport => services
            .audit
            .export()
            .map(AdminResponse::AuditExport)
            .map_err(|e| failed(&e)),
        AdminRequest::AuditVerifyExport {
            seal,
            end_seq,
            end_hash,
        } => services
            .audit
            .verify_export_seal(&seal, end_seq, &end_hash)
            .map(AdminResponse::AuditVerified)
            .map_err(|e| failed(&e)),
        AdminRequest::CertShow => cert_summary(services, &tls).map(AdminResponse::Certificate),
        AdminRequest::CertRegenerate { ca } => {
            let events = match tls {
                TlsAccess::Live(Some(tls)) => tls.regenerate(ca).map_err(|e| failed(&e))?,
                TlsAccess::Live(None) => return Err(CommandError::TlsOff),
                TlsAccess::Offline => {
                    let config = &services.config;
                    let extra = config.tls.extra_names.clone();
                    let names: crate::tls::NameSource =
                        Arc::new(move || crate::tls::system_names(&extra));
                    let mut events = Vec::new();
                    if ca {
                        events.push(
                            crate::tls::replace_ca(
                                &config.tls,
                                &config.storage.data_dir,
                                &services.clock,
                                &names,
                            )
                            .map_err(|e| failed(&e))?,
                        );
                    }
                    let Some((tls, opened)) = Tls::open(
                        &config.tls,
                        &config.storage.data_dir,
                        services.clock.clone(),
                        names,
                    )
                    .map_err(|e| failed(&e))?
                    else {
                        return Err(CommandError::TlsOff);
                    };
                    // Opening issues a certificate when none fits; otherwise issue one now.
                    let issued = opened
                        .iter()
                        .any(|e| matches!(e, crate::tls::TlsEvent::ServerIssued { .. }));
                    events.extend(opened);
                    if !issued {
                        events.extend(tls.regenerate(false).map_err(|e| failed(&e))?);
                    }
                    events
                }
            };
            let mut issued = Vec::new();
            for event in events {
                let (crate::tls::TlsEvent::ServerIssued { fingerprint, .. }
                | crate::tls::TlsEvent::CaCreated { fingerprint }) = &event;
                issued.push(fingerprint.clone());
                services.audit.record_or_log(tls_audit_event(event));
            }
            Ok(AdminResponse::CertificatesIssued { issued })
        }
        AdminRequest::SecretsSet { name, value } => {
            let name = secret_name(&name)?;
            if value.is_empty() {
                return Err(CommandError::EmptySecret);
            }
            services
                .secrets
                .set(&name, &value)
                .map_err(|e| failed(&e))?;
            Ok(AdminResponse::SecretStored(SecretEntry {
                name: name.to_string(),
                key_id: services.secrets.key_id(),
            }))
        }
        AdminRequest::SecretsList => {
            let list = services.secrets.list().map_err(|e| failed(&e))?;
            Ok(AdminResponse::Secrets(
                list.into_iter()
                    .map(|(name, key_id)| SecretEntry {
                        name: name.to_string(),
                        key_id,
                    })
                    .collect(),
            ))
        }
        AdminRequest::SecretsRemove { name } => {
            let name = secret_name(&name)?;
            match services.secrets.remove(&name).map_err(|e| failed(&e))? {
                true => Ok(AdminResponse::SecretRemoved {
                    removed: name.to_string(),
                }),
                false => Err(CommandError::NoSuchSecret {
                    name: name.to_string(),
                }),
            }
        }
        AdminRequest::SecretsRotateMasterKey => services
            .secrets
            .rotate_master_key()
            .map(AdminResponse::MasterKeyRotated)
            .map_err(|e| failed(&e)),
        // Runs go to a live gateway's runner (see `handle_connection`); offline, the CLI
        // runs the sandbox itself.
        AdminRequest::PairStart { .. } | AdminRequest::PairConfirm { .. } => {
            Err(CommandError::NeedsGateway {
                what: "pairing offers and confirmations".into(),
            })
        }
        AdminRequest::SecurityAudit { fix } => {
            // Read-only here: the channels' secrets, whether or not a gateway runs.
            let channels = crate::gateway::channels::Channels::open(
                &services.store,
                services.config.channels.clone(),
                services.secrets.clone(),
                services.config.security.mode,
            )
            .map_err(|e| failed(&e))?;
            crate::security_audit::run(services_sources(services), None, &channels, fix)
                .map(AdminResponse::SecurityAudit)
                .map_err(|e| failed(&e))
        }
        AdminRequest::PairList => services
            .auth
            .paired
            .list()
            .map(|devices| {
                AdminResponse::Pairing(protocol::PairingState {
                    devices,
                    offer: None,
                    claims: Vec::new(),
                })
            })
            .map_err(|e| failed(&e)),
        AdminRequest::PairRevoke { id } => services
            .auth
            .paired
            .revoke(&id)
            .map(AdminResponse::DeviceRevoked)
            .map_err(|e| failed(&e)),
        AdminRequest::SandboxRun { .. } => Err(CommandError::NeedsGateway {
            what: "sandbox runs".into(),
        }),
        AdminRequest::ToolRun { .. } => Err(CommandError::NeedsGateway {
            what: "tool calls".into(),
        }),
        AdminRequest::BackupSnapshot => crate::keys::backup_crypto::seal_snapshot(
            &services.store,
            &services.config.storage.data_dir,
            &crate::clock::rfc3339(services.clock.now()),
        )
        .map(AdminResponse::BackupSnapshot)
        .map_err(|e| failed(&e)),
        AdminRequest::UserList => {
            let users = services.auth.accounts.list().map_err(|e| failed(&e))?;
            Ok(AdminResponse::Users(
                users.iter().map(|u| u.view()).collect(),
            ))
        }
        AdminRequest::UserAdd {
            name,
            password,
            scopes,
        } => {
            let created = services.auth.accounts.create(&name, &password, scopes);
            if created.is_ok() {
                // The owner now exists; the first-run claim code must not make another.
                services.auth.claim.cancel();
            }
            user_result(command, created)
        }
        AdminRequest::UserPasswd { name, password } => user_result(
            command,
            services.auth.accounts.set_password(&name, &password),
        ),
        AdminRequest::UserRemove { name } => {
            user_result(command, services.auth.accounts.remove(&name))
        }
        AdminRequest::UserDisable { name, disabled } => user_result(
            command,
            services.auth.accounts.set_disabled(&name, disabled),
        ),
        AdminRequest::UserUnlock { name } => {
            user_result(command, services.auth.accounts.unlock(&name))
        }
        AdminRequest::TokenCreate {
            owner,
            name,
            scopes,
            expires,
            requests_per_minute,
            tokens_per_day,
        } => {
            let auth = &services.auth;
            if auth.mode != crate::config::AuthMode::Password
                && auth.mode != crate::config::AuthMode::Device
            {
                return Err(CommandError::AccountsRequired);
            }
            let ttl = expires.as_deref().map(duration_secs).transpose()?;
            let owner = match owner {
                Some(owner) => auth
                    .accounts
                    .get(&owner)
                    .map_err(|e| failed(&e))?
                    .ok_or(CommandError::NoSuchUser { name: owner })?,
                None => sole_admin(services)?,
            };
            let (token, record) = auth
                .tokens
                .create(
                    &owner,
                    &name,
                    scopes,
                    owner.scopes,
                    TokenTerms {
                        ttl_secs: ttl,
                        limits: TokenLimits {
                            requests_per_minute,
                            tokens_per_day,
                        },
                    },
                    "console",
                )
                .map_err(|e| failed(&e))?;
            Ok(AdminResponse::TokenIssued(IssuedToken { record, token }))
        }
        AdminRequest::TokenList => services
            .auth
            .tokens
            .list()
            .map(AdminResponse::Tokens)
            .map_err(|e| failed(&e)),
        AdminRequest::TokenRevoke { id } => services
            .auth
            .tokens
            .revoke(&id)
            .map(AdminResponse::TokenRevoked)
            .map_err(|e| failed(&e)),
        AdminRequest::TokenLimit { id, change } => services
            .auth
            .tokens
            .set_limits(&id, change, LimitsChanger::Admin)
            .map(AdminResponse::TokenLimited)
            .map_err(|e| failed(&e)),
        AdminRequest::TokenRotate { name, grace } => {
            let grace = grace
                .as_deref()
                .map(duration_secs)
                .transpose()?
                .unwrap_or(3600);
            let (token, record) = services
                .auth
                .tokens
                .rotate(&name, grace, "console")
                .map_err(|e| failed(&e))?;
            Ok(AdminResponse::TokenIssued(IssuedToken { record, token }))
        }
        AdminRequest::SigningKeyRotate => {
            let longest = services.auth.sessions.access_ttl();
            let kid = services.auth.jwt.rotate(longest).map_err(|e| failed(&e))?;
            Ok(AdminResponse::SigningKeyRotated {
                kid,
                previous_valid_for: longest,
            })
        }
        AdminRequest::ClaimCode => match (&tls, services.auth.claim.current()) {
            (TlsAccess::Offline, _) => Err(CommandError::ClaimCodeNeedsGateway),
            (_, Some(code)) => Ok(AdminResponse::ClaimCode { code }),
            (_, None) => Err(CommandError::NoClaimCode),
        },
    }
}

fn secret_name(name: &str) -> Result<SecretName, CommandError> {
    SecretName::parse(name).map_err(|reason| CommandError::InvalidSecretName {
        name: name.to_string(),
        reason,
    })
}

fn duration_secs(text: &str) -> Result<i64, CommandError> {
    crate::config::parse_duration(text)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .filter(|secs| *secs > 0)
        .ok_or_else(|| CommandError::InvalidDuration {
            text: text.to_string(),
        })
}

fn user_result(
    command: &str,
    result: Result<crate::auth::users::UserRecord, crate::auth::users::AccountError>,
) -> Result<AdminResponse, CommandError> {
    result
        .map(|user| AdminResponse::User(user.view()))
        .map_err(|e| CommandError::failed(command, e))
}

fn cert_summary(services: &Services, tls: &TlsAccess<'_>) -> Result<TlsSummary, CommandError> {
    match tls {
        TlsAccess::Live(Some(tls)) => Ok(tls.summary()),
        TlsAccess::Live(None) => Err(CommandError::TlsOff),
        TlsAccess::Offline => {
            match summarize_files(&services.config.tls, &services.config.storage.data_dir) {
                Ok(Some(summary)) => Ok(summary),
                Ok(None) => Err(CommandError::TlsOff),
                Err(crate::tls::TlsError::Io(crate::fsutil::IoError { source, .. }))
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    Err(CommandError::NoCertificate)
                }
                Err(err) => Err(CommandError::failed("cert.show", err)),
            }
        }
    }
}

/// Accepts admin connections until the task is dropped.
pub async fn listen(app: Arc<App>, listener: tokio::net::UnixListener) {
    let own_uid = nix::unistd::geteuid().as_raw();
    let own_namespace = user_namespace_of("self");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let app = app.clone();
        let own_namespace = own_namespace.clone();
        tokio::spawn(async move {
            let uid = match stream.peer_cred() {
                Ok(cred) if cred.uid() != 0 && cred.uid() != own_uid => {
                    app.audit().record_or_log(
                        AuditEvent::new("admin.connect")
                            .actor(format!("uid:{}", cred.uid()))
                            .outcome(Outcome::Denied),
                    );
                    return;
                }
                // Fails closed: no pid, or a namespace we cannot read, is "another".
                Ok(cred)
                    if own_namespace.is_none()
                        || cred
                            .pid()
                            .and_then(|pid| user_namespace_of(&pid.to_string()))
                            != own_namespace =>
                {
                    app.audit().record_or_log(
                        AuditEvent::new("admin.connect")
                            .actor(format!("uid:{}", cred.uid()))
                            .outcome(Outcome::Denied)
                            .details(serde_json::json!({
                                "reason": "peer is in another user namespace"
                            })),
                    );
                    return;
                }
                Ok(cred) => cred.uid(),
                Err(_) => return,
            };
            if let Err(err) = handle_connection(app, stream, uid).await {
                tracing::debug!(error = %err, "admin connection failed");
            }
        });
    }
}

/// The user namespace a process is in (`user:[inode]`), from `/proc/PID/ns/user`; None
/// when it cannot be read (the process is gone, or we may not inspect it).
fn user_namespace_of(pid: &str) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/user")).ok()
}

/// What the security audit reads from the services.
fn services_sources(services: &Services) -> crate::security_audit::Sources<'_> {
    crate::security_audit::Sources {
        config: &services.config,
        auth: &services.auth,
        audit: &services.audit,
        secrets: &services.secrets,
        now: services.clock.now(),
    }
}

async fn handle_connection(
    app: Arc<App>,
    stream: tokio::net::UnixStream,
    uid: u32,
) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    let (read, mut write) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(read.take(MAX_REQUEST_BYTES));
    let mut line = String::new();
    let read = tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line)).await;
    let actor = format!("admin-socket uid:{uid}");
    let result = match read {
        // A full buffer without a newline is a line cut at the limit.
        Ok(Ok(n)) if n as u64 >= MAX_REQUEST_BYTES && !line.ends_with('\n') => {
            Err(CommandError::TooLarge {
                limit: MAX_REQUEST_BYTES,
            })
        }
        Ok(Ok(_)) => match protocol::parse_request(&line) {
            Ok(AdminRequest::Status) => {
                let tls = TlsAccess::Live(app.tls.as_ref());
                let mut answer = execute(&app.services, tls, &actor, AdminRequest::Status);
                if let Ok(AdminResponse::Status(report)) = &mut answer {
                    report.sandbox = Some(app.sandbox_status());
                }
                answer
            }
            Ok(AdminRequest::SandboxRun { run }) => sandbox_run(&app, &actor, run).await,
            Ok(
                request @ (AdminRequest::PairStart { .. }
                | AdminRequest::PairList
                | AdminRequest::PairConfirm { .. }),
            ) => {
                let worker = app.clone();
                tokio::task::spawn_blocking(move || pairing::live(&worker, &actor, request))
                    .await
                    .unwrap_or(Err(CommandError::Crashed))
            }
            Ok(AdminRequest::ToolRun { agent, tool, input }) => {
                tool_run(&app, uid, agent, tool, input, &mut write).await
            }
            Ok(request) => {
                let worker = app.clone();
                tokio::task::spawn_blocking(move || {
                    execute(
                        &worker.services,
                        TlsAccess::Live(worker.tls.as_ref()),
                        &actor,
                        request,
                    )
                })
                .await
                .unwrap_or(Err(CommandError::Crashed))
            }
            // Answered in a shape the sender's version can read.
            Err((error, answer)) => {
                tracing::debug!(%error, "admin request refused");
                write.write_all(&answer).await?;
                return write.shutdown().await;
            }
        },
        Ok(Err(err)) => Err(CommandError::InvalidRequest {
            reason: err.to_string(),
        }),
        Err(_) => Err(CommandError::RequestTimeout),
    };
    write_line(&mut write, &ReplyLine::answer(result)).await?;
    write.shutdown().await
}

async fn write_line(
    write: &mut (impl tokio::io::AsyncWrite + Unpin),
    line: &ReplyLine,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(line).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await
}

/// Runs a program in the gateway's sandbox (the runner audits it).
async fn sandbox_run(
    app: &App,
    actor: &str,
    run: crate::sandbox::RunRequest,
) -> Result<AdminResponse, CommandError> {
    let runner = match app.sandbox_runner().await {
        Ok(runner) => runner,
        Err(reason) => {
            app.audit().record_or_log(
                AuditEvent::new("sandbox.run")
                    .actor(actor)
                    .target(run.language.name())
                    .outcome(Outcome::Denied)
                    .details(serde_json::json!({ "error": reason })),
            );
            return Err(CommandError::SandboxUnavailable { reason });
        }
    };
    runner
        .run(app.audit(), actor, run)
        .await
        .map(AdminResponse::SandboxRun)
        .map_err(|e| CommandError::failed("sandbox.run", e))
}

/// Runs one tool call for the console through the gateway's tools (filter, approval
/// over the gateway's clients, sandbox); the registry audits it.
async fn tool_run(
    app: &App,
    uid: u32,
    agent: String,
    tool: String,
    input: serde_json::Value,
    write: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> Result<AdminResponse, CommandError> {
    use crate::gateway::approval::{ApprovalEvent, Requester};
    use crate::gateway::tools::{CONSOLE_USER, Call, CallContext, CallReport};
    // This connection's own requests are told apart by their session.
    let session = format!("admin-socket uid:{uid} call:{}", crate::ids::random_id(8));
    let mut events = app.approvals.subscribe();
    let runner = app.sandbox_runner().await;
    let ctx = CallContext {
        audit: app.audit(),
        approvals: &app.approvals,
        runner: runner.as_ref().map(|r| *r).map_err(String::as_str),
    };
    let call = Call {
        requester: Requester {
            user: CONSOLE_USER.into(),
            agent: agent.clone(),
            session: Some(session.clone()),
        },
        agent,
        tool,
        input,
    };
    let call = app.tools.call(ctx, call);
    tokio::pin!(call);
    let mut listening = true;
    let outcome = loop {
        tokio::select! {
            outcome = &mut call => break outcome,
            event = events.recv(), if listening => match event {
                Ok(ApprovalEvent::Requested(request))
                    if request.requester.session.as_deref() == Some(session.as_str()) =>
                {
                    let note = ReplyLine::new(Reply::Pending(PendingApproval {
                        id: request.id.clone(),
                        summary: request.input.summary.clone(),
                        reason: request.reason.clone(),
                        expires: request.expires.clone(),
                    }));
                    // A console that went away is the call's problem, not the note's.
                    let _ = write_line(write, &note).await;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => listening = false,
            },
        }
    };
    Ok(AdminResponse::ToolRun(CallReport::from(outcome)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::{BufRead, BufReader, Write};
    use std::path::Path;

    use super::protocol::{PROTOCOL_VERSION, Reply, parse_reply};
    use super::*;
    use crate::clock::SystemClock;
    use crate::config::testing::local_gateway;
    use crate::secret::Secret;

    async fn gateway(dir: &Path) -> (Arc<App>, PathBuf) {
        let config = local_gateway(&dir.join("data"), "[tools.sandbox]\nenabled = false");
        let app = Arc::new(App::open(config, Arc::new(SystemClock), None).unwrap());
        let socket = dir.join("admin.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        tokio::spawn(listen(app.clone(), listener));
        (app, socket)
    }

    async fn ask(socket: &Path, request: AdminRequest) -> Result<AdminResponse, CommandError> {
        let socket = socket.to_path_buf();
        tokio::task::spawn_blocking(move || {
            send(&socket, &request, Duration::from_secs(20))
                .unwrap()
                .unwrap()
        })
        .await
        .unwrap()
    }

    /// Writes raw bytes as a request and returns the gateway's one answer line.
    async fn raw(socket: &Path, bytes: Vec<u8>) -> String {
        let socket = socket.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            // The gateway may answer (and close) before reading a huge line to its end.
            let _ = stream.write_all(&bytes);
            let mut line = String::new();
            BufReader::new(stream).read_line(&mut line).unwrap();
            line
        })
        .await
        .unwrap()
    }

    fn users(answer: Result<AdminResponse, CommandError>) -> Vec<String> {
        match answer {
            Ok(AdminResponse::Users(users)) => users.into_iter().map(|u| u.username).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_socket_answers_each_command_with_its_typed_result_or_error() {
        let dir = tempfile::tempdir().unwrap();
        let (_app, socket) = gateway(dir.path()).await;
        match ask(&socket, AdminRequest::Status).await {
            Ok(AdminResponse::Status(status)) => {
                assert!(status.running);
                assert_eq!(
                    status.sandbox,
                    Some(crate::sandbox::SandboxStatus::Disabled)
                );
                assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
            }
            other => panic!("{other:?}"),
        }
        let added = ask(
            &socket,
            AdminRequest::UserAdd {
                name: "owner".into(),
                password: Secret::new("a long passphrase for the owner"),
                scopes: crate::auth::scopes::Scopes::all(),
            },
        )
        .await;
        assert!(
            matches!(&added, Ok(AdminResponse::User(u)) if u.username == "owner"),
            "{added:?}"
        );
        assert_eq!(users(ask(&socket, AdminRequest::UserList).await), ["owner"]);
        let issued = ask(
            &socket,
            AdminRequest::TokenCreate {
                owner: None,
                name: "ci".into(),
                scopes: crate::auth::scopes::Scopes::parse_list("chat:read").unwrap(),
                expires: Some("1h".into()),
                requests_per_minute: None,
                tokens_per_day: None,
            },
        )
        .await;
        match issued {
            Ok(AdminResponse::TokenIssued(issued)) => {
                assert_eq!(issued.record.owner, "owner");
                assert!(!issued.token.expose().is_empty());
            }
            other => panic!("{other:?}"),
        }
        // Refusals come back as their own variants, not as text to guess from.
        assert_eq!(
            ask(
                &socket,
                AdminRequest::SecretsRemove {
                    name: "none".into()
                }
            )
            .await
            .unwrap_err(),
            CommandError::NoSuchSecret {
                name: "none".into()
            }
        );
        assert_eq!(
            ask(&socket, AdminRequest::CertShow).await.unwrap_err(),
            CommandError::TlsOff
        );
        assert_eq!(
            ask(
                &socket,
                AdminRequest::TokenRotate {
                    name: "ci".into(),
                    grace: Some("soon".into())
                }
            )
            .await
            .unwrap_err(),
            CommandError::InvalidDuration {
                text: "soon".into()
            }
        );
        assert!(matches!(
            ask(&socket, AdminRequest::UserRemove { name: "ghost".into() }).await,
            Err(CommandError::Failed { command, .. }) if command == "user.remove"
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn malformed_oversized_unknown_and_foreign_lines_are_refused_and_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (app, socket) = gateway(dir.path()).await;
        ask(
            &socket,
            AdminRequest::UserAdd {
                name: "owner".into(),
                password: Secret::new("a long passphrase for the owner"),
                scopes: crate::auth::scopes::Scopes::all(),
            },
        )
        .await
        .unwrap();
        let audited = app.audit().list(&Default::default()).unwrap().len();
        let error = |line: String| match parse_reply(&line) {
            Ok(Reply::Error(error)) => error,
            other => panic!("{line}: {other:?}"),
        };
        // A removal hidden in malformed, unknown or over-long lines never runs.
        let remove = r#"{"command":"user-remove","name":"owner"}"#;
        for line in [
            "{\"version\":2,\"request\":".to_string() + remove,
            r#"{"version":2,"request":{"command":"user-remove","name":"owner","also":1}}"#
                .to_string(),
            r#"{"version":2,"request":{"command":"shutdown"}}"#.to_string(),
            "\u{1b}[2J\n".to_string(),
        ] {
            let answer = raw(&socket, format!("{line}\n").into_bytes()).await;
            assert!(
                matches!(error(answer.clone()), CommandError::InvalidRequest { .. }),
                "{line}: {answer}"
            );
        }
        let mut huge =
            format!(r#"{{"version":{PROTOCOL_VERSION},"request":{remove},"pad":""#).into_bytes();
        huge.resize(protocol::MAX_REQUEST_BYTES as usize + 10, b'x');
        assert_eq!(
            error(raw(&socket, huge).await),
            CommandError::TooLarge {
                limit: protocol::MAX_REQUEST_BYTES
            }
        );
        let newer = format!(
            r#"{{"version":{},"request":{remove}}}"#,
            PROTOCOL_VERSION + 1
        );
        assert!(matches!(
            error(raw(&socket, format!("{newer}\n").into_bytes()).await),
            CommandError::VersionMismatch { cli: Some(_), .. }
        ));
        // 0.1.0's CLI sends the bare request; it is told why, in a shape it can read.
        let old: serde_json::Value =
            serde_json::from_str(&raw(&socket, format!("{remove}\n").into_bytes()).await).unwrap();
        assert_eq!(old["ok"], false);
        assert!(
            old["error"].as_str().unwrap().contains("admin protocol"),
            "{old}"
        );
        // Nothing changed and nothing was recorded as done; the owner is served at once.
        assert_eq!(users(ask(&socket, AdminRequest::UserList).await), ["owner"]);
        assert_eq!(
            app.audit().list(&Default::default()).unwrap().len(),
            audited + 1
        );
    }
}
