//! The HTTPS server as a client sees it: TLS, headers, JSON errors, hostile clients,
//! load shedding, timeouts and graceful shutdown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aisopod::clock::SystemClock;
use aisopod::config::{ConfigSource, ProcessEnvironment};
use aisopod::server::auth::Access;
use aisopod::server::state::App;
use aisopod::server::{self, ConnectionLimits};
use axum::routing::get;
use http::StatusCode;

use crate::support::{Gateway, Setup, blocking_client_trusting, client_trusting, config_text};

#[test]
fn health_ready_and_security_headers_over_tls() {
    let setup = Setup::new("");
    let gateway = setup.start();
    assert!(
        gateway.url.starts_with("https://127.0.0.1:"),
        "{}",
        gateway.url
    );

    let health = gateway.get("/health");
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(
        health.version(),
        http::Version::HTTP_2,
        "ALPN should pick h2"
    );
    let headers = health.headers().clone();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("strict-transport-security", "max-age=31536000"),
    ] {
        assert_eq!(headers.get(name).unwrap(), value, "{name}");
    }
    let csp = headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(headers.contains_key("permissions-policy"));
    assert_eq!(headers.get("x-request-id").unwrap().len(), 16);
    assert_eq!(
        health.json::<serde_json::Value>().unwrap(),
        serde_json::json!({"status": "ok"})
    );

    let ready: serde_json::Value = gateway.get("/ready").json().unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["store"], "ok");
    assert_eq!(ready["checks"]["certificate"], "ok");

    // A well-formed incoming request id is kept; a hostile one is replaced.
    let client = gateway.client();
    let kept = client
        .get(format!("{}/health", gateway.url))
        .header("x-request-id", "abc-123")
        .send()
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "abc-123");
    let replaced = client
        .get(format!("{}/health", gateway.url))
        .header("x-request-id", "a\u{7f}b; drop")
        .send();
    if let Ok(replaced) = replaced {
        assert_ne!(replaced.headers()["x-request-id"], "a\u{7f}b; drop");
    }
}

#[test]
fn the_device_ca_is_served_and_trusted_by_webpki_with_its_name_constraints() {
    let setup = Setup::new("");
    let gateway = setup.start();
    let response = gateway.get("/ca.crt");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-x509-ca-cert"
    );
    let served = response.text().unwrap();
    let on_disk = std::fs::read_to_string(gateway.data_dir.join("tls/ca.pem")).unwrap();
    assert_eq!(served.trim(), on_disk.trim());

    // A client that trusts only the downloaded CA (rustls + webpki, which enforce the
    // CA's name constraints) connects by IP and by the name "localhost".
    let served_path = setup.dir.path().join("downloaded-ca.pem");
    std::fs::write(&served_path, &served).unwrap();
    let client = blocking_client_trusting(&served_path);
    let port = gateway.addr().port();
    for url in [
        format!("https://127.0.0.1:{port}/health"),
        format!("https://localhost:{port}/health"),
    ] {
        let response = client
            .get(&url)
            .send()
            .unwrap_or_else(|e| panic!("{url}: {e:?}"));
        assert_eq!(response.status(), StatusCode::OK, "{url}");
    }
    // A client without the CA refuses the certificate.
    let untrusting = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    assert!(
        untrusting
            .get(format!("{}/health", gateway.url))
            .send()
            .is_err()
    );
}

