//! Configuration: the `config.toml` schema, `${VAR}` expansion, defaults and validation.
//!
//! The file is parsed in stages so that one run reports every mistake, each with its key
//! path: TOML syntax, then `${VAR}` expansion, then the schema (unknown keys and wrong
//! types), then values (ranges, combinations, strict-mode rules). The raw, file-facing
//! structs reject nothing silently; the validated [`Config`] is what the rest of the
//! product sees. This module never touches the network, the store or key material; it
//! reads the config file and the environment, and checks the permissions of key files
//! the config names.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Where the CLI looks for a config file when `--config` is not given.
pub const ETC_CONFIG: &str = "/etc/aisopod/config.toml";
/// Environment variable naming the config file.
pub const CONFIG_ENV: &str = "AISOPOD_CONFIG";
/// Environment variables that override `[security] mode`, strongest first.
pub const SECURITY_MODE_ENV: [&str; 2] = ["AISOPOD_SECURITY_MODE", "SECURITY_MODE"];
/// Secrets shorter than this are refused in strict mode.
pub const MIN_SECRET_BYTES: usize = 32;

/// One problem with the configuration, tied to the key that causes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key path, such as `server.bind`; empty for the file as a whole.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin} has {} error(s):\n{}", issues.len(), list(issues))]
    Invalid {
        origin: String,
        issues: Vec<ConfigIssue>,
    },
}

impl ConfigError {
    /// Every issue, for callers that print them one per line.
    pub fn issues(&self) -> Vec<ConfigIssue> {
        match self {
            ConfigError::Read { .. } => vec![ConfigIssue {
                key: String::new(),
                message: self.to_string(),
            }],
            ConfigError::Invalid { issues, .. } => issues.clone(),
        }
    }
}

fn list(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(|issue| format!("  - {issue}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the process environment contributes to the configuration.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
    /// True when the binary runs from a system location (`/usr/...`) rather than a
    /// checkout, which decides the default data directory.
    fn installed(&self) -> bool;
}

/// An installed appliance with nothing set in its environment: the defaults exactly as
/// a flashed device gets them, for judging them in tests, benchmarks and fuzzing.
#[derive(Debug, Default, Clone, Copy)]
pub struct ApplianceEnvironment;

impl Environment for ApplianceEnvironment {
    fn var(&self, _: &str) -> Option<String> {
        None
    }

    fn installed(&self) -> bool {
        true
    }
}

/// The real process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn installed(&self) -> bool {
        std::env::current_exe()
            .map(|exe| exe.starts_with("/usr/"))
            .unwrap_or(false)
    }
}

/// Where the configuration came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    Defaults,
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::File(path) => write!(f, "{}", path.display()),
            ConfigSource::Defaults => f.write_str("built-in defaults"),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: ConfigSource,
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub tls: TlsConfig,
    pub security: SecurityConfig,
    pub auth: AuthConfig,
    pub rate_limit: RateLimitConfig,
    pub audit: AuditConfig,
    pub logging: LoggingConfig,
    pub tools: ToolsConfig,
    pub approval: ApprovalConfig,
    /// The agents tool calls act for; never empty (a built-in `default` agent when the
    /// file names none).
    pub agents: Vec<AgentConfig>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    pub public_url: Option<String>,
    pub http_redirect_bind: Option<SocketAddr>,
    pub max_body: u64,
    pub request_timeout: Duration,
    pub max_in_flight: usize,
    pub memory_budget: u64,
    pub max_connections: usize,
    /// Open connections one address (IPv4, or IPv6 /64) may hold.
    pub max_connections_per_address: usize,
    /// Accept to the first complete request head (TLS, protocol detection, headers).
    pub handshake_timeout: Duration,
    /// A connection with no request or response in progress for this long is closed.
    pub idle_timeout: Duration,
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub runtime_dir: PathBuf,
    pub cache_size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    SelfSigned,
    Files { cert: PathBuf, key: PathBuf },
    Off,
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub mode: TlsMode,
    pub server_validity: Duration,
    pub ca_validity: Duration,
    pub extra_names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    Local,
    Strict,
}

impl SecurityMode {
    fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "local" => Some(SecurityMode::Local),
            "strict" => Some(SecurityMode::Strict),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SecurityConfig {
    pub mode: SecurityMode,
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    Password,
    Token,
    Device,
    None,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub mode: AuthMode,
    pub token: Option<Secret>,
    pub jwt_secret: Option<Secret>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub claim_code_ttl: Duration,
    pub password: PasswordConfig,
    pub lockout_threshold: u32,
    pub lockout_duration: Duration,
    pub device_code_ttl: Duration,
    pub device_poll_interval: Duration,
}

/// Password hashing and policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordConfig {
    pub min_length: usize,
    pub max_length: usize,
    /// argon2id memory cost in KiB.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Password hashes computed at once; further logins wait briefly, then get 503.
    pub max_concurrent_hashes: usize,
}

#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    pub auth_per_minute: u32,
    pub auth_burst: u32,
    pub api_per_minute: u32,
    pub api_burst: u32,
    /// Proxies whose `X-Forwarded-For` is believed, as networks.
    pub trusted_proxies: Vec<IpNet>,
    /// IPv6 clients are counted per network of this prefix length (one host usually
    /// holds a whole /64).
    pub ipv6_prefix: u8,
}

/// An IP network such as `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let invalid =
            || format!("{text:?} is not an IP address or network such as 10.0.0.1 or 10.0.0.0/8");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| invalid())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(invalid)?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        fn bits(ip: IpAddr) -> u128 {
            match ip {
                IpAddr::V4(v4) => u128::from(u32::from(v4)),
                IpAddr::V6(v6) => u128::from(v6),
            }
        }
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            (IpAddr::V6(_), IpAddr::V4(_)) => return false,
            _ => ip,
        };
        let width = if self.addr.is_ipv4() { 32 } else { 128 };
        let shift = width - u32::from(self.prefix);
        if shift >= 128 {
            return true;
        }
        (bits(ip) >> shift) == (bits(self.addr) >> shift)
    }
}

#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub retention_days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LoggingConfig {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Debug, Clone)]
pub struct ToolsConfig {
    pub sandbox: SandboxConfig,
    pub files: FilesConfig,
    pub shell: ShellConfig,
}

/// Which shell commands run without a person's approval (see `policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShellPolicy {
    /// Only `allowed_programs` run without approval (the default in strict mode).
    Allowlist,
    /// Everything runs unless a rule asks for approval or denies (the default in local mode).
    Denylist,
}

/// What a user rule does to the simple commands it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShellRuleAction {
    Allow,
    Approve,
    Deny,
}

/// One `[[tools.shell.rules]]` entry, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellRule {
    /// Unique name, reported as `user.<id>` when the rule decides.
    pub id: String,
    pub action: ShellRuleAction,
    /// Program name (`git`) or absolute path (`/usr/bin/git`).
    pub program: String,
    /// Glob over the arguments joined by single spaces; `None` matches any arguments.
    pub args: Option<String>,
}

/// `[tools.shell]`: the command filter's policy.
#[derive(Debug, Clone)]
pub struct ShellConfig {
    pub policy: ShellPolicy,
    pub allowed_programs: Vec<String>,
    pub allowed_hosts: Vec<String>,
    pub rules: Vec<ShellRule>,
}

/// `[tools.files]`: caps of the workspace file tools.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    pub max_read: u64,
    pub max_write: u64,
    pub max_entries: usize,
}

/// `[approval]`: how long a tool call waits for a human.
#[derive(Debug, Clone)]
pub struct ApprovalConfig {
    pub timeout: Duration,
}

/// One `[[agents]]` entry: which tools it may call and where its files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    pub name: String,
    pub tools: Vec<String>,
    pub workspace: PathBuf,
}

/// The name of the agent that exists when the configuration names none.
pub const DEFAULT_AGENT: &str = "default";

/// How tool code is isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxRuntime {
    /// aisopod's own sandbox: namespaces, cgroups, seccomp and Landlock.
    Namespaces,
    /// No isolation at all: the interpreter runs as the gateway's user. Development only;
    /// refused in strict mode.
    None,
}

/// `[tools.sandbox]`: where and how agent tools run code.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub enabled: bool,
    pub runtime: SandboxRuntime,
    /// Limits every run gets unless a request tightens them.
    pub limits: crate::sandbox::Limits,
    pub allowed_languages: Vec<crate::sandbox::Language>,
    /// Largest program accepted, in bytes.
    pub max_code: u64,
    /// Runs at once; more wait up to `queue_timeout`, then are refused as busy.
    pub max_concurrent: usize,
    pub queue_timeout: Duration,
    /// Which cgroup interface to use.
    pub cgroup: crate::sandbox::cgroups::Preference,
}

