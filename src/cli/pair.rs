//! `aisopod pair start | list | confirm | revoke`: pairing phones from the console.
//!
//! Offers and confirmations live in the running gateway, so `start` and `confirm` go
//! through its admin socket; `list` and `revoke` also work on the store when no gateway
//! runs. The offer's secret is printed once, inside the QR payload.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::admin::{AdminRequest, AdminResponse};
use crate::audit::escape_control;
use crate::auth::scopes::Scopes;

#[derive(Debug, Subcommand)]
pub enum PairCommand {
    /// Open a pairing offer and print the QR payload (one offer at a time)
    Start {
        /// Scopes the paired device gets (default chat:read,chat:write)
        #[arg(long, value_name = "A,B")]
        scopes: Option<String>,
        /// How long the offer lives (default [pairing] offer_ttl, at most 10m)
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
        /// Where phones reach this gateway, HOST[:PORT] (default: [server] public_url,
        /// else HOSTNAME.local with the configured port)
        #[arg(long)]
        host: Option<String>,
        /// The account the device will act for (default: the only administrator)
        #[arg(long)]
        owner: Option<String>,
        /// End an offer that is still open instead of refusing
        #[arg(long)]
        replace: bool,
        #[arg(long)]
        json: bool,
        /// Write the display's frame as a PNG
        #[arg(long, value_name = "PATH")]
        png: Option<PathBuf>,
    },
    /// List paired devices, the open offer and claims waiting for confirmation
    List {
        #[arg(long)]
        json: bool,
    },
    /// Confirm a waiting claim after comparing its code with the phone's
    Confirm { id: String },
    /// Revoke a paired device: its tokens and open connections end at once
    Revoke { id: String },
}

pub fn run(config_path: Option<&Path>, command: PairCommand) -> anyhow::Result<ExitCode> {
    let config = super::common::load_config(config_path)?;
    match command {
        PairCommand::Start {
            scopes,
            ttl,
            host,
            owner,
            replace,
            json,
            png,
        } => {
            let scopes = match scopes {
                Some(text) => Scopes::parse_list(&text).map_err(anyhow::Error::msg)?,
                None => Scopes::none(),
            };
            let issued = super::common::expect_answer!(
                super::common::dispatch(config, AdminRequest::PairStart { scopes, ttl, host, owner, replace })?,
                AdminResponse::PairingOffer(issued) => issued
            );
            if let Some(path) = &png {
                write_png(&issued, path)?;
            }
            if json {
                super::common::print_json(&issued)?;
            } else {
                println!("{}", issued.payload);
                println!(
                    "offer {} open until {}: open the URL on the phone (or scan its QR)",
                    issued.offer.id, issued.offer.expires_at
                );
            }
        }
        PairCommand::List { json } => {
            let state = super::common::expect_answer!(
                super::common::dispatch(config, AdminRequest::PairList)?,
                AdminResponse::Pairing(state) => state
            );
            if json {
                super::common::print_json(&state)?;
            } else {
                if let Some(offer) = &state.offer {
                    println!(
                        "open offer {} by {}, until {}",
                        offer.id, offer.owner, offer.expires
                    );
                }
                for claim in &state.claims {
                    println!(
                        "waiting  {}  {:<24} code {}  (aisopod pair confirm {})",
                        claim.id,
                        escape_control(&claim.device_name),
                        claim.code,
                        claim.id
                    );
                }
                for device in &state.devices {
                    println!(
                        "{}  {:<24} {:<12} {:<24} {}",
                        device.id,
                        escape_control(&device.name),
                        device.owner,
                        device.scopes,
                        if device.revoked.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                    );
                }
            }
        }
        PairCommand::Confirm { id } => {
            let device = super::common::expect_answer!(
                super::common::dispatch(config, AdminRequest::PairConfirm { id })?,
                AdminResponse::PairingConfirmed(device) => device
            );
            println!("paired {} ({})", device.id, escape_control(&device.name));
        }
        PairCommand::Revoke { id } => {
            let device = super::common::expect_answer!(
                super::common::dispatch(config, AdminRequest::PairRevoke { id })?,
                AdminResponse::DeviceRevoked(device) => device
            );
            println!("revoked {} ({})", device.id, escape_control(&device.name));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Draws the offer's screen as the display shows it and writes it as a PNG (0600: it
/// holds the secret). The offer is open by then, so a failure says so.
fn write_png(issued: &crate::admin::protocol::IssuedOffer, path: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let screen = crate::app::pairing_screen(
        crate::secret::Secret::new(issued.payload.clone()),
        issued.offer.expires,
    );
    let frame = crate::hardware::render(&screen, time::OffsetDateTime::now_utc())?;
    crate::hardware::png::write(&frame, path).with_context(|| {
        format!(
            "offer {} is open, but its picture cannot be written to {}",
            issued.offer.id,
            path.display()
        )
    })
}
