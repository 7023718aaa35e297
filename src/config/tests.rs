use std::collections::HashMap;
use std::time::Duration;

use super::env::expand_str;
use super::*;

#[derive(Default)]
struct FakeEnv {
    vars: HashMap<String, String>,
    installed: bool,
}

impl FakeEnv {
    fn with(pairs: &[(&str, &str)]) -> Self {
        Self {
            vars: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            installed: false,
        }
    }
}

impl Environment for FakeEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
    fn installed(&self) -> bool {
        self.installed
    }
}

fn parse_str(text: &str, env: &FakeEnv) -> Result<Config, ConfigError> {
    parse(text, ConfigSource::File("test.toml".into()), env)
}

fn issues(text: &str, env: &FakeEnv) -> Vec<ConfigIssue> {
    match parse_str(text, env) {
        Ok(_) => panic!("expected errors for {text}"),
        Err(err) => err.issues(),
    }
}

#[test]
fn defaults_are_strict_and_use_a_local_data_dir_from_a_checkout() {
    let config = Config::defaults(&FakeEnv::default()).unwrap();
    assert_eq!(config.security.mode, SecurityMode::Strict);
    assert_eq!(config.storage.data_dir, PathBuf::from("aisopod-data"));
    assert_eq!(
        config.storage.runtime_dir,
        PathBuf::from("aisopod-data/run")
    );
    assert_eq!(config.server.bind.to_string(), "0.0.0.0:3080");
    assert_eq!(config.tls.mode, TlsMode::SelfSigned);
    assert_eq!(config.auth.mode, AuthMode::Password);
    assert_eq!(config.audit.retention_days, 90);
}

#[test]
fn installed_defaults_use_system_directories() {
    let env = FakeEnv {
        installed: true,
        ..FakeEnv::default()
    };
    let config = Config::defaults(&env).unwrap();
    assert_eq!(config.storage.data_dir, PathBuf::from("/var/lib/aisopod"));
    assert_eq!(config.storage.runtime_dir, PathBuf::from("/run/aisopod"));
    let systemd = FakeEnv::with(&[
        ("STATE_DIRECTORY", "/srv/state"),
        ("RUNTIME_DIRECTORY", "/run/x"),
    ]);
    let config = Config::defaults(&systemd).unwrap();
    assert_eq!(config.storage.data_dir, PathBuf::from("/srv/state"));
    assert_eq!(config.storage.runtime_dir, PathBuf::from("/run/x"));
}

#[test]
fn env_vars_expand_and_missing_ones_name_variable_and_key() {
    let env = FakeEnv::with(&[("TOKEN", "0123456789abcdef0123456789abcdef-x")]);
    let config = parse_str("[auth]\nmode = \"token\"\ntoken = \"${TOKEN}\"\n", &env).unwrap();
    assert_eq!(
        config.auth.token.unwrap().expose(),
        "0123456789abcdef0123456789abcdef-x"
    );

    let found = issues(
        "[auth]\ntoken = \"${NOPE_NOT_SET}\"\n[server]\npublic_url = \"https://${HOSTX}\"\n",
        &env,
    );
    assert!(found.contains(&ConfigIssue {
        key: "auth.token".into(),
        message: "environment variable NOPE_NOT_SET is not set".into()
    }));
    assert!(
        found
            .iter()
            .any(|i| i.key == "server.public_url" && i.message.contains("HOSTX"))
    );
}

#[test]
fn an_unset_variable_is_the_only_problem_reported_for_its_key() {
    // Strict mode (the default) judges secrets by length: it must not judge the
    // 21-byte text "${AISOPOD_AUTH_TOKEN}" when the variable is unset.
    let found = issues(
        "[auth]\nmode = \"token\"\ntoken = \"${AISOPOD_AUTH_TOKEN}\"\njwt_secret = \"short\"\n",
        &FakeEnv::with(&[]),
    );
    let for_token: Vec<&ConfigIssue> = found.iter().filter(|i| i.key == "auth.token").collect();
    assert_eq!(
        for_token,
        [&ConfigIssue {
            key: "auth.token".into(),
            message: "environment variable AISOPOD_AUTH_TOKEN is not set".into()
        }]
    );
    // Other keys are still judged.
    assert!(
        found
            .iter()
            .any(|i| i.key == "auth.jwt_secret" && i.message.contains("strict mode")),
        "{found:?}"
    );
}