#[test]
fn errors_are_json_without_internals() {
    let setup = Setup::new("max_body = \"64k\"");
    let gateway = setup.start();
    let client = gateway.client();
    let cases = [
        (
            client.get(format!("{}/no/such/route", gateway.url)),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            client.post(format!("{}/health", gateway.url)),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            client
                .post(format!("{}/health", gateway.url))
                .body(vec![b'x'; 200 * 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (request, status, code) in cases {
        let response = request.send().unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: serde_json::Value = response.json().unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        let text = body.to_string();
        for leak in ["axum", "hyper", "src/", "panicked", "tower"] {
            assert!(!text.contains(leak), "{text} leaks {leak}");
        }
    }
    assert_eq!(gateway.get("/health").status(), StatusCode::OK);
}

fn raw_exchange(addr: std::net::SocketAddr, bytes: &[u8], wait: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    let _ = stream.write_all(bytes);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

#[test]
fn plain_http_garbage_and_silent_clients_on_the_tls_port_are_refused_and_the_server_stays_up() {
    let setup = Setup::new("handshake_timeout = \"1s\"");
    let gateway = setup.start();
    let addr = gateway.addr();

    let plain = raw_exchange(
        addr,
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    );
    let plain = String::from_utf8_lossy(&plain);
    assert!(plain.starts_with("HTTP/1.1 400"), "{plain}");
    assert!(plain.contains("use an https:// URL"), "{plain}");

    // A TLS record header followed by garbage: the handshake fails, the socket closes.
    let mut garbage = vec![0x16, 0x03, 0x01, 0x00, 0x40];
    garbage.extend((0..64u8).map(|i| i.wrapping_mul(37)));
    let answer = raw_exchange(addr, &garbage, Duration::from_secs(5));
    assert!(
        answer.len() < 64,
        "unexpected answer to garbage: {answer:?}"
    );

    // Slowloris: a client that sends one byte and then nothing is dropped after the
    // handshake timeout, while other clients are served meanwhile.
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).unwrap();
    silent.write_all(&[0x16]).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(gateway.get("/health").status(), StatusCode::OK);
    let mut buf = [0u8; 16];
    let read = silent.read(&mut buf);
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "silent client got {read:?}"
    );
    let held = started.elapsed();
    assert!(
        held >= Duration::from_millis(900) && held < Duration::from_secs(8),
        "silent client held for {held:?}"
    );

    // Many half-open connections do not stop the server.
    let idle: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(addr).unwrap()).collect();
    assert_eq!(gateway.get("/ready").status(), StatusCode::OK);
    drop(idle);
}

#[test]
fn slow_http_headers_inside_tls_are_cut_off() {
    use rustls_pki_types::pem::PemObject;
    let setup = Setup::new("handshake_timeout = \"1s\"");
    let gateway = setup.start();
    let ca = std::fs::read(gateway.data_dir.join("tls/ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut socket = TcpStream::connect(gateway.addr()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::Stream::new(&mut connection, &mut socket);
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(8),
        "slow headers held the connection for {waited:?}"
    );
    let text = String::from_utf8_lossy(&out);
    assert!(!text.contains("200 OK"), "{text}");
}

#[test]
fn tls_1_2_and_1_3_are_offered_and_nothing_older() {
    use rustls_pki_types::pem::PemObject;
    let setup = Setup::new("");
    let gateway = setup.start();
    let ca = std::fs::read(gateway.data_dir.join("tls/ca.pem")).unwrap();
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from_pem_slice(&ca).unwrap())
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut connection = rustls::ClientConnection::new(
            Arc::new(config),
            rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap(),
        )
        .unwrap();
        let mut socket = TcpStream::connect(gateway.addr()).unwrap();
        let mut tls = rustls::Stream::new(&mut connection, &mut socket);
        tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let _ = tls.read_to_end(&mut out);
        assert!(
            String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"),
            "{version:?}"
        );
        assert_eq!(connection.protocol_version(), Some(version.version));
        let suite = format!(
            "{:?}",
            connection.negotiated_cipher_suite().unwrap().suite()
        );
        assert!(
            suite.contains("GCM") || suite.contains("CHACHA20_POLY1305"),
            "{suite}"
        );
    }
    // A TLS 1.0 ClientHello is refused.
    let tls10_hello = [
        0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00, 0x2b, 0x03, 0x01, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x02,
        0x00, 0x2f, 0x01, 0x00,
    ];
    let answer = raw_exchange(gateway.addr(), &tls10_hello, Duration::from_secs(5));
    // Either an alert record (0x15) or a closed socket; never a ServerHello (0x16).
    assert!(
        answer.first() != Some(&0x16),
        "server answered a TLS 1.0 hello with {answer:?}"
    );
}

#[test]
fn sigterm_stops_cleanly_and_is_audited() {
    let setup = Setup::new("");
    let mut gateway = setup.start_process();
    assert_eq!(gateway.get("/health").status(), StatusCode::OK);
    let status = gateway.stop();
    assert!(status.success(), "{status:?}");
    let list = setup.cli(&["audit", "list", "--json"]);
    let records: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.starts_with(&[
            "config.load",
            "tls.ca_created",
            "tls.cert_issued",
            "gateway.start"
        ]),
        "{actions:?}"
    );
    assert!(actions.contains(&"gateway.stop"), "{actions:?}");
    assert!(!setup.data_dir().join("run/admin.sock").exists());
}

