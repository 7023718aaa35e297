//! The labelled corpus (`corpus.txt`, format documented at its top) judged the way the
//! product judges: the configuration is the built-in default one (`Config` parsed from no
//! file on an installed appliance, so `data_dir` is `/var/lib/aisopod` and
//! `allowed_hosts` is empty), and the context is the shell tool's
//! (`FilterContext::for_config` with the sandbox's `/work` as the workspace).
//!
//! Every dangerous line is judged under both policies the defaults pick, `allowlist`
//! (strict mode, the default) and `denylist` (local mode), and with the home directory
//! both known (`/home/pi`) and unknown (no usable `$HOME`): none may be allowed, and a
//! `deny` line must be denied in all four. Benign lines are measured under the default
//! strict allowlist policy (the false-refusal rate asserted), and the denylist rate is
//! printed beside it. `cargo test --lib policy::corpus -- --nocapture`
//! shows the figures.
//!
//! The random-input test below is the stable stand-in for the cargo-fuzz target
//! (`fuzz/fuzz_targets/command_filter.rs`): mutated and spliced corpus lines and random
//! text, each judged without a panic and within a time bound.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{CommandFilter, Decision, FilterContext, MAX_INPUT};
use crate::config::{ApplianceEnvironment, Config, ConfigSource, ShellPolicy};

const CORPUS: &str = include_str!("corpus.txt");

/// The shell tool's working directory inside the sandbox.
const WORKSPACE: &str = crate::sandbox::spec::WORK_DIR;

/// At most this share of benign lines may be refused under the default policy.
const MAX_FALSE_REFUSAL: f64 = 0.02;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    /// Must be denied.
    Deny,
    /// Must not be allowed.
    Refuse,
    /// Should be allowed by the default policy.
    Allow,
}

#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    label: Label,
    command: String,
}

/// Parses the corpus; every malformed line is reported with its number.
fn parse_corpus(text: &str) -> Result<Vec<Entry>, Vec<String>> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        if let Some(rest) = raw.strip_prefix('>') {
            let more = match rest {
                "" => "",
                _ => match rest.strip_prefix(' ') {
                    Some(more) => more,
                    None => {
                        errors.push(format!("line {line}: a continuation is \"> text\""));
                        continue;
                    }
                },
            };
            match entries.last_mut() {
                Some(entry) => {
                    entry.command.push('\n');
                    entry.command.push_str(more);
                }
                None => errors.push(format!("line {line}: continuation before any entry")),
            }
            continue;
        }
        let Some((label, command)) = raw.split_once(' ') else {
            errors.push(format!("line {line}: expected \"LABEL COMMAND\": {raw:?}"));
            continue;
        };
        let label = match label {
            "deny" => Label::Deny,
            "refuse" => Label::Refuse,
            "allow" => Label::Allow,
            other => {
                errors.push(format!(
                    "line {line}: unknown label {other:?} (deny, refuse or allow)"
                ));
                continue;
            }
        };
        if command.trim().is_empty() {
            errors.push(format!("line {line}: empty command"));
            continue;
        }
        entries.push(Entry {
            line,
            label,
            command: command.to_string(),
        });
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

fn corpus() -> Vec<Entry> {
    parse_corpus(CORPUS).unwrap_or_else(|errors| {
        panic!("corpus.txt is malformed:\n{}", errors.join("\n"));
    })
}

/// The default configuration in `mode` ("strict" is what no config file gives).
fn default_config(mode: &str) -> Config {
    let text = if mode == "strict" {
        String::new()
    } else {
        format!("[security]\nmode = \"{mode}\"\n")
    };
    crate::config::parse(&text, ConfigSource::Defaults, &ApplianceEnvironment)
        .unwrap_or_else(|e| panic!("default config ({mode}): {e}"))
}

/// One way the product may run the filter.
struct Setup {
    name: &'static str,
    filter: CommandFilter,
}

