//! Rate limits: how often one client may knock, per route class.
//!
//! Authentication routes (login, refresh, claim, device flow) are limited per client
//! address; API routes per client address and per credential. The client address is the
//! TCP peer, unless the peer is a configured trusted proxy, in which case the nearest
//! address in `X-Forwarded-For` that is not itself a trusted proxy is used. From anyone
//! else the header is ignored, so a client cannot pick its own address to dodge limits.
//! Limiters are GCRA (governor) with a burst; answers carry the time until a retry
//! would be allowed. This module only counts; the server turns refusals into 429s.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};
use http::HeaderMap;

use crate::config::{IpNet, RateLimitConfig};

type Keyed<K> = RateLimiter<K, governor::state::keyed::DefaultKeyedStateStore<K>, DefaultClock>;

/// Which limit applies to a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    /// Login, refresh, claim, device flow: guessing targets.
    Auth,
    /// Everything else that needs a credential.
    Api,
}

/// The limiters for one gateway.
#[derive(Debug)]
pub struct RateLimits {
    auth_by_ip: Keyed<IpAddr>,
    api_by_ip: Keyed<IpAddr>,
    api_by_credential: Keyed<String>,
    trusted_proxies: Vec<IpNet>,
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> RateLimits {
        RateLimits {
            auth_by_ip: RateLimiter::keyed(quota(config.auth_per_minute, config.auth_burst)),
            api_by_ip: RateLimiter::keyed(quota(config.api_per_minute, config.api_burst)),
            api_by_credential: RateLimiter::keyed(quota(config.api_per_minute, config.api_burst)),
            trusted_proxies: config.trusted_proxies.clone(),
        }
    }

    /// `Ok` when the request may go on; `Err(wait)` when it must be refused.
    pub fn check(
        &self,
        class: RouteClass,
        ip: IpAddr,
        credential: Option<&str>,
    ) -> Result<(), Duration> {
        let clock = DefaultClock::default();
        let wait = |not_until: governor::NotUntil<_>| not_until.wait_time_from(clock.now());
        match class {
            RouteClass::Auth => self.auth_by_ip.check_key(&ip).map_err(wait),
            RouteClass::Api => {
                self.api_by_ip.check_key(&ip).map_err(wait)?;
                match credential {
                    Some(id) => self
                        .api_by_credential
                        .check_key(&id.to_string())
                        .map_err(wait),
                    None => Ok(()),
                }
            }
        }
    }

    /// Forgets keys whose limits have fully recovered; call periodically.
    pub fn forget_idle(&self) {
        self.auth_by_ip.retain_recent();
        self.api_by_ip.retain_recent();
        self.api_by_credential.retain_recent();
    }

    /// The address requests from `peer` are counted against.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        client_ip(peer, headers, &self.trusted_proxies)
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the rightmost
/// address in `X-Forwarded-For` that is not a trusted proxy.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer_ip = canonical(peer.ip());
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer_ip) {
        return peer_ip;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .map(canonical)
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(*ip))
        .unwrap_or(peer_ip)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(trusted: &[&str]) -> RateLimitConfig {
        RateLimitConfig {
            auth_per_minute: 10,
            auth_burst: 3,
            api_per_minute: 30,
            api_burst: 5,
            trusted_proxies: trusted.iter().map(|t| IpNet::parse(t).unwrap()).collect(),
        }
    }

    #[test]
    fn a_burst_then_refusal_with_a_wait_per_client() {
        let limits = RateLimits::new(&config(&[]));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.check(RouteClass::Auth, a, None).is_ok());
        }
        let wait = limits.check(RouteClass::Auth, a, None).unwrap_err();
        assert!(
            wait > Duration::from_secs(1) && wait <= Duration::from_secs(6),
            "{wait:?}"
        );
        assert!(
            limits.check(RouteClass::Auth, b, None).is_ok(),
            "another client is not affected"
        );
        assert!(
            limits.check(RouteClass::Api, a, None).is_ok(),
            "API and auth limits are separate"
        );
    }

    #[test]
    fn api_limits_count_per_credential_across_addresses() {
        let limits = RateLimits::new(&config(&[]));
        for i in 0..5u8 {
            let ip = IpAddr::from([10, 0, 0, i]);
            assert!(limits.check(RouteClass::Api, ip, Some("token-1")).is_ok());
        }
        assert!(
            limits
                .check(
                    RouteClass::Api,
                    IpAddr::from([10, 0, 0, 9]),
                    Some("token-1")
                )
                .is_err()
        );
        assert!(
            limits
                .check(
                    RouteClass::Api,
                    IpAddr::from([10, 0, 0, 9]),
                    Some("token-2")
                )
                .is_ok()
        );
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.5".parse().unwrap());
        let proxy: SocketAddr = "10.0.0.5:443".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.7:5555".parse().unwrap();
        let trusted = [IpNet::parse("10.0.0.0/8").unwrap()];
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(stranger, &headers, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(proxy, &headers, &[]),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
        // A client cannot hide behind a spoofed leftmost entry.
        headers.insert("x-forwarded-for", "1.1.1.1, 203.0.113.9".parse().unwrap());
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        headers.insert(
            "x-forwarded-for",
            "garbage, ::ffff:203.0.113.10".parse().unwrap(),
        );
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            "203.0.113.10".parse::<IpAddr>().unwrap()
        );
    }
}
