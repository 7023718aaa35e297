//! `aisopod user add | list | passwd | remove | disable | enable | unlock`.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use crate::admin::{AdminRequest, AdminResponse};
use crate::audit::escape_control;
use crate::auth::scopes::Scopes;
use crate::auth::users::UserView;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account (the password is prompted for, or read from stdin with --password-stdin)
    Add {
        name: String,
        /// Give the account every scope (the first account should be an administrator)
        #[arg(long)]
        admin: bool,
        /// Scopes for a non-admin account, comma-separated (chat:read,chat:write,...)
        #[arg(long, conflicts_with = "admin")]
        scopes: Option<String>,
        /// Read the password from stdin instead of prompting
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts
    List {
        #[arg(long)]
        json: bool,
    },
    /// Set a new password; every session and token of the account is revoked
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove an account and revoke everything it holds
    Remove { name: String },
    /// Disable an account and revoke everything it holds
    Disable { name: String },
    /// Enable a disabled account
    Enable { name: String },
    /// End a login lockout
    Unlock { name: String },
}

pub fn run(config_path: Option<&Path>, command: UserCommand) -> anyhow::Result<ExitCode> {
    let config = super::common::load_config(config_path)?;
    crate::logging::init_cli();
    let (request, verb) = match command {
        UserCommand::Add {
            name,
            admin,
            scopes,
            password_stdin,
        } => {
            let scopes = match (admin, scopes) {
                (true, _) => Scopes::all(),
                (false, Some(list)) => Scopes::parse_list(&list).map_err(anyhow::Error::msg)?,
                (false, None) => Scopes::parse_list("chat:read,chat:write,agent:read")
                    .map_err(anyhow::Error::msg)?,
            };
            let password = super::auth::read_password_twice(password_stdin)?;
            (
                AdminRequest::UserAdd {
                    name,
                    password,
                    scopes,
                },
                "created",
            )
        }
        UserCommand::List { json } => {
            let users: Vec<UserView> = super::common::expect_answer!(
                super::common::dispatch(config, AdminRequest::UserList)?,
                AdminResponse::Users(users) => users
            );
            if json {
                super::common::print_json(&users)?;
            } else {
                for user in users {
                    let state = match (&user.locked_until, user.disabled) {
                        (_, true) => "disabled".to_string(),
                        (Some(until), false) => format!("locked until {until}"),
                        (None, false) => "active".to_string(),
                    };
                    let name = escape_control(&user.username);
                    println!("{name:<24} {state:<28} {}", user.scopes);
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let password = super::auth::read_password_twice(password_stdin)?;
            (
                AdminRequest::UserPasswd { name, password },
                "password changed; every session and token revoked for",
            )
        }
        UserCommand::Remove { name } => (AdminRequest::UserRemove { name }, "removed"),
        UserCommand::Disable { name } => (
            AdminRequest::UserDisable {
                name,
                disabled: true,
            },
            "disabled",
        ),
        UserCommand::Enable { name } => (
            AdminRequest::UserDisable {
                name,
                disabled: false,
            },
            "enabled",
        ),
        UserCommand::Unlock { name } => (AdminRequest::UserUnlock { name }, "unlocked"),
    };
    let user = super::common::expect_answer!(
        super::common::dispatch(config, request)?,
        AdminResponse::User(user) => user
    );
    println!("{verb} {}", user.username);
    Ok(ExitCode::SUCCESS)
}
