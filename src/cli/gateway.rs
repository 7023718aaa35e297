//! `aisopod gateway start | validate-config | health`.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};

use crate::admin;
use crate::app::App;
use crate::audit::AuditEvent;
use crate::clock::SystemClock;
use crate::config::{self, ConfigSource, ProcessEnvironment, TlsMode};
use crate::fsutil::ensure_private_dir;
use crate::server::{self, ConnectionLimits};

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Run the gateway (the first start creates the data directory, master key and certificates)
    Start {
        /// Print the address the gateway listens on to stdout once it serves (for scripts; useful with port 0)
        #[arg(long)]
        print_addr: bool,
    },
    /// Check the configuration and print every problem with its key
    ValidateConfig,
    /// Ask a running gateway's /health over HTTPS, verified against the device CA; exit 0
    /// when it answers 200 (for container HEALTHCHECKs and scripts: no curl needed)
    Health {
        /// The gateway's base URL (default: the configured bind address on loopback)
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// How long to wait for the answer
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
}

pub fn run(config_path: Option<&Path>, command: GatewayCommand) -> anyhow::Result<ExitCode> {
    match command {
        GatewayCommand::Start { print_addr } => start(config_path, print_addr),
        GatewayCommand::ValidateConfig => validate(config_path),
        GatewayCommand::Health { url, timeout } => health(config_path, url, timeout),
    }
}

/// GETs `/health` and succeeds on 200. Over HTTPS the server must present a
/// certificate from the device CA (`<data_dir>/tls/ca.pem`) or, with `[tls] mode =
/// "files"`, one of the configured chain's certificates; nothing else is trusted. (With
/// "files" the certificate rarely names 127.0.0.1: pass `--url` with a name it carries.)
fn health(
    config_path: Option<&Path>,
    url: Option<String>,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let base = match url {
        Some(url) => url,
        None if config.server.bind.port() == 0 => {
            anyhow::bail!("[server] bind has port 0 (a free port picked at start): pass --url")
        }
        None => format!("{}://{}", config.scheme(), reachable(config.server.bind)),
    };
    let target = format!("{}/health", base.trim_end_matches('/'));
    let trusted = match &config.tls.mode {
        TlsMode::Files { cert, .. } => cert.clone(),
        _ => config.storage.data_dir.join("tls").join("ca.pem"),
    };
    let mut tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()));
    if target.starts_with("https://") {
        let pem = std::fs::read(&trusted)
            .with_context(|| format!("reading the certificate to trust: {}", trusted.display()))?;
        let roots: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(cert)) => Some(cert),
                _ => None,
            })
            .collect();
        if roots.is_empty() {
            anyhow::bail!("{} holds no certificate", trusted.display());
        }
        tls = tls.root_certs(RootCerts::new_with_certs(&roots));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls.build())
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into();
    let response = agent
        .get(&target)
        .call()
        .with_context(|| format!("{target}: no answer"))?;
    let status = response.status();
    if status != 200 {
        anyhow::bail!("{target} answered {status}");
    }
    println!("healthy: {target}");
    Ok(ExitCode::SUCCESS)
}

fn validate(config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let env = ProcessEnvironment;
    let path = config::locate(config_path, &env);
    let mut issues = match config::load_checked(path.as_deref(), &env, super::OWNER_CHECKS) {
        Ok(config) => match &config.tls.mode {
            TlsMode::Files { cert, .. } => {
                match crate::tls::summarize_files(&config.tls, &config.storage.data_dir) {
                    Ok(_) => Vec::new(),
                    Err(err) => vec![format!("tls.cert_file: {} ({err})", cert.display())],
                }
            }
            _ => Vec::new(),
        },
        Err(err) => err.issues().iter().map(ToString::to_string).collect(),
    };
    let origin = path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "built-in defaults".into());
    if issues.is_empty() {
        println!("ok");
        return Ok(ExitCode::SUCCESS);
    }
    issues.dedup();
    println!("{origin}: {} error(s)", issues.len());
    for issue in issues {
        println!("  {issue}");
    }
    Ok(ExitCode::from(super::EXIT_ERROR))
}

fn start(config_path: Option<&Path>, print_addr: bool) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    crate::logging::init(&config.logging);
    match &config.source {
        ConfigSource::File(path) => {
            tracing::info!(config = %path.display(), "configuration loaded")
        }
        ConfigSource::Defaults => tracing::info!(
            "no config file found ($AISOPOD_CONFIG, {}): running on built-in defaults",
            config::ETC_CONFIG
        ),
    }
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let data_dir = std::path::absolute(&config.storage.data_dir)
        .unwrap_or_else(|_| config.storage.data_dir.clone());
    tracing::info!(data_dir = %data_dir.display(), security_mode = ?config.security.mode, "data directory");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("aisopod")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config, print_addr))
}

