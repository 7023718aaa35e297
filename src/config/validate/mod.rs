//! Turns the raw schema into the validated [`Config`], one table at a time, each problem
//! recorded with its key so that one run reports them all.

mod auth;
mod issues;
mod tools;
mod web;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use auth::JWT_EXPIRY_ENV;
use auth::validate_auth;
use tools::{validate_agents, validate_tools};

use super::common::*;
use super::env::Environment;
use super::issue::{ConfigIssue, ConfigSource};
use super::providers::ProviderConfig;
use super::raw::*;
use super::settings::*;
use issues::{Issues, KIB, MIB};

/// The validated configuration, or `None` when the schema could not be read at all;
/// every problem found goes into `issues`.
pub(super) fn validate(
    raw: RawConfig,
    source: ConfigSource,
    env: &dyn Environment,
    issues: &mut Vec<ConfigIssue>,
) -> Option<Config> {
    let mut check = Issues(issues);
    let server = validate_server(raw.server, &mut check);
    let storage = validate_storage(raw.storage, env, &mut check);
    let tls = validate_tls(raw.tls, &mut check);
    let security = validate_security(raw.security, env, &mut check);
    let auth = validate_auth(raw.auth, env, &mut check);
    let rate_limit = validate_rate_limit(raw.rate_limit, &mut check);
    let audit = AuditConfig {
        retention_days: check.range("audit.retention_days", raw.audit.retention_days, 1, 36_500)
            as u32,
    };
    if let Err(err) = raw
        .logging
        .filter
        .parse::<tracing_subscriber::filter::Targets>()
    {
        check.push(
            "logging.filter",
            format!("invalid filter {:?}: {err}", raw.logging.filter),
        );
    }
    let logging = LoggingConfig {
        format: raw.logging.format,
        filter: raw.logging.filter,
    };
    let tools = validate_tools(raw.tools, security.mode, &mut check);
    let approval = ApprovalConfig {
        timeout: check.duration(
            "approval.timeout",
            raw.approval.timeout.0,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        ),
    };
    let pairing = PairingConfig {
        offer_ttl: check.duration(
            "pairing.offer_ttl",
            raw.pairing.offer_ttl.0,
            Duration::from_secs(10),
            Duration::from_secs(600),
        ),
        confirm: raw.pairing.confirm,
        mdns: raw.pairing.mdns,
    };
    let hardware = crate::config::hardware::validate_hardware(raw.hardware, check.0);
    let agents = validate_agents(raw.agents, &storage.data_dir, &mut check);
    let chats = ChatsConfig {
        max_message: check.range("chats.max_message", raw.chats.max_message.0, 1, MIB) as usize,
        max_page: check.range("chats.max_page", raw.chats.max_page, 1, 1000) as usize,
        max_per_user: check.range("chats.max_per_user", raw.chats.max_per_user, 1, 1_000_000)
            as usize,
    };
    let providers = super::providers::validate_providers(raw.providers, check.0);
    check_agent_providers(&agents, &providers, &mut check);
    let channels = super::channels::validate_channels(raw.channels, security.mode, check.0);
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
        pairing,
        hardware,
        agents,
        chats,
        providers,
        channels,
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

/// Every provider an agent names, as its own or as a fallback, is a `[[providers]]` entry.
fn check_agent_providers(agents: &[AgentConfig], providers: &[ProviderConfig], check: &mut Issues) {
    let configured: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
    for (index, agent) in agents.iter().enumerate() {
        let unknown = crate::config::agents::unknown_providers(
            agent.provider.as_deref(),
            &agent.fallbacks,
            &configured,
        );
        for (field, message) in unknown {
            check.push(&format!("agents.{index}.{field}"), message);
        }
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

/// `[server]`: where to listen and the limits of each connection and request.
fn validate_server(raw: RawServer, check: &mut Issues<'_>) -> ServerConfig {
    let bind = parse_bind(&raw.bind).unwrap_or_else(|message| {
        check.push("server.bind", message);
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
    });
    let http_redirect_bind = raw.http_redirect_bind.as_deref().and_then(|text| {
        parse_bind(text)
            .map_err(|message| check.push("server.http_redirect_bind", message))
            .ok()
    });
    if let Some(url) = &raw.public_url
        && let Some(problem) = web::public_url_problem(url)
    {
        check.push(
            "server.public_url",
            format!("{url:?} is not an http(s) URL such as https://aisopod.local:3080: {problem}"),
        );
    }
    ServerConfig {
        bind,
        public_url: raw.public_url.map(|u| u.trim_end_matches('/').to_string()),
        http_redirect_bind,
        max_body: check.range("server.max_body", raw.max_body.0, KIB, 1024 * MIB),
        request_timeout: check.duration(
            "server.request_timeout",
            raw.request_timeout.0,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        ),
        sse_keepalive: check.duration(
            "server.sse_keepalive",
            raw.sse_keepalive.0,
            Duration::from_millis(10),
            Duration::from_secs(300),
        ),
        max_in_flight: check.range("server.max_in_flight", raw.max_in_flight, 1, 100_000) as usize,
        memory_budget: check.range(
            "server.memory_budget",
            raw.memory_budget.0,
            16 * MIB,
            64 * 1024 * MIB,
        ),
        max_connections: check.range("server.max_connections", raw.max_connections, 1, 1_000_000)
            as usize,
        max_connections_per_address: check.range(
            "server.max_connections_per_address",
            raw.max_connections_per_address,
            1,
            1_000_000,
        ) as usize,
        handshake_timeout: check.duration(
            "server.handshake_timeout",
            raw.handshake_timeout.0,
            Duration::from_secs(1),
            Duration::from_secs(120),
        ),
        idle_timeout: check.duration(
            "server.idle_timeout",
            raw.idle_timeout.0,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        ),
        shutdown_timeout: check.duration(
            "server.shutdown_timeout",
            raw.shutdown_timeout.0,
            Duration::from_secs(0),
            Duration::from_secs(600),
        ),
    }
}

/// `[storage]`: the data and runtime directories, from the file, systemd's variables or
/// where the binary runs from.
fn validate_storage(
    raw: RawStorage,
    env: &dyn Environment,
    check: &mut Issues<'_>,
) -> StorageConfig {
    let installed = env.installed();
    let data_dir = raw
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
        .runtime_dir
        .or_else(|| env.var("RUNTIME_DIRECTORY").map(PathBuf::from))
        .unwrap_or_else(|| {
            if installed {
                PathBuf::from("/run/aisopod")
            } else {
                data_dir.join("run")
            }
        });
    StorageConfig {
        data_dir,
        runtime_dir,
        cache_size: check.range("storage.cache_size", raw.cache_size.0, MIB, 4096 * MIB),
    }
}

/// `[tls]`: the certificate's source and lifetimes, and the extra names it covers.
fn validate_tls(raw: RawTls, check: &mut Issues<'_>) -> TlsConfig {
    let tls_mode = match raw.mode {
        RawTlsMode::SelfSigned => {
            for key in ["cert_file", "key_file"] {
                let given = if key == "cert_file" {
                    &raw.cert_file
                } else {
                    &raw.key_file
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
        RawTlsMode::Files => match (raw.cert_file, raw.key_file) {
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
    for (index, name) in raw.extra_names.iter().enumerate() {
        if !web::is_host(name) {
            check.push(
                &format!("tls.extra_names.{index}"),
                format!("{name:?} is neither a DNS name nor an IP address"),
            );
        }
    }
    TlsConfig {
        mode: tls_mode,
        server_validity: check.duration(
            "tls.server_validity",
            raw.server_validity.0,
            Duration::from_secs(86_400),
            Duration::from_secs(90 * 86_400),
        ),
        ca_validity: check.duration(
            "tls.ca_validity",
            raw.ca_validity.0,
            Duration::from_secs(365 * 86_400),
            Duration::from_secs(30 * 365 * 86_400),
        ),
        extra_names: raw.extra_names,
    }
}

/// `[security]`: the mode (the environment overrides the file) and the CORS origins.
fn validate_security(
    raw: RawSecurity,
    env: &dyn Environment,
    check: &mut Issues<'_>,
) -> SecurityConfig {
    let mode_override = SECURITY_MODE_ENV
        .iter()
        .find_map(|name| env.var(name).map(|value| (*name, value)));
    let mode = match mode_override {
        Some((name, value)) => SecurityMode::parse(&value).unwrap_or_else(|| {
            check.push(
                "security.mode",
                format!("environment variable {name} is {value:?}: use \"local\" or \"strict\""),
            );
            raw.mode
        }),
        None => raw.mode,
    };
    for (index, origin) in raw.cors_origins.iter().enumerate() {
        if origin == "*" {
            continue;
        }
        if let Some(problem) = web::origin_problem(origin) {
            check.push(
                &format!("security.cors_origins.{index}"),
                format!("{origin:?} is not an origin such as https://dashboard.example: {problem}"),
            );
        }
    }
    SecurityConfig {
        mode,
        cors_origins: raw.cors_origins,
    }
}

/// `[rate_limit]`: request rates per address, IPv6 grouping and the trusted proxies.
fn validate_rate_limit(raw: RawRateLimit, check: &mut Issues<'_>) -> RateLimitConfig {
    RateLimitConfig {
        auth_per_minute: check.range(
            "rate_limit.auth_per_minute",
            raw.auth_per_minute,
            1,
            100_000,
        ) as u32,
        auth_burst: check.range("rate_limit.auth_burst", raw.auth_burst, 1, 100_000) as u32,
        api_per_minute: check.range(
            "rate_limit.api_per_minute",
            raw.api_per_minute,
            1,
            1_000_000,
        ) as u32,
        api_burst: check.range("rate_limit.api_burst", raw.api_burst, 1, 1_000_000) as u32,
        authenticated_per_minute: check.range(
            "rate_limit.authenticated_per_minute",
            raw.authenticated_per_minute,
            1,
            1_000_000,
        ) as u32,
        authenticated_burst: check.range(
            "rate_limit.authenticated_burst",
            raw.authenticated_burst,
            1,
            1_000_000,
        ) as u32,
        ipv6_prefix: check.range("rate_limit.ipv6_prefix", raw.ipv6_prefix, 32, 128) as u8,
        trusted_proxies: raw
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
    }
}
