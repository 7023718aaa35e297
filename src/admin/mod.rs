//! The admin socket: how the CLI drives a running gateway, and the commands it carries.
//!
//! A running gateway holds the store, so state-changing CLI commands cannot open it;
//! they send an [`AdminRequest`] as one JSON line over a Unix socket in the runtime
//! directory (mode 0600, in a 0700 directory, and the peer's uid is checked: only root
//! and the gateway's own user are served). The peer must also be in the gateway's own
//! user namespace: a sandboxed run's one id maps to the service user on a host that
//! cannot give it another, so the uid alone would let it through. With no gateway running the CLI runs the
//! same [`execute`] against the store directly, so both paths behave alike. Every
//! command except `status` is audited with the caller's uid. This module never parses
//! command-line flags and never speaks HTTP.
//!
//! One answer per request, except that a tool call waiting for approval first sends
//! one [`ApprovalPending`] line per request it waits for, so the console can say what it
//! waits for and where to answer instead of looking hung.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::audit::{AuditError, AuditEvent, ExportSeal, Outcome, Query};
use crate::auth::scopes::Scopes;
use crate::config::Config;
use crate::secret::Secret;
use crate::server::state::{App, Services, tls_audit_event};
use crate::store::SecretName;
use crate::tls::{Tls, TlsSummary, summarize_files};

/// Largest request line the socket accepts.
const MAX_REQUEST_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot reach the gateway's admin socket {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("admin socket protocol error: {0}")]
    Protocol(String),
    #[error("{0}")]
    Failed(String),
}

/// A command for the gateway.
#[derive(Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum AdminRequest {
    Status,
    AuditList {
        query: Query,
    },
    AuditVerify,
    AuditExport,
    /// Checks an exported log's seal line against this log's key; the CLI has already
    /// walked the exported chain to `end_seq`/`end_hash`.
    AuditVerifyExport {
        seal: ExportSeal,
        end_seq: u64,
        end_hash: String,
    },
    CertShow,
    CertRegenerate {
        ca: bool,
    },
    SecretsSet {
        name: String,
        #[serde(serialize_with = "expose_secret")]
        value: Secret,
    },
    SecretsList,
    SecretsRemove {
        name: String,
    },
    SecretsRotateMasterKey,
    UserAdd {
        name: String,
        #[serde(serialize_with = "expose_secret")]
        password: Secret,
        scopes: Scopes,
    },
    UserList,
    UserPasswd {
        name: String,
        #[serde(serialize_with = "expose_secret")]
        password: Secret,
    },
    UserRemove {
        name: String,
    },
    UserDisable {
        name: String,
        disabled: bool,
    },
    UserUnlock {
        name: String,
    },
    ClaimCode,
    TokenCreate {
        owner: Option<String>,
        name: String,
        scopes: Scopes,
        expires: Option<String>,
    },
    TokenList,
    TokenRevoke {
        id: String,
    },
    TokenRotate {
        name: String,
        grace: Option<String>,
    },
    /// A new session signing key (its own command: rotating a token never does this).
    SigningKeyRotate,
    SandboxRun {
        run: SandboxRunRequest,
    },
    ToolRun {
        agent: String,
        tool: String,
        input: serde_json::Value,
    },
    /// A consistent snapshot for `aisopod backup create`, sealed under a one-time key
    /// that only this answer carries.
    BackupSnapshot,
}

/// A sandbox run as the admin socket carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxRunRequest {
    pub language: crate::sandbox::Language,
    #[serde(with = "crate::sandbox::spec::base64_bytes")]
    pub code: Vec<u8>,
    #[serde(default)]
    pub files: Vec<crate::sandbox::FileData>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub memory: Option<u64>,
    #[serde(default)]
    pub network: Option<bool>,
}

impl From<&crate::sandbox::RunRequest> for SandboxRunRequest {
    fn from(request: &crate::sandbox::RunRequest) -> Self {
        SandboxRunRequest {
            language: request.language,
            code: request.code.clone(),
            files: request.files.clone(),
            timeout_ms: request.timeout.map(|t| t.as_millis() as u64),
            memory: request.memory,
            network: request.network,
        }
    }
}

impl From<SandboxRunRequest> for crate::sandbox::RunRequest {
    fn from(run: SandboxRunRequest) -> Self {
        crate::sandbox::RunRequest {
            language: run.language,
            code: run.code,
            files: run.files,
            timeout: run.timeout_ms.map(Duration::from_millis),
            memory: run.memory,
            network: run.network,
        }
    }
}

