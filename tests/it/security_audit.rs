//! `aisopod security audit` against configurations with planted problems: it finds each
//! by id, exits 1, names where a secret is used but never the secret, `--fix` repairs
//! the file modes and says so, and the next run no longer reports them; a clean config
//! has no high finding. `GET /api/v1/security/audit` answers the same ids to an admin
//! only, over HTTP/1.1 and HTTP/2, and refusals leave the owner served.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use http::{StatusCode, Version};
use reqwest::Method;
use serde_json::{Value, json};

use crate::chats::call;
use crate::support::{OWNER_PW, Setup, stderr, stdout};

/// Fast password hashing for the accounts these tests make.
const FAST_AUTH: &str = "[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1\n";

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn ids(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

fn severities(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["severity"].as_str().unwrap().to_string())
        .collect()
}

/// A server certificate for 127.0.0.1 that expires in `days`, written with its key
/// (0600) into `dir`; returns (cert path, key path).
fn certificate_expiring_in(dir: &Path, days: i64) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(300);
    params.not_after = now + time::Duration::days(days);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let cert_path = dir.join("soon.pem");
    let key_path = dir.join("soon.key");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    set_mode(&key_path, 0o600);
    (cert_path, key_path)
}

/// Makes the `owner` administrator and an API token without expiry for it, offline;
/// returns the token.
fn owner_and_token(setup: &Setup, env: &[(&str, &str)], scopes: &str) -> String {
    let added = setup.cli_with(
        &["user", "add", "--admin", "owner", "--password-stdin"],
        env,
        Some(OWNER_PW.as_bytes()),
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let made = setup.cli_with(
        &[
            "auth",
            "create-token",
            "--scopes",
            scopes,
            "--name",
            "forever",
        ],
        env,
        None,
    );
    assert!(made.status.success(), "{}", stderr(&made));
    stdout(&made).trim().to_string()
}

#[test]
fn the_planted_problems_are_found_fixed_where_safe_and_gone_after_the_fix() {
    // A local LLM server listening on every address, as Ollama with OLLAMA_HOST=0.0.0.0.
    let ollama = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = ollama.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate_expiring_in(dir.path(), 10);
    let setup = Setup::new(&format!(
        "{FAST_AUTH}[security]\nmode = \"local\"\ncors_origins = [\"*\"]\n\
         [rate_limit]\ntrusted_proxies = [\"10.0.0.0/8\"]\n\
         [tls]\nmode = \"files\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n\
         [[providers]]\nname = \"ollama\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\n\
         [[providers]]\nname = \"remote\"\nkind = \"openai\"\nbase_url = \"https://api.example/v1\"\napi_key = \"${{REMOTE_KEY}}\"\n",
        cert.display(),
        key.display()
    ));
    let placeholder = [("REMOTE_KEY", "sk-placeholder-not-a-token-000000")];
    let token = owner_and_token(&setup, &placeholder, "chat:read");
    // The provider's key is the token's secret: one leak gives both away.
    let env = [("REMOTE_KEY", token.as_str())];
    let master_key = setup.data_dir().join("master.key");
    set_mode(&master_key, 0o644);
    // Opening the store makes the data directory private again; the audit still says it
    // was not.
    set_mode(&setup.data_dir(), 0o755);

    let run = |args: &[&str]| {
        let out = setup.cli_with(args, &env, None);
        assert!(
            !stdout(&out).contains(&token) && !stderr(&out).contains(&token),
            "the audit showed a secret"
        );
        out
    };
    let first = run(&["security", "audit", "--json"]);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let report: Value = serde_json::from_str(&stdout(&first)).unwrap();
    let found = ids(&report);
    for id in [
        "files.master_key_mode",
        "files.data_dir_mode",
        "cors.wildcard",
        "proxy.private_range",
        "secret.equals_token",
        "token.no_expiry",
        "tls.cert_expiring",
        "build.no_advisory_db",
    ] {
        assert!(found.iter().any(|f| f == id), "{id} not in {found:?}");
    }
    if !aisopod::gateway::providers::local_addresses().is_empty() {
        assert!(
            found.iter().any(|f| f == "llm.port_exposed"),
            "the listener on 0.0.0.0:{port} was not found: {found:?}"
        );
    }
    // Worst first, with the counts to match.
    let order = severities(&report);
    assert_eq!(order.first().map(String::as_str), Some("critical"));
    assert_eq!(order.last().map(String::as_str), Some("info"));
    assert_eq!(
        report["summary"]["critical"].as_u64().unwrap() as usize,
        order.iter().filter(|s| *s == "critical").count()
    );
    let equal = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "secret.equals_token")
        .unwrap();
    assert!(
        equal["evidence"]
            .as_str()
            .unwrap()
            .contains("provider remote"),
        "{equal}"
    );

    // The same for people: grouped by severity, with evidence and fix.
    let human = run(&["security", "audit"]);
    assert_eq!(human.status.code(), Some(1));
    let text = stdout(&human);
    assert!(text.find("CRITICAL (").unwrap() < text.find("HIGH (").unwrap());
    assert!(text.contains("[files.master_key_mode]"));
    assert!(text.contains(&format!("evidence: {} has mode 644", master_key.display())));
    assert!(text.contains(&format!("fix:      chmod 600 {}", master_key.display())));

    // --fix repairs the mode, says so, and only that: the other findings stay.
    let fixed = run(&["security", "audit", "--fix", "--json"]);
    assert_eq!(fixed.status.code(), Some(1), "{}", stderr(&fixed));
    let report: Value = serde_json::from_str(&stdout(&fixed)).unwrap();
    let lines: Vec<&str> = report["fixed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(
        lines,
        [format!("chmod 600 {} (was 644)", master_key.display())]
    );
    assert_eq!(mode_of(&master_key), 0o600);
    let after = ids(&report);
    assert!(!after.iter().any(|f| f.starts_with("files.")), "{after:?}");
    assert!(after.iter().any(|f| f == "cors.wildcard"));

    let again = run(&["security", "audit", "--json"]);
    let report: Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert!(!ids(&report).iter().any(|f| f.starts_with("files.")));
    assert_eq!(report["fixed"], json!([]));
    drop(ollama);
}

