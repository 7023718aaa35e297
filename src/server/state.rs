//! The gateway's state: every service built once from the validated config.
//!
//! [`Services`] is what both the gateway and the offline CLI need (store, secrets,
//! audit); [`App`] adds what only a running gateway has (TLS, background tasks, load
//! figures). There are no globals: everything reaches handlers through `Arc<App>`.
//! This module decides what is opened, in which order, and the start-up refusals that
//! follow from the config and the files; it never binds a socket or serves a request
//! (`app::run` does that).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

use crate::audit::{Audit, AuditEvent, Outcome};
use crate::auth::Auth;
use crate::auth::password::Passwords;
use crate::auth::users::Accounts;
use crate::clock::SharedClock;
use crate::config::{Config, SecurityMode, TlsMode, key_file_problem};
use crate::error::{Error, Result};
use crate::gateway::agents::Agents;
use crate::gateway::approval::Broker;
use crate::gateway::chats::Chats;
use crate::gateway::quota::Quota;
use crate::gateway::tools::Tools;
use crate::gateway::upstreams::Upstreams;
use crate::gateway::usage::Usage;
use crate::keys::secrets::{Secrets, master_key_path};
use crate::pairing::Pairing;
use crate::sandbox::{Runner, SandboxStatus};
use crate::server::load::Load;
use crate::server::rate_limit::RateLimits;
use crate::server::rate_limit::RefusalLog;
use crate::store::Store;
use crate::tls::{NameSource, Tls, TlsEvent, key_files, system_names};

/// The services that work with or without a running gateway.
#[derive(Debug)]
pub struct Services {
    pub config: Config,
    pub store: Store,
    pub secrets: Arc<Secrets>,
    pub audit: Audit,
    pub auth: Auth,
    pub clock: SharedClock,
}

impl Services {
    /// Whether `secret` is already an API token, the static token, the JWT secret or a
    /// provider key (configured or set over the API).
    pub fn secret_in_use(&self, secret: &crate::secret::Secret) -> Result<bool> {
        let candidate = secret.expose().as_bytes();
        if self
            .auth
            .tokens
            .is_token(secret.expose())
            .map_err(|err| Error::Auth(err.into()))?
        {
            return Ok(true);
        }
        let config = &self.config;
        let configured = [&config.auth.token, &config.auth.jwt_secret]
            .into_iter()
            .flatten()
            .chain(config.providers.iter().filter_map(|p| p.api_key.as_ref()));
        let mut found = false;
        for known in configured {
            found |= bool::from(known.expose().as_bytes().ct_eq(candidate));
        }
        let stored = self.secrets.list()?;
        for (name, _) in stored {
            if name.as_str().starts_with("providers.")
                && let Some(key) = self.secrets.get(&name)?
            {
                found |= bool::from(key.expose().as_bytes().ct_eq(candidate));
            }
        }
        Ok(found)
    }

    /// Creates the data directory (0700) and opens the store, keys and audit log.
    pub fn open(config: Config, clock: SharedClock) -> Result<Services> {
        let data_dir = config.storage.data_dir.clone();
        crate::fsutil::ensure_private_dir(&data_dir)?;
        let store = Store::open(&data_dir, config.storage.cache_size)?;
        let secrets = Arc::new(Secrets::open(&data_dir, &store)?);
        let audit = Audit::open(&store, &secrets, clock.clone())?;
        let passwords = Passwords::new(&config.auth.password);
        let accounts = Accounts::open(&store, passwords, clock.clone(), &config.auth)?;
        let auth = Auth::open(
            &config.auth,
            &store,
            secrets.clone(),
            accounts,
            clock.clone(),
        )?;
        Ok(Services {
            config,
            store,
            secrets,
            audit,
            auth,
            clock,
        })
    }