#[test]
fn expansion_handles_escapes_and_bad_syntax() {
    let env = FakeEnv::with(&[("A", "x")]);
    assert_eq!(expand_str("a$${A}b${A}$c", &env).unwrap(), "a${A}bx$c");
    assert!(
        expand_str("${A", &env)
            .unwrap_err()
            .contains("unterminated")
    );
    assert!(
        expand_str("${1A}", &env)
            .unwrap_err()
            .contains("invalid variable name")
    );
    assert!(
        expand_str("${}", &env)
            .unwrap_err()
            .contains("invalid variable name")
    );
}

#[test]
fn every_error_is_reported_with_its_key() {
    let text = r#"
        [server]
        bind = "nonsense"
        max_in_flight = "many"
        request_timeout = "30 fortnights"
        colour = "blue"
        [storage]
        cache_size = "12 parsecs"
        [audit]
        retention_days = 0
        [wat]
        x = 1
    "#;
    let found = issues(text, &FakeEnv::default());
    let keys: Vec<&str> = found.iter().map(|i| i.key.as_str()).collect();
    for key in [
        "server.bind",
        "server.max_in_flight",
        "server.request_timeout",
        "server.colour",
        "storage.cache_size",
        "audit.retention_days",
        "wat",
    ] {
        assert!(keys.contains(&key), "missing {key} in {found:#?}");
    }
    let timeout = found
        .iter()
        .find(|i| i.key == "server.request_timeout")
        .unwrap();
    assert!(timeout.message.contains("invalid duration"), "{timeout}");
}

#[test]
fn a_log_filter_with_a_bad_level_is_named_and_target_directives_pass() {
    let found = issues(
        "[logging]\nfilter = \"aisopod=loud\"\n",
        &FakeEnv::default(),
    );
    let bad = found.iter().find(|i| i.key == "logging.filter");
    assert!(
        bad.is_some_and(|i| i.message.contains("invalid filter")),
        "{found:#?}"
    );
    let config = parse_str(
        "[logging]\nfilter = \"info,aisopod::http=warn\"\n",
        &FakeEnv::default(),
    )
    .unwrap();
    assert_eq!(config.logging.filter, "info,aisopod::http=warn");
}

#[test]
fn malformed_toml_names_line_and_column() {
    let found = issues(
        "[server]\nbind = \"0.0.0.0:1\"\nmax_body = = 3\n",
        &FakeEnv::default(),
    );
    assert_eq!(found.len(), 1);
    assert!(
        found[0].message.starts_with("line 3, column"),
        "{}",
        found[0]
    );
    assert!(found[0].message.contains("invalid TOML"));
}

#[test]
fn durations_and_sizes_parse_with_clear_errors() {
    assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
    assert_eq!(
        parse_duration("7d").unwrap(),
        Duration::from_secs(7 * 86_400)
    );
    assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
    assert!(parse_duration("soon").unwrap_err().contains("\"30s\""));
    assert!(parse_duration("-5s").is_err());
    assert_eq!(parse_size("256m").unwrap(), 256 << 20);
    assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
    assert_eq!(parse_size("1g").unwrap(), 1 << 30);
    assert_eq!(parse_size("4096").unwrap(), 4096);
    assert!(parse_size("12 parsecs").unwrap_err().contains("256m"));
    assert!(parse_size("").is_err());
    assert!(parse_size("m").is_err());
    assert!(parse_size("99999999999999999999g").is_err());
    assert!(parse_size("1.5m").is_err());
}

