//! The admin socket's wire protocol, shared by both ends: the requests the CLI sends,
//! the typed answers and errors the gateway sends back, and the version both stamp on
//! every line. It owns only these types and their JSON form; it never opens a socket,
//! runs a command or reads the store.
//!
//! One JSON object per line, readable with `socat` and `jq`:
//! - request: `{"version":2,"request":{"command":"user-list"}}`
//! - answer: `{"version":2,"ok":{"result":"users","value":[...]}}` or
//!   `{"version":2,"error":{"error":"no_such_user","name":"bob"}}`
//! - before the answer of a tool call that waits for a person:
//!   `{"version":2,"pending":{"id":...,"summary":...,"reason":...,"expires":...}}`
//!
//! The version changes whenever a line's shape changes. Each end reads the version
//! first, so a CLI and a gateway from different releases say so plainly instead of
//! failing to parse. Requests from 0.1.0 carried no version (protocol 1): the gateway
//! answers them in 0.1.0's own answer shape (`{"ok":false,"error":"..."}`) so that an
//! old CLI prints the reason.

use serde::{Deserialize, Serialize};

use crate::audit::{AuditRecord, Export, ExportSeal, Query, Verified};
use crate::auth::paired::PairedDevice;
use crate::auth::scopes::Scopes;
use crate::auth::tokens::{LimitsChange, TokenRecord};
use crate::auth::users::UserView;
use crate::gateway::tools::CallReport;
use crate::keys::backup_crypto::TransientSnapshot;
use crate::keys::secrets::Rotation;
use crate::pairing::{ClaimView, OfferView, PairingOffer};
use crate::sandbox::{RunOutcome, RunRequest};
use crate::secret::Secret;
use crate::tls::TlsSummary;

/// This build's protocol version. 0.1.0 spoke version 1, without a version field.
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest request line the gateway accepts.
pub const MAX_REQUEST_BYTES: u64 = 1024 * 1024;

/// A command for the gateway.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
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
        // Absent from the line when unset, so a line without limits is the one an
        // earlier release of this protocol version sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requests_per_minute: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tokens_per_day: Option<u64>,
    },
    /// Changes a token's limits (the console acts as an administrator).
    TokenLimit {
        id: String,
        change: LimitsChange,
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
        run: RunRequest,
    },
    ToolRun {
        agent: String,
        tool: String,
        input: serde_json::Value,
    },
    /// A consistent snapshot for `aisopod backup create`, sealed under a one-time key
    /// that only this answer carries.
    BackupSnapshot,
    /// Opens a pairing offer (a running gateway only).
    PairStart {
        scopes: Scopes,
        ttl: Option<String>,
        host: Option<String>,
        owner: Option<String>,
        replace: bool,
    },
    /// Paired devices, and with a running gateway the open offer and waiting claims.
    PairList,
    PairRevoke {
        id: String,
    },
    /// Confirms a waiting claim (a running gateway only).
    PairConfirm {
        id: String,
    },
    /// Runs the security audit; with `fix`, first repairs the file modes it would report.
    SecurityAudit {
        fix: bool,
    },
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
            AdminRequest::TokenLimit { .. } => "auth.token_limit",
            AdminRequest::TokenRotate { .. } => "auth.token_rotate",
            AdminRequest::SigningKeyRotate => "auth.signing_key_rotate",
            AdminRequest::PairStart { .. } => "pairing.start",
            AdminRequest::PairList => "pairing.list",
            AdminRequest::PairRevoke { .. } => "pairing.revoke",
            AdminRequest::PairConfirm { .. } => "pairing.confirm",
            AdminRequest::SecurityAudit { .. } => "security.audit",
        }
    }

    /// What the command acts on, for the audit record.
    pub fn target(&self) -> String {
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
            AdminRequest::TokenRevoke { id }
            | AdminRequest::TokenLimit { id, .. }
            | AdminRequest::PairRevoke { id }
            | AdminRequest::PairConfirm { id } => id.clone(),
            AdminRequest::CertRegenerate { ca: true } => "ca".into(),
            _ => String::new(),
        }
    }
}

