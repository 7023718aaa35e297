//! Shared test fixtures: a gateway in a temporary directory (in this process by
//! default, or as a child process for tests about the process itself), CLI runs against
//! its config, and HTTPS clients that trust its device CA.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_aisopod");

/// The password of the `owner` account that [`Setup::add_owner`] makes.
pub const OWNER_PW: &str = "walrus cinnamon lantern quietly";

/// A temporary data directory with a config file in it.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Setup {
    /// A config binding 127.0.0.1:0 with its data in a fresh temporary directory, plus
    /// `extra` TOML appended (tables other than [server] and [storage], or keys that
    /// follow `[server]` when `extra` starts with a key).
    pub fn new(extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        let text = config_text(&dir.path().join("data"), extra);
        std::fs::write(&config, text).unwrap();
        Setup { dir, config }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs the CLI with this config.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(args, &[], None)
    }

    pub fn cli_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("AISOPOD_LOG");
        for (k, v) in env {
            command.env(k, v);
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            if let Some(bytes) = stdin {
                input.write_all(bytes).unwrap();
            }
        }
        child.wait_with_output().unwrap()
    }

    /// Adds the administrator `owner` with [`OWNER_PW`] through the CLI, offline.
    pub fn add_owner(&self) {
        let added = self.cli_with(
            &["user", "add", "--admin", "owner", "--password-stdin"],
            &[],
            Some(OWNER_PW.as_bytes()),
        );
        assert!(added.status.success(), "{}", stderr(&added));
    }

    /// Starts a gateway on this config inside the test process (through `app::run`,
    /// with real TLS on a listener bound here and a clock the test can move) and waits
    /// until it serves.
    pub fn start(&self) -> Gateway {
        self.start_with(&[])
    }

    /// [`Setup::start`] with `${VAR}`s for the config taken from `env` (and from nothing
    /// else: the test process's environment does not leak in).
    pub fn start_with(&self, env: &[(&str, &str)]) -> Gateway {
        Gateway::in_process(self, env, None)
    }

    /// [`Setup::start`] on the display, button and LED given (a simulated board).
    pub fn start_on(&self, hardware: aisopod::hardware::Devices) -> Gateway {
        Gateway::in_process(self, &[], Some(hardware))
    }

    /// Starts `aisopod gateway start` as a child process and waits until it prints its
    /// address: for tests about the process (signals, exit codes, sd_notify, restarts,
    /// kills, the CLI on the admin socket, process-wide memory).
    pub fn start_process(&self) -> Gateway {
        self.start_process_with(&[])
    }

    pub fn start_process_with(&self, env: &[(&str, &str)]) -> Gateway {
        Gateway::spawn(self, env)
    }
}

/// Splits test TOML into the lines before the first `[table]` header (keys for
/// `[server]`) and the tables that follow.
pub fn split_extra(extra: &str) -> (String, String) {
    let lines: Vec<&str> = extra.lines().collect();
    let first_table = lines
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .unwrap_or(lines.len());
    (
        lines[..first_table].join("\n"),
        lines[first_table..].join("\n"),
    )
}

/// A config binding 127.0.0.1:0 with its data in `data_dir`, plus `extra` (see
/// [`split_extra`]).
pub fn config_text(data_dir: &Path, extra: &str) -> String {
    let (server, tables) = split_extra(extra);
    format!(
        "[storage]\ndata_dir = \"{}\"\n{tables}\n[server]\nbind = \"127.0.0.1:0\"\nshutdown_timeout = \"5s\"\n{server}\n",
        data_dir.display()
    )
}

/// A running gateway, stopped when dropped (SIGTERM for a process).
pub struct Gateway {
    runner: Runner,
    pub url: String,
    pub log: PathBuf,
    pub data_dir: PathBuf,
    /// The gateway's clock (in-process gateways only; a process runs on the system's).
    pub clock: Option<TestClock>,
    /// The gateway's state (in-process gateways only).
    pub app: Option<std::sync::Arc<aisopod::server::state::App>>,
}

enum Runner {
    Process(Child),
    InProcess {
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<Result<(), String>>>,
    },
    Stopped,
}

/// The wall clock plus an offset the test moves forward: time the gateway judges
/// (polling intervals, expiry, lockouts) passes without sleeping, while certificates
/// it issues stay valid for clients that check them against the real time. A test that
/// compares answers which carry the time (`Retry-After`) freezes it first.
#[derive(Debug, Clone, Default)]
pub struct TestClock {
    ahead: std::sync::Arc<std::sync::Mutex<time::Duration>>,
    frozen_at: std::sync::Arc<std::sync::Mutex<Option<time::OffsetDateTime>>>,
}

impl TestClock {
    pub fn advance(&self, by: Duration) {
        *self.ahead.lock().unwrap() += by;
    }

    /// Stops the wall clock's part: from now on only [`TestClock::advance`] moves time.
    pub fn freeze(&self) {
        *self.frozen_at.lock().unwrap() = Some(time::OffsetDateTime::now_utc());
    }
}

