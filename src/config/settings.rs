//! The validated configuration: the types the rest of the product reads. Nothing here
//! parses text; values arrive checked from `validate`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::common::{ModelRef, SecurityMode};
use super::issue::ConfigSource;
use crate::secret::Secret;

/// Environment variables that override `[security] mode`, strongest first.
pub const SECURITY_MODE_ENV: [&str; 2] = ["AISOPOD_SECURITY_MODE", "SECURITY_MODE"];

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
    pub pairing: PairingConfig,
    pub hardware: super::hardware::HardwareConfig,
    /// The agents tool calls act for; never empty (a built-in `default` agent when the
    /// file names none).
    pub agents: Vec<AgentConfig>,
    pub chats: ChatsConfig,
    /// The LLM upstreams, `[[providers]]`.
    pub providers: Vec<super::providers::ProviderConfig>,
    /// The doors other programs reach agents through, `[[channels]]`.
    pub channels: Vec<super::channels::ChannelConfig>,
}

/// `[chats]`: the limits every chat and message is held to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatsConfig {
    /// Longest message content, in bytes.
    pub max_message: usize,
    /// Most chats or messages one page of a listing holds.
    pub max_page: usize,
    /// Most chats one user may own.
    pub max_per_user: usize,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    pub public_url: Option<String>,
    pub http_redirect_bind: Option<SocketAddr>,
    pub max_body: u64,
    pub request_timeout: Duration,
    /// The silence after which a server-sent event stream (`/v1/*` with `stream: true`)
    /// gets a comment line, so proxies and clients do not take it for dead.
    pub sse_keepalive: Duration,
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
    /// Requests without a valid credential, per address.
    pub api_per_minute: u32,
    pub api_burst: u32,
    /// Requests with a valid credential, per address and per credential.
    pub authenticated_per_minute: u32,
    pub authenticated_burst: u32,
    /// Proxies whose `X-Forwarded-For` is believed, as networks.
    pub trusted_proxies: Vec<IpNet>,
    /// IPv6 clients are counted per network of this prefix length (one host usually
    /// holds a whole /64).
    pub ipv6_prefix: u8,
}

/// An IP network such as `10.0.0.0/8` or a single address. The network arithmetic is the
/// `ipnet` crate's; this type adds the config's spelling (a bare address is a /32 or /128)
/// and matches an IPv4-mapped IPv6 peer (`::ffff:10.1.1.1`) as the IPv4 address it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet(pub ipnet::IpNet);

impl IpNet {
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let invalid =
            || format!("{text:?} is not an IP address or network such as 10.0.0.1 or 10.0.0.0/8");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| invalid())?;
        let net = match prefix {
            Some(p) => {
                let p = p.trim().parse::<u8>().map_err(|_| invalid())?;
                ipnet::IpNet::new(addr, p).map_err(|_| invalid())?
            }
            None => ipnet::IpNet::from(addr),
        };
        Ok(IpNet(net))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.0, ip) {
            (ipnet::IpNet::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            _ => ip,
        };
        self.0.contains(&ip)
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
/// How issues name the rule at `index` of `[[tools.shell.rules]]`.
pub fn shell_rule_key(index: usize, id: &str) -> String {
    if id.is_empty() {
        format!("tools.shell.rules.{index}")
    } else {
        format!("tools.shell.rules.{index} (id {id:?})")
    }
}

#[derive(Debug, Clone)]
pub struct ShellConfig {
    pub policy: ShellPolicy,
    pub allowed_programs: Vec<String>,
    pub allowed_hosts: Vec<String>,
    pub rules: Vec<ShellRule>,
}

/// `[tools.files]`: caps of the workspace file tools.
/// Programs that run without approval under the allowlist policy unless
/// `allowed_programs` is set: everyday read-only and development tools. Built-in rules
/// still apply to them (`cat /etc/shadow` is denied, `git push` needs approval).
pub const DEFAULT_ALLOWED_PROGRAMS: &[&str] = &[
    "ls",
    "cat",
    "head",
    "tail",
    "less",
    "more",
    "grep",
    "egrep",
    "fgrep",
    "rg",
    "find",
    "wc",
    "sort",
    "uniq",
    "cut",
    "tr",
    "diff",
    "cmp",
    "comm",
    "file",
    "stat",
    "du",
    "df",
    "free",
    "uptime",
    "uname",
    "whoami",
    "id",
    "date",
    "hostname",
    "which",
    "whereis",
    "realpath",
    "readlink",
    "basename",
    "dirname",
    "tree",
    "jq",
    "yq",
    "awk",
    "sed",
    "column",
    "nl",
    "paste",
    "join",
    "fold",
    "fmt",
    "rev",
    "tac",
    "xxd",
    "hexdump",
    "od",
    "strings",
    "md5sum",
    "sha1sum",
    "sha256sum",
    "sha512sum",
    "b2sum",
    "cksum",
    "base64",
    "seq",
    "sleep",
    "env",
    "printenv",
    "ps",
    "pgrep",
    "lsblk",
    "lscpu",
    "lsusb",
    "lspci",
    "nproc",
    "git",
    "python3",
    "python",
    "pip",
    "pip3",
    "node",
    "npm",
    "cargo",
    "rustc",
    "go",
    "make",
    "cmake",
    "gcc",
    "cc",
    "g++",
    "clang",
    "ld",
    "pytest",
    "mkdir",
    "touch",
    "cp",
    "mv",
    "tee",
    "tar",
    "gzip",
    "gunzip",
    "zcat",
    "bzip2",
    "xz",
    "unzip",
    "zip",
    "vcgencmd",
    "ip",
    "ss",
    "journalctl",
    "systemctl",
    "dmesg",
    "man",
    "expr",
    "test",
    "yes",
    "time",
    "timeout",
    "nice",
    "xargs",
    "curl",
    "wget",
    "ping",
];

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

/// `[pairing]`: how phones pair by the QR code (see `pairing`).
#[derive(Debug, Clone)]
pub struct PairingConfig {
    /// How long an offer lives unless `pair start --ttl` says otherwise (at most 10 min).
    pub offer_ttl: Duration,
    /// Whether a claim waits for a person to compare the code and confirm; `false` only
    /// in local mode.
    pub confirm: bool,
    /// Whether to advertise the gateway as `HOSTNAME.local` over mDNS (`discovery`).
    pub mdns: bool,
}

/// One `[[agents]]` entry: which model answers for it, which tools it may call and
/// where its files live.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    pub name: String,
    pub tools: Vec<String>,
    pub workspace: PathBuf,
    /// The `[[providers]]` entry that serves `model`; `None` for a tools-only agent.
    pub provider: Option<String>,
    pub model: Option<String>,
    /// Tried in order when the provider fails before any output reached the client.
    pub fallbacks: Vec<ModelRef>,
    pub system_prompt: Option<String>,
    pub max_tool_iterations: u32,
    pub temperature: Option<f64>,
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
    pub limits: super::sandbox::Limits,
    pub allowed_languages: Vec<super::sandbox::Language>,
    /// Largest program accepted, in bytes.
    pub max_code: u64,
    /// Runs at once; more wait up to `queue_timeout`, then are refused as busy.
    pub max_concurrent: usize,
    pub queue_timeout: Duration,
    /// Which cgroup interface to use.
    pub cgroup: super::sandbox::Preference,
}

impl Config {
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
