//! Rate limits: how often one client may knock, per route class.
//!
//! Authentication routes (login, refresh, claim, device flow) are limited per client
//! address. API requests without a valid credential are limited per client address
//! (`api_*`); those with one get a larger budget (`authenticated_*`), per address and
//! per credential, so one person's phone running a streaming chat, a dashboard and an
//! OpenAI client at once is never refused in ordinary use, while a flood still is. The client address is the
//! TCP peer, unless the peer is a configured trusted proxy, in which case the nearest
//! address in `X-Forwarded-For` that is not itself a trusted proxy is used. From anyone
//! else the header is ignored, so a client cannot pick its own address to dodge limits.
//! Limiters are GCRA (governor) with a burst; answers carry the time until a retry
//! would be allowed. [`RefusalLog`] counts refusals per address so the audit log gets
//! one summary a minute. This module only counts; the server turns refusals into 429s.
//!
//! Addresses are counted by [`ClientKey`]: an IPv4 address (IPv4-mapped IPv6 folded onto
//! it), or the IPv6 network of `ipv6_prefix` bits (a /64 by default) that contains it,
//! since one host usually holds a whole /64. Every keyed map here is a [`Generations`]
//! map, so memory stays bounded however many addresses knock: when the map is full the
//! least recently seen half is forgotten, which at worst gives a forgotten client a fresh
//! burst.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{Quota, RateLimiter};
use http::HeaderMap;

use crate::config::{IpNet, RateLimitConfig};

/// How many keys one limiter (or the refusal log) remembers at most.
pub const MAX_KEYS: usize = 16_384;

type Keyed<K> = RateLimiter<K, BoundedStore<K>, DefaultClock>;

/// The address a client is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// IPv4 as is (IPv4-mapped IPv6 folded onto IPv4); IPv6 cut to its first
    /// `ipv6_prefix` bits.
    pub fn new(ip: IpAddr, ipv6_prefix: u8) -> ClientKey {
        match canonical(ip) {
            IpAddr::V6(v6) => {
                let bits = u32::from(ipv6_prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                ClientKey(IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)))
            }
            v4 => ClientKey(v4),
        }
    }
}