    /// Refuses group- or world-readable key files in strict mode; warns in local mode.
    pub fn check_key_files(&self) -> Result<()> {
        let data_dir = &self.config.storage.data_dir;
        let mut files = key_files(&self.config.tls, data_dir);
        files.push(master_key_path(data_dir));
        for file in files {
            if !file.exists() {
                continue;
            }
            if let Some(problem) = key_file_problem(&file) {
                if self.config.security.mode == SecurityMode::Strict {
                    return Err(Error::Refused(format!(
                        "strict mode refuses to start: {problem}"
                    )));
                }
                tracing::warn!("{problem}");
            }
        }
        Ok(())
    }
}

/// Background tasks whose death makes the gateway not ready.
#[derive(Debug, Default)]
pub struct Tasks {
    handles: Mutex<Vec<(&'static str, tokio::task::JoinHandle<()>)>>,
}

impl Tasks {
    pub fn spawn<F>(&self, name: &'static str, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(task);
        self.handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((name, handle));
    }

    /// The first task that has stopped, if any.
    pub fn first_dead(&self) -> Option<&'static str> {
        self.handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .find(|(_, handle)| handle.is_finished())
            .map(|(name, _)| *name)
    }

    pub fn abort_all(&self) {
        for (_, handle) in self
            .handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
        {
            handle.abort();
        }
    }
}

/// The running gateway.
#[derive(Debug)]
pub struct App {
    pub services: Services,
    pub tls: Option<Tls>,
    pub tasks: Tasks,
    pub load: Load,
    pub limits: RateLimits,
    pub refusals: RefusalLog,
    pub started: Instant,
    /// The code sandbox, when enabled and this host can provide it.
    pub sandbox: Option<Runner>,
    sandbox_status: tokio::sync::watch::Sender<SandboxStatus>,
    /// Tool calls waiting for a human.
    pub approvals: Arc<Broker>,
    /// The agents' tools.
    pub tools: Tools,
    /// Pairing offers and claims.
    pub pairing: Arc<Pairing>,
    pub gateway: Gateway,
    /// What is wrong that the owner must see on the device (the LED's error pattern).
    pub alerts: Arc<crate::hardware::Alerts>,
    /// The address the API listener is bound to, once it is (the configured port may be 0).
    pub listening: std::sync::OnceLock<std::net::SocketAddr>,
    /// The MCP endpoint's sessions.
    pub mcp: crate::gateway::mcp::Sessions,
}

/// The AI gateway's stores: agents, chats and usage; and the providers with their keys.
#[derive(Debug)]
pub struct Gateway {
    /// Shared with the tool registry, which looks agents up at each call.
    pub agents: Arc<Agents>,
    pub chats: Chats,
    pub usage: Usage,
    /// The per-API-token limits' state.
    pub quota: Quota,
    pub upstreams: Upstreams,
    /// The chats with a turn running now.
    pub turns: crate::gateway::agent_loop::TurnSlots,
    /// The channels (webhooks) other programs reach agents through.
    pub channels: Arc<crate::gateway::channels::Channels>,
}

/// Start-up checks of `[[channels]]`: each owner and agent exists, and no secret is
/// shared with a token or a provider key.
fn check_channels(services: &Services, gateway: &Gateway) -> Result<()> {
    for (index, channel) in services.config.channels.iter().enumerate() {
        let owner = services
            .auth
            .accounts
            .get(&channel.owner)
            .map_err(|err| Error::Refused(format!("channels.{index}.owner: {err}")))?;
        if owner.is_none() {
            return Err(Error::Refused(format!(
                "channels.{index}.owner: there is no user {:?}; add it (aisopod user add) or name an existing user",
                channel.owner
            )));
        }
        if gateway.agents.get(&channel.agent).is_err() {
            return Err(Error::Refused(format!(
                "channels.{index}.agent: there is no agent {:?}; add it to [[agents]] or name an existing agent",
                channel.agent
            )));
        }
        let reused = services
            .secret_in_use(&channel.secret)
            .map_err(|_| Error::Refused(format!("channels.{index}.secret cannot be checked")))?;
        if reused {
            return Err(Error::Refused(format!(
                "channels.{index}.secret is also an API token or a provider key: give the channel a secret of its own"
            )));
        }
    }
    Ok(())
}