#[test]
fn wrong_types_and_negative_values_are_reported() {
    let found = issues(
        "[server]\nmax_body = -1\nshutdown_timeout = -3\n[security]\ncors_origins = \"x\"\n",
        &FakeEnv::default(),
    );
    assert_eq!(found.len(), 3, "{found:#?}");
}

#[test]
fn strict_mode_refuses_unsafe_settings_naming_the_key() {
    let env = FakeEnv::default();
    let cases = [
        ("[auth]\nmode = \"none\"\n", "auth.mode"),
        ("[tls]\nmode = \"off\"\n", "tls.mode"),
        (
            "[security]\ncors_origins = [\"*\"]\n",
            "security.cors_origins",
        ),
        (
            "[auth]\nmode = \"token\"\ntoken = \"short\"\n",
            "auth.token",
        ),
        ("[auth]\njwt_secret = \"short\"\n", "auth.jwt_secret"),
    ];
    for (text, key) in cases {
        let found = issues(text, &env);
        assert!(
            found
                .iter()
                .any(|i| i.key == key && i.message.contains("strict")),
            "{text}: {found:#?}"
        );
        let local =
            format!("[server]\nbind = \"127.0.0.1:0\"\n[security]\nmode = \"local\"\n{text}")
                .replace("[security]\ncors", "cors");
        assert!(
            parse_str(&local, &env).is_ok(),
            "local mode should accept {local}"
        );
    }
    // TLS off on loopback is fine even in strict mode.
    assert!(
        parse_str(
            "[server]\nbind = \"127.0.0.1:0\"\n[tls]\nmode = \"off\"\n",
            &env
        )
        .is_ok()
    );
}

#[test]
fn secrets_never_appear_in_errors() {
    let env = FakeEnv::with(&[("SEKRIT", "tiny-secret-value")]);
    let err = parse_str("[auth]\nmode = \"none\"\ntoken = \"${SEKRIT}\"\n", &env).unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("tiny-secret-value"), "{shown}");
    let config = parse_str(
        "[security]\nmode = \"local\"\n[auth]\ntoken = \"${SEKRIT}\"\n",
        &env,
    )
    .unwrap();
    assert!(!format!("{config:?}").contains("tiny-secret-value"));
}

#[test]
fn security_mode_env_overrides_file() {
    let env = FakeEnv::with(&[("SECURITY_MODE", "local")]);
    let none = "[server]\nbind = \"127.0.0.1:0\"\n[auth]\nmode = \"none\"\n";
    assert!(parse_str(none, &env).is_ok());
    let both = FakeEnv::with(&[
        ("SECURITY_MODE", "local"),
        ("AISOPOD_SECURITY_MODE", "strict"),
    ]);
    assert!(parse_str(none, &both).is_err());
    let bad = FakeEnv::with(&[("AISOPOD_SECURITY_MODE", "yolo")]);
    let found = issues("", &bad);
    assert!(found[0].message.contains("AISOPOD_SECURITY_MODE"));
}

#[test]
fn files_mode_needs_both_paths_and_a_private_key_file() {
    let found = issues("[tls]\nmode = \"files\"\n", &FakeEnv::default());
    assert!(found.iter().any(|i| i.key == "tls.cert_file"));
    assert!(found.iter().any(|i| i.key == "tls.key_file"));

    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, "x").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = format!(
        "[tls]\nmode = \"files\"\ncert_file = \"{0}/cert.pem\"\nkey_file = \"{0}/key.pem\"\n",
        dir.path().display()
    );
    let found = issues(&text, &FakeEnv::default());
    assert!(
        found
            .iter()
            .any(|i| i.key == "tls.key_file" && i.message.contains("chmod 600")),
        "{found:#?}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(parse_str(&text, &FakeEnv::default()).is_ok());
}

