//! `aisopod backup create | restore` as an operator uses them: offline and against a
//! running gateway with writes going on, onto the same machine and a fresh one, and
//! every way a restore must refuse (wrong passphrase, damage, truncation, a running
//! gateway) without changing a byte of the current data.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use aisopod::clock::SystemClock;
use aisopod::config::ProcessEnvironment;
use aisopod::secret::Secret;
use aisopod::server::state::Services;
use aisopod::store::SecretName;
use http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Gateway, OWNER_PW, Setup, stderr, stdout};

const FAST: &str = "[rate_limit]\nauth_per_minute = 1000\nauth_burst = 1000\napi_per_minute = 10000\napi_burst = 1000\n[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1";
const PASSPHRASE: &str = "otter violin harbour tuesday";

fn backup(setup: &Setup, args: &[&str], passphrase: &str) -> std::process::Output {
    let mut all = vec!["backup"];
    all.extend_from_slice(args);
    all.push("--passphrase-stdin");
    setup.cli_with(&all, &[], Some(format!("{passphrase}\n").as_bytes()))
}

fn login(gateway: &Gateway, password: &str) -> (StatusCode, Value) {
    let response = gateway
        .client()
        .post(format!("{}/auth/login", gateway.url))
        .json(&json!({"username": "owner", "password": password}))
        .send()
        .unwrap();
    let status = response.status();
    (status, response.json().unwrap_or(Value::Null))
}

fn me(gateway: &Gateway, token: &str) -> StatusCode {
    gateway
        .client()
        .get(format!("{}/api/v1/me", gateway.url))
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
}

fn services(setup: &Setup) -> Services {
    let config = aisopod::config::load(Some(&setup.config), &ProcessEnvironment).unwrap();
    Services::open(config, Arc::new(SystemClock)).unwrap()
}

/// SHA-256 over every path, mode and content under `dir` (but the lock file, which holds
/// the pid of whoever locked last).
fn tree_hash(dir: &Path) -> String {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, u32, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if rel == Path::new("store.lock") {
                continue;
            }
            let mode = meta.permissions().mode();
            if meta.is_dir() {
                out.push((rel, mode, Vec::new()));
                walk(&path, root, out);
            } else if meta.is_file() {
                out.push((rel, mode, std::fs::read(&path).unwrap()));
            } else {
                out.push((rel, mode, Vec::new()));
            }
        }
    }
    let mut entries = Vec::new();
    walk(dir, dir, &mut entries);
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for (path, mode, contents) in &entries {
        ctx.update(path.to_string_lossy().as_bytes());
        ctx.update(&mode.to_be_bytes());
        ctx.update(&(contents.len() as u64).to_be_bytes());
        ctx.update(contents);
    }
    hex::encode(ctx.finish().as_ref())
}

/// A store with an owner and an API token; returns the token.
fn owner_and_token(setup: &Setup) -> String {
    setup.add_owner();
    let created = setup.cli(&[
        "auth",
        "create-token",
        "--scopes",
        "chat:read",
        "--name",
        "kept",
        "--json",
    ]);
    assert!(created.status.success(), "{}", stderr(&created));
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    created["token"].as_str().unwrap().to_string()
}