impl Gateway {
    fn open(services: &Services) -> Result<Gateway> {
        let config = &services.config;
        let refused = |what: &str, err: &dyn std::fmt::Display| {
            Error::Refused(format!("the {what} cannot be opened: {err}"))
        };
        let store = &services.store;
        Ok(Gateway {
            agents: Arc::new(
                Agents::open(
                    store,
                    config.agents.clone(),
                    config.providers.iter().map(|p| p.name.clone()).collect(),
                    &config.storage.data_dir,
                )
                .map_err(|err| refused("agents", &err))?,
            ),
            chats: Chats::open(store, config.chats.clone(), services.clock.clone())
                .map_err(|err| refused("chats", &err))?,
            usage: Usage::open(store, services.clock.clone())
                .map_err(|err| refused("usage records", &err))?,
            quota: Quota::new(),
            upstreams: Upstreams::open(
                &config.providers,
                services.secrets.clone(),
                Arc::new(crate::gateway::providers::TokioPause),
            )
            .map_err(|err| refused("providers", &err))?,
            turns: Default::default(),
            channels: Arc::new(
                crate::gateway::channels::Channels::open(
                    store,
                    config.channels.clone(),
                    services.secrets.clone(),
                    config.security.mode,
                )
                .map_err(|err| refused("channels", &err))?,
            ),
        })
    }
}

impl App {
    /// Opens everything the gateway serves with, recording start-up in the audit log.
    pub fn open(config: Config, clock: SharedClock, names: Option<NameSource>) -> Result<App> {
        App::open_with_helper(config, clock, names, None)
    }

    /// [`App::open`] with the sandbox helper started from `helper` instead of this
    /// process's own binary: a gateway run inside another program (the integration
    /// tests) names the `aisopod` binary, which speaks the same helper protocol.
    pub fn open_with_helper(
        config: Config,
        clock: SharedClock,
        names: Option<NameSource>,
        helper: Option<PathBuf>,
    ) -> Result<App> {
        let services = Services::open(config, clock.clone())?;
        services.check_key_files()?;
        let config = &services.config;
        services.audit.record(AuditEvent::new("config.load").target(config.source.to_string()).details(
            serde_json::json!({
                "security_mode": config.security.mode,
                "auth_mode": config.auth.mode,
                "tls_mode": match config.tls.mode { TlsMode::SelfSigned => "self-signed", TlsMode::Files { .. } => "files", TlsMode::Off => "off" },
                "bind": config.server.bind.to_string(),
            }),
        ))?;
        let extra = config.tls.extra_names.clone();
        let names = names.unwrap_or_else(|| Arc::new(move || system_names(&extra)));
        let tls = match Tls::open(&config.tls, &config.storage.data_dir, clock, names) {
            Ok(opened) => opened.map(|(tls, events)| {
                for event in events {
                    services.audit.record_or_log(tls_audit_event(event));
                }
                tls
            }),
            Err(err) => {
                services.audit.record_or_log(
                    AuditEvent::new("tls.load")
                        .outcome(Outcome::Failure)
                        .details(serde_json::json!({"error": err.to_string()})),
                );
                return Err(err.into());
            }
        };
        // Keys made just now must pass the same permission check.
        services.check_key_files()?;
        let (sandbox, sandbox_status) = open_sandbox(&services, helper);
        let limits = RateLimits::new(&services.config.rate_limit);
        let approvals = Arc::new(Broker::new(
            services.config.approval.timeout,
            services.clock.clone(),
        ));
        let gateway = Gateway::open(&services)?;
        check_channels(&services, &gateway)?;
        let tools = Tools::new(&services.config, &services.store, gateway.agents.clone())
            .map_err(|err| Error::Refused(format!("the agents' tools cannot be set up: {err}")))?;
        let pairing = Arc::new(Pairing::new(
            &services.config.pairing,
            services.auth.paired.clone(),
            services.clock.clone(),
        ));
        let mcp = crate::gateway::mcp::Sessions::new(
            services.clock.clone(),
            crate::gateway::mcp::SessionLimits::default(),
        );
        Ok(App {
            pairing,
            approvals,
            tools,
            gateway,
            services,
            tls,
            tasks: Tasks::default(),
            load: Load::default(),
            limits,
            refusals: RefusalLog::default(),
            started: Instant::now(),
            sandbox,
            sandbox_status: tokio::sync::watch::Sender::new(sandbox_status),
            alerts: Arc::default(),
            listening: std::sync::OnceLock::new(),
            mcp,
        })
    }

