//! [`Runner`]: the async API the gateway's tools (and the CLI) run code through.
//!
//! A run is checked (language, program, files, limits) before anything is created,
//! waits for one of `max_concurrent` slots (up to `queue_timeout`, then "busy"), gets a
//! cgroup, and is started through the launcher. While it runs, the runner reads its
//! output up to `max_output` per stream, polls the cgroup for OOM and process-limit
//! events, and enforces the wall-clock timeout; any of these kills the whole cgroup.
//! Afterwards the cgroup is removed on every path, and one audit record says who ran
//! what (a hash of the code, never the code), under which limits, and how it ended.
//! This module never parses flags or prints; callers format the [`RunOutcome`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Semaphore;

use super::cgroups::{self, CgroupManager, RunCgroup};
use super::error::SandboxError;
use super::launcher;
use super::protocol::{LaunchSpec, Report, read_message_async};
use super::spec::{
    EXIT_KILLED, EXIT_TIMEOUT, FileData, Language, Limits, Reason, RunOutcome, RunRequest,
    collect_files,
};
use crate::audit::{Audit, AuditEvent, Outcome};
use crate::config::{Config, SandboxConfig, SandboxRuntime, SecurityMode};

/// How often a running run's cgroup is checked for limit events.
const POLL: Duration = Duration::from_millis(25);
/// How long output may keep arriving after the run's processes are gone.
const DRAIN: Duration = Duration::from_secs(5);

/// Runs programs in the sandbox; one per gateway (or CLI invocation).
#[derive(Debug)]
pub struct Runner {
    config: SandboxConfig,
    exe: PathBuf,
    cgroups: Option<Arc<dyn CgroupManager>>,
    permits: Arc<Semaphore>,
    counter: AtomicU64,
}

impl Runner {
    /// A runner for the configuration, on this host's cgroup hierarchy, starting the
    /// helper from `/proc/self/exe`.
    pub fn from_config(config: &Config) -> Result<Runner, SandboxError> {
        Runner::from_config_with_helper(config, PathBuf::from("/proc/self/exe"))
    }

    /// [`Runner::from_config`] starting the helper from `exe`, for a gateway that runs
    /// inside another program and so cannot re-execute itself.
    pub fn from_config_with_helper(config: &Config, exe: PathBuf) -> Result<Runner, SandboxError> {
        let sandbox = &config.tools.sandbox;
        let cgroups = if sandbox.enabled && sandbox.runtime == SandboxRuntime::Namespaces {
            Some(cgroups::detect(Path::new("/proc/self"), sandbox.cgroup)?)
        } else {
            None
        };
        Runner::new(sandbox, config.security.mode, exe, cgroups)
    }

