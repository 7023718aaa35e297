//! Discovery: advertises the gateway on the local network over mDNS (`mdns-sd`), as an
//! `_https._tcp` service (`_http._tcp` with TLS off) on `HOSTNAME.local` at the port it
//! actually listens on, so a phone resolves the `.local` name a pairing QR carries and a
//! browser finds the device. A gateway bound to a single address advertises that one;
//! one bound to every address (`0.0.0.0` or `::`) advertises the machine's addresses
//! and follows them as they change (a new DHCP lease). A gateway reachable only on
//! loopback advertises nothing, since nobody on the network could connect. The record is
//! withdrawn (a goodbye packet) when the gateway stops. This module only announces; it
//! never decides whether to (`[pairing] mdns`, read by the caller) and never answers HTTP.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mdns_sd::{IfKind, ServiceDaemon, ServiceInfo};

/// How long [`Announcer::stop`] waits for the goodbye to go out.
const GOODBYE_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("mDNS cannot start: {0}")]
    Daemon(String),
    #[error("the mDNS record for {host} is invalid: {reason}")]
    Record { host: String, reason: String },
}

/// What is advertised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// `_https._tcp.local.` or `_http._tcp.local.`.
    pub service: &'static str,
    /// The instance name people see in a service browser.
    pub instance: String,
    /// `HOSTNAME.local.`
    pub host: String,
    pub port: u16,
    /// The one address the gateway is bound to; empty when it is bound to every address
    /// and the machine's own are advertised as they come and go.
    pub addresses: Vec<IpAddr>,
}

/// The advert for a gateway listening on `listening` on the machine `hostname`, or why
/// there is none.
pub fn advert(hostname: &str, listening: SocketAddr, tls: bool) -> Result<Advert, &'static str> {
    let ip = listening.ip();
    if ip.is_loopback() {
        return Err("the gateway listens on loopback only, which nobody on the network can reach");
    }
    let label: String = hostname
        .split('.')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    if label.is_empty() {
        return Err("the machine has no usable host name");
    }
    Ok(Advert {
        service: if tls {
            "_https._tcp.local."
        } else {
            "_http._tcp.local."
        },
        instance: format!("aisopod on {label}"),
        host: format!("{label}.local."),
        port: listening.port(),
        addresses: if ip.is_unspecified() {
            Vec::new()
        } else {
            vec![ip]
        },
    })
}

/// The record as mdns-sd publishes it.
pub fn service_info(advert: &Advert) -> Result<ServiceInfo, DiscoveryError> {
    let properties = [("path", "/")];
    let info = ServiceInfo::new(
        advert.service,
        &advert.instance,
        &advert.host,
        advert.addresses.as_slice(),
        advert.port,
        &properties[..],
    )
    .map_err(|err| DiscoveryError::Record {
        host: advert.host.clone(),
        reason: err.to_string(),
    })?;
    Ok(if advert.addresses.is_empty() {
        info.enable_addr_auto()
    } else {
        info
    })
}

/// A running advertisement; [`Announcer::stop`] withdraws it.
pub struct Announcer {
    daemon: ServiceDaemon,
    fullname: String,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer")
            .field("fullname", &self.fullname)
            .finish_non_exhaustive()
    }
}

