//! Durability as a user sees it: an audit record whose append returned survives a
//! SIGKILL at any moment, an acknowledged write reaches the disk through `fsync` before
//! the acknowledgement leaves the process (checked with strace), a full disk is
//! reported clearly and recovered from, and a store held by a running gateway is
//! refused with a message that points at the admin socket.
//!
//! Tests that need a process of their own (one to kill, one to run out of disk space)
//! re-execute this test binary to run a "child" test selected with `--exact`; the child
//! tests return at once unless their environment variable is set. Both `cargo test` and
//! `cargo nextest run` run the libtest harness, so this works under either.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aisopod::audit::{Audit, AuditError, AuditEvent};
use aisopod::clock::SystemClock;
use aisopod::config::{self, ProcessEnvironment};
use aisopod::keys::secrets::Secrets;
use aisopod::server::state::Services;
use aisopod::store::Store;

use crate::support::{self, BIN, Setup};

// ---------------------------------------------------------------------------------------
// Child processes and small helpers.

/// Set in a child run of [`audit_appender_child`]: the data directory to append to.
const APPENDER_DIR: &str = "AISOPOD_TEST_APPENDER_DIR";
/// How many threads the appender child appends from.
const APPENDER_THREADS: &str = "AISOPOD_TEST_APPENDER_THREADS";
/// Set in a child run of [`disk_full_child`]: the config file to open.
const DISK_FULL_CONFIG: &str = "AISOPOD_TEST_DISK_FULL_CONFIG";
/// The filler file the disk-full child deletes to free space.
const DISK_FULL_FILLER: &str = "AISOPOD_TEST_DISK_FULL_FILLER";
/// Repeats a crash test run: the seed it printed.
const SEED: &str = "AISOPOD_TEST_SEED";
/// Prefix of the lines children report on; libtest may print on the same line first.
const REPORT: &str = "aisopod-child: ";

/// Starts this test binary again, running only the test `name`.
fn spawn_child(name: &str, env: &[(&str, &OsStr)], stderr: Stdio) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new(exe);
    command
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env_remove(APPENDER_DIR)
        .env_remove(DISK_FULL_CONFIG)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().unwrap()
}

/// Writes one report line to stdout at once (children are killed without warning).
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{REPORT}{line}").unwrap();
    out.flush().unwrap();
}

/// The reports in a child's output, without the prefix.
fn reports(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.split_once(REPORT).map(|(_, rest)| rest.to_string()))
        .collect()
}

/// Kills and reaps a child when a test fails half-way.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// xorshift64: enough randomness to pick kill moments, reproducible from its seed.
struct XorShift(u64);