#[test]
fn an_offline_backup_restores_onto_a_fresh_machine_with_logins_tokens_and_audit_intact() {
    let source = Setup::new(FAST);
    let token = owner_and_token(&source);
    let mut gateway = source.start();
    assert_eq!(login(&gateway, OWNER_PW).0, StatusCode::OK);
    assert_eq!(me(&gateway, &token), StatusCode::OK);
    gateway.stop();
    let ca_before = stdout(&source.cli(&["cert", "show", "--json"]));

    let file = source.dir.path().join("aisopod.backup");
    let made = backup(&source, &["create", file.to_str().unwrap()], PASSPHRASE);
    assert!(made.status.success(), "{}", stderr(&made));
    assert!(
        stdout(&made).contains("backup written to"),
        "{}",
        stdout(&made)
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let sealed = std::fs::read(&file).unwrap();
    assert_eq!(&sealed[..8], b"AISOPBAK");
    for plain in [OWNER_PW.as_bytes(), b"owner", b"BEGIN", b"audit"] {
        assert!(
            !sealed.windows(plain.len()).any(|w| w == plain),
            "plaintext in the backup"
        );
    }
    // No snapshot is left behind in the data directory, nor its directory (issue 10).
    assert!(!source.data_dir().join("backup-tmp").exists());
    // Refuses to overwrite without --force (before it asks for a passphrase).
    let again = source.cli(&["backup", "create", file.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    let forced = backup(
        &source,
        &["create", file.to_str().unwrap(), "--force"],
        PASSPHRASE,
    );
    assert!(forced.status.success(), "{}", stderr(&forced));

    // A new machine: nothing but the config.
    let target = Setup::new(FAST);
    let restored = backup(&target, &["restore", file.to_str().unwrap()], PASSPHRASE);
    assert!(restored.status.success(), "{}", stderr(&restored));
    assert!(
        stdout(&restored).contains("audit chain: ok"),
        "{}",
        stdout(&restored)
    );
    let data = target.data_dir();
    for private in ["", "db", "tls", "master.key", "tls/ca.key", "tls/key.pem"] {
        let mode = std::fs::metadata(data.join(private))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{private} is {mode:o}");
    }
    assert!(!data.join(".restore").exists());
    assert_eq!(
        std::fs::read(data.join("master.key")).unwrap(),
        std::fs::read(source.data_dir().join("master.key")).unwrap()
    );
    assert_eq!(stdout(&target.cli(&["cert", "show", "--json"])), ca_before);
    let verify = target.cli(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    let audit = stdout(&target.cli(&["audit", "list", "--json"]));
    assert!(
        audit.contains("backup.restore") && audit.contains("gateway.stop"),
        "{audit}"
    );

    let gateway = target.start();
    let (status, session) = login(&gateway, OWNER_PW);
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(
        me(&gateway, session["access_token"].as_str().unwrap()),
        StatusCode::OK
    );
    assert_eq!(me(&gateway, &token), StatusCode::OK);
    assert_eq!(
        login(&gateway, "not the password at all").0,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn an_online_backup_taken_during_writes_is_consistent() {
    let setup = Setup::new(FAST);
    owner_and_token(&setup);
    let mut gateway = setup.start_process();
    // Writes through the admin socket while the backup runs: each one seals a secret
    // (store and master key) and appends audit records.
    let stop = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicU32::new(0));
    let writer = {
        let stop = stop.clone();
        let finished = finished.clone();
        let config = setup.config.clone();
        std::thread::spawn(move || {
            let mut written = 0u32;
            while !stop.load(Ordering::Relaxed) || written < 3 {
                let out = std::process::Command::new(crate::support::BIN)
                    .arg("--config")
                    .arg(&config)
                    .args(["secrets", "set", &format!("during.{written}")])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .and_then(|mut child| {
                        use std::io::Write;
                        child
                            .stdin
                            .take()
                            .unwrap()
                            .write_all(format!("value-{written}").as_bytes())?;
                        child.wait()
                    })
                    .unwrap();
                assert!(out.success());
                written += 1;
                finished.store(written, Ordering::SeqCst);
            }
            written
        })
    };
    // The backup starts once writes are under way: at least one has landed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while finished.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no write landed through the admin socket"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let file = setup.dir.path().join("online.backup");
    let made = setup.cli_with(
        &["backup", "create", file.to_str().unwrap()],
        &[("AISOPOD_BACKUP_PASSPHRASE", PASSPHRASE)],
        None,
    );
    assert!(made.status.success(), "{}", stderr(&made));
    eprintln!("{}", stdout(&made).trim());
    // A restore while the gateway runs is refused before it asks for anything.
    let refused = setup.cli(&["backup", "restore", file.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("gateway is running") && stderr(&refused).contains("stop it"),
        "{}",
        stderr(&refused)
    );
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(
        !setup.data_dir().join(".restore").exists(),
        "the refused restore staged nothing"
    );
    gateway.stop();

    let target = Setup::new(FAST);
    let restored = backup(&target, &["restore", file.to_str().unwrap()], PASSPHRASE);
    assert!(restored.status.success(), "{}", stderr(&restored));
    let services = services(&target);
    services.audit.verify().unwrap();
    // Every secret in the snapshot opens under the snapshot's master key, and they are
    // a prefix of those written.
    let names: Vec<String> = services
        .secrets
        .list()
        .unwrap()
        .into_iter()
        .map(|(name, _)| name.to_string())
        .collect();
    let during: Vec<&String> = names.iter().filter(|n| n.starts_with("during.")).collect();
    assert!(
        !during.is_empty() && during.len() <= written as usize,
        "{names:?}"
    );
    for i in 0..during.len() {
        let name = SecretName::parse(&format!("during.{i}")).unwrap();
        let value = services.secrets.get(&name).unwrap().unwrap();
        assert_eq!(value, Secret::new(format!("value-{i}")));
    }
}

#[test]
fn a_wrong_passphrase_damage_or_truncation_is_refused_and_changes_nothing() {
    let setup = Setup::new(FAST);
    owner_and_token(&setup);
    // Enough data for several 64 KiB chunks.
    {
        let services = services(&setup);
        let filler = "x".repeat(2000);
        for i in 0..150 {
            let name = SecretName::parse(&format!("filler.{i}")).unwrap();
            services.secrets.set(&name, &Secret::new(&filler)).unwrap();
        }
    }
    let file = setup.dir.path().join("good.backup");
    let made = backup(&setup, &["create", file.to_str().unwrap()], PASSPHRASE);
    assert!(made.status.success(), "{}", stderr(&made));
    let good = std::fs::read(&file).unwrap();
    assert!(good.len() > 4 * 65536, "{} bytes", good.len());

    // The current data differs from the backup: a user more.
    let later = setup.cli_with(
        &["user", "add", "later", "--password-stdin"],
        &[],
        Some(b"plinth-ocarina-sleet-mural\n"),
    );
    assert!(later.status.success(), "{}", stderr(&later));
    let before = tree_hash(&setup.data_dir());

    let try_restore = |bytes: &[u8], passphrase: &str, expect: &str| {
        let path = setup.dir.path().join("candidate.backup");
        std::fs::write(&path, bytes).unwrap();
        let out = backup(&setup, &["restore", path.to_str().unwrap()], passphrase);
        assert_eq!(out.status.code(), Some(1), "{expect}: {}", stdout(&out));
        let message = stderr(&out);
        assert!(
            message.contains(expect) && message.contains("nothing was changed"),
            "{expect}: {message}"
        );
        assert_eq!(
            tree_hash(&setup.data_dir()),
            before,
            "{expect}: the data changed"
        );
    };
    try_restore(&good, "otter violin harbour wednesday", "wrong passphrase");
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    try_restore(&flipped, PASSPHRASE, "damaged");
    let mut last = good.clone();
    let end = last.len() - 1;
    last[end] ^= 1;
    try_restore(&last, PASSPHRASE, "damaged");
    try_restore(&good[..good.len() - 1000], PASSPHRASE, "truncated");
    // Cut exactly after the second chunk.
    try_restore(&good[..81 + 2 * (65536 + 16)], PASSPHRASE, "truncated");
    try_restore(&good[..50], PASSPHRASE, "damaged");
    try_restore(
        &[good.as_slice(), b"appended"].concat(),
        PASSPHRASE,
        "damaged",
    );
    try_restore(
        b"just some text file\n",
        PASSPHRASE,
        "not an aisopod backup",
    );

    // Too short a passphrase is refused for a new backup, before anything is written.
    let short = backup(
        &setup,
        &[
            "create",
            setup.dir.path().join("short.backup").to_str().unwrap(),
        ],
        "short",
    );
    assert_eq!(short.status.code(), Some(1));
    assert!(stderr(&short).contains("at least 15"), "{}", stderr(&short));
    assert!(!setup.dir.path().join("short.backup").exists());

    // The good file still restores, and the later user is gone with the rest.
    let restored = backup(&setup, &["restore", file.to_str().unwrap()], PASSPHRASE);
    assert!(restored.status.success(), "{}", stderr(&restored));
    let users = stdout(&setup.cli(&["user", "list", "--json"]));
    assert!(
        users.contains("owner") && !users.contains("later"),
        "{users}"
    );
    assert!(setup.cli(&["audit", "verify"]).status.success());
    let filler = SecretName::parse("filler.149").unwrap();
    assert!(services(&setup).secrets.get(&filler).unwrap().is_some());
}
