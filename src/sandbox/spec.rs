//! What a run is: the language and its interpreter, the program and its input files, the
//! limits it runs under, and what comes back (exit status, reason, output, files).
//!
//! Everything a caller hands in is checked here, before any process, cgroup or mount
//! exists, so that bad input never leaves anything behind. This module starts nothing.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_with::As;
use serde_with::base64::Base64;

use super::error::SandboxError;

/// The uid and gid the program has inside its user namespace.
pub const SANDBOX_ID: u32 = 1000;
/// Where the program's working directory is inside the sandbox.
pub const WORK_DIR: &str = "/work";
/// Host directories searched for interpreters, in order. Each lies under a directory
/// the sandbox mounts read-only, so the same path works inside.
pub const INTERPRETER_DIRS: [&str; 3] = ["/usr/local/bin", "/usr/bin", "/bin"];
/// Longest input or output file name.
const MAX_FILE_NAME: usize = 128;

pub use crate::config::sandbox::{Language, Limits, ranges};

impl Language {
    /// Parses a language name as config files and flags write it.
    pub fn parse(text: &str) -> Result<Language, SandboxError> {
        Language::from_name(text).ok_or_else(|| SandboxError::UnknownLanguage(text.to_string()))
    }

    /// The interpreter's program name, looked up in [`INTERPRETER_DIRS`].
    pub fn program(self) -> &'static str {
        match self {
            Language::Python => "python3",
            Language::Javascript => "node",
            Language::Bash => "bash",
        }
    }

    /// The program's file name in the working directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Language::Python => "main.py",
            Language::Javascript => "main.js",
            Language::Bash => "main.sh",
        }
    }

    /// Interpreter arguments before the program path.
    ///
    /// Python runs isolated (`-I`: no user site, no `PYTHON*` variables) and writes no
    /// bytecode. Node runs without its JIT (`--jitless`): the gateway's service runs with
    /// MemoryDenyWriteExecute=yes, which every child inherits and which a JIT cannot live
    /// with, and a JIT is also the richest source of exploitable engine bugs. WebAssembly
    /// needs the JIT, so it is switched off explicitly rather than with a warning.
    pub fn interpreter_args(self) -> &'static [&'static str] {
        match self {
            Language::Python => &["-I", "-B"],
            Language::Javascript => &["--jitless", "--no-expose-wasm"],
            Language::Bash => &["--noprofile", "--norc"],
        }
    }

    /// Finds the interpreter on this host.
    pub fn find_interpreter(self) -> Result<PathBuf, SandboxError> {
        find_in(self.program(), &INTERPRETER_DIRS).ok_or_else(|| SandboxError::InterpreterMissing {
            language: self,
            program: self.program(),
            searched: INTERPRETER_DIRS.join(", "),
        })
    }
}

/// The first executable regular file named `program` in `dirs`.
pub fn find_in(program: &str, dirs: &[&str]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    dirs.iter()
        .map(|dir| Path::new(dir).join(program))
        .find(|path| {
            std::fs::metadata(path)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// One file handed to the program, or one it wrote.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileData {
    pub name: String,
    #[serde(with = "As::<Base64>")]
    pub data: Vec<u8>,
}

impl fmt::Debug for FileData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileData")
            .field("name", &self.name)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// Checks a file name: a plain name in the working directory, nothing that could point
/// elsewhere or hide (`/`, `..`, a leading dot, control characters).
pub fn check_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_FILE_NAME {
        return Err(format!("must be 1 to {MAX_FILE_NAME} bytes long"));
    }
    if name.starts_with('.') {
        return Err("must not start with a dot".into());
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return Err("must be a plain file name (no '/' or control characters)".into());
    }
    Ok(())
}

/// Regular files in `dir` that a run created or changed (anything not in `inputs` with
/// the same contents), capped by the count and size limits; returns them, sorted by
/// name, and how many were left out. The directory is written by untrusted code, so a
/// file is opened without following symlinks or blocking on a FIFO, and its type and
/// size are checked on the open descriptor.
pub fn collect_files(dir: &Path, inputs: &[FileData], limits: &Limits) -> (Vec<FileData>, usize) {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        Err(_) => return (Vec::new(), 0),
    };
    names.sort();
    let mut files = Vec::new();
    let mut dropped = 0;
    for name in names {
        let Some(data) = read_regular(&dir.join(&name), limits.max_file_size) else {
            dropped += 1;
            continue;
        };
        if inputs.iter().any(|f| f.name == name && f.data == data) {
            continue;
        }
        if files.len() >= limits.max_files || check_file_name(&name).is_err() {
            dropped += 1;
            continue;
        }
        files.push(FileData { name, data });
    }
    (files, dropped)
}

fn read_regular(path: &Path, max: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > max {
        return None;
    }
    let mut data = Vec::new();
    file.take(max + 1).read_to_end(&mut data).ok()?;
    (data.len() as u64 <= max).then_some(data)
}

