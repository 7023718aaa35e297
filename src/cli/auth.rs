//! `aisopod auth gen-secret | hash-password | claim-code | create-token | list-tokens |
//! revoke-token | rotate-token | limit-token | rotate-signing-key`.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine;
use clap::Subcommand;
use ring::rand::SecureRandom;

use crate::admin::{AdminRequest, AdminResponse};
use crate::audit::escape_control;
use crate::auth::password::Passwords;
use crate::auth::scopes::Scopes;
use crate::auth::tokens::{LimitChange, LimitsChange};
use crate::secret::Secret;

/// Longest password input accepted (the policy's limit is far below this).
const MAX_PASSWORD_INPUT: u64 = 4096;

/// Reads a new password: from stdin when asked (or when stdin is not a terminal), else
/// prompted twice without echo.
pub fn read_password_twice(from_stdin: bool) -> anyhow::Result<Secret> {
    if from_stdin || !std::io::stdin().is_terminal() {
        return read_password("");
    }
    let first = read_password("New password: ")?;
    let second = read_password("Repeat it: ")?;
    if first != second {
        anyhow::bail!("the passwords do not match");
    }
    Ok(first)
}

/// Reads a password: prompted without echo on a terminal, else one line of stdin.
pub fn read_password(prompt: &str) -> anyhow::Result<Secret> {
    let text = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).context("reading the password")?
    } else {
        let mut raw = Vec::new();
        std::io::stdin()
            .take(MAX_PASSWORD_INPUT + 1)
            .read_to_end(&mut raw)
            .context("reading the password from stdin")?;
        if raw.len() as u64 > MAX_PASSWORD_INPUT {
            anyhow::bail!("the password input is longer than {MAX_PASSWORD_INPUT} bytes");
        }
        let text = String::from_utf8(raw)
            .map_err(|_| anyhow::anyhow!("the password is not valid UTF-8"))?;

        text.lines().next().unwrap_or("").to_string()
    };
    if text.is_empty() {
        anyhow::bail!("no password given");
    }
    Ok(Secret::new(text))
}

/// Unix seconds as RFC 3339 UTC (the number itself if it is out of range).
fn unix_rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map_or_else(|_| unix.to_string(), crate::clock::rfc3339)
}

/// A limit as typed: a whole number, or "none" to lift it.
fn limit_change<T: std::str::FromStr>(text: &str) -> Result<LimitChange<T>, String> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(LimitChange::Lift);
    }
    text.parse()
        .map(LimitChange::Set)
        .map_err(|_| format!("{text:?} is not a whole number or \"none\""))
}