    /// A runner with an explicit helper binary and cgroup manager (tests inject both).
    /// Strict mode refuses a cgroup manager that cannot enforce every limit.
    pub fn new(
        config: &SandboxConfig,
        mode: SecurityMode,
        exe: PathBuf,
        cgroups: Option<Box<dyn CgroupManager>>,
    ) -> Result<Runner, SandboxError> {
        let cgroups: Option<Arc<dyn CgroupManager>> = cgroups.map(Arc::from);
        if let Some(manager) = &cgroups {
            let missing = manager.enforced().missing();
            if !missing.is_empty() {
                let message = format!(
                    "the cgroup {} controller(s) {} are not available, so runs would not be limited{}",
                    match manager.version() {
                        cgroups::CgroupVersion::V1 => "v1",
                        cgroups::CgroupVersion::V2 => "v2",
                    },
                    missing.join(", "),
                    if missing.contains(&"memory") {
                        " (on a Raspberry Pi, add cgroup_enable=memory to /boot/firmware/cmdline.txt)"
                    } else {
                        ""
                    }
                );
                if mode == SecurityMode::Strict {
                    return Err(SandboxError::Unavailable(message));
                }
                tracing::warn!("{message}");
            }
            let swept = manager.sweep();
            if swept > 0 {
                tracing::info!(swept, "removed sandbox cgroups left by a previous run");
            }
        }
        Ok(Runner {
            config: config.clone(),
            exe,
            cgroups,
            permits: Arc::new(Semaphore::new(config.max_concurrent)),
            counter: AtomicU64::new(1),
        })
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    pub fn cgroups(&self) -> Option<&dyn CgroupManager> {
        self.cgroups.as_deref()
    }

    /// Runs one request for `actor` and writes its audit record.
    pub async fn run(
        &self,
        audit: &Audit,
        actor: &str,
        request: RunRequest,
    ) -> Result<RunOutcome, SandboxError> {
        let started = Instant::now();
        let result = self.run_unaudited(&request).await;
        record(
            audit,
            audit_event(
                actor,
                &request,
                &self.config.limits,
                &result,
                started.elapsed(),
            ),
        );
        result
    }

    /// Runs a fixed, harmless program in the first allowed language that is installed,
    /// to prove the whole chain works on this host (`sandbox check`, gateway start).
    pub async fn self_test(&self) -> Result<RunOutcome, SandboxError> {
        let language = self
            .config
            .allowed_languages
            .iter()
            .copied()
            .find(|l| l.find_interpreter().is_ok())
            .ok_or_else(|| {
                SandboxError::Unavailable(
                    "no allowed language has its interpreter installed".into(),
                )
            })?;
        let code = match language {
            Language::Python => "print('ok')",
            Language::Javascript => "console.log('ok')",
            Language::Bash => "echo ok",
        };
        self.run_unaudited(&RunRequest::new(language, code)).await
    }

    async fn run_unaudited(&self, request: &RunRequest) -> Result<RunOutcome, SandboxError> {
        if !self.config.enabled {
            return Err(SandboxError::Disabled);
        }
        if !self.config.allowed_languages.contains(&request.language) {
            return Err(SandboxError::LanguageNotAllowed {
                language: request.language,
                allowed: format!(
                    "[{}]",
                    self.config
                        .allowed_languages
                        .iter()
                        .map(|l| format!("{:?}", l.name()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        let limits = request.limits(&self.config.limits)?;
        request.check(self.config.max_code, &limits)?;
        let interpreter = request.language.find_interpreter()?;
        let _permit = match tokio::time::timeout(
            self.config.queue_timeout,
            self.permits.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            _ => {
                return Err(SandboxError::Busy {
                    running: self.config.max_concurrent,
                    waited: self.config.queue_timeout,
                });
            }
        };
        match self.config.runtime {
            SandboxRuntime::Namespaces => self.run_isolated(request, interpreter, limits).await,
            SandboxRuntime::None => self.run_bare(request, interpreter, limits).await,
        }
    }

    async fn run_isolated(
        &self,
        request: &RunRequest,
        interpreter: PathBuf,
        limits: Limits,
    ) -> Result<RunOutcome, SandboxError> {
        let manager = self
            .cgroups
            .clone()
            .ok_or_else(|| SandboxError::Unavailable("no cgroup hierarchy was found".into()))?;
        let name = cgroups::run_name(self.counter.fetch_add(1, Ordering::Relaxed));
        let run = blocking({
            let manager = manager.clone();
            let limits = limits.clone();
            move || manager.create(&name, &limits)
        })
        .await??;
        let mut guard = CgroupGuard {
            manager: manager.clone(),
            run: Some(run.clone()),
        };
        let spec = LaunchSpec {
            parent_pid: std::process::id(),
            cgroup_procs: run.procs_files(),
            language: request.language,
            interpreter,
            program: FileData {
                name: request.language.file_name().to_string(),
                data: request.code.clone(),
            },
            files: request.files.clone(),
            limits: limits.clone(),
        };
        let started = Instant::now();
        let supervised = self.supervise(&manager, &run, &spec).await;
        let peak_memory = manager.peak_memory(&run);
        let removed = guard.remove().await;
        let mut outcome = supervised?;
        removed?;
        outcome.duration_ms = started.elapsed().as_millis() as u64;
        outcome.peak_memory = peak_memory;
        Ok(outcome)
    }

    async fn supervise(
        &self,
        manager: &Arc<dyn CgroupManager>,
        run: &RunCgroup,
        spec: &LaunchSpec,
    ) -> Result<RunOutcome, SandboxError> {
        let limits = &spec.limits;
        let deadline = tokio::time::sleep(limits.timeout);
        tokio::pin!(deadline);
        let inside = match manager.version() {
            cgroups::CgroupVersion::V2 => run.dirs.first().map(PathBuf::as_path),
            cgroups::CgroupVersion::V1 => None,
        };
        let launched = launcher::launch(&self.exe, spec, inside).await?;
        let launcher::Launched {
            mut process,
            control,
            stdout,
            stderr,
        } = launched;
        let stdout = tokio::spawn(read_capped(stdout, limits.max_output));
        let stderr = tokio::spawn(read_capped(stderr, limits.max_output));
        let max_report = report_limit(limits);
        let reports = tokio::spawn(async move {
            let mut control = control;
            let mut reports = Vec::new();
            while let Ok(Some(report)) =
                read_message_async::<Report>(&mut control, max_report).await
            {
                reports.push(report);
            }
            reports
        });

        let mut tick = tokio::time::interval(POLL);
        let mut killed: Option<Reason> = None;
        let status = loop {
            tokio::select! {
                status = process.wait() => break status.ok(),
                _ = &mut deadline, if killed.is_none() => {
                    killed = Some(Reason::Timeout);
                    kill(manager, run).await?;
                }
                _ = tick.tick(), if killed.is_none() => {
                    let events = manager.events(run);
                    if events.oom_kills > 0 || events.pids_max > 0 {
                        killed = Some(if events.oom_kills > 0 { Reason::Memory } else { Reason::Pids });
                        kill(manager, run).await?;
                    }
                }
            }
        };
        // The helper is gone; nothing of the run may be left, so the pipes close.
        kill(manager, run).await?;
        let reports = reports.await.unwrap_or_default();
        let drained = tokio::time::timeout(DRAIN, async { (stdout.await, stderr.await) }).await;
        let ((stdout, stdout_cut), (stderr, stderr_cut)) = match drained {
            Ok((Ok(out), Ok(err))) => (out, err),
            _ => ((Vec::new(), true), (Vec::new(), true)),
        };
        let events = manager.events(run);
        let exited = reports.iter().find_map(|r| match r {
            Report::Exited {
                code,
                signal,
                files,
                files_dropped,
            } => Some((*code, *signal, files.clone(), *files_dropped)),
            _ => None,
        });
        let failed = reports.iter().find_map(|r| match r {
            Report::Failed { stage, message } => Some((stage.clone(), message.clone())),
            _ => None,
        });
        let (exit_code, reason, files, files_dropped) = match (killed, exited, failed) {
            (Some(Reason::Timeout), _, _) => (EXIT_TIMEOUT, Reason::Timeout, Vec::new(), 0),
            (Some(reason), _, _) => (EXIT_KILLED, reason, Vec::new(), 0),
            (None, _, Some((stage, message))) => {
                return Err(SandboxError::Setup { stage, message });
            }
            (None, Some((_, Some(_), _, _)), _) if events.oom_kills > 0 => {
                (EXIT_KILLED, Reason::Memory, Vec::new(), 0)
            }
            (None, Some((Some(code), _, files, dropped)), _) => {
                (code, Reason::Exited, files, dropped)
            }
            (None, Some((_, Some(signal), files, dropped)), _) => {
                (128 + signal, Reason::Signal, files, dropped)
            }
            (None, None, None) if events.oom_kills > 0 => {
                (EXIT_KILLED, Reason::Memory, Vec::new(), 0)
            }
            _ => {
                return Err(SandboxError::Protocol(format!(
                    "the helper ended ({}) without reporting how the program ended",
                    status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "status unknown".into())
                )));
            }
        };
        let files = sanitize_files(files, limits);
        Ok(RunOutcome {
            exit_code,
            reason,
            stdout,
            stderr,
            truncated: stdout_cut || stderr_cut,
            duration_ms: 0,
            peak_memory: None,
            files_dropped,
            files,
        })
    }

    /// `runtime = "none"`: the interpreter runs as the gateway's user in a private
    /// directory, with the timeout and output caps but no isolation (local mode only).
    async fn run_bare(
        &self,
        request: &RunRequest,
        interpreter: PathBuf,
        limits: Limits,
    ) -> Result<RunOutcome, SandboxError> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!(
            "aisopod-run-{}-{}",
            std::process::id(),
            self.counter.fetch_add(1, Ordering::Relaxed)
        ));
        let io = |op: &'static str| {
            let dir = dir.clone();
            move |source: std::io::Error| SandboxError::Setup {
                stage: op.to_string(),
                message: format!("{}: {source}", dir.display()),
            }
        };
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io("create the run directory"))?;
        let program = FileData {
            name: request.language.file_name().to_string(),
            data: request.code.clone(),
        };
        let mut inputs = request.files.clone();
        inputs.push(program);
        let result = async {
            for file in &inputs {
                std::fs::write(dir.join(&file.name), &file.data)
                    .map_err(io("write an input file"))?;
            }
            let started = Instant::now();
            let mut child = tokio::process::Command::new(&interpreter)
                .args(request.language.interpreter_args())
                .arg(dir.join(request.language.file_name()))
                .current_dir(&dir)
                .env_clear()
                .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                .env("HOME", &dir)
                .env("TMPDIR", &dir)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .map_err(|source| SandboxError::Spawn {
                    exe: interpreter.clone(),
                    source,
                })?;
            let stdout = child
                .stdout
                .take()
                .map(|o| tokio::spawn(read_capped(o, limits.max_output)));
            let stderr = child
                .stderr
                .take()
                .map(|e| tokio::spawn(read_capped(e, limits.max_output)));
            let status = tokio::time::timeout(limits.timeout, child.wait()).await;
            let group = child
                .id()
                .map(|id| nix::unistd::Pid::from_raw(-(id as i32)));
            if let Some(group) = group {
                let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            }
            let (exit_code, reason) = match status {
                Err(_) => {
                    let _ = child.wait().await;
                    (EXIT_TIMEOUT, Reason::Timeout)
                }
                Ok(Ok(status)) => {
                    use std::os::unix::process::ExitStatusExt;
                    match (status.code(), status.signal()) {
                        (Some(code), _) => (code, Reason::Exited),
                        (None, Some(signal)) => (128 + signal, Reason::Signal),
                        _ => (EXIT_KILLED, Reason::Signal),
                    }
                }
                Ok(Err(source)) => {
                    return Err(SandboxError::Spawn {
                        exe: interpreter.clone(),
                        source,
                    });
                }
            };
            let join = |task: Option<tokio::task::JoinHandle<(Vec<u8>, bool)>>| async move {
                match task {
                    Some(task) => tokio::time::timeout(DRAIN, task)
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or((Vec::new(), true)),
                    None => (Vec::new(), false),
                }
            };
            let (stdout, stdout_cut) = join(stdout).await;
            let (stderr, stderr_cut) = join(stderr).await;
            let (files, files_dropped) = if reason == Reason::Timeout {
                (Vec::new(), 0)
            } else {
                collect_files(&dir, &inputs, &limits)
            };
            Ok(RunOutcome {
                exit_code,
                reason,
                stdout,
                stderr,
                truncated: stdout_cut || stderr_cut,
                duration_ms: started.elapsed().as_millis() as u64,
                peak_memory: None,
                files,
                files_dropped,
            })
        }
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        result
    }
}

/// Removes the run's cgroup on every path, including a cancelled future.
struct CgroupGuard {
    manager: Arc<dyn CgroupManager>,
    run: Option<RunCgroup>,
}

impl CgroupGuard {
    async fn remove(&mut self) -> Result<(), SandboxError> {
        let Some(run) = self.run.take() else {
            return Ok(());
        };
        let manager = self.manager.clone();
        blocking(move || manager.remove(&run))
            .await?
            .map_err(SandboxError::from)
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        if let Some(run) = self.run.take()
            && let Err(err) = self.manager.remove(&run)
        {
            tracing::error!(cgroup = %run.name, error = %err, "cannot remove a sandbox cgroup");
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SandboxError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SandboxError::Protocol(format!("a background task failed: {e}")))
}

async fn kill(manager: &Arc<dyn CgroupManager>, run: &RunCgroup) -> Result<(), SandboxError> {
    let manager = manager.clone();
    let run = run.clone();
    blocking(move || manager.kill(&run))
        .await?
        .map_err(SandboxError::from)
}

/// Reads a stream to its end, keeping the first `max` bytes; true when more came.
async fn read_capped(mut reader: impl AsyncRead + Unpin, max: u64) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = (max as usize).saturating_sub(kept.len());
                let take = n.min(room);
                kept.extend_from_slice(buf.get(..take).unwrap_or_default());
                if n > take {
                    truncated = true;
                }
            }
        }
    }
    (kept, truncated)
}