    /// The sandbox runner, if code execution is available; else why not. While the
    /// start-up self-test runs, waits for its verdict (at most the sandbox's own
    /// timeout), so a call made just after start is not refused for being early.
    pub async fn sandbox_runner(&self) -> std::result::Result<&Runner, String> {
        let mut status = self.sandbox_status.subscribe();
        let limit = self.config().tools.sandbox.limits.timeout + Duration::from_secs(5);
        // An error means the sender is gone or the wait ran out: judge what is there.
        let _ =
            tokio::time::timeout(limit, status.wait_for(|s| *s != SandboxStatus::Checking)).await;
        let status = self.sandbox_status();
        match &self.sandbox {
            Some(runner) if status.is_ok() => Ok(runner),
            _ => Err(format!("code execution is unavailable: {status}")),
        }
    }

    /// What the agent loop runs a turn with: the providers with their keys as they are
    /// now, the agents, tools, approvals, sandbox, audit log and usage records.
    pub async fn agent_loop(&self) -> crate::gateway::agent_loop::Deps<'_> {
        crate::gateway::agent_loop::Deps {
            providers: self.gateway.upstreams.current(),
            agents: &self.gateway.agents,
            tools: &self.tools,
            audit: &self.services.audit,
            approvals: &self.approvals,
            runner: self.sandbox_runner().await,
            usage: &self.gateway.usage,
        }
    }

    /// Whether code execution is available now.
    pub fn sandbox_status(&self) -> SandboxStatus {
        self.sandbox_status.borrow().clone()
    }

    fn set_sandbox_status(&self, status: SandboxStatus) {
        self.sandbox_status.send_replace(status);
    }

    pub fn config(&self) -> &Config {
        &self.services.config
    }

    pub fn audit(&self) -> &Audit {
        &self.services.audit
    }

    /// Records that `actor`, calling from `ip`, made the change `action` to `target` (an
    /// agent, a provider's key, ...); a failing audit log is logged, not returned.
    pub fn audit_change(&self, action: &str, actor: String, ip: std::net::IpAddr, target: &str) {
        self.audit().record_or_log(
            AuditEvent::new(action)
                .actor(actor)
                .target(target.to_string())
                .source_ip(Some(ip)),
        );
    }

    /// Readiness: each check by name, `Err` naming what failed.
    pub fn readiness(&self) -> (bool, serde_json::Value) {
        let store = match self.services.store.check() {
            Ok(()) => "ok".to_string(),
            Err(err) => format!("failing: {err}"),
        };
        let certificate = match &self.tls {
            Some(tls) if tls.summary().server.sha256.is_empty() => {
                "failing: no certificate loaded".to_string()
            }
            Some(_) => "ok".into(),
            None => "ok (TLS off)".into(),
        };
        let tasks = match self.tasks.first_dead() {
            None => "ok".to_string(),
            Some(name) => format!("failing: background task {name} stopped"),
        };
        let ready = [&store, &certificate, &tasks]
            .iter()
            .all(|s| s.starts_with("ok"));
        // Code execution is reported, not required: a gateway without it still serves.
        let sandbox = self.sandbox_status();
        let mut checks = serde_json::json!({ "store": store, "certificate": certificate, "tasks": tasks, "sandbox": sandbox });
        if let (Some(status), Some(map)) = (self.boot_config_status(), checks.as_object_mut()) {
            map.insert("boot_config".into(), status.into());
        }
        (ready, checks)
    }

    /// What the appliance's first-boot step said of the `aisopod.toml` a user dropped on
    /// the boot partition (`boot-config.status` beside the config file): "ok ..." or
    /// "rejected ..." with the errors. Reported, never required: a rejected file leaves
    /// the gateway on its previous configuration.
    fn boot_config_status(&self) -> Option<String> {
        const MAX_STATUS: u64 = 4096;
        let crate::config::ConfigSource::File(path) = &self.config().source else {
            return None;
        };
        let file = std::fs::File::open(path.with_file_name(BOOT_CONFIG_STATUS)).ok()?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_STATUS), &mut text)
            .ok()?;
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_string())
    }

    /// Starts the background tasks: memory sampling, writing usage counts, certificate
    /// renewal, audit retention, and the sandbox's one-off self-test.
    pub fn spawn_background(self: &Arc<Self>) {
        if self.sandbox.is_some() {
            let app = self.clone();
            // Not in `tasks`: it ends by design, which `tasks` would report as a failure.
            tokio::spawn(async move {
                let Some(runner) = &app.sandbox else {
                    return;
                };
                let status = match runner.self_test().await {
                    Ok(outcome) if outcome.exit_code == 0 => SandboxStatus::Ok,
                    Ok(outcome) => SandboxStatus::Unavailable(format!(
                        "the self-test ended with {} ({})",
                        outcome.exit_code,
                        outcome.reason.name()
                    )),
                    Err(err) => SandboxStatus::Unavailable(err.to_string()),
                };
                if !status.is_ok() {
                    tracing::warn!(%status, "code execution is unavailable");
                }
                app.audit().record_or_log(
                    AuditEvent::new("sandbox.check")
                        .outcome(if status.is_ok() {
                            Outcome::Success
                        } else {
                            Outcome::Failure
                        })
                        .details(serde_json::json!({ "status": status })),
                );
                app.set_sandbox_status(status);
            });
        }
        let app = self.clone();
        self.tasks.spawn("memory-sampler", async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                app.load.sample();
            }
        });
        let app = self.clone();
        self.tasks.spawn("usage-writer", async move {
            let mut tick = tokio::time::interval(crate::gateway::usage::FLUSH_EVERY);
            let mut failing = false;
            loop {
                tick.tick().await;
                // An idle gateway wakes no blocking thread.
                if !app.gateway.usage.has_pending() {
                    continue;
                }
                let worker = app.clone();
                let written =
                    tokio::task::spawn_blocking(move || worker.gateway.usage.flush()).await;
                match written {
                    Ok(Err(err)) if !failing => {
                        failing = true;
                        tracing::error!(error = %err, "writing usage failed; the counts are kept for the next try");
                    }
                    Ok(Ok(())) if failing => {
                        failing = false;
                        tracing::info!("usage is written again");
                    }
                    _ => {}
                }
            }
        });
        let app = self.clone();
        self.tasks.spawn("forget-idle-limits", async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                app.limits.forget_idle();
            }
        });
        if self.tls.is_some() {
            let app = self.clone();
            self.tasks.spawn("certificate-renewal", async move {
                let mut tick = tokio::time::interval(Duration::from_secs(3600));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let worker = app.clone();
                    let refreshed =
                        tokio::task::spawn_blocking(move || worker.tls.as_ref().map(Tls::refresh))
                            .await;
                    match refreshed {
                        Ok(Some(Ok(Some(event)))) => {
                            app.audit().record_or_log(tls_audit_event(event))
                        }
                        Ok(Some(Err(err))) => {
                            tracing::error!(error = %err, "certificate renewal failed")
                        }
                        _ => {}
                    }
                }
            });
        }
        let app = self.clone();
        self.tasks.spawn("audit-retention", async move {
            let mut tick = tokio::time::interval(Duration::from_secs(86_400));
            loop {
                tick.tick().await;
                let worker = app.clone();
                let days = app.config().audit.retention_days;
                match tokio::task::spawn_blocking(move || worker.audit().prune(days)).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(pruned)) => app
                        .audit()
                        .record_or_log(AuditEvent::new("audit.prune").details(
                            serde_json::json!({"pruned": pruned, "retention_days": days}),
                        )),
                    Ok(Err(err)) => tracing::error!(error = %err, "audit retention failed"),
                    Err(_) => {}
                }
            }
        });
    }
}