/// What `status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Answered by a running gateway (not by the CLI over the store).
    pub running: bool,
    pub data_dir: std::path::PathBuf,
    pub version: String,
    /// Whether code execution is available; only a running gateway knows.
    #[serde(default)]
    pub sandbox: Option<crate::sandbox::SandboxStatus>,
}

/// A stored secret's name and the master key it is sealed under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretEntry {
    pub name: String,
    pub key_id: String,
}

/// A token just made or rotated: its record and the secret, shown this once.
#[derive(Debug, Serialize, Deserialize)]
pub struct IssuedToken {
    #[serde(flatten)]
    pub record: TokenRecord,
    #[serde(serialize_with = "expose_secret")]
    pub token: Secret,
}

/// The successful answer to each request, typed per command.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", content = "value", rename_all = "snake_case")]
pub enum AdminResponse {
    Status(StatusReport),
    AuditRecords(Vec<AuditRecord>),
    AuditVerified(Verified),
    AuditExport(Export),
    Certificate(TlsSummary),
    CertificatesIssued {
        issued: Vec<String>,
    },
    SecretStored(SecretEntry),
    Secrets(Vec<SecretEntry>),
    SecretRemoved {
        removed: String,
    },
    MasterKeyRotated(Rotation),
    User(UserView),
    Users(Vec<UserView>),
    ClaimCode {
        code: String,
    },
    TokenIssued(IssuedToken),
    Tokens(Vec<TokenRecord>),
    TokenRevoked(TokenRecord),
    TokenLimited(TokenRecord),
    SigningKeyRotated {
        kid: String,
        previous_valid_for: i64,
    },
    SandboxRun(RunOutcome),
    ToolRun(CallReport),
    BackupSnapshot(TransientSnapshot),
    PairingOffer(IssuedOffer),
    Pairing(PairingState),
    DeviceRevoked(PairedDevice),
    PairingConfirmed(PairedDevice),
    SecurityAudit(crate::security_audit::Report),
}

/// An offer just opened: the offer with its secret, and the QR payload, shown once.
#[derive(Debug, Serialize, Deserialize)]
pub struct IssuedOffer {
    #[serde(flatten)]
    pub offer: PairingOffer,
    pub payload: String,
}

/// What `pair list` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairingState {
    pub devices: Vec<PairedDevice>,
    /// `None` without a running gateway (offers live only in it).
    pub offer: Option<OfferView>,
    pub claims: Vec<ClaimView>,
}

impl AdminResponse {
    /// The variant's wire name, for "expected X, got Y" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            AdminResponse::Status(_) => "status",
            AdminResponse::AuditRecords(_) => "audit_records",
            AdminResponse::AuditVerified(_) => "audit_verified",
            AdminResponse::AuditExport(_) => "audit_export",
            AdminResponse::Certificate(_) => "certificate",
            AdminResponse::CertificatesIssued { .. } => "certificates_issued",
            AdminResponse::SecretStored(_) => "secret_stored",
            AdminResponse::Secrets(_) => "secrets",
            AdminResponse::SecretRemoved { .. } => "secret_removed",
            AdminResponse::MasterKeyRotated(_) => "master_key_rotated",
            AdminResponse::User(_) => "user",
            AdminResponse::Users(_) => "users",
            AdminResponse::ClaimCode { .. } => "claim_code",
            AdminResponse::TokenIssued(_) => "token_issued",
            AdminResponse::Tokens(_) => "tokens",
            AdminResponse::TokenRevoked(_) => "token_revoked",
            AdminResponse::TokenLimited(_) => "token_limited",
            AdminResponse::SigningKeyRotated { .. } => "signing_key_rotated",
            AdminResponse::SandboxRun(_) => "sandbox_run",
            AdminResponse::ToolRun(_) => "tool_run",
            AdminResponse::BackupSnapshot(_) => "backup_snapshot",
            AdminResponse::PairingOffer(_) => "pairing_offer",
            AdminResponse::Pairing(_) => "pairing",
            AdminResponse::DeviceRevoked(_) => "device_revoked",
            AdminResponse::PairingConfirmed(_) => "pairing_confirmed",
            AdminResponse::SecurityAudit(_) => "security_audit",
        }
    }
}