/// What a caller asks to run; the admin socket carries it as it is.
#[derive(Clone, Serialize, Deserialize)]
pub struct RunRequest {
    pub language: Language,
    #[serde(with = "As::<Base64>")]
    pub code: Vec<u8>,
    #[serde(default)]
    pub files: Vec<FileData>,
    /// Tighter or other limits for this run; `None` keeps the configured value.
    #[serde(default, rename = "timeout_ms", with = "optional_millis")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub memory: Option<u64>,
    #[serde(default)]
    pub network: Option<bool>,
}

/// A duration on the wire as whole milliseconds.
mod optional_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

impl fmt::Debug for RunRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunRequest")
            .field("language", &self.language)
            .field("code_bytes", &self.code.len())
            .field("files", &self.files)
            .field("timeout", &self.timeout)
            .field("memory", &self.memory)
            .field("network", &self.network)
            .finish()
    }
}

impl RunRequest {
    pub fn new(language: Language, code: impl Into<Vec<u8>>) -> Self {
        RunRequest {
            language,
            code: code.into(),
            files: Vec::new(),
            timeout: None,
            memory: None,
            network: None,
        }
    }

    /// Checks the program and its files against the limits; returns the program text.
    pub fn check(&self, max_code: u64, limits: &Limits) -> Result<(), SandboxError> {
        if self.code.len() as u64 > max_code {
            return Err(SandboxError::CodeTooLarge {
                size: self.code.len() as u64,
                limit: max_code,
            });
        }
        let text = std::str::from_utf8(&self.code).map_err(|err| SandboxError::CodeNotText {
            reason: format!(
                "it is not UTF-8 (invalid byte at offset {})",
                err.valid_up_to()
            ),
        })?;
        if text.contains('\0') {
            return Err(SandboxError::CodeNotText {
                reason: "it contains a NUL byte".into(),
            });
        }
        if text.trim().is_empty() {
            return Err(SandboxError::EmptyCode);
        }
        if self.files.len() > limits.max_files {
            return Err(SandboxError::BadFile {
                name: String::new(),
                reason: format!(
                    "{} input files, more than the limit of {}",
                    self.files.len(),
                    limits.max_files
                ),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for file in &self.files {
            check_file_name(&file.name).map_err(|reason| SandboxError::BadFile {
                name: file.name.clone(),
                reason,
            })?;
            if file.name == self.language.file_name() || !seen.insert(file.name.as_str()) {
                return Err(SandboxError::BadFile {
                    name: file.name.clone(),
                    reason: "the name is used twice (or is the program's own file)".into(),
                });
            }
            if file.data.len() as u64 > limits.max_file_size {
                return Err(SandboxError::BadFile {
                    name: file.name.clone(),
                    reason: format!(
                        "{} bytes, more than the limit of {}",
                        file.data.len(),
                        limits.max_file_size
                    ),
                });
            }
        }
        Ok(())
    }

    /// The configured limits with this request's overrides, each checked against its range.
    pub fn limits(&self, configured: &Limits) -> Result<Limits, SandboxError> {
        let mut limits = configured.clone();
        if let Some(timeout) = self.timeout {
            let (min, max) = ranges::TIMEOUT;
            if timeout < min || timeout > max {
                return Err(SandboxError::LimitOutOfRange {
                    what: "timeout",
                    value: humantime::format_duration(timeout).to_string(),
                    range: format!(
                        "{} to {}",
                        humantime::format_duration(min),
                        humantime::format_duration(max)
                    ),
                });
            }
            limits.timeout = timeout;
        }
        if let Some(memory) = self.memory {
            let (min, max) = ranges::MEMORY;
            if memory < min || memory > max {
                return Err(SandboxError::LimitOutOfRange {
                    what: "memory",
                    value: memory.to_string(),
                    range: format!("{} to {} bytes (16m to 64g)", min, max),
                });
            }
            limits.memory = memory;
        }
        if let Some(network) = self.network {
            limits.network = network;
        }
        Ok(limits)
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// The program exited by itself (any status).
    Exited,
    /// The wall-clock timeout killed the run.
    Timeout,
    /// The memory limit killed the run.
    Memory,
    /// The run reached its process limit and was killed.
    Pids,
    /// The program died of a signal it did not get from a limit.
    Signal,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Exited => "exited",
            Reason::Timeout => "timeout",
            Reason::Memory => "memory",
            Reason::Pids => "pids",
            Reason::Signal => "signal",
        }
    }
}

/// Exit status reported for a run the timeout ended (as `timeout(1)` does).
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit status reported for a run a limit killed (128 + SIGKILL).
pub const EXIT_KILLED: i32 = 137;

/// What a run produced.
#[derive(Clone, Serialize, Deserialize)]
pub struct RunOutcome {
    pub exit_code: i32,
    pub reason: Reason,
    #[serde(with = "lossy_text")]
    pub stdout: Vec<u8>,
    #[serde(with = "lossy_text")]
    pub stderr: Vec<u8>,
    /// Output beyond `max_output` on either stream was dropped.
    pub truncated: bool,
    pub duration_ms: u64,
    /// Highest memory use of the run's cgroup, where the kernel reports it.
    pub peak_memory: Option<u64>,
    /// Files the program created or changed in its working directory.
    pub files: Vec<FileData>,
    /// Files left out because of the count or size caps.
    pub files_dropped: usize,
}

impl fmt::Debug for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOutcome")
            .field("exit_code", &self.exit_code)
            .field("reason", &self.reason)
            .field("stdout_bytes", &self.stdout.len())
            .field("stderr_bytes", &self.stderr.len())
            .field("truncated", &self.truncated)
            .field("duration_ms", &self.duration_ms)
            .field("peak_memory", &self.peak_memory)
            .field("files", &self.files)
            .finish()
    }
}