fn expose_secret<S: serde::Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

impl std::fmt::Debug for AdminRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl AdminRequest {
    /// The command's name as audited.
    pub fn name(&self) -> &'static str {
        match self {
            AdminRequest::Status => "status",
            AdminRequest::AuditList { .. } => "audit.list",
            AdminRequest::AuditVerify => "audit.verify",
            AdminRequest::AuditExport => "audit.export",
            AdminRequest::AuditVerifyExport { .. } => "audit.verify_export",
            AdminRequest::CertShow => "cert.show",
            AdminRequest::CertRegenerate { .. } => "cert.regenerate",
            AdminRequest::SecretsSet { .. } => "secrets.set",
            AdminRequest::SecretsList => "secrets.list",
            AdminRequest::SecretsRemove { .. } => "secrets.remove",
            AdminRequest::SecretsRotateMasterKey => "secrets.rotate_master_key",
            AdminRequest::SandboxRun { .. } => "sandbox.run",
            AdminRequest::ToolRun { .. } => "tool.run",
            AdminRequest::BackupSnapshot => "backup.snapshot",
            AdminRequest::UserAdd { .. } => "user.add",
            AdminRequest::UserList => "user.list",
            AdminRequest::UserPasswd { .. } => "user.passwd",
            AdminRequest::UserRemove { .. } => "user.remove",
            AdminRequest::UserDisable { disabled: true, .. } => "user.disable",
            AdminRequest::UserDisable {
                disabled: false, ..
            } => "user.enable",
            AdminRequest::UserUnlock { .. } => "user.unlock",
            AdminRequest::ClaimCode => "auth.claim_code",
            AdminRequest::TokenCreate { .. } => "auth.token_create",
            AdminRequest::TokenList => "auth.token_list",
            AdminRequest::TokenRevoke { .. } => "auth.token_revoke",
            AdminRequest::TokenRotate { .. } => "auth.token_rotate",
            AdminRequest::SigningKeyRotate => "auth.signing_key_rotate",
        }
    }

    fn target(&self) -> String {
        match self {
            AdminRequest::SecretsSet { name, .. }
            | AdminRequest::SecretsRemove { name }
            | AdminRequest::UserAdd { name, .. }
            | AdminRequest::UserPasswd { name, .. }
            | AdminRequest::UserRemove { name }
            | AdminRequest::UserDisable { name, .. }
            | AdminRequest::UserUnlock { name }
            | AdminRequest::TokenCreate { name, .. }
            | AdminRequest::TokenRotate { name, .. } => name.clone(),
            AdminRequest::TokenRevoke { id } => id.clone(),
            AdminRequest::CertRegenerate { ca: true } => "ca".into(),
            _ => String::new(),
        }
    }
}

/// Sent before the answer while a console tool call waits for a person's approval.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApprovalPending {
    pub approval_pending: PendingApproval,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PendingApproval {
    pub id: String,
    pub summary: String,
    pub reason: String,
    pub expires: String,
}

/// The answer: `ok` with a result, or an error message.
#[derive(Debug, Serialize, Deserialize)]
pub struct AdminResponse {
    pub ok: bool,
    #[serde(default)]
    pub result: serde_json::Value,
    #[serde(default)]
    pub error: Option<String>,
}

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
) -> AdminResponse {
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
            event = event.details(serde_json::json!({ "error": err }));
        }
        services.audit.record_or_log(event);
    }
    match result {
        Ok(result) => AdminResponse {
            ok: true,
            result,
            error: None,
        },
        Err(error) => AdminResponse {
            ok: false,
            result: serde_json::Value::Null,
            error: Some(error),
        },
    }
}