/// Why a command was not done. Crosses the wire as a tagged object, so the CLI can
/// tell a refusal of the protocol from a failed command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum CommandError {
    #[error("{}", version_message(*gateway, *cli))]
    VersionMismatch { gateway: u32, cli: Option<u32> },
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },
    #[error("the request is larger than the admin socket accepts ({limit} bytes)")]
    TooLarge { limit: u64 },
    #[error("timed out waiting for the request")]
    RequestTimeout,
    #[error("the command crashed; see the gateway log")]
    Crashed,
    #[error("{what} need a running gateway")]
    NeedsGateway { what: String },
    #[error("no gateway is running: the claim code is made when the gateway starts")]
    ClaimCodeNeedsGateway,
    #[error(
        "no claim code is pending: an account exists already, or the code expired (restart the gateway for a new one)"
    )]
    NoClaimCode,
    #[error("TLS is off ([tls] mode = \"off\")")]
    TlsOff,
    #[error(
        "no certificate yet: the gateway makes one on its first start (or run `aisopod cert regenerate`)"
    )]
    NoCertificate,
    #[error("refusing to store an empty secret")]
    EmptySecret,
    #[error("invalid secret name {name:?}: {reason}")]
    InvalidSecretName { name: String, reason: String },
    #[error("no secret named {name}")]
    NoSuchSecret { name: String },
    #[error("no user named {name}")]
    NoSuchUser { name: String },
    #[error("API tokens need user accounts ([auth] mode = \"password\" or \"device\")")]
    AccountsRequired,
    #[error("no administrator account exists yet: create one with `aisopod user add --admin NAME`")]
    NoAdministrator,
    #[error("several administrators exist: name the token's owner with --owner")]
    SeveralAdministrators,
    #[error("invalid duration {text:?}: use a number and a unit such as 1h or 90d")]
    InvalidDuration { text: String },
    #[error("{reason}")]
    SandboxUnavailable { reason: String },
    /// The module that did the work refused or failed; `message` is its own error,
    /// written for the operator.
    #[error("{message}")]
    Failed { command: String, message: String },
}

fn version_message(gateway: u32, cli: Option<u32>) -> String {
    let cli = cli.map_or_else(|| "1 (0.1.0)".to_string(), |v| v.to_string());
    format!(
        "the running gateway speaks admin protocol {gateway} and this aisopod speaks {cli}: \
         use the aisopod binary of the running gateway's release (or restart the gateway \
         with this one)"
    )
}

impl CommandError {
    /// A lower module's error, as the operator should read it.
    pub fn failed(command: &str, error: impl std::fmt::Display) -> Self {
        CommandError::Failed {
            command: command.to_string(),
            message: error.to_string(),
        }
    }
}

/// A line the CLI sends.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestLine {
    pub version: u32,
    pub request: AdminRequest,
}

impl RequestLine {
    pub fn new(request: AdminRequest) -> Self {
        RequestLine {
            version: PROTOCOL_VERSION,
            request,
        }
    }
}

/// A tool call waiting for a person's approval, said before the answer so the console
/// can say what it waits for and where to answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingApproval {
    pub id: String,
    pub summary: String,
    pub reason: String,
    pub expires: String,
}

/// What a gateway line says.
// One or two lines per connection: boxing the large answer would save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Pending(PendingApproval),
    Ok(AdminResponse),
    Error(CommandError),
}

/// A line the gateway sends.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReplyLine {
    pub version: u32,
    #[serde(flatten)]
    pub reply: Reply,
}

impl ReplyLine {
    pub fn new(reply: Reply) -> Self {
        ReplyLine {
            version: PROTOCOL_VERSION,
            reply,
        }
    }