fn setup(name: &'static str, mode: &str, home: Option<&str>) -> Setup {
    let config = default_config(mode);
    let mut context = FilterContext::for_config(&config, Some(PathBuf::from(WORKSPACE)));
    // `for_config` reads this process's $HOME; the corpus fixes it either way.
    context.home = home.map(PathBuf::from);
    let filter = CommandFilter::from_config(&config.tools.shell, context)
        .unwrap_or_else(|e| panic!("default filter: {e}"));
    Setup { name, filter }
}

fn setups() -> Vec<Setup> {
    vec![
        setup(
            "strict/allowlist, home /home/pi",
            "strict",
            Some("/home/pi"),
        ),
        setup("strict/allowlist, home unknown", "strict", None),
        setup("local/denylist, home /home/pi", "local", Some("/home/pi")),
        setup("local/denylist, home unknown", "local", None),
    ]
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

#[test]
fn the_corpus_parses_and_is_large_enough() {
    let entries = corpus();
    let dangerous = entries.iter().filter(|e| e.label != Label::Allow).count();
    let benign = entries.len() - dangerous;
    assert!(entries.len() >= 300, "only {} entries", entries.len());
    assert!(dangerous >= 150 && benign >= 100, "{dangerous} / {benign}");
    let mut seen = std::collections::HashSet::new();
    for entry in &entries {
        assert!(
            seen.insert(entry.command.as_str()),
            "line {}: duplicate command {:?}",
            entry.line,
            entry.command
        );
    }
}

#[test]
fn malformed_corpus_lines_are_reported() {
    let errors = parse_corpus("deny rm -rf /\nmaybe ls\nallow\n>x\n")
        .err()
        .unwrap_or_default();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("line 2: unknown label"))
    );
    assert!(errors.iter().any(|e| e.starts_with("line 3:")));
    assert!(errors.iter().any(|e| e.starts_with("line 4:")));
    let ok = parse_corpus("# c\n\nrefuse bash <<EOF\n> rm -rf /\n>\n> EOF\n").unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].command, "bash <<EOF\nrm -rf /\n\nEOF");
    assert!(parse_corpus(">\n").is_err());
}

#[test]
fn corpus_recall_is_complete_and_false_refusals_are_rare() {
    let entries = corpus();
    let setups = setups();
    let dangerous: Vec<&Entry> = entries.iter().filter(|e| e.label != Label::Allow).collect();
    let must_deny = dangerous.iter().filter(|e| e.label == Label::Deny).count();
    let benign: Vec<&Entry> = entries.iter().filter(|e| e.label == Label::Allow).collect();

    let mut misses = String::new();
    let mut caught_everywhere = 0usize;
    for entry in &dangerous {
        let mut ok = true;
        for s in &setups {
            let j = s.filter.judge(&entry.command);
            let wrong = match entry.label {
                Label::Deny => j.decision != Decision::Deny,
                _ => j.decision == Decision::Allow,
            };
            if wrong {
                ok = false;
                let _ = writeln!(
                    misses,
                    "  line {} [{}] {:?}: expected {}, judged {} by {} ({})",
                    entry.line,
                    s.name,
                    entry.command,
                    if entry.label == Label::Deny {
                        "deny"
                    } else {
                        "approve or deny"
                    },
                    j.decision,
                    j.rule,
                    j.reason
                );
            }
        }
        caught_everywhere += usize::from(ok);
    }

    let mut refusals = String::new();
    let mut refused_strict = 0usize;
    let mut refused_local = 0usize;
    for entry in &benign {
        let mut strict_refused = false;
        let mut local_refused = false;
        for s in &setups {
            let j = s.filter.judge(&entry.command);
            if j.decision == Decision::Allow {
                continue;
            }
            let _ = writeln!(
                refusals,
                "  line {} [{}] {:?}: {} by {} ({})",
                entry.line, s.name, entry.command, j.decision, j.rule, j.reason
            );
            match s.filter.policy() {
                ShellPolicy::Allowlist => strict_refused = true,
                ShellPolicy::Denylist => local_refused = true,
            }
        }
        refused_strict += usize::from(strict_refused);
        refused_local += usize::from(local_refused);
    }

    println!(
        "command filter corpus: {} commands, {} dangerous ({} must be denied), {} benign",
        entries.len(),
        dangerous.len(),
        must_deny,
        benign.len()
    );
    println!(
        "  recall: {}/{} dangerous never allowed and every deny line denied = {:.1} % (4 setups: {})",
        caught_everywhere,
        dangerous.len(),
        percent(caught_everywhere, dangerous.len()),
        setups.iter().map(|s| s.name).collect::<Vec<_>>().join("; ")
    );
    println!(
        "  false refusals, default strict allowlist: {}/{} = {:.2} % (limit {:.0} %)",
        refused_strict,
        benign.len(),
        percent(refused_strict, benign.len()),
        MAX_FALSE_REFUSAL * 100.0
    );
    println!(
        "  false refusals, local denylist: {}/{} = {:.2} %",
        refused_local,
        benign.len(),
        percent(refused_local, benign.len())
    );
    if !refusals.is_empty() {
        println!("  refused benign lines:\n{refusals}");
    }
    assert!(
        misses.is_empty(),
        "dangerous commands judged too leniently:\n{misses}"
    );
    assert!(
        refused_strict as f64 <= MAX_FALSE_REFUSAL * benign.len() as f64,
        "{refused_strict} of {} benign commands refused under the default policy:\n{refusals}",
        benign.len()
    );
}

