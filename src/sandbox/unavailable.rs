//! The sandbox on systems other than Linux (macOS): it is unavailable, and this module
//! says so from every entry point that would otherwise start a run.
//!
//! Each layer of a run (user, pid and mount namespaces, cgroups, seccomp, Landlock) is a
//! Linux interface with no equivalent here that could hold an untrusted program, so
//! nothing runs at all, not even `runtime = "none"`. A [`Runner`](runner::Runner)
//! cannot be built: [`from_config`](runner::Runner::from_config) answers
//! [`SandboxError::Unavailable`], which the gateway already reports as "code execution
//! unavailable" (start-up log, `/ready`, the tools); [`survey`] fills the
//! `sandbox check` report with the same reason; the helper's entry point refuses too.
//! This is a platform fallback that reports unavailability, never an imitation of a
//! layer.

use std::collections::BTreeMap;

use super::cgroups::{Enforced, Hierarchies};
use super::error::SandboxError;
use super::report::{CgroupReport, KernelReport, LandlockReport, NAMESPACES};
use super::spec::Language;
use crate::config::SandboxConfig;

/// Why nothing runs here, for errors and reports.
pub fn reason() -> String {
    let system = match std::env::consts::OS {
        "macos" => "macOS",
        other => other,
    };
    format!(
        "code execution needs Linux namespaces, cgroups and seccomp; it is unavailable on {system}"
    )
}

fn unavailable() -> SandboxError {
    SandboxError::Unavailable(reason())
}

/// The `sandbox check` report: every layer absent, code execution unavailable. `runner`
/// is always an error here (no runner can be built) and no trial run is ever made.
pub fn survey(
    config: &SandboxConfig,
    _runner: Result<&runner::Runner, String>,
    _trial: Option<Result<(), String>>,
) -> KernelReport {
    let mut missing = Vec::new();
    if !config.enabled {
        missing.push("code execution is disabled in [tools.sandbox]".to_string());
    }
    missing.push(reason());
    KernelReport {
        kernel: nix::sys::utsname::uname()
            .map(|u| {
                format!(
                    "{} {}",
                    u.sysname().to_string_lossy(),
                    u.release().to_string_lossy()
                )
            })
            .unwrap_or_default(),
        arch: std::env::consts::ARCH,
        namespaces: NAMESPACES.iter().map(|ns| (*ns, false)).collect(),
        max_user_namespaces: None,
        cgroup: CgroupReport {
            version: None,
            enforced: Enforced::default(),
            run_directories: Vec::new(),
            hierarchies: Hierarchies {
                v2_mount: None,
                v2_controllers: Vec::new(),
                v1_controllers: Vec::new(),
                disabled: Vec::new(),
            },
            error: Some("cgroups are a Linux interface".into()),
        },
        seccomp: false,
        landlock: LandlockReport {
            abi: None,
            detail: "unavailable: Landlock is a Linux security module".into(),
        },
        interpreters: Language::ALL
            .iter()
            .map(|l| (l.name(), l.find_interpreter().ok()))
            .collect::<BTreeMap<_, _>>(),
        trial: None,
        code_execution: false,
        missing,
        hints: Vec::new(),
    }
}

pub mod runner {
    //! [`Runner`] where runs are impossible: the same API as on Linux, but no value of
    //! the type can exist, so no caller can ever reach a run.

    use std::convert::Infallible;
    use std::path::PathBuf;

    use super::unavailable;
    use crate::audit::Audit;
    use crate::config::{Config, SandboxConfig, SecurityMode};
    use crate::sandbox::cgroups::CgroupManager;
    use crate::sandbox::error::SandboxError;
    use crate::sandbox::spec::{RunOutcome, RunRequest};

    /// Never built on this system (see the module's documentation).
    #[derive(Debug)]
    pub struct Runner {
        never: Infallible,
    }

    impl Runner {
        /// Always [`SandboxError::Unavailable`].
        pub fn from_config(_config: &Config) -> Result<Runner, SandboxError> {
            Err(unavailable())
        }

        /// Always [`SandboxError::Unavailable`].
        pub fn from_config_with_helper(
            _config: &Config,
            _exe: PathBuf,
        ) -> Result<Runner, SandboxError> {
            Err(unavailable())
        }

        /// Always [`SandboxError::Unavailable`].
        pub fn new(
            _config: &SandboxConfig,
            _mode: SecurityMode,
            _exe: PathBuf,
            _cgroups: Option<Box<dyn CgroupManager>>,
        ) -> Result<Runner, SandboxError> {
            Err(unavailable())
        }

        pub fn config(&self) -> &SandboxConfig {
            match self.never {}
        }

        pub fn cgroups(&self) -> Option<&dyn CgroupManager> {
            match self.never {}
        }

        pub async fn run(
            &self,
            _audit: &Audit,
            _actor: &str,
            _request: RunRequest,
        ) -> Result<RunOutcome, SandboxError> {
            match self.never {}
        }

        pub async fn self_test(&self) -> Result<RunOutcome, SandboxError> {
            match self.never {}
        }
    }
}

pub mod launcher {
    //! The sandbox helper's entry point where there is no helper: nothing on this
    //! system starts one, so the hidden subcommand is not recognised, and the entry
    //! point refuses if it is called anyway.

    use std::process::ExitCode;

    /// Exit status of a helper that could not set a run up (as on Linux).
    pub const HELPER_FAILED: u8 = 125;

    /// Always false: no helper is ever started here.
    pub fn is_helper(_args: &[std::ffi::OsString]) -> bool {
        false
    }

    /// Says why there is no helper and fails.
    pub fn helper_main() -> ExitCode {
        eprintln!("aisopod: {}", super::reason());
        ExitCode::from(HELPER_FAILED)
    }
}
