//! `aisopod audit list | verify | export`.

use std::path::Path;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use crate::admin::AdminRequest;
use crate::security::audit::{AuditRecord, Query};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit records, oldest first
    List {
        /// Only records at or after this time: RFC 3339 (2026-01-31T12:00:00Z) or a duration back from now (1h, 7d)
        #[arg(long)]
        since: Option<String>,
        /// Only this action; a trailing * matches a prefix (gateway.*)
        #[arg(long)]
        action: Option<String>,
        /// At most this many (the newest)
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Check the hash chain; exit 1 naming the first bad record
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Write every record to stdout
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line
    Jsonl,
}

pub fn run(config_path: Option<&Path>, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    crate::logging::init_cli();
    match command {
        AuditCommand::List {
            since,
            action,
            limit,
            json,
        } => {
            let result = super::dispatch(
                config,
                AdminRequest::AuditList {
                    query: Query {
                        since,
                        action,
                        limit,
                    },
                },
            )?;
            if json {
                super::print_json(&result)?;
            } else {
                let records: Vec<AuditRecord> = serde_json::from_value(result)?;
                for r in records {
                    let ip = r.source_ip.as_deref().unwrap_or("-");
                    let target = if r.target.is_empty() { "-" } else { &r.target };
                    println!(
                        "{:>6}  {}  {:<28} {:<8} {:<24} {:<20} {}",
                        r.seq,
                        r.time,
                        r.action,
                        format!("{:?}", r.outcome).to_lowercase(),
                        r.actor,
                        target,
                        ip
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify { json } => match super::dispatch(config, AdminRequest::AuditVerify) {
            Ok(result) => {
                if json {
                    super::print_json(&result)?;
                } else {
                    let records = result["records"].as_u64().unwrap_or(0);
                    let since = match result["checkpoint_seq"].as_u64() {
                        Some(seq) => format!(" (after the retention checkpoint at seq {seq})"),
                        None => String::new(),
                    };
                    println!("ok: {records} records, chain intact{since}");
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(err) => {
                eprintln!("aisopod: {err}");
                Ok(ExitCode::from(super::EXIT_ERROR))
            }
        },
        AuditCommand::Export {
            format: ExportFormat::Jsonl,
        } => {
            let result = super::dispatch(config, AdminRequest::AuditExport)?;
            let records = result.as_array().cloned().unwrap_or_default();
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            for record in records {
                use std::io::Write;
                writeln!(out, "{}", serde_json::to_string(&record)?)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