    /// The final answer to a command.
    pub fn answer(result: Result<AdminResponse, CommandError>) -> Self {
        ReplyLine::new(match result {
            Ok(response) => Reply::Ok(response),
            Err(error) => Reply::Error(error),
        })
    }
}

/// The one field every line of every version can be asked for first.
#[derive(Deserialize)]
struct VersionProbe {
    #[serde(default)]
    version: Option<u32>,
}

/// 0.1.0's answer shape, used only to tell a 0.1.0 CLI that the versions differ.
#[derive(Serialize)]
struct LegacyAnswer {
    ok: bool,
    error: String,
}

/// Reads a request line on the gateway's side. A wrong version, malformed JSON and an
/// unknown command all come back as a [`CommandError`], never as a panic; the `Err`
/// carries the line to answer with, in a shape the sender can read.
pub fn parse_request(line: &str) -> Result<AdminRequest, (CommandError, Vec<u8>)> {
    let refuse = |error: CommandError, legacy: bool| {
        let mut bytes = if legacy {
            serde_json::to_vec(&LegacyAnswer {
                ok: false,
                error: error.to_string(),
            })
        } else {
            serde_json::to_vec(&ReplyLine::answer(Err(error.clone())))
        }
        .unwrap_or_default();
        bytes.push(b'\n');
        (error, bytes)
    };
    let version = match serde_json::from_str::<VersionProbe>(line) {
        Ok(probe) => probe.version,
        Err(err) => {
            return Err(refuse(
                CommandError::InvalidRequest {
                    reason: err.to_string(),
                },
                false,
            ));
        }
    };
    if version != Some(PROTOCOL_VERSION) {
        return Err(refuse(
            CommandError::VersionMismatch {
                gateway: PROTOCOL_VERSION,
                cli: version,
            },
            version.is_none(),
        ));
    }
    serde_json::from_str::<RequestLine>(line)
        .map(|line| line.request)
        .map_err(|err| {
            refuse(
                CommandError::InvalidRequest {
                    reason: err.to_string(),
                },
                false,
            )
        })
}

/// Why the CLI could not read a gateway's line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadReplyError {
    #[error("{}", version_message(*gateway, Some(PROTOCOL_VERSION)))]
    Version { gateway: u32 },
    #[error("{}; {message}", version_message(1, Some(PROTOCOL_VERSION)))]
    Legacy { message: String },
    #[error("unreadable answer from the gateway: {0}")]
    Malformed(String),
}

