//! `aisopod backup create PATH | restore PATH`.
//!
//! `create` asks the store for a snapshot (through a running gateway's admin socket, or
//! directly with none running), which comes sealed under a one-time key, and re-seals
//! it under the passphrase into PATH (written 0600 to a temporary file beside it, then
//! renamed). The passphrase never leaves this process. `restore` refuses while a
//! gateway runs, holds the data directory's lock throughout, opens the file with the
//! passphrase, reads and checks all of it into a staging directory and only then swaps
//! it in; afterwards it records the restore in the restored audit log and verifies the
//! chain. Progress goes to stderr for backups that take a while.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::admin::{self, AdminRequest, AdminResponse};
use crate::audit::{AuditEvent, Outcome};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::keys::backup_crypto::{
    self, BackupCryptoError, Decryptor, Encryptor, KdfCost, TransientSnapshot,
};
use crate::secret::Secret;
use crate::server::state::Services;
use crate::store::StoreError;
use crate::store::backup::{BackupError, DataDirLock, SnapshotStats};

/// The environment variable scripts may pass the passphrase in.
pub const PASSPHRASE_ENV: &str = "AISOPOD_BACKUP_PASSPHRASE";
const COPY_BUFFER: usize = 256 * 1024;

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Write an encrypted backup of the store, certificates and master key to PATH
    Create {
        path: PathBuf,
        /// Read the passphrase from the first line of stdin (else $AISOPOD_BACKUP_PASSPHRASE, else a prompt)
        #[arg(long)]
        passphrase_stdin: bool,
        /// Replace PATH if it exists
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Replace the store, certificates and master key with a backup's (stop the gateway first)
    Restore {
        path: PathBuf,
        /// Read the passphrase from the first line of stdin (else $AISOPOD_BACKUP_PASSPHRASE, else a prompt)
        #[arg(long)]
        passphrase_stdin: bool,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(config_path: Option<&Path>, command: BackupCommand) -> anyhow::Result<ExitCode> {
    let config = super::common::load_config(config_path)?;
    crate::logging::init_cli();
    match command {
        BackupCommand::Create {
            path,
            passphrase_stdin,
            force,
            json,
        } => create(config, &path, passphrase_stdin, force, json),
        BackupCommand::Restore {
            path,
            passphrase_stdin,
            json,
        } => restore(config, &path, passphrase_stdin, json),
    }
}

fn create(
    config: Config,
    path: &Path,
    passphrase_stdin: bool,
    force: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if path.symlink_metadata().is_ok() && !force {
        bail!("{} exists; pass --force to replace it", path.display());
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let passphrase = read_passphrase(passphrase_stdin, true)?;
    backup_crypto::check_passphrase(&passphrase)?;
    let started = Instant::now();

    let snapshot: TransientSnapshot = super::common::expect_answer!(
        super::common::dispatch(config, AdminRequest::BackupSnapshot)?,
        AdminResponse::BackupSnapshot(snapshot) => snapshot
    );
    let _snapshot_file = RemoveSnapshotOnDrop(snapshot.path.clone());
    let key = snapshot
        .key()
        .context("the snapshot answer carries no usable key")?;
    let input = File::open(&snapshot.path)
        .with_context(|| format!("opening the snapshot {}", snapshot.path.display()))?;
    let total = input.metadata().map(|m| m.len()).ok();
    let mut reader = Decryptor::with_key(BufReader::new(input), &key)?;

    let (temp_path, temp) = create_beside(path)?;
    let mut temp_guard = RemoveOnDrop(Some(temp_path.clone()));
    let mut sealed = Encryptor::with_passphrase(
        BufWriter::with_capacity(COPY_BUFFER, temp),
        &passphrase,
        KdfCost::default(),
    )?;
    let mut progress = Progress::new("backup", total);
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(backup_crypto::unwrap_envelope)?;
        if n == 0 {
            break;
        }
        sealed
            .write_all(buf.get(..n).unwrap_or_default())
            .with_context(|| format!("writing {}", temp_path.display()))?;
        progress.update(reader.consumed());
    }
    reader.finish()?;
    let (out, size) = sealed.finish()?;
    let file = out
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", temp_path.display()))?;
    file.sync_all()
        .with_context(|| format!("writing {}", temp_path.display()))?;
    drop(file);
    std::fs::rename(&temp_path, path)
        .with_context(|| format!("moving the backup into place at {}", path.display()))?;
    temp_guard.0 = None;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    progress.finish();

    let stats = &snapshot.stats;
    let seconds = started.elapsed().as_secs_f64();
    if json {
        super::common::print_json(&serde_json::json!({
            "path": path,
            "bytes": size,
            "seconds": seconds,
            "snapshot": stats,
        }))?;
    } else {
        println!(
            "backup written to {}: {} records in {} trees and {} files, {} bytes encrypted, in {seconds:.1} s (store writes paused {} ms)",
            path.display(),
            stats.records,
            stats.trees,
            stats.files,
            size,
            stats.paused_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}

const RUNNING: &str = "a gateway is running on this data directory: stop it first (for example \
                       `systemctl stop aisopod`), then run the restore again; nothing was changed";

fn restore(
    config: Config,
    path: &Path,
    passphrase_stdin: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let socket = admin::socket_path(&config);
    if let Ok(Some(_)) = admin::send(&socket, &AdminRequest::Status, Duration::from_secs(5)) {
        bail!("{RUNNING}");
    }
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let data_dir = config.storage.data_dir.clone();
    // Restoring onto a new device is setup: it may create the data directory.
    super::common::check_data_dir(&config, super::common::Create::Setup)?;
    crate::fsutil::ensure_private_dir(&data_dir)?;
    let lock = DataDirLock::take(&data_dir).map_err(|err| match err {
        BackupError::Store(StoreError::Locked { .. }) => anyhow::anyhow!("{RUNNING}"),
        other => anyhow::Error::from(other).context("preparing the data directory"),
    })?;
    let passphrase = read_passphrase(passphrase_stdin, false)?;
    let refused = |err: BackupCryptoError| anyhow::anyhow!("{err}; nothing was changed");
    let mut reader =
        Decryptor::with_passphrase(BufReader::with_capacity(COPY_BUFFER, file), &passphrase)
            .map_err(refused)?;
    let staged = {
        let tracked = Tracked {
            inner: &mut reader,
            progress: Progress::new("restore", Some(meta.len())),
        };
        crate::store::backup::stage(&lock, tracked).map_err(|err| match err {
            BackupError::Read(io) if BackupCryptoError::from_io(&io).is_some() => {
                refused(backup_crypto::unwrap_envelope(io))
            }
            other => anyhow::anyhow!("{other}; nothing was changed"),
        })?
    };
    reader.finish().map_err(refused)?;
    let stats: SnapshotStats = staged
        .commit(&lock)
        .context("swapping the restored data into place (the next start finishes the swap)")?;
    drop(lock);

    // The restore is part of the restored history.
    let services = Services::open(config, Arc::new(SystemClock))?;
    services.audit.record(
        AuditEvent::new("backup.restore")
            .actor(super::common::cli_actor())
            .target(path.display().to_string())
            .outcome(Outcome::Success)
            .details(serde_json::json!({
                "created": stats.created,
                "aisopod": stats.aisopod,
                "records": stats.records,
            })),
    )?;
    let verified = services.audit.verify();
    drop(services);
    // Opening the store as root may have made files the gateway's user could not open.
    for item in crate::store::backup::ITEMS {
        crate::store::backup::adopt_owner(&data_dir, &data_dir.join(item))?;
    }
    if json {
        super::common::print_json(&serde_json::json!({
            "restored": stats,
            "audit": match &verified {
                Ok(v) => serde_json::to_value(v)?,
                Err(err) => serde_json::json!({ "error": err.to_string() }),
            },
        }))?;
    } else {
        println!(
            "restored the backup made {} by aisopod {}: {} records in {} trees and {} files",
            stats.created, stats.aisopod, stats.records, stats.trees, stats.files
        );
    }
    match verified {
        Ok(v) => {
            if !json {
                println!("audit chain: ok, {} records", v.records);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("aisopod: the restored audit chain does not verify: {err}");
            Ok(ExitCode::from(super::common::EXIT_ERROR))
        }
    }
}

/// The passphrase: from stdin with the flag, else the environment, else a prompt (twice
/// for a new backup).
fn read_passphrase(from_stdin: bool, confirm: bool) -> anyhow::Result<Secret> {
    if from_stdin {
        return super::auth::read_password("")
            .map_err(|e| anyhow::anyhow!("{e:#}").context("reading the passphrase from stdin"));
    }
    if let Some(value) = std::env::var_os(PASSPHRASE_ENV) {
        let value = value
            .into_string()
            .map_err(|_| anyhow::anyhow!("{PASSPHRASE_ENV} is not valid UTF-8"))?;
        if value.is_empty() {
            bail!("{PASSPHRASE_ENV} is empty");
        }
        return Ok(Secret::new(value));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no passphrase: give it with --passphrase-stdin or {PASSPHRASE_ENV}, or run on a terminal"
        );
    }
    let first = Secret::new(
        rpassword::prompt_password("Backup passphrase: ").context("reading the passphrase")?,
    );
    if confirm {
        let second = Secret::new(
            rpassword::prompt_password("Repeat it: ").context("reading the passphrase")?,
        );
        if first != second {
            bail!("the passphrases do not match");
        }
    }
    if first.is_empty() {
        bail!("no passphrase given");
    }
    Ok(first)
}

/// A new private file beside `path`, for a write that is renamed into place.
fn create_beside(path: &Path) -> anyhow::Result<(PathBuf, File)> {
    let name = path
        .file_name()
        .context("the backup path has no file name")?
        .to_string_lossy()
        .into_owned();
    for attempt in 0..16u32 {
        let temp = path.with_file_name(format!(".{name}.tmp-{}-{attempt}", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
        {
            Ok(file) => return Ok((temp, file)),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => {
                return Err(err).with_context(|| format!("creating {}", temp.display()));
            }
        }
    }
    bail!("cannot create a temporary file beside {}", path.display())
}

/// Removes a file when dropped, unless disarmed (`.0 = None`).
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Removes the gateway's transient snapshot when dropped, and its `backup-tmp/`
/// directory with it once no other backup's snapshot is in there (`remove_dir` only
/// removes an empty directory), so that a backup leaves nothing behind.
struct RemoveSnapshotOnDrop(PathBuf);

impl Drop for RemoveSnapshotOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Feeds a decrypting reader's progress to a [`Progress`].
struct Tracked<'a, R: Read> {
    inner: &'a mut Decryptor<R>,
    progress: Progress,
}

impl<R: Read> Read for Tracked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.update(self.inner.consumed());
        if n == 0 {
            self.progress.finish();
        }
        Ok(n)
    }
}

/// Progress on stderr: shown once an operation has taken half a second, redrawn in place
/// on a terminal, a line every few seconds otherwise.
struct Progress {
    label: &'static str,
    total: Option<u64>,
    started: Instant,
    last: Option<Instant>,
    tty: bool,
    shown: bool,
}

impl Progress {
    fn new(label: &'static str, total: Option<u64>) -> Progress {
        Progress {
            label,
            total,
            started: Instant::now(),
            last: None,
            tty: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    fn update(&mut self, done: u64) {
        let now = Instant::now();
        if now.duration_since(self.started) < Duration::from_millis(500) {
            return;
        }
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < every)
        {
            return;
        }
        self.last = Some(now);
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        let text = match self.total {
            Some(total) if total > 0 => format!(
                "{}: {:.1} of {:.1} MiB ({}%)",
                self.label,
                mib(done),
                mib(total),
                done.saturating_mul(100) / total
            ),
            _ => format!("{}: {:.1} MiB", self.label, mib(done)),
        };
        if self.tty {
            eprint!("\r{text}   ");
        } else {
            eprintln!("{text}");
        }
        self.shown = true;
    }

    fn finish(&mut self) {
        if self.tty && self.shown {
            eprintln!();
            self.shown = false;
        }
    }
}
