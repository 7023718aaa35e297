//! `aisopod tools run NAME --json '{...}' [--agent A]` and `aisopod tools list`.
//!
//! `run` makes one tool call from the console through the same path an agent's call
//! takes (schema, command filter, approval, sandbox or path guard, audit). With a
//! gateway running it goes through the admin socket, so approvals reach the gateway's
//! clients (`/ws`, `/api/v1/approvals`). Without one, the call runs in this process,
//! and a command that needs approval is put to the person at this terminal (refused
//! when there is none). Exit status: 0 when the tool ran, 4 when the filter or a person
//! refused it, 1 on any other error.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::admin::{self, AdminRequest, AdminResponse};
use crate::audit::escape_control;
use crate::config::{Config, DEFAULT_AGENT};
use crate::gateway::agents::Agents;
use crate::gateway::approval::{ApprovalEvent, Broker, Requester, Responder};
use crate::gateway::tools::{CONSOLE_USER, Call, CallContext, CallReport, Tools, schema};
use crate::sandbox::Runner;
use crate::server::state::Services;

/// Exit status when the filter or a person refused the call.
pub const EXIT_REFUSED: u8 = 4;

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Run one tool call (filter, approval, sandbox) and print its result as JSON
    Run(RunArgs),
    /// List the agents and the tools each may use, with their JSON schemas
    List,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The tool: code_exec, shell, read_file, write_file or list_dir
    name: String,
    /// The call's input, a JSON object (see `aisopod tools list`)
    #[arg(long, value_name = "JSON")]
    json: String,
    /// The agent the call acts for
    #[arg(long, default_value = DEFAULT_AGENT)]
    agent: String,
}

pub fn run(config_path: Option<&Path>, command: ToolsCommand) -> anyhow::Result<ExitCode> {
    let config = super::common::load_config(config_path)?;
    let mut logging = config.logging.clone();
    if std::env::var_os("AISOPOD_LOG").is_none() {
        logging.filter = "warn".into();
    }
    crate::logging::init(&logging);
    match command {
        ToolsCommand::List => list(&config),
        ToolsCommand::Run(args) => run_call(config, args),
    }
}

fn list(config: &Config) -> anyhow::Result<ExitCode> {
    let agents: Vec<Value> = config
        .agents
        .iter()
        .map(|agent| {
            serde_json::json!({
                "name": agent.name,
                "workspace": agent.workspace,
                "tools": agent.tools.iter().filter_map(|t| schema(t)).collect::<Vec<_>>(),
            })
        })
        .collect();
    super::common::print_json(&serde_json::json!({ "agents": agents }))?;
    Ok(ExitCode::SUCCESS)
}

