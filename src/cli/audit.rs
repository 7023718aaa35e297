//! `aisopod audit list | verify | export`.
//!
//! Records hold text that came from requests; every printer here writes stored text
//! through [`escape_control`], so a record can never move the reader's cursor or send
//! their terminal an escape sequence, even one written before records were escaped.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use crate::admin::{AdminRequest, AdminResponse};
use crate::audit::{AuditRecord, Export, Query, escape_control, walk_export};

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
    /// Check the hash chain and its sealed head; exit 1 naming the first bad record
    Verify {
        /// Check this file written by `audit export` instead of the log itself
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Write every record to stdout, then one line with the seal of the last one
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
    let config = super::common::load_config(config_path)?;
    crate::logging::init_cli();
    match command {
        AuditCommand::List {
            since,
            action,
            limit,
            json,
        } => {
            let records: Vec<AuditRecord> = super::common::expect_answer!(
                super::common::dispatch(
                    config,
                    AdminRequest::AuditList {
                        query: Query {
                            since,
                            action,
                            limit,
                        },
                    },
                )?,
                AdminResponse::AuditRecords(records) => records
            );
            if json {
                super::common::print_json(&records)?;
            } else {
                for r in records {
                    let ip = r.source_ip.as_deref().unwrap_or("-");
                    let target = if r.target.is_empty() { "-" } else { &r.target };
                    println!(
                        "{:>6}  {}  {:<28} {:<8} {:<24} {:<20} {}",
                        r.seq,
                        escape_control(&r.time),
                        escape_control(&r.action),
                        format!("{:?}", r.outcome).to_lowercase(),
                        escape_control(&r.actor),
                        escape_control(target),
                        escape_control(ip)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify {
            export: Some(file),
            json,
        } => verify_export(config, &file, json),
        AuditCommand::Verify { export: None, json } => {
            match super::common::dispatch(config, AdminRequest::AuditVerify) {
                Ok(answer) => {
                    let verified =
                        super::common::expect_answer!(answer, AdminResponse::AuditVerified(v) => v);
                    if json {
                        super::common::print_json(&verified)?;
                    } else {
                        let records = verified.records;
                        let since = match verified.checkpoint_seq {
                            Some(seq) => format!(" (after the retention checkpoint at seq {seq})"),
                            None => String::new(),
                        };
                        let sealed = match verified.sealed_seq {
                            Some(seq) => format!(", sealed head at seq {seq}"),
                            None => String::new(),
                        };
                        println!("ok: {records} records, chain intact{since}{sealed}");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(err) => {
                    eprintln!("aisopod: {err}");
                    Ok(ExitCode::from(super::common::EXIT_ERROR))
                }
            }
        }
        AuditCommand::Export {
            format: ExportFormat::Jsonl,
        } => {
            use std::io::Write;
            let export: Export = super::common::expect_answer!(
                super::common::dispatch(config, AdminRequest::AuditExport)?,
                AdminResponse::AuditExport(export) => export
            );
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            for record in &export.records {
                writeln!(out, "{}", serde_json::to_string(record)?)?;
            }
            writeln!(out, "{}", serde_json::to_string(&export.seal)?)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `audit verify --export FILE`: the chain is walked here, without any key; only the
/// seal line goes to the log's owner (the gateway, or the store) to be checked with it.
fn verify_export(
    config: crate::config::Config,
    file: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    use std::io::BufRead;
    let opened = std::fs::File::open(file)
        .map_err(|err| anyhow::anyhow!("cannot open {}: {err}", file.display()))?;
    let checked = walk_export(std::io::BufReader::new(opened).lines());
    let outcome =
        checked
            .map_err(anyhow::Error::from)
            .and_then(|(verified, seal, end_seq, end_hash)| {
                super::common::dispatch(
                    config,
                    AdminRequest::AuditVerifyExport {
                        seal,
                        end_seq,
                        end_hash,
                    },
                )
                .map(|_| verified)
            });
    match outcome {
        Ok(verified) => {
            if json {
                super::common::print_json(&serde_json::to_value(&verified)?)?;
            } else {
                println!(
                    "ok: {} records in {}, chain intact up to the sealed head at seq {}",
                    verified.records,
                    escape_control(&file.display().to_string()),
                    verified.last_seq.unwrap_or(0)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!(
                "aisopod: {}: {err}",
                escape_control(&file.display().to_string())
            );
            Ok(ExitCode::from(super::common::EXIT_ERROR))
        }
    }
}
