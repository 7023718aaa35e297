//! Benchmarks for the gateway's start-up, idle memory and audit durability targets.
//!
//! Not a test: it measures and prints a Markdown table; `bench/run` is the entry point
//! that builds the release binary first and adds the binary-size rows.
//!
//! ```text
//! cargo bench --bench gateway -- [--only startup|audit] [--runs N] [--reps N]
//!                                 [--secs S] [--bin PATH] [--tmp DIR] [--rows-only]
//! ```
//!
//! * start-up: spawns the release binary (`gateway start --print-addr`, bind
//!   127.0.0.1:0, data in a temp dir whose certificate and master key already exist),
//!   reads the printed URL and polls `GET /ready` over HTTPS until it answers 200;
//!   then, ~1 s later, reads VmRSS from `/proc/<pid>/status`; then SIGTERM. This one
//!   stays a child process (unlike the integration tests and the approval bench, which
//!   call `app::run` in-process): what it measures is the process itself.
//! * audit: `Audit::record` (durable on return) for ~`--secs` s with 1 and 8 writer
//!   threads sharing one `Audit`, and the store-level cost of durability
//!   (`Tree::insert` + `Store::sync` vs `Tree::insert` alone), each on a fresh store
//!   under `target/bench-tmp` (the real disk, not a tmpfs).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aisopod::audit::{Audit, AuditEvent, AuditRecord, Outcome};
use aisopod::clock::SystemClock;
use aisopod::keys::secrets::Secrets;
use aisopod::store::{AuditSeq, Store, Tree, TreeName};
use anyhow::{Context, bail};

/// The store's default cache size (`[storage] cache_size`).
const CACHE_SIZE: u64 = 8 * 1024 * 1024;

#[derive(Debug)]
struct Options {
    only: Option<String>,
    runs: usize,
    reps: usize,
    secs: f64,
    bin: PathBuf,
    tmp: PathBuf,
    rows_only: bool,
}

impl Options {
    fn parse() -> anyhow::Result<Options> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut options = Options {
            only: None,
            runs: 20,
            reps: 5,
            secs: 2.0,
            bin: std::env::var_os("AISOPOD_BENCH_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target/release/aisopod")),
            tmp: root.join("target/bench-tmp"),
            rows_only: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value =
                |name: &str| args.next().with_context(|| format!("{name} needs a value"));
            match arg.as_str() {
                // cargo bench passes --bench to harness = false targets.
                "--bench" => {}
                "--only" => options.only = Some(value("--only")?),
                "--runs" => options.runs = value("--runs")?.parse().context("--runs")?,
                "--reps" => options.reps = value("--reps")?.parse().context("--reps")?,
                "--secs" => options.secs = value("--secs")?.parse().context("--secs")?,
                "--bin" => options.bin = value("--bin")?.into(),
                "--tmp" => options.tmp = value("--tmp")?.into(),
                "--rows-only" => options.rows_only = true,
                other => bail!(
                    "unknown argument {other:?} (see the usage at the top of benches/gateway.rs)"
                ),
            }
        }
        if let Some(only) = options.only.as_deref()
            && !matches!(only, "startup" | "audit")
        {
            bail!("--only takes startup or audit, not {only:?}");
        }
        if options.runs < 1 || options.reps < 1 {
            bail!("--runs and --reps must be at least 1");
        }
        Ok(options)
    }

    fn wants(&self, part: &str) -> bool {
        self.only.as_deref().is_none_or(|only| only == part)
    }
}

/// Median, min and max of a sample.
#[derive(Debug, Clone, Copy)]
struct Summary {
    median: f64,
    min: f64,
    max: f64,
    n: usize,
}

fn summarize(values: &[f64]) -> Summary {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let at = |i: usize| sorted.get(i).copied().unwrap_or(f64::NAN);
    let median = if n % 2 == 1 {
        at(n / 2)
    } else {
        (at(n / 2 - 1) + at(n / 2)) / 2.0
    };
    Summary {
        median,
        min: at(0),
        max: at(n.saturating_sub(1)),
        n,
    }
}

/// One row of the results table.
#[derive(Debug)]
struct Row {
    what: String,
    unit: &'static str,
    summary: Summary,
    digits: usize,
    /// `(limit, lower_is_better)`, shown as "≤ limit" or "≥ limit".
    target: Option<(f64, bool)>,
}

