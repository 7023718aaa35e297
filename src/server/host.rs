//! The host a client named (`Host`, or the HTTP/2 `:authority`), checked before it is
//! echoed into a URL we send back (the HTTP→HTTPS redirect, the device flow's
//! `verification_uri`). It owns only that check, built on `http`'s authority parser and
//! `rustls-pki-types`' DNS-name rules; it never decides routing or trust.

use std::net::{Ipv4Addr, Ipv6Addr};

use http::uri::Authority;
use rustls_pki_types::DnsName;

/// A client-named host that is a DNS name or an IP literal, with its port if it gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHost {
    authority: Authority,
}

impl RequestHost {
    /// `None` for anything that is not `host[:port]` with a DNS-name or IP host
    /// (user info, stray characters, an empty host).
    pub fn parse(text: &str) -> Option<RequestHost> {
        let authority: Authority = text.parse().ok()?;
        if authority.as_str().contains('@') {
            return None;
        }
        let host = authority.host();
        // `http` leaves the port unchecked: it must be a number that fits a port.
        let port_ok = match authority.as_str().strip_prefix(host) {
            Some("") => true,
            Some(rest) => rest
                .strip_prefix(':')
                .is_some_and(|port| port.parse::<u16>().is_ok()),
            None => false,
        };
        let valid = port_ok
            && match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
                None => host.parse::<Ipv4Addr>().is_ok() || DnsName::try_from(host).is_ok(),
            };
        valid.then_some(RequestHost { authority })
    }

    /// The host alone (an IPv6 literal keeps its brackets), for a URL with another port.
    pub fn host(&self) -> &str {
        self.authority.host()
    }

    /// `host[:port]` as the client gave it.
    pub fn authority(&self) -> &str {
        self.authority.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_dns_names_or_ip_literals_with_an_optional_port() {
        for (text, host, authority) in [
            ("aisopod.local:3080", "aisopod.local", "aisopod.local:3080"),
            ("Pi-4", "Pi-4", "Pi-4"),
            ("192.168.1.20:443", "192.168.1.20", "192.168.1.20:443"),
            ("[::1]:3080", "[::1]", "[::1]:3080"),
            // Without a port: the old split at the last ':' made this "[:".
            ("[fe80::1]", "[fe80::1]", "[fe80::1]"),
        ] {
            let parsed = RequestHost::parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(
                (parsed.host(), parsed.authority()),
                (host, authority),
                "{text}"
            );
        }
        for text in [
            "",
            ":3080",
            "evil.example@aisopod.local",
            "a b",
            "host/path",
            "host\r\nSet-Cookie: x",
            "[::1",
            "[not-an-ip]:80",
            "-leading.example",
            "host:port",
            "host:99999",
            "host:",
            "a;b",
        ] {
            assert_eq!(RequestHost::parse(text), None, "{text:?}");
        }
    }
}
