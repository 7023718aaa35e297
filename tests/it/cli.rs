//! The `aisopod` command line as an operator uses it: configuration checks, strict-mode
//! refusals, first start, audit, certificates and secrets, with and without a running
//! gateway.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::Arc;

use aisopod::audit::AuditRecord;
use aisopod::clock::SystemClock;
use aisopod::config::{ConfigSource, ProcessEnvironment};
use aisopod::server::state::Services;
use aisopod::store::{AuditSeq, SecretName, TreeName};

use crate::support::{BIN, Setup, stderr, stdout, version_of};

const EXAMPLE: &str = include_str!("../../config/aisopod.example.toml");

#[test]
fn the_example_config_is_valid_and_documents_every_key() {
    let config = aisopod::config::parse(
        EXAMPLE,
        ConfigSource::File("example".into()),
        &ProcessEnvironment,
    )
    .unwrap_or_else(|e| panic!("the example does not parse: {e}"));
    assert_eq!(config.server.bind.to_string(), "0.0.0.0:3080");
    let mut table = String::new();
    let mut documented = Vec::new();
    for line in EXAMPLE.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = name.to_string();
            continue;
        }
        let line = line.trim_start_matches('#').trim();
        if let Some((key, _)) = line.split_once(" = ")
            && !key.contains(' ')
        {
            documented.push(format!("{table}.{key}"));
        }
    }
    for key in aisopod::config::schema_keys() {
        assert!(
            documented.contains(&key),
            "{key} is not documented in config/aisopod.example.toml"
        );
    }
}

/// Writes `config`, runs `validate-config`, and checks it refuses naming each of `keys`;
/// returns the report.
fn refused_config_names(setup: &Setup, config: &str, keys: &[&str]) -> String {
    std::fs::write(&setup.config, config).unwrap();
    let bad = setup.cli(&["gateway", "validate-config"]);
    assert_eq!(bad.status.code(), Some(1));
    let report = stdout(&bad);
    for key in keys {
        assert!(
            report.contains(&format!("  {key}: ")),
            "{key} missing from:\n{report}"
        );
    }
    report
}

