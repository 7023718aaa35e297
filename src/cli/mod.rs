//! The command line: argument parsing, dispatch to one file per command group, and the
//! mapping from outcome to exit code (0 success, 1 error with one line on stderr, 2 usage).
//!
//! Commands that read or change state use the running gateway's admin socket when one
//! answers and open the store directly otherwise (see `admin`). Only `gateway start`,
//! `backup restore`, the setup commands `user add` and `secrets set`, and the console
//! runs `sandbox run` and `tools run` (which work without a gateway) create a data
//! directory; any other command refuses a missing one, naming the path, since a command
//! run from the wrong directory would otherwise quietly make a second one with its own
//! `master.key`. The setup commands always say when they create one; which data
//! directory a command uses is said on stderr when stderr is a terminal (scripts keep
//! the one-line error, and `sandbox run` passes its child's stderr through untouched).
//! This module prints; the services it calls never do.

// Results from the admin protocol are read as `serde_json::Value`, whose `Index` with a
// string key answers `Null` for a missing key instead of panicking.
#![allow(clippy::indexing_slicing)]

mod audit;
mod auth;
mod backup;
mod cert;
mod gateway;
mod hardware;
mod login;
mod policy;
mod sandbox;
mod secrets;
mod tools;
mod user;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::admin::{self, AdminRequest, AdminResponse, TlsAccess};
use crate::clock::SystemClock;
use crate::config::{self, Config, ProcessEnvironment};
use crate::keys::secrets::master_key_path;
use crate::server::state::Services;

/// A secure AI gateway appliance.
#[derive(Debug, Parser)]
#[command(name = "aisopod", version, about, propagate_version = true)]
pub struct Cli {
    /// Config file (default: $AISOPOD_CONFIG, then /etc/aisopod/config.toml, else built-in defaults)
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway and check its configuration
    #[command(subcommand)]
    Gateway(gateway::GatewayCommand),
    /// Read and verify the audit log
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Make an encrypted backup, or restore one
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Show or regenerate the TLS certificates
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// Manage secrets sealed in the store
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// Authentication helpers
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Run code in the sandbox, or check what this host offers it
    #[command(subcommand)]
    Sandbox(sandbox::SandboxCommand),
    /// Run an agent tool from the console, or list the agents' tools
    #[command(subcommand)]
    Tools(tools::ToolsCommand),
    /// Manage user accounts
    #[command(subcommand)]
    User(user::UserCommand),
    /// Sign in to a gateway from another machine with the device flow (RFC 8628)
    Login(login::LoginArgs),
    /// Check shell commands against the command filter
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Check the display, button and LED of the device
    #[command(subcommand)]
    Hardware(hardware::HardwareCommand),
}

/// Exit status when a command ran but found a problem it reports (such as a broken chain).
pub const EXIT_ERROR: u8 = 1;

/// Parses arguments, runs the command and returns the exit code.
pub fn main() -> ExitCode {
    // The sandbox helper must stay single-threaded and start from a clean process: it is
    // dispatched before argument parsing, logging or anything else (see sandbox::launcher).
    let args: Vec<std::ffi::OsString> = std::env::args_os().take(2).collect();
    if crate::sandbox::launcher::is_helper(&args) {
        return crate::sandbox::launcher::helper_main();
    }
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Gateway(command) => gateway::run(cli.config.as_deref(), command),
        Command::Audit(command) => audit::run(cli.config.as_deref(), command),
        Command::Backup(command) => backup::run(cli.config.as_deref(), command),
        Command::Cert(command) => cert::run(cli.config.as_deref(), command),
        Command::Secrets(command) => secrets::run(cli.config.as_deref(), command),
        Command::Sandbox(command) => sandbox::run(cli.config.as_deref(), command),
        Command::Auth(command) => auth::run(cli.config.as_deref(), command),
        Command::Tools(command) => tools::run(cli.config.as_deref(), command),
        Command::User(command) => user::run(cli.config.as_deref(), command),
        Command::Login(args) => login::run(args),
        Command::Policy(command) => policy::run(cli.config.as_deref(), command),
        Command::Hardware(command) => hardware::run(cli.config.as_deref(), command),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("aisopod: {}", one_line(&err));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The error and its causes on one line, unless the error is a multi-line report.
fn one_line(err: &anyhow::Error) -> String {
    let text = format!("{err:#}");
    if matches!(
        err.downcast_ref::<crate::Error>(),
        Some(crate::Error::Config(_))
    ) {
        text
    } else {
        text.replace('\n', " ")
    }
}

/// What modules above config check in its tables when a command loads it, so that one
/// run reports every mistake (see [`config::OwnerCheck`]).
const OWNER_CHECKS: &[config::OwnerCheck<'static>] = &[&crate::policy::shell_config_issues];

/// Loads the configuration the way every command does.
fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let env = ProcessEnvironment;
    let path = config::locate(path, &env);
    Ok(config::load_checked(path.as_deref(), &env, OWNER_CHECKS).map_err(crate::Error::from)?)
}

/// The caller as the audit log names it.
fn cli_actor() -> String {
    format!("cli uid:{}", nix::unistd::getuid().as_raw())
}

/// Whether a command may create the data directory when it finds none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Create {
    /// Explicit setup: creates it, and always says so.
    Setup,
    /// A console run that works without a gateway: creates it, saying so on a terminal.
    Quietly,
    /// Everything else: a missing data directory is an error naming the path.
    Refused,
}

