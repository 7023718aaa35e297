//! TLS: the device CA, the server certificate, the rustls configuration and fingerprints.
//!
//! On first start (mode `self-signed`) this makes a device CA that lives for years and a
//! server certificate it signs that lives at most 90 days. The CA carries X.509 name
//! constraints: it can only vouch for `localhost`, names under `.local`, the device's own
//! hostname and extra names, and private, loopback and link-local addresses (plus any
//! public address the device had when the CA was made). A phone that trusts the CA to
//! reach its aisopod therefore does not trust it for anything on the internet, even if
//! the CA key leaks. The server certificate is re-issued (same CA, so trust holds) when
//! the names it should carry change or two thirds of its life have passed.
//!
//! Mode `files` serves the operator's own PEM chain and key; mode `off` makes no
//! `Tls` at all. This module never logs key material and writes every key file 0600.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SanType, SerialNumber,
};
use ring::rand::SecureRandom;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::{SharedClock, rfc3339};
use crate::config::{TlsConfig, TlsMode};
use crate::fsutil::{IoError, write_private_file};

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "cert.pem";
const SERVER_KEY: &str = "key.pem";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{path} is damaged or not a PEM {what}: {detail}")]
    Damaged {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error(
        "the device CA in {0} is damaged; restore it from a backup, or run `aisopod cert regenerate --ca` \
         (every paired phone and browser must then trust the new CA)"
    )]
    CaDamaged(PathBuf),
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("rustls refused the configuration: {0}")]
    Rustls(String),
    #[error(
        "this gateway serves the operator's certificate ([tls] mode = \"files\"); replace those files to change it"
    )]
    NotSelfSigned,
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> TlsError + 'a {
    move |source| TlsError::Io(IoError::new(op, path.to_path_buf(), source))
}

fn generate_error(err: rcgen::Error) -> TlsError {
    TlsError::Generate(err.to_string())
}

/// Something the TLS layer did that belongs in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsEvent {
    CaCreated { fingerprint: String },
    ServerIssued { fingerprint: String, reason: String },
}

/// A certificate as `cert show` reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub sha256: String,
    pub names: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    #[serde(skip)]
    pub not_before_unix: i64,
    #[serde(skip)]
    pub not_after_unix: i64,
}

/// What `cert show` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TlsSummary {
    pub mode: String,
    pub ca: Option<CertInfo>,
    pub server: CertInfo,
    pub renews_after: Option<String>,
}

/// Where the names a certificate should carry come from.
pub type NameSource = Arc<dyn Fn() -> BTreeSet<String> + Send + Sync>;

/// The names of this machine: hostname, `hostname.local`, localhost, loopback and every
/// interface address, plus configured extras.
pub fn system_names(extra: &[String]) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = ["localhost", "127.0.0.1", "::1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(host) = hostname() {
        names.insert(format!("{host}.local"));
        names.insert(host);
    }
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifaddr in addrs {
            let Some(address) = ifaddr.address else {
                continue;
            };
            let ip = if let Some(v4) = address.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else if let Some(v6) = address.as_sockaddr_in6() {
                // Link-local v6 needs a zone to be reachable; certificates cannot carry one.
                if v6.ip().is_unicast_link_local() {
                    continue;
                }
                IpAddr::V6(v6.ip())
            } else {
                continue;
            };
            if !ip.is_loopback() && !ip.is_unspecified() {
                names.insert(ip.to_string());
            }
        }
    }
    names.extend(extra.iter().cloned());
    names
}

fn hostname() -> Option<String> {
    let host = nix::unistd::gethostname().ok()?.into_string().ok()?;
    let host = host.split('.').next()?.to_ascii_lowercase();
    (!host.is_empty() && host != "localhost").then_some(host)
}

/// Private, loopback, link-local and shared address ranges a device CA may vouch for.
fn private_ranges() -> Vec<CidrSubnet> {
    vec![
        CidrSubnet::from_v4_prefix([127, 0, 0, 0], 8),
        CidrSubnet::from_v4_prefix([10, 0, 0, 0], 8),
        CidrSubnet::from_v4_prefix([172, 16, 0, 0], 12),
        CidrSubnet::from_v4_prefix([192, 168, 0, 0], 16),
        CidrSubnet::from_v4_prefix([169, 254, 0, 0], 16),
        CidrSubnet::from_v4_prefix([100, 64, 0, 0], 10),
        CidrSubnet::from_v6_prefix(Ipv6Addr::LOCALHOST.octets(), 128),
        CidrSubnet::from_v6_prefix([0xfc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 7),
        CidrSubnet::from_v6_prefix([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 10),
    ]
}

fn in_private_range(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00 || v6.is_unicast_link_local()
        }
    }
}

