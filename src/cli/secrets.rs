//! `aisopod secrets set | list | remove | rotate-master-key`.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::admin::{AdminRequest, AdminResponse};
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
    let config = super::common::load_config(config_path)?;
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
            let stored = super::common::expect_answer!(
                super::common::dispatch(config, AdminRequest::SecretsSet { name, value })?,
                AdminResponse::SecretStored(stored) => stored
            );
            println!(
                "stored {} (sealed under key {})",
                stored.name, stored.key_id
            );
        }
        SecretsCommand::List { json } => {
            let secrets = super::common::expect_answer!(
                super::common::dispatch(config, AdminRequest::SecretsList)?,
                AdminResponse::Secrets(secrets) => secrets
            );
            if json {
                super::common::print_json(&secrets)?;
            } else {
                for entry in &secrets {
                    println!("{}  (key {})", escape_control(&entry.name), entry.key_id);
                }
            }
        }
        SecretsCommand::Remove { name } => {
            super::common::dispatch(config, AdminRequest::SecretsRemove { name: name.clone() })?;
            println!("removed {name}");
        }
        SecretsCommand::RotateMasterKey => {
            let rotation = super::common::expect_answer!(
                super::common::dispatch(config, AdminRequest::SecretsRotateMasterKey)?,
                AdminResponse::MasterKeyRotated(rotation) => rotation
            );
            println!(
                "master key rotated: {} -> {}, {} secret(s) re-sealed",
                rotation.old_key_id, rotation.new_key_id, rotation.resealed
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
