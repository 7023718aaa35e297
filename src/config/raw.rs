//! The file-facing schema: one struct per table, every key with its default, unknown keys
//! rejected. Deserializing collects every unknown key and type error rather than the first.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::common::SecurityMode;
use super::issue::ConfigIssue;
use super::settings::{AuthMode, LogFormat};
use super::units::{CpuFraction, Seconds, Size};
use crate::secret::Secret;

// ---------------------------------------------------------------------------------------
// File-facing schema. Every table rejects unknown keys (reported through serde_ignored so
// that all of them are listed, not just the first) and every field has a default.

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) server: RawServer,
    pub(super) storage: RawStorage,
    pub(super) tls: RawTls,
    pub(super) security: RawSecurity,
    pub(super) auth: RawAuth,
    pub(super) rate_limit: RawRateLimit,
    pub(super) audit: RawAudit,
    pub(super) logging: RawLogging,
    pub(super) tools: RawTools,
    pub(super) approval: RawApproval,
    pub(super) pairing: RawPairing,
    pub(super) hardware: super::hardware::RawHardware,
    pub(super) agents: Vec<RawAgent>,
    pub(super) chats: RawChats,
    pub(super) providers: Vec<super::providers::RawProvider>,
    pub(super) channels: Vec<super::channels::RawChannel>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawChats {
    pub(super) max_message: Size,
    pub(super) max_page: u64,
    pub(super) max_per_user: u64,
}