#[test]
fn configured_secrets_never_reach_logs_or_errors() {
    let token = "tok-CANARY-4d9f2a7c1e8b6f3a0d5c9e2b7a4f1c8d";
    let jwt = "jwt-CANARY-0a1b2c3d4e5f60718293a4b5c6d7e8f9";
    let setup = Setup::new(
        "[auth]\nmode = \"token\"\ntoken = \"${TEST_TOKEN}\"\njwt_secret = \"${TEST_JWT}\"",
    );
    let mut gateway = setup.start_process_with(&[
        ("TEST_TOKEN", token),
        ("TEST_JWT", jwt),
        ("AISOPOD_LOG", "trace"),
    ]);
    for path in ["/health", "/ready", "/nope"] {
        gateway.get(path);
    }
    let _ = gateway
        .client()
        .get(format!("{}/health?token={token}", gateway.url))
        .header("authorization", format!("Bearer {token}"))
        .send();
    gateway.stop();
    let log = gateway.log_text();
    assert!(
        log.contains("aisopod gateway listening"),
        "log is empty?\n{log}"
    );
    assert!(
        !log.contains(token) && !log.contains(jwt),
        "a secret reached the log"
    );
    let export = setup.cli_with(
        &["audit", "export"],
        &[("TEST_TOKEN", token), ("TEST_JWT", jwt)],
        None,
    );
    assert!(export.status.success());
    let text = String::from_utf8_lossy(&export.stdout);
    assert!(
        !text.contains(token) && !text.contains(jwt),
        "a secret reached the audit log"
    );

    // A refusal that concerns the secret names the key, never the value.
    let short = "short-CANARY-secret";
    let refused = setup.cli_with(
        &["gateway", "validate-config"],
        &[("TEST_TOKEN", short), ("TEST_JWT", jwt)],
        None,
    );
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(out.contains("auth.token") && !out.contains(short), "{out}");
}

// ---- in-process server: routes that only tests have (slow handlers) ----

struct InProcess {
    _dir: tempfile::TempDir,
    app: Arc<App>,
}

fn in_process(extra: &str) -> InProcess {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&dir.path().join("data"), extra);
    let config = aisopod::config::parse(
        &text,
        ConfigSource::File("test".into()),
        &ProcessEnvironment,
    )
    .unwrap();
    let names: aisopod::tls::NameSource = Arc::new(|| {
        ["localhost".to_string(), "127.0.0.1".to_string()]
            .into_iter()
            .collect()
    });
    let app = Arc::new(App::open(config, Arc::new(SystemClock), Some(names)).unwrap());
    InProcess { _dir: dir, app }
}

/// Waits until the server holds a request (a fixed sleep raced the request on a loaded
/// machine: the "second" request could arrive first).
async fn until_in_flight(fixture: &InProcess) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fixture
        .app
        .load
        .in_flight
        .load(std::sync::atomic::Ordering::SeqCst)
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow request never arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(2)).await;
    "done"
}