/// The largest report a run may send: every output file at its largest, in base64.
fn report_limit(limits: &Limits) -> u32 {
    let files = (limits.max_files as u64 + 1).saturating_mul(limits.max_file_size);
    u32::try_from(files.saturating_mul(4) / 3 + (1 << 20)).unwrap_or(super::protocol::MAX_MESSAGE)
}

/// Re-checks what came back from inside the run against the caps.
fn sanitize_files(files: Vec<FileData>, limits: &Limits) -> Vec<FileData> {
    files
        .into_iter()
        .filter(|f| {
            super::spec::check_file_name(&f.name).is_ok()
                && f.data.len() as u64 <= limits.max_file_size
        })
        .take(limits.max_files)
        .collect()
}

/// Writes the audit record; the fsync blocks, so a multi-threaded runtime is told.
fn record(audit: &Audit, event: AuditEvent) {
    let write = || audit.record_or_log(event);
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(write)
        }
        _ => write(),
    }
}

fn audit_event(
    actor: &str,
    request: &RunRequest,
    configured: &Limits,
    result: &Result<RunOutcome, SandboxError>,
    elapsed: Duration,
) -> AuditEvent {
    let limits = request
        .limits(configured)
        .unwrap_or_else(|_| configured.clone());
    let code_sha256 = hex::encode(ring::digest::digest(&ring::digest::SHA256, &request.code));
    let mut details = serde_json::json!({
        "language": request.language.name(),
        "code_sha256": code_sha256,
        "code_bytes": request.code.len(),
        "input_files": request.files.len(),
        "limits": {
            "timeout_ms": limits.timeout.as_millis() as u64,
            "memory": limits.memory,
            "cpu": f64::from(limits.cpu_millis) / 1000.0,
            "pids": limits.pids,
            "network": limits.network,
        },
        "duration_ms": elapsed.as_millis() as u64,
    });
    let (outcome, extra) = match result {
        Ok(outcome) => (
            Outcome::Success,
            serde_json::json!({
                "reason": outcome.reason.name(),
                "exit_code": outcome.exit_code,
                "peak_memory": outcome.peak_memory,
            }),
        ),
        Err(err) => (
            if err.is_bad_request()
                || matches!(err, SandboxError::Busy { .. } | SandboxError::Disabled)
            {
                Outcome::Denied
            } else {
                Outcome::Failure
            },
            serde_json::json!({ "error": err.to_string() }),
        ),
    };
    if let (Some(details), serde_json::Value::Object(extra)) = (details.as_object_mut(), extra) {
        details.extend(extra);
    }
    AuditEvent::new("sandbox.run")
        .actor(actor)
        .target(request.language.name())
        .outcome(outcome)
        .details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_is_capped_and_flagged() {
        let data = vec![b'x'; 10_000];
        let (kept, cut) = read_capped(data.as_slice(), 4096).await;
        assert_eq!(kept.len(), 4096);
        assert!(cut);
        let (kept, cut) = read_capped(&b"short"[..], 4096).await;
        assert_eq!(kept, b"short");
        assert!(!cut);
    }

    #[test]
    fn strict_mode_refuses_a_hierarchy_that_cannot_limit_memory() {
        let config = crate::config::Config::defaults(&crate::config::ProcessEnvironment).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pids_only = || {
            crate::sandbox::cgroups::CgroupV1::prepare(None, None, Some(dir.path().join("runs")))
                .unwrap()
        };
        let err = Runner::new(
            &config.tools.sandbox,
            SecurityMode::Strict,
            PathBuf::from("/proc/self/exe"),
            Some(Box::new(pids_only())),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, SandboxError::Unavailable(_)), "{message}");
        assert!(
            message.contains("memory, cpu") && message.contains("cgroup_enable=memory"),
            "{message}"
        );
        assert!(
            Runner::new(
                &config.tools.sandbox,
                SecurityMode::Local,
                PathBuf::from("/proc/self/exe"),
                Some(Box::new(pids_only())),
            )
            .is_ok(),
            "local mode runs without the missing limits, with a warning"
        );
    }

    #[test]
    fn files_from_inside_are_checked_again() {
        let limits = crate::sandbox::cgroups::manager::tests::limits();
        let files = vec![
            FileData {
                name: "../escape".into(),
                data: vec![],
            },
            FileData {
                name: "ok.txt".into(),
                data: vec![1],
            },
            FileData {
                name: "huge".into(),
                data: vec![0; (limits.max_file_size + 1) as usize],
            },
        ];
        let kept = sanitize_files(files, &limits);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].name, "ok.txt");
    }
}
