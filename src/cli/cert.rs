//! `aisopod cert show | regenerate`.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use crate::admin::AdminRequest;
use crate::tls::TlsSummary;

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Show fingerprints, names and expiry of the device CA and server certificate
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Issue a new server certificate now (with --ca, a new device CA too)
    Regenerate {
        /// Also replace the device CA: every phone and browser that trusted the old one must trust the new one
        #[arg(long)]
        ca: bool,
    },
}

pub fn run(config_path: Option<&Path>, command: CertCommand) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    crate::logging::init_cli();
    match command {
        CertCommand::Show { json } => {
            let result = super::dispatch(config, AdminRequest::CertShow)?;
            if json {
                super::print_json(&result)?;
                return Ok(ExitCode::SUCCESS);
            }
            let summary: serde_json::Value = result;
            let print = |label: &str, cert: &serde_json::Value| {
                println!("{label}");
                println!("  subject:  {}", cert["subject"].as_str().unwrap_or(""));
                println!("  sha256:   {}", cert["sha256"].as_str().unwrap_or(""));
                println!(
                    "  valid:    {} to {}",
                    cert["not_before"].as_str().unwrap_or(""),
                    cert["not_after"].as_str().unwrap_or("")
                );
                let names: Vec<&str> = cert["names"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n.as_str())
                    .collect();
                if !names.is_empty() {
                    println!("  names:    {}", names.join(", "));
                }
            };
            let _: Option<TlsSummary> = None;
            println!("mode: {}", summary["mode"].as_str().unwrap_or(""));
            if !summary["ca"].is_null() {
                print(
                    "device CA (trust this on phones and browsers; also at GET /ca.crt)",
                    &summary["ca"],
                );
            }
            print("server certificate", &summary["server"]);
            if let Some(renews) = summary["renews_after"].as_str() {
                println!(
                    "  renews:   after {renews} (or when the device's names or addresses change)"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CertCommand::Regenerate { ca } => {
            let result = super::dispatch(config, AdminRequest::CertRegenerate { ca })?;
            for fingerprint in result["issued"].as_array().into_iter().flatten() {
                println!("issued {}", fingerprint.as_str().unwrap_or(""));
            }
            if ca {
                println!(
                    "the device CA changed: trust the new CA (GET /ca.crt) on every phone and browser"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
