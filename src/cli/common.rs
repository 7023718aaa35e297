//! What every command file of the command line shares: the exit status for a reported
//! problem, loading the configuration, finding (or refusing to create) the data
//! directory, the audit actor, sending a request to the running gateway or else
//! executing it against the store, and printing JSON. The command files and `mod.rs`
//! build on this file; it never parses arguments and never runs a command itself.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::admin::{self, AdminRequest, AdminResponse, TlsAccess};
use crate::clock::SystemClock;
use crate::config::{self, Config, ProcessEnvironment};
use crate::keys::secrets::master_key_path;
use crate::server::state::Services;

/// Exit status when a command ran but found a problem it reports (such as a broken chain).
pub const EXIT_ERROR: u8 = 1;

/// What modules above config check in its tables when a command loads it, so that one
/// run reports every mistake (see [`config::OwnerCheck`]).
pub(super) const OWNER_CHECKS: &[config::OwnerCheck<'static>] =
    &[&crate::policy::shell_config_issues];

/// Loads the configuration the way every command does.
pub(super) fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let env = ProcessEnvironment;
    let path = config::locate(path, &env);
    Ok(config::load_checked(path.as_deref(), &env, OWNER_CHECKS).map_err(crate::Error::from)?)
}

/// The caller as the audit log names it.
pub(super) fn cli_actor() -> String {
    format!("cli uid:{}", nix::unistd::getuid().as_raw())
}

/// Whether a command may create the data directory when it finds none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Create {
    /// Explicit setup: creates it, and always says so.
    Setup,
    /// A console run that works without a gateway: creates it, saying so on a terminal.
    Quietly,
    /// Everything else: a missing data directory is an error naming the path.
    Refused,
}

/// The data directory as a full path: a relative `data_dir` is taken from the current
/// directory, which is exactly what the user needs to see when it is the wrong one.
pub(super) fn shown_data_dir(config: &Config) -> PathBuf {
    std::path::absolute(&config.storage.data_dir)
        .unwrap_or_else(|_| config.storage.data_dir.clone())
}

/// Whether the gateway has ever used this data directory (an empty one made by systemd's
/// `StateDirectory=` does not count).
pub(super) fn data_dir_in_use(config: &Config) -> bool {
    let dir = &config.storage.data_dir;
    master_key_path(dir).exists() || dir.join("db").exists()
}

/// Says which data directory a command uses, to a person at a terminal.
pub(super) fn note_data_dir(config: &Config, how: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!(
            "aisopod: data directory {}{how}",
            shown_data_dir(config).display()
        );
    }
}

/// Checks the data directory for an offline command and says which one it uses.
pub(super) fn check_data_dir(config: &Config, create: Create) -> anyhow::Result<()> {
    let dir = shown_data_dir(config);
    if data_dir_in_use(config) {
        note_data_dir(config, "");
        return Ok(());
    }
    match create {
        Create::Setup => {
            eprintln!(
                "aisopod: creating a new data directory {} (configuration: {})",
                dir.display(),
                config.source
            );
            Ok(())
        }
        Create::Quietly => {
            note_data_dir(config, " (new)");
            Ok(())
        }
        Create::Refused => bail!(
            "no aisopod data directory at {} (configuration: {}): this command does not \
             create one. Point it at the gateway's configuration with --config PATH or \
             AISOPOD_CONFIG (its [storage] data_dir), run it from the directory the gateway \
             runs in, or create the data directory with the gateway's first start \
             (aisopod gateway start)",
            dir.display(),
            config.source
        ),
    }
}

/// Opens the store directly (no gateway running), after [`check_data_dir`].
pub(super) fn open_services(config: Config, create: Create) -> anyhow::Result<Services> {
    check_data_dir(&config, create)?;
    Ok(Services::open(config, Arc::new(SystemClock))?)
}

/// The answer's expected variant, or an error naming the one that came instead.
macro_rules! expect_answer {
    ($answer:expr, $variant:pat => $value:expr) => {
        match $answer {
            $variant => $value,
            other => anyhow::bail!(
                "unexpected answer from the gateway: {} (is it another release?)",
                other.kind()
            ),
        }
    };
}
pub(super) use expect_answer;

/// Runs an admin command through the gateway if one runs, else against the store.
pub(super) fn dispatch(config: Config, request: AdminRequest) -> anyhow::Result<AdminResponse> {
    let socket = admin::socket_path(&config);
    let response = match admin::send(&socket, &request, Duration::from_secs(120))? {
        Some(response) => {
            note_data_dir(&config, " (through the running gateway)");
            response
        }
        None => {
            let create = match request {
                AdminRequest::UserAdd { .. } | AdminRequest::SecretsSet { .. } => Create::Setup,
                _ => Create::Refused,
            };
            check_data_dir(&config, create)?;
            let services =
                Services::open(config, Arc::new(SystemClock)).map_err(|err| match err {
                    crate::Error::Store(crate::store::StoreError::Locked { .. }) => {
                        anyhow::anyhow!(
                            "{err} (the admin socket {} did not answer)",
                            socket.display()
                        )
                    }
                    other => other.into(),
                })?;
            admin::execute(&services, TlsAccess::Offline, &cli_actor(), request)
        }
    };
    Ok(response?)
}

/// Prints a value as pretty JSON.
pub(super) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("encoding JSON")?
    );
    Ok(())
}