#[test]
fn an_expired_certificate_is_critical() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate_expiring_in(dir.path(), -1);
    let setup = Setup::new(&format!(
        "{FAST_AUTH}[tls]\nmode = \"files\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    setup.add_owner();
    let out = setup.cli(&["security", "audit", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let expired = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "tls.cert_expired")
        .expect("tls.cert_expired");
    assert_eq!(expired["severity"], "critical");
}

#[test]
fn a_webhook_secret_that_is_an_api_token_or_a_provider_key_is_found_by_channel_name() {
    let setup = Setup::new(&format!(
        "{FAST_AUTH}[[agents]]\nname = \"helper\"\ntools = []\n\
         [[providers]]\nname = \"remote\"\nkind = \"openai\"\nbase_url = \"https://api.example/v1\"\napi_key = \"${{REMOTE_KEY}}\"\n\
         [[channels]]\nname = \"ci\"\nkind = \"webhook\"\nagent = \"helper\"\nowner = \"owner\"\nsecret = \"${{CI_SECRET}}\"\n\
         [[channels]]\nname = \"alerts\"\nkind = \"webhook\"\nagent = \"helper\"\nowner = \"owner\"\nsecret = \"${{ALERTS_SECRET}}\"\n"
    ));
    let shared = "a-provider-key-that-is-also-a-webhook-secret-0123456789";
    let placeholders = [
        ("REMOTE_KEY", shared),
        (
            "CI_SECRET",
            "placeholder-webhook-secret-not-a-token-0123456789",
        ),
        ("ALERTS_SECRET", shared),
    ];
    let token = owner_and_token(&setup, &placeholders, "chat:read");
    let env = [
        ("REMOTE_KEY", shared),
        ("CI_SECRET", token.as_str()),
        ("ALERTS_SECRET", shared),
    ];
    let out = setup.cli_with(&["security", "audit", "--json"], &env, None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        !text.contains(&token) && !text.contains(shared),
        "the audit showed a secret"
    );
    let report: Value = serde_json::from_str(&text).unwrap();
    let evidence_of = |id: &str| -> String {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["id"] == id)
            .map(|f| f["evidence"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let equal = evidence_of("secret.equals_token");
    assert!(equal.contains("channel ci"), "{report}");
    let reused = evidence_of("secret.reused");
    assert!(
        reused.contains("channel alerts") && reused.contains("provider remote"),
        "{report}"
    );
}

#[test]
fn a_clean_default_config_has_no_high_finding_and_exits_0() {
    let setup = Setup::new(FAST_AUTH);
    setup.add_owner();
    let out = setup.cli(&["security", "audit", "--json"]);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["version"], 1);
    assert!(ids(&report).iter().any(|f| f == "build.no_advisory_db"));
    // A kernel that cannot host the sandbox is a real high finding even for a clean
    // config; everything else must be clean.
    let sandbox_works = setup.cli(&["sandbox", "check"]).status.success();
    let high: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "high" || f["severity"] == "critical")
        .filter(|f| sandbox_works || !f["id"].as_str().unwrap().starts_with("sandbox."))
        .collect();
    assert!(high.is_empty(), "{high:?}");
    if sandbox_works {
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        let text = stdout(&setup.cli(&["security", "audit"]));
        assert!(text.contains("0 critical, 0 high"), "{text}");
    }
}

#[test]
fn the_audit_refuses_a_missing_data_directory_with_one_line() {
    let setup = Setup::new(FAST_AUTH);
    let out = setup.cli(&["security", "audit"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no aisopod data directory"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn the_http_route_gives_the_same_ids_to_admins_only_over_both_versions() {
    let setup = Setup::new(&format!(
        "{FAST_AUTH}[security]\nmode = \"local\"\ncors_origins = [\"*\"]\n\
         [rate_limit]\ntrusted_proxies = [\"10.0.0.0/8\"]\n"
    ));
    let reader = owner_and_token(&setup, &[], "chat:read");
    set_mode(&setup.data_dir().join("master.key"), 0o644);
    let gateway = setup.start();
    let url = format!("{}/api/v1/security/audit", gateway.url);
    let login: Value = gateway
        .client()
        .post(format!("{}/auth/login", gateway.url))
        .json(&json!({"username": "owner", "password": OWNER_PW}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let admin = login["access_token"].as_str().expect("a login").to_string();

    // Through the admin socket of the running gateway.
    let cli = setup.cli(&["security", "audit", "--json"]);
    assert_eq!(cli.status.code(), Some(1), "{}", stderr(&cli));
    let mut cli_ids = ids(&serde_json::from_str(&stdout(&cli)).unwrap());
    cli_ids.sort();
    for id in [
        "files.master_key_mode",
        "cors.wildcard",
        "proxy.private_range",
        "token.no_expiry",
    ] {
        assert!(cli_ids.iter().any(|f| f == id), "{id} not in {cli_ids:?}");
    }

    for version in [Version::HTTP_11, Version::HTTP_2] {
        let client = gateway.client_speaking(version, "127.0.0.1");
        let anonymous = client.get(&url).send().unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{version:?}");
        let body: Value = anonymous.json().unwrap();
        assert!(body["error"]["code"].is_string(), "{body}");
        let (status, body) = call(&client, Method::GET, &url, &reader, None);
        assert_eq!(status, StatusCode::FORBIDDEN, "{version:?}: {body}");
        assert!(body.get("findings").is_none());
        // Right after the refusals the owner is served.
        let (status, report) = call(&client, Method::GET, &url, &admin, None);
        assert_eq!(status, StatusCode::OK, "{version:?}: {report}");
        let mut http_ids = ids(&report);
        http_ids.sort();
        assert_eq!(http_ids, cli_ids, "{version:?}");
        assert_eq!(report["fixed"], json!([]));
        assert_eq!(report["security_mode"], "local", "{version:?}");
        // GET only: the audit never repairs over HTTP.
        let (status, _) = call(&client, Method::POST, &url, &admin, Some(json!({})));
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{version:?}");
    }
    assert_eq!(mode_of(&setup.data_dir().join("master.key")), 0o644);
    let records = setup.cli(&["audit", "list", "--action", "security.audit", "--json"]);
    let records: Value = serde_json::from_str(&stdout(&records)).unwrap();
    assert_eq!(records.as_array().unwrap().len(), 2, "{records}");
}
