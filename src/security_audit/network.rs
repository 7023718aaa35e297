//! The checks that read only the configuration and what listens on the network: binds
//! with their authentication and TLS, strict mode, pairing confirmation, CORS origins,
//! trusted proxies and the LLM upstreams (including local ones the LAN can reach, as the
//! gateway's start-up probe found them). Nothing here touches a file or the store.

use std::net::IpAddr;

use crate::config::{AuthMode, Config, SecurityMode, TlsMode};
use crate::gateway::providers::Exposure;

use super::catalog::finding;
use super::findings::Finding;

/// Binds, authentication, TLS mode, strict mode and pairing.
pub fn binds(config: &Config) -> Vec<Finding> {
    let mut found = Vec::new();
    let bind = config.server.bind;
    let exposed = !bind.ip().is_loopback();
    if config.auth.mode == AuthMode::None {
        found.push(if exposed {
            finding(
                "auth.none_exposed",
                format!("[auth] mode = \"none\" with [server] bind = \"{bind}\": anyone on the network acts as an administrator"),
                "set [auth] mode = \"password\" (or \"token\" / \"device\"), or bind to 127.0.0.1",
            )
        } else {
            finding(
                "auth.none_local",
                format!("[auth] mode = \"none\" with [server] bind = \"{bind}\": every local program acts as an administrator"),
                "set [auth] mode = \"password\" (or \"token\" / \"device\")",
            )
        });
    }
    if config.tls.mode == TlsMode::Off {
        found.push(if exposed {
            finding(
                "tls.off_exposed",
                format!("[tls] mode = \"off\" with [server] bind = \"{bind}\": passwords and tokens cross the network in clear"),
                "set [tls] mode = \"self-signed\" (or \"files\"), or bind to 127.0.0.1",
            )
        } else {
            finding(
                "tls.off_local",
                format!("[tls] mode = \"off\" with [server] bind = \"{bind}\""),
                "set [tls] mode = \"self-signed\" unless a local TLS proxy fronts the gateway",
            )
        });
    }
    if config.security.mode == SecurityMode::Local && exposed {
        found.push(finding(
            "security.local_mode",
            format!("[security] mode = \"local\" with [server] bind = \"{bind}\": the strict start-up refusals do not apply"),
            "set [security] mode = \"strict\" (or SECURITY_MODE=strict) and fix what it refuses",
        ));
    }
    if !config.pairing.confirm {
        found.push(finding(
            "pairing.no_confirmation",
            "[pairing] confirm = false: whoever scans or guesses a pairing code gets a device token",
            "remove `confirm = false` from [pairing]",
        ));
    }
    found
}

/// CORS origins and trusted proxies.
pub fn origins_and_proxies(config: &Config) -> Vec<Finding> {
    let mut found = Vec::new();
    for origin in &config.security.cors_origins {
        if origin == "*" {
            found.push(finding(
                "cors.wildcard",
                "[security] cors_origins contains \"*\": any web page can call the API with a stolen token",
                "list the exact origins that need the API in [security] cors_origins",
            ));
        } else if origin.starts_with("http://") && !is_loopback_origin(origin) {
            found.push(finding(
                "cors.plain_http_origin",
                format!("[security] cors_origins contains {origin:?}"),
                "use the https:// origin",
            ));
        }
    }
    for net in &config.rate_limit.trusted_proxies {
        let net = net.0;
        if net.prefix_len() == 0 {
            found.push(finding(
                "proxy.trust_all",
                format!("[rate_limit] trusted_proxies contains {net}: any client can set X-Forwarded-For and pick its own address"),
                "list only the proxy's own address (for example \"127.0.0.1/32\")",
            ));
        } else if let Some(range) = whole_private_range(net) {
            found.push(finding(
                "proxy.private_range",
                format!("[rate_limit] trusted_proxies contains {net}, which covers all of {range}: any machine there can forge its address and escape rate limits and lockouts"),
                "list only the proxy's own address (a /32 or /128)",
            ));
        }
    }
    found
}

/// LLM upstreams: local servers the LAN reaches, and remote ones spoken to in clear.
pub fn upstreams(config: &Config, exposures: &[Exposure]) -> Vec<Finding> {
    let mut found: Vec<Finding> = exposures
        .iter()
        .map(|exposure| {
            finding(
                "llm.port_exposed",
                exposure.to_string(),
                format!(
                    "bind the server to 127.0.0.1 only (for Ollama: OLLAMA_HOST=127.0.0.1:{}) or firewall port {}",
                    exposure.port, exposure.port
                ),
            )
        })
        .collect();
    for provider in &config.providers {
        if let Ok(mut url) = reqwest::Url::parse(&provider.base_url)
            && url.scheme() == "http"
            && !url.host_str().is_some_and(is_loopback_host)
        {
            // Credentials in the URL itself stay out of the report.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            found.push(finding(
                "llm.plain_http_upstream",
                format!(
                    "provider {}: base_url {} is plain HTTP to another machine{}",
                    provider.name,
                    url,
                    if provider.api_key.is_some() {
                        ", and its API key travels with every request"
                    } else {
                        ""
                    }
                ),
                "use https://, or an SSH or WireGuard tunnel to the upstream",
            ));
        }
    }
    found
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_loopback_origin(origin: &str) -> bool {
    reqwest::Url::parse(origin)
        .ok()
        .and_then(|url| url.host_str().map(is_loopback_host))
        .unwrap_or(false)
}