impl Row {
    fn info(what: impl Into<String>, unit: &'static str, values: &[f64], digits: usize) -> Row {
        Row {
            what: what.into(),
            unit,
            summary: summarize(values),
            digits,
            target: None,
        }
    }

    fn at_most(mut self, limit: f64) -> Row {
        self.target = Some((limit, true));
        self
    }

    fn markdown(&self) -> String {
        let d = self.digits;
        let s = self.summary;
        let (target, met) = match self.target {
            Some((limit, true)) => (
                format!("≤ {limit} {}", self.unit),
                if s.median <= limit { "yes" } else { "**no**" }.to_string(),
            ),
            Some((limit, false)) => (
                format!("≥ {limit} {}", self.unit),
                if s.median >= limit { "yes" } else { "**no**" }.to_string(),
            ),
            None => ("—".into(), "—".into()),
        };
        format!(
            "| {} | {:.d$} {u} | {:.d$} | {:.d$} | {} | {target} | {met} |",
            self.what,
            s.median,
            s.min,
            s.max,
            s.n,
            u = self.unit,
        )
    }
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse()?;
    std::fs::create_dir_all(&options.tmp)
        .with_context(|| format!("creating {}", options.tmp.display()))?;
    if !options.rows_only {
        println!("| Measure | Median | Min | Max | Runs | Target | Met |");
        println!("|---|---|---|---|---|---|---|");
    }
    if options.wants("startup") {
        for row in startup(&options)? {
            println!("{}", row.markdown());
            let _ = std::io::stdout().flush();
        }
    }
    if options.wants("audit") {
        for row in audit(&options)? {
            println!("{}", row.markdown());
            let _ = std::io::stdout().flush();
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Start-up and idle memory

struct Gateway {
    child: Child,
    url: String,
}

impl Gateway {
    /// Spawns the gateway and waits for the URL it prints once it serves.
    fn spawn(bin: &Path, config: &Path, log: &Path) -> anyhow::Result<Gateway> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(config)
            .args(["gateway", "start", "--print-addr"])
            .env_remove("AISOPOD_LOG")
            .env_remove("AISOPOD_CONFIG")
            .env_remove("AISOPOD_SECURITY_MODE")
            .env_remove("SECURITY_MODE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut line = String::new();
        // The pipe closes if the gateway exits, so this cannot hang on a failed start.
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading the printed address")?;
        let url = line.trim().to_string();
        if url.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the gateway did not print its address; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        Ok(Gateway { child, url })
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap_or(i32::MAX)
    }

    /// SIGTERM, then wait; SIGKILL after 20 s.
    fn stop(mut self) -> anyhow::Result<Duration> {
        let start = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::SIGTERM,
        )
        .context("sending SIGTERM")?;
        while start.elapsed() < Duration::from_secs(20) {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the gateway exited with {status} after SIGTERM");
                }
                return Ok(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        bail!("the gateway did not stop within 20 s of SIGTERM")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn client_trusting(ca_pem: &Path) -> anyhow::Result<reqwest::blocking::Client> {
    let pem = std::fs::read(ca_pem).with_context(|| format!("reading {}", ca_pem.display()))?;
    Ok(reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem)?)
        .use_rustls_tls()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()?)
}

/// Polls `GET {url}/ready` until it answers 200; returns how many attempts it took.
fn wait_ready(client: &reqwest::blocking::Client, url: &str) -> anyhow::Result<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match client.get(format!("{url}/ready")).send() {
            Ok(response) if response.status() == reqwest::StatusCode::OK => return Ok(attempts),
            Ok(_) | Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(500))
            }
            Ok(response) => bail!("/ready still answers {}", response.status()),
            Err(err) => bail!("/ready never answered: {err}"),
        }
    }
}

/// Fields of `/proc/<pid>/status` in KiB (or as counted, for `Threads`).
fn proc_status(pid: i32, fields: &[&str]) -> anyhow::Result<Vec<f64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    fields
        .iter()
        .map(|field| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("{field}:")))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
                .with_context(|| format!("no {field} in /proc/{pid}/status"))
        })
        .collect()
}