/// Written beside the config file by the SD-card image's first-boot step
/// (`image/rootfs/usr/lib/aisopod/firstboot`).
pub const BOOT_CONFIG_STATUS: &str = "boot-config.status";

/// Builds the sandbox runner for the gateway, or says why there is none.
fn open_sandbox(services: &Services, helper: Option<PathBuf>) -> (Option<Runner>, SandboxStatus) {
    if !services.config.tools.sandbox.enabled {
        return (None, SandboxStatus::Disabled);
    }
    let runner = match helper {
        Some(helper) => Runner::from_config_with_helper(&services.config, helper),
        None => Runner::from_config(&services.config),
    };
    match runner {
        Ok(runner) => (Some(runner), SandboxStatus::Checking),
        Err(err) => {
            tracing::warn!(error = %err, "code execution is unavailable");
            services.audit.record_or_log(
                AuditEvent::new("sandbox.check")
                    .outcome(Outcome::Failure)
                    .details(serde_json::json!({ "error": err.to_string() })),
            );
            (None, SandboxStatus::Unavailable(err.to_string()))
        }
    }
}

/// The audit record for a TLS event.
pub fn tls_audit_event(event: TlsEvent) -> AuditEvent {
    match event {
        TlsEvent::CaCreated { fingerprint } => {
            AuditEvent::new("tls.ca_created").details(serde_json::json!({"sha256": fingerprint}))
        }
        TlsEvent::ServerIssued {
            fingerprint,
            reason,
        } => AuditEvent::new("tls.cert_issued")
            .details(serde_json::json!({"sha256": fingerprint, "reason": reason})),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use super::*;
    use crate::clock::SystemClock;
    use crate::config::ConfigSource;
    use crate::config::testing::{NoEnv, local_gateway, local_gateway_toml};

    fn app(dir: &Path) -> Arc<App> {
        let config = local_gateway(&dir.join("data"), "[tools.sandbox]\nruntime = \"none\"");
        Arc::new(App::open(config, Arc::new(SystemClock), None).unwrap())
    }

    #[tokio::test]
    async fn a_run_asked_for_during_the_self_test_waits_for_its_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        assert!(app.sandbox.is_some());
        assert_eq!(app.sandbox_status(), SandboxStatus::Checking);
        let setter = app.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            setter.set_sandbox_status(SandboxStatus::Ok);
        });
        let started = Instant::now();
        assert!(app.sandbox_runner().await.is_ok());
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[test]
    fn a_rejected_boot_partition_config_is_shown_in_readiness() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let text = local_gateway_toml(&dir.path().join("data"), "");
        std::fs::write(&path, &text).unwrap();
        let config = crate::config::parse(&text, ConfigSource::File(path.clone()), &NoEnv)
            .unwrap_or_else(|err| panic!("{err}"));
        let app = App::open(config, Arc::new(SystemClock), None).unwrap();
        let (ready, checks) = app.readiness();
        assert!(ready);
        assert!(checks.get("boot_config").is_none());
        let status = "rejected 2026-12-02T03:00:00Z: aisopod.toml from the boot partition was not applied\n  - server.bind: invalid";
        std::fs::write(path.with_file_name(BOOT_CONFIG_STATUS), status).unwrap();
        let (ready, checks) = app.readiness();
        assert!(ready, "a rejected boot config is reported, not a failure");
        assert_eq!(checks["boot_config"], status);
    }

    #[tokio::test]
    async fn a_failed_self_test_is_the_reason_given() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        let setter = app.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            setter.set_sandbox_status(SandboxStatus::Unavailable("no interpreter".into()));
        });
        let err = app.sandbox_runner().await.err().unwrap();
        assert_eq!(
            err,
            "code execution is unavailable: unavailable: no interpreter"
        );
    }
}