impl XorShift {
    fn seeded() -> (XorShift, u64) {
        let seed = match std::env::var(SEED) {
            Ok(text) => text.parse().unwrap(),
            Err(_) => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos();
                nanos as u64 ^ u64::from(std::process::id())
            }
        };
        // xorshift never leaves 0.
        let seed = seed | 1;
        (XorShift(seed), seed)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `low..high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }
}

/// Polls `done` until it holds or `limit` passes; true when it held.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    done()
}

/// Opens the store, keys and audit log of a data directory the way the gateway does.
fn open_audit(data_dir: &Path) -> (Store, Audit) {
    let store = Store::open(data_dir, 1 << 20)
        .unwrap_or_else(|err| panic!("cannot open the store in {}: {err}", data_dir.display()));
    let secrets = Secrets::open(data_dir, &store)
        .unwrap_or_else(|err| panic!("cannot open the keys in {}: {err}", data_dir.display()));
    let audit = Audit::open(&store, &secrets, Arc::new(SystemClock))
        .unwrap_or_else(|err| panic!("cannot open the audit log in {}: {err}", data_dir.display()));
    (store, audit)
}

fn all_seqs(audit: &Audit) -> BTreeSet<u64> {
    audit.all().map(|record| record.unwrap().seq).collect()
}

// ---------------------------------------------------------------------------------------
// 1. SIGKILL at a random moment never loses an acknowledged audit record.

/// Child of the crash test: appends audit records as fast as it can from one or more
/// threads and reports each seq once `record` has returned it.
#[test]
fn audit_appender_child() {
    let Some(dir) = std::env::var_os(APPENDER_DIR) else {
        return;
    };
    let threads: usize = std::env::var(APPENDER_THREADS)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let (_store, audit) = open_audit(Path::new(&dir));
    let audit = Arc::new(audit);
    report("open");
    let workers: Vec<_> = (0..threads)
        .map(|thread| {
            let audit = audit.clone();
            std::thread::spawn(move || {
                for i in 0u64.. {
                    let event = AuditEvent::new("test.append")
                        .target(format!("thread-{thread}"))
                        .details(serde_json::json!({ "i": i }));
                    match audit.record(event) {
                        Ok(seq) => report(&format!("ack {seq}")),
                        Err(err) => panic!("append failed: {err}"),
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
}

#[derive(Debug, Default)]
struct CrashTotals {
    kills: usize,
    kills_before_first_ack: usize,
    acknowledged: usize,
    found: usize,
    /// The longest time a child took from start to its first acknowledged record; early
    /// kills pick their moment within it, so that they land while the store opens.
    startup: Duration,
}

/// One store's life across several SIGKILLs: what the earlier rounds found.
struct CrashedStore {
    dir: PathBuf,
    threads: usize,
    found: BTreeSet<u64>,
}

#[test]
fn acknowledged_audit_records_survive_sigkill() {
    let started = Instant::now();
    let (mut rng, seed) = XorShift::seeded();
    eprintln!("crash test seed {seed} (set {SEED}={seed} to repeat this run)");
    let root = tempfile::tempdir().unwrap();
    let mut totals = CrashTotals::default();
    let mut round = 0;
    // Two stores that are killed again and again, one appended to by one thread, one by
    // four (so that grouped fsyncs are in flight when the kill lands)...
    let mut reused: Vec<CrashedStore> = [1, 4]
        .iter()
        .map(|&threads| CrashedStore {
            dir: root.path().join(format!("reused-{threads}")),
            threads,
            found: BTreeSet::new(),
        })
        .collect();
    for _ in 0..12 {
        for store in &mut reused {
            // One round in four kills without waiting for the child to have appended,
            // which lands the kill while the store is being opened or recovered.
            let early = rng.range(0, 4) == 0;
            crash_round(root.path(), store, early, round, &mut rng, &mut totals);
            round += 1;
        }
    }
    // ...and fresh stores, killed soon after start: often while sled, master.key and
    // the schema version are being created for the first time.
    for fresh in 0..8 {
        let mut store = CrashedStore {
            dir: root.path().join(format!("fresh-{fresh}")),
            threads: 1 + 2 * (fresh % 2),
            found: BTreeSet::new(),
        };
        crash_round(root.path(), &mut store, true, round, &mut rng, &mut totals);
        round += 1;
        // A second kill on the same store, now that it exists (or half exists).
        crash_round(root.path(), &mut store, false, round, &mut rng, &mut totals);
        round += 1;
    }
    eprintln!(
        "crash test: {} SIGKILLs ({} before the child's first acknowledgement; children took up \
         to {} ms to start appending), {} records acknowledged, {} records found after the kills \
         (acknowledged or not), seed {seed}, {:.1} s",
        totals.kills,
        totals.kills_before_first_ack,
        totals.startup.as_millis(),
        totals.acknowledged,
        totals.found,
        started.elapsed().as_secs_f64()
    );
    assert!(totals.kills >= 30, "only {} kills", totals.kills);
    assert!(
        totals.acknowledged >= 100,
        "only {} records were acknowledged in {} kills: the test did not exercise appends",
        totals.acknowledged,
        totals.kills
    );
}

/// Runs an appender child on `store`, SIGKILLs it at a random moment, then checks the
/// chain and that every acknowledged record (and every record seen before) is there.
fn crash_round(
    root: &Path,
    store: &mut CrashedStore,
    early: bool,
    round: usize,
    rng: &mut XorShift,
    totals: &mut CrashTotals,
) {
    let stderr_path = root.join(format!("child-{round}.stderr"));
    let threads = store.threads.to_string();
    let mut child = KillOnDrop(spawn_child(
        "durability::audit_appender_child",
        &[
            (APPENDER_DIR, store.dir.as_os_str()),
            (APPENDER_THREADS, OsStr::new(&threads)),
        ],
        Stdio::from(std::fs::File::create(&stderr_path).unwrap()),
    ));
    let child_stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let acks = Arc::new(AtomicUsize::new(0));
    let reader = {
        let stdout = child.0.stdout.take().unwrap();
        let acks = acks.clone();
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                for report in reports(&line) {
                    if let Some(seq) = report.strip_prefix("ack ") {
                        acked.push(seq.parse::<u64>().unwrap());
                        acks.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            acked
        })
    };
    let spawned = Instant::now();
    let delay = if early {
        let window = totals.startup.max(Duration::from_millis(50)).as_millis() as u64;
        Duration::from_millis(rng.range(0, window + 20))
    } else {
        let appending = wait_until(Duration::from_secs(30), || {
            acks.load(Ordering::SeqCst) > 0 || child.0.try_wait().unwrap().is_some()
        });
        totals.startup = totals.startup.max(spawned.elapsed());
        assert!(
            appending && acks.load(Ordering::SeqCst) > 0,
            "round {round}: the appender child on {} did not start appending:\n{}",
            store.dir.display(),
            child_stderr()
        );
        Duration::from_millis(rng.range(20, 300))
    };
    std::thread::sleep(delay);
    if let Some(status) = child.0.try_wait().unwrap() {
        panic!(
            "round {round}: the appender child on {} exited by itself ({status}) before the \
             kill:\n{}",
            store.dir.display(),
            child_stderr()
        );
    }
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "round {round}: {status}");
    let acked = reader.join().unwrap();
    totals.kills += 1;
    totals.acknowledged += acked.len();
    if acked.is_empty() {
        totals.kills_before_first_ack += 1;
    }

    let context = format!(
        "round {round}, store {}, {} thread(s), killed {} ms after {}",
        store.dir.display(),
        store.threads,
        delay.as_millis(),
        if early { "start" } else { "the first ack" }
    );
    let (_store, audit) = open_audit(&store.dir);
    let verified = audit.verify().unwrap_or_else(|err| {
        panic!("{context}: the audit chain does not verify after SIGKILL: {err}")
    });
    let found = all_seqs(&audit);
    assert_eq!(
        verified.records as usize,
        found.len(),
        "{context}: verify counted another number of records than are listed"
    );
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|s| !found.contains(s))
        .collect();
    assert!(
        lost.is_empty(),
        "{context}: {} acknowledged record(s) are missing after SIGKILL, the first {:?}; \
         {} acknowledged, {} found, last found {:?}",
        lost.len(),
        lost.iter().take(10).collect::<Vec<_>>(),
        acked.len(),
        found.len(),
        found.last()
    );
    let vanished: Vec<u64> = store.found.difference(&found).copied().collect();
    assert!(
        vanished.is_empty(),
        "{context}: records found after an earlier kill have disappeared: {:?}",
        vanished.iter().take(10).collect::<Vec<_>>()
    );
    totals.found += found.len() - store.found.len();
    store.found = found;
}

// ---------------------------------------------------------------------------------------
// 2. An acknowledged write is fsynced (file and directory) before it is acknowledged.

/// Syscalls traced: every way the processes write, sync or rename.
const TRACED: &str = "trace=fsync,fdatasync,sync_file_range,pwrite64,pwritev,pwritev2,write,\
                      writev,sendto,sendmsg,rename,renameat,renameat2";

/// One completed syscall from an `strace -f -y` log.
#[derive(Debug, Clone)]
struct Syscall {
    /// Position of the line where the call started, and where it returned.
    start: usize,
    end: usize,
    name: String,
    /// The first argument's `-y` annotation (`/path`, `pipe:[..]`, `socket:[..]`).
    fd_path: Option<String>,
    /// The first argument's fd number.
    fd: Option<i64>,
    /// Everything after the name: arguments and return value.
    text: String,
}

impl Syscall {
    fn returned_zero(&self) -> bool {
        self.text.trim_end().ends_with("= 0")
    }

    fn on(&self, path: &Path) -> bool {
        self.fd_path.as_deref() == path.to_str()
    }
}

/// Parses `strace -f -o` output, joining `<unfinished ...>` / `<... resumed>` halves.
fn parse_strace(log: &str) -> Vec<Syscall> {
    let mut calls = Vec::new();
    let mut pending: HashMap<String, (usize, String, String)> = HashMap::new();
    for (index, line) in log.lines().enumerate() {
        let (pid, rest) = line.split_once(' ').unwrap_or(("", line));
        let rest = rest.trim_start();
        if rest.starts_with("---") || rest.starts_with("+++") {
            continue;
        }
        let (start, name, text) = if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((name, tail)) = resumed.split_once(" resumed>") else {
                continue;
            };
            let Some((start, pending_name, head)) = pending.remove(pid) else {
                continue;
            };
            assert_eq!(pending_name, name, "strace log line {index}: {line}");
            (start, pending_name, format!("{head}{tail}"))
        } else {
            let Some((name, args)) = rest.split_once('(') else {
                continue;
            };
            if let Some(head) = args.strip_suffix(" <unfinished ...>") {
                pending.insert(pid.to_string(), (index, name.to_string(), head.to_string()));
                continue;
            }
            (index, name.to_string(), args.to_string())
        };
        let fd_end = text.find(['<', ',', ')']).unwrap_or(0);
        let fd = text.get(..fd_end).and_then(|n| n.trim().parse().ok());
        let fd_path = text
            .get(fd_end..)
            .filter(|t| t.starts_with('<'))
            .and_then(|t| {
                t.get(1..)?
                    .split_once(">,")
                    .or_else(|| t.get(1..)?.split_once(">)"))
            })
            .map(|(path, _)| path.to_string());
        calls.push(Syscall {
            start,
            end: index,
            name,
            fd_path,
            fd,
            text,
        });
    }
    calls
}

fn is_write(call: &Syscall) -> bool {
    matches!(
        call.name.as_str(),
        "write" | "pwrite64" | "pwritev" | "pwritev2" | "writev" | "sendto" | "sendmsg"
    )
}

/// Asserts that the last write to the sled log before `ack` is followed by an fsync of
/// the log file and one of its directory, both finished before `ack` started.
fn assert_synced_before(calls: &[Syscall], db_dir: &Path, ack: &Syscall, what: &str, log: &Path) {
    let log_file = db_dir.join("db");
    let last_write = calls
        .iter()
        .filter(|c| is_write(c) && c.on(&log_file) && c.end < ack.start)
        .max_by_key(|c| c.end)
        .unwrap_or_else(|| {
            panic!(
                "{what}: no write to {} before the acknowledgement (strace log {})",
                log_file.display(),
                log.display()
            )
        });
    let synced = |path: &Path| {
        calls.iter().any(|c| {
            // fdatasync also flushes the device cache and the file size; both count.
            matches!(c.name.as_str(), "fsync" | "fdatasync")
                && c.on(path)
                && c.start > last_write.end
                && c.end < ack.start
                && c.returned_zero()
        })
    };
    let between: Vec<String> = calls
        .iter()
        .filter(|c| c.start > last_write.end && c.end < ack.start)
        .filter(|c| c.on(&log_file) || c.on(db_dir))
        .map(|c| format!("{}({}", c.name, c.text))
        .collect();
    assert!(
        synced(&log_file),
        "{what}: after the last write to {} (strace line {}: {}({}) no successful fsync of it \
         finished before the acknowledgement (line {}: {}({}); calls on it in between: {between:?}; \
         strace log {}",
        log_file.display(),
        last_write.end + 1,
        last_write.name,
        last_write.text,
        ack.start + 1,
        ack.name,
        ack.text,
        log.display()
    );
    assert!(
        synced(db_dir),
        "{what}: after the last write to {} (strace line {}) no fsync of the directory {} \
         finished before the acknowledgement (line {}); calls in between: {between:?}; strace \
         log {}",
        log_file.display(),
        last_write.end + 1,
        db_dir.display(),
        ack.start + 1,
        log.display()
    );
}

fn strace_command(log: &Path) -> Command {
    let mut command = Command::new("strace");
    command
        .args(["-f", "-y", "-s", "256", "-e", TRACED, "-o"])
        .arg(log)
        .arg(BIN);
    command
}

fn require_strace() {
    let found = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "strace is not installed; install Debian's strace (apt-get install strace), which the \
         test script installs, to run the durability tests"
    );
}

#[test]
fn secrets_set_fsyncs_the_log_and_its_directory_before_confirming() {
    require_strace();
    let setup = Setup::new("");
    std::fs::create_dir_all(setup.data_dir()).unwrap();
    let data_dir = setup.data_dir().canonicalize().unwrap();
    let trace = setup.dir.path().join("cli.strace");
    let mut child = strace_command(&trace)
        .arg("--config")
        .arg(&setup.config)
        .args(["secrets", "set", "demo"])
        .env_remove("AISOPOD_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hunter2-but-longer\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "secrets set under strace failed: {}",
        support::stderr(&output)
    );
    assert!(
        support::stdout(&output).starts_with("stored demo"),
        "{}",
        support::stdout(&output)
    );
    let calls = parse_strace(&std::fs::read_to_string(&trace).unwrap());
    let confirmations: Vec<&Syscall> = calls
        .iter()
        .filter(|c| is_write(c) && c.fd == Some(1) && c.text.contains("\"stored demo"))
        .collect();
    assert_eq!(
        confirmations.len(),
        1,
        "expected one write of the confirmation to stdout in {}",
        trace.display()
    );
    assert_synced_before(
        &calls,
        &data_dir.join("db"),
        confirmations[0],
        "aisopod secrets set (no gateway)",
        &trace,
    );
}

#[test]
fn a_gateway_fsyncs_before_answering_on_the_admin_socket() {
    require_strace();
    let setup = Setup::new("");
    std::fs::create_dir_all(setup.data_dir()).unwrap();
    let data_dir = setup.data_dir().canonicalize().unwrap();
    let trace = setup.dir.path().join("gateway.strace");
    let log = setup.dir.path().join("gateway.log");
    let mut strace = KillOnDrop(
        strace_command(&trace)
            .arg("--config")
            .arg(&setup.config)
            .args(["gateway", "start", "--print-addr"])
            .env("AISOPOD_LOG", "info")
            .env_remove("AISOPOD_SECURITY_MODE")
            .env_remove("SECURITY_MODE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let stdout = strace.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    assert!(
        !addr.trim().is_empty(),
        "the gateway did not start under strace:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // The gateway writes its pid into the store lock; strace's child is the gateway.
    let pid: i32 = std::fs::read_to_string(data_dir.join("store.lock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let output = setup.cli_with(
        &["secrets", "set", "demo"],
        &[],
        Some(b"hunter2-but-longer\n"),
    );
    assert!(
        output.status.success(),
        "secrets set through the gateway failed: {}",
        support::stderr(&output)
    );
    assert!(
        support::stdout(&output).starts_with("stored demo"),
        "{}",
        support::stdout(&output)
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = support::wait_timeout(&mut strace.0, Duration::from_secs(30));
    assert!(
        status.is_some(),
        "the gateway under strace did not stop after SIGTERM"
    );

    let calls = parse_strace(&std::fs::read_to_string(&trace).unwrap());
    let answers: Vec<&Syscall> = calls
        .iter()
        .filter(|c| {
            is_write(c)
                && c.fd_path
                    .as_deref()
                    .is_some_and(|p| p.starts_with("socket:") || p.starts_with("UNIX"))
                && c.text.contains(r#"\"ok\":{\"result\":\"secret_stored\""#)
                && c.text.contains(r#"\"name\":\"demo\""#)
        })
        .collect();
    assert_eq!(
        answers.len(),
        1,
        "expected one admin socket answer to secrets set in {}",
        trace.display()
    );
    assert_synced_before(
        &calls,
        &data_dir.join("db"),
        answers[0],
        "gateway answering secrets set on the admin socket",
        &trace,
    );
}

/// The strace check itself: it passes on a log that syncs in order, and fails when the
/// fsync of the log or its directory is missing or comes after the acknowledgement.
#[test]
fn the_strace_check_rejects_a_missing_or_late_fsync() {
    let write = r#"7 pwrite64(4</d/db/db>, "\1\2", 2, 0) = 2"#;
    let range = "7 sync_file_range(4</d/db/db>, 0, 2, SYNC_FILE_RANGE_WRITE) = 0";
    let file = "9 fsync(5</d/db/db>)      = 0";
    let file_unfinished = "9 fsync(5</d/db/db> <unfinished ...>";
    let file_resumed = "9 <... fsync resumed>)      = 0";
    let dir = "9 fsync(6</d/db>)         = 0";
    let ack = r#"9 write(1<pipe:[1]>, "stored demo (sealed under key 1)\n", 33) = 33"#;
    let check = |lines: &[&str]| {
        let calls = parse_strace(&lines.join("\n"));
        let ack = calls.iter().find(|c| c.fd == Some(1)).unwrap().clone();
        std::panic::catch_unwind(|| {
            assert_synced_before(
                &calls,
                Path::new("/d/db"),
                &ack,
                "synthetic",
                Path::new("-"),
            )
        })
        .is_ok()
    };
    assert!(check(&[write, range, file, dir, ack]));
    assert!(check(&[
        write,
        file_unfinished,
        range,
        file_resumed,
        dir,
        ack
    ]));
    assert!(!check(&[write, range, dir, ack]), "no fsync of the file");
    assert!(
        !check(&[write, range, file, ack]),
        "no fsync of the directory"
    );
    assert!(
        !check(&[file, dir, write, range, ack]),
        "fsync before the write"
    );
    assert!(
        !check(&[write, file_unfinished, dir, ack, file_resumed]),
        "fsync ends after the ack"
    );
    assert!(
        !check(&[write, range, file, dir, write, ack]),
        "a write after the fsync"
    );
}

// ---------------------------------------------------------------------------------------
// 3. A full disk: a clear refusal, no panic, recovery once space is freed.

/// Unmounts the test's tmpfs however the test ends.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let done = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !done {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

fn mount_tmpfs(dir: &Path, size: &str) -> Mounted {
    std::fs::create_dir_all(dir).unwrap();
    let output = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ])
        .arg(dir)
        .output()
        .unwrap_or_else(|err| panic!("cannot run mount: {err}"));
    let stderr = support::stderr(&output);
    assert!(
        output.status.success(),
        "cannot mount a {size} tmpfs on {} to fill it up: {}; this test needs root (or \
         CAP_SYS_ADMIN) to mount a small filesystem",
        dir.display(),
        stderr.trim()
    );
    Mounted(dir.to_path_buf())
}

/// Child of the disk-full test: opens the services, appends until the disk is full,
/// deletes the filler file and appends again; reports every outcome on stdout.
#[test]
fn disk_full_child() {
    let Some(config_path) = std::env::var_os(DISK_FULL_CONFIG) else {
        return;
    };
    let filler = PathBuf::from(std::env::var_os(DISK_FULL_FILLER).unwrap());
    let config = config::load(Some(Path::new(&config_path)), &ProcessEnvironment).unwrap();
    let services = Services::open(config, Arc::new(SystemClock)).unwrap();
    let pad = "x".repeat(2000);
    let append = |i: u64| {
        services.audit.record(
            AuditEvent::new("test.fill")
                .target(format!("record-{i}"))
                .details(serde_json::json!({ "i": i, "pad": pad })),
        )
    };
    let mut i = 0;
    loop {
        i += 1;
        match append(i) {
            Ok(seq) => report(&format!("ack {seq}")),
            Err(err) => {
                report(&format!(
                    "full disk-full={} {err}",
                    matches!(err, AuditError::DiskFull)
                ));
                break;
            }
        }
        if i > 100_000 {
            report("never full");
            return;
        }
    }
    // Further appends keep being refused, not panicking, while the disk stays full.
    for _ in 0..3 {
        i += 1;
        match append(i) {
            Ok(seq) => report(&format!("ack-while-full {seq}")),
            Err(err) => report(&format!("still-full {err}")),
        }
    }
    std::fs::remove_file(&filler).unwrap();
    report("freed");
    for _ in 0..5 {
        i += 1;
        match append(i) {
            Ok(seq) => report(&format!("ack-after-free {seq}")),
            Err(err) => report(&format!("error-after-free {err}")),
        }
    }
    match services.audit.verify() {
        Ok(verified) => report(&format!("verify ok {}", verified.records)),
        Err(err) => report(&format!("verify error {err}")),
    }
}

/// What one disk-full child run left behind: its reports, and the filesystem it filled
/// (still mounted while this lives).
struct DiskFullRun {
    lines: Vec<String>,
    /// The child's reports and stderr, for assertion messages.
    shown: String,
    data_dir: PathBuf,
    _mounted: Mounted,
    _root: tempfile::TempDir,
}

impl DiskFullRun {
    /// Mounts a 3 MiB tmpfs holding a 1 MiB filler file and a data directory, and runs
    /// [`disk_full_child`] on it; asserts that it ran to the end without a panic.
    fn run() -> DiskFullRun {
        let root = tempfile::tempdir().unwrap();
        let mount = root.path().join("small");
        let mounted = mount_tmpfs(&mount, "3m");
        let filler = mount.join("filler");
        std::fs::write(&filler, vec![0xa5u8; 1 << 20]).unwrap();
        let data_dir = mount.join("data");
        let config = root.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[storage]\ndata_dir = \"{}\"\nruntime_dir = \"{}\"\n",
                data_dir.display(),
                root.path().join("run").display()
            ),
        )
        .unwrap();
        let mut child = KillOnDrop(spawn_child(
            "durability::disk_full_child",
            &[
                (DISK_FULL_CONFIG, config.as_os_str()),
                (DISK_FULL_FILLER, filler.as_os_str()),
            ],
            Stdio::piped(),
        ));
        let (status, stdout, stderr) = collect_output(&mut child.0, Duration::from_secs(60));
        let lines = reports(&stdout);
        let shown = format!(
            "child reports:\n{}\nchild stderr:\n{stderr}",
            lines.join("\n")
        );
        assert!(
            status.success(),
            "the disk-full child failed ({status}); {shown}"
        );
        assert!(
            !stderr.contains("panicked"),
            "a thread panicked when the disk filled up; {shown}"
        );
        assert!(
            !lines.iter().any(|l| l == "never full"),
            "the 3 MiB disk never filled up; {shown}"
        );
        DiskFullRun {
            lines,
            shown,
            data_dir,
            _mounted: mounted,
            _root: root,
        }
    }

    /// Seqs reported after `prefix` (`"ack "`, `"ack-after-free "`).
    fn seqs(&self, prefix: &str) -> Vec<u64> {
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix(prefix)?.parse().ok())
            .collect()
    }
}

#[test]
fn a_full_disk_refuses_audit_appends_clearly_and_loses_nothing() {
    let run = DiskFullRun::run();
    let shown = &run.shown;
    let acked = run.seqs("ack ");
    assert!(
        !acked.is_empty(),
        "no append succeeded before the disk filled; {shown}"
    );
    let full = run
        .lines
        .iter()
        .find(|l| l.starts_with("full "))
        .unwrap_or_else(|| panic!("no append was refused; {shown}"));
    assert!(
        full.starts_with("full disk-full=true") && full.contains("disk is full"),
        "the append on a full disk failed with another error than \"disk is full\": {full}; \
         {shown}"
    );
    let still_full: Vec<&String> = run
        .lines
        .iter()
        .filter(|l| l.starts_with("still-full ") || l.starts_with("ack-while-full "))
        .collect();
    assert!(
        still_full.iter().all(|l| l.contains("disk is full")),
        "later appends on the still-full disk failed unclearly: {still_full:?}; {shown}"
    );
    assert!(
        run.lines.iter().any(|l| l.starts_with("verify ok")),
        "the chain does not verify in the process that hit the full disk; {shown}"
    );

    // A restart (reopen) finds every acknowledged record and an intact chain, and can
    // append again now that there is space.
    let acked_after_free = run.seqs("ack-after-free ");
    let (_store, audit) = open_audit(&run.data_dir);
    audit
        .verify()
        .unwrap_or_else(|err| panic!("the chain does not verify after reopening: {err}; {shown}"));
    let found = all_seqs(&audit);
    let lost: Vec<u64> = acked
        .iter()
        .chain(&acked_after_free)
        .copied()
        .filter(|s| !found.contains(s))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged records are missing after reopening: {lost:?}; {shown}"
    );
    let seq = audit
        .record(AuditEvent::new("test.after-reopen"))
        .unwrap_or_else(|err| panic!("append after reopening with free space: {err}; {shown}"));
    assert!(seq > *acked.iter().max().unwrap());
    audit.verify().unwrap();
}

#[test]
fn audit_appends_work_again_once_disk_space_is_freed() {
    let run = DiskFullRun::run();
    let shown = &run.shown;
    let after_free: Vec<&String> = run
        .lines
        .iter()
        .skip_while(|l| *l != "freed")
        .filter(|l| l.starts_with("ack-after-free ") || l.starts_with("error-after-free "))
        .collect();
    assert!(
        !after_free.is_empty() && after_free.iter().all(|l| l.starts_with("ack-after-free ")),
        "appends still fail after disk space was freed, in the process that hit the full disk \
         (a running gateway would stay unable to write until restarted): {after_free:?}; {shown}"
    );
}

/// Waits for a child, collecting stdout and stderr; kills it after `limit`.
fn collect_output(child: &mut Child, limit: Duration) -> (ExitStatus, String, String) {
    let drain = |mut pipe: Box<dyn Read + Send>| {
        let text = Arc::new(Mutex::new(String::new()));
        let sink = text.clone();
        let handle = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            *sink.lock().unwrap() = String::from_utf8_lossy(&bytes).into_owned();
        });
        (handle, text)
    };
    let (out_thread, out) = drain(Box::new(child.stdout.take().unwrap()));
    let (err_thread, err) = drain(Box::new(child.stderr.take().unwrap()));
    let status = match support::wait_timeout(child, limit) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            child.wait().unwrap()
        }
    };
    out_thread.join().unwrap();
    err_thread.join().unwrap();
    let out = out.lock().unwrap().clone();
    let err = err.lock().unwrap().clone();
    assert!(
        status.signal() != Some(9),
        "the child did not finish within {limit:?}; stdout:\n{out}\nstderr:\n{err}"
    );
    (status, out, err)
}

// ---------------------------------------------------------------------------------------
// 4. A store held by a running gateway.

#[test]
fn a_store_held_by_a_gateway_is_refused_with_a_pointer_to_the_admin_socket() {
    let setup = Setup::new("");
    let mut gateway = setup.start_process();
    let listed = setup.cli(&["secrets", "list"]);
    assert!(
        listed.status.success(),
        "secrets list through the admin socket failed: {}",
        support::stderr(&listed)
    );

    let socket = setup.data_dir().join("run/admin.sock");
    std::fs::remove_file(&socket)
        .unwrap_or_else(|err| panic!("cannot remove {}: {err}", socket.display()));
    let refused = setup.cli(&["audit", "list"]);
    let stderr = support::stderr(&refused);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "audit list with the store held and no admin socket: stdout {:?}, stderr {stderr:?}",
        support::stdout(&refused)
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "expected a one-line message, got {stderr:?}"
    );
    assert!(
        stderr.contains("in use by another aisopod process"),
        "the message does not say the store is in use: {stderr:?}"
    );
    assert!(
        stderr.contains("admin socket"),
        "the message does not mention the admin socket: {stderr:?}"
    );
    assert!(
        support::stdout(&refused).is_empty(),
        "a refused command printed data: {:?}",
        support::stdout(&refused)
    );

    let status = gateway.stop();
    assert!(status.success(), "gateway exit: {status}");
    let verify = setup.cli(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "audit verify after the refused command: {}{}",
        support::stdout(&verify),
        support::stderr(&verify)
    );
    // The refused command left no trace: the only record by a CLI caller is the verify
    // just run (a command records itself after it has run, so this list is not in it).
    let list = setup.cli(&["audit", "list", "--json"]);
    assert!(list.status.success(), "{}", support::stderr(&list));
    let records: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    let by_cli: Vec<&str> = records
        .iter()
        .filter(|r| r["actor"].as_str().is_some_and(|a| a.starts_with("cli ")))
        .map(|r| r["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        by_cli,
        ["admin.audit.verify"],
        "records by CLI callers other than the offline verify: the refused command changed \
         the store"
    );
    assert!(
        records.iter().any(|r| r["action"] == "admin.secrets.list"
            && r["actor"]
                .as_str()
                .is_some_and(|a| a.starts_with("admin-socket"))),
        "the secrets list through the socket was not audited: {records:?}"
    );
}
