//! `aisopod policy check-command -- 'CMD'`: the command filter's verdict on one shell
//! line, for operators and scripts. Exit 0 allow, 3 approve, 4 deny, 1 on error (an
//! unreadable command is reported and still judged, never allowed), 2 on usage errors.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use crate::policy::{CommandFilter, Decision, FilterContext, Judgement};

/// Exit status for a command that needs approval.
pub const EXIT_APPROVE: u8 = 3;
/// Exit status for a denied command.
pub const EXIT_DENY: u8 = 4;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Judge a shell command line: allow (exit 0), approve (3) or deny (4)
    CheckCommand {
        /// Print {"decision","reason","rule","commands"} as JSON
        #[arg(long)]
        json: bool,
        /// Working directory the command would run in (writes there are ordinary)
        #[arg(long, value_name = "DIR")]
        workspace: Option<std::path::PathBuf>,
        /// The command line; several words are joined with spaces
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true, trailing_var_arg = true)]
        command: Vec<OsString>,
    },
}

pub fn run(config_path: Option<&Path>, command: PolicyCommand) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::CheckCommand {
            json,
            workspace,
            command,
        } => {
            let config = super::common::load_config(config_path)?;
            let context = FilterContext::for_config(&config, workspace);
            let filter = CommandFilter::from_config(&config.tools.shell, context)?;
            // Invalid UTF-8 cannot be judged faithfully: report it and deny.
            let mut words = Vec::with_capacity(command.len());
            let mut invalid = false;
            for word in &command {
                match word.to_str() {
                    Some(text) => words.push(text.to_string()),
                    None => invalid = true,
                }
            }
            if invalid {
                let judgement = Judgement {
                    decision: Decision::Deny,
                    reason: "the command is not valid UTF-8 and cannot be judged".into(),
                    rule: "input.invalid_utf8".into(),
                    commands: Vec::new(),
                };
                print(&judgement, json)?;
                eprintln!("aisopod: the command is not valid UTF-8");
                return Ok(ExitCode::from(super::common::EXIT_ERROR));
            }
            let judgement = filter.judge(&words.join(" "));
            print(&judgement, json)?;
            if judgement.rule == "input.unparseable" {
                eprintln!(
                    "aisopod: the command could not be parsed: {}",
                    judgement.reason
                );
                return Ok(ExitCode::from(super::common::EXIT_ERROR));
            }
            Ok(ExitCode::from(match judgement.decision {
                Decision::Allow => 0,
                Decision::Approve => EXIT_APPROVE,
                Decision::Deny => EXIT_DENY,
            }))
        }
    }
}

fn print(judgement: &Judgement, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(judgement)?);
    } else {
        println!(
            "{}: {} [{}]",
            judgement.decision, judgement.reason, judgement.rule
        );
    }
    Ok(())
}