impl Default for RawChats {
    fn default() -> Self {
        Self {
            max_message: Size(64 * 1024),
            max_page: 100,
            max_per_user: 1000,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawApproval {
    pub(super) timeout: Seconds,
}

impl Default for RawApproval {
    fn default() -> Self {
        Self {
            timeout: Seconds(Duration::from_secs(55)),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawPairing {
    pub(super) offer_ttl: Seconds,
    pub(super) confirm: bool,
    pub(super) mdns: bool,
}

impl Default for RawPairing {
    fn default() -> Self {
        Self {
            offer_ttl: Seconds(Duration::from_secs(120)),
            confirm: true,
            mdns: true,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawAgent {
    pub(super) name: String,
    pub(super) tools: Option<Vec<String>>,
    pub(super) workspace: Option<PathBuf>,
    pub(super) provider: Option<String>,
    pub(super) model: Option<String>,
    pub(super) fallbacks: Vec<String>,
    pub(super) system_prompt: Option<String>,
    pub(super) max_tool_iterations: Option<u64>,
    pub(super) temperature: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawFiles {
    pub(super) max_read: Size,
    pub(super) max_write: Size,
    pub(super) max_entries: u64,
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
pub(super) struct RawServer {
    pub(super) bind: String,
    pub(super) public_url: Option<String>,
    pub(super) http_redirect_bind: Option<String>,
    pub(super) max_body: Size,
    pub(super) request_timeout: Seconds,
    pub(super) sse_keepalive: Seconds,
    pub(super) max_in_flight: u64,
    pub(super) memory_budget: Size,
    pub(super) max_connections: u64,
    pub(super) max_connections_per_address: u64,
    pub(super) handshake_timeout: Seconds,
    pub(super) idle_timeout: Seconds,
    pub(super) shutdown_timeout: Seconds,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            bind: "0.0.0.0:3080".into(),
            public_url: None,
            http_redirect_bind: None,
            max_body: Size(1024 * 1024),
            request_timeout: Seconds(Duration::from_secs(30)),
            sse_keepalive: Seconds(Duration::from_secs(15)),
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
pub(super) struct RawStorage {
    pub(super) data_dir: Option<PathBuf>,
    pub(super) runtime_dir: Option<PathBuf>,
    pub(super) cache_size: Size,
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
pub(super) enum RawTlsMode {
    SelfSigned,
    Files,
    Off,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) mode: RawTlsMode,
    pub(super) cert_file: Option<PathBuf>,
    pub(super) key_file: Option<PathBuf>,
    pub(super) server_validity: Seconds,
    pub(super) ca_validity: Seconds,
    pub(super) extra_names: Vec<String>,
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
pub(super) struct RawSecurity {
    pub(super) mode: SecurityMode,
    pub(super) cors_origins: Vec<String>,
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
pub(super) struct RawAuth {
    pub(super) mode: AuthMode,
    #[serde(serialize_with = "redacted")]
    pub(super) token: Option<Secret>,
    #[serde(serialize_with = "redacted")]
    pub(super) jwt_secret: Option<Secret>,
    pub(super) access_token_ttl: Option<Seconds>,
    pub(super) refresh_token_ttl: Seconds,
    pub(super) claim_code_ttl: Seconds,
    pub(super) password_min_length: u64,
    pub(super) argon2_memory: Size,
    pub(super) argon2_iterations: u64,
    pub(super) argon2_parallelism: u64,
    pub(super) max_concurrent_hashes: u64,
    pub(super) lockout_threshold: u64,
    pub(super) lockout_duration: Seconds,
    pub(super) device_code_ttl: Seconds,
    pub(super) device_poll_interval: Seconds,
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
pub(super) struct RawRateLimit {
    pub(super) auth_per_minute: u64,
    pub(super) auth_burst: u64,
    pub(super) api_per_minute: u64,
    pub(super) api_burst: u64,
    pub(super) authenticated_per_minute: u64,
    pub(super) authenticated_burst: u64,
    pub(super) trusted_proxies: Vec<String>,
    pub(super) ipv6_prefix: u64,
}

impl Default for RawRateLimit {
    fn default() -> Self {
        Self {
            auth_per_minute: 10,
            auth_burst: 5,
            api_per_minute: 30,
            api_burst: 30,
            authenticated_per_minute: 600,
            authenticated_burst: 150,
            trusted_proxies: Vec::new(),
            ipv6_prefix: 64,
        }
    }
}

pub(super) fn redacted<S: serde::Serializer>(
    value: &Option<Secret>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_some("***"),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawAudit {
    pub(super) retention_days: u64,
}

impl Default for RawAudit {
    fn default() -> Self {
        Self { retention_days: 90 }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawLogging {
    pub(super) format: LogFormat,
    pub(super) filter: String,
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
pub(super) struct RawTools {
    pub(super) sandbox: RawSandbox,
    pub(super) files: RawFiles,
    pub(super) shell: RawShell,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawShell {
    /// `None`: by security mode (strict: allowlist, local: denylist).
    pub(super) policy: Option<String>,
    pub(super) allowed_programs: Vec<String>,
    pub(super) allowed_hosts: Vec<String>,
    pub(super) rules: Vec<RawShellRule>,
}

impl Default for RawShell {
    fn default() -> Self {
        Self {
            policy: None,
            allowed_programs: super::settings::DEFAULT_ALLOWED_PROGRAMS
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
pub(super) struct RawShellRule {
    pub(super) id: String,
    pub(super) action: String,
    pub(super) program: String,
    pub(super) args: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawSandbox {
    pub(super) enabled: bool,
    pub(super) runtime: String,
    pub(super) timeout: Seconds,
    pub(super) memory_limit: Size,
    pub(super) cpu_limit: CpuFraction,
    pub(super) pids_limit: u64,
    pub(super) network: bool,
    pub(super) allowed_languages: Vec<String>,
    pub(super) max_output: Size,
    pub(super) max_concurrent: u64,
    pub(super) max_code: Size,
    pub(super) tmp_size: Size,
    pub(super) max_files: u64,
    pub(super) queue_timeout: Seconds,
    pub(super) cgroup: String,
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

/// Deserializes the schema, collecting every unknown key and every type error: each
/// wrong value is reported, removed, and the rest deserialized again.
pub(super) fn deserialize_collecting(
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
