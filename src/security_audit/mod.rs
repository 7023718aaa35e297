//! `aisopod security audit`: inspects the configuration and the machine as an auditor
//! would and reports findings (a stable id, a severity, the evidence seen and the fix).
//!
//! It owns gathering what the checks read (the config and its file, tokens and
//! accounts, the audit chain's verification, the certificates, the sandbox survey, local
//! LLM ports the LAN reaches, the secrets to compare) and the checks themselves, small
//! functions grouped by area in this folder, each finding taken from one table
//! ([`catalog::CATALOG`]). It never changes anything, except that `--fix` repairs the
//! modes of the files it found wrong ([`files::fix`]); it never returns or logs a
//! secret, only where each one is used. The CLI and the HTTP route call in; the same
//! [`Report`] answers both.

pub mod accounts;
pub mod catalog;
pub mod certs;
pub mod files;
pub mod findings;
pub mod isolation;
pub mod network;
pub mod secrets;

use std::path::PathBuf;
use std::time::Duration;

use time::OffsetDateTime;

pub use catalog::CATALOG;
pub use findings::{Finding, Report, Severity, Summary};
pub use secrets::Candidate;

use crate::audit::{Audit, Verified};
use crate::auth::Auth;
use crate::auth::tokens::TokenRecord;
use crate::clock::rfc3339;
use crate::config::{Config, ConfigSource, TlsMode};
use crate::gateway::channels::Channels;
use crate::gateway::providers::{self, Exposure};
use crate::keys::secrets::Secrets;
use crate::sandbox::Runner;
use crate::sandbox::check::KernelReport;
use crate::store::SecretName;
use accounts::AccountFacts;

/// What can stop an audit from running at all (a check that cannot look is a finding,
/// not an error).
#[derive(Debug, thiserror::Error)]
pub enum SecurityAuditError {
    #[error("cannot list the API tokens: {0}")]
    Tokens(#[from] crate::auth::tokens::TokenError),
    #[error("cannot list the accounts: {0}")]
    Accounts(#[from] crate::auth::users::AccountError),
    #[error("cannot read the sealed provider keys: {0}")]
    Secrets(#[from] crate::keys::secrets::SecretsError),
    #[error("cannot read the channels' secrets: {0}")]
    Channels(#[from] crate::gateway::channels::ChannelError),
}

/// Everything the checks read, gathered once.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub config: &'a Config,
    pub now: OffsetDateTime,
    /// The file the configuration was loaded from (`None` for built-in defaults).
    pub config_file: Option<PathBuf>,
    pub tokens: Vec<TokenRecord>,
    pub accounts: Vec<AccountFacts>,
    /// The audit chain's verification, or why it failed.
    pub chain: Result<Verified, String>,
    /// The certificates on disk (`Ok(None)` with TLS off), or why they cannot be read.
    pub certs: Result<Option<crate::tls::TlsSummary>, String>,
    pub sandbox: KernelReport,
    pub exposures: Vec<Exposure>,
    pub candidates: Vec<Candidate>,
    /// Labels of candidates that are the secret of an API token, with the token's id.
    pub token_matches: Vec<(String, String)>,
}

/// Runs every check over `inputs`; `fixed` is what `--fix` did before.
pub fn audit(inputs: &Inputs<'_>, fixed: Vec<String>) -> Report {
    let config = inputs.config;
    let now = inputs.now.unix_timestamp();
    let inline = inputs
        .config_file
        .as_deref()
        .map(secrets::inline_in_config)
        .unwrap_or_default();
    let mut found = Vec::new();
    found.extend(network::binds(config));
    found.extend(network::origins_and_proxies(config));
    found.extend(network::upstreams(config, &inputs.exposures));
    found.extend(secrets::check(&inputs.candidates, &inputs.token_matches));
    if let Some(path) = &inputs.config_file {
        found.extend(secrets::inline_finding(path, &inline));
    }
    found.extend(files::check(&files::targets(
        config,
        inputs.config_file.as_deref(),
        !inline.is_empty(),
    )));
    found.extend(certs::check(&inputs.certs, now));
    found.extend(isolation::check(&config.tools.sandbox, &inputs.sandbox));
    found.extend(accounts::tokens(&inputs.tokens, now));
    found.extend(accounts::accounts(&inputs.accounts, now));
    found.extend(chain(&inputs.chain));
    found.push(build_info());
    Report::new(rfc3339(inputs.now), found, fixed)
}

/// The audit log's hash chain and sealed head.
fn chain(verified: &Result<Verified, String>) -> Option<Finding> {
    verified.as_ref().err().map(|reason| {
        catalog::finding(
            "audit.chain_broken",
            reason.clone(),
            "keep the data directory as it is for inspection, compare with a backup (`aisopod audit verify`, `aisopod audit export`), and find out who could write to it",
        )
    })
}

/// This build does not carry an advisory database or check for updates.
fn build_info() -> Finding {
    catalog::finding(
        "build.no_advisory_db",
        format!(
            "aisopod {} has no advisory database and never calls home to look for updates",
            env!("CARGO_PKG_VERSION")
        ),
        "follow the project's releases and security advisories, and update the image when one applies",
    )
}

/// The file the configuration came from, if any.
pub fn config_file(config: &Config) -> Option<PathBuf> {
    match &config.source {
        ConfigSource::File(path) => Some(path.clone()),
        ConfigSource::Defaults => None,
    }
}

/// What the audit reads from the gateway's services.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    pub config: &'a Config,
    pub auth: &'a Auth,
    pub audit: &'a Audit,
    pub secrets: &'a Secrets,
    pub now: OffsetDateTime,
}

/// Gathers the inputs from the services. `sandbox` and `exposures` are surveyed by the
/// caller ([`survey_sandbox`], [`probe_upstreams`]); `channel_secrets` are the signed
/// channels' secrets, each labelled as the owner knows it.
pub fn gather<'a>(
    sources: Sources<'a>,
    sandbox: KernelReport,
    exposures: Vec<Exposure>,
    channel_secrets: Vec<Candidate>,
) -> Result<Inputs<'a>, SecurityAuditError> {
    let config = sources.config;
    let mut candidates = Vec::new();
    if let Some(token) = &config.auth.token {
        candidates.push(Candidate::own("[auth] token", token.clone()));
    }
    if let Some(secret) = &config.auth.jwt_secret {
        candidates.push(Candidate::own("[auth] jwt_secret", secret.clone()));
    }
    for provider in &config.providers {
        let label = format!("the API key of provider {}", provider.name);
        if let Some(key) = &provider.api_key {
            candidates.push(Candidate::foreign(label, key.clone()));
        } else if let Ok(name) = SecretName::parse(&format!("providers.{}", provider.name))
            && let Some(key) = sources.secrets.get(&name)?
        {
            candidates.push(Candidate::foreign(label, key));
        }
    }
    candidates.extend(channel_secrets);
    let mut token_matches = Vec::new();
    for candidate in &candidates {
        if let Some(token) = sources.auth.tokens.identify(candidate.secret.expose())? {
            token_matches.push((candidate.label.clone(), token.id));
        }
    }
    let accounts = sources
        .auth
        .accounts
        .list()?
        .into_iter()
        .map(|user| AccountFacts {
            created: accounts::unix_of(&user.created),
            username: user.username,
            disabled: user.disabled,
            last_login: user.last_login,
        })
        .collect();
    Ok(Inputs {
        config,
        now: sources.now,
        config_file: config_file(config),
        tokens: sources.auth.tokens.list()?,
        accounts,
        chain: sources.audit.verify().map_err(|err| err.to_string()),
        certs: certificates(config),
        sandbox,
        exposures,
        candidates,
        token_matches,
    })
}