impl Announcer {
    /// Starts answering for `advert` on every interface but loopback.
    pub fn start(advert: &Advert) -> Result<Announcer, DiscoveryError> {
        let info = service_info(advert)?;
        let failed = |err: mdns_sd::Error| DiscoveryError::Daemon(err.to_string());
        let daemon = ServiceDaemon::new().map_err(failed)?;
        let fullname = info.get_fullname().to_string();
        let started = daemon
            .disable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])
            .and_then(|()| daemon.register(info));
        if let Err(err) = started {
            let _ = daemon.shutdown();
            return Err(failed(err));
        }
        Ok(Announcer { daemon, fullname })
    }

    /// Withdraws the record (waiting briefly for the goodbye to be sent) and stops.
    pub fn stop(self) {
        if let Ok(done) = self.daemon.unregister(&self.fullname) {
            let _ = done.recv_timeout(GOODBYE_WAIT);
        }
        if let Ok(done) = self.daemon.shutdown() {
            let _ = done.recv_timeout(GOODBYE_WAIT);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::time::Instant;

    use mdns_sd::ServiceEvent;

    use super::*;

    #[test]
    fn the_advert_names_the_host_and_the_port_it_listens_on_and_skips_loopback() {
        let everywhere: SocketAddr = "0.0.0.0:8443".parse().unwrap();
        let advert = advert("pi4.lan", everywhere, true).unwrap();
        assert_eq!(advert.service, "_https._tcp.local.");
        assert_eq!(advert.host, "pi4.local.");
        assert_eq!(advert.port, 8443);
        assert!(advert.addresses.is_empty(), "the machine's own, followed");
        let info = service_info(&advert).unwrap();
        assert!(info.is_addr_auto());
        assert_eq!(info.get_fullname(), "aisopod on pi4._https._tcp.local.");

        let one: SocketAddr = "192.168.1.20:443".parse().unwrap();
        let advert = advert_of("aisopod", one, false);
        assert_eq!(advert.service, "_http._tcp.local.");
        assert_eq!(advert.addresses, vec![one.ip()]);
        assert!(!service_info(&advert).unwrap().is_addr_auto());

        for loopback in ["127.0.0.1:443", "[::1]:443"] {
            let why = super::advert("aisopod", loopback.parse().unwrap(), true).unwrap_err();
            assert!(why.contains("loopback"), "{why}");
        }
        assert!(super::advert("", one, true).is_err());
    }

    fn advert_of(host: &str, at: SocketAddr, tls: bool) -> Advert {
        advert(host, at, tls).unwrap()
    }

    /// The first non-loopback IPv4 address of this machine, if any.
    fn lan_address() -> Option<IpAddr> {
        nix::ifaddrs::getifaddrs().ok()?.find_map(|ifaddr| {
            let v4 = ifaddr.address?.as_sockaddr_in()?.ip();
            (!v4.is_loopback()).then_some(IpAddr::V4(v4))
        })
    }

    /// A second mDNS daemon on this machine browses for the advert, sees it resolve to
    /// the host, port and address, and sees it withdrawn when the announcer stops.
    #[test]
    fn a_browser_on_the_network_finds_the_gateway_and_sees_it_leave() {
        let Some(address) = lan_address() else {
            eprintln!("SKIPPED: no non-loopback IPv4 interface for multicast");
            return;
        };
        let host = format!("aisopod-test-{}", std::process::id());
        let advert = advert_of(&host, SocketAddr::new(address, 40443), true);
        let announcer = Announcer::start(&advert).unwrap();
        let browser = ServiceDaemon::new().unwrap();
        let events = browser.browse(advert.service).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut resolved = None;
        while resolved.is_none() && Instant::now() < deadline {
            if let Ok(ServiceEvent::ServiceResolved(service)) =
                events.recv_timeout(Duration::from_millis(200))
                && service.host == advert.host
            {
                resolved = Some(service);
            }
        }
        let Some(service) = resolved else {
            let _ = browser.shutdown();
            announcer.stop();
            eprintln!("SKIPPED: no multicast answer on {address} (multicast unavailable here)");
            return;
        };
        assert_eq!(service.port, 40443);
        let addresses: Vec<IpAddr> = service.addresses.iter().map(|a| a.to_ip_addr()).collect();
        assert_eq!(addresses, vec![address]);
        let fullname = service.fullname.clone();
        announcer.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut removed = false;
        while !removed && Instant::now() < deadline {
            if let Ok(ServiceEvent::ServiceRemoved(_, name)) =
                events.recv_timeout(Duration::from_millis(200))
            {
                removed = name == fullname;
            }
        }
        let _ = browser.shutdown();
        assert!(removed, "the goodbye withdraws the record");
    }
}
