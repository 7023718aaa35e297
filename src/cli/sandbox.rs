//! `aisopod sandbox run | check`.
//!
//! `run` goes through a running gateway's admin socket when one answers (so the run
//! uses the service's sandbox, its delegated cgroup and its audit log) and otherwise
//! runs the sandbox in this process and audits into the store. Its exit status is the
//! program's, 124 when the timeout ended it and 137 when a limit killed it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};

use crate::admin::{self, AdminRequest, AdminResponse};
use crate::config::{self, Config};
use crate::sandbox::spec::{Reason, ranges};
use crate::sandbox::{FileData, Language, RunOutcome, RunRequest, Runner, check};

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Run a program in the sandbox (code from --code or stdin)
    Run(RunArgs),
    /// Report what this kernel offers the sandbox, and whether code execution works
    Check {
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Lang {
    Python,
    Javascript,
    Bash,
}

impl From<Lang> for Language {
    fn from(lang: Lang) -> Language {
        match lang {
            Lang::Python => Language::Python,
            Lang::Javascript => Language::Javascript,
            Lang::Bash => Language::Bash,
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The program's language
    #[arg(long, value_enum)]
    lang: Lang,
    /// The program (default: read from stdin)
    #[arg(long)]
    code: Option<String>,
    /// Wall-clock limit, in seconds or with a unit ("5s", "2m")
    #[arg(long, value_name = "S", value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// Memory limit, such as "128m"
    #[arg(long, value_name = "M", value_parser = parse_memory)]
    memory: Option<u64>,
    /// Share the host's network instead of an empty network namespace
    #[arg(long)]
    network: bool,
    /// Copy a file into the working directory as NAME (repeatable)
    #[arg(long = "file", value_name = "NAME=PATH")]
    files: Vec<String>,
    /// Print {exit_code, reason, stdout, stderr, truncated, duration_ms, peak_memory, files} as JSON
    #[arg(long)]
    json: bool,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    let value = config::parse_duration(text)?;
    let (min, max) = ranges::TIMEOUT;
    if value < min || value > max {
        return Err(format!(
            "{} is out of range: must be between {} and {}",
            humantime::format_duration(value),
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(value)
}

fn parse_memory(text: &str) -> Result<u64, String> {
    let value = config::parse_size(text)?;
    let (min, max) = ranges::MEMORY;
    if value < min || value > max {
        return Err(format!(
            "{text} is out of range: must be between 16m and 64g"
        ));
    }
    Ok(value)
}

pub fn run(config_path: Option<&Path>, command: SandboxCommand) -> anyhow::Result<ExitCode> {
    let config = super::common::load_config(config_path)?;
    crate::logging::init(&quiet_logging(&config));
    match command {
        SandboxCommand::Run(args) => run_program(config, args),
        SandboxCommand::Check { json } => check(config, json),
    }
}

/// The CLI prints the program's output; its own log lines would mix into it.
fn quiet_logging(config: &Config) -> config::LoggingConfig {
    let mut logging = config.logging.clone();
    if std::env::var_os("AISOPOD_LOG").is_none() {
        logging.filter = "warn".into();
    }
    logging
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run_program(config: Config, args: RunArgs) -> anyhow::Result<ExitCode> {
    let code = match args.code {
        Some(code) => code.into_bytes(),
        None => {
            let mut code = Vec::new();
            std::io::stdin()
                .take(ranges::MAX_CODE.1 + 1)
                .read_to_end(&mut code)
                .context("reading the program from stdin")?;
            code
        }
    };
    let mut request = RunRequest::new(args.lang.into(), code);
    request.timeout = args.timeout;
    request.memory = args.memory;
    request.network = args.network.then_some(true);
    let max_file = config.tools.sandbox.limits.max_file_size;
    for spec in &args.files {
        request.files.push(read_input_file(spec, max_file)?);
    }
    let json = args.json;
    let outcome = match via_gateway(&config, &request)? {
        Some(outcome) => outcome,
        None => run_locally(config, request)?,
    };
    print_outcome(&outcome, json)?;
    Ok(ExitCode::from(
        u8::try_from(outcome.exit_code.clamp(0, 255)).unwrap_or(1),
    ))
}

fn read_input_file(spec: &str, max: u64) -> anyhow::Result<FileData> {
    let Some((name, path)) = spec.split_once('=') else {
        bail!("--file {spec:?}: write NAME=PATH");
    };
    let path = PathBuf::from(path);
    let meta = std::fs::metadata(&path)
        .with_context(|| format!("--file {name}: cannot read {}", path.display()))?;
    if meta.len() > max {
        bail!(
            "--file {name}: {} is {} bytes, more than the limit of {max} ([tools.sandbox] max_output)",
            path.display(),
            meta.len()
        );
    }
    let data = std::fs::read(&path)
        .with_context(|| format!("--file {name}: cannot read {}", path.display()))?;
    Ok(FileData {
        name: name.to_string(),
        data,
    })
}

/// Runs through a live gateway; `None` when none answers.
fn via_gateway(config: &Config, request: &RunRequest) -> anyhow::Result<Option<RunOutcome>> {
    let socket = admin::socket_path(config);
    if !socket.exists() {
        return Ok(None);
    }
    let timeout = request
        .timeout
        .unwrap_or(config.tools.sandbox.limits.timeout)
        + config.tools.sandbox.queue_timeout
        + Duration::from_secs(30);
    let message = AdminRequest::SandboxRun {
        run: request.clone(),
    };
    let Some(answer) = admin::send(&socket, &message, timeout)? else {
        return Ok(None);
    };
    Ok(Some(super::common::expect_answer!(
        answer?,
        AdminResponse::SandboxRun(outcome) => outcome
    )))
}

fn run_locally(config: Config, request: RunRequest) -> anyhow::Result<RunOutcome> {
    let runner = Runner::from_config(&config)?;
    let services = super::common::open_services(config, super::common::Create::Quietly)?;
    let outcome =
        runtime()?.block_on(runner.run(&services.audit, &super::common::cli_actor(), request))?;
    Ok(outcome)
}

fn print_outcome(outcome: &RunOutcome, json: bool) -> anyhow::Result<()> {
    if json {
        return super::common::print_json(&serde_json::to_value(outcome).context("encoding JSON")?);
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&outcome.stdout)?;
    stdout.flush()?;
    let mut stderr = std::io::stderr().lock();
    stderr.write_all(&outcome.stderr)?;
    let note = match outcome.reason {
        Reason::Timeout => Some("the run timed out and was killed".to_string()),
        Reason::Memory => Some("the run reached its memory limit and was killed".to_string()),
        Reason::Pids => Some("the run reached its process limit and was killed".to_string()),
        Reason::Exited | Reason::Signal => None,
    };
    if let Some(note) = note {
        writeln!(stderr, "aisopod: {note}")?;
    }
    if outcome.truncated {
        writeln!(
            stderr,
            "aisopod: output was cut at the limit ([tools.sandbox] max_output)"
        )?;
    }
    if !outcome.files.is_empty() {
        writeln!(
            stderr,
            "aisopod: the program wrote {} file(s); --json returns them",
            outcome.files.len()
        )?;
    }
    Ok(())
}

fn check(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let sandbox = config.tools.sandbox.clone();
    let runner = Runner::from_config(&config).map_err(|e| e.to_string());
    let trial = match &runner {
        Ok(runner) if sandbox.enabled => Some(
            runtime()?
                .block_on(runner.self_test())
                .map_err(|e| e.to_string())
                .and_then(|outcome| {
                    if outcome.exit_code == 0 && outcome.stdout.starts_with(b"ok") {
                        Ok(())
                    } else {
                        Err(format!(
                            "the test program ended with {} ({}): {}",
                            outcome.exit_code,
                            outcome.reason.name(),
                            String::from_utf8_lossy(&outcome.stderr).trim()
                        ))
                    }
                }),
        ),
        _ => None,
    };
    let report = check::survey(&sandbox, runner.as_ref().map_err(Clone::clone), trial);
    if json {
        super::common::print_json(&serde_json::to_value(&report).context("encoding JSON")?)?;
    } else {
        print!("{}", report.render());
    }
    Ok(if report.code_execution {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::common::EXIT_ERROR)
    })
}