/// The DNS and IP subtrees a new CA is constrained to, given the names it must cover now.
fn constraints_for(names: &BTreeSet<String>) -> NameConstraints {
    let mut permitted: Vec<GeneralSubtree> = vec![
        GeneralSubtree::DnsName("localhost".into()),
        GeneralSubtree::DnsName("local".into()),
    ];
    let mut ips = private_ranges();
    for name in names {
        match name.parse::<IpAddr>() {
            Ok(ip) if !in_private_range(ip) => ips.push(CidrSubnet::from_addr_prefix(
                ip,
                if ip.is_ipv4() { 32 } else { 128 },
            )),
            Ok(_) => {}
            Err(_) if name == "localhost" || name.ends_with(".local") => {}
            Err(_) => permitted.push(GeneralSubtree::DnsName(name.clone())),
        }
    }
    permitted.extend(ips.into_iter().map(GeneralSubtree::IpAddress));
    NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: Vec::new(),
    }
}

/// True when a CA constrained by `constraints` may vouch for `name`.
fn permitted_by(constraints: &NameConstraints, name: &str) -> bool {
    let ip = name.parse::<IpAddr>().ok();
    constraints
        .permitted_subtrees
        .iter()
        .any(|subtree| match (subtree, ip) {
            (GeneralSubtree::IpAddress(cidr), Some(ip)) => cidr_contains(cidr, ip),
            (GeneralSubtree::DnsName(base), None) => {
                name.eq_ignore_ascii_case(base)
                    || name
                        .to_ascii_lowercase()
                        .ends_with(&format!(".{}", base.to_ascii_lowercase()))
            }
            _ => false,
        })
}

/// Whether a name constraint's subnet holds `ip`; the arithmetic is the `ipnet` crate's.
fn cidr_contains(cidr: &CidrSubnet, ip: IpAddr) -> bool {
    let net = match cidr {
        CidrSubnet::V4(addr, mask) => {
            ipnet::Ipv4Net::with_netmask((*addr).into(), (*mask).into()).map(ipnet::IpNet::V4)
        }
        CidrSubnet::V6(addr, mask) => {
            ipnet::Ipv6Net::with_netmask((*addr).into(), (*mask).into()).map(ipnet::IpNet::V6)
        }
    };
    net.is_ok_and(|net| net.contains(&ip))
}

/// Parses the constraints of an existing CA certificate.
fn constraints_of(der: &[u8]) -> Option<NameConstraints> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let ext = cert.name_constraints().ok()??;
    let mut permitted = Vec::new();
    for subtree in ext.value.permitted_subtrees.iter().flatten() {
        match &subtree.base {
            GeneralName::DNSName(name) => permitted.push(GeneralSubtree::DnsName(name.to_string())),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                8 => {
                    let mut addr = [0u8; 4];
                    let mut mask = [0u8; 4];
                    addr.copy_from_slice(bytes.get(..4)?);
                    mask.copy_from_slice(bytes.get(4..)?);
                    permitted.push(GeneralSubtree::IpAddress(CidrSubnet::V4(addr, mask)));
                }
                32 => {
                    let mut addr = [0u8; 16];
                    let mut mask = [0u8; 16];
                    addr.copy_from_slice(bytes.get(..16)?);
                    mask.copy_from_slice(bytes.get(16..)?);
                    permitted.push(GeneralSubtree::IpAddress(CidrSubnet::V6(addr, mask)));
                }
                _ => {}
            },
            _ => {}
        }
    }
    Some(NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: Vec::new(),
    })
}