/// The certificates on disk. In self-signed mode a gateway that never started has made
/// none yet (it makes them at start), which is no finding.
fn certificates(config: &Config) -> Result<Option<crate::tls::TlsSummary>, String> {
    let data_dir = &config.storage.data_dir;
    if config.tls.mode == TlsMode::SelfSigned && !crate::tls::tls_dir(data_dir).exists() {
        return Ok(None);
    }
    crate::tls::summarize_files(&config.tls, data_dir).map_err(|err| err.to_string())
}

/// Repairs the file modes the audit would report for `config` (`--fix`).
pub fn fix_files(config: &Config) -> Vec<String> {
    let file = config_file(config);
    let inline = file
        .as_deref()
        .map(secrets::inline_in_config)
        .unwrap_or_default();
    files::fix(&files::targets(config, file.as_deref(), !inline.is_empty()))
}

/// Each signed channel's secret, labelled as the owner knows it: a secret that is also
/// an API token or the gateway's own credential is a finding like any other reuse.
pub fn channel_candidates(channels: &Channels) -> Result<Vec<Candidate>, SecurityAuditError> {
    Ok(channels
        .secrets()?
        .into_iter()
        .map(|(name, secret)| Candidate::own(format!("the secret of channel {name}"), secret))
        .collect())
}

/// The whole audit: with `fix`, first repairs the file modes it would report (and the
/// report says what changed); then surveys the sandbox (with `runner`, the gateway's
/// own, when there is one), probes local upstream ports, gathers and checks.
pub fn run(
    sources: Sources<'_>,
    runner: Option<&Runner>,
    channels: &Channels,
    fix: bool,
) -> Result<Report, SecurityAuditError> {
    let channel_secrets = channel_candidates(channels)?;
    let fixed = if fix {
        fix_files(sources.config)
    } else {
        Vec::new()
    };
    let sandbox = survey_sandbox(sources.config, runner);
    let exposures = probe_upstreams_blocking(sources.config);
    let inputs = gather(sources, sandbox, exposures, channel_secrets)?;
    Ok(audit(&inputs, fixed))
}

/// [`probe_upstreams`] from synchronous code: on a thread of its own with its own
/// runtime, so it works whether or not the caller is inside one.
pub fn probe_upstreams_blocking(config: &Config) -> Vec<Exposure> {
    if config.providers.is_empty() {
        return Vec::new();
    }
    let config = config.clone();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|runtime| runtime.block_on(probe_upstreams(&config)))
            .unwrap_or_default()
    })
    .join()
    .unwrap_or_default()
}

/// The sandbox survey: with the gateway's own runner when it has one, else with a runner
/// built from the configuration (as `aisopod sandbox check` does), without a trial run.
pub fn survey_sandbox(config: &Config, runner: Option<&Runner>) -> KernelReport {
    let sandbox = &config.tools.sandbox;
    match runner {
        Some(runner) => crate::sandbox::check::survey(sandbox, Ok(runner), None),
        None => {
            let built = Runner::from_config(config).map_err(|err| err.to_string());
            crate::sandbox::check::survey(sandbox, built.as_ref().map_err(Clone::clone), None)
        }
    }
}

/// How long one connection attempt to a local upstream's port may take.
const PROBE_WAIT: Duration = Duration::from_millis(300);

/// The loopback LLM upstreams whose port also answers on this machine's other
/// addresses.
pub async fn probe_upstreams(config: &Config) -> Vec<Exposure> {
    providers::exposed_local_upstreams(&config.providers, &providers::local_addresses(), PROBE_WAIT)
        .await
}