fn run_call(config: Config, args: RunArgs) -> anyhow::Result<ExitCode> {
    let input: Value = serde_json::from_str(&args.json)
        .map_err(|e| anyhow::anyhow!("--json is not valid JSON: {e}"))?;
    if !input.is_object() {
        bail!("--json must be a JSON object such as '{{\"command\": \"ls\"}}'");
    }
    let report = match via_gateway(&config, &args, &input)? {
        Some(report) => report,
        None => run_locally(config, args, input)?,
    };
    match report {
        CallReport::Done { result, truncated } => {
            super::common::print_json(
                &serde_json::json!({ "result": result, "truncated": truncated }),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        CallReport::Refused { error } => {
            eprintln!("aisopod: {error}");
            Ok(ExitCode::from(EXIT_REFUSED))
        }
        CallReport::Failed { error } => bail!("{error}"),
    }
}

fn via_gateway(
    config: &Config,
    args: &RunArgs,
    input: &Value,
) -> anyhow::Result<Option<CallReport>> {
    let socket = admin::socket_path(config);
    if !socket.exists() {
        return Ok(None);
    }
    let sandbox = &config.tools.sandbox;
    let timeout = config.approval.timeout
        + sandbox.limits.timeout
        + sandbox.queue_timeout
        + Duration::from_secs(30);
    let request = AdminRequest::ToolRun {
        agent: args.agent.clone(),
        tool: args.name.clone(),
        input: input.clone(),
    };
    // Said as soon as the gateway asks, wherever stderr goes: otherwise a call waiting
    // for approval looks like a hang for up to the whole timeout.
    let waiting = config.approval.timeout.as_secs();
    let note = |pending: &admin::PendingApproval| {
        eprintln!(
            "aisopod: `{}` needs approval ({}); the call waits up to {waiting} s, until {}, \
             for an administrator to answer request {}: on the dashboard, over /ws, or \
             POST /api/v1/approvals/{} with an admin token (a console call belongs to no \
             user, so only admins see it in GET /api/v1/approvals)",
            escape_control(&pending.summary),
            escape_control(&pending.reason),
            pending.expires,
            pending.id,
            pending.id
        );
    };
    let Some(answer) = admin::send_noting(&socket, &request, timeout, note)? else {
        return Ok(None);
    };
    Ok(Some(super::common::expect_answer!(
        answer?,
        AdminResponse::ToolRun(report) => report
    )))
}

fn run_locally(config: Config, args: RunArgs, input: Value) -> anyhow::Result<CallReport> {
    let runner = if config.tools.sandbox.enabled {
        Runner::from_config(&config).map_err(|e| e.to_string())
    } else {
        Err("code execution is disabled ([tools.sandbox] enabled = false)".into())
    };
    let timeout = config.approval.timeout;
    let services = super::common::open_services(config, super::common::Create::Quietly)?;
    let agents = Agents::open(
        &services.store,
        services.config.agents.clone(),
        services
            .config
            .providers
            .iter()
            .map(|p| p.name.clone())
            .collect(),
        &services.config.storage.data_dir,
    )?;
    let tools = Tools::new(&services.config, &services.store, Arc::new(agents))?;
    let broker = Broker::new(timeout, services.clock.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let call = Call {
        requester: Requester {
            user: CONSOLE_USER.into(),
            agent: args.agent.clone(),
            session: Some(super::common::cli_actor()),
        },
        agent: args.agent,
        tool: args.name,
        input,
    };
    let report = runtime.block_on(async {
        let ctx = CallContext {
            audit: &services.audit,
            approvals: &broker,
            runner: runner.as_ref().map_err(String::as_str),
        };
        let events = broker.subscribe();
        tokio::select! {
            result = tools.call(ctx, call) => CallReport::from(result),
            never = ask_at_terminal(&broker, &services, events) => match never {},
        }
    });
    Ok(report)
}

/// Puts each approval request to the person at this terminal, if there is one.
async fn ask_at_terminal(
    broker: &Broker,
    services: &Services,
    mut events: tokio::sync::broadcast::Receiver<ApprovalEvent>,
) -> std::convert::Infallible {
    loop {
        let Ok(event) = events.recv().await else {
            return std::future::pending().await;
        };
        let ApprovalEvent::Requested(request) = event else {
            continue;
        };
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "aisopod: {} needs approval ({}) and no gateway is running to ask a person; waiting {} s, then it is denied",
                escape_control(&request.input.summary),
                escape_control(&request.reason),
                broker.timeout().as_secs()
            );
            continue;
        }
        eprint!(
            "aisopod: {} wants to run:\n    {}\n  because: {} ({})\n  allow? [y]es / [N]o{} ",
            escape_control(&request.requester.agent),
            escape_control(&request.input.summary),
            escape_control(&request.reason),
            request.rule,
            if request.remember_offered {
                " / [r]emember for this agent"
            } else {
                ""
            }
        );
        let _ = std::io::stderr().flush();
        let answer = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map(|_| line)
        })
        .await;
        let answer = match answer {
            Ok(Ok(line)) => line.trim().to_ascii_lowercase(),
            _ => String::new(),
        };
        let (allow, remember) = match answer.as_str() {
            "y" | "yes" => (true, false),
            "r" | "remember" if request.remember_offered => (true, true),
            _ => (false, false),
        };
        let responder = Responder {
            actor: super::common::cli_actor(),
            username: CONSOLE_USER.into(),
            admin: true,
        };
        if let Err(err) = broker.respond(
            &services.audit,
            &request.id,
            &responder,
            allow,
            remember,
            Some(&request.input_hash),
        ) {
            eprintln!("aisopod: {err}");
        }
    }
}