/// SHA-256 of a DER certificate as colon-separated uppercase hex, as browsers show it.
pub fn fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Reads the facts `cert show` and renewal need from a DER certificate.
pub fn inspect(der: &[u8]) -> Option<CertInfo> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => names.push(dns.to_string()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes)
                            .ok()
                            .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
                        16 => <[u8; 16]>::try_from(*bytes)
                            .ok()
                            .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    names.sort();
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    let at = |unix: i64| {
        OffsetDateTime::from_unix_timestamp(unix)
            .map(rfc3339)
            .unwrap_or_default()
    };
    Some(CertInfo {
        subject: cert.subject().to_string(),
        sha256: fingerprint(der),
        names,
        not_before: at(not_before),
        not_after: at(not_after),
        not_before_unix: not_before,
        not_after_unix: not_after,
    })
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(io_error("read", path))?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&bytes).collect();
    let damaged = |detail: String| TlsError::Damaged {
        path: path.to_path_buf(),
        what: "certificate",
        detail,
    };
    let certs = certs.map_err(|err| damaged(err.to_string()))?;
    if certs.is_empty() {
        return Err(damaged("no CERTIFICATE block found".into()));
    }
    for cert in &certs {
        if x509_parser::parse_x509_certificate(cert).is_err() {
            return Err(damaged("the certificate inside does not parse".into()));
        }
    }
    Ok(certs)
}

fn read_pem_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(io_error("read", path))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|err| TlsError::Damaged {
        path: path.to_path_buf(),
        what: "private key",
        detail: err.to_string(),
    })
}

fn provider() -> Arc<CryptoProvider> {
    // ring's suites are all ECDHE key exchange with AEAD ciphers; state it explicitly so a
    // provider update cannot widen the set.
    use rustls::crypto::ring::cipher_suite as suites;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![
        suites::TLS13_AES_256_GCM_SHA384,
        suites::TLS13_AES_128_GCM_SHA256,
        suites::TLS13_CHACHA20_POLY1305_SHA256,
        suites::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        suites::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        suites::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        suites::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        suites::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    Arc::new(provider)
}

/// Hands rustls the current certificate; swapped in place on renewal.
#[derive(Debug)]
struct Resolver(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        )
    }
}

#[derive(Debug, Clone)]
struct Loaded {
    ca: Option<CertInfo>,
    ca_pem: Option<String>,
    server: CertInfo,
}

/// The TLS service: certificate files, the live rustls config, renewal.
pub struct Tls {
    dir: PathBuf,
    self_signed: bool,
    server_validity: Duration,
    ca_validity: Duration,
    names: NameSource,
    clock: SharedClock,
    resolver: Arc<Resolver>,
    config: Arc<rustls::ServerConfig>,
    loaded: RwLock<Loaded>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("dir", &self.dir)
            .field("self_signed", &self.self_signed)
            .finish_non_exhaustive()
    }
}

/// The directory holding the device's certificates.
pub fn tls_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(crate::store::TLS_DIR)
}

/// Paths of key files that must stay private (mode 0600).
pub fn key_files(config: &TlsConfig, data_dir: &Path) -> Vec<PathBuf> {
    match &config.mode {
        TlsMode::SelfSigned => vec![
            tls_dir(data_dir).join(CA_KEY),
            tls_dir(data_dir).join(SERVER_KEY),
        ],
        TlsMode::Files { key, .. } => vec![key.clone()],
        TlsMode::Off => Vec::new(),
    }
}

impl Tls {
    /// Loads the certificates (making what is missing in `self-signed` mode) and builds
    /// the rustls configuration. Returns `None` for `[tls] mode = "off"`.
    pub fn open(
        config: &TlsConfig,
        data_dir: &Path,
        clock: SharedClock,
        names: NameSource,
    ) -> Result<Option<(Tls, Vec<TlsEvent>)>, TlsError> {
        let (dir, cert_path, key_path, self_signed) = match &config.mode {
            TlsMode::Off => return Ok(None),
            TlsMode::SelfSigned => {
                let dir = tls_dir(data_dir);
                (
                    dir.clone(),
                    dir.join(SERVER_CERT),
                    dir.join(SERVER_KEY),
                    true,
                )
            }
            TlsMode::Files { cert, key } => (
                cert.parent().unwrap_or(Path::new(".")).to_path_buf(),
                cert.clone(),
                key.clone(),
                false,
            ),
        };
        let mut events = Vec::new();
        if self_signed {
            std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
            let ca_missing = !dir.join(CA_CERT).exists() && !dir.join(CA_KEY).exists();
            if ca_missing {
                events.push(create_ca(&dir, &names(), clock.now(), config.ca_validity)?);
            }
        }
        let chain_and_key = if self_signed {
            None
        } else {
            Some((read_pem_certs(&cert_path)?, read_pem_key(&key_path)?))
        };
        let placeholder = certified_key_placeholder()?;
        let resolver = Arc::new(Resolver(RwLock::new(placeholder)));
        let server_config = server_config(resolver.clone())?;
        let empty = CertInfo {
            subject: String::new(),
            sha256: String::new(),
            names: Vec::new(),
            not_before: String::new(),
            not_after: String::new(),
            not_before_unix: 0,
            not_after_unix: 0,
        };
        let tls = Tls {
            dir,
            self_signed,
            server_validity: config.server_validity,
            ca_validity: config.ca_validity,
            names,
            clock,
            resolver,
            config: server_config,
            loaded: RwLock::new(Loaded {
                ca: None,
                ca_pem: None,
                server: empty,
            }),
        };
        match chain_and_key {
            Some((chain, key)) => tls.install(chain, key, None)?,
            None => {
                if let Some(event) = tls.refresh_inner(
                    events
                        .iter()
                        .any(|e| matches!(e, TlsEvent::CaCreated { .. })),
                )? {
                    events.push(event);
                }
            }
        }
        Ok(Some((tls, events)))
    }

