//! `aisopod secrets set | list | remove | rotate-master-key`.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::admin::AdminRequest;
use crate::audit::escape_control;
use crate::secret::Secret;

/// Longest secret value accepted from stdin.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Store a secret sealed under the master key; the value is read from stdin
    Set { name: String },
    /// List stored secrets (names and key ids, never values)
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a stored secret
    Remove { name: String },
    /// Replace master.key and re-seal every stored secret under the new key
    RotateMasterKey,
}

pub fn run(config_path: Option<&Path>, command: SecretsCommand) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    crate::logging::init_cli();
    match command {
        SecretsCommand::Set { name } => {
            let mut raw = Vec::new();
            std::io::stdin()
                .take(MAX_SECRET_BYTES + 1)
                .read_to_end(&mut raw)
                .context("reading the secret from stdin")?;
            if raw.len() as u64 > MAX_SECRET_BYTES {
                bail!("the secret is longer than {MAX_SECRET_BYTES} bytes");
            }
            let text = String::from_utf8(raw)
                .map_err(|_| anyhow::anyhow!("the secret is not valid UTF-8"))?;
            let value = Secret::new(text.trim_end_matches(['\n', '\r']));
            let result = super::dispatch(config, AdminRequest::SecretsSet { name, value })?;
            println!(
                "stored {} (sealed under key {})",
                result["name"].as_str().unwrap_or(""),
                result["key_id"].as_str().unwrap_or("")
            );
        }
        SecretsCommand::List { json } => {
            let result = super::dispatch(config, AdminRequest::SecretsList)?;
            if json {
                super::print_json(&result)?;
            } else {
                for entry in result.as_array().into_iter().flatten() {
                    println!(
                        "{}  (key {})",
                        escape_control(entry["name"].as_str().unwrap_or("")),
                        entry["key_id"].as_str().unwrap_or("")
                    );
                }
            }
        }
        SecretsCommand::Remove { name } => {
            super::dispatch(config, AdminRequest::SecretsRemove { name: name.clone() })?;
            println!("removed {name}");
        }
        SecretsCommand::RotateMasterKey => {
            let result = super::dispatch(config, AdminRequest::SecretsRotateMasterKey)?;
            println!(
                "master key rotated: {} -> {}, {} secret(s) re-sealed",
                result["old_key_id"].as_str().unwrap_or(""),
                result["new_key_id"].as_str().unwrap_or(""),
                result["resealed"]
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