/// The data directory as a full path: a relative `data_dir` is taken from the current
/// directory, which is exactly what the user needs to see when it is the wrong one.
fn shown_data_dir(config: &Config) -> PathBuf {
    std::path::absolute(&config.storage.data_dir)
        .unwrap_or_else(|_| config.storage.data_dir.clone())
}

/// Whether the gateway has ever used this data directory (an empty one made by systemd's
/// `StateDirectory=` does not count).
fn data_dir_in_use(config: &Config) -> bool {
    let dir = &config.storage.data_dir;
    master_key_path(dir).exists() || dir.join("db").exists()
}

/// Says which data directory a command uses, to a person at a terminal.
fn note_data_dir(config: &Config, how: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!(
            "aisopod: data directory {}{how}",
            shown_data_dir(config).display()
        );
    }
}

/// Checks the data directory for an offline command and says which one it uses.
fn check_data_dir(config: &Config, create: Create) -> anyhow::Result<()> {
    let dir = shown_data_dir(config);
    if data_dir_in_use(config) {
        note_data_dir(config, "");
        return Ok(());
    }
    match create {
        Create::Setup => {
            eprintln!(
                "aisopod: creating a new data directory {} (configuration: {})",
                dir.display(),
                config.source
            );
            Ok(())
        }
        Create::Quietly => {
            note_data_dir(config, " (new)");
            Ok(())
        }
        Create::Refused => bail!(
            "no aisopod data directory at {} (configuration: {}): this command does not \
             create one. Point it at the gateway's configuration with --config PATH or \
             AISOPOD_CONFIG (its [storage] data_dir), run it from the directory the gateway \
             runs in, or create the data directory with the gateway's first start \
             (aisopod gateway start)",
            dir.display(),
            config.source
        ),
    }
}

/// Opens the store directly (no gateway running), after [`check_data_dir`].
fn open_services(config: Config, create: Create) -> anyhow::Result<Services> {
    check_data_dir(&config, create)?;
    Ok(Services::open(config, Arc::new(SystemClock))?)
}

/// The answer's expected variant, or an error naming the one that came instead.
macro_rules! expect_answer {
    ($answer:expr, $variant:pat => $value:expr) => {
        match $answer {
            $variant => $value,
            other => anyhow::bail!(
                "unexpected answer from the gateway: {} (is it another release?)",
                other.kind()
            ),
        }
    };
}
use expect_answer;

/// Runs an admin command through the gateway if one runs, else against the store.
fn dispatch(config: Config, request: AdminRequest) -> anyhow::Result<AdminResponse> {
    let socket = admin::socket_path(&config);
    let response = match admin::send(&socket, &request, Duration::from_secs(120))? {
        Some(response) => {
            note_data_dir(&config, " (through the running gateway)");
            response
        }
        None => {
            let create = match request {
                AdminRequest::UserAdd { .. } | AdminRequest::SecretsSet { .. } => Create::Setup,
                _ => Create::Refused,
            };
            check_data_dir(&config, create)?;
            let services =
                Services::open(config, Arc::new(SystemClock)).map_err(|err| match err {
                    crate::Error::Store(crate::store::StoreError::Locked { .. }) => {
                        anyhow::anyhow!(
                            "{err} (the admin socket {} did not answer)",
                            socket.display()
                        )
                    }
                    other => other.into(),
                })?;
            admin::execute(&services, TlsAccess::Offline, &cli_actor(), request)
        }
    };
    Ok(response?)
}

/// Prints a value as pretty JSON.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("encoding JSON")?
    );
    Ok(())
}