impl ClientKey {
    /// The key as an address (the network's first address for IPv6).
    pub fn addr(self) -> IpAddr {
        self.0
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A map that holds at most `capacity` entries in two generations: inserts go to the
/// current one; when it is half full it becomes the previous one and the old previous
/// is dropped. A hit in the previous generation moves back into the current one, so
/// what is dropped is what was seen least recently. Inserts are O(1) amortised; nothing
/// ever scans the map.
#[derive(Debug)]
pub struct Generations<K, V> {
    current: HashMap<K, V>,
    previous: HashMap<K, V>,
    half: usize,
}

impl<K: Hash + Eq, V> Generations<K, V> {
    pub fn new(capacity: usize) -> Generations<K, V> {
        Generations {
            current: HashMap::new(),
            previous: HashMap::new(),
            half: (capacity / 2).max(1),
        }
    }

    /// The entry for `key`, made by `make` when absent.
    pub fn entry(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        if !self.current.contains_key(&key) {
            let value = self.previous.remove(&key).unwrap_or_else(make);
            if self.current.len() >= self.half {
                self.previous = std::mem::take(&mut self.current);
            }
            return self.current.entry(key).or_insert(value);
        }
        self.current.entry(key).or_insert_with(make)
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.current.get(key).or_else(|| self.previous.get(key))
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.current.retain(&mut keep);
        self.previous.retain(&mut keep);
    }

    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// governor's keyed state in a [`Generations`] map.
#[derive(Debug)]
pub struct BoundedStore<K>(Mutex<Generations<K, Nanos>>);

impl<K: Hash + Eq> BoundedStore<K> {
    fn new(capacity: usize) -> BoundedStore<K> {
        BoundedStore(Mutex::new(Generations::new(capacity)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations<K, Nanos>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<K: Hash + Eq + Clone> StateStore for BoundedStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut map = self.lock();
        let known = map.get(key).copied();
        match f(known) {
            Ok((answer, next)) => {
                *map.entry(key.clone(), || next) = next;
                Ok(answer)
            }
            Err(refused) => {
                // A refused client counts as seen, so it is not the first forgotten.
                if let Some(state) = known {
                    map.entry(key.clone(), || state);
                }
                Err(refused)
            }
        }
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for BoundedStore<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        self.lock().retain(|_, tat| *tat > drop_below);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

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
    auth_by_ip: Keyed<ClientKey>,
    api_by_ip: Keyed<ClientKey>,
    authenticated_by_ip: Keyed<ClientKey>,
    api_by_credential: Keyed<String>,
    /// Failed webhook deliveries (bad, old or malformed signatures) per address.
    bad_hooks_by_ip: Keyed<ClientKey>,
    trusted_proxies: Vec<IpNet>,
    ipv6_prefix: u8,
    /// One clock for every limiter: making one probes the CPU (`cpuid`, a trap to the
    /// hypervisor on a virtual machine), far too slow to do per request.
    clock: DefaultClock,
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

fn keyed<K: Hash + Eq + Clone>(quota: Quota, clock: &DefaultClock) -> Keyed<K> {
    RateLimiter::new(quota, BoundedStore::new(MAX_KEYS), clock.clone())
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> RateLimits {
        let clock = DefaultClock::default();
        let authenticated = quota(config.authenticated_per_minute, config.authenticated_burst);
        let auth = quota(config.auth_per_minute, config.auth_burst);
        RateLimits {
            auth_by_ip: keyed(auth, &clock),
            api_by_ip: keyed(quota(config.api_per_minute, config.api_burst), &clock),
            authenticated_by_ip: keyed(authenticated, &clock),
            api_by_credential: keyed(authenticated, &clock),
            bad_hooks_by_ip: keyed(auth, &clock),
            trusted_proxies: config.trusted_proxies.clone(),
            ipv6_prefix: config.ipv6_prefix,
            clock,
        }
    }

    /// The key `ip` is counted under.
    pub fn key(&self, ip: IpAddr) -> ClientKey {
        ClientKey::new(ip, self.ipv6_prefix)
    }

    /// `Ok` when the request may go on; `Err(wait)` when it must be refused.
    pub fn check(
        &self,
        class: RouteClass,
        ip: IpAddr,
        credential: Option<&str>,
    ) -> Result<(), Duration> {
        let wait = |not_until: governor::NotUntil<_>| not_until.wait_time_from(self.clock.now());
        let key = self.key(ip);
        match class {
            RouteClass::Auth => self.auth_by_ip.check_key(&key).map_err(wait),
            RouteClass::Api => match credential {
                Some(id) => {
                    self.authenticated_by_ip.check_key(&key).map_err(wait)?;
                    self.api_by_credential
                        .check_key(&id.to_string())
                        .map_err(wait)
                }
                None => self.api_by_ip.check_key(&key).map_err(wait),
            },
        }
    }

    /// Forgets keys whose limits have fully recovered; the gateway calls it every minute.
    pub fn forget_idle(&self) {
        self.auth_by_ip.retain_recent();
        self.api_by_ip.retain_recent();
        self.authenticated_by_ip.retain_recent();
        self.api_by_credential.retain_recent();
        self.bad_hooks_by_ip.retain_recent();
    }

    /// Counts one failed webhook delivery from `ip`; `Err(wait)` once the address has
    /// failed more often than the auth limit allows. Good deliveries are never counted,
    /// so a sender with the secret is served even while its address is being flooded.
    pub fn hook_failure(&self, ip: IpAddr) -> Result<(), Duration> {
        self.bad_hooks_by_ip
            .check_key(&self.key(ip))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// How many keys the limiters hold, all together.
    pub fn tracked(&self) -> usize {
        self.auth_by_ip.len()
            + self.api_by_ip.len()
            + self.authenticated_by_ip.len()
            + self.api_by_credential.len()
            + self.bad_hooks_by_ip.len()
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

/// Remembers, per client address, when a refusal was last audited and how many were
/// refused since without a record. One record per address and minute carries that count,
/// so a flood costs one disk write a minute per address, and the map is bounded (a
/// [`Generations`] map: O(1) inserts, never a scan).
#[derive(Debug)]
pub struct RefusalLog {
    last: Mutex<Generations<ClientKey, (Option<Instant>, u64)>>,
}

impl Default for RefusalLog {
    fn default() -> Self {
        RefusalLog {
            last: Mutex::new(Generations::new(MAX_KEYS)),
        }
    }
}

impl RefusalLog {
    const WINDOW: Duration = Duration::from_secs(60);

    /// `Some(n)` when this refusal is to be audited, `n` being how many refusals from
    /// the same address went unrecorded before it; `None` when it is only counted.
    pub fn should_audit(&self, key: ClientKey) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (at, suppressed) = last.entry(key, || (None, 0));
        if at.is_some_and(|at| now.saturating_duration_since(at) < Self::WINDOW) {
            *suppressed += 1;
            return None;
        }
        *at = Some(now);
        Some(std::mem::take(suppressed))
    }

    /// How many addresses it remembers.
    pub fn tracked(&self) -> usize {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).len()
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
            authenticated_per_minute: 30,
            authenticated_burst: 5,
            trusted_proxies: trusted.iter().map(|t| IpNet::parse(t).unwrap()).collect(),
            ipv6_prefix: 64,
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
    fn failed_webhook_deliveries_are_limited_per_address_apart_from_other_limits() {
        let limits = RateLimits::new(&config(&[]));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.hook_failure(a).is_ok());
        }
        let wait = limits.hook_failure(a).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(6),
            "{wait:?}"
        );
        assert!(limits.hook_failure("192.0.2.2".parse().unwrap()).is_ok());
        assert!(
            limits.check(RouteClass::Auth, a, None).is_ok(),
            "failed deliveries do not spend the login budget"
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

    #[test]
    fn ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let limits = RateLimits::new(&config(&[]));
        // Five hosts of one /64: together they get one burst of three.
        for i in 1..=3u16 {
            let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, i));
            assert!(limits.check(RouteClass::Auth, ip, None).is_ok());
        }
        let neighbour = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0xffff, 7, 7, 7));
        assert!(limits.check(RouteClass::Auth, neighbour, None).is_err());
        // The next /64 is someone else.
        let other = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert!(limits.check(RouteClass::Auth, other, None).is_ok());
        // ::ffff:192.0.2.7 and 192.0.2.7 are one client.
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.check(RouteClass::Auth, mapped, None).is_ok());
        }
        assert!(limits.check(RouteClass::Auth, v4, None).is_err());
        // The prefix is configurable: per /128 each host is its own client.
        let mut per_host = config(&[]);
        per_host.ipv6_prefix = 128;
        let limits = RateLimits::new(&per_host);
        for i in 1..=3u16 {
            let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, i));
            assert!(limits.check(RouteClass::Auth, ip, None).is_ok());
        }
        assert!(limits.check(RouteClass::Auth, neighbour, None).is_ok());
    }

    #[test]
    fn a_hundred_thousand_addresses_leave_the_maps_bounded_and_a_new_client_served() {
        let limits = RateLimits::new(&config(&[]));
        for i in 0..100_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = limits.check(RouteClass::Auth, ip, None);
            let token = (i % 8 == 0).then(|| format!("token-{i}"));
            let _ = limits.check(RouteClass::Api, ip, token.as_deref());
        }
        assert!(limits.tracked() <= 3 * MAX_KEYS, "{}", limits.tracked());
        let owner: IpAddr = "192.168.1.20".parse().unwrap();
        assert!(limits.check(RouteClass::Auth, owner, None).is_ok());
        assert!(limits.check(RouteClass::Api, owner, Some("owner")).is_ok());
        // A recent client is still limited: the flood did not reset it.
        let recent = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + 99_999));
        for _ in 0..2 {
            assert!(limits.check(RouteClass::Auth, recent, None).is_ok());
        }
        assert!(limits.check(RouteClass::Auth, recent, None).is_err());
    }

    #[test]
    fn generations_keep_the_recently_seen_and_stay_bounded() {
        let mut map = Generations::new(4);
        *map.entry(1, || 0) += 1;
        *map.entry(2, || 0) += 1;
        *map.entry(3, || 0) += 1; // rotates: {1,2} become the previous generation
        *map.entry(1, || 0) += 1; // seen again: back in the current one
        *map.entry(4, || 0) += 1; // rotates: {3,1} previous, {2} dropped
        assert_eq!(map.get(&1), Some(&2));
        assert_eq!(map.get(&2), None);
        assert!(map.len() <= 4);
    }

    #[test]
    fn refusals_are_summarised_per_address_and_the_log_stays_bounded() {
        let log = RefusalLog::default();
        let key =
            |i: u32| ClientKey::new(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)), 64);
        assert_eq!(log.should_audit(key(0)), Some(0));
        for _ in 0..50 {
            assert_eq!(log.should_audit(key(0)), None);
        }
        let started = Instant::now();
        for i in 1..=100_000 {
            assert_eq!(log.should_audit(key(i)), Some(0));
        }
        assert!(log.tracked() <= MAX_KEYS, "{}", log.tracked());
        // Inserts never rescan the map (rescanning 10,000 entries on each of these
        // inserts took minutes).
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        // A fresh address is audited at once.
        assert_eq!(log.should_audit(key(200_000)), Some(0));
    }
}
