//! Turns the raw schema into the validated [`Config`], one table at a time, each problem
//! recorded with its key so that one run reports them all.

mod auth;
mod tools;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use auth::JWT_EXPIRY_ENV;
use auth::validate_auth;
use tools::{validate_agents, validate_sandbox, validate_shell};

use super::raw::*;
use super::settings::*;
use super::{ConfigIssue, ConfigSource, Environment, SECURITY_MODE_ENV};

pub(super) struct Issues<'a>(&'a mut Vec<ConfigIssue>);

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

pub(super) fn validate(
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