/// Reads a gateway line on the CLI's side: the version first, so a gateway of another
/// release is named as such rather than reported as garbage.
pub fn parse_reply(line: &str) -> Result<Reply, ReadReplyError> {
    #[derive(Deserialize)]
    struct Legacy {
        #[serde(default)]
        error: Option<String>,
    }
    let probe: VersionProbe =
        serde_json::from_str(line).map_err(|e| ReadReplyError::Malformed(e.to_string()))?;
    match probe.version {
        Some(PROTOCOL_VERSION) => serde_json::from_str::<ReplyLine>(line)
            .map(|line| line.reply)
            .map_err(|e| ReadReplyError::Malformed(e.to_string())),
        Some(gateway) => Err(ReadReplyError::Version { gateway }),
        None => {
            let legacy: Legacy =
                serde_json::from_str(line).map_err(|e| ReadReplyError::Malformed(e.to_string()))?;
            Err(ReadReplyError::Legacy {
                message: legacy
                    .error
                    .unwrap_or_else(|| "it answered in 0.1.0's format".into()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn every_request() -> Vec<AdminRequest> {
        let query: Query = serde_json::from_value(serde_json::json!({"limit": 5})).unwrap();
        let seal: ExportSeal = serde_json::from_value(serde_json::json!({})).unwrap();
        let scopes = Scopes::parse_list("chat:read,admin").unwrap();
        let run = RunRequest::new(crate::sandbox::Language::Python, b"print(1)".to_vec());
        vec![
            AdminRequest::Status,
            AdminRequest::AuditList { query },
            AdminRequest::AuditVerify,
            AdminRequest::AuditExport,
            AdminRequest::AuditVerifyExport {
                seal,
                end_seq: 7,
                end_hash: "ab".into(),
            },
            AdminRequest::CertShow,
            AdminRequest::CertRegenerate { ca: true },
            AdminRequest::SecretsSet {
                name: "openai".into(),
                value: Secret::new("sk-1"),
            },
            AdminRequest::SecretsList,
            AdminRequest::SecretsRemove {
                name: "openai".into(),
            },
            AdminRequest::SecretsRotateMasterKey,
            AdminRequest::UserAdd {
                name: "ann".into(),
                password: Secret::new("pw"),
                scopes,
            },
            AdminRequest::UserList,
            AdminRequest::UserPasswd {
                name: "ann".into(),
                password: Secret::new("pw2"),
            },
            AdminRequest::UserRemove { name: "ann".into() },
            AdminRequest::UserDisable {
                name: "ann".into(),
                disabled: false,
            },
            AdminRequest::UserUnlock { name: "ann".into() },
            AdminRequest::ClaimCode,
            AdminRequest::TokenCreate {
                owner: Some("ann".into()),
                name: "ci".into(),
                scopes,
                expires: Some("90d".into()),
                requests_per_minute: Some(60),
                tokens_per_day: Some(100_000),
            },
            AdminRequest::TokenList,
            AdminRequest::TokenRevoke { id: "tok1".into() },
            AdminRequest::TokenLimit {
                id: "tok1".into(),
                change: LimitsChange {
                    requests_per_minute: crate::auth::tokens::LimitChange::Lift,
                    tokens_per_day: crate::auth::tokens::LimitChange::Set(5000),
                },
            },
            AdminRequest::TokenRotate {
                name: "ci".into(),
                grace: None,
            },
            AdminRequest::SigningKeyRotate,
            AdminRequest::SandboxRun { run },
            AdminRequest::ToolRun {
                agent: "default".into(),
                tool: "shell".into(),
                input: serde_json::json!({"command": "ls"}),
            },
            AdminRequest::BackupSnapshot,
            AdminRequest::SecurityAudit { fix: true },
        ]
    }

    #[test]
    fn every_request_kind_survives_the_wire_unchanged() {
        let requests = every_request();
        let mut names: Vec<_> = requests.iter().map(AdminRequest::name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), requests.len(), "one sample per command");
        for request in requests {
            let line = serde_json::to_string(&RequestLine::new(request.clone())).unwrap();
            assert!(line.starts_with(&format!("{{\"version\":{PROTOCOL_VERSION},")));
            let parsed = parse_request(&line).unwrap_or_else(|(e, _)| panic!("{line}: {e}"));
            assert_eq!(parsed.name(), request.name());
            assert_eq!(
                serde_json::to_string(&RequestLine::new(parsed)).unwrap(),
                line,
                "{}",
                request.name()
            );
        }
    }

    #[test]
    fn answers_and_errors_survive_the_wire_as_their_own_variants() {
        let record: TokenRecord = serde_json::from_value(serde_json::json!({
            "id": "tok1", "name": "ci", "owner": "ann", "owner_id": "u1",
            "scopes": ["chat:read"], "created": "2026-01-01T00:00:00Z",
            "created_by": "console", "expires": null, "last_used": null
        }))
        .unwrap();
        let answers = [
            Reply::Ok(AdminResponse::TokenIssued(IssuedToken {
                record,
                token: Secret::new("aisopod_secret"),
            })),
            Reply::Ok(AdminResponse::Secrets(vec![SecretEntry {
                name: "openai".into(),
                key_id: "k1".into(),
            }])),
            Reply::Ok(AdminResponse::SigningKeyRotated {
                kid: "k2".into(),
                previous_valid_for: 900,
            }),
            Reply::Ok(AdminResponse::ToolRun(CallReport::Refused {
                error: "no".into(),
            })),
            Reply::Error(CommandError::NoSuchUser { name: "bob".into() }),
            Reply::Error(CommandError::failed("user.add", "weak password")),
            Reply::Pending(PendingApproval {
                id: "a1".into(),
                summary: "rm x".into(),
                reason: "writes".into(),
                expires: "2026-01-01T00:00:55Z".into(),
            }),
        ];
        for reply in answers {
            let line = serde_json::to_string(&ReplyLine::new(reply)).unwrap();
            let back = parse_reply(&line).unwrap();
            assert_eq!(serde_json::to_string(&ReplyLine::new(back)).unwrap(), line);
        }
        // The wire stays readable: tagged by name, the token shown in the clear once.
        let line = serde_json::to_value(ReplyLine::answer(Err(CommandError::NoSuchUser {
            name: "bob".into(),
        })))
        .unwrap();
        assert_eq!(
            line,
            serde_json::json!({"version": PROTOCOL_VERSION, "error": {"error": "no_such_user", "name": "bob"}})
        );
    }

    #[test]
    fn malformed_unknown_and_foreign_requests_get_a_typed_error() {
        let invalid = |line: &str| match parse_request(line) {
            Err((CommandError::InvalidRequest { .. }, answer)) => {
                let answer = std::str::from_utf8(&answer).unwrap();
                assert!(matches!(
                    parse_reply(answer),
                    Ok(Reply::Error(CommandError::InvalidRequest { .. }))
                ));
            }
            other => panic!("{line}: {:?}", other.map(|r| r.name())),
        };
        invalid("not json");
        invalid("");
        invalid("[1,2]");
        invalid(r#"{"version":2}"#);
        invalid(r#"{"version":2,"request":{"command":"drop-everything"}}"#);
        invalid(r#"{"version":2,"request":{"command":"user-remove"}}"#);
        invalid(r#"{"version":2,"request":{"command":"user-remove","name":"a","force":true}}"#);
        invalid(r#"{"version":2,"request":{"command":"status"},"sudo":true}"#);
        // A newer CLI: told the versions differ, in this protocol's shape.
        match parse_request(r#"{"version":3,"request":{"command":"status","new":1}}"#) {
            Err((
                CommandError::VersionMismatch {
                    gateway: 2,
                    cli: Some(3),
                },
                answer,
            )) => {
                let answer = std::str::from_utf8(&answer).unwrap();
                let Ok(Reply::Error(error)) = parse_reply(answer) else {
                    panic!("{answer}")
                };
                assert!(error.to_string().contains("admin protocol 2"), "{error}");
            }
            other => panic!("{:?}", other.map(|r| r.name())),
        }
        // A 0.1.0 CLI sent no version: the answer is in the shape it reads, and says why.
        let Err((error, answer)) = parse_request(r#"{"command":"user-list"}"#) else {
            panic!("a 0.1.0 request was accepted")
        };
        assert_eq!(
            error,
            CommandError::VersionMismatch {
                gateway: 2,
                cli: None
            }
        );
        let legacy: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(legacy["ok"], false);
        assert!(
            legacy["error"]
                .as_str()
                .unwrap()
                .contains("speaks admin protocol 2"),
            "{legacy}"
        );
    }

    #[test]
    fn a_gateway_of_another_release_is_named_not_misread() {
        assert_eq!(
            parse_reply(r#"{"version":3,"ok":{"result":"something_new"}}"#).unwrap_err(),
            ReadReplyError::Version { gateway: 3 }
        );
        // 0.1.0's gateway refusing our request; and its pending note mid-`tools run`.
        let old = parse_reply(r#"{"ok":false,"error":"invalid request: missing field `command`"}"#)
            .unwrap_err();
        assert!(
            matches!(&old, ReadReplyError::Legacy { message } if message.contains("missing field"))
        );
        assert!(old.to_string().contains("admin protocol 1"), "{old}");
        assert!(matches!(
            parse_reply(r#"{"approval_pending":{"id":"a"}}"#),
            Err(ReadReplyError::Legacy { .. })
        ));
        assert!(matches!(
            parse_reply("garbage"),
            Err(ReadReplyError::Malformed(_))
        ));
    }
}
