//! `aisopod auth gen-secret`.

use std::process::ExitCode;

use anyhow::Context;
use base64::Engine;
use clap::Subcommand;
use ring::rand::SecureRandom;

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Print 32 random bytes, base64-encoded, for use as a token or signing secret
    GenSecret,
}

pub fn run(command: AuthCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuthCommand::GenSecret => {
            let mut bytes = [0u8; 32];
            ring::rand::SystemRandom::new()
                .fill(&mut bytes)
                .map_err(|_| anyhow::anyhow!("the system random number generator failed"))
                .context("generating a secret")?;
            println!(
                "{}",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