    /// The rustls configuration the listener uses; certificates swap inside it.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }

    /// Re-issues the server certificate if its names changed or it is past two thirds of
    /// its life. Call periodically.
    pub fn refresh(&self) -> Result<Option<TlsEvent>, TlsError> {
        if !self.self_signed {
            return Ok(None);
        }
        self.refresh_inner(false)
    }

    /// Makes a new server certificate now, and a new CA too when `ca` is true.
    pub fn regenerate(&self, ca: bool) -> Result<Vec<TlsEvent>, TlsError> {
        if !self.self_signed {
            return Err(TlsError::NotSelfSigned);
        }
        let mut events = Vec::new();
        if ca {
            events.push(create_ca(
                &self.dir,
                &(self.names)(),
                self.clock.now(),
                self.ca_validity,
            )?);
        }
        events.push(self.issue_server("regenerated on request")?);
        Ok(events)
    }

    pub fn summary(&self) -> TlsSummary {
        let loaded = self
            .loaded
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let renews_after = self.self_signed.then(|| {
            let at = renewal_due(&loaded.server);
            OffsetDateTime::from_unix_timestamp(at)
                .map(rfc3339)
                .unwrap_or_default()
        });
        TlsSummary {
            mode: if self.self_signed {
                "self-signed"
            } else {
                "files"
            }
            .into(),
            ca: loaded.ca,
            server: loaded.server,
            renews_after,
        }
    }

    /// The device CA in PEM, for `GET /ca.crt`; `None` in `files` mode.
    pub fn ca_pem(&self) -> Option<String> {
        self.loaded
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .ca_pem
            .clone()
    }