fn startup(options: &Options) -> anyhow::Result<Vec<Row>> {
    if !options.bin.is_file() {
        bail!(
            "{} is missing: run `cargo build --release` first (or bench/run)",
            options.bin.display()
        );
    }
    let dir = tempfile::Builder::new()
        .prefix("startup-")
        .tempdir_in(&options.tmp)?;
    let data_dir = dir.path().join("data");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:0\"\nshutdown_timeout = \"5s\"\n\n\
             [storage]\ndata_dir = \"{}\"\nruntime_dir = \"{}\"\n",
            data_dir.display(),
            dir.path().join("run").display()
        ),
    )?;
    let log = dir.path().join("gateway.log");

    // First start: creates the CA, server certificate and master key.
    let first_start = Instant::now();
    let first = Gateway::spawn(&options.bin, &config, &log)?;
    let client = client_trusting(&data_dir.join("tls/ca.pem"))?;
    wait_ready(&client, &first.url)?;
    let first_ready = first_start.elapsed();
    first.stop()?;

    let mut to_url = Vec::new();
    let mut to_ready = Vec::new();
    let mut attempts = Vec::new();
    let mut warm = Vec::new();
    let mut rss = Vec::new();
    let mut anon = Vec::new();
    let mut file = Vec::new();
    let mut threads = Vec::new();
    let mut stop = Vec::new();
    for _ in 0..options.runs {
        // A fresh client per run (outside the timing), so no pooled state carries over.
        let client = client_trusting(&data_dir.join("tls/ca.pem"))?;
        let start = Instant::now();
        let gateway = Gateway::spawn(&options.bin, &config, &log)?;
        let url_at = start.elapsed();
        let tries = wait_ready(&client, &gateway.url)?;
        let ready_at = start.elapsed();
        to_url.push(url_at.as_secs_f64() * 1e3);
        to_ready.push(ready_at.as_secs_f64() * 1e3);
        attempts.push(f64::from(tries));

        // The cost of one /ready round trip (new TLS connection) on a warm gateway:
        // what the client itself adds to the figure above.
        let warm_start = Instant::now();
        wait_ready(&client, &gateway.url)?;
        warm.push(warm_start.elapsed().as_secs_f64() * 1e3);

        std::thread::sleep(Duration::from_secs(1));
        let status = proc_status(gateway.pid(), &["VmRSS", "RssAnon", "RssFile", "Threads"])?;
        if let [vm, a, f, t] = status.as_slice() {
            rss.push(vm / 1024.0);
            anon.push(a / 1024.0);
            file.push(f / 1024.0);
            threads.push(*t);
        }
        stop.push(gateway.stop()?.as_secs_f64() * 1e3);
    }
    Ok(vec![
        Row::info(
            "first start (creates CA + cert + key) → /ready 200",
            "ms",
            &[first_ready.as_secs_f64() * 1e3],
            1,
        ),
        Row::info(
            "start → /ready 200 (existing certificate)",
            "ms",
            &to_ready,
            1,
        )
        .at_most(50.0),
        Row::info("  of which: spawn → address printed", "ms", &to_url, 1),
        Row::info("  /ready attempts until 200", "", &attempts, 0),
        Row::info(
            "  one /ready on a warm gateway (client + TLS handshake)",
            "ms",
            &warm,
            2,
        ),
        Row::info("idle RSS 1 s after /ready (VmRSS)", "MiB", &rss, 2).at_most(10.0),
        Row::info("  RssAnon (heap, stacks)", "MiB", &anon, 2),
        Row::info("  RssFile (mapped binary and libraries)", "MiB", &file, 2),
        Row::info("  threads", "", &threads, 0),
        Row::info("SIGTERM → exit", "ms", &stop, 1),
    ])
}

// ---------------------------------------------------------------------------------------
// Audit throughput and the cost of fsync

struct Fresh {
    _dir: tempfile::TempDir,
    store: Store,
    secrets: Secrets,
}

fn fresh_store(options: &Options) -> anyhow::Result<Fresh> {
    let dir = tempfile::Builder::new()
        .prefix("audit-")
        .tempdir_in(&options.tmp)?;
    let store = Store::open(dir.path(), CACHE_SIZE)?;
    let secrets = Secrets::open(dir.path(), &store)?;
    Ok(Fresh {
        _dir: dir,
        store,
        secrets,
    })
}

