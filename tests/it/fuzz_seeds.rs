//! The fuzz targets' seed corpora, replayed on stable: every file under
//! `fuzz/seeds/<target>/` goes through the same check the libFuzzer binary runs
//! (`fuzz/checks/<target>.rs`). The seeds hold the inputs that once crashed or hung a
//! parser and a sample of a fuzzing run's corpus, so a parser that panics again, or a
//! fuzz check that no longer compiles, fails this test in CI.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

#[path = "../../fuzz/checks/mod.rs"]
mod checks;

/// Replays every seed of `target` through `check`; fails naming each seed that panicked.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    seeds.sort();
    assert!(
        seeds.len() >= 5,
        "{}: only {} seeds",
        dir.display(),
        seeds.len()
    );
    let mut failed = Vec::new();
    for seed in &seeds {
        let data = std::fs::read(seed).unwrap();
        if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            failed.push(seed.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} seeds failed: {failed:#?}",
        failed.len(),
        seeds.len()
    );
}

#[test]
fn admin_request() {
    replay("admin_request", checks::admin_request::run);
}

#[test]
fn command_filter() {
    replay("command_filter", checks::command_filter::run);
}

#[test]
fn jsonrpc() {
    replay("jsonrpc", checks::jsonrpc::run);
}

#[test]
fn openai_request() {
    replay("openai_request", checks::openai_request::run);
}

#[test]
fn pairing_claim() {
    replay("pairing_claim", checks::pairing_claim::run);
}

#[test]
fn password_strength() {
    replay("password_strength", checks::password_strength::run);
}

#[test]
fn provider_stream() {
    replay("provider_stream", checks::provider_stream::run);
}

#[test]
fn webhook() {
    replay("webhook", checks::webhook::run);
}