#[test]
fn ip_networks_parse_and_match() {
    let net = IpNet::parse("10.0.0.0/8").unwrap();
    assert!(net.contains("10.200.3.4".parse().unwrap()));
    assert!(!net.contains("11.0.0.1".parse().unwrap()));
    assert!(net.contains("::ffff:10.1.1.1".parse().unwrap()));
    let one = IpNet::parse("192.168.1.5").unwrap();
    assert!(one.contains("192.168.1.5".parse().unwrap()));
    assert!(!one.contains("192.168.1.6".parse().unwrap()));
    assert!(
        IpNet::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap())
    );
    assert!(
        IpNet::parse("fd00::/8")
            .unwrap()
            .contains("fd12::1".parse().unwrap())
    );
    for bad in ["10.0.0.0/33", "nope", "10.0.0/8", "::1/129", ""] {
        assert!(IpNet::parse(bad).is_err(), "{bad}");
    }
    let found = issues(
        "[rate_limit]\ntrusted_proxies = [\"10.0.0.1\", \"bogus\"]\n",
        &FakeEnv::default(),
    );
    assert_eq!(found[0].key, "rate_limit.trusted_proxies.1");
}

#[test]
fn auth_settings_validate_and_jwt_expiry_env_is_honoured() {
    let env = FakeEnv::with(&[("JWT_TOKEN_EXPIRY", "900")]);
    let config = parse_str("", &env).unwrap();
    assert_eq!(config.auth.access_token_ttl, Duration::from_secs(900));
    let config = parse_str("[auth]\naccess_token_ttl = \"2h\"\n", &env).unwrap();
    assert_eq!(config.auth.access_token_ttl, Duration::from_secs(7200));
    assert_eq!(config.auth.password.argon2_memory_kib, 19 * 1024);
    let found = issues("[auth]\nmode = \"token\"\n", &FakeEnv::default());
    assert!(
        found
            .iter()
            .any(|i| i.key == "auth.token" && i.message.contains("required"))
    );
    let found = issues(
        "[server]\nbind = \"0.0.0.0:1\"\n[security]\nmode = \"local\"\n[auth]\nmode = \"none\"\n",
        &FakeEnv::default(),
    );
    assert!(
        found
            .iter()
            .any(|i| i.key == "auth.mode" && i.message.contains("loopback"))
    );
    assert!(parse_str("[server]\nbind = \"127.0.0.1:1\"\n[security]\nmode = \"local\"\n[auth]\nmode = \"none\"\n", &FakeEnv::default()).is_ok());
    let found = issues(
        "[auth]\nargon2_memory = \"1m\"\npassword_min_length = 4\n",
        &FakeEnv::default(),
    );
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[test]
fn schema_keys_cover_every_table() {
    let keys = schema_keys();
    assert!(keys.contains(&"server.bind".to_string()));
    assert!(keys.contains(&"auth.token".to_string()));
    assert!(keys.contains(&"tls.ca_validity".to_string()));
    assert!(keys.contains(&"tools.sandbox.memory_limit".to_string()));
    assert!(!keys.contains(&"tools.sandbox".to_string()));
}

#[test]
fn sandbox_defaults_match_the_documented_ones() {
    let config = Config::defaults(&FakeEnv::default()).unwrap();
    let sandbox = &config.tools.sandbox;
    assert!(sandbox.enabled);
    assert_eq!(sandbox.runtime, SandboxRuntime::Namespaces);
    assert_eq!(sandbox.limits.timeout, Duration::from_secs(30));
    assert_eq!(sandbox.limits.memory, 256 << 20);
    assert_eq!(sandbox.limits.cpu_millis, 500);
    assert_eq!(sandbox.limits.pids, 64);
    assert!(!sandbox.limits.network);
    assert_eq!(sandbox.allowed_languages.len(), 3);
    assert_eq!(sandbox.limits.max_output, 1 << 20);
    assert_eq!(sandbox.max_concurrent, 2);
}

#[test]
fn agents_default_to_one_with_every_tool_and_are_checked_with_their_keys() {
    let env = FakeEnv::default();
    let config = parse_str("[approval]\ntimeout = \"10s\"\n", &env).unwrap();
    assert_eq!(config.approval.timeout, Duration::from_secs(10));
    assert_eq!(config.agents.len(), 1);
    assert_eq!(config.agents[0].name, DEFAULT_AGENT);
    assert_eq!(config.agents[0].tools.len(), 5);
    assert!(config.agents[0].workspace.ends_with("workspaces/default"));

    let data = "[storage]\ndata_dir = \"/var/lib/aisopod\"\n";
    let found = issues(
        &format!(
            "{data}[approval]\ntimeout = \"0s\"\n\
             [[agents]]\nname = \"Bad Name\"\n\
             [[agents]]\nname = \"ok\"\ntools = [\"shell\", \"rm_rf\"]\n\
             [[agents]]\nname = \"ok\"\n\
             [[agents]]\nname = \"root\"\nworkspace = \"/var\"\n\
             [[agents]]\nname = \"inside\"\nworkspace = \"/var/lib/aisopod/db\"\n\
             [[agents]]\nname = \"relative\"\nworkspace = \"work\"\n\
             [[agents]]\nname = \"typo\"\ntool = []\n"
        ),
        &env,
    );
    let keys: Vec<&str> = found.iter().map(|i| i.key.as_str()).collect();
    for key in [
        "approval.timeout",
        "agents.0.name",
        "agents.1.tools.1",
        "agents.2.name",
        "agents.3.workspace",
        "agents.4.workspace",
        "agents.5.workspace",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    assert!(
        keys.iter()
            .any(|k| k.contains("tool") && k.starts_with("agents.6")),
        "{keys:?}"
    );
    let holds = found
        .iter()
        .find(|i| i.key == "agents.3.workspace")
        .unwrap();
    assert!(
        holds.message.contains("data directory"),
        "{}",
        holds.message
    );
}

#[test]
fn sandbox_settings_are_checked_with_their_keys() {
    let env = FakeEnv::default();
    let found = issues(
        "[tools.sandbox]\nruntime = \"docker\"\ntimeout = \"2h\"\nmemory_limit = \"1m\"\ncpu_limit = \"lots\"\npids_limit = 1\nallowed_languages = [\"python\", \"cobol\"]\nmax_concurrent = 0\ncolour = 1\n",
        &env,
    );
    let keys: Vec<&str> = found.iter().map(|i| i.key.as_str()).collect();
    for key in [
        "tools.sandbox.runtime",
        "tools.sandbox.timeout",
        "tools.sandbox.memory_limit",
        "tools.sandbox.cpu_limit",
        "tools.sandbox.pids_limit",
        "tools.sandbox.allowed_languages.1",
        "tools.sandbox.max_concurrent",
        "tools.sandbox.colour",
    ] {
        assert!(keys.contains(&key), "missing {key} in {found:#?}");
    }
    let runtime = found
        .iter()
        .find(|i| i.key == "tools.sandbox.runtime")
        .unwrap();
    assert!(runtime.message.contains("not supported"), "{runtime}");
    let config = parse_str("[tools.sandbox]\ncpu_limit = 0.25\n", &env).unwrap();
    assert_eq!(config.tools.sandbox.limits.cpu_millis, 250);
    let config = parse_str("[tools.sandbox]\ncpu_limit = \"2\"\n", &env).unwrap();
    assert_eq!(config.tools.sandbox.limits.cpu_millis, 2000);
}

#[test]
fn strict_mode_refuses_an_unisolated_sandbox() {
    let env = FakeEnv::default();
    let found = issues("[tools.sandbox]\nruntime = \"none\"\n", &env);
    assert!(
        found
            .iter()
            .any(|i| i.key == "tools.sandbox.runtime" && i.message.contains("strict"))
    );
    assert!(
        parse_str(
            "[security]\nmode = \"local\"\n[tools.sandbox]\nruntime = \"none\"\n",
            &env
        )
        .is_ok()
    );
    assert!(
        parse_str(
            "[tools.sandbox]\nruntime = \"none\"\nenabled = false\n",
            &env
        )
        .is_ok()
    );
}

/// Checks that `template` with `{}` replaced by each `good` value (written as a TOML
/// string) parses, and that each `bad` one is refused with exactly one issue, under
/// `key`, whose message contains `says`.
fn judge(template: &str, good: &[&str], bad: &[&str], key: &str, says: &str) {
    let issues_under = |value: &str| -> Vec<ConfigIssue> {
        let text = template.replace("{}", &format!("{value:?}"));
        match parse_str(&text, &FakeEnv::default()) {
            Ok(_) => Vec::new(),
            Err(err) => err.issues(),
        }
    };
    for value in good {
        let found = issues_under(value);
        assert!(found.is_empty(), "{value}: {found:#?}");
    }
    for value in bad {
        let found = issues_under(value);
        assert_eq!(found.len(), 1, "{value}: {found:#?}");
        assert_eq!(found[0].key, key, "{value}");
        assert!(found[0].message.contains(says), "{value}: {}", found[0]);
    }
}

#[test]
fn extra_names_are_dns_names_or_ip_addresses_as_certificates_take_them() {
    // The hand-written check judged these the same way, except "10.0.0.300" (a dotted
    // quad out of range ends in a number, so it is no DNS name either; it was taken for
    // one) and "my_pi.local" (it refused the underscore; rustls-pki-types and webpki
    // accept it).
    judge(
        "[tls]\nextra_names = [{}]\n",
        &[
            "pi.local",
            "Pi.Example.COM",
            "x",
            "10.0.0.7",
            "fd00::1",
            "1a.example",
            "my_pi.local",
        ],
        &[
            "10.0.0.300",
            "pi.local.",
            "-pi.local",
            "pi..local",
            "*.local",
            "pi local",
        ],
        "tls.extra_names.0",
        "neither a DNS name nor an IP address",
    );
}

#[test]
fn public_url_is_an_absolute_http_url_of_a_host() {
    // The hand-written check refused the first four bad ones too; it let the rest through.
    judge(
        "[server]\npublic_url = {}\n",
        &[
            "https://aisopod.local:3080",
            "https://aisopod.example.com/",
            "http://127.0.0.1:3080",
            "https://[fd00::1]:8443",
            "https://proxy.example/aisopod",
        ],
        &[
            "aisopod.local",
            "ftp://aisopod.local",
            "HTTPS://aisopod.local",
            "https://aisopod .local",
            "https://",
            "https://owner:secret@aisopod.local",
            "https://aisopod.local:99999",
            "https://aisopod.local:",
            "https://-aisopod.local",
            "https://aisopod.local/?next=1",
            "https://aisopod.local/#top",
            "https://aisopöd.local",
        ],
        "server.public_url",
        "is not an http(s) URL",
    );
}

#[test]
fn cors_origins_are_bare_origins_a_browser_could_send() {
    // The hand-written check refused the first three bad ones too. The rest it let
    // through though no browser sends them, so they never matched an `Origin`: a space
    // in the host, a final slash, a path, a query, a user name, a port out of range, an
    // empty host.
    judge(
        "[server]\nbind = \"127.0.0.1:0\"\n[security]\nmode = \"local\"\ncors_origins = [\"https://ok.example\", {}]\n",
        &[
            "*",
            "https://dash.example",
            "http://localhost:5173",
            "http://192.168.1.20:8080",
            "https://[fd00::1]:8443",
        ],
        &[
            "dash.example",
            "ftp://dash.example",
            "HTTPS://dash.example",
            "https://dash example",
            "https://dash.example/",
            "https://dash.example/app",
            "https://dash.example?x",
            "https://me@dash.example",
            "https://dash.example:70000",
            "https://",
        ],
        "security.cors_origins.1",
        "is not an origin such as",
    );
}

const TWO_PROVIDERS: &str = "[[providers]]\nname = \"ollama\"\nkind = \"openai\"\n\
    base_url = \"http://127.0.0.1:11434/v1/\"\n\
    [[providers]]\nname = \"openai\"\nkind = \"openai\"\nbase_url = \"https://api.openai.com/v1/\"\n";

#[test]
fn agents_name_only_configured_providers_as_their_own_or_a_fallback() {
    let env = FakeEnv::default();
    let found = issues(
        &format!(
            "{TWO_PROVIDERS}[[agents]]\nname = \"a\"\nprovider = \"olama\"\nmodel = \"m\"\n\
             fallbacks = [\"openai/gpt-4o-mini\", \"openrouter/x\"]\n"
        ),
        &env,
    );
    let keys: Vec<&str> = found.iter().map(|issue| issue.key.as_str()).collect();
    assert_eq!(
        keys,
        ["agents.0.provider", "agents.0.fallbacks.1"],
        "{found:#?}"
    );
    assert!(
        found[0]
            .message
            .contains("\"olama\" is not the name of a [[providers]] entry")
    );
}

#[test]
fn agent_fields_are_checked_and_named_with_their_entry() {
    let env = FakeEnv::default();
    let config = parse_str(
        &format!(
            "{TWO_PROVIDERS}[[agents]]\nname = \"helper\"\nprovider = \"ollama\"\n\
             model = \"llama3.1:8b\"\nfallbacks = [\"openai/gpt-4o-mini\"]\n\
             system_prompt = \"Be brief.\"\nmax_tool_iterations = 4\ntemperature = 0.2\n"
        ),
        &env,
    )
    .unwrap();
    let agent = &config.agents[0];
    assert_eq!(agent.model.as_deref(), Some("llama3.1:8b"));
    assert_eq!(agent.fallbacks[0].to_string(), "openai/gpt-4o-mini");
    assert_eq!(agent.max_tool_iterations, 4);
    let found = issues(
        "[[agents]]\nname = \"a\"\nprovider = \"ollama\"\n\
         [[agents]]\nname = \"b\"\nprovider = \"x\"\nmodel = \"m\"\ntemperature = 2.5\n\
         fallbacks = [\"no-slash\"]\nmax_tool_iterations = 0\n\
         [chats]\nmax_page = 0\n",
        &env,
    );
    let keys: Vec<(&str, &str)> = found
        .iter()
        .map(|i| (i.key.as_str(), i.message.as_str()))
        .collect();
    for key in [
        "agents.0.model",
        "agents.1.temperature",
        "agents.1.fallbacks.0",
        "agents.1.max_tool_iterations",
        "chats.max_page",
    ] {
        assert!(
            keys.iter().any(|(k, _)| *k == key),
            "{key} missing from {keys:?}"
        );
    }
    assert!(keys.contains(&("agents.1.temperature", "must be between 0 and 2")));
}

#[test]
fn pairing_without_confirmation_is_refused_in_strict_mode_only() {
    let env = FakeEnv::default();
    let found = issues("[pairing]\nconfirm = false\n", &env);
    assert!(
        found
            .iter()
            .any(|i| i.key == "pairing.confirm" && i.message.contains("strict")),
        "{found:#?}"
    );
    let local = parse_str(
        "[security]\nmode = \"local\"\n[pairing]\nconfirm = false\n",
        &env,
    );
    assert!(local.is_ok_and(|c| !c.pairing.confirm));
    let found = issues("[pairing]\noffer_ttl = \"11m\"\n", &env);
    assert!(
        found.iter().any(|i| i.key == "pairing.offer_ttl"),
        "{found:#?}"
    );
}
