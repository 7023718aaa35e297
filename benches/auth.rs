//! Micro-benchmarks of credential checks: an API token, a session access token, and a
//! password login with the default argon2id parameters. Run with
//! `cargo bench --bench auth`; each figure is the median of repeated batches.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aisopod::auth::scopes::Scopes;
use aisopod::clock::SystemClock;
use aisopod::config::{ConfigSource, ProcessEnvironment};
use aisopod::secret::Secret;
use aisopod::server::state::Services;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Median per-call time over `batches` batches of `per_batch` calls.
fn per_call(batches: usize, per_batch: u32, mut call: impl FnMut()) -> Duration {
    let samples = (0..batches)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..per_batch {
                call();
            }
            started.elapsed() / per_batch
        })
        .collect();
    median(samples)
}

fn main() {
    let dir = std::env::current_dir()
        .unwrap()
        .join("target/bench-tmp/auth");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!("[storage]\ndata_dir = \"{}\"\n", dir.display());
    let config =
        aisopod::config::parse(&text, ConfigSource::Defaults, &ProcessEnvironment).unwrap();
    let params = config.auth.password.clone();
    let services = Services::open(config, Arc::new(SystemClock)).unwrap();
    let auth = &services.auth;
    let password = Secret::new("walrus cinnamon lantern quietly");
    let owner = auth
        .accounts
        .create("owner", &password, Scopes::all())
        .unwrap();
    let (token, _) = auth
        .tokens
        .create(
            &owner,
            "bench",
            Scopes::parse_list("chat:read").unwrap(),
            Scopes::all(),
            aisopod::auth::tokens::TokenTerms::default(),
            "bench",
        )
        .unwrap();
    let pair = auth.sessions.login(&owner).unwrap();

    let api_token = per_call(15, 2000, || {
        auth.resolve(token.expose()).unwrap();
    });
    let session = per_call(15, 2000, || {
        auth.resolve(&pair.access_token).unwrap();
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let login = per_call(9, 3, || {
        runtime
            .block_on(auth.accounts.authenticate(
                "owner",
                password.clone(),
                std::net::IpAddr::from([127, 0, 0, 1]),
                None,
            ))
            .unwrap();
    });
    // A Raspberry Pi 4 (Cortex-A72, 1.5 GHz) runs argon2 about 4-5x slower than this
    // class of x86 core; the factor 5 is the conservative end.
    let pi4 = login * 5;
    println!("| check | median per call |");
    println!("|---|---|");
    println!(
        "| API token (`aisp_...`): parse, SHA-256, two store lookups | {:.2} µs |",
        api_token.as_secs_f64() * 1e6
    );
    println!(
        "| session access token: HS256 verify, denylist, account and login lookups | {:.2} µs |",
        session.as_secs_f64() * 1e6
    );
    println!(
        "| password login, argon2id m={} KiB t={} p={} | {:.1} ms (Pi 4 estimate ×5: {:.0} ms) |",
        params.argon2_memory_kib,
        params.argon2_iterations,
        params.argon2_parallelism,
        login.as_secs_f64() * 1e3,
        pi4.as_secs_f64() * 1e3
    );
    drop(services);
    let _ = std::fs::remove_dir_all(&dir);
}