fn run(
    services: &Services,
    tls: TlsAccess<'_>,
    request: AdminRequest,
) -> Result<serde_json::Value, String> {
    let json =
        |value: Result<serde_json::Value, serde_json::Error>| value.map_err(|e| e.to_string());
    match request {
        AdminRequest::Status => Ok(serde_json::json!({
            "running": matches!(tls, TlsAccess::Live(_)),
            "data_dir": services.config.storage.data_dir,
            "version": env!("CARGO_PKG_VERSION"),
        })),
        AdminRequest::AuditList { query } => json(serde_json::to_value(
            services.audit.list(&query).map_err(|e| e.to_string())?,
        )),
        AdminRequest::AuditVerify => match services.audit.verify() {
            Ok(verified) => json(serde_json::to_value(verified)),
            Err(err @ AuditError::Broken { .. }) => Err(err.to_string()),
            Err(err) => Err(err.to_string()),
        },
        AdminRequest::AuditExport => json(serde_json::to_value(
            services.audit.export().map_err(|e| e.to_string())?,
        )),
        AdminRequest::AuditVerifyExport {
            seal,
            end_seq,
            end_hash,
        } => json(serde_json::to_value(
            services
                .audit
                .verify_export_seal(&seal, end_seq, &end_hash)
                .map_err(|e| e.to_string())?,
        )),
        AdminRequest::CertShow => {
            cert_summary(services, &tls).and_then(|s| json(serde_json::to_value(s)))
        }
        AdminRequest::CertRegenerate { ca } => {
            let events = match tls {
                TlsAccess::Live(Some(tls)) => tls.regenerate(ca).map_err(|e| e.to_string())?,
                TlsAccess::Live(None) => return Err("TLS is off ([tls] mode = \"off\")".into()),
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
                            .map_err(|e| e.to_string())?,
                        );
                    }
                    let Some((tls, opened)) = Tls::open(
                        &config.tls,
                        &config.storage.data_dir,
                        services.clock.clone(),
                        names,
                    )
                    .map_err(|e| e.to_string())?
                    else {
                        return Err("TLS is off ([tls] mode = \"off\")".into());
                    };
                    // Opening issues a certificate when none fits; otherwise issue one now.
                    let issued = opened
                        .iter()
                        .any(|e| matches!(e, crate::tls::TlsEvent::ServerIssued { .. }));
                    events.extend(opened);
                    if !issued {
                        events.extend(tls.regenerate(false).map_err(|e| e.to_string())?);
                    }
                    events
                }
            };
            let mut fingerprints = Vec::new();
            for event in events {
                let (crate::tls::TlsEvent::ServerIssued { fingerprint, .. }
                | crate::tls::TlsEvent::CaCreated { fingerprint }) = &event;
                fingerprints.push(fingerprint.clone());
                services.audit.record_or_log(tls_audit_event(event));
            }
            Ok(serde_json::json!({ "issued": fingerprints }))
        }
        AdminRequest::SecretsSet { name, value } => {
            let name = SecretName::parse(&name)?;
            if value.is_empty() {
                return Err("refusing to store an empty secret".into());
            }
            services
                .secrets
                .set(&name, &value)
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({ "name": name, "key_id": services.secrets.key_id() }))
        }
        AdminRequest::SecretsList => {
            let list = services.secrets.list().map_err(|e| e.to_string())?;
            Ok(serde_json::Value::Array(
                list.into_iter()
                    .map(|(name, kid)| serde_json::json!({ "name": name, "key_id": kid }))
                    .collect(),
            ))
        }
        AdminRequest::SecretsRemove { name } => {
            let name = SecretName::parse(&name)?;
            match services.secrets.remove(&name).map_err(|e| e.to_string())? {
                true => Ok(serde_json::json!({ "removed": name })),
                false => Err(format!("no secret named {name}")),
            }
        }
        AdminRequest::SecretsRotateMasterKey => json(serde_json::to_value(
            services
                .secrets
                .rotate_master_key()
                .map_err(|e| e.to_string())?,
        )),
        // Runs go to a live gateway's runner (see `handle_connection`); offline, the CLI
        // runs the sandbox itself.
        AdminRequest::SandboxRun { .. } => Err("sandbox runs need a running gateway".into()),
        AdminRequest::ToolRun { .. } => Err("tool calls need a running gateway".into()),
        AdminRequest::BackupSnapshot => json(serde_json::to_value(
            crate::keys::backup_crypto::seal_snapshot(
                &services.store,
                &services.config.storage.data_dir,
                &crate::clock::rfc3339(services.clock.now()),
            )
            .map_err(|e| e.to_string())?,
        )),
        AdminRequest::UserList => {
            let users = services.auth.accounts.list().map_err(|e| e.to_string())?;
            json(serde_json::to_value(
                users.iter().map(|u| u.view()).collect::<Vec<_>>(),
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
            user_result(created)
        }
        AdminRequest::UserPasswd { name, password } => {
            user_result(services.auth.accounts.set_password(&name, &password))
        }
        AdminRequest::UserRemove { name } => user_result(services.auth.accounts.remove(&name)),
        AdminRequest::UserDisable { name, disabled } => {
            user_result(services.auth.accounts.set_disabled(&name, disabled))
        }
        AdminRequest::UserUnlock { name } => user_result(services.auth.accounts.unlock(&name)),
        AdminRequest::TokenCreate { owner, name, scopes, expires } => {
            let auth = &services.auth;
            if auth.mode != crate::config::AuthMode::Password && auth.mode != crate::config::AuthMode::Device {
                return Err("API tokens need user accounts ([auth] mode = \"password\" or \"device\")".into());
            }
            let ttl = expires.as_deref().map(duration_secs).transpose()?;
            let owner = match owner {
                Some(owner) => auth.accounts.get(&owner).map_err(|e| e.to_string())?.ok_or_else(|| format!("no user named {owner}"))?,
                None => sole_admin(services)?,
            };
            let (secret, record) = auth
                .tokens
                .create(&owner, &name, scopes, owner.scopes, ttl, "console")
                .map_err(|e| e.to_string())?;
            let mut value = serde_json::to_value(record).map_err(|e| e.to_string())?;
            if let Some(object) = value.as_object_mut() {
                object.insert("token".into(), serde_json::Value::String(secret.expose().to_string()));
            }
            Ok(value)
        }
        AdminRequest::TokenList => json(serde_json::to_value(services.auth.tokens.list().map_err(|e| e.to_string())?)),
        AdminRequest::TokenRevoke { id } => json(serde_json::to_value(services.auth.tokens.revoke(&id).map_err(|e| e.to_string())?)),
        AdminRequest::TokenRotate { name, grace } => {
            let grace = grace.as_deref().map(duration_secs).transpose()?.unwrap_or(3600);
            let (secret, record) = services.auth.tokens.rotate(&name, grace, "console").map_err(|e| e.to_string())?;
            let mut value = serde_json::to_value(record).map_err(|e| e.to_string())?;
            if let Some(object) = value.as_object_mut() {
                object.insert("token".into(), serde_json::Value::String(secret.expose().to_string()));
            }
            Ok(value)
        }
        AdminRequest::SigningKeyRotate => {
            let longest = services.auth.sessions.access_ttl();
            let kid = services.auth.jwt.rotate(longest).map_err(|e| e.to_string())?;
            Ok(serde_json::json!({ "kid": kid, "previous_valid_for": longest }))
        }
        AdminRequest::ClaimCode => match (&tls, services.auth.claim.current()) {
            (TlsAccess::Offline, _) => Err("no gateway is running: the claim code is made when the gateway starts".into()),
            (_, Some(code)) => Ok(serde_json::json!({ "code": code })),
            (_, None) => Err("no claim code is pending: an account exists already, or the code expired (restart the gateway for a new one)".into()),
        },
    }
}

