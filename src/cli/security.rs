//! `aisopod security audit [--json] [--fix]`: the findings grouped by severity with their
//! evidence and fix (or the report as JSON), exit 1 when any is high or critical. With a
//! gateway running the gateway audits itself over the admin socket; otherwise the store
//! is opened here. `--fix` repairs only file modes, and the output says what changed.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use crate::admin::{AdminRequest, AdminResponse};
use crate::security_audit::{Report, files};

#[derive(Debug, Subcommand)]
pub enum SecurityCommand {
    /// Inspect the configuration and this machine; exit 1 on any high or critical finding
    Audit {
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
        /// First repair what is safe to repair (file modes), and say what was changed
        #[arg(long)]
        fix: bool,
    },
}

pub fn run(config_path: Option<&Path>, command: SecurityCommand) -> anyhow::Result<ExitCode> {
    let config = super::common::load_config(config_path)?;
    crate::logging::init_cli();
    match command {
        SecurityCommand::Audit { json, fix } => {
            // Opening the store makes a loose data directory private before the audit can
            // see it; what it was is looked at first, and reported (or counted as fixed).
            let loose = files::loose_data_dir(&config);
            let report: Report = super::common::expect_answer!(
                super::common::dispatch(config.clone(), AdminRequest::SecurityAudit { fix })?,
                AdminResponse::SecurityAudit(report) => report
            );
            let seen = report.ids().contains(&"files.data_dir_mode")
                || report.fixed.iter().any(|line| {
                    line.contains(&format!(" {} (was", config.storage.data_dir.display()))
                });
            let report = match loose {
                Some(was) if !seen && files::loose_data_dir(&config).is_none() => {
                    let (found, fixed) = files::tightened_on_open(&config, was, fix);
                    report.extended(found, fixed)
                }
                _ => report,
            };
            if json {
                super::common::print_json(&report)?;
            } else {
                print!("{}", report.render());
            }
            Ok(if report.fails() {
                ExitCode::from(super::common::EXIT_ERROR)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
