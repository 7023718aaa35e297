//! How hard a password is to guess: zxcvbn's estimate, made where its tables cannot stay.
//!
//! zxcvbn builds its dictionaries (about 95,000 common passwords, words and names) into
//! hash maps on first use and keeps them for the life of the process: about 8 MB of a
//! gateway that otherwise idles near 3, for a check that runs when an account is made
//! or a password changed. So a running gateway asks a short-lived child, this same
//! binary started with [`HELPER_ARG`], which builds the tables, answers one estimate and
//! exits, taking them with it. Commands that end anyway (the CLI offline) estimate in
//! their own process. The password travels over the child's stdin, never its arguments
//! or environment; the child has an empty environment and a deadline. If the child
//! cannot answer, the estimate is made in-process (correct, only larger) and that is
//! logged. This module never logs or returns a password; [`super::password`] decides
//! what the estimate means.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The first argument that makes the binary a strength helper instead of the CLI.
pub const HELPER_ARG: &str = "__aisopod-password-strength";
/// The longest request a helper reads: a capped password and a few context words.
const MAX_REQUEST: u64 = 64 * 1024;
/// How long a helper may take before it is killed and the estimate made in-process.
const HELPER_DEADLINE: Duration = Duration::from_secs(10);

/// Where estimates are made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Estimator {
    /// In this process; the tables stay once built.
    #[default]
    InProcess,
    /// In a child: `program` started with [`HELPER_ARG`].
    Helper(PathBuf),
}

#[derive(Serialize, Deserialize)]
struct Request {
    password: String,
    context: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Answer {
    guesses_log10: f64,
}

impl Estimator {
    /// log10 of the guesses zxcvbn estimates `password` needs; `context` holds words it
    /// must not be built from.
    pub fn guesses_log10(&self, password: &Secret, context: &[&str]) -> f64 {
        match self {
            Estimator::InProcess => in_process(password.expose(), context),
            Estimator::Helper(program) => match ask_helper(program, password, context) {
                Ok(answer) => answer,
                Err(reason) => {
                    tracing::warn!(%reason, helper = %program.display(), "the password strength helper failed; estimating in this process");
                    in_process(password.expose(), context)
                }
            },
        }
    }
}

fn in_process(password: &str, context: &[&str]) -> f64 {
    zxcvbn::zxcvbn(password, context).guesses_log10()
}

fn ask_helper(program: &Path, password: &Secret, context: &[&str]) -> Result<f64, String> {
    let request = Secret::new(
        serde_json::to_string(&Request {
            password: password.expose().to_string(),
            context: context.iter().map(|c| c.to_string()).collect(),
        })
        .map_err(|e| e.to_string())?,
    );
    let mut child = Command::new(program)
        .arg(HELPER_ARG)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start it: {e}"))?;
    let written = child.stdin.take().ok_or("no stdin").and_then(|mut stdin| {
        stdin
            .write_all(request.expose().as_bytes())
            .map_err(|_| "cannot write to it")
    });
    let deadline = Instant::now() + HELPER_DEADLINE;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("it did not answer in time".into());
            }
        }
    };
    written?;
    let mut output = String::new();
    child
        .stdout
        .take()
        .ok_or("no stdout")?
        .take(4096)
        .read_to_string(&mut output)
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("it exited with {status}"));
    }
    let answer: Answer =
        serde_json::from_str(output.trim()).map_err(|_| "its answer is malformed".to_string())?;
    if answer.guesses_log10.is_finite() {
        Ok(answer.guesses_log10)
    } else {
        Err("its answer is not a number".into())
    }
}

/// Whether this process was started as a strength helper.
pub fn is_helper(args: &[std::ffi::OsString]) -> bool {
    args.get(1).is_some_and(|arg| arg == HELPER_ARG)
}

/// The helper: reads one request from stdin, prints the estimate, exits.
pub fn helper_main() -> ExitCode {
    let mut raw = String::new();
    let read = std::io::stdin().take(MAX_REQUEST).read_to_string(&mut raw);
    let raw = Secret::new(raw);
    let Ok(_) = read else {
        return ExitCode::FAILURE;
    };
    let Ok(request) = serde_json::from_str::<Request>(raw.expose()) else {
        return ExitCode::FAILURE;
    };
    let password = Secret::new(request.password);
    let context: Vec<&str> = request.context.iter().map(String::as_str).collect();
    let answer = Answer {
        guesses_log10: in_process(password.expose(), &context),
    };
    match serde_json::to_string(&answer) {
        Ok(line) if writeln!(std::io::stdout(), "{line}").is_ok() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