    fn refresh_inner(&self, ca_new: bool) -> Result<Option<TlsEvent>, TlsError> {
        let ca_path = self.dir.join(CA_CERT);
        let ca = read_pem_certs(&ca_path).map_err(|_| TlsError::CaDamaged(self.dir.clone()))?;
        let ca_der = ca
            .first()
            .ok_or_else(|| TlsError::CaDamaged(self.dir.clone()))?;
        let current = read_pem_certs(&self.dir.join(SERVER_CERT))
            .and_then(|chain| Ok((chain, read_pem_key(&self.dir.join(SERVER_KEY))?)));
        let reason = match &current {
            _ if ca_new => Some("new device CA".to_string()),
            Err(TlsError::Io(IoError { source, .. }))
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Some("first start".into())
            }
            Err(err) => Some(format!("existing certificate unusable: {err}")),
            Ok((chain, _)) => match chain
                .first()
                .and_then(|der| inspect(der).map(|info| (der, info)))
            {
                None => Some("existing certificate unreadable".into()),
                Some((der, info)) => self.renewal_reason(der, &info, ca_der),
            },
        };
        if let Some(reason) = reason {
            return self.issue_server(&reason).map(Some);
        }
        if let Ok((chain, key)) = current {
            self.install(chain, key, Some(ca_der.clone()))?;
        }
        Ok(None)
    }

    fn renewal_reason(
        &self,
        server_der: &CertificateDer<'_>,
        info: &CertInfo,
        ca_der: &CertificateDer<'_>,
    ) -> Option<String> {
        if !issued_by(server_der, ca_der) {
            return Some("not issued by the current device CA".into());
        }
        let now = self.clock.now().unix_timestamp();
        if now >= renewal_due(info) {
            return Some(format!(
                "two thirds of its life passed (expires {})",
                info.not_after
            ));
        }
        let wanted = self.wanted_names(ca_der);
        let have: BTreeSet<String> = info.names.iter().cloned().collect();
        if wanted != have {
            let added: Vec<_> = wanted.difference(&have).cloned().collect();
            let removed: Vec<_> = have.difference(&wanted).cloned().collect();
            return Some(format!(
                "names changed (added {added:?}, removed {removed:?})"
            ));
        }
        None
    }

    /// The names the server certificate should carry: the machine's, limited to those
    /// the CA's constraints allow (others are logged, since clients would refuse them).
    fn wanted_names(&self, ca_der: &CertificateDer<'_>) -> BTreeSet<String> {
        let names = (self.names)();
        let Some(constraints) = constraints_of(ca_der) else {
            return names;
        };
        names
            .into_iter()
            .filter(|name| {
                let ok = permitted_by(&constraints, name);
                if !ok {
                    tracing::warn!(%name, "name is outside the device CA's constraints and is left off the certificate; `aisopod cert regenerate --ca` makes a CA that covers it");
                }
                ok
            })
            .collect()
    }

    fn issue_server(&self, reason: &str) -> Result<TlsEvent, TlsError> {
        let ca_pem_path = self.dir.join(CA_CERT);
        let ca_chain =
            read_pem_certs(&ca_pem_path).map_err(|_| TlsError::CaDamaged(self.dir.clone()))?;
        let ca_der = ca_chain
            .first()
            .ok_or_else(|| TlsError::CaDamaged(self.dir.clone()))?
            .clone();
        let ca_key_pem = std::fs::read_to_string(self.dir.join(CA_KEY))
            .map_err(|_| TlsError::CaDamaged(self.dir.clone()))?;
        let ca_key =
            KeyPair::from_pem(&ca_key_pem).map_err(|_| TlsError::CaDamaged(self.dir.clone()))?;
        let issuer = Issuer::from_ca_cert_der(&ca_der, ca_key)
            .map_err(|_| TlsError::CaDamaged(self.dir.clone()))?;

        let names = self.wanted_names(&ca_der);
        let now = self.clock.now();
        let mut params = CertificateParams::default();
        params.subject_alt_names = names
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => name.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<_, _>>()
            .map_err(generate_error)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let cn = names
            .iter()
            .find(|n| n.ends_with(".local"))
            .cloned()
            .unwrap_or_else(|| "localhost".into());
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "aisopod");
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now
            + time::Duration::try_from(self.server_validity).unwrap_or(time::Duration::days(90));
        params.serial_number = Some(random_serial()?);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(generate_error)?;
        let cert = params.signed_by(&key, &issuer).map_err(generate_error)?;

        let key_path = self.dir.join(SERVER_KEY);
        write_private_file(&key_path, key.serialize_pem().as_bytes())
            .map_err(io_error("write", &key_path))?;
        let cert_path = self.dir.join(SERVER_CERT);
        write_private_file(&cert_path, cert.pem().as_bytes())
            .map_err(io_error("write", &cert_path))?;
        let fingerprint = fingerprint(cert.der());
        let key_der = PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        self.install(vec![cert.der().clone()], key_der, Some(ca_der))?;
        tracing::info!(%fingerprint, %reason, "issued server certificate");
        Ok(TlsEvent::ServerIssued {
            fingerprint,
            reason: reason.to_string(),
        })
    }

    fn install(
        &self,
        mut chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        ca: Option<CertificateDer<'static>>,
    ) -> Result<(), TlsError> {
        let server =
            chain
                .first()
                .and_then(|der| inspect(der))
                .ok_or_else(|| TlsError::Damaged {
                    path: self.dir.clone(),
                    what: "certificate",
                    detail: "unreadable".into(),
                })?;
        let ca_info = ca.as_ref().and_then(|der| inspect(der));
        let ca_pem = ca.as_ref().map(|der| pem_encode(der));
        if let Some(ca) = ca {
            chain.push(ca);
        }
        let signing_key = provider()
            .key_provider
            .load_private_key(key)
            .map_err(|err| TlsError::Rustls(err.to_string()))?;
        let certified = CertifiedKey::new(chain, signing_key);
        certified
            .keys_match()
            .map_err(|err| TlsError::Rustls(format!("certificate and key do not match: {err}")))?;
        *self
            .resolver
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(certified);
        *self
            .loaded
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Loaded {
            ca: ca_info,
            ca_pem,
            server,
        };
        Ok(())
    }
}