// ---------------------------------------------------------------------------------------
// File-facing schema. Every table rejects unknown keys (reported through serde_ignored so
// that all of them are listed, not just the first) and every field has a default.

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    server: RawServer,
    storage: RawStorage,
    tls: RawTls,
    security: RawSecurity,
    auth: RawAuth,
    rate_limit: RawRateLimit,
    audit: RawAudit,
    logging: RawLogging,
    tools: RawTools,
    approval: RawApproval,
    agents: Vec<RawAgent>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawApproval {
    timeout: Seconds,
}

impl Default for RawApproval {
    fn default() -> Self {
        Self {
            timeout: Seconds(Duration::from_secs(55)),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawAgent {
    name: String,
    tools: Option<Vec<String>>,
    workspace: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawFiles {
    max_read: Size,
    max_write: Size,
    max_entries: u64,
}

impl Default for RawFiles {
    fn default() -> Self {
        Self {
            max_read: Size(1 << 20),
            max_write: Size(1 << 20),
            max_entries: 1000,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawServer {
    bind: String,
    public_url: Option<String>,
    http_redirect_bind: Option<String>,
    max_body: Size,
    request_timeout: Seconds,
    max_in_flight: u64,
    memory_budget: Size,
    max_connections: u64,
    max_connections_per_address: u64,
    handshake_timeout: Seconds,
    idle_timeout: Seconds,
    shutdown_timeout: Seconds,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            bind: "0.0.0.0:3080".into(),
            public_url: None,
            http_redirect_bind: None,
            max_body: Size(1024 * 1024),
            request_timeout: Seconds(Duration::from_secs(30)),
            max_in_flight: 256,
            memory_budget: Size(96 * 1024 * 1024),
            max_connections: 1024,
            max_connections_per_address: 64,
            handshake_timeout: Seconds(Duration::from_secs(10)),
            idle_timeout: Seconds(Duration::from_secs(60)),
            shutdown_timeout: Seconds(Duration::from_secs(10)),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawStorage {
    data_dir: Option<PathBuf>,
    runtime_dir: Option<PathBuf>,
    cache_size: Size,
}

impl Default for RawStorage {
    fn default() -> Self {
        Self {
            data_dir: None,
            runtime_dir: None,
            cache_size: Size(8 * 1024 * 1024),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RawTlsMode {
    SelfSigned,
    Files,
    Off,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawTls {
    mode: RawTlsMode,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    server_validity: Seconds,
    ca_validity: Seconds,
    extra_names: Vec<String>,
}

impl Default for RawTls {
    fn default() -> Self {
        Self {
            mode: RawTlsMode::SelfSigned,
            cert_file: None,
            key_file: None,
            server_validity: Seconds(Duration::from_secs(90 * 86_400)),
            ca_validity: Seconds(Duration::from_secs(10 * 365 * 86_400)),
            extra_names: Vec::new(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSecurity {
    mode: SecurityMode,
    cors_origins: Vec<String>,
}

impl Default for RawSecurity {
    fn default() -> Self {
        Self {
            mode: SecurityMode::Strict,
            cors_origins: Vec::new(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawAuth {
    mode: AuthMode,
    #[serde(serialize_with = "redacted")]
    token: Option<Secret>,
    #[serde(serialize_with = "redacted")]
    jwt_secret: Option<Secret>,
    access_token_ttl: Option<Seconds>,
    refresh_token_ttl: Seconds,
    claim_code_ttl: Seconds,
    password_min_length: u64,
    argon2_memory: Size,
    argon2_iterations: u64,
    argon2_parallelism: u64,
    max_concurrent_hashes: u64,
    lockout_threshold: u64,
    lockout_duration: Seconds,
    device_code_ttl: Seconds,
    device_poll_interval: Seconds,
}

impl Default for RawAuth {
    fn default() -> Self {
        Self {
            mode: AuthMode::Password,
            token: None,
            jwt_secret: None,
            access_token_ttl: None,
            refresh_token_ttl: Seconds(Duration::from_secs(7 * 86_400)),
            claim_code_ttl: Seconds(Duration::from_secs(3600)),
            password_min_length: 15,
            argon2_memory: Size(19 * 1024 * 1024),
            argon2_iterations: 2,
            argon2_parallelism: 1,
            max_concurrent_hashes: 2,
            lockout_threshold: 10,
            lockout_duration: Seconds(Duration::from_secs(15 * 60)),
            device_code_ttl: Seconds(Duration::from_secs(600)),
            device_poll_interval: Seconds(Duration::from_secs(5)),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawRateLimit {
    auth_per_minute: u64,
    auth_burst: u64,
    api_per_minute: u64,
    api_burst: u64,
    trusted_proxies: Vec<String>,
    ipv6_prefix: u64,
}

impl Default for RawRateLimit {
    fn default() -> Self {
        Self {
            auth_per_minute: 10,
            auth_burst: 5,
            api_per_minute: 30,
            api_burst: 30,
            trusted_proxies: Vec::new(),
            ipv6_prefix: 64,
        }
    }
}

fn redacted<S: serde::Serializer>(value: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_some("***"),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawAudit {
    retention_days: u64,
}

impl Default for RawAudit {
    fn default() -> Self {
        Self { retention_days: 90 }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawLogging {
    format: LogFormat,
    filter: String,
}

impl Default for RawLogging {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawTools {
    sandbox: RawSandbox,
    files: RawFiles,
    shell: RawShell,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawShell {
    /// `None`: by security mode (strict: allowlist, local: denylist).
    policy: Option<String>,
    allowed_programs: Vec<String>,
    allowed_hosts: Vec<String>,
    rules: Vec<RawShellRule>,
}

impl Default for RawShell {
    fn default() -> Self {
        Self {
            policy: None,
            allowed_programs: crate::policy::DEFAULT_ALLOWED_PROGRAMS
                .iter()
                .map(|p| p.to_string())
                .collect(),
            allowed_hosts: Vec::new(),
            rules: Vec::new(),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawShellRule {
    id: String,
    action: String,
    program: String,
    args: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSandbox {
    enabled: bool,
    runtime: String,
    timeout: Seconds,
    memory_limit: Size,
    cpu_limit: CpuFraction,
    pids_limit: u64,
    network: bool,
    allowed_languages: Vec<String>,
    max_output: Size,
    max_concurrent: u64,
    max_code: Size,
    tmp_size: Size,
    max_files: u64,
    queue_timeout: Seconds,
    cgroup: String,
}

impl Default for RawSandbox {
    fn default() -> Self {
        Self {
            enabled: true,
            runtime: "namespaces".into(),
            timeout: Seconds(Duration::from_secs(30)),
            memory_limit: Size(256 << 20),
            cpu_limit: CpuFraction(0.5),
            pids_limit: 64,
            network: false,
            allowed_languages: vec!["python".into(), "javascript".into(), "bash".into()],
            max_output: Size(1 << 20),
            max_concurrent: 2,
            max_code: Size(256 << 10),
            tmp_size: Size(64 << 20),
            max_files: 16,
            queue_timeout: Seconds(Duration::from_secs(10)),
            cgroup: "auto".into(),
        }
    }
}

/// A fraction of one CPU, written as a number (`0.5`) or a string (`"0.5"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuFraction(pub f64);

impl Serialize for CpuFraction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for CpuFraction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = CpuFraction;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a fraction of one CPU such as 0.5 or \"0.5\"")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<CpuFraction, E> {
                Ok(CpuFraction(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<CpuFraction, E> {
                Ok(CpuFraction(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<CpuFraction, E> {
                Ok(CpuFraction(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CpuFraction, E> {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(CpuFraction)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "invalid CPU fraction {v:?}: write a number such as \"0.5\""
                        ))
                    })
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A duration written as a string with a unit (`"30s"`, `"5m"`, `"7d"`) or a bare
/// number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub Duration);

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a duration such as \"30s\", \"5m\", \"2h\", \"7d\" or a number of seconds",
                )
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Seconds, E> {
                u64::try_from(v)
                    .map(|secs| Seconds(Duration::from_secs(secs)))
                    .map_err(|_| E::custom(format!("invalid duration {v}: must not be negative")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(Duration::from_secs(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Seconds, E> {
                parse_duration(v).map(Seconds).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Parses `"30s"`, `"5m"`, `"2h"`, `"7d"`, `"1h 30m"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if let Ok(secs) = trimmed.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(trimmed).map_err(|err| {
        format!(
            "invalid duration {text:?} ({err}): write a number and a unit, such as \"30s\", \"5m\", \"2h\" or \"7d\""
        )
    })
}

/// A size in bytes written as a number or with a binary unit: `"512k"`, `"256m"`, `"1g"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"512k\", \"256m\", \"1g\" or a number of bytes")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("invalid size {v}: must not be negative")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map(Size).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Parses a size with an optional binary unit (`k`, `m`, `g`, also written `kb`, `KiB`,
/// ...). Written by hand because the size crates disagree on whether `m` means 10^6 or
/// 2^20, and memory limits here always mean 2^20.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = || {
        format!(
            "invalid size {text:?}: write a number and a unit, such as \"512k\", \"256m\" or \"1g\""
        )
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let number: u64 = digits.parse().map_err(|_| invalid())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(invalid()),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("invalid size {text:?}: too large"))
}

// ---------------------------------------------------------------------------------------
// Loading.

/// Finds the config file: `--config`, then `$AISOPOD_CONFIG`, then `/etc/aisopod/config.toml`
/// if it exists. `None` means built-in defaults.
pub fn locate(explicit: Option<&Path>, env: &dyn Environment) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    if let Some(path) = env.var(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let etc = Path::new(ETC_CONFIG);
    etc.exists().then(|| etc.to_path_buf())
}

/// Loads the configuration from `path`, or the built-in defaults when `None`.
pub fn load(path: Option<&Path>, env: &dyn Environment) -> Result<Config, ConfigError> {
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            parse(&text, ConfigSource::File(path.to_path_buf()), env)
        }
        None => parse("", ConfigSource::Defaults, env),
    }
}

/// Parses and validates config text, reporting every problem found.
pub fn parse(
    text: &str,
    source: ConfigSource,
    env: &dyn Environment,
) -> Result<Config, ConfigError> {
    let invalid = |issues| ConfigError::Invalid {
        origin: source.to_string(),
        issues,
    };
    let mut value: toml::Value = match text.parse::<toml::Table>() {
        Ok(table) => toml::Value::Table(table),
        Err(err) => {
            let message = err.message().to_string();
            let place = err
                .span()
                .map(|span| line_col(text, span.start))
                .map(|(line, col)| format!("line {line}, column {col}: "))
                .unwrap_or_default();
            return Err(invalid(vec![ConfigIssue {
                key: String::new(),
                message: format!("{place}invalid TOML: {message}"),
            }]));
        }
    };
    let mut issues = Vec::new();
    expand_env(&mut value, &mut Vec::new(), env, &mut issues);
    let unexpanded: Vec<String> = issues.iter().map(|issue| issue.key.clone()).collect();
    let raw = deserialize_collecting(value, &mut issues);
    let config = raw.and_then(|raw| validate(raw, source.clone(), env, &mut issues));
    // A value whose `${VAR}` could not be expanded is still its template text: what the
    // checks after expansion say of it (such as the length of "${TOKEN}") is not about
    // the user's value, so only the missing variable is reported for that key.
    let mut index = 0;
    issues.retain(|issue| {
        index += 1;
        index <= unexpanded.len() || !unexpanded.contains(&issue.key)
    });
    match config {
        Some(config) if issues.is_empty() => Ok(config),
        _ => Err(invalid(issues)),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Replaces `${NAME}` in every string value with the environment variable's value.
/// `$${` stands for a literal `${`.
fn expand_env(
    value: &mut toml::Value,
    path: &mut Vec<String>,
    env: &dyn Environment,
    issues: &mut Vec<ConfigIssue>,
) {
    match value {
        toml::Value::String(text) if text.contains('$') => match expand_str(text, env) {
            Ok(expanded) => *text = expanded,
            Err(message) => issues.push(ConfigIssue {
                key: path.join("."),
                message,
            }),
        },
        toml::Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                path.push(index.to_string());
                expand_env(item, path, env, issues);
                path.pop();
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                path.push(key.clone());
                expand_env(item, path, env, issues);
                path.pop();
            }
        }
        _ => {}
    }
}

fn expand_str(text: &str, env: &dyn Environment) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        let (before, from_dollar) = rest.split_at(start);
        out.push_str(before);
        if let Some(after) = from_dollar.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = from_dollar.strip_prefix("${") {
            let end = after.find('}').ok_or_else(|| {
                "unterminated ${...}: write ${NAME}, or $${ for a literal ${".to_string()
            })?;
            let (name, tail) = after.split_at(end);
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(format!("invalid variable name {name:?} in ${{...}}"));
            }
            let value = env
                .var(name)
                .ok_or_else(|| format!("environment variable {name} is not set"))?;
            out.push_str(&value);
            rest = tail.get(1..).unwrap_or("");
        } else {
            out.push('$');
            rest = from_dollar.get(1..).unwrap_or("");
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Deserializes the schema, collecting every unknown key and every type error: each
/// wrong value is reported, removed, and the rest deserialized again.
fn deserialize_collecting(
    mut value: toml::Value,
    issues: &mut Vec<ConfigIssue>,
) -> Option<RawConfig> {
    const MAX_TYPE_ERRORS: usize = 64;
    let mut unknown = BTreeSet::new();
    for _ in 0..MAX_TYPE_ERRORS {
        let mut ignored = Vec::new();
        let mut note_unknown = |path: serde_ignored::Path<'_>| ignored.push(path.to_string());
        let result: Result<RawConfig, _> = serde_path_to_error::deserialize(
            serde_ignored::Deserializer::new(value.clone(), &mut note_unknown),
        );
        unknown.extend(ignored);
        match result {
            Ok(raw) => {
                issues.extend(unknown.into_iter().map(|key| ConfigIssue {
                    message: "unknown key (check the spelling and the table it is in)".into(),
                    key,
                }));
                return Some(raw);
            }
            Err(err) => {
                // Arrays of tables print as `rules[0].x`; keys here are dotted throughout.
                let key = err.path().to_string().replace('[', ".").replace(']', "");
                let inner = err.into_inner().message().to_string();
                let message = match inner.strip_prefix("unknown field ") {
                    Some(rest) => format!("unknown key {rest}"),
                    None => inner,
                };
                let removed = remove_path(&mut value, &key);
                issues.push(ConfigIssue { key, message });
                if !removed {
                    return None;
                }
            }
        }
    }
    None
}

fn remove_path(value: &mut toml::Value, dotted: &str) -> bool {
    let segments: Vec<&str> = dotted
        .split('.')
        .filter(|s| !s.is_empty() && *s != "?")
        .collect();
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut current = value;
    for segment in parents {
        current = match current {
            toml::Value::Table(table) => match table.get_mut(*segment) {
                Some(next) => next,
                None => return false,
            },
            toml::Value::Array(items) => {
                match segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(next) => next,
                    None => return false,
                }
            }
            _ => return false,
        };
    }
    match current {
        toml::Value::Table(table) => table.remove(*last).is_some(),
        toml::Value::Array(items) => match last.parse::<usize>() {
            Ok(index) if index < items.len() => {
                items.remove(index);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

struct Issues<'a>(&'a mut Vec<ConfigIssue>);

impl Issues<'_> {
    fn push(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(ConfigIssue {
            key: key.into(),
            message: message.into(),
        });
    }

    fn range(&mut self, key: &str, value: u64, min: u64, max: u64) -> u64 {
        if value < min || value > max {
            self.push(
                key,
                format!("{value} is out of range: must be between {min} and {max}"),
            );
        }
        value.clamp(min, max)
    }

    fn duration(&mut self, key: &str, value: Duration, min: Duration, max: Duration) -> Duration {
        if value < min || value > max {
            self.push(
                key,
                format!(
                    "{} is out of range: must be between {} and {}",
                    humantime::format_duration(value),
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ),
            );
        }
        value.clamp(min, max)
    }
}

fn validate(
    raw: RawConfig,
    source: ConfigSource,
    env: &dyn Environment,
    issues: &mut Vec<ConfigIssue>,
) -> Option<Config> {
    let mut check = Issues(issues);
    let bind = parse_bind(&raw.server.bind).unwrap_or_else(|message| {
        check.push("server.bind", message);
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
    });
    let http_redirect_bind = raw.server.http_redirect_bind.as_deref().and_then(|text| {
        parse_bind(text)
            .map_err(|message| check.push("server.http_redirect_bind", message))
            .ok()
    });
    if let Some(url) = &raw.server.public_url
        && (!(url.starts_with("https://") || url.starts_with("http://"))
            || url.contains(char::is_whitespace))
    {
        check.push(
            "server.public_url",
            format!("{url:?} is not an http(s) URL such as https://aisopod.local:3080"),
        );
    }
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    let server = ServerConfig {
        bind,
        public_url: raw
            .server
            .public_url
            .map(|u| u.trim_end_matches('/').to_string()),
        http_redirect_bind,
        max_body: check.range("server.max_body", raw.server.max_body.0, KIB, 1024 * MIB),
        request_timeout: check.duration(
            "server.request_timeout",
            raw.server.request_timeout.0,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        ),
        max_in_flight: check.range("server.max_in_flight", raw.server.max_in_flight, 1, 100_000)
            as usize,
        memory_budget: check.range(
            "server.memory_budget",
            raw.server.memory_budget.0,
            16 * MIB,
            64 * 1024 * MIB,
        ),
        max_connections: check.range(
            "server.max_connections",
            raw.server.max_connections,
            1,
            1_000_000,
        ) as usize,
        max_connections_per_address: check.range(
            "server.max_connections_per_address",
            raw.server.max_connections_per_address,
            1,
            1_000_000,
        ) as usize,
        handshake_timeout: check.duration(
            "server.handshake_timeout",
            raw.server.handshake_timeout.0,
            Duration::from_secs(1),
            Duration::from_secs(120),
        ),
        idle_timeout: check.duration(
            "server.idle_timeout",
            raw.server.idle_timeout.0,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        ),
        shutdown_timeout: check.duration(
            "server.shutdown_timeout",
            raw.server.shutdown_timeout.0,
            Duration::from_secs(0),
            Duration::from_secs(600),
        ),
    };

    let installed = env.installed();
    let data_dir = raw
        .storage
        .data_dir
        .or_else(|| env.var("STATE_DIRECTORY").map(PathBuf::from))
        .unwrap_or_else(|| {
            if installed {
                PathBuf::from("/var/lib/aisopod")
            } else {
                PathBuf::from("aisopod-data")
            }
        });
    if data_dir.as_os_str().is_empty() {
        check.push("storage.data_dir", "must not be empty");
    }
    let runtime_dir = raw
        .storage
        .runtime_dir
        .or_else(|| env.var("RUNTIME_DIRECTORY").map(PathBuf::from))
        .unwrap_or_else(|| {
            if installed {
                PathBuf::from("/run/aisopod")
            } else {
                data_dir.join("run")
            }
        });
    let storage = StorageConfig {
        data_dir,
        runtime_dir,
        cache_size: check.range(
            "storage.cache_size",
            raw.storage.cache_size.0,
            MIB,
            4096 * MIB,
        ),
    };

    let tls_mode = match raw.tls.mode {
        RawTlsMode::SelfSigned => {
            for key in ["cert_file", "key_file"] {
                let given = if key == "cert_file" {
                    &raw.tls.cert_file
                } else {
                    &raw.tls.key_file
                };
                if given.is_some() {
                    check.push(
                        &format!("tls.{key}"),
                        "only used with [tls] mode = \"files\"",
                    );
                }
            }
            TlsMode::SelfSigned
        }
        RawTlsMode::Off => TlsMode::Off,
        RawTlsMode::Files => match (raw.tls.cert_file, raw.tls.key_file) {
            (Some(cert), Some(key)) => TlsMode::Files { cert, key },
            (cert, key) => {
                if cert.is_none() {
                    check.push(
                        "tls.cert_file",
                        "required with [tls] mode = \"files\": the PEM certificate chain",
                    );
                }
                if key.is_none() {
                    check.push(
                        "tls.key_file",
                        "required with [tls] mode = \"files\": the PEM private key",
                    );
                }
                TlsMode::Off
            }
        },
    };
    for (index, name) in raw.tls.extra_names.iter().enumerate() {
        if name.parse::<IpAddr>().is_err() && !is_dns_name(name) {
            check.push(
                &format!("tls.extra_names.{index}"),
                format!("{name:?} is neither a DNS name nor an IP address"),
            );
        }
    }
    let tls = TlsConfig {
        mode: tls_mode,
        server_validity: check.duration(
            "tls.server_validity",
            raw.tls.server_validity.0,
            Duration::from_secs(86_400),
            Duration::from_secs(90 * 86_400),
        ),
        ca_validity: check.duration(
            "tls.ca_validity",
            raw.tls.ca_validity.0,
            Duration::from_secs(365 * 86_400),
            Duration::from_secs(30 * 365 * 86_400),
        ),
        extra_names: raw.tls.extra_names,
    };

    let mode_override = SECURITY_MODE_ENV
        .iter()
        .find_map(|name| env.var(name).map(|value| (*name, value)));
    let mode = match mode_override {
        Some((name, value)) => SecurityMode::parse(&value).unwrap_or_else(|| {
            check.push(
                "security.mode",
                format!("environment variable {name} is {value:?}: use \"local\" or \"strict\""),
            );
            raw.security.mode
        }),
        None => raw.security.mode,
    };
    for (index, origin) in raw.security.cors_origins.iter().enumerate() {
        if origin != "*" && http::HeaderValue::from_str(origin).is_err()
            || !(origin == "*" || origin.starts_with("https://") || origin.starts_with("http://"))
        {
            check.push(
                &format!("security.cors_origins.{index}"),
                format!("{origin:?} is not an origin such as https://dashboard.example"),
            );
        }
    }
    let security = SecurityConfig {
        mode,
        cors_origins: raw.security.cors_origins,
    };
    let auth = validate_auth(raw.auth, env, &mut check);
    let rate_limit = RateLimitConfig {
        auth_per_minute: check.range(
            "rate_limit.auth_per_minute",
            raw.rate_limit.auth_per_minute,
            1,
            100_000,
        ) as u32,
        auth_burst: check.range(
            "rate_limit.auth_burst",
            raw.rate_limit.auth_burst,
            1,
            100_000,
        ) as u32,
        api_per_minute: check.range(
            "rate_limit.api_per_minute",
            raw.rate_limit.api_per_minute,
            1,
            1_000_000,
        ) as u32,
        api_burst: check.range(
            "rate_limit.api_burst",
            raw.rate_limit.api_burst,
            1,
            1_000_000,
        ) as u32,
        ipv6_prefix: check.range(
            "rate_limit.ipv6_prefix",
            raw.rate_limit.ipv6_prefix,
            32,
            128,
        ) as u8,
        trusted_proxies: raw
            .rate_limit
            .trusted_proxies
            .iter()
            .enumerate()
            .filter_map(|(index, text)| {
                IpNet::parse(text)
                    .map_err(|message| {
                        check.push(&format!("rate_limit.trusted_proxies.{index}"), message)
                    })
                    .ok()
            })
            .collect(),
    };
    let audit = AuditConfig {
        retention_days: check.range("audit.retention_days", raw.audit.retention_days, 1, 36_500)
            as u32,
    };
    if let Err(err) = tracing_subscriber::EnvFilter::try_new(&raw.logging.filter) {
        check.push(
            "logging.filter",
            format!("invalid filter {:?}: {err}", raw.logging.filter),
        );
    }
    let logging = LoggingConfig {
        format: raw.logging.format,
        filter: raw.logging.filter,
    };
    let tools = ToolsConfig {
        sandbox: validate_sandbox(raw.tools.sandbox, &mut check),
        files: FilesConfig {
            max_read: check.range(
                "tools.files.max_read",
                raw.tools.files.max_read.0,
                1,
                64 * MIB,
            ),
            max_write: check.range(
                "tools.files.max_write",
                raw.tools.files.max_write.0,
                1,
                64 * MIB,
            ),
            max_entries: check.range(
                "tools.files.max_entries",
                raw.tools.files.max_entries,
                1,
                100_000,
            ) as usize,
        },
        shell: validate_shell(raw.tools.shell, security.mode, &mut check),
    };
    let approval = ApprovalConfig {
        timeout: check.duration(
            "approval.timeout",
            raw.approval.timeout.0,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        ),
    };
    let agents = validate_agents(raw.agents, &storage.data_dir, &mut check);
    let config = Config {
        source,
        server,
        storage,
        tls,
        security,
        auth,
        rate_limit,
        audit,
        logging,
        tools,
        approval,
        agents,
    };
    if config.auth.mode == AuthMode::None && !config.server.bind.ip().is_loopback() {
        issues.push(ConfigIssue {
            key: "auth.mode".into(),
            message: format!(
                "auth mode \"none\" is for local development and only allowed on a loopback address, not {}",
                config.server.bind
            ),
        });
    }
    if config.security.mode == SecurityMode::Strict {
        issues.extend(config.strict_violations());
    }
    Some(config)
}

/// Agent names: short, and safe as a directory name.
fn valid_agent_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphanumeric)
}

fn validate_agents(
    raw: Vec<RawAgent>,
    data_dir: &Path,
    check: &mut Issues<'_>,
) -> Vec<AgentConfig> {
    let workspace = |name: &str| data_dir.join("workspaces").join(name);
    let all_tools = || {
        crate::gateway::tools::TOOL_NAMES
            .iter()
            .map(|t| t.to_string())
            .collect()
    };
    if raw.is_empty() {
        return vec![AgentConfig {
            name: DEFAULT_AGENT.into(),
            tools: all_tools(),
            workspace: workspace(DEFAULT_AGENT),
        }];
    }
    let mut agents: Vec<AgentConfig> = Vec::new();
    for (index, agent) in raw.into_iter().enumerate() {
        let key = format!("agents.{index}");
        if !valid_agent_name(&agent.name) {
            check.push(
                &format!("{key}.name"),
                format!(
                    "{:?} is not a valid agent name: use 1 to 32 lowercase letters, digits, '-' or '_', starting with a letter or digit",
                    agent.name
                ),
            );
            continue;
        }
        if agents.iter().any(|a| a.name == agent.name) {
            check.push(
                &format!("{key}.name"),
                format!("agent {:?} is defined twice", agent.name),
            );
            continue;
        }
        let tools = agent.tools.unwrap_or_else(all_tools);
        for (t, tool) in tools.iter().enumerate() {
            if !crate::gateway::tools::TOOL_NAMES.contains(&tool.as_str()) {
                check.push(
                    &format!("{key}.tools.{t}"),
                    format!(
                        "unknown tool {tool:?}: the tools are {}",
                        crate::gateway::tools::TOOL_NAMES.join(", ")
                    ),
                );
            }
        }
        let workspace = match agent.workspace {
            Some(path) if path.is_absolute() && data_dir.starts_with(&path) => {
                check.push(
                    &format!("{key}.workspace"),
                    format!(
                        "{} holds the gateway's data directory {} (its store and master key): give the agent a directory of its own",
                        path.display(),
                        data_dir.display()
                    ),
                );
                continue;
            }
            Some(path)
                if path.starts_with(data_dir) && !path.starts_with(data_dir.join("workspaces")) =>
            {
                check.push(
                    &format!("{key}.workspace"),
                    format!(
                        "{} is inside the gateway's data directory: use a directory under {} or outside it",
                        path.display(),
                        data_dir.join("workspaces").display()
                    ),
                );
                continue;
            }
            Some(path) if path.is_absolute() => path,
            Some(path) => {
                check.push(
                    &format!("{key}.workspace"),
                    format!("{} is not an absolute path", path.display()),
                );
                continue;
            }
            None => workspace(&agent.name),
        };
        agents.push(AgentConfig {
            name: agent.name,
            tools,
            workspace,
        });
    }
    agents
}

fn validate_sandbox(raw: RawSandbox, check: &mut Issues<'_>) -> SandboxConfig {
    use crate::sandbox::spec::ranges;
    use crate::sandbox::{Language, Limits};
    let runtime = match raw.runtime.trim().to_ascii_lowercase().as_str() {
        "namespaces" => SandboxRuntime::Namespaces,
        "none" => SandboxRuntime::None,
        "docker" | "wasm" => {
            check.push(
                "tools.sandbox.runtime",
                format!(
                    "{:?} is not supported: aisopod isolates tools with the kernel's own namespaces, cgroups, seccomp and Landlock (Docker needs a root daemon and is heavy on a Raspberry Pi; WebAssembly cannot run the Python, Node and Bash programs agents write); use \"namespaces\"",
                    raw.runtime
                ),
            );
            SandboxRuntime::Namespaces
        }
        _ => {
            check.push(
                "tools.sandbox.runtime",
                format!("unknown runtime {:?}: use \"namespaces\" (or \"none\" for development, without isolation)", raw.runtime),
            );
            SandboxRuntime::Namespaces
        }
    };
    let mut allowed_languages = Vec::new();
    for (index, name) in raw.allowed_languages.iter().enumerate() {
        match Language::parse(name) {
            Ok(language) if !allowed_languages.contains(&language) => {
                allowed_languages.push(language)
            }
            Ok(_) => {}
            Err(_) => check.push(
                &format!("tools.sandbox.allowed_languages.{index}"),
                format!("unknown language {name:?}: use \"python\", \"javascript\" or \"bash\""),
            ),
        }
    }
    if raw.enabled && raw.allowed_languages.is_empty() {
        check.push(
            "tools.sandbox.allowed_languages",
            "is empty while the sandbox is enabled: list languages or set enabled = false",
        );
    }
    let cgroup = match raw.cgroup.trim().to_ascii_lowercase().as_str() {
        "auto" => crate::sandbox::cgroups::Preference::Auto,
        "v1" => crate::sandbox::cgroups::Preference::V1,
        "v2" => crate::sandbox::cgroups::Preference::V2,
        _ => {
            check.push(
                "tools.sandbox.cgroup",
                format!(
                    "unknown cgroup interface {:?}: use \"auto\", \"v1\" or \"v2\"",
                    raw.cgroup
                ),
            );
            crate::sandbox::cgroups::Preference::Auto
        }
    };
    let cpu = raw.cpu_limit.0;
    let (cpu_min, cpu_max) = ranges::CPU_MILLIS;
    let cpu_millis =
        if cpu.is_finite() && (f64::from(cpu_min)..=f64::from(cpu_max)).contains(&(cpu * 1000.0)) {
            (cpu * 1000.0).round() as u32
        } else {
            check.push(
                "tools.sandbox.cpu_limit",
                format!(
                    "{cpu} is out of range: must be between {} and {} (a fraction of one CPU)",
                    f64::from(cpu_min) / 1000.0,
                    f64::from(cpu_max) / 1000.0
                ),
            );
            500
        };
    let max_output = check.range(
        "tools.sandbox.max_output",
        raw.max_output.0,
        ranges::MAX_OUTPUT.0,
        ranges::MAX_OUTPUT.1,
    );
    let limits = Limits {
        timeout: check.duration(
            "tools.sandbox.timeout",
            raw.timeout.0,
            ranges::TIMEOUT.0,
            ranges::TIMEOUT.1,
        ),
        memory: check.range(
            "tools.sandbox.memory_limit",
            raw.memory_limit.0,
            ranges::MEMORY.0,
            ranges::MEMORY.1,
        ),
        cpu_millis,
        pids: check.range(
            "tools.sandbox.pids_limit",
            raw.pids_limit,
            ranges::PIDS.0,
            ranges::PIDS.1,
        ),
        max_output,
        tmp_size: check.range(
            "tools.sandbox.tmp_size",
            raw.tmp_size.0,
            ranges::TMP_SIZE.0,
            ranges::TMP_SIZE.1,
        ),
        max_files: check.range(
            "tools.sandbox.max_files",
            raw.max_files,
            ranges::MAX_FILES.0,
            ranges::MAX_FILES.1,
        ) as usize,
        max_file_size: max_output,
        network: raw.network,
    };
    SandboxConfig {
        enabled: raw.enabled,
        runtime,
        limits,
        allowed_languages,
        max_code: check.range(
            "tools.sandbox.max_code",
            raw.max_code.0,
            ranges::MAX_CODE.0,
            ranges::MAX_CODE.1,
        ),
        max_concurrent: check.range(
            "tools.sandbox.max_concurrent",
            raw.max_concurrent,
            ranges::MAX_CONCURRENT.0,
            ranges::MAX_CONCURRENT.1,
        ) as usize,
        queue_timeout: check.duration(
            "tools.sandbox.queue_timeout",
            raw.queue_timeout.0,
            ranges::QUEUE_TIMEOUT.0,
            ranges::QUEUE_TIMEOUT.1,
        ),
        cgroup,
    }
}

fn validate_shell(raw: RawShell, mode: SecurityMode, check: &mut Issues<'_>) -> ShellConfig {
    use crate::policy as filter;
    let policy = match raw.policy.as_deref().map(|p| p.trim().to_ascii_lowercase()) {
        None => match mode {
            SecurityMode::Strict => ShellPolicy::Allowlist,
            SecurityMode::Local => ShellPolicy::Denylist,
        },
        Some(p) if p == "allowlist" => ShellPolicy::Allowlist,
        Some(p) if p == "denylist" => ShellPolicy::Denylist,
        Some(_) => {
            check.push(
                "tools.shell.policy",
                format!(
                    "unknown policy {:?}: use \"allowlist\" or \"denylist\"",
                    raw.policy.unwrap_or_default()
                ),
            );
            ShellPolicy::Allowlist
        }
    };
    for (index, program) in raw.allowed_programs.iter().enumerate() {
        if let Err(message) = filter::check_program_name(program) {
            check.push(&format!("tools.shell.allowed_programs.{index}"), message);
        }
    }
    let mut allowed_hosts = Vec::new();
    for (index, host) in raw.allowed_hosts.iter().enumerate() {
        match filter::normalize_host_pattern(host) {
            Ok(host) => allowed_hosts.push(host),
            Err(message) => check.push(&format!("tools.shell.allowed_hosts.{index}"), message),
        }
    }
    let mut rules: Vec<ShellRule> = Vec::new();
    for (index, rule) in raw.rules.into_iter().enumerate() {
        let name = if rule.id.is_empty() {
            format!("tools.shell.rules.{index}")
        } else {
            format!("tools.shell.rules.{index} (id {:?})", rule.id)
        };
        let mut ok = true;
        let mut bad = |field: &str, message: String| {
            check.push(&format!("{name}.{field}"), message);
            ok = false;
        };
        if let Err(message) = filter::check_rule_id(&rule.id) {
            bad("id", message);
        } else if rules.iter().any(|r| r.id == rule.id) {
            bad("id", format!("duplicate rule id {:?}", rule.id));
        }
        let action = match rule.action.trim().to_ascii_lowercase().as_str() {
            "allow" => ShellRuleAction::Allow,
            "approve" => ShellRuleAction::Approve,
            "deny" => ShellRuleAction::Deny,
            other => {
                bad(
                    "action",
                    format!("unknown action {other:?}: use \"allow\", \"approve\" or \"deny\""),
                );
                ShellRuleAction::Deny
            }
        };
        if let Err(message) = filter::check_program_name(&rule.program).or_else(|e| {
            if rule.program.starts_with('/') && !rule.program.contains(char::is_whitespace) {
                Ok(())
            } else {
                Err(e)
            }
        }) {
            bad("program", message);
        }
        if let Some(args) = &rule.args
            && let Err(message) = filter::Glob::parse(args)
        {
            bad("args", message);
        }
        if ok {
            rules.push(ShellRule {
                id: rule.id,
                action,
                program: rule.program,
                args: rule.args,
            });
        }
    }
    ShellConfig {
        policy,
        allowed_programs: raw.allowed_programs,
        allowed_hosts,
        rules,
    }
}

/// Environment variable some deployments use for the access token lifetime, in seconds.
pub const JWT_EXPIRY_ENV: &str = "JWT_TOKEN_EXPIRY";

fn validate_auth(raw: RawAuth, env: &dyn Environment, check: &mut Issues<'_>) -> AuthConfig {
    const MIB: u64 = 1024 * 1024;
    let access = match (raw.access_token_ttl, env.var(JWT_EXPIRY_ENV)) {
        (Some(ttl), _) => ttl.0,
        (None, Some(secs)) => match secs.trim().parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => {
                check.push("auth.access_token_ttl", format!("environment variable {JWT_EXPIRY_ENV} is {secs:?}: give a number of seconds"));
                Duration::from_secs(3600)
            }
        },
        (None, None) => Duration::from_secs(3600),
    };
    if raw.mode == AuthMode::Token && raw.token.as_ref().is_none_or(Secret::is_empty) {
        check.push("auth.token", "required with [auth] mode = \"token\": set token = \"${AISOPOD_AUTH_TOKEN}\" and export the variable");
    }
    let min_length =
        check.range("auth.password_min_length", raw.password_min_length, 8, 64) as usize;
    let memory = check.range(
        "auth.argon2_memory",
        raw.argon2_memory.0,
        8 * MIB,
        1024 * MIB,
    );
    let jwt_secret = raw.jwt_secret.or_else(|| {
        ["AISOPOD_JWT_SECRET", "JWT_SECRET_KEY"]
            .iter()
            .find_map(|name| env.var(name).filter(|v| !v.is_empty()))
            .map(Secret::new)
    });
    AuthConfig {
        mode: raw.mode,
        token: raw.token,
        jwt_secret,
        access_token_ttl: check.duration(
            "auth.access_token_ttl",
            access,
            Duration::from_secs(60),
            Duration::from_secs(86_400),
        ),
        refresh_token_ttl: check.duration(
            "auth.refresh_token_ttl",
            raw.refresh_token_ttl.0,
            Duration::from_secs(300),
            Duration::from_secs(90 * 86_400),
        ),
        claim_code_ttl: check.duration(
            "auth.claim_code_ttl",
            raw.claim_code_ttl.0,
            Duration::from_secs(60),
            Duration::from_secs(7 * 86_400),
        ),
        password: PasswordConfig {
            min_length,
            max_length: 128,
            argon2_memory_kib: (memory / 1024) as u32,
            argon2_iterations: check.range("auth.argon2_iterations", raw.argon2_iterations, 1, 20)
                as u32,
            argon2_parallelism: check.range(
                "auth.argon2_parallelism",
                raw.argon2_parallelism,
                1,
                16,
            ) as u32,
            max_concurrent_hashes: check.range(
                "auth.max_concurrent_hashes",
                raw.max_concurrent_hashes,
                1,
                64,
            ) as usize,
        },
        lockout_threshold: check.range("auth.lockout_threshold", raw.lockout_threshold, 3, 1000)
            as u32,
        lockout_duration: check.duration(
            "auth.lockout_duration",
            raw.lockout_duration.0,
            Duration::from_secs(60),
            Duration::from_secs(86_400),
        ),
        device_code_ttl: check.duration(
            "auth.device_code_ttl",
            raw.device_code_ttl.0,
            Duration::from_secs(60),
            Duration::from_secs(3600),
        ),
        device_poll_interval: check.duration(
            "auth.device_poll_interval",
            raw.device_poll_interval.0,
            Duration::from_secs(1),
            Duration::from_secs(60),
        ),
    }
}

fn parse_bind(text: &str) -> Result<SocketAddr, String> {
    let invalid = || format!("{text:?} is not host:port, such as 0.0.0.0:3080 or 127.0.0.1:0");
    if let Some(port) = text.strip_prefix("localhost:") {
        let port: u16 = port.parse().map_err(|_| invalid())?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse().map_err(|_| invalid())
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl Config {
    /// Built-in defaults, as `gateway start` uses with no config file.
    pub fn defaults(env: &dyn Environment) -> Result<Config, ConfigError> {
        parse("", ConfigSource::Defaults, env)
    }

    /// What strict mode refuses, each naming the key to change.
    pub fn strict_violations(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut refuse = |key: &str, message: String| {
            issues.push(ConfigIssue {
                key: key.into(),
                message: format!("{message} (or set [security] mode = \"local\")"),
            })
        };
        if self.auth.mode == AuthMode::None {
            refuse(
                "auth.mode",
                "strict mode refuses auth mode \"none\": choose \"password\", \"token\" or \"device\"".into(),
            );
        }
        if self.tls.mode == TlsMode::Off && !self.server.bind.ip().is_loopback() {
            refuse(
                "tls.mode",
                format!(
                    "strict mode refuses TLS off on the non-loopback address {}: use mode \"self-signed\" or \"files\", or bind to 127.0.0.1",
                    self.server.bind
                ),
            );
        }
        if self.security.cors_origins.iter().any(|o| o == "*") {
            refuse(
                "security.cors_origins",
                "strict mode refuses the wildcard origin \"*\": list the exact origins".into(),
            );
        }
        for (key, secret) in [
            ("auth.token", &self.auth.token),
            ("auth.jwt_secret", &self.auth.jwt_secret),
        ] {
            if let Some(secret) = secret
                && secret.len() < MIN_SECRET_BYTES
            {
                refuse(
                    key,
                    format!(
                        "strict mode refuses a secret of {} bytes: use at least {MIN_SECRET_BYTES} (aisopod auth gen-secret makes one)",
                        secret.len()
                    ),
                );
            }
        }
        if let TlsMode::Files { key, .. } = &self.tls.mode
            && let Some(problem) = key_file_problem(key)
        {
            refuse("tls.key_file", problem);
        }
        let sandbox = &self.tools.sandbox;
        if sandbox.enabled && sandbox.runtime == SandboxRuntime::None {
            refuse(
                "tools.sandbox.runtime",
                "strict mode refuses runtime \"none\", which runs tool code without any isolation: use \"namespaces\", or set enabled = false".into(),
            );
        }
        issues
    }

    /// Settings that local mode accepts but an operator should hear about at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.tls.mode == TlsMode::Off && !self.server.bind.ip().is_loopback() {
            warnings.push(format!(
                "TLS is off on the non-loopback address {}: anyone on the network can read the traffic ([tls] mode)",
                self.server.bind
            ));
        }
        if self.auth.mode == AuthMode::None {
            warnings.push(
                "auth mode \"none\": every request acts as an administrator ([auth] mode)".into(),
            );
        }
        if self.security.cors_origins.iter().any(|o| o == "*") {
            warnings.push("CORS allows every origin ([security] cors_origins)".into());
        }
        let sandbox = &self.tools.sandbox;
        if sandbox.enabled && sandbox.runtime == SandboxRuntime::None {
            warnings.push(
                "tool code runs without isolation, as the gateway's own user ([tools.sandbox] runtime = \"none\")".into(),
            );
        }
        if sandbox.enabled && sandbox.limits.network {
            warnings.push(
                "sandboxed tool code may use the network ([tools.sandbox] network = true)".into(),
            );
        }
        warnings
    }

    /// The listener's scheme, for messages and redirects.
    pub fn scheme(&self) -> &'static str {
        if self.tls.mode == TlsMode::Off {
            "http"
        } else {
            "https"
        }
    }
}

/// Why a private key file is unacceptable in strict mode, if it is: missing, unreadable,
/// or readable by group or others.
pub fn key_file_problem(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Err(err) => Some(format!("cannot read key file {}: {err}", path.display())),
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => Some(format!(
            "key file {} has mode {:o}, readable by group or others: run chmod 600 on it",
            path.display(),
            meta.permissions().mode() & 0o777
        )),
        Ok(_) => None,
    }
}

/// Every key the schema knows, as dotted paths (`server.bind`); used to check that the
/// documented example covers the whole schema.
pub fn schema_keys() -> Vec<String> {
    fn walk(prefix: &str, value: &serde_json::Value, keys: &mut Vec<String>) {
        if let serde_json::Value::Object(fields) = value {
            for (name, field) in fields {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                match field {
                    // A table (or a table of tables such as [tools.sandbox]).
                    serde_json::Value::Object(_) => walk(&path, field, keys),
                    _ if !prefix.is_empty() => keys.push(path),
                    _ => {}
                }
            }
        }
    }
    let value = serde_json::to_value(RawConfig::default()).unwrap_or_default();
    let mut keys = Vec::new();
    walk("", &value, &mut keys);
    keys.sort();
    keys
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[derive(Default)]
    struct FakeEnv {
        vars: HashMap<String, String>,
        installed: bool,
    }

    impl FakeEnv {
        fn with(pairs: &[(&str, &str)]) -> Self {
            Self {
                vars: pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                installed: false,
            }
        }
    }

    impl Environment for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }
        fn installed(&self) -> bool {
            self.installed
        }
    }

    fn parse_str(text: &str, env: &FakeEnv) -> Result<Config, ConfigError> {
        parse(text, ConfigSource::File("test.toml".into()), env)
    }

    fn issues(text: &str, env: &FakeEnv) -> Vec<ConfigIssue> {
        match parse_str(text, env) {
            Ok(_) => panic!("expected errors for {text}"),
            Err(err) => err.issues(),
        }
    }

    #[test]
    fn defaults_are_strict_and_use_a_local_data_dir_from_a_checkout() {
        let config = Config::defaults(&FakeEnv::default()).unwrap();
        assert_eq!(config.security.mode, SecurityMode::Strict);
        assert_eq!(config.storage.data_dir, PathBuf::from("aisopod-data"));
        assert_eq!(
            config.storage.runtime_dir,
            PathBuf::from("aisopod-data/run")
        );
        assert_eq!(config.server.bind.to_string(), "0.0.0.0:3080");
        assert_eq!(config.tls.mode, TlsMode::SelfSigned);
        assert_eq!(config.auth.mode, AuthMode::Password);
        assert_eq!(config.audit.retention_days, 90);
    }

    #[test]
    fn installed_defaults_use_system_directories() {
        let env = FakeEnv {
            installed: true,
            ..FakeEnv::default()
        };
        let config = Config::defaults(&env).unwrap();
        assert_eq!(config.storage.data_dir, PathBuf::from("/var/lib/aisopod"));
        assert_eq!(config.storage.runtime_dir, PathBuf::from("/run/aisopod"));
        let systemd = FakeEnv::with(&[
            ("STATE_DIRECTORY", "/srv/state"),
            ("RUNTIME_DIRECTORY", "/run/x"),
        ]);
        let config = Config::defaults(&systemd).unwrap();
        assert_eq!(config.storage.data_dir, PathBuf::from("/srv/state"));
        assert_eq!(config.storage.runtime_dir, PathBuf::from("/run/x"));
    }

    #[test]
    fn env_vars_expand_and_missing_ones_name_variable_and_key() {
        let env = FakeEnv::with(&[("TOKEN", "0123456789abcdef0123456789abcdef-x")]);
        let config = parse_str("[auth]\nmode = \"token\"\ntoken = \"${TOKEN}\"\n", &env).unwrap();
        assert_eq!(
            config.auth.token.unwrap().expose(),
            "0123456789abcdef0123456789abcdef-x"
        );

        let found = issues(
            "[auth]\ntoken = \"${NOPE_NOT_SET}\"\n[server]\npublic_url = \"https://${HOSTX}\"\n",
            &env,
        );
        assert!(found.contains(&ConfigIssue {
            key: "auth.token".into(),
            message: "environment variable NOPE_NOT_SET is not set".into()
        }));
        assert!(
            found
                .iter()
                .any(|i| i.key == "server.public_url" && i.message.contains("HOSTX"))
        );
    }

    #[test]
    fn an_unset_variable_is_the_only_problem_reported_for_its_key() {
        // Strict mode (the default) judges secrets by length: it must not judge the
        // 21-byte text "${AISOPOD_AUTH_TOKEN}" when the variable is unset.
        let found = issues(
            "[auth]\nmode = \"token\"\ntoken = \"${AISOPOD_AUTH_TOKEN}\"\njwt_secret = \"short\"\n",
            &FakeEnv::with(&[]),
        );
        let for_token: Vec<&ConfigIssue> = found.iter().filter(|i| i.key == "auth.token").collect();
        assert_eq!(
            for_token,
            [&ConfigIssue {
                key: "auth.token".into(),
                message: "environment variable AISOPOD_AUTH_TOKEN is not set".into()
            }]
        );
        // Other keys are still judged.
        assert!(
            found
                .iter()
                .any(|i| i.key == "auth.jwt_secret" && i.message.contains("strict mode")),
            "{found:?}"
        );
    }

    #[test]
    fn expansion_handles_escapes_and_bad_syntax() {
        let env = FakeEnv::with(&[("A", "x")]);
        assert_eq!(expand_str("a$${A}b${A}$c", &env).unwrap(), "a${A}bx$c");
        assert!(
            expand_str("${A", &env)
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(
            expand_str("${1A}", &env)
                .unwrap_err()
                .contains("invalid variable name")
        );
        assert!(
            expand_str("${}", &env)
                .unwrap_err()
                .contains("invalid variable name")
        );
    }

    #[test]
    fn every_error_is_reported_with_its_key() {
        let text = r#"
            [server]
            bind = "nonsense"
            max_in_flight = "many"
            request_timeout = "30 fortnights"
            colour = "blue"
            [storage]
            cache_size = "12 parsecs"
            [audit]
            retention_days = 0
            [wat]
            x = 1
        "#;
        let found = issues(text, &FakeEnv::default());
        let keys: Vec<&str> = found.iter().map(|i| i.key.as_str()).collect();
        for key in [
            "server.bind",
            "server.max_in_flight",
            "server.request_timeout",
            "server.colour",
            "storage.cache_size",
            "audit.retention_days",
            "wat",
        ] {
            assert!(keys.contains(&key), "missing {key} in {found:#?}");
        }
        let timeout = found
            .iter()
            .find(|i| i.key == "server.request_timeout")
            .unwrap();
        assert!(timeout.message.contains("invalid duration"), "{timeout}");
    }

    #[test]
    fn malformed_toml_names_line_and_column() {
        let found = issues(
            "[server]\nbind = \"0.0.0.0:1\"\nmax_body = = 3\n",
            &FakeEnv::default(),
        );
        assert_eq!(found.len(), 1);
        assert!(
            found[0].message.starts_with("line 3, column"),
            "{}",
            found[0]
        );
        assert!(found[0].message.contains("invalid TOML"));
    }

    #[test]
    fn durations_and_sizes_parse_with_clear_errors() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("soon").unwrap_err().contains("\"30s\""));
        assert!(parse_duration("-5s").is_err());
        assert_eq!(parse_size("256m").unwrap(), 256 << 20);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("12 parsecs").unwrap_err().contains("256m"));
        assert!(parse_size("").is_err());
        assert!(parse_size("m").is_err());
        assert!(parse_size("99999999999999999999g").is_err());
        assert!(parse_size("1.5m").is_err());
    }

    #[test]
    fn wrong_types_and_negative_values_are_reported() {
        let found = issues(
            "[server]\nmax_body = -1\nshutdown_timeout = -3\n[security]\ncors_origins = \"x\"\n",
            &FakeEnv::default(),
        );
        assert_eq!(found.len(), 3, "{found:#?}");
    }

    #[test]
    fn strict_mode_refuses_unsafe_settings_naming_the_key() {
        let env = FakeEnv::default();
        let cases = [
            ("[auth]\nmode = \"none\"\n", "auth.mode"),
            ("[tls]\nmode = \"off\"\n", "tls.mode"),
            (
                "[security]\ncors_origins = [\"*\"]\n",
                "security.cors_origins",
            ),
            (
                "[auth]\nmode = \"token\"\ntoken = \"short\"\n",
                "auth.token",
            ),
            ("[auth]\njwt_secret = \"short\"\n", "auth.jwt_secret"),
        ];
        for (text, key) in cases {
            let found = issues(text, &env);
            assert!(
                found
                    .iter()
                    .any(|i| i.key == key && i.message.contains("strict")),
                "{text}: {found:#?}"
            );
            let local =
                format!("[server]\nbind = \"127.0.0.1:0\"\n[security]\nmode = \"local\"\n{text}")
                    .replace("[security]\ncors", "cors");
            assert!(
                parse_str(&local, &env).is_ok(),
                "local mode should accept {local}"
            );
        }
        // TLS off on loopback is fine even in strict mode.
        assert!(
            parse_str(
                "[server]\nbind = \"127.0.0.1:0\"\n[tls]\nmode = \"off\"\n",
                &env
            )
            .is_ok()
        );
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let env = FakeEnv::with(&[("SEKRIT", "tiny-secret-value")]);
        let err = parse_str("[auth]\nmode = \"none\"\ntoken = \"${SEKRIT}\"\n", &env).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("tiny-secret-value"), "{shown}");
        let config = parse_str(
            "[security]\nmode = \"local\"\n[auth]\ntoken = \"${SEKRIT}\"\n",
            &env,
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("tiny-secret-value"));
    }

    #[test]
    fn security_mode_env_overrides_file() {
        let env = FakeEnv::with(&[("SECURITY_MODE", "local")]);
        let none = "[server]\nbind = \"127.0.0.1:0\"\n[auth]\nmode = \"none\"\n";
        assert!(parse_str(none, &env).is_ok());
        let both = FakeEnv::with(&[
            ("SECURITY_MODE", "local"),
            ("AISOPOD_SECURITY_MODE", "strict"),
        ]);
        assert!(parse_str(none, &both).is_err());
        let bad = FakeEnv::with(&[("AISOPOD_SECURITY_MODE", "yolo")]);
        let found = issues("", &bad);
        assert!(found[0].message.contains("AISOPOD_SECURITY_MODE"));
    }

    #[test]
    fn files_mode_needs_both_paths_and_a_private_key_file() {
        let found = issues("[tls]\nmode = \"files\"\n", &FakeEnv::default());
        assert!(found.iter().any(|i| i.key == "tls.cert_file"));
        assert!(found.iter().any(|i| i.key == "tls.key_file"));

        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "x").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = format!(
            "[tls]\nmode = \"files\"\ncert_file = \"{0}/cert.pem\"\nkey_file = \"{0}/key.pem\"\n",
            dir.path().display()
        );
        let found = issues(&text, &FakeEnv::default());
        assert!(
            found
                .iter()
                .any(|i| i.key == "tls.key_file" && i.message.contains("chmod 600")),
            "{found:#?}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(parse_str(&text, &FakeEnv::default()).is_ok());
    }

    #[test]
    fn ip_networks_parse_and_match() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.200.3.4".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.1.1".parse().unwrap()));
        let one = IpNet::parse("192.168.1.5").unwrap();
        assert!(one.contains("192.168.1.5".parse().unwrap()));
        assert!(!one.contains("192.168.1.6".parse().unwrap()));
        assert!(
            IpNet::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            IpNet::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "nope", "10.0.0/8", "::1/129", ""] {
            assert!(IpNet::parse(bad).is_err(), "{bad}");
        }
        let found = issues(
            "[rate_limit]\ntrusted_proxies = [\"10.0.0.1\", \"bogus\"]\n",
            &FakeEnv::default(),
        );
        assert_eq!(found[0].key, "rate_limit.trusted_proxies.1");
    }

    #[test]
    fn auth_settings_validate_and_jwt_expiry_env_is_honoured() {
        let env = FakeEnv::with(&[("JWT_TOKEN_EXPIRY", "900")]);
        let config = parse_str("", &env).unwrap();
        assert_eq!(config.auth.access_token_ttl, Duration::from_secs(900));
        let config = parse_str("[auth]\naccess_token_ttl = \"2h\"\n", &env).unwrap();
        assert_eq!(config.auth.access_token_ttl, Duration::from_secs(7200));
        assert_eq!(config.auth.password.argon2_memory_kib, 19 * 1024);
        let found = issues("[auth]\nmode = \"token\"\n", &FakeEnv::default());
        assert!(
            found
                .iter()
                .any(|i| i.key == "auth.token" && i.message.contains("required"))
        );
        let found = issues(
            "[server]\nbind = \"0.0.0.0:1\"\n[security]\nmode = \"local\"\n[auth]\nmode = \"none\"\n",
            &FakeEnv::default(),
        );
        assert!(
            found
                .iter()
                .any(|i| i.key == "auth.mode" && i.message.contains("loopback"))
        );
        assert!(parse_str("[server]\nbind = \"127.0.0.1:1\"\n[security]\nmode = \"local\"\n[auth]\nmode = \"none\"\n", &FakeEnv::default()).is_ok());
        let found = issues(
            "[auth]\nargon2_memory = \"1m\"\npassword_min_length = 4\n",
            &FakeEnv::default(),
        );
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    #[test]
    fn schema_keys_cover_every_table() {
        let keys = schema_keys();
        assert!(keys.contains(&"server.bind".to_string()));
        assert!(keys.contains(&"auth.token".to_string()));
        assert!(keys.contains(&"tls.ca_validity".to_string()));
        assert!(keys.contains(&"tools.sandbox.memory_limit".to_string()));
        assert!(!keys.contains(&"tools.sandbox".to_string()));
    }

    #[test]
    fn sandbox_defaults_match_the_documented_ones() {
        let config = Config::defaults(&FakeEnv::default()).unwrap();
        let sandbox = &config.tools.sandbox;
        assert!(sandbox.enabled);
        assert_eq!(sandbox.runtime, SandboxRuntime::Namespaces);
        assert_eq!(sandbox.limits.timeout, Duration::from_secs(30));
        assert_eq!(sandbox.limits.memory, 256 << 20);
        assert_eq!(sandbox.limits.cpu_millis, 500);
        assert_eq!(sandbox.limits.pids, 64);
        assert!(!sandbox.limits.network);
        assert_eq!(sandbox.allowed_languages.len(), 3);
        assert_eq!(sandbox.limits.max_output, 1 << 20);
        assert_eq!(sandbox.max_concurrent, 2);
    }

    #[test]
    fn agents_default_to_one_with_every_tool_and_are_checked_with_their_keys() {
        let env = FakeEnv::default();
        let config = parse_str("[approval]\ntimeout = \"10s\"\n", &env).unwrap();
        assert_eq!(config.approval.timeout, Duration::from_secs(10));
        assert_eq!(config.agents.len(), 1);
        assert_eq!(config.agents[0].name, DEFAULT_AGENT);
        assert_eq!(config.agents[0].tools.len(), 5);
        assert!(config.agents[0].workspace.ends_with("workspaces/default"));

        let data = "[storage]\ndata_dir = \"/var/lib/aisopod\"\n";
        let found = issues(
            &format!(
                "{data}[approval]\ntimeout = \"0s\"\n\
                 [[agents]]\nname = \"Bad Name\"\n\
                 [[agents]]\nname = \"ok\"\ntools = [\"shell\", \"rm_rf\"]\n\
                 [[agents]]\nname = \"ok\"\n\
                 [[agents]]\nname = \"root\"\nworkspace = \"/var\"\n\
                 [[agents]]\nname = \"inside\"\nworkspace = \"/var/lib/aisopod/db\"\n\
                 [[agents]]\nname = \"relative\"\nworkspace = \"work\"\n\
                 [[agents]]\nname = \"typo\"\ntool = []\n"
            ),
            &env,
        );
        let keys: Vec<&str> = found.iter().map(|i| i.key.as_str()).collect();
        for key in [
            "approval.timeout",
            "agents.0.name",
            "agents.1.tools.1",
            "agents.2.name",
            "agents.3.workspace",
            "agents.4.workspace",
            "agents.5.workspace",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        assert!(
            keys.iter()
                .any(|k| k.contains("tool") && k.starts_with("agents.6")),
            "{keys:?}"
        );
        let holds = found
            .iter()
            .find(|i| i.key == "agents.3.workspace")
            .unwrap();
        assert!(
            holds.message.contains("data directory"),
            "{}",
            holds.message
        );
    }

    #[test]
    fn sandbox_settings_are_checked_with_their_keys() {
        let env = FakeEnv::default();
        let found = issues(
            "[tools.sandbox]\nruntime = \"docker\"\ntimeout = \"2h\"\nmemory_limit = \"1m\"\ncpu_limit = \"lots\"\npids_limit = 1\nallowed_languages = [\"python\", \"cobol\"]\nmax_concurrent = 0\ncolour = 1\n",
            &env,
        );
        let keys: Vec<&str> = found.iter().map(|i| i.key.as_str()).collect();
        for key in [
            "tools.sandbox.runtime",
            "tools.sandbox.timeout",
            "tools.sandbox.memory_limit",
            "tools.sandbox.cpu_limit",
            "tools.sandbox.pids_limit",
            "tools.sandbox.allowed_languages.1",
            "tools.sandbox.max_concurrent",
            "tools.sandbox.colour",
        ] {
            assert!(keys.contains(&key), "missing {key} in {found:#?}");
        }
        let runtime = found
            .iter()
            .find(|i| i.key == "tools.sandbox.runtime")
            .unwrap();
        assert!(runtime.message.contains("not supported"), "{runtime}");
        let config = parse_str("[tools.sandbox]\ncpu_limit = 0.25\n", &env).unwrap();
        assert_eq!(config.tools.sandbox.limits.cpu_millis, 250);
        let config = parse_str("[tools.sandbox]\ncpu_limit = \"2\"\n", &env).unwrap();
        assert_eq!(config.tools.sandbox.limits.cpu_millis, 2000);
    }

    #[test]
    fn strict_mode_refuses_an_unisolated_sandbox() {
        let env = FakeEnv::default();
        let found = issues("[tools.sandbox]\nruntime = \"none\"\n", &env);
        assert!(
            found
                .iter()
                .any(|i| i.key == "tools.sandbox.runtime" && i.message.contains("strict"))
        );
        assert!(
            parse_str(
                "[security]\nmode = \"local\"\n[tools.sandbox]\nruntime = \"none\"\n",
                &env
            )
            .is_ok()
        );
        assert!(
            parse_str(
                "[tools.sandbox]\nruntime = \"none\"\nenabled = false\n",
                &env
            )
            .is_ok()
        );
    }
}
