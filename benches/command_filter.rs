//! Command filter latency: every command of the labelled corpus
//! (`src/policy/corpus.txt`) judged many times by the filter the
//! product builds from its default configuration (strict mode, allowlist policy, data
//! directory `/var/lib/aisopod`, the shell tool's `/work` as the workspace).
//!
//! ```text
//! cargo bench --bench command_filter -- [--rounds N] [--policy allowlist|denylist]
//! ```
//!
//! Each round judges every corpus command once, in corpus order, and times each
//! judgement on its own; `--rounds` (default 200) rounds follow a warm-up round. It
//! prints the median and p99 of all single judgements in microseconds (the target is a
//! median of at most 50 µs), the same split into dangerous and benign commands, and the
//! slowest commands by their own median.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aisopod::config::{ApplianceEnvironment, ConfigSource};
use aisopod::policy::{CommandFilter, FilterContext};

const CORPUS: &str = include_str!("../src/policy/corpus.txt");

/// `(dangerous, command)` for every entry; the format is described atop the corpus.
fn commands() -> Vec<(bool, String)> {
    let mut out: Vec<(bool, String)> = Vec::new();
    for line in CORPUS.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(more) = line.strip_prefix('>') {
            let last = out.last_mut().expect("a continuation follows an entry");
            last.1.push('\n');
            last.1.push_str(more.strip_prefix(' ').unwrap_or(more));
            continue;
        }
        let (label, command) = line.split_once(' ').expect("LABEL COMMAND");
        out.push((label != "allow", command.to_string()));
    }
    out
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() {
    let rounds: usize = arg("--rounds").and_then(|n| n.parse().ok()).unwrap_or(200);
    let text = match arg("--policy").as_deref() {
        None | Some("allowlist") => String::new(),
        Some("denylist") => "[tools.shell]\npolicy = \"denylist\"\n".to_string(),
        Some(other) => panic!("--policy allowlist|denylist, not {other}"),
    };
    let config =
        aisopod::config::parse(&text, ConfigSource::Defaults, &ApplianceEnvironment).unwrap();
    let mut context = FilterContext::for_config(&config, Some(PathBuf::from("/work")));
    context.home = Some(PathBuf::from("/home/pi"));
    let filter = CommandFilter::from_config(&config.tools.shell, context).unwrap();
    let commands = commands();

    for (_, command) in &commands {
        std::hint::black_box(filter.judge(command));
    }
    let mut per_command: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); commands.len()];
    let started = Instant::now();
    for _ in 0..rounds {
        for (i, (_, command)) in commands.iter().enumerate() {
            let t = Instant::now();
            let judgement = filter.judge(std::hint::black_box(command));
            let took = t.elapsed();
            std::hint::black_box(judgement);
            per_command[i].push(took);
        }
    }
    let total = started.elapsed();

    let mut all: Vec<Duration> = per_command.iter().flatten().copied().collect();
    all.sort();
    let mut dangerous: Vec<Duration> = Vec::new();
    let mut benign: Vec<Duration> = Vec::new();
    let mut medians: Vec<(Duration, &str)> = Vec::new();
    for ((is_dangerous, command), samples) in commands.iter().zip(&per_command) {
        if *is_dangerous {
            dangerous.extend(samples);
        } else {
            benign.extend(samples);
        }
        let mut own = samples.clone();
        own.sort();
        medians.push((quantile(&own, 0.5), command));
    }
    dangerous.sort();
    benign.sort();
    medians.sort_by_key(|m| std::cmp::Reverse(m.0));

    println!(
        "command filter: {} commands x {rounds} rounds = {} judgements in {:.2} s ({} policy)",
        commands.len(),
        all.len(),
        total.as_secs_f64(),
        match filter.policy() {
            aisopod::config::ShellPolicy::Allowlist => "allowlist",
            aisopod::config::ShellPolicy::Denylist => "denylist",
        }
    );
    println!(
        "{:<12} {:>10} {:>10} {:>10}",
        "commands", "median µs", "p99 µs", "max µs"
    );
    for (name, samples) in [
        ("all", &all),
        ("dangerous", &dangerous),
        ("benign", &benign),
    ] {
        println!(
            "{:<12} {:>10.1} {:>10.1} {:>10.1}",
            name,
            micros(quantile(samples, 0.5)),
            micros(quantile(samples, 0.99)),
            micros(*samples.last().unwrap()),
        );
    }
    println!("slowest commands by their own median:");
    for (median, command) in medians.iter().take(5) {
        let short: String = command.chars().take(70).collect();
        println!("  {:>8.1} µs  {short:?}", micros(*median));
    }
}
