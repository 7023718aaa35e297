//! `aisopod cert show | regenerate`.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use crate::admin::{AdminRequest, AdminResponse};
use crate::tls::{CertInfo, TlsSummary};

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
    let config = super::common::load_config(config_path)?;
    crate::logging::init_cli();
    match command {
        CertCommand::Show { json } => {
            let summary: TlsSummary = super::common::expect_answer!(
                super::common::dispatch(config, AdminRequest::CertShow)?,
                AdminResponse::Certificate(summary) => summary
            );
            if json {
                super::common::print_json(&summary)?;
                return Ok(ExitCode::SUCCESS);
            }
            let print = |label: &str, cert: &CertInfo| {
                println!("{label}");
                println!("  subject:  {}", cert.subject);
                println!("  sha256:   {}", cert.sha256);
                println!("  valid:    {} to {}", cert.not_before, cert.not_after);
                if !cert.names.is_empty() {
                    println!("  names:    {}", cert.names.join(", "));
                }
            };
            println!("mode: {}", summary.mode);
            if let Some(ca) = &summary.ca {
                print(
                    "device CA (trust this on phones and browsers; also at GET /ca.crt)",
                    ca,
                );
            }
            print("server certificate", &summary.server);
            if let Some(renews) = &summary.renews_after {
                println!(
                    "  renews:   after {renews} (or when the device's names or addresses change)"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CertCommand::Regenerate { ca } => {
            let issued = super::common::expect_answer!(
                super::common::dispatch(config, AdminRequest::CertRegenerate { ca })?,
                AdminResponse::CertificatesIssued { issued } => issued
            );
            for fingerprint in &issued {
                println!("issued {fingerprint}");
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
