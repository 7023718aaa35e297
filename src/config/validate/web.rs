//! The web addresses the configuration names: host names (`[tls] extra_names`), the
//! gateway's public URL and the CORS origins. `rustls_pki_types::DnsName` judges a host
//! name and `http::Uri` splits a URL; this file only adds what those crates leave to
//! their callers (which schemes, no user name, no path in an origin). It knows no key:
//! its callers name the key in the issue.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::Uri;
use rustls_pki_types::DnsName;

/// A host name as a certificate names it: what `DnsName` accepts, without the trailing
/// dot of a fully qualified name, which webpki refuses in a certificate's names and no
/// browser sends in an `Origin`.
pub(super) fn is_dns_name(name: &str) -> bool {
    !name.ends_with('.') && DnsName::try_from(name).is_ok()
}

/// A DNS name or an IP address, as `[tls] extra_names` lists them.
pub(super) fn is_host(name: &str) -> bool {
    name.parse::<IpAddr>().is_ok() || is_dns_name(name)
}

/// Why `text` is not the gateway's public URL: an absolute `http`/`https` URL of a host
/// (and port), with no user name, query or fragment. A path is allowed: a reverse proxy
/// may serve the gateway below one.
pub(super) fn public_url_problem(text: &str) -> Option<&'static str> {
    let uri = match web_uri(text) {
        Ok(uri) => uri,
        Err(problem) => return Some(problem),
    };
    if uri.query().is_some() || text.contains('#') {
        return Some("it must not carry a query (?) or a fragment (#)");
    }
    None
}

/// Why `text` is not an origin a browser sends (`scheme://host[:port]`, nothing after),
/// so that it can never match a request's `Origin`.
pub(super) fn origin_problem(text: &str) -> Option<&'static str> {
    let uri = match web_uri(text) {
        Ok(uri) => uri,
        Err(problem) => return Some(problem),
    };
    let bare = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
        _ => return Some("it names no host"),
    };
    if text != bare {
        return Some("an origin is only scheme, host and port: no path, not even a final /");
    }
    None
}

/// `text` read by `http::Uri` as an absolute `http`/`https` URL whose host is a DNS name
/// or an IP address and whose port, if any, is a port number.
fn web_uri(text: &str) -> Result<Uri, &'static str> {
    let uri: Uri = text
        .parse()
        .map_err(|_| "it is not a URL: a character or part is not allowed there")?;
    match uri.scheme_str() {
        // `http::Uri` reads the scheme in any case; a browser writes it in lower case.
        Some(scheme @ ("https" | "http")) if text.starts_with(scheme) => {}
        _ => return Err("the scheme must be https:// or http:// (in lower case)"),
    }
    let Some(authority) = uri.authority() else {
        return Err("it names no host");
    };
    if authority.as_str().contains('@') {
        return Err("it must not carry a user name or password");
    }
    let host = authority.host();
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
        None => host.parse::<Ipv4Addr>().is_ok() || is_dns_name(host),
    };
    if !host_ok {
        return Err("its host is neither a DNS name nor an IP address");
    }
    if authority.as_str() != host && authority.port_u16().is_none() {
        return Err("its port is not a number from 0 to 65535");
    }
    Ok(uri)
}
