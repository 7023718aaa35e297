//! The start-up check for local upstreams that the LAN can reach: a provider configured
//! on a loopback address (Ollama on 127.0.0.1:11434) whose port also answers on one of
//! this machine's other addresses is open to anyone on the network, with none of our
//! authentication in front. It only opens TCP connections to this machine's own
//! addresses and closes them at once; it sends nothing.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::config::ProviderConfig;

/// A configured loopback upstream that also answers on a non-loopback address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    pub provider: String,
    pub port: u16,
    pub reachable_at: IpAddr,
}

impl fmt::Display for Exposure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "provider {}: the local upstream on port {} also answers on {}, so the LAN reaches it without authentication; bind it to 127.0.0.1 only (for Ollama: OLLAMA_HOST=127.0.0.1:{})",
            self.provider,
            self.port,
            SocketAddr::new(self.reachable_at, self.port),
            self.port
        )
    }
}

/// This machine's addresses other than loopback (empty when they cannot be listed).
pub fn local_addresses() -> Vec<IpAddr> {
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut addresses: Vec<IpAddr> = interfaces
        .filter_map(|interface| interface.address)
        .filter_map(|address| {
            if let Some(v4) = address.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .collect();
    addresses.sort();
    addresses.dedup();
    addresses
}

/// The loopback upstreams of `providers` whose port answers on one of `addresses`,
/// trying each for at most `wait`.
pub async fn exposed_local_upstreams(
    providers: &[ProviderConfig],
    addresses: &[IpAddr],
    wait: Duration,
) -> Vec<Exposure> {
    let mut found = Vec::new();
    for provider in providers {
        let Some(port) = loopback_port(&provider.base_url) else {
            continue;
        };
        for ip in addresses {
            let connect = tokio::net::TcpStream::connect(SocketAddr::new(*ip, port));
            if let Ok(Ok(_stream)) = tokio::time::timeout(wait, connect).await {
                found.push(Exposure {
                    provider: provider.name.clone(),
                    port,
                    reachable_at: *ip,
                });
                break;
            }
        }
    }
    found
}

/// The port of a base URL whose host is a loopback address or `localhost`.
fn loopback_port(base_url: &str) -> Option<u16> {
    let url = reqwest::Url::parse(base_url).ok()?;
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    loopback.then(|| url.port_or_known_default()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_are_checked() {
        assert_eq!(loopback_port("http://127.0.0.1:11434/v1"), Some(11434));
        assert_eq!(loopback_port("http://localhost/v1"), Some(80));
        assert_eq!(loopback_port("http://[::1]:8080"), Some(8080));
        assert_eq!(loopback_port("https://api.openai.com/v1"), None);
        assert_eq!(loopback_port("http://192.0.2.7:11434/v1"), None);
    }
}