fn duration_secs(text: &str) -> Result<i64, String> {
    crate::config::parse_duration(text)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .filter(|secs| *secs > 0)
        .ok_or_else(|| {
            format!("invalid duration {text:?}: use a number and a unit such as 1h or 90d")
        })
}

/// The account a console-made token belongs to when `--owner` is not given.
fn sole_admin(services: &Services) -> Result<crate::auth::users::UserRecord, String> {
    let admins: Vec<_> = services
        .auth
        .accounts
        .list()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|u| !u.disabled && u.scopes.allows(crate::auth::scopes::Scope::Admin))
        .collect();
    match <[_; 1]>::try_from(admins) {
        Ok([admin]) => Ok(admin),
        Err(admins) if admins.is_empty() => Err(
            "no administrator account exists yet: create one with `aisopod user add --admin NAME`"
                .into(),
        ),
        Err(_) => Err("several administrators exist: name the token's owner with --owner".into()),
    }
}

fn user_result(
    result: Result<crate::auth::users::UserRecord, crate::auth::users::AccountError>,
) -> Result<serde_json::Value, String> {
    let user = result.map_err(|e| e.to_string())?;
    serde_json::to_value(user.view()).map_err(|e| e.to_string())
}

fn cert_summary(services: &Services, tls: &TlsAccess<'_>) -> Result<TlsSummary, String> {
    match tls {
        TlsAccess::Live(Some(tls)) => Ok(tls.summary()),
        TlsAccess::Live(None) => Err("TLS is off ([tls] mode = \"off\")".into()),
        TlsAccess::Offline => match summarize_files(&services.config.tls, &services.config.storage.data_dir) {
            Ok(Some(summary)) => Ok(summary),
            Ok(None) => Err("TLS is off ([tls] mode = \"off\")".into()),
            Err(crate::tls::TlsError::Io(crate::fsutil::IoError { source, .. })) if source.kind() == std::io::ErrorKind::NotFound => {
                Err("no certificate yet: the gateway makes one on its first start (or run `aisopod cert regenerate`)".into())
            }
            Err(err) => Err(err.to_string()),
        },
    }
}