/// The private range `net` covers all of, if any: 10/8, 172.16/12, 192.168/16,
/// 100.64/10 (carrier-grade NAT), fc00::/7, fe80::/10, or a range larger than one of them.
fn whole_private_range(net: ipnet::IpNet) -> Option<ipnet::IpNet> {
    const RANGES: [&str; 6] = [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
        "fe80::/10",
    ];
    RANGES
        .iter()
        .filter_map(|r| r.parse::<ipnet::IpNet>().ok())
        .find(|range| net.contains(range))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::NoEnv;
    use crate::config::{ConfigSource, parse};

    fn config(text: &str) -> Config {
        parse(text, ConfigSource::Defaults, &NoEnv).unwrap()
    }

    fn ids(found: &[Finding]) -> Vec<&str> {
        found.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn no_auth_on_the_network_is_critical_and_on_loopback_medium() {
        // Validation refuses this combination; the audit still reports a config that got
        // past it (another loader, a later change of the rules).
        let mut exposed = config("[security]\nmode = \"local\"\n");
        exposed.auth.mode = AuthMode::None;
        let found = binds(&exposed);
        assert!(ids(&found).contains(&"auth.none_exposed"));
        assert!(ids(&found).contains(&"security.local_mode"));
        let local = config(
            "[server]\nbind = \"127.0.0.1:3080\"\n[auth]\nmode = \"none\"\n[security]\nmode = \"local\"\n",
        );
        assert_eq!(ids(&binds(&local)), ["auth.none_local"]);
    }

    #[test]
    fn tls_off_and_pairing_without_confirmation() {
        let off = config(
            "[tls]\nmode = \"off\"\n[security]\nmode = \"local\"\n[pairing]\nconfirm = false\n",
        );
        let found = ids(&binds(&off)).join(" ");
        assert!(found.contains("tls.off_exposed"), "{found}");
        assert!(found.contains("pairing.no_confirmation"), "{found}");
        let local = config("[server]\nbind = \"127.0.0.1:1\"\n[tls]\nmode = \"off\"\n");
        assert_eq!(ids(&binds(&local)), ["tls.off_local"]);
    }

    #[test]
    fn the_default_config_has_no_bind_cors_or_proxy_finding() {
        let defaults = config("");
        assert!(binds(&defaults).is_empty());
        assert!(origins_and_proxies(&defaults).is_empty());
        assert!(upstreams(&defaults, &[]).is_empty());
    }

    #[test]
    fn wildcard_cors_and_plain_http_origins() {
        let c = config(
            "[security]\nmode = \"local\"\ncors_origins = [\"*\", \"http://192.0.2.1:8080\", \"http://localhost:5173\", \"https://app.example\"]\n",
        );
        assert_eq!(
            ids(&origins_and_proxies(&c)),
            ["cors.wildcard", "cors.plain_http_origin"]
        );
    }

    #[test]
    fn a_whole_private_range_or_everything_as_proxy_is_found() {
        let c = config(
            "[rate_limit]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.168.1.7/32\", \"0.0.0.0/0\", \"172.16.0.0/12\", \"192.168.0.0/24\"]\n",
        );
        let found = origins_and_proxies(&c);
        assert_eq!(
            ids(&found),
            [
                "proxy.private_range",
                "proxy.trust_all",
                "proxy.private_range"
            ]
        );
        assert!(found[0].evidence.contains("10.0.0.0/8"));
    }

    #[test]
    fn exposed_local_servers_and_remote_plain_http_upstreams() {
        let c = config(
            "[[providers]]\nname = \"lan\"\nkind = \"openai\"\nbase_url = \"http://192.0.2.9:8000/v1\"\n\
             [[providers]]\nname = \"ollama\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:11434/v1\"\n",
        );
        // Validation refuses credentials in a base URL; the report would drop them anyway.
        let mut c = c;
        c.providers[0].base_url = "http://bob:hunter2@192.0.2.9:8000/v1".into();
        let exposure = Exposure {
            provider: "ollama".into(),
            port: 11434,
            reachable_at: "192.0.2.3".parse().unwrap(),
        };
        let found = upstreams(&c, &[exposure]);
        assert_eq!(ids(&found), ["llm.port_exposed", "llm.plain_http_upstream"]);
        assert!(found[0].evidence.contains("192.0.2.3:11434"));
        assert!(found[1].evidence.contains("provider lan"));
        assert!(found[1].evidence.contains("http://192.0.2.9:8000/v1"));
        assert!(
            !found[1].evidence.contains("hunter2"),
            "{}",
            found[1].evidence
        );
    }
}