/// A listed token's limits, as `  limits 60/min 100000 tokens/day`; empty when it has none.
fn limits_text(token: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    if let Some(n) = token["requests_per_minute"].as_u64() {
        parts.push(format!("{n}/min"));
    }
    if let Some(n) = token["tokens_per_day"].as_u64() {
        parts.push(format!("{n} tokens/day"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("  limits {}", parts.join(" "))
    }
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Print 32 random bytes, base64-encoded, for use as a token or signing secret
    GenSecret,
    /// Hash a password with argon2id (read from stdin, or prompted for on a terminal)
    HashPassword,
    /// Show the running gateway's one-time claim code (while no account exists)
    ClaimCode,
    /// Create an API token (shown once)
    CreateToken {
        /// Comma-separated scopes: chat:read,chat:write,agent:read,agent:manage,channel:read,channel:manage,config:read,config:write,admin
        #[arg(long)]
        scopes: String,
        #[arg(long)]
        name: String,
        /// Lifetime such as 90d (default: until revoked)
        #[arg(long)]
        expires: Option<String>,
        /// The account the token acts for (default: the only administrator)
        #[arg(long)]
        owner: Option<String>,
        /// At most this many requests a minute to the routes that call a model
        #[arg(long, visible_alias = "rpm", value_name = "N")]
        requests_per_minute: Option<u32>,
        /// At most this many prompt plus completion tokens a UTC day
        #[arg(long, value_name = "N")]
        tokens_per_day: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// List API tokens (never their secrets)
    ListTokens {
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API token by id
    RevokeToken { id: String },
    /// Replace an API token by name (the new one is shown once; the old one works for --grace)
    RotateToken {
        #[arg(long)]
        name: String,
        /// How long the old token keeps working (default 1h)
        #[arg(long)]
        grace: Option<String>,
    },
    /// Change an API token's limits by id ("none" lifts a limit; an unnamed one stays)
    LimitToken {
        id: String,
        /// Requests a minute to the routes that call a model, or "none"
        #[arg(long, visible_alias = "rpm", value_name = "N|none", value_parser = limit_change::<u32>)]
        requests_per_minute: Option<LimitChange<u32>>,
        /// Prompt plus completion tokens a UTC day, or "none"
        #[arg(long, value_name = "N|none", value_parser = limit_change::<u64>)]
        tokens_per_day: Option<LimitChange<u64>>,
        #[arg(long)]
        json: bool,
    },
    /// Make a new session signing key; sessions signed with the old one stay valid until they expire
    RotateSigningKey,
}

pub fn run(config_path: Option<&Path>, command: AuthCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuthCommand::CreateToken {
            scopes,
            name,
            expires,
            owner,
            requests_per_minute,
            tokens_per_day,
            json,
        } => {
            let config = super::common::load_config(config_path)?;
            let scopes = Scopes::parse_list(&scopes).map_err(anyhow::Error::msg)?;
            let issued = super::common::expect_answer!(
                super::common::dispatch(
                    config,
                    AdminRequest::TokenCreate {
                        owner,
                        name,
                        scopes,
                        expires,
                        requests_per_minute,
                        tokens_per_day,
                    },
                )?,
                AdminResponse::TokenIssued(issued) => issued
            );
            if json {
                super::common::print_json(&issued)?;
            } else {
                println!("{}", issued.token.expose());
                eprintln!(
                    "token {} ({}) for {}: shown once, store it now",
                    issued.record.id, issued.record.name, issued.record.owner
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AuthCommand::ListTokens { json } => {
            let config = super::common::load_config(config_path)?;
            let tokens = super::common::expect_answer!(
                super::common::dispatch(config, AdminRequest::TokenList)?,
                AdminResponse::Tokens(tokens) => tokens
            );
            let mut result = serde_json::to_value(tokens)?;
            // The store keeps Unix seconds; people and most tools read RFC 3339. JSON keeps
            // the number (for scripts that compare) beside the readable time.
            for token in result.as_array_mut().into_iter().flatten() {
                for (unix, readable) in [("expires", "expires_at"), ("last_used", "last_used_at")] {
                    let at = token[unix].as_i64().map(unix_rfc3339);
                    if let Some(object) = token.as_object_mut() {
                        object.insert(readable.into(), at.into());
                    }
                }
            }
            if json {
                super::common::print_json(&result)?;
            } else {
                for token in result.as_array().into_iter().flatten() {
                    let scopes: Vec<&str> = token["scopes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s.as_str())
                        .collect();
                    println!(
                        "{}  {:<20} {:<12} {:<28} expires {}{}",
                        token["id"].as_str().unwrap_or(""),
                        escape_control(token["name"].as_str().unwrap_or("")),
                        escape_control(token["owner"].as_str().unwrap_or("")),
                        scopes.join(","),
                        token["expires_at"].as_str().unwrap_or("never"),
                        limits_text(token)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuthCommand::RevokeToken { id } => {
            let config = super::common::load_config(config_path)?;
            super::common::dispatch(config, AdminRequest::TokenRevoke { id: id.clone() })?;
            println!("revoked {id}");
            Ok(ExitCode::SUCCESS)
        }
        AuthCommand::LimitToken {
            id,
            requests_per_minute,
            tokens_per_day,
            json,
        } => {
            let config = super::common::load_config(config_path)?;
            let change = LimitsChange {
                requests_per_minute: requests_per_minute.unwrap_or_default(),
                tokens_per_day: tokens_per_day.unwrap_or_default(),
            };
            if change == LimitsChange::default() {
                anyhow::bail!("name a limit to change: --requests-per-minute or --tokens-per-day");
            }
            let record = super::common::expect_answer!(
                super::common::dispatch(config, AdminRequest::TokenLimit { id, change })?,
                AdminResponse::TokenLimited(record) => record
            );
            if json {
                super::common::print_json(&record)?;
            } else {
                let value = serde_json::to_value(&record)?;
                println!("{}{}", record.id, limits_text(&value));
            }
            Ok(ExitCode::SUCCESS)
        }
        AuthCommand::RotateToken { name, grace } => {
            let config = super::common::load_config(config_path)?;
            let issued = super::common::expect_answer!(
                super::common::dispatch(config, AdminRequest::TokenRotate { name, grace })?,
                AdminResponse::TokenIssued(issued) => issued
            );
            println!("{}", issued.token.expose());
            Ok(ExitCode::SUCCESS)
        }
        AuthCommand::RotateSigningKey => {
            let config = super::common::load_config(config_path)?;
            let (kid, previous_valid_for) = super::common::expect_answer!(
                super::common::dispatch(config, AdminRequest::SigningKeyRotate)?,
                AdminResponse::SigningKeyRotated { kid, previous_valid_for } => (kid, previous_valid_for)
            );
            println!(
                "signing key rotated: new kid {kid}; sessions signed with the old key stay valid for {previous_valid_for} s at most"
            );
            Ok(ExitCode::SUCCESS)
        }
        AuthCommand::ClaimCode => {
            let config = super::common::load_config(config_path)?;
            let code = super::common::expect_answer!(
                super::common::dispatch(config, AdminRequest::ClaimCode)?,
                AdminResponse::ClaimCode { code } => code
            );
            println!("{code}");
            Ok(ExitCode::SUCCESS)
        }
        AuthCommand::HashPassword => {
            let config = super::common::load_config(config_path)?;
            let password = read_password("Password: ")?;
            let passwords = Passwords::new(&config.auth.password);
            passwords.check_policy(&password, &[])?;
            println!("{}", passwords.hash(&password)?);
            Ok(ExitCode::SUCCESS)
        }
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
