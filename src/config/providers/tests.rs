//! `[[providers]]` through the whole parse: fields, named errors, strict mode.

use super::super::{ApplianceEnvironment, Config, ConfigError, ConfigSource, Environment, parse};
use super::*;

struct Env(&'static str, &'static str);

impl Environment for Env {
    fn var(&self, name: &str) -> Option<String> {
        (name == self.0).then(|| self.1.to_string())
    }
    fn installed(&self) -> bool {
        false
    }
}

fn load(text: &str, env: &dyn Environment) -> Result<Config, Vec<ConfigIssue>> {
    parse(text, ConfigSource::File("test.toml".into()), env).map_err(|err| match err {
        ConfigError::Invalid { issues, .. } => issues,
        other => panic!("{other}"),
    })
}

const LOCAL: &str = "[security]\nmode = \"local\"\n";

#[test]
fn providers_parse_with_keys_from_the_environment() {
    let text = r#"
[[providers]]
name = "ollama"
kind = "openai"
base_url = "http://127.0.0.1:11434/v1/"
models = ["llama3"]

[[providers]]
name = "claude"
kind = "anthropic"
base_url = "https://api.anthropic.com"
api_key = "${ANTHROPIC_KEY}"
read_timeout = "30s"
retries = 0
"#;
    let config = load(text, &Env("ANTHROPIC_KEY", "sk-ant-123")).unwrap();
    let [ollama, claude] = &config.providers[..] else {
        panic!("{:?}", config.providers)
    };
    assert_eq!(ollama.base_url, "http://127.0.0.1:11434/v1");
    assert_eq!(ollama.kind, ProviderKindName::OpenAi);
    assert!(ollama.api_key.is_none());
    assert_eq!(ollama.models, ["llama3"]);
    assert_eq!(
        claude.api_key.as_ref().map(|k| k.expose()),
        Some("sk-ant-123")
    );
    assert_eq!(claude.read_timeout, Duration::from_secs(30));
    assert_eq!(claude.retries, 0);
    assert!(
        load("", &ApplianceEnvironment)
            .unwrap()
            .providers
            .is_empty()
    );
}

#[test]
fn each_bad_field_is_named() {
    let text = format!(
        r#"{LOCAL}
[[providers]]
name = "ok"
kind = "openai"
base_url = "https://example.com/v1"

[[providers]]
name = "Bad Name"
kind = "gemini"
base_url = "ftp://example.com"
retries = 99
connect_timeout = "0s"
models = [""]
extra_roots = ["ca.pem"]

[[providers]]
name = "ok"
kind = "openai"
base_url = "https://user@example.com"
"#
    );
    let issues = load(&text, &ApplianceEnvironment).unwrap_err();
    let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
    for key in [
        "providers.1.name",
        "providers.1.kind",
        "providers.1.base_url",
        "providers.1.retries",
        "providers.1.connect_timeout",
        "providers.1.models.0",
        "providers.1.extra_roots.0",
        "providers.2.name",
        "providers.2.base_url",
    ] {
        assert!(keys.contains(&key), "{key} missing from {issues:?}");
    }
    assert!(
        !keys.iter().any(|k| k.starts_with("providers.0")),
        "{issues:?}"
    );
    let unknown = load(
        "[[providers]]\nname = \"a\"\nkind = \"openai\"\nbase_url = \"http://a\"\ntoken = \"x\"\n",
        &ApplianceEnvironment,
    )
    .unwrap_err();
    assert_eq!(unknown[0].key, "providers.0.token");
}

#[test]
fn strict_mode_refuses_a_key_written_in_the_file_and_never_shows_it() {
    let text = "[[providers]]\nname = \"openai\"\nkind = \"openai\"\nbase_url = \"https://api.openai.com/v1\"\napi_key = \"sk-literal-0042\"\n";
    let issues = load(text, &ApplianceEnvironment).unwrap_err();
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].key, "providers.0.api_key");
    assert!(issues[0].message.contains("${VARIABLE}"));
    let shown = format!("{issues:?}");
    assert!(!shown.contains("sk-literal-0042"), "{shown}");
    // The same file in local mode is accepted, and `${VAR}` in strict mode too.
    assert!(load(&format!("{LOCAL}{text}"), &ApplianceEnvironment).is_ok());
    let from_env = text.replace("sk-literal-0042", "${OPENAI_KEY}");
    let config = load(&from_env, &Env("OPENAI_KEY", "sk-env")).unwrap();
    assert!(!format!("{config:?}").contains("sk-env"));
}

#[test]
fn fallbacks_parse_per_model_and_each_bad_one_is_named() {
    let text = format!(
        r#"{LOCAL}
[[providers]]
name = "ollama"
kind = "openai"
base_url = "http://127.0.0.1:11434/v1"
models = ["llama3", "qwen"]
fallbacks = {{ "llama3" = ["openai/gpt-4o-mini", "ollama/qwen"] }}

[[providers]]
name = "openai"
kind = "openai"
base_url = "https://api.openai.com/v1"
"#
    );
    let config = load(&text, &ApplianceEnvironment).unwrap();
    let chain: Vec<String> = config.providers[0].fallbacks["llama3"]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(chain, ["openai/gpt-4o-mini", "ollama/qwen"]);
    assert!(config.providers[1].fallbacks.is_empty());

    let bad = format!(
        r#"{LOCAL}
[[providers]]
name = "ollama"
kind = "openai"
base_url = "http://127.0.0.1:11434/v1"
models = ["llama3", "qwen"]
fallbacks = {{ "llama3" = ["nowhere/x", "ollama/mistral", "no-slash", "ollama/llama3"], "gemma" = ["ollama/qwen"], "qwen" = [] }}
"#
    );
    let issues = load(&bad, &ApplianceEnvironment).unwrap_err();
    let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "providers.0.fallbacks.gemma",
            "providers.0.fallbacks.llama3.2",
            "providers.0.fallbacks.qwen"
        ],
        "{issues:?}"
    );
    // Once the syntax is right, the targets are checked: a provider that is not
    // configured, a model the provider does not list, and a model as its own fallback.
    let targets = bad
        .replace("\"no-slash\", ", "")
        .replace(", \"gemma\" = [\"ollama/qwen\"], \"qwen\" = []", "");
    let issues = load(&targets, &ApplianceEnvironment).unwrap_err();
    let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "providers.0.fallbacks.llama3.0",
            "providers.0.fallbacks.llama3.1",
            "providers.0.fallbacks.llama3.2"
        ],
        "{issues:?}"
    );
    assert!(issues[0].message.contains("\"nowhere\""), "{issues:?}");
    assert!(issues[1].message.contains("\"mistral\""), "{issues:?}");
    assert!(issues[2].message.contains("own fallback"), "{issues:?}");
}