fn event(writer: usize, n: u64) -> AuditEvent {
    AuditEvent::new("bench.append")
        .actor(format!("writer-{writer}"))
        .target(format!("record-{n}"))
        .outcome(Outcome::Success)
        .source_ip(Some(std::net::Ipv4Addr::LOCALHOST.into()))
        .details(serde_json::json!({ "bench": true, "n": n }))
}

/// Records/s made durable by `writers` threads sharing one `Audit`, and sync rounds per
/// record.
fn audit_run(options: &Options, writers: usize) -> anyhow::Result<(f64, f64)> {
    let fresh = fresh_store(options)?;
    let audit = Arc::new(Audit::open(
        &fresh.store,
        &fresh.secrets,
        Arc::new(SystemClock),
    )?);
    let syncs_before = fresh.store.sync_count();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|writer| {
            let audit = audit.clone();
            let stop = stop.clone();
            std::thread::spawn(move || -> anyhow::Result<u64> {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    audit.record(event(writer, n))?;
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(options.secs));
    stop.store(true, Ordering::Relaxed);
    let mut records = 0;
    for handle in handles {
        records += handle
            .join()
            .map_err(|_| anyhow::anyhow!("a writer thread panicked"))??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let syncs = fresh.store.sync_count() - syncs_before;
    let count = records as f64;
    Ok((count / elapsed, syncs as f64 / count.max(1.0)))
}

fn sample_record(seq: u64) -> AuditRecord {
    AuditRecord {
        seq,
        time: "2026-01-31T12:00:00Z".into(),
        actor: "writer-0".into(),
        action: "bench.append".into(),
        target: format!("record-{seq}"),
        outcome: Outcome::Success,
        source_ip: Some("127.0.0.1".into()),
        details: serde_json::json!({ "bench": true, "n": seq }),
        sealed: true,
        prev_hash: "0".repeat(64),
        hash: "f".repeat(64),
    }
}

/// Records/s for one writer at the store level, with or without a sync per record.
fn store_run(options: &Options, sync: bool) -> anyhow::Result<f64> {
    let fresh = fresh_store(options)?;
    let tree: Tree<AuditSeq, AuditRecord> = fresh.store.tree(TreeName::Audit)?;
    let limit = Duration::from_secs_f64(options.secs);
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < limit {
        for _ in 0..16 {
            n += 1;
            tree.insert(&AuditSeq(n), &sample_record(n))?;
            if sync {
                fresh.store.sync()?;
            }
        }
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn audit(options: &Options) -> anyhow::Result<Vec<Row>> {
    let mut one = Vec::new();
    let mut eight = Vec::new();
    let mut eight_syncs = Vec::new();
    let mut synced = Vec::new();
    let mut unsynced = Vec::new();
    for _ in 0..options.reps {
        one.push(audit_run(options, 1)?.0);
        let (rate, syncs) = audit_run(options, 8)?;
        eight.push(rate);
        eight_syncs.push(syncs);
        synced.push(store_run(options, true)?);
        unsynced.push(store_run(options, false)?);
    }
    let per_record_us = |rates: &[f64]| -> Vec<f64> { rates.iter().map(|r| 1e6 / r).collect() };
    let fsync_cost: Vec<f64> = synced
        .iter()
        .zip(&unsynced)
        .map(|(s, u)| 1e6 / s - 1e6 / u)
        .collect();
    Ok(vec![
        Row::info("audit append, 1 writer (durable)", "rec/s", &one, 0),
        Row::info(
            "audit append, 8 writers, one `Audit` (durable)",
            "rec/s",
            &eight,
            0,
        ),
        Row::info(
            "  sync rounds per record, 8 writers (1 round = flush + 2 fsync)",
            "",
            &eight_syncs,
            3,
        ),
        Row::info(
            "store: insert + sync per record, 1 writer",
            "rec/s",
            &synced,
            0,
        ),
        Row::info(
            "store: insert only (no fsync), 1 writer",
            "rec/s",
            &unsynced,
            0,
        ),
        Row::info(
            "  time per record with sync",
            "µs",
            &per_record_us(&synced),
            1,
        ),
        Row::info(
            "  time per record without sync",
            "µs",
            &per_record_us(&unsynced),
            2,
        ),
        Row::info(
            "  cost of durability per record (difference)",
            "µs",
            &fsync_cost,
            1,
        ),
    ])
}