/// Program output as text in JSON (invalid UTF-8 replaced), for people and tools.
mod lossy_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(d)?.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::cgroups::manager::tests::limits;

    #[test]
    fn languages_parse_by_name_only() {
        assert_eq!(Language::parse("Python").unwrap(), Language::Python);
        assert_eq!(Language::parse("javascript").unwrap(), Language::Javascript);
        assert!(matches!(
            Language::parse("ruby"),
            Err(SandboxError::UnknownLanguage(name)) if name == "ruby"
        ));
    }

    #[test]
    fn bad_programs_are_refused_before_anything_starts() {
        let limits = limits();
        let check = |code: &[u8]| RunRequest::new(Language::Python, code).check(2048, &limits);
        assert!(matches!(check(b"  \n"), Err(SandboxError::EmptyCode)));
        assert!(matches!(
            check(b"\xff\xfe"),
            Err(SandboxError::CodeNotText { .. })
        ));
        assert!(matches!(
            check(b"print(1)\0"),
            Err(SandboxError::CodeNotText { .. })
        ));
        assert!(matches!(
            check(&[b'#'; 4096]),
            Err(SandboxError::CodeTooLarge {
                size: 4096,
                limit: 2048
            })
        ));
        assert!(check(b"print(1)").is_ok());
    }

    #[test]
    fn file_names_cannot_leave_the_working_directory() {
        for bad in ["", "../x", "a/b", ".hidden", "x\ny", &"n".repeat(200)] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_file_name("data.csv").is_ok());
        let mut request = RunRequest::new(Language::Python, "print(1)");
        request.files.push(FileData {
            name: "main.py".into(),
            data: vec![],
        });
        assert!(matches!(
            request.check(2048, &limits()),
            Err(SandboxError::BadFile { .. })
        ));
    }

    #[test]
    fn overrides_are_range_checked() {
        let mut request = RunRequest::new(Language::Bash, "true");
        request.timeout = Some(Duration::from_secs(7200));
        assert!(matches!(
            request.limits(&limits()),
            Err(SandboxError::LimitOutOfRange {
                what: "timeout",
                ..
            })
        ));
        request.timeout = Some(Duration::from_secs(2));
        request.memory = Some(1024);
        assert!(matches!(
            request.limits(&limits()),
            Err(SandboxError::LimitOutOfRange { what: "memory", .. })
        ));
        request.memory = Some(64 << 20);
        let limits = request.limits(&limits()).unwrap();
        assert_eq!(limits.timeout, Duration::from_secs(2));
        assert_eq!(limits.memory, 64 << 20);
    }

    #[test]
    fn only_new_or_changed_regular_files_come_back_within_the_caps() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, data: &[u8]| std::fs::write(dir.path().join(name), data).unwrap();
        write("main.py", b"print(1)");
        write("same.txt", b"unchanged");
        write("changed.txt", b"new");
        write("big.bin", &[0u8; 2048]);
        write("a.txt", b"a");
        write("b.txt", b"b");
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link")).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        nix::unistd::mkfifo(&dir.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let inputs = vec![
            FileData {
                name: "main.py".into(),
                data: b"print(1)".to_vec(),
            },
            FileData {
                name: "same.txt".into(),
                data: b"unchanged".to_vec(),
            },
            FileData {
                name: "changed.txt".into(),
                data: b"old".to_vec(),
            },
        ];
        let mut limits = limits();
        limits.max_file_size = 1024;
        limits.max_files = 2;
        let (files, dropped) = collect_files(dir.path(), &inputs, &limits);
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["a.txt", "b.txt"]);
        // big.bin (size), changed.txt (count), fifo, link, sub (not regular files)
        assert_eq!(dropped, 5);
    }

    #[test]
    fn interpreters_are_found_in_system_directories() {
        let dir = tempfile::tempdir().unwrap();
        let dir_str = dir.path().to_str().unwrap();
        assert_eq!(find_in("python3", &[dir_str]), None);
        let path = dir.path().join("python3");
        std::fs::write(&path, "").unwrap();
        assert_eq!(find_in("python3", &[dir_str]), None, "not executable");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_in("python3", &[dir_str]), Some(path));
    }
}