#[test]
fn validate_config_reports_ok_or_every_error_with_its_key() {
    let setup = Setup::new("");
    let ok = setup.cli(&["gateway", "validate-config"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(stdout(&ok).trim(), "ok");

    let report = refused_config_names(
        &setup,
        "[server]\nbind = \"here\"\nmax_body = \"lots\"\ntypo_key = 1\n[audit]\nretention_days = -4\n[auth]\ntoken = \"${UNSET_FOR_THIS_TEST}\"\n",
        &[
            "server.bind",
            "server.max_body",
            "server.typo_key",
            "audit.retention_days",
            "auth.token",
        ],
    );
    assert!(report.contains("UNSET_FOR_THIS_TEST"));

    std::fs::write(&setup.config, "[server\nbind = 1").unwrap();
    let broken = setup.cli(&["gateway", "validate-config"]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(stdout(&broken).contains("line 1"), "{}", stdout(&broken));

    let missing = Command::new(BIN)
        .args([
            "--config",
            "/nonexistent/aisopod.toml",
            "gateway",
            "validate-config",
        ])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(stdout(&missing).contains("/nonexistent/aisopod.toml"));
}

/// `[tools.shell]` is checked by the command filter, not by config (a leaf); the CLI
/// hands that check to config, so its mistakes still come in the same run as config's
/// own, each with its key, and a command refuses to run on them.
#[test]
fn validate_config_reports_the_command_filters_keys_with_configs_own() {
    let setup = Setup::new("");
    let report = refused_config_names(
        &setup,
        "[server]\nbind = \"here\"\n[tools.shell]\nallowed_programs = [\"git\", \"/bin/ls\"]\nallowed_hosts = [\"https://x.example/\"]\n[[tools.shell.rules]]\nid = \"bad id\"\naction = \"allow\"\nprogram = \"git\"\nargs = \"x\\\\\"\n",
        &[
            "server.bind",
            "tools.shell.allowed_programs.1",
            "tools.shell.allowed_hosts.0",
            "tools.shell.rules.0 (id \"bad id\").id",
            "tools.shell.rules.0 (id \"bad id\").args",
        ],
    );
    assert!(report.contains("5 error(s)"), "{report}");

    std::fs::write(
        &setup.config,
        "[tools.shell]\nallowed_hosts = [\"https://x.example/\"]\n",
    )
    .unwrap();
    let check = setup.cli(&["policy", "check-command", "--", "ls"]);
    assert_eq!(check.status.code(), Some(1), "{}", stdout(&check));
    assert!(
        stderr(&check).contains("tools.shell.allowed_hosts.0"),
        "{}",
        stderr(&check)
    );
}

#[test]
fn strict_mode_refuses_to_start_naming_the_key() {
    let cases = [
        ("[auth]\nmode = \"none\"", "auth.mode"),
        ("[tls]\nmode = \"off\"", "tls.mode"),
        (
            "[security]\ncors_origins = [\"*\"]",
            "security.cors_origins",
        ),
        (
            "[auth]\nmode = \"token\"\ntoken = \"too-short\"",
            "auth.token",
        ),
    ];
    for (extra, key) in cases {
        let setup = Setup::new(extra);
        if key == "tls.mode" {
            let text = std::fs::read_to_string(&setup.config)
                .unwrap()
                .replace("127.0.0.1:0", "0.0.0.0:0");
            std::fs::write(&setup.config, text).unwrap();
        }
        let out = setup.cli(&["gateway", "start"]);
        assert_eq!(out.status.code(), Some(1), "{extra}");
        let message = stderr(&out);
        assert!(
            message.contains(key) && message.contains("strict"),
            "{extra}: {message}"
        );
        assert!(
            !setup.data_dir().join("db").exists(),
            "a refused start must not create state"
        );
        // The environment can switch to local mode, which starts (with a warning).
        let mut gateway = setup.start_process_with(&[("AISOPOD_SECURITY_MODE", "local")]);
        gateway.stop();
    }
}

#[test]
fn first_start_creates_private_state_and_refuses_loosened_key_files() {
    let setup = Setup::new("");
    let mut gateway = setup.start_process();
    gateway.stop();
    let data = setup.data_dir();
    let mode = |p: &str| {
        std::fs::metadata(data.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700);
    for key in ["master.key", "tls/ca.key", "tls/key.pem"] {
        assert_eq!(mode(key), 0o600, "{key}");
    }
    assert_eq!(std::fs::read(data.join("master.key")).unwrap().len(), 32);

    std::fs::set_permissions(
        data.join("master.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let refused = setup.cli(&["gateway", "start"]);
    assert_eq!(refused.status.code(), Some(1));
    let message = stderr(&refused);
    assert!(
        message.contains("master.key") && message.contains("chmod 600"),
        "{message}"
    );
    std::fs::set_permissions(
        data.join("master.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let mut again = setup.start_process();
    again.stop();
}

#[test]
fn damaged_certificates_are_replaced_or_refused_with_a_clear_message() {
    let setup = Setup::new("");
    let mut gateway = setup.start_process();
    gateway.stop();
    let tls = setup.data_dir().join("tls");
    let ca_before = std::fs::read(tls.join("ca.pem")).unwrap();
    std::fs::write(tls.join("cert.pem"), b"\x00\x01 not pem at all").unwrap();
    let mut gateway = setup.start_process();
    assert_eq!(gateway.get("/health").status(), 200);
    gateway.stop();
    assert_eq!(
        std::fs::read(tls.join("ca.pem")).unwrap(),
        ca_before,
        "the CA must survive"
    );
    let issued = setup.cli(&["audit", "list", "--action", "tls.cert_issued", "--json"]);
    let records: Vec<AuditRecord> = serde_json::from_slice(&issued.stdout).unwrap();
    assert_eq!(records.len(), 2);
    assert!(
        records[1].details["reason"]
            .as_str()
            .unwrap()
            .contains("unusable")
    );

    std::fs::write(
        tls.join("ca.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let refused = setup.cli(&["gateway", "start"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("cert regenerate --ca"),
        "{}",
        stderr(&refused)
    );
    let regenerated = setup.cli(&["cert", "regenerate", "--ca"]);
    assert!(regenerated.status.success(), "{}", stderr(&regenerated));
    let mut gateway = setup.start_process();
    assert_eq!(gateway.get("/health").status(), 200);
    gateway.stop();
}

#[test]
fn audit_commands_list_verify_export_and_detect_tampering() {
    let setup = Setup::new("");
    let mut gateway = setup.start_process();
    // While the gateway runs, the CLI goes through the admin socket.
    let live = setup.cli(&["audit", "verify"]);
    assert!(live.status.success(), "{}", stderr(&live));
    assert!(stdout(&live).starts_with("ok: "), "{}", stdout(&live));
    gateway.stop();

    let list = setup.cli(&["audit", "list", "--action", "gateway.*"]);
    let text = stdout(&list);
    assert!(
        text.contains("gateway.start") && text.contains("gateway.stop") && !text.contains("tls."),
        "{text}"
    );
    let recent = setup.cli(&["audit", "list", "--since", "1h", "--limit", "2", "--json"]);
    assert_eq!(
        serde_json::from_slice::<Vec<AuditRecord>>(&recent.stdout)
            .unwrap()
            .len(),
        2
    );
    let bad_since = setup.cli(&["audit", "list", "--since", "last tuesday"]);
    assert_eq!(bad_since.status.code(), Some(1));
    assert!(
        stderr(&bad_since).contains("--since"),
        "{}",
        stderr(&bad_since)
    );

    let export = setup.cli(&["audit", "export", "--format", "jsonl"]);
    let text = stdout(&export);
    let (records, seal) = text.trim_end().rsplit_once('\n').unwrap();
    assert!(seal.starts_with("{\"audit_seal\":{"), "{seal}");
    let records: Vec<AuditRecord> = records
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(records.len() >= 6);
    for pair in records.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }

    // Change one stored record behind the log's back.
    {
        let config = aisopod::config::load(Some(&setup.config), &ProcessEnvironment).unwrap();
        let services = Services::open(config, Arc::new(SystemClock)).unwrap();
        let tree = services
            .store
            .tree::<AuditSeq, AuditRecord>(TreeName::Audit)
            .unwrap();
        let mut record = tree.get(&AuditSeq(3)).unwrap().unwrap();
        record.outcome = aisopod::audit::Outcome::Failure;
        tree.insert(&AuditSeq(3), &record).unwrap();
        services.store.sync().unwrap();
    }
    let verify = setup.cli(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(stderr(&verify).contains("seq 3"), "{}", stderr(&verify));
}

#[test]
fn cert_show_and_regenerate_work_offline_and_against_a_running_gateway() {
    let setup = Setup::new("");
    let before = setup.cli(&["cert", "show"]);
    assert_eq!(before.status.code(), Some(1));
    assert!(
        stderr(&before).contains("first start"),
        "{}",
        stderr(&before)
    );

    let gateway = setup.start_process();
    let shown: serde_json::Value =
        serde_json::from_slice(&setup.cli(&["cert", "show", "--json"]).stdout).unwrap();
    let ca = shown["ca"]["sha256"].as_str().unwrap().to_string();
    let server = shown["server"]["sha256"].as_str().unwrap().to_string();
    assert_eq!(ca.len(), 95, "{ca}");
    assert!(
        shown["server"]["names"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("127.0.0.1"))
    );
    let human = stdout(&setup.cli(&["cert", "show"]));
    assert!(human.contains(&ca) && human.contains("renews:"), "{human}");

    // Regenerating through the admin socket swaps the certificate the server presents.
    let out = setup.cli(&["cert", "regenerate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let presented = presented_fingerprint(gateway.addr());
    let now: serde_json::Value =
        serde_json::from_slice(&setup.cli(&["cert", "show", "--json"]).stdout).unwrap();
    assert_ne!(now["server"]["sha256"], server);
    assert_eq!(now["ca"]["sha256"], ca.as_str());
    assert_eq!(presented, now["server"]["sha256"].as_str().unwrap());
}

fn presented_fingerprint(addr: std::net::SocketAddr) -> String {
    use std::io::Write;
    #[derive(Debug)]
    struct AcceptAny;
    impl rustls::client::danger::ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _: &rustls_pki_types::CertificateDer<'_>,
            _: &[rustls_pki_types::CertificateDer<'_>],
            _: &rustls_pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls_pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &rustls_pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &rustls_pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AcceptAny))
    .with_no_client_auth();
    let mut connection = rustls::ClientConnection::new(
        Arc::new(config),
        rustls_pki_types::ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    let mut tls = rustls::Stream::new(&mut connection, &mut socket);
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let chain = connection.peer_certificates().unwrap();
    aisopod::tls::fingerprint(&chain[0])
}

#[test]
fn secrets_are_sealed_listed_without_values_and_survive_rotation() {
    let setup = Setup::new("");
    let value = "sk-CANARY-secret-value-9a8b7c6d5e4f";
    let stored = setup.cli_with(
        &["secrets", "set", "providers.openai"],
        &[],
        Some(format!("{value}\n").as_bytes()),
    );
    assert!(stored.status.success(), "{}", stderr(&stored));
    assert!(!stdout(&stored).contains(value));

    let mut gateway = setup.start_process();
    let listed = setup.cli(&["secrets", "list"]);
    assert!(stdout(&listed).contains("providers.openai") && !stdout(&listed).contains(value));
    let second = setup.cli_with(
        &["secrets", "set", "providers.local"],
        &[],
        Some(b"another-value"),
    );
    assert!(second.status.success(), "{}", stderr(&second));
    let rotated = setup.cli(&["secrets", "rotate-master-key"]);
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    assert!(
        stdout(&rotated).contains("re-sealed"),
        "{}",
        stdout(&rotated)
    );
    let bad_name = setup.cli_with(&["secrets", "set", "../etc/passwd"], &[], Some(b"x"));
    assert_eq!(bad_name.status.code(), Some(1));
    assert!(stderr(&bad_name).contains("invalid secret name"));
    let empty = setup.cli_with(&["secrets", "set", "empty"], &[], Some(b""));
    assert_eq!(empty.status.code(), Some(1));
    gateway.stop();

    let config = aisopod::config::load(Some(&setup.config), &ProcessEnvironment).unwrap();
    let services = Services::open(config, Arc::new(SystemClock)).unwrap();
    let name = SecretName::parse("providers.openai").unwrap();
    assert_eq!(
        services.secrets.get(&name).unwrap().unwrap().expose(),
        value
    );
    let kids: Vec<String> = services
        .secrets
        .list()
        .unwrap()
        .into_iter()
        .map(|(_, kid)| kid)
        .collect();
    assert!(
        kids.iter().all(|k| *k == services.secrets.key_id()),
        "{kids:?}"
    );
    let actions: Vec<String> = services.audit.all().map(|r| r.unwrap().action).collect();
    assert!(
        actions.contains(&"admin.secrets.rotate_master_key".to_string()),
        "{actions:?}"
    );
    assert!(
        services.audit.verify().is_ok(),
        "the chain holds across a key rotation"
    );
}

#[test]
fn gen_secret_usage_errors_and_version() {
    let out = Command::new(BIN)
        .args(["auth", "gen-secret"])
        .output()
        .unwrap();
    assert!(out.status.success());
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(stdout(&out).trim())
        .unwrap();
    assert_eq!(bytes.len(), 32);
    let again = Command::new(BIN)
        .args(["auth", "gen-secret"])
        .output()
        .unwrap();
    assert_ne!(out.stdout, again.stdout);

    let usage = Command::new(BIN)
        .args(["gateway", "launch"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
    let version = Command::new(BIN).arg("--version").output().unwrap();
    assert!(stdout(&version).starts_with("aisopod "));
}

#[test]
fn with_no_config_the_gateway_runs_on_defaults_in_a_local_data_dir() {
    let cwd = tempfile::tempdir().unwrap();
    let validate = Command::new(BIN)
        .current_dir(cwd.path())
        .env_remove("AISOPOD_CONFIG")
        .args(["gateway", "validate-config"])
        .output()
        .unwrap();
    if std::path::Path::new(aisopod::config::ETC_CONFIG).exists() {
        return; // This machine has an installed config, which takes the place of defaults.
    }
    assert_eq!(stdout(&validate).trim(), "ok");
    let mut child = Command::new(BIN)
        .current_dir(cwd.path())
        .env_remove("AISOPOD_CONFIG")
        .env("AISOPOD_LOG", "info")
        .args(["gateway", "start", "--print-addr"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    crate::support::signal(&child, nix::sys::signal::Signal::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let log = stderr(&out);
    assert_eq!(line.trim(), "https://127.0.0.1:3080", "{log}");
    assert!(log.contains("built-in defaults"), "{log}");
    assert!(cwd.path().join("aisopod-data/master.key").exists());
    assert!(log.contains("aisopod-data"), "{log}");
}

#[test]
fn user_accounts_are_managed_from_the_console_with_or_without_a_gateway() {
    let setup = Setup::new("[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1");
    let password = b"walrus cinnamon lantern quietly\n";
    let added = setup.cli_with(
        &["user", "add", "--admin", "Owner", "--password-stdin"],
        &[],
        Some(password),
    );
    assert!(added.status.success(), "{}", stderr(&added));
    assert_eq!(stdout(&added).trim(), "created owner");
    let again = setup.cli_with(
        &["user", "add", "owner", "--password-stdin"],
        &[],
        Some(password),
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already exists"));
    let weak = setup.cli_with(
        &["user", "add", "bob", "--password-stdin"],
        &[],
        Some(b"password12345678\n"),
    );
    assert_eq!(weak.status.code(), Some(1));
    assert!(stderr(&weak).contains("too common"), "{}", stderr(&weak));
    let confusable = setup.cli_with(
        &["user", "add", "\u{430}dmin", "--password-stdin"],
        &[],
        Some(password),
    );
    assert!(
        stderr(&confusable).contains("invalid username"),
        "{}",
        stderr(&confusable)
    );

    let mut gateway = setup.start_process();
    let bob = setup.cli_with(
        &[
            "user",
            "add",
            "bob",
            "--scopes",
            "chat:read",
            "--password-stdin",
        ],
        &[],
        Some(b"plinth-ocarina-sleet-mural\n"),
    );
    assert!(bob.status.success(), "{}", stderr(&bob));
    assert!(setup.cli(&["user", "disable", "bob"]).status.success());
    let last = setup.cli(&["user", "remove", "owner"]);
    assert_eq!(last.status.code(), Some(1));
    assert!(stderr(&last).contains("last enabled administrator"));
    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&setup.cli(&["user", "list", "--json"]).stdout).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["username"], "bob");
    assert_eq!(list[0]["disabled"], true);
    assert_eq!(list[0]["scopes"], serde_json::json!(["chat:read"]));
    assert!(
        list.iter().all(|u| u.get("password_hash").is_none()),
        "hashes must not leave the store"
    );
    gateway.stop();
    let audit = stdout(&setup.cli(&["audit", "export"]));
    assert!(
        audit.contains("admin.user.disable")
            && !audit.contains("walrus")
            && !audit.contains("plinth")
    );
}

/// Opens the stopped gateway's audit tree for tampering behind the log's back.
fn audit_tree(setup: &Setup) -> (Services, aisopod::store::Tree<AuditSeq, AuditRecord>) {
    let config = aisopod::config::load(Some(&setup.config), &ProcessEnvironment).unwrap();
    let services = Services::open(config, Arc::new(SystemClock)).unwrap();
    let tree = services.store.tree(TreeName::Audit).unwrap();
    (services, tree)
}

/// Issue 10 item 13: someone who can write the store but lacks the key cuts records off
/// the end, or rewrites the tail and recomputes the unkeyed hashes; `audit verify` names
/// what happened. An exported log checks against its seal; a tampered export does not.
#[test]
fn audit_verify_reports_truncation_and_rewrites_and_checks_exports_against_the_seal() {
    let setup = Setup::new("");
    let mut gateway = setup.start_process();
    gateway.stop();
    let mut gateway = setup.start_process();
    gateway.stop();
    let export = setup.cli(&["audit", "export", "--format", "jsonl"]);
    assert!(export.status.success(), "{}", stderr(&export));
    let file = setup.data_dir().join("export.jsonl");
    std::fs::write(&file, &export.stdout).unwrap();
    let path = file.to_str().unwrap();
    let checked = setup.cli(&["audit", "verify", "--export", path]);
    assert!(checked.status.success(), "{}", stderr(&checked));
    assert!(
        stdout(&checked).contains("sealed head"),
        "{}",
        stdout(&checked)
    );
    // The export with its last record dropped: its own chain holds, its seal does not.
    let text = stdout(&export);
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 5, "{text}");
    lines.remove(lines.len() - 2);
    std::fs::write(&file, lines.join("\n")).unwrap();
    let cut = setup.cli(&["audit", "verify", "--export", path]);
    assert_eq!(cut.status.code(), Some(1));
    assert!(stderr(&cut).contains("truncated"), "{}", stderr(&cut));

    // Cut the last two records out of the store.
    let (services, tree) = audit_tree(&setup);
    let (_, last) = tree.last().unwrap().unwrap();
    let removed: Vec<AuditRecord> = (last.seq - 1..=last.seq)
        .map(|seq| tree.get(&AuditSeq(seq)).unwrap().unwrap())
        .collect();
    for record in &removed {
        tree.remove(&AuditSeq(record.seq)).unwrap();
    }
    services.store.sync().unwrap();
    drop((services, tree));
    let verify = setup.cli(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        stderr(&verify).contains(&format!("truncated after seq {}", last.seq - 2)),
        "{}",
        stderr(&verify)
    );

    // The gateway still starts and serves; what it appends does not hide the cut.
    let mut gateway = setup.start_process();
    assert_eq!(gateway.get("/health").status(), 200);
    gateway.stop();
    let verify = setup.cli(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        stderr(&verify).contains("did not match the seal"),
        "{}",
        stderr(&verify)
    );
}

/// Issue 10 item 13: the tail rewritten with recomputed (unkeyed) hashes is reported,
/// and a gateway that appends to it afterwards does not make it whole.
#[test]
fn audit_verify_reports_a_rewritten_tail_even_after_later_appends() {
    let setup = Setup::new("");
    let mut gateway = setup.start_process();
    gateway.stop();
    let (services, tree) = audit_tree(&setup);
    let (_, last) = tree.last().unwrap().unwrap();
    let mut prev = tree.get(&AuditSeq(last.seq - 2)).unwrap().unwrap().hash;
    for seq in last.seq - 1..=last.seq {
        let mut record = tree.get(&AuditSeq(seq)).unwrap().unwrap();
        record.actor = "mallory".into();
        record.prev_hash = prev;
        record.hash = rehash(&record);
        prev = record.hash.clone();
        tree.insert(&AuditSeq(seq), &record).unwrap();
    }
    services.store.sync().unwrap();
    drop((services, tree));
    let verify = setup.cli(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        stderr(&verify).contains(&format!("broken at seq {}", last.seq))
            && stderr(&verify).contains("tail was rewritten"),
        "{}",
        stderr(&verify)
    );
    let mut gateway = setup.start_process();
    assert_eq!(gateway.get("/health").status(), 200);
    gateway.stop();
    let verify = setup.cli(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        stderr(&verify).contains(&format!("opened at seq {}", last.seq)),
        "{}",
        stderr(&verify)
    );
}

/// The unkeyed hash `AuditRecord` carries, recomputed as an attacker would: SHA-256 of
/// the record's JSON without `hash`, fields in their stored order.
fn rehash(record: &AuditRecord) -> String {
    let mut value = serde_json::to_value(record).unwrap();
    let object = value.as_object_mut().unwrap();
    object.remove("hash");
    // serde_json keeps insertion order only with preserve_order; rebuild the order.
    let order = [
        "seq",
        "time",
        "actor",
        "action",
        "target",
        "outcome",
        "source_ip",
        "details",
        "sealed",
        "prev_hash",
    ];
    let mut text = String::from("{");
    for (i, key) in order
        .iter()
        .filter(|k| object.contains_key(**k))
        .enumerate()
    {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&format!(
            "{}:{}",
            serde_json::to_string(key).unwrap(),
            object[*key]
        ));
    }
    text.push('}');
    hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

/// Issue 10 item 12: a `chat:write` user answers an approval whose id, percent-decoded
/// from the path, carries a newline and terminal escapes. The id is refused as no
/// request (over HTTP/1.1 and HTTP/2), nothing raw reaches the log, `audit list` prints
/// one line per record without escapes, and the owner is served right after.
#[test]
fn control_characters_in_an_approval_id_never_reach_the_log_or_the_terminal() {
    let setup = Setup::new("");
    let password = "another long passphrase here";
    let added = setup.cli_with(
        &["user", "add", "eve", "--password-stdin"],
        &[],
        Some(password.as_bytes()),
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let mut gateway = setup.start_process();
    let login: serde_json::Value = gateway
        .client()
        .post(format!("{}/auth/login", gateway.url))
        .json(&serde_json::json!({"username": "eve", "password": password}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_string();
    let injected =
        "apr_0%0A%20%20%20999%20%202026-01-01T00:00:00Z%20%20approval.allowed%1B%5B2J%C2%9B31m";
    for http2 in [false, true] {
        let client = gateway.client_speaking(version_of(!http2), "127.0.0.1");
        let response = client
            .post(format!("{}/api/v1/approvals/{injected}", gateway.url))
            .bearer_auth(&token)
            .json(&serde_json::json!({"allow": true}))
            .send()
            .unwrap();
        assert_eq!(
            response.version(),
            if http2 {
                reqwest::Version::HTTP_2
            } else {
                reqwest::Version::HTTP_11
            }
        );
        assert_eq!(response.status(), 404);
        let body: serde_json::Value = response.json().unwrap();
        assert_eq!(body["error"]["code"], "not_found");
        let me = client
            .get(format!("{}/api/v1/me", gateway.url))
            .bearer_auth(&token)
            .send()
            .unwrap();
        assert_eq!(me.status(), 200, "the caller is served right after");
    }
    gateway.stop();

    let list = setup.cli(&["audit", "list", "--action", "approval.*"]);
    let text = stdout(&list);
    let raw = String::from_utf8_lossy(&list.stdout);
    assert!(
        !raw.contains('\u{1b}') && !raw.contains('\u{9b}'),
        "{raw:?}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("approval.respond") && l.contains("(invalid id)")),
        "{text}"
    );
    let json = setup.cli(&["audit", "list", "--json"]);
    let records: Vec<AuditRecord> = serde_json::from_slice(&json.stdout).unwrap();
    for record in records {
        let text = format!(
            "{}{}{}{}",
            record.actor, record.target, record.action, record.details
        );
        assert!(!text.chars().any(char::is_control), "{text:?}");
    }
}

/// Issue 10 item 14: a peer in another user namespace is refused by the admin socket
/// even when its uid passes (root mapped to root, as a sandbox's id maps to the service
/// user); the same command from the gateway's own namespace is served right after.
#[test]
fn the_admin_socket_refuses_a_peer_in_another_user_namespace() {
    if !nix::unistd::geteuid().is_root()
        || Command::new("unshare").arg("--version").output().is_err()
    {
        crate::sandbox::skipped("admin socket user-namespace check needs root and unshare(1)");
        return;
    }
    let setup = Setup::new("");
    let mut gateway = setup.start_process();
    let config = setup.config.to_str().unwrap();
    let outside = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            BIN,
            "--config",
            config,
            "audit",
            "verify",
        ])
        .output()
        .unwrap();
    assert_eq!(outside.status.code(), Some(1), "{}", stdout(&outside));
    let inside = setup.cli(&["audit", "verify"]);
    assert!(inside.status.success(), "{}", stderr(&inside));
    gateway.stop();
    let list = setup.cli(&["audit", "list", "--action", "admin.connect", "--json"]);
    let records: Vec<AuditRecord> = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(records.len(), 1, "{}", stdout(&list));
    assert_eq!(records[0].actor, "uid:0");
    assert_eq!(
        records[0].details["reason"],
        "peer is in another user namespace"
    );
}

/// The CLI run from another directory than the gateway's, with no config: issue 10.
fn run_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("AISOPOD_CONFIG")
        .env_remove("STATE_DIRECTORY")
        .env_remove("RUNTIME_DIRECTORY")
        .env_remove("AISOPOD_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn commands_refuse_to_create_a_data_dir_and_name_the_one_they_use() {
    let elsewhere = tempfile::tempdir().unwrap();
    let cwd = elsewhere.path().canonicalize().unwrap();
    let would_be = cwd.join("aisopod-data");
    for args in [
        &["auth", "claim-code"][..],
        &["auth", "list-tokens"],
        &["secrets", "list"],
        &["audit", "verify"],
        &["user", "list"],
    ] {
        let out = run_in(&cwd, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let message = stderr(&out);
        assert!(
            message.contains(&format!(
                "no aisopod data directory at {}",
                would_be.display()
            )) && message.contains("--config PATH")
                && message.contains("built-in defaults"),
            "{args:?}: {message}"
        );
        assert!(
            !would_be.exists(),
            "{args:?} created {}",
            would_be.display()
        );
    }

    // Setup commands create it, and say where.
    let setup = Setup::new("");
    let stored = setup.cli_with(&["secrets", "set", "providers.x"], &[], Some(b"value"));
    assert!(stored.status.success(), "{}", stderr(&stored));
    let data = setup.data_dir();
    assert!(
        stderr(&stored).contains(&format!("creating a new data directory {}", data.display())),
        "{}",
        stderr(&stored)
    );
    // A person at a terminal is told which data directory a command uses (scripts keep
    // a clean stderr: `sandbox run` passes its child's stderr through).
    let at_terminal = || {
        let line = format!("{BIN} --config {} secrets list", setup.config.display());
        let out = Command::new("script")
            .args(["-q", "-e", "-c", &line, "/dev/null"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let listed = at_terminal();
    assert!(
        listed.contains(&format!("data directory {}", data.display())),
        "{listed}"
    );
    assert!(stderr(&setup.cli(&["secrets", "list"])).is_empty());
    let mut gateway = setup.start_process();
    let through = at_terminal();
    assert!(through.contains("through the running gateway"), "{through}");
    gateway.stop();
}

#[test]
fn console_chores_internal_keys_signing_key_token_expiry_and_backup_leftovers() {
    let setup = Setup::new("[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1");
    setup.add_owner();
    let mut gateway = setup.start_process();

    // The audit checkpoint key is the gateway's, not the user's.
    let listed = setup.cli(&["secrets", "list", "--json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(
        !stdout(&listed).contains("checkpoint"),
        "{}",
        stdout(&listed)
    );
    let removed = setup.cli(&["secrets", "remove", "audit.checkpoint-key"]);
    assert_eq!(removed.status.code(), Some(1));
    assert!(
        stderr(&removed).contains("internal key"),
        "{}",
        stderr(&removed)
    );
    let verify = setup.cli(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));

    // One verb, one meaning.
    let ambiguous = setup.cli(&["auth", "rotate-token"]);
    assert_eq!(ambiguous.status.code(), Some(2), "{}", stderr(&ambiguous));
    assert!(stderr(&ambiguous).contains("--name"));
    let key = setup.cli(&["auth", "rotate-signing-key"]);
    assert!(key.status.success(), "{}", stderr(&key));
    assert!(stdout(&key).contains("signing key rotated"));

    // Expiry as a date a person reads; JSON keeps the number beside it.
    let created = setup.cli(&[
        "auth",
        "create-token",
        "--scopes",
        "chat:read",
        "--name",
        "reader",
        "--expires",
        "90d",
    ]);
    assert!(created.status.success(), "{}", stderr(&created));
    let text = stdout(&setup.cli(&["auth", "list-tokens"]));
    let json: Vec<serde_json::Value> =
        serde_json::from_slice(&setup.cli(&["auth", "list-tokens", "--json"]).stdout).unwrap();
    let unix = json[0]["expires"].as_i64().unwrap();
    let at = json[0]["expires_at"].as_str().unwrap();
    assert_eq!(
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp(),
        unix
    );
    assert!(
        text.contains(&format!("expires {at}")) && !text.contains(&unix.to_string()),
        "{text}"
    );

    // Backup and restore leave nothing behind in the data directory.
    let file = setup.dir.path().join("b.bak");
    let passphrase = b"otter violin harbour tuesday\n";
    let backup = |verb: &str| {
        let out = setup.cli_with(
            &["backup", verb, file.to_str().unwrap(), "--passphrase-stdin"],
            &[],
            Some(passphrase),
        );
        assert!(out.status.success(), "backup {verb}: {}", stderr(&out));
        assert!(
            !setup.data_dir().join("backup-tmp").exists(),
            "after {verb}"
        );
    };
    backup("create");
    gateway.stop();
    backup("restore");
}
