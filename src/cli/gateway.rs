//! `aisopod gateway start | validate-config | health`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;

use crate::app::{self, AppError};
use crate::config::{self, ConfigSource, ProcessEnvironment, TlsMode};

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
    let config = super::common::load_config(config_path)?;
    let base = match url {
        Some(url) => url,
        None if config.server.bind.port() == 0 => {
            anyhow::bail!("[server] bind has port 0 (a free port picked at start): pass --url")
        }
        None => format!(
            "{}://{}",
            config.scheme(),
            app::reachable(config.server.bind)
        ),
    };
    let target = format!("{}/health", base.trim_end_matches('/'));
    let trusted = match &config.tls.mode {
        TlsMode::Files { cert, .. } => cert.clone(),
        _ => config.storage.data_dir.join("tls").join("ca.pem"),
    };
    let trust = if target.starts_with("https://") {
        let pem = std::fs::read(&trusted)
            .with_context(|| format!("reading the certificate to trust: {}", trusted.display()))?;
        super::http::Trust::Roots(pem)
    } else {
        super::http::Trust::Nothing
    };
    let client = super::http::Client::new(trust, timeout)
        .with_context(|| format!("the certificate to trust: {}", trusted.display()))?;
    let response = client
        .get(&target)
        .with_context(|| format!("{target}: no answer"))?;
    let status = response.status;
    if status != 200 {
        anyhow::bail!("{target} answered {status}");
    }
    println!("healthy: {target}");
    Ok(ExitCode::SUCCESS)
}

fn validate(config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let env = ProcessEnvironment;
    let path = config::locate(config_path, &env);
    let mut issues = match config::load_checked(path.as_deref(), &env, super::common::OWNER_CHECKS)
    {
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
    Ok(ExitCode::from(super::common::EXIT_ERROR))
}

fn start(config_path: Option<&Path>, print_addr: bool) -> anyhow::Result<ExitCode> {
    let config = super::common::load_config(config_path)?;
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
    let options = app::Options {
        on_ready: print_addr.then(|| {
            Box::new(|ready: &app::Ready| {
                println!("{}", ready.url);
                let _ = std::io::stdout().flush();
            }) as app::OnReady
        }),
        ..app::Options::default()
    };
    match app::run_with(
        config,
        app::Listeners::default(),
        options,
        shutdown_signal(),
    )
    .await
    {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // Kept as the crate's error so the one-line report still recognises it.
        Err(AppError::Open(err)) => Err(err.into()),
        Err(err) => Err(err.into()),
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