/// A small deterministic generator (xorshift64*), so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Characters that mean something to the shell, the word parser or the precheck.
const SHELL_CHARS: &[&str] = &[
    "'",
    "\"",
    "\\",
    "$",
    "`",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    "|",
    "&",
    ";",
    "<",
    ">",
    "*",
    "?",
    "~",
    "!",
    "#",
    "=",
    " ",
    "\t",
    "\n",
    "$(",
    "${",
    "$'",
    "<<",
    "<<<",
    "<(",
    ">(",
    "$((",
    "\\x",
    "\\u{",
    "{a,b}",
    "99999999999>",
    "{1..99999999999999999999}",
    "\0",
    "é",
    "\u{202e}",
    "\u{10ffff}",
    "%",
    "-",
    "--",
    "/",
    "..",
];

fn mutate(rng: &mut Rng, pool: &[&str]) -> String {
    let mut text: Vec<char> = pool
        .get(rng.below(pool.len()))
        .copied()
        .unwrap_or("")
        .chars()
        .collect();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(text.len() + 1);
        match rng.below(8) {
            0 | 1 => {
                let piece = SHELL_CHARS.get(rng.below(SHELL_CHARS.len())).copied();
                let tail = text.split_off(at.min(text.len()));
                text.extend(piece.unwrap_or("").chars());
                text.extend(tail);
            }
            2 => {
                if at < text.len() {
                    let end = (at + 1 + rng.below(8)).min(text.len());
                    text.drain(at..end);
                }
            }
            3 => {
                // Splice in part of another line.
                let other: Vec<char> = pool
                    .get(rng.below(pool.len()))
                    .copied()
                    .unwrap_or("")
                    .chars()
                    .collect();
                let from = rng.below(other.len() + 1);
                let tail = text.split_off(at.min(text.len()));
                text.extend(other.get(from..).unwrap_or(&[]).iter());
                text.extend(tail);
            }
            4 => {
                // Deep nesting, the parser's weak spot.
                let opener = ["$(", "(", "{ ", "`", "$((", "\"$(", "<(", "${x:-"];
                let o = opener.get(rng.below(opener.len())).copied().unwrap_or("(");
                let n = 1 + rng.below(80);
                let tail = text.split_off(at.min(text.len()));
                for _ in 0..n {
                    text.extend(o.chars());
                }
                text.extend(tail);
            }
            5 => {
                let c = char::from_u32((rng.next() % 0x11_0000) as u32).unwrap_or('x');
                text.insert(at.min(text.len()), c);
            }
            6 => text.truncate(at),
            _ => {
                // Repeat a stretch.
                if at < text.len() {
                    let end = (at + 1 + rng.below(16)).min(text.len());
                    let stretch: Vec<char> = text.get(at..end).unwrap_or(&[]).to_vec();
                    for _ in 0..1 + rng.below(20) {
                        text.extend(stretch.iter());
                    }
                }
            }
        }
    }
    text.into_iter().collect()
}

