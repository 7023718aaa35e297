//! The sandbox's error: why a run could not be checked, started or finished. Every file
//! of the sandbox returns it, so it lives below them all and names only the types its
//! variants carry; it never starts, checks or reports anything itself.

use std::path::PathBuf;
use std::time::Duration;

use super::cgroups::manager::CgroupError;
use crate::config::sandbox::Language;

/// Why a run could not be started or finished.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("code execution is disabled ([tools.sandbox] enabled = false)")]
    Disabled,
    #[error("unknown language {0:?}: use python, javascript or bash")]
    UnknownLanguage(String),
    #[error(
        "language {language} is not allowed here ([tools.sandbox] allowed_languages = {allowed})"
    )]
    LanguageNotAllowed { language: Language, allowed: String },
    #[error("the program is empty")]
    EmptyCode,
    #[error(
        "the program is {size} bytes, more than the limit of {limit} ([tools.sandbox] max_code)"
    )]
    CodeTooLarge { size: u64, limit: u64 },
    #[error("the program is not text: {reason}")]
    CodeNotText { reason: String },
    #[error("input file {name:?}: {reason}")]
    BadFile { name: String, reason: String },
    #[error("{what} {value} is out of range: must be {range}")]
    LimitOutOfRange {
        what: &'static str,
        value: String,
        range: String,
    },
    #[error(
        "no {program} found for {language} (looked in {searched}): install it, or remove {language} from [tools.sandbox] allowed_languages"
    )]
    InterpreterMissing {
        language: Language,
        program: &'static str,
        searched: String,
    },
    #[error("the sandbox is unavailable on this host: {0} (see `aisopod sandbox check`)")]
    Unavailable(String),
    #[error(
        "the sandbox is busy: {running} run(s) at once is the limit and none finished within {waited:?} ([tools.sandbox] max_concurrent, queue_timeout)"
    )]
    Busy { running: usize, waited: Duration },
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("cannot start the sandbox helper {exe}: {source}")]
    Spawn {
        exe: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sandbox setup failed: cannot {stage}: {message}")]
    Setup { stage: String, message: String },
    #[error("sandbox helper: {0}")]
    Protocol(String),
}

impl SandboxError {
    /// Errors caused by the request rather than by the host: the caller can fix them.
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            SandboxError::UnknownLanguage(_)
                | SandboxError::LanguageNotAllowed { .. }
                | SandboxError::EmptyCode
                | SandboxError::CodeTooLarge { .. }
                | SandboxError::CodeNotText { .. }
                | SandboxError::BadFile { .. }
                | SandboxError::LimitOutOfRange { .. }
        )
    }
}