/// Serves the gateway's routes plus `/slow`; returns the base URL, a shutdown trigger
/// and the server task.
async fn serve_with_slow_route(
    fixture: &InProcess,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let app = fixture.app.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = server::with_middleware(
        app.clone(),
        server::api().route("/slow", Access::Public, get(slow)),
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tls = app.tls.as_ref().map(|t| t.server_config());
    let limits = ConnectionLimits::from_app(&app);
    let task = tokio::spawn(server::serve(listener, router, tls, limits, async move {
        let _ = rx.await;
    }));
    (format!("https://127.0.0.1:{}", addr.port()), tx, task)
}

fn in_process_client(fixture: &InProcess) -> reqwest::Client {
    client_trusting(&fixture.app.config().storage.data_dir.join("tls/ca.pem"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_in_flight_limit_get_503_with_retry_after() {
    let fixture = in_process("max_in_flight = 1");
    let (url, _stop, _task) = serve_with_slow_route(&fixture).await;
    let client = in_process_client(&fixture);
    let first = tokio::spawn(client.get(format!("{url}/slow")).send());
    until_in_flight(&fixture).await;
    let second = client.get(format!("{url}/slow")).send().await.unwrap();
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second.headers()["retry-after"], "1");
    let body: serde_json::Value = second.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded");
    // Probes are never shed.
    assert_eq!(
        client
            .get(format!("{url}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
}

/// The real sampler (the gateway's background task) judges memory in use: work is shed
/// while it is over the budget and served again as soon as it falls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_memory_budget_new_work_is_shed_but_probes_answer() {
    const MIB: u64 = 1 << 20;
    let budget = aisopod::server::load::heap_in_use() / MIB + 48;
    let fixture = in_process(&format!(
        "memory_budget = \"{budget}m\"\n[tools.sandbox]\nenabled = false"
    ));
    fixture.app.spawn_background();
    let (url, _stop, _task) = serve_with_slow_route(&fixture).await;
    let client = in_process_client(&fixture);
    let status = |client: reqwest::Client, url: String| async move {
        client.get(url).send().await.unwrap().status()
    };
    let ca = format!("{url}/ca.crt");
    assert_eq!(status(client.clone(), ca.clone()).await, StatusCode::OK);
    // 96 MiB in use (written, so resident too) takes the process over its budget.
    let ballast = std::hint::black_box(vec![1u8; 96 << 20]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let shed = loop {
        let response = client.get(&ca).send().await.unwrap();
        if response.status() == StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.headers()["retry-after"], "1");
    assert!(shed.text().await.unwrap().contains("memory budget"));
    assert_eq!(
        status(client.clone(), format!("{url}/ready")).await,
        StatusCode::OK
    );
    // Freed, the memory no longer counts, whatever the allocator keeps resident.
    drop(ballast);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = status(client.clone(), ca.clone()).await;
        if now == StatusCode::OK || Instant::now() > deadline {
            assert_eq!(now, StatusCode::OK, "still shed after the memory was freed");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_timeout_gets_a_json_504() {
    let fixture = in_process("request_timeout = \"1s\"");
    let (url, _stop, _task) = serve_with_slow_route(&fixture).await;
    let response = in_process_client(&fixture)
        .get(format!("{url}/slow"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_requests_and_stops_accepting() {
    let fixture = in_process("");
    let (url, stop, task) = serve_with_slow_route(&fixture).await;
    let client = in_process_client(&fixture);
    let in_flight = tokio::spawn(client.get(format!("{url}/slow")).send());
    until_in_flight(&fixture).await;
    stop.send(()).unwrap();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "done");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    let fresh = reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    assert!(
        fresh.get(format!("{url}/health")).send().await.is_err(),
        "server still accepts after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_listed_origins() {
    let fixture = in_process("[security]\ncors_origins = [\"https://dash.example\"]");
    let (url, _stop, _task) = serve_with_slow_route(&fixture).await;
    let client = in_process_client(&fixture);
    let allowed = client
        .get(format!("{url}/health"))
        .header("origin", "https://dash.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://dash.example"
    );
    let other = client
        .get(format!("{url}/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_http_listener_only_redirects_to_https() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ConnectionLimits {
        max_connections: 16,
        max_per_address: 16,
        uncapped: Arc::from([]),
        handshake_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(2),
        shutdown_timeout: Duration::from_secs(1),
        linger_bytes: 1024,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server::serve_redirect(
        listener,
        3443,
        None,
        limits,
        async move {
            let _ = rx.await;
        },
    ));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(format!("http://127.0.0.1:{}/ready?x=1", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        response.headers()["location"],
        "https://127.0.0.1:3443/ready?x=1"
    );
    let hostile = client
        .get(format!("http://127.0.0.1:{}/", addr.port()))
        .header("host", "evil.example\"><script>:80")
        .send()
        .await
        .unwrap();
    assert_eq!(hostile.headers()["location"], "https://localhost:3443/");
    // An IPv6 literal without a port (the old split at the last ':' sent "https://[::3443").
    for (host, location) in [
        ("[::1]", "https://[::1]:3443/"),
        ("[fe80::1]:80", "https://[fe80::1]:3443/"),
        ("owner@evil.example:80", "https://localhost:3443/"),
        ("pi.local:http", "https://localhost:3443/"),
    ] {
        let response = client
            .get(format!("http://127.0.0.1:{}/", addr.port()))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["location"], location, "{host}");
    }
    tx.send(()).unwrap();
    task.await.unwrap();
}

#[test]
fn json_logs_are_one_object_per_line_with_a_request_line() {
    let setup = Setup::new("");
    let mut gateway =
        setup.start_process_with(&[("AISOPOD_LOG_FORMAT", "json"), ("AISOPOD_LOG", "info")]);
    assert_eq!(gateway.get("/health").status(), StatusCode::OK);
    gateway.stop();
    let log = gateway.log_text();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let request = lines
        .iter()
        .find(|l| l["message"] == "request" && l["path"] == "/health")
        .unwrap_or_else(|| panic!("no request line in:\n{log}"));
    assert_eq!(request["status"], 200);
    assert_eq!(request["method"], "GET");
    assert!(
        request["request_id"]
            .as_str()
            .is_some_and(|id| id.len() == 16)
    );
    assert!(request["latency_ms"].as_str().is_some());
}

// ---- connections: caps and deadlines; early answers over HTTP/2 ----

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// How a connection holds a slot without asking for anything.
#[derive(Debug, Clone, Copy)]
enum Idle {
    /// TCP only, not a byte sent.
    Tcp,
    /// TLS handshake done, then silence.
    Tls,
    /// TLS, then half the HTTP/2 preface.
    PartialPreface,
    /// TLS, the whole HTTP/2 preface and SETTINGS, no stream.
    Http2,
}

const IDLE_KINDS: [Idle; 4] = [Idle::Tcp, Idle::Tls, Idle::PartialPreface, Idle::Http2];
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const H2_EMPTY_SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

fn tls_connector(fixture: &InProcess, alpn: &[u8]) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    let pem = std::fs::read(fixture.app.config().storage.data_dir.join("tls/ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_slice(&pem).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tcp_from(local: &str, port: u16) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap()
}

async fn tls_from(
    local: &str,
    port: u16,
    connector: &tokio_rustls::TlsConnector,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    connector
        .connect(name, tcp_from(local, port).await)
        .await
        .unwrap()
}

async fn open_idle(
    kind: Idle,
    local: &str,
    port: u16,
    h2: &tokio_rustls::TlsConnector,
) -> Box<dyn Io> {
    use tokio::io::AsyncWriteExt;
    match kind {
        Idle::Tcp => Box::new(tcp_from(local, port).await),
        Idle::Tls => Box::new(tls_from(local, port, h2).await),
        Idle::PartialPreface => {
            let mut stream = tls_from(local, port, h2).await;
            stream.write_all(&H2_PREFACE[..12]).await.unwrap();
            stream.flush().await.unwrap();
            Box::new(stream)
        }
        Idle::Http2 => {
            let mut stream = tls_from(local, port, h2).await;
            stream.write_all(H2_PREFACE).await.unwrap();
            stream.write_all(&H2_EMPTY_SETTINGS).await.unwrap();
            stream.flush().await.unwrap();
            Box::new(stream)
        }
    }
}

/// Everything the server sent until it closed the connection, or `None` if it was
/// still open after `limit`.
async fn read_until_closed<S: tokio::io::AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    limit: Duration,
) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + limit;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

/// The frame types in a server's HTTP/2 byte stream.
fn h2_frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let len =
            (usize::from(bytes[0]) << 16) | (usize::from(bytes[1]) << 8) | usize::from(bytes[2]);
        types.push(bytes[3]);
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    types
}

/// The owner's `/health` answers 200 over HTTP/2 and HTTP/1.1 from 127.0.0.1.
async fn the_owner_is_served_over_both_protocols(fixture: &InProcess, url: &str) {
    for http1 in [false, true] {
        let response = client_from(fixture, "127.0.0.1", http1)
            .get(format!("{url}/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "http1: {http1}");
    }
}

fn client_from(fixture: &InProcess, local: &str, http1: bool) -> reqwest::Client {
    let pem = std::fs::read(fixture.app.config().storage.data_dir.join("tls/ca.pem")).unwrap();
    let builder = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .use_rustls_tls()
        .local_address(local.parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(10));
    if http1 { builder.http1_only() } else { builder }
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_idle_connections_are_closed_within_their_deadlines() {
    use tokio::io::AsyncWriteExt;
    let fixture = in_process("handshake_timeout = \"1s\"\nidle_timeout = \"1s\"");
    let (url, _stop, _task) = serve_with_slow_route(&fixture).await;
    let port = port_of(&url);
    let h2 = tls_connector(&fixture, b"h2");
    // The redirect listener holds to the same deadline.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect_port = listener.local_addr().unwrap().port();
    tokio::spawn(server::serve_redirect(
        listener,
        port,
        None,
        ConnectionLimits::from_app(&fixture.app),
        std::future::pending(),
    ));

    // Everything is opened first, so the deadlines run side by side.
    let mut idle = Vec::new();
    for kind in IDLE_KINDS {
        idle.push((
            format!("{kind:?}"),
            open_idle(kind, "127.0.0.1", port, &h2).await,
        ));
    }
    let redirect: Box<dyn Io> = Box::new(tcp_from("127.0.0.1", redirect_port).await);
    idle.push(("silent on the redirect port".into(), redirect));
    // HTTP/1.1 keep-alive after one answered request.
    let mut h1 = tls_from("127.0.0.1", port, &tls_connector(&fixture, b"http/1.1")).await;
    h1.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    // HTTP/2 after one answered request.
    let mut stream = tls_from("127.0.0.1", port, &h2).await;
    let mut block = vec![0x82, 0x87, 0x44, 7];
    block.extend_from_slice(b"/health");
    block.extend_from_slice(&[0x41, 9]);
    block.extend_from_slice(b"127.0.0.1");
    let len = u8::try_from(block.len()).unwrap();
    stream.write_all(H2_PREFACE).await.unwrap();
    stream.write_all(&H2_EMPTY_SETTINGS).await.unwrap();
    stream
        .write_all(&[0, 0, len, 0x1, 0x5, 0, 0, 0, 1])
        .await
        .unwrap();
    stream.write_all(&block).await.unwrap();
    stream.flush().await.unwrap();

    for (kind, mut stream) in idle {
        assert!(
            read_until_closed(&mut stream, Duration::from_secs(4))
                .await
                .is_some(),
            "{kind}: still open 4 s after a 1 s deadline"
        );
    }
    let seen = read_until_closed(&mut h1, Duration::from_secs(4))
        .await
        .expect("an idle HTTP/1.1 keep-alive connection is closed");
    assert!(
        seen.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    // The answer, then a GOAWAY and the close once no stream is open.
    let seen = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("an idle HTTP/2 connection is closed");
    let types = h2_frame_types(&seen);
    assert!(types.contains(&0x1), "no HEADERS (the answer) in {types:?}");
    assert!(
        types.contains(&0x7),
        "no GOAWAY before the close in {types:?}"
    );

    // And the owner is served as before, over both protocols.
    the_owner_is_served_over_both_protocols(&fixture, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_at_its_connection_cap_does_not_starve_another() {
    // Production defaults: 64 connections per address, 10 s to the first request.
    let fixture = in_process("");
    assert_eq!(fixture.app.config().server.max_connections_per_address, 64);
    let (url, _stop, _task) = serve_with_slow_route(&fixture).await;
    let port = port_of(&url);
    let h2 = tls_connector(&fixture, b"h2");
    let mut held = Vec::new();
    for i in 0..64 {
        let kind = IDLE_KINDS[i % IDLE_KINDS.len()];
        held.push(open_idle(kind, "127.0.0.1", port, &h2).await);
    }
    // One more from the same address is closed at once, long before any deadline.
    let mut over = tcp_from("127.0.0.1", port).await;
    assert!(
        read_until_closed(&mut over, Duration::from_secs(2))
            .await
            .is_some(),
        "a 65th connection from one address was kept"
    );
    // Another address is served at once, over HTTP/2 and HTTP/1.1.
    for http1 in [false, true] {
        let started = Instant::now();
        let response = client_from(&fixture, "127.0.0.2", http1)
            .get(format!("{url}/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    // The attack ends; the first address is served again.
    drop(held);
    let owner = client_from(&fixture, "127.0.0.1", false);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match owner.get(format!("{url}/health")).send().await {
            Ok(response) if response.status() == StatusCode::OK => break,
            other => assert!(
                Instant::now() < deadline,
                "not served after the attack: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `curl` over `version` (`--http2` or `--http1.1`) from `local`, posting `body`
/// (chunked when `chunked`); the status and the HTTP version curl saw.
async fn curl_post(
    fixture: &InProcess,
    url: &str,
    local: &str,
    version: &str,
    body: &std::path::Path,
    chunked: bool,
) -> (u16, String) {
    let ca = fixture.app.config().storage.data_dir.join("tls/ca.pem");
    let mut command = tokio::process::Command::new("curl");
    command
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
        ])
        .arg("--cacert")
        .arg(&ca)
        .args(["--interface", local, version])
        .args(["-H", "content-type: application/json"]);
    if chunked {
        command.args(["-H", "transfer-encoding: chunked"]);
    }
    let output = command
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .arg(url)
        .output()
        .await
        .expect("curl is installed (the early-answer tests run the real client)");
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "curl {version} (chunked: {chunked}) got no answer: {out} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (status, seen_version) = out.split_once(' ').unwrap();
    (status.parse().unwrap(), seen_version.to_string())
}

fn body_file(dir: &std::path::Path, size: usize) -> std::path::PathBuf {
    let path = dir.join(format!("body-{size}"));
    std::fs::write(&path, vec![b'a'; size]).unwrap();
    path
}

async fn reqwest_post(
    fixture: &InProcess,
    url: &str,
    local: &str,
    http1: bool,
    size: usize,
) -> reqwest::Response {
    let response = client_from(fixture, local, http1)
        .post(url)
        .header("content-type", "application/json")
        .body(vec![b'a'; size])
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), crate::support::version_of(http1));
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_413_and_429_reach_http2_and_http1_clients_as_answers() {
    // Production defaults: 1 MiB bodies, 5 logins in a burst per address.
    let fixture = in_process("");
    let (url, _stop, _task) = serve_with_slow_route(&fixture).await;
    let login = format!("{url}/auth/login");
    // Over the limit and over HTTP/2's stream window: the client is still sending when
    // the answer comes.
    let big = body_file(fixture._dir.path(), 1280 << 10);
    let small = body_file(fixture._dir.path(), 64);
    for version in ["--http2", "--http1.1"] {
        // Content-Length over the limit: refused before a byte is read.
        let (status, _) = curl_post(&fixture, &login, "127.0.0.1", version, &big, false).await;
        assert_eq!(status, 413, "{version} with content-length");
        // No Content-Length: refused once the limit is crossed while reading.
        let (status, _) = curl_post(&fixture, &login, "127.0.0.3", version, &big, true).await;
        assert_eq!(status, 413, "{version} chunked");
    }
    for http1 in [false, true] {
        let response = reqwest_post(&fixture, &login, "127.0.0.1", http1, 1280 << 10).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "payload_too_large");
    }

    // Use up 127.0.0.4's login burst, then every protocol gets the 429 as an answer.
    let mut limited = false;
    for _ in 0..20 {
        let response = reqwest_post(&fixture, &login, "127.0.0.4", true, 64).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "the login burst never ran out");
    for version in ["--http2", "--http1.1"] {
        let (status, seen) = curl_post(&fixture, &login, "127.0.0.4", version, &big, true).await;
        assert_eq!(status, 429, "{version}");
        assert_eq!(seen, if version == "--http2" { "2" } else { "1.1" });
        let (status, _) = curl_post(&fixture, &login, "127.0.0.4", version, &small, false).await;
        assert_eq!(status, 429, "{version}");
    }
    for http1 in [false, true] {
        let response = reqwest_post(&fixture, &login, "127.0.0.4", http1, 900 << 10).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(response.headers().contains_key("retry-after"));
    }

    // Right after, the owner's requests are served normally on both protocols.
    the_owner_is_served_over_both_protocols(&fixture, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_503_reaches_http2_and_http1_clients_as_an_answer() {
    let fixture = in_process("max_in_flight = 1");
    let (url, _stop, _task) = serve_with_slow_route(&fixture).await;
    let login = format!("{url}/auth/login");
    let big = body_file(fixture._dir.path(), 1280 << 10);
    let busy = tokio::spawn(
        client_from(&fixture, "127.0.0.1", false)
            .get(format!("{url}/slow"))
            .send(),
    );
    // Wait until the slow request holds the only slot.
    let deadline = Instant::now() + Duration::from_secs(5);
    while fixture
        .app
        .load
        .in_flight
        .load(std::sync::atomic::Ordering::SeqCst)
        == 0
    {
        assert!(Instant::now() < deadline, "the slow request never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for version in ["--http2", "--http1.1"] {
        for chunked in [false, true] {
            let (status, _) =
                curl_post(&fixture, &login, "127.0.0.1", version, &big, chunked).await;
            assert_eq!(status, 503, "{version} chunked: {chunked}");
        }
    }
    for http1 in [false, true] {
        let response = reqwest_post(&fixture, &login, "127.0.0.1", http1, 900 << 10).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(busy.await.unwrap().unwrap().status(), StatusCode::OK);
}

#[test]
fn an_open_websocket_outlives_the_idle_and_first_request_deadlines() {
    let token = "ws-idle-test-token-not-a-secret-0123456789abcdef";
    let setup = Setup::new(
        "handshake_timeout = \"1s\"\nidle_timeout = \"1s\"\n\
         [auth]\nmode = \"token\"\ntoken = \"${AISOPOD_AUTH_TOKEN}\"",
    );
    let gateway = setup.start_with(&[("AISOPOD_AUTH_TOKEN", token)]);
    let mut socket = greeted_socket(&gateway, token);
    // Twice the idle deadline with nothing said: an open socket is not idle HTTP.
    std::thread::sleep(Duration::from_millis(2500));
    socket
        .send(tungstenite::Message::Text(r#"{"type":"ping"}"#.into()))
        .unwrap();
    assert_eq!(crate::support::next_ws_message(&mut socket)["type"], "pong");
    assert_eq!(gateway.get("/health").status(), StatusCode::OK);
}

#[test]
fn websocket_messages_larger_than_the_socket_buffer_are_read_whole_and_limits_still_hold() {
    let token = "ws-size-test-token-not-a-secret-0123456789abcdef";
    let setup = Setup::new("[auth]\nmode = \"token\"\ntoken = \"${AISOPOD_AUTH_TOKEN}\"");
    let gateway = setup.start_with(&[("AISOPOD_AUTH_TOKEN", token)]);
    let mut socket = greeted_socket(&gateway, token);
    // A ping padded with JSON whitespace: ten times the 4 KiB socket buffer, and within
    // the 64 KiB message limit, it must arrive whole and be answered.
    let padded = |pad: usize| format!("{{{}\"type\":\"ping\"}}", " ".repeat(pad));
    socket
        .send(tungstenite::Message::Text(padded(40 << 10).into()))
        .unwrap();
    assert_eq!(crate::support::next_ws_message(&mut socket)["type"], "pong");
    // Over the message limit: refused with a reason, and the socket goes on.
    socket
        .send(tungstenite::Message::Text(padded(100 << 10).into()))
        .unwrap();
    assert_eq!(
        crate::support::next_ws_message(&mut socket)["code"],
        "message_too_large"
    );
    socket
        .send(tungstenite::Message::Text(padded(0).into()))
        .unwrap();
    assert_eq!(crate::support::next_ws_message(&mut socket)["type"], "pong");
    // Over the transport's 1 MiB: the connection ends, with a close frame or a reset
    // (the gateway drops it while the rest of the message is still coming), unanswered.
    let _ = socket.send(tungstenite::Message::Text(padded(2 << 20).into()));
    loop {
        match socket.read() {
            Ok(tungstenite::Message::Close(_)) | Err(_) => break,
            Ok(tungstenite::Message::Text(text)) => panic!("answered after 2 MiB: {text}"),
            Ok(_) => continue,
        }
    }
    // And the next connection is served as usual.
    let mut again = greeted_socket(&gateway, token);
    again
        .send(tungstenite::Message::Text(padded(0).into()))
        .unwrap();
    assert_eq!(crate::support::next_ws_message(&mut again)["type"], "pong");
}

/// A `/ws` socket on `gateway` opened with its static `token`, past the hello.
fn greeted_socket(gateway: &Gateway, token: &str) -> crate::support::WsSocket {
    let ca = std::fs::read(gateway.data_dir.join("tls/ca.pem")).unwrap();
    let mut socket = crate::support::wss_connect(
        &ca,
        gateway.addr().port(),
        "/ws",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .unwrap_or_else(|status| panic!("/ws refused with {status}"));
    assert_eq!(
        crate::support::next_ws_message(&mut socket)["type"],
        "hello"
    );
    socket
}