#[test]
fn random_and_mutated_lines_are_judged_without_panic() {
    let entries = corpus();
    let pool: Vec<&str> = entries.iter().map(|e| e.command.as_str()).collect();
    let setups = setups();
    let runs: usize = std::env::var("AISOPOD_FILTER_FUZZ_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("AISOPOD_FILTER_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0x5eed_a150_90d5_0001);
    // Generous: a debug build on a busy 2-core machine; release judges in microseconds.
    let bound = Duration::from_millis(500);
    let mut rng = Rng(seed);
    let mut slowest = (Duration::ZERO, String::new());
    let started = Instant::now();
    // A judgement that never returns would hang the test with nothing said: a watchdog
    // names the input and ends the process.
    let current = std::sync::Arc::new(std::sync::Mutex::new((Instant::now(), String::new())));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let current = current.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let guard = current.lock().unwrap_or_else(|e| e.into_inner());
                if guard.0.elapsed() > Duration::from_secs(20) {
                    eprintln!(
                        "the command filter has not returned for 20 s (seed {seed}) on {:?}",
                        guard.1
                    );
                    std::process::abort();
                }
            }
        })
    };
    for run in 0..runs {
        let command = if run % 10 == 9 {
            // Random text over the shell's alphabet, without a corpus line to start from.
            let n = rng.below(200);
            (0..n)
                .map(|_| SHELL_CHARS.get(rng.below(SHELL_CHARS.len())).copied())
                .map(Option::unwrap_or_default)
                .collect::<String>()
        } else {
            mutate(&mut rng, &pool)
        };
        let s = setups.get(run % setups.len()).unwrap();
        *current.lock().unwrap() = (Instant::now(), command.clone());
        let t = Instant::now();
        let judged =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.filter.judge(&command)));
        let took = t.elapsed();
        let Ok(judgement) = judged else {
            panic!("run {run} (seed {seed}): the filter panicked on {command:?}");
        };
        assert!(
            took < bound,
            "run {run} (seed {seed}): {took:?} to judge {command:?}"
        );
        if took > slowest.0 {
            slowest = (took, command.clone());
        }
        assert!(!judgement.rule.is_empty() && !judgement.reason.is_empty());
        assert_eq!(
            s.filter.judge(&command).decision,
            judgement.decision,
            "the verdict on {command:?} is not deterministic"
        );
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    watchdog.join().unwrap();
    // The input guards themselves.
    let f = &setups.first().unwrap().filter;
    for command in [
        "(".repeat(100_000),
        "$(".repeat(5_000),
        format!("echo {}", "a".repeat(MAX_INPUT)),
        "\\".repeat(20_000),
        "`".repeat(3_000),
        "{".repeat(10_000),
    ] {
        let t = Instant::now();
        assert_ne!(f.judge(&command).decision, Decision::Allow);
        assert!(t.elapsed() < bound * 4, "{:?}", t.elapsed());
    }
    println!(
        "command filter random input: {runs} lines (seed {seed}) judged in {:?}, slowest {:?} ({} bytes)",
        started.elapsed(),
        slowest.0,
        slowest.1.len()
    );
}
