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
mod common;
mod gateway;
mod hardware;
mod http;
mod login;
mod pair;
mod policy;
mod sandbox;
mod secrets;
mod security;
mod tools;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use common::EXIT_ERROR;

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
    /// Pair phones by QR code: offers, confirmations, paired devices
    #[command(subcommand)]
    Pair(pair::PairCommand),
    /// Check the display, button and LED of the device
    #[command(subcommand)]
    Hardware(hardware::HardwareCommand),
    /// Audit this device's configuration and machine for security problems
    #[command(subcommand)]
    Security(security::SecurityCommand),
}

/// Parses arguments, runs the command and returns the exit code.
pub fn main() -> ExitCode {
    // The sandbox helper must stay single-threaded and start from a clean process: it is
    // dispatched before argument parsing, logging or anything else (see sandbox::launcher).
    let args: Vec<std::ffi::OsString> = std::env::args_os().take(2).collect();
    if crate::sandbox::launcher::is_helper(&args) {
        return crate::sandbox::launcher::helper_main();
    }
    if crate::auth::strength::is_helper(&args) {
        return crate::auth::strength::helper_main();
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
        Command::Pair(command) => pair::run(cli.config.as_deref(), command),
        Command::Hardware(command) => hardware::run(cli.config.as_deref(), command),
        Command::Security(command) => security::run(cli.config.as_deref(), command),
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