impl aisopod::clock::Clock for TestClock {
    fn now(&self) -> time::OffsetDateTime {
        let base = self
            .frozen_at
            .lock()
            .unwrap()
            .unwrap_or_else(time::OffsetDateTime::now_utc);
        base + *self.ahead.lock().unwrap()
    }
}

/// The config's `${VAR}`s, from the test alone.
struct TestEnvironment(std::collections::HashMap<String, String>);

impl aisopod::config::Environment for TestEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    fn installed(&self) -> bool {
        false
    }
}

fn log_path(setup: &Setup) -> PathBuf {
    setup.dir.path().join(format!(
        "gateway-{}.log",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ))
}

impl Gateway {
    fn in_process(
        setup: &Setup,
        env: &[(&str, &str)],
        hardware: Option<aisopod::hardware::Devices>,
    ) -> Gateway {
        use std::sync::Arc;
        let log = log_path(setup);
        let env = TestEnvironment(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let config = aisopod::config::load(Some(&setup.config), &env)
            .unwrap_or_else(|err| panic!("the test config is invalid: {err}"));
        // Its own log file, as a child process's stderr would be: the subscriber is set
        // on every thread of this gateway's runtime and on no other.
        let file = Arc::new(std::fs::File::create(&log).unwrap());
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .with_target(false)
                .with_writer(file)
                .finish(),
        );
        let std_listener = std::net::TcpListener::bind(config.server.bind).unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let clock = TestClock::default();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let options = aisopod::app::Options {
            clock: Arc::new(clock.clone()),
            names: None,
            sandbox_helper: Some(PathBuf::from(BIN)),
            notify_systemd: false,
            hardware,
            on_ready: Some(Box::new(move |ready: &aisopod::app::Ready| {
                let _ = ready_tx.send((ready.url.clone(), ready.app.clone()));
            })),
        };
        let thread = std::thread::spawn(move || {
            let _default = tracing::dispatcher::set_default(&dispatch);
            let on_start = dispatch.clone();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .on_thread_start(move || {
                    // The guard would reset the thread's subscriber when dropped; these
                    // threads live exactly as long as the runtime, so it is kept.
                    std::mem::forget(tracing::dispatcher::set_default(&on_start));
                })
                .build()
                .map_err(|err| err.to_string())?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener)
                    .map_err(|err| err.to_string())?;
                let listeners = aisopod::app::Listeners {
                    api: Some(listener),
                    redirect: None,
                };
                aisopod::app::run_with(config, listeners, options, async move {
                    let _ = stopped.await;
                })
                .await
                .map_err(|err| format!("{err:#}"))
            })
        });
        let (url, app) = match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(ready) => ready,
            Err(_) => {
                let _ = stop.send(());
                let outcome = thread.join();
                panic!(
                    "gateway did not start: {outcome:?}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        assert_eq!(url.rsplit("://").next(), Some(addr.to_string().as_str()));
        Gateway {
            runner: Runner::InProcess {
                stop: Some(stop),
                thread: Some(thread),
            },
            url,
            log,
            data_dir: setup.data_dir(),
            clock: Some(clock),
            app: Some(app),
        }
    }

    fn spawn(setup: &Setup, env: &[(&str, &str)]) -> Gateway {
        let log = log_path(setup);
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(&setup.config)
            .args(["gateway", "start", "--print-addr"])
            .env("AISOPOD_LOG", "debug")
            .env_remove("AISOPOD_SECURITY_MODE")
            .env_remove("SECURITY_MODE")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if !line.trim().is_empty() => line.trim().to_string(),
            _ => {
                let _ = child.kill();
                panic!(
                    "gateway did not start:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        Gateway {
            runner: Runner::Process(child),
            url,
            log,
            data_dir: setup.data_dir(),
            clock: None,
            app: None,
        }
    }

    /// The process the gateway runs in.
    pub fn pid(&self) -> u32 {
        match &self.runner {
            Runner::Process(child) => child.id(),
            _ => std::process::id(),
        }
    }

    /// Moves the gateway's clock forward (in-process gateways only).
    pub fn advance_clock(&self, by: Duration) {
        self.clock
            .as_ref()
            .expect("only an in-process gateway's clock can be moved")
            .advance(by);
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.url.rsplit("://").next().unwrap().parse().unwrap()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An HTTPS client that trusts this gateway's device CA and nothing else.
    pub fn client(&self) -> reqwest::blocking::Client {
        blocking_client_trusting(&self.data_dir.join("tls/ca.pem"))
    }

    /// A client of this gateway speaking only `version`, from the loopback address `from`.
    pub fn client_speaking(&self, version: http::Version, from: &str) -> reqwest::blocking::Client {
        blocking_client_speaking(&self.data_dir.join("tls/ca.pem"), version, from)
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.client()
            .get(format!("{}{path}", self.url))
            .send()
            .unwrap()
    }

    /// Stops the gateway (SIGTERM for a process) and waits until it has drained and
    /// let go of its store; an in-process gateway's outcome is shown as the exit status
    /// `gateway start` would have had.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        use std::os::unix::process::ExitStatusExt;
        match std::mem::replace(&mut self.runner, Runner::Stopped) {
            Runner::Process(mut child) => {
                signal(&child, nix::sys::signal::Signal::SIGTERM);
                let status = wait_timeout(&mut child, Duration::from_secs(20))
                    .expect("gateway did not stop after SIGTERM");
                self.runner = Runner::Process(child);
                status
            }
            Runner::InProcess { stop, thread } => {
                // The state holds the store open; the next owner of the data directory
                // (a CLI, a restarted gateway) must find it free once this returns.
                self.app = None;
                if let Some(stop) = stop {
                    let _ = stop.send(());
                }
                match thread.map(|thread| thread.join()) {
                    Some(Ok(Ok(()))) | None => ExitStatusExt::from_raw(0),
                    Some(Ok(Err(err))) => {
                        eprintln!("the gateway failed: {err}");
                        ExitStatusExt::from_raw(1 << 8)
                    }
                    Some(Err(_)) => panic!("the gateway's thread panicked"),
                }
            }
            Runner::Stopped => ExitStatusExt::from_raw(0),
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        match &mut self.runner {
            Runner::Process(child) => stop_child(child),
            Runner::InProcess { .. } => {
                // A panicking test must not panic again while unwinding.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.stop()));
            }
            Runner::Stopped => {}
        }
    }
}

/// Ends a child process that may still run: SIGTERM, then SIGKILL after 10 s.
pub fn stop_child(child: &mut Child) {
    if child.try_wait().ok().flatten().is_none() {
        signal(child, nix::sys::signal::Signal::SIGTERM);
        if wait_timeout(child, Duration::from_secs(10)).is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn signal(child: &Child, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal);
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

pub fn client_trusting(ca_pem: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca_pem).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .use_rustls_tls()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A blocking HTTPS client that trusts only the CA at `ca_pem`, speaks only `version`
/// (HTTP/2 by prior knowledge, as a browser does after ALPN) and connects from the
/// loopback address `from` (all of 127.0.0.0/8 is ours), so that tests can play many
/// clients.
pub fn blocking_client_speaking(
    ca_pem: &Path,
    version: http::Version,
    from: &str,
) -> reqwest::blocking::Client {
    let pem = std::fs::read(ca_pem).unwrap();
    let builder = reqwest::blocking::Client::builder()
        .local_address(Some(from.parse().unwrap()))
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .use_rustls_tls()
        .timeout(Duration::from_secs(30));
    let builder = if version == http::Version::HTTP_2 {
        builder.http2_prior_knowledge()
    } else {
        builder.http1_only()
    };
    builder.build().unwrap()
}

/// HTTP/1.1 or HTTP/2 by a flag, for loops over both.
pub fn version_of(http1: bool) -> http::Version {
    if http1 {
        http::Version::HTTP_11
    } else {
        http::Version::HTTP_2
    }
}

pub fn blocking_client_trusting(ca_pem: &Path) -> reqwest::blocking::Client {
    let pem = std::fs::read(ca_pem).unwrap();
    reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .use_rustls_tls()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A WebSocket over TLS, as the integration tests open them.
pub type WsSocket =
    tungstenite::WebSocket<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>>;

/// Opens `wss://127.0.0.1:{port}{path}` trusting only `ca_pem`, with extra headers;
/// the HTTP status when the handshake is refused.
pub fn wss_connect(
    ca_pem: &[u8],
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<WsSocket, u16> {
    use rustls_pki_types::pem::PemObject;
    use tungstenite::client::IntoClientRequest;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_slice(ca_pem).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connection = rustls::ClientConnection::new(
        std::sync::Arc::new(config),
        rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap(),
    )
    .unwrap();
    let socket = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let stream = rustls::StreamOwned::new(connection, socket);
    let mut request = format!("wss://127.0.0.1:{port}{path}")
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    match tungstenite::client(request, stream) {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Err(response.status().as_u16())
        }
        Err(err) => panic!("WebSocket handshake to port {port} failed: {err}"),
    }
}

/// The next JSON message, skipping control frames.
pub fn next_ws_message(socket: &mut WsSocket) -> serde_json::Value {
    loop {
        match socket.read().expect("a message") {
            tungstenite::Message::Text(body) => return serde_json::from_str(&body).unwrap(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// A test whose tool (a browser, a Python client, a proxy) is missing: `scripts/setup`
/// installs every one, so under CI this fails; elsewhere it is a counted skip
/// ([`crate::sandbox::skipped`]), never a silent pass.
pub fn missing_tool(reason: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{reason} (scripts/setup installs it; CI must run every check)"
    );
    crate::sandbox::skipped(reason);
}

/// A client script (tests/python/, tests/browser/) succeeded and printed each of
/// `steps` on a line of its own.
pub fn assert_client_steps(output: &std::process::Output, steps: &[&str]) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for step in steps {
        assert!(
            stdout.lines().any(|l| l == *step),
            "{step} missing:\n{stdout}"
        );
    }
}