/// Sends one request to a running gateway. `Ok(None)` when no gateway listens.
pub fn send(
    path: &Path,
    request: &AdminRequest,
    timeout: Duration,
) -> Result<Option<AdminResponse>, AdminError> {
    send_noting(path, request, timeout, |_| {})
}

/// [`send`], handing each [`PendingApproval`] line that comes before the answer to
/// `pending`.
pub fn send_noting(
    path: &Path,
    request: &AdminRequest,
    timeout: Duration,
    mut pending: impl FnMut(&PendingApproval),
) -> Result<Option<AdminResponse>, AdminError> {
    let mut stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(source) => {
            return Err(AdminError::Connect {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let protocol = |e: std::io::Error| AdminError::Protocol(e.to_string());
    stream.set_read_timeout(Some(timeout)).map_err(protocol)?;
    stream.set_write_timeout(Some(timeout)).map_err(protocol)?;
    let mut line = serde_json::to_vec(request).map_err(|e| AdminError::Protocol(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(protocol)?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut reply = String::new();
        reader.read_line(&mut reply).map_err(protocol)?;
        if reply.is_empty() {
            return Err(AdminError::Protocol(
                "the gateway closed the connection without answering".into(),
            ));
        }
        if let Ok(note) = serde_json::from_str::<ApprovalPending>(&reply) {
            pending(&note.approval_pending);
            continue;
        }
        return serde_json::from_str(&reply)
            .map(Some)
            .map_err(|e| AdminError::Protocol(e.to_string()));
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
    let response = match read {
        Ok(Ok(_)) => match serde_json::from_str::<AdminRequest>(&line) {
            Ok(AdminRequest::SandboxRun { run }) => {
                let actor = format!("admin-socket uid:{uid}");
                sandbox_run(&app, &actor, run).await
            }
            Ok(AdminRequest::ToolRun { agent, tool, input }) => {
                tool_run(&app, uid, agent, tool, input, &mut write).await
            }
            Ok(request) => {
                let worker = app.clone();
                let actor = format!("admin-socket uid:{uid}");
                tokio::task::spawn_blocking(move || {
                    execute(
                        &worker.services,
                        TlsAccess::Live(worker.tls.as_ref()),
                        &actor,
                        request,
                    )
                })
                .await
                .unwrap_or_else(|_| failed("the command crashed; see the gateway log"))
            }
            Err(err) => failed(&format!("invalid request: {err}")),
        },
        Ok(Err(err)) => failed(&format!("invalid request: {err}")),
        Err(_) => failed("timed out waiting for the request"),
    };
    let mut bytes = serde_json::to_vec(&response).unwrap_or_default();
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.shutdown().await
}

/// Runs a program in the gateway's sandbox (the runner audits it).
async fn sandbox_run(app: &App, actor: &str, run: SandboxRunRequest) -> AdminResponse {
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
            return failed(&reason);
        }
    };
    match runner.run(app.audit(), actor, run.into()).await {
        Ok(outcome) => match serde_json::to_value(&outcome) {
            Ok(result) => AdminResponse {
                ok: true,
                result,
                error: None,
            },
            Err(err) => failed(&err.to_string()),
        },
        Err(err) => failed(&err.to_string()),
    }
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
) -> AdminResponse {
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
                    let note = ApprovalPending {
                        approval_pending: PendingApproval {
                            id: request.id.clone(),
                            summary: request.input.summary.clone(),
                            reason: request.reason.clone(),
                            expires: request.expires.clone(),
                        },
                    };
                    let mut line = serde_json::to_vec(&note).unwrap_or_default();
                    line.push(b'\n');
                    // A console that went away is the call's problem, not the note's.
                    let _ = write.write_all(&line).await;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => listening = false,
            },
        }
    };
    let report = CallReport::from(outcome);
    match serde_json::to_value(&report) {
        Ok(result) => AdminResponse {
            ok: true,
            result,
            error: None,
        },
        Err(err) => failed(&err.to_string()),
    }
}

fn failed(message: &str) -> AdminResponse {
    AdminResponse {
        ok: false,
        result: serde_json::Value::Null,
        error: Some(message.to_string()),
    }
}