/// True when `ca_der`'s key signed `cert_der`.
fn issued_by(cert_der: &[u8], ca_der: &[u8]) -> bool {
    let (Ok((_, cert)), Ok((_, ca))) = (
        x509_parser::parse_x509_certificate(cert_der),
        x509_parser::parse_x509_certificate(ca_der),
    ) else {
        return false;
    };
    cert.verify_signature(Some(ca.public_key())).is_ok()
}

/// Replaces the device CA (for `cert regenerate --ca`, including when the old one is
/// damaged); the next open issues a server certificate under it.
pub fn replace_ca(
    config: &TlsConfig,
    data_dir: &Path,
    clock: &SharedClock,
    names: &NameSource,
) -> Result<TlsEvent, TlsError> {
    if config.mode != TlsMode::SelfSigned {
        return Err(TlsError::NotSelfSigned);
    }
    let dir = tls_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
    create_ca(&dir, &names(), clock.now(), config.ca_validity)
}

/// When a certificate is due for renewal: two thirds of the way through its life.
fn renewal_due(info: &CertInfo) -> i64 {
    info.not_before_unix + (info.not_after_unix - info.not_before_unix) * 2 / 3
}

fn pem_encode(der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new("CERTIFICATE", der), config)
}

fn random_serial() -> Result<SerialNumber, TlsError> {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| TlsError::Generate("random number generator failed".into()))?;
    bytes[0] &= 0x7f; // keep the serial positive
    Ok(SerialNumber::from_slice(&bytes))
}

fn create_ca(
    dir: &Path,
    names: &BTreeSet<String>,
    now: OffsetDateTime,
    validity: Duration,
) -> Result<TlsEvent, TlsError> {
    let host = hostname().unwrap_or_else(|| "aisopod".into());
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("aisopod device CA ({host})"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "aisopod");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.name_constraints = Some(constraints_for(names));
    params.not_before = now - time::Duration::minutes(5);
    params.not_after =
        now + time::Duration::try_from(validity).unwrap_or(time::Duration::days(3650));
    params.serial_number = Some(random_serial()?);
    let key = KeyPair::generate().map_err(generate_error)?;
    let cert = params.self_signed(&key).map_err(generate_error)?;
    let key_path = dir.join(CA_KEY);
    write_private_file(&key_path, key.serialize_pem().as_bytes())
        .map_err(io_error("write", &key_path))?;
    let cert_path = dir.join(CA_CERT);
    write_private_file(&cert_path, cert.pem().as_bytes()).map_err(io_error("write", &cert_path))?;
    let fingerprint = fingerprint(cert.der());
    tracing::info!(%fingerprint, "created device CA");
    Ok(TlsEvent::CaCreated { fingerprint })
}

/// A throwaway certificate used only until the real one is installed during `open`.
fn certified_key_placeholder() -> Result<Arc<CertifiedKey>, TlsError> {
    let key = KeyPair::generate().map_err(generate_error)?;
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .and_then(|params| params.self_signed(&key))
        .map_err(generate_error)?;
    let key_der = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|err| TlsError::Rustls(err.to_string()))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing_key,
    )))
}