async fn serve(config: config::Config, print_addr: bool) -> anyhow::Result<ExitCode> {
    let bind = config.server.bind;
    let redirect_bind = config.server.http_redirect_bind;
    let runtime_dir = config.storage.runtime_dir.clone();
    let socket_path = admin::socket_path(&config);
    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| {
        format!(
            "cannot listen on {bind} (set [server] bind to a free address, or port 0 to pick one)"
        )
    })?;
    let app = Arc::new(
        tokio::task::spawn_blocking(move || App::open(config, Arc::new(SystemClock), None))
            .await??,
    );
    let addr = listener.local_addr().context("reading the bound address")?;
    let scheme = app.config().scheme();

    ensure_private_dir(&runtime_dir)?;
    let _ = std::fs::remove_file(&socket_path);
    let admin_listener = tokio::net::UnixListener::bind(&socket_path)
        .with_context(|| format!("cannot create the admin socket {}", socket_path.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", socket_path.display()))?;
    }
    app.tasks
        .spawn("admin-socket", admin::listen(app.clone(), admin_listener));
    app.spawn_background();

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let redirect = match redirect_bind {
        Some(redirect_bind) => {
            let redirect_listener = tokio::net::TcpListener::bind(redirect_bind)
                .await
                .with_context(|| {
                    format!("cannot listen on {redirect_bind} ([server] http_redirect_bind)")
                })?;
            let mut rx = shutdown_rx.clone();
            let limits = ConnectionLimits::from_app(&app);
            let public_url = app.config().server.public_url.clone();
            tracing::info!(addr = %redirect_listener.local_addr().unwrap_or(redirect_bind), "redirecting plain HTTP to HTTPS");
            Some(tokio::spawn(server::serve_redirect(
                redirect_listener,
                addr.port(),
                public_url,
                limits,
                async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                },
            )))
        }
        None => None,
    };

    let shown = reachable(addr);
    app.audit().record(
        AuditEvent::new("gateway.start")
            .target(format!("{scheme}://{shown}"))
            .details(serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "pid": std::process::id(),
            })),
    )?;
    let fingerprint = app
        .tls
        .as_ref()
        .and_then(|tls| tls.summary().ca.map(|ca| ca.sha256));
    tracing::info!(
        url = %format!("{scheme}://{shown}"),
        ca_sha256 = fingerprint.as_deref().unwrap_or("-"),
        admin_socket = %socket_path.display(),
        "aisopod gateway listening"
    );
    let auth = &app.services.auth;
    if auth.has_accounts() && auth.accounts.is_empty() {
        let code = auth.claim.start();
        let minutes = app.config().auth.claim_code_ttl.as_secs() / 60;
        app.audit()
            .record_or_log(AuditEvent::new("auth.claim_code_created"));
        // The code is a one-time secret: shown on an interactive console, never logged.
        if std::io::stderr().is_terminal() {
            eprintln!(
                "\n  No accounts yet. Claim this gateway within {minutes} minutes with the code\n\n      {code}\n\n  \
                 at {scheme}://{shown}/setup/claim, or create the owner here: aisopod user add --admin NAME\n"
            );
        } else {
            tracing::warn!(
                "no accounts yet: `aisopod auth claim-code` on this device shows the one-time claim code \
                 (valid {minutes} minutes), or create the owner with `aisopod user add --admin NAME`"
            );
        }
    }
    if print_addr {
        println!("{scheme}://{shown}");
        let _ = std::io::stdout().flush();
    }
    notify_systemd(&app);

    let router = server::router(app.clone());
    let tls = app.tls.as_ref().map(|tls| tls.server_config());
    let limits = ConnectionLimits::from_app(&app);
    server::serve(listener, router, tls, limits, shutdown_signal()).await;
    let _ = shutdown_tx.send(true);
    if let Some(redirect) = redirect {
        let _ = redirect.await;
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    app.tasks.abort_all();
    app.audit().record_or_log(AuditEvent::new("gateway.stop"));
    let _ = std::fs::remove_file(&socket_path);
    tracing::info!("aisopod gateway stopped");
    Ok(ExitCode::SUCCESS)
}

/// An address a local client can connect to: the unspecified address becomes loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let ip = if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        SocketAddr::new(ip, addr.port())
    } else {
        addr
    }
}

/// Tells systemd the gateway is ready and, when a watchdog is configured, pings it
/// while readiness holds (a wedged gateway is then restarted).
fn notify_systemd(app: &Arc<App>) {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let mut usec = 0;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        let period = Duration::from_micros(usec / 2);
        let watched = app.clone();
        app.tasks.spawn("watchdog", async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let probe = watched.clone();
                if let Ok((true, _)) = tokio::task::spawn_blocking(move || probe.readiness()).await
                {
                    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
                }
            }
        });
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the gateway with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received; draining"),
        _ = int.recv() => tracing::info!("SIGINT received; draining"),
    }
}
