//! The sandbox's settings as plain data: the languages it may run, the limits of a run
//! and the ranges they must lie in, and which cgroup interface to use. The sandbox owns
//! what these mean (interpreters, cgroup files); this module only names and bounds them.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A language the sandbox runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Python,
    Javascript,
    Bash,
}

impl Language {
    pub const ALL: [Language; 3] = [Language::Python, Language::Javascript, Language::Bash];

    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Javascript => "javascript",
            Language::Bash => "bash",
        }
    }

    /// The language a config file or flag names, ignoring case and surrounding space.
    pub fn from_name(text: &str) -> Option<Language> {
        let wanted = text.trim().to_ascii_lowercase();
        Language::ALL.into_iter().find(|l| l.name() == wanted)
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Limits of one run. Built from `[tools.sandbox]`, optionally tightened per run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall clock, from start to the kill of every process of the run.
    pub timeout: Duration,
    /// Bytes of memory (including tmpfs pages the program writes).
    pub memory: u64,
    /// Fraction of one CPU, in thousandths (500 = half a CPU).
    pub cpu_millis: u32,
    /// Processes and threads at once.
    pub pids: u64,
    /// Bytes kept of each of stdout and stderr.
    pub max_output: u64,
    /// Size of each writable tmpfs (`/work`, `/tmp`, `/dev/shm`).
    pub tmp_size: u64,
    /// Input files accepted, and output files returned, per run.
    pub max_files: usize,
    /// Largest input or output file.
    pub max_file_size: u64,
    /// Whether the run shares the host's network instead of an empty namespace.
    pub network: bool,
}

/// Ranges every limit must lie in, whether it comes from the config or a flag.
pub mod ranges {
    use std::time::Duration;

    pub const TIMEOUT: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(3600));
    pub const MEMORY: (u64, u64) = (16 << 20, 64 << 30);
    /// In thousandths of a CPU.
    pub const CPU_MILLIS: (u32, u32) = (10, 64_000);
    pub const PIDS: (u64, u64) = (8, 4096);
    pub const MAX_OUTPUT: (u64, u64) = (1 << 10, 64 << 20);
    pub const TMP_SIZE: (u64, u64) = (1 << 20, 4 << 30);
    pub const MAX_CODE: (u64, u64) = (1 << 10, 768 << 10);
    pub const MAX_CONCURRENT: (u64, u64) = (1, 64);
    pub const MAX_FILES: (u64, u64) = (0, 256);
    pub const QUEUE_TIMEOUT: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(600));
}

/// Which cgroup interface to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preference {
    /// v2 when it has the memory and pids controllers, else v1 when those are mounted,
    /// else whichever has more.
    Auto,
    V1,
    V2,
}