fn server_config(resolver: Arc<Resolver>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|err| TlsError::Rustls(err.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reads the certificates on disk without changing anything, for `cert show` when no
/// gateway runs.
pub fn summarize_files(
    config: &TlsConfig,
    data_dir: &Path,
) -> Result<Option<TlsSummary>, TlsError> {
    let (mode, ca_path, cert_path) = match &config.mode {
        TlsMode::Off => return Ok(None),
        TlsMode::SelfSigned => (
            "self-signed",
            Some(tls_dir(data_dir).join(CA_CERT)),
            tls_dir(data_dir).join(SERVER_CERT),
        ),
        TlsMode::Files { cert, .. } => ("files", None, cert.clone()),
    };
    let server_der = read_pem_certs(&cert_path)?;
    let server = server_der
        .first()
        .and_then(|der| inspect(der))
        .ok_or_else(|| TlsError::Damaged {
            path: cert_path.clone(),
            what: "certificate",
            detail: "unreadable".into(),
        })?;
    let ca = match ca_path {
        Some(path) => read_pem_certs(&path)?.first().and_then(|der| inspect(der)),
        None => None,
    };
    let renews_after = ca.as_ref().map(|_| {
        OffsetDateTime::from_unix_timestamp(renewal_due(&server))
            .map(rfc3339)
            .unwrap_or_default()
    });
    Ok(Some(TlsSummary {
        mode: mode.into(),
        ca,
        server,
        renews_after,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::ConfigSource;
    use crate::config::testing::NoEnv;

    fn tls_config() -> TlsConfig {
        crate::config::parse("", ConfigSource::Defaults, &NoEnv)
            .unwrap()
            .tls
    }

    fn fixed_names(names: &[&str]) -> NameSource {
        let names: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
        Arc::new(move || names.clone())
    }

    fn start() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    #[test]
    fn first_open_makes_a_constrained_ca_and_a_short_lived_server_cert() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(start());
        let (tls, events) = Tls::open(
            &tls_config(),
            dir.path(),
            Arc::new(clock.clone()),
            fixed_names(&["localhost", "127.0.0.1", "pi.local", "pi", "192.168.1.20"]),
        )
        .unwrap()
        .unwrap();
        assert!(matches!(events[0], TlsEvent::CaCreated { .. }));
        assert!(matches!(events[1], TlsEvent::ServerIssued { .. }));
        let summary = tls.summary();
        let server = &summary.server;
        assert_eq!(
            server.names,
            vec!["127.0.0.1", "192.168.1.20", "localhost", "pi", "pi.local"]
        );
        let life = server.not_after_unix - server.not_before_unix;
        assert!(life <= 90 * 86_400 + 600, "server cert lives {life}s");
        let ca = summary.ca.unwrap();
        assert!(ca.not_after_unix - ca.not_before_unix >= 9 * 365 * 86_400);
        use std::os::unix::fs::PermissionsExt;
        for file in [CA_KEY, SERVER_KEY] {
            let mode = std::fs::metadata(dir.path().join("tls").join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }

    #[test]
    fn renewal_keeps_the_ca_and_happens_at_two_thirds_of_life_or_on_name_change() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(start());
        let names = Arc::new(RwLock::new(vec!["localhost", "127.0.0.1"]));
        let source_names = names.clone();
        let source: NameSource = Arc::new(move || {
            source_names
                .read()
                .unwrap()
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
        let (tls, _) = Tls::open(&tls_config(), dir.path(), Arc::new(clock.clone()), source)
            .unwrap()
            .unwrap();
        let first = tls.summary();
        clock.advance(time::Duration::days(59));
        assert_eq!(tls.refresh().unwrap(), None);
        clock.advance(time::Duration::days(2));
        assert!(matches!(
            tls.refresh().unwrap(),
            Some(TlsEvent::ServerIssued { .. })
        ));
        let second = tls.summary();
        assert_ne!(first.server.sha256, second.server.sha256);
        assert_eq!(
            first.ca.as_ref().unwrap().sha256,
            second.ca.as_ref().unwrap().sha256
        );
        names.write().unwrap().push("10.1.2.3");
        let event = tls.refresh().unwrap();
        assert!(
            matches!(&event, Some(TlsEvent::ServerIssued { reason, .. }) if reason.contains("10.1.2.3")),
            "{event:?}"
        );
        assert!(tls.summary().server.names.contains(&"10.1.2.3".to_string()));
        // A reopen with nothing changed keeps the same certificate.
        drop(tls);
        let (again, events) = Tls::open(
            &tls_config(),
            dir.path(),
            Arc::new(clock.clone()),
            fixed_names(&["localhost", "127.0.0.1", "10.1.2.3"]),
        )
        .unwrap()
        .unwrap();
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(again.summary().ca.unwrap().sha256, first.ca.unwrap().sha256);
    }

    #[test]
    fn names_outside_the_ca_constraints_are_left_off() {
        let constraints = constraints_for(
            &["pi".to_string(), "8.8.4.4".to_string()]
                .into_iter()
                .collect(),
        );
        for ok in [
            "localhost",
            "pi",
            "pi.local",
            "x.y.local",
            "192.168.0.9",
            "10.0.0.1",
            "127.0.0.1",
            "::1",
            "fd00::1",
            "8.8.4.4",
        ] {
            assert!(permitted_by(&constraints, ok), "{ok} should be permitted");
        }
        for bad in [
            "example.com",
            "pi.example.com",
            "notlocal",
            "8.8.8.8",
            "2001:db8::1",
            "localhost.evil",
        ] {
            assert!(
                !permitted_by(&constraints, bad),
                "{bad} should not be permitted"
            );
        }
    }

    /// What rustls/webpki clients make of the CA: they accept the server certificate it
    /// issues and refuse a certificate it signs for a name outside its constraints.
    #[test]
    fn webpki_enforces_the_ca_name_constraints() {
        use rustls::client::danger::ServerCertVerifier;
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let (tls, _) = Tls::open(
            &tls_config(),
            dir.path(),
            clock,
            fixed_names(&["localhost", "127.0.0.1", "pi.local"]),
        )
        .unwrap()
        .unwrap();
        let ca_der = read_pem_certs(&dir.path().join("tls/ca.pem"))
            .unwrap()
            .remove(0);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_der.clone()).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .unwrap();
        let now = rustls_pki_types::UnixTime::now();
        let verify = |leaf: &CertificateDer<'_>, name: &str| {
            let name = rustls_pki_types::ServerName::try_from(name.to_string()).unwrap();
            verifier.verify_server_cert(leaf, &[], &name, &[], now)
        };
        let server = read_pem_certs(&dir.path().join("tls/cert.pem"))
            .unwrap()
            .remove(0);
        for name in ["localhost", "pi.local", "127.0.0.1"] {
            assert!(
                verify(&server, name).is_ok(),
                "{name}: {:?}",
                verify(&server, name)
            );
        }
        drop(tls);

        // Sign a certificate for an internet name with the CA key, as a thief would.
        let ca_key =
            KeyPair::from_pem(&std::fs::read_to_string(dir.path().join("tls/ca.key")).unwrap())
                .unwrap();
        let issuer = Issuer::from_ca_cert_der(&ca_der, ca_key).unwrap();
        for (san, name) in [
            ("bank.example.com", "bank.example.com"),
            ("8.8.8.8", "8.8.8.8"),
        ] {
            let mut params = CertificateParams::new(vec![san.to_string()]).unwrap();
            params.not_before = OffsetDateTime::now_utc() - time::Duration::hours(1);
            params.not_after = OffsetDateTime::now_utc() + time::Duration::days(1);
            let key = KeyPair::generate().unwrap();
            let forged = params.signed_by(&key, &issuer).unwrap();
            let err = verify(forged.der(), name).unwrap_err();
            assert!(
                format!("{err:?}").contains("NameConstraint"),
                "{san}: {err:?}"
            );
        }
    }

    #[test]
    fn a_damaged_server_cert_is_reissued_and_a_damaged_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(start()));
        let names = fixed_names(&["localhost"]);
        drop(Tls::open(&tls_config(), dir.path(), clock.clone(), names.clone()).unwrap());
        std::fs::write(
            dir.path().join("tls/cert.pem"),
            "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let (_, events) = Tls::open(&tls_config(), dir.path(), clock.clone(), names.clone())
            .unwrap()
            .unwrap();
        assert!(
            matches!(&events[..], [TlsEvent::ServerIssued { reason, .. }] if reason.contains("unusable")),
            "{events:?}"
        );
        std::fs::write(dir.path().join("tls/ca.pem"), "not a certificate").unwrap();
        let err = Tls::open(&tls_config(), dir.path(), clock, names).unwrap_err();
        assert!(matches!(err, TlsError::CaDamaged(_)));
        assert!(err.to_string().contains("cert regenerate --ca"));
    }

    #[test]
    fn the_ca_pem_is_standard_pem_that_decodes_to_the_same_certificate() {
        let der = (0..=255u8).cycle().take(700).collect::<Vec<u8>>();
        let text = pem_encode(&der);
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"), "{text}");
        assert!(text.ends_with("-----END CERTIFICATE-----\n"), "{text}");
        assert!(!text.contains('\r'));
        assert!(text.lines().all(|line| line.len() <= 64));
        let back = CertificateDer::from_pem_slice(text.as_bytes()).unwrap();
        assert_eq!(back.as_ref(), der.as_slice());
    }
}
