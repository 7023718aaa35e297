//! `[[providers]]`: the LLM upstreams the gateway may call, each with its name, kind,
//! base URL, key, timeouts, retries and models. Validation names the bad field
//! (`providers.1.base_url`); strict mode refuses a key written into the file rather than
//! taken from the environment with `${VAR}`. A provider's `fallbacks` name, per model, the
//! `provider/model`s to try in order when that model fails before answering; each must
//! name a configured provider. It never contacts an upstream.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::agents::parse_model_ref;
use super::common::ModelRef;
use super::issue::ConfigIssue;
use super::units::Seconds;
use crate::secret::Secret;

/// One `[[providers]]` table as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawProvider {
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) base_url: String,
    #[serde(serialize_with = "redacted")]
    pub(crate) api_key: Option<Secret>,
    pub(crate) connect_timeout: Seconds,
    pub(crate) read_timeout: Seconds,
    pub(crate) retries: u64,
    pub(crate) models: Vec<String>,
    /// `{ "model" = ["other/model", ...] }`
    pub(crate) fallbacks: BTreeMap<String, Vec<String>>,
    pub(crate) extra_roots: Vec<PathBuf>,
}

impl Default for RawProvider {
    fn default() -> Self {
        Self {
            name: String::new(),
            kind: String::new(),
            base_url: String::new(),
            api_key: None,
            connect_timeout: Seconds(Duration::from_secs(10)),
            read_timeout: Seconds(Duration::from_secs(120)),
            retries: 2,
            models: Vec::new(),
            fallbacks: BTreeMap::new(),
            extra_roots: Vec::new(),
        }
    }
}

/// Which protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKindName {
    /// OpenAI's chat completions (OpenAI, Ollama, llama.cpp, vLLM, LM Studio, OpenRouter).
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
}

/// A validated `[[providers]]` entry.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKindName,
    /// Without a trailing `/`.
    pub base_url: String,
    /// `None` when the upstream needs none (a local Ollama) or the key is set through
    /// the API and kept sealed in the store.
    pub api_key: Option<Secret>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub retries: u32,
    /// The models `name/model` may name; empty allows any.
    pub models: Vec<String>,
    /// Per model of this provider, the `provider/model`s tried in order when it fails
    /// with 429, 5xx, a timeout or a dropped connection before any output.
    pub fallbacks: BTreeMap<String, Vec<ModelRef>>,
    /// PEM files of CAs to trust for this upstream besides the system's roots.
    pub extra_roots: Vec<PathBuf>,
}

pub(crate) fn validate_providers(
    raw: Vec<RawProvider>,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<ProviderConfig> {
    let mut check = Check(issues);
    let mut providers: Vec<ProviderConfig> = Vec::new();
    for (index, provider) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("providers.{index}.{field}");
        let mut valid = true;
        if !valid_name(&provider.name) {
            check.push(
                &key("name"),
                format!(
                    "{:?} is not a valid provider name: use 1 to 32 lowercase letters, digits, '-' or '_', starting with a letter or digit",
                    provider.name
                ),
            );
            valid = false;
        } else if providers.iter().any(|p| p.name == provider.name) {
            check.push(
                &key("name"),
                format!("provider {:?} is defined twice", provider.name),
            );
            valid = false;
        }
        let kind = match provider.kind.as_str() {
            "openai" => Some(ProviderKindName::OpenAi),
            "anthropic" => Some(ProviderKindName::Anthropic),
            other => {
                check.push(
                    &key("kind"),
                    format!("{other:?} is not a provider kind: use \"openai\" or \"anthropic\""),
                );
                None
            }
        };
        let base_url = provider.base_url.trim_end_matches('/').to_string();
        if !valid_base_url(&base_url) {
            check.push(
                &key("base_url"),
                format!(
                    "{:?} is not an http(s) URL such as https://api.openai.com/v1 or http://127.0.0.1:11434/v1",
                    provider.base_url
                ),
            );
            valid = false;
        }
        if let Some(api_key) = &provider.api_key
            && (api_key.is_empty() || api_key.expose().chars().any(|c| c.is_control() || c == ' '))
        {
            check.push(
                &key("api_key"),
                "is empty or holds spaces or control characters (is the variable set right?)",
            );
            valid = false;
        }
        let connect_timeout = check.duration(
            &key("connect_timeout"),
            provider.connect_timeout.0,
            Duration::from_secs(1),
            Duration::from_secs(120),
        );
        let read_timeout = check.duration(
            &key("read_timeout"),
            provider.read_timeout.0,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        );
        let retries = check.range(&key("retries"), provider.retries, 0, 10) as u32;
        for (m, model) in provider.models.iter().enumerate() {
            if model.is_empty() || model.chars().any(|c| c.is_control() || c.is_whitespace()) {
                check.push(
                    &format!("providers.{index}.models.{m}"),
                    format!("{model:?} is not a model name"),
                );
            }
        }
        let fallbacks = check.fallbacks(index, &provider.models, &provider.fallbacks);
        for (r, path) in provider.extra_roots.iter().enumerate() {
            if !path.is_absolute() {
                check.push(
                    &format!("providers.{index}.extra_roots.{r}"),
                    format!("{} is not an absolute path to a PEM file", path.display()),
                );
                valid = false;
            }
        }
        if let (true, Some(kind)) = (valid, kind) {
            providers.push(ProviderConfig {
                name: provider.name,
                kind,
                base_url,
                api_key: provider.api_key,
                connect_timeout,
                read_timeout,
                retries,
                models: provider.models,
                fallbacks,
                extra_roots: provider.extra_roots,
            });
        }
    }
    check_fallback_targets(&providers, issues);
    providers
}

/// Every fallback names a configured provider, and a model that provider offers.
fn check_fallback_targets(providers: &[ProviderConfig], issues: &mut Vec<ConfigIssue>) {
    let mut check = Check(issues);
    for (index, provider) in providers.iter().enumerate() {
        for (model, chain) in &provider.fallbacks {
            for (position, fallback) in chain.iter().enumerate() {
                let key = format!("providers.{index}.fallbacks.{model}.{position}");
                match providers.iter().find(|p| p.name == fallback.provider) {
                    None => check.push(
                        &key,
                        format!(
                            "{:?} is not the name of a [[providers]] entry",
                            fallback.provider
                        ),
                    ),
                    Some(target)
                        if !target.models.is_empty()
                            && !target.models.contains(&fallback.model) =>
                    {
                        check.push(
                            &key,
                            format!(
                                "provider {:?} does not list model {:?} in its models",
                                target.name, fallback.model
                            ),
                        );
                    }
                    Some(_) if fallback.provider == provider.name && &fallback.model == model => {
                        check.push(&key, "a model cannot be its own fallback");
                    }
                    Some(_) => {}
                }
            }
        }
    }
}

/// The most fallbacks one model may name.
pub const MAX_FALLBACKS: usize = 8;

/// The `providers.N.api_key` keys whose value is written in the file itself rather than
/// taken from `${VAR}`; read from the file's text before expansion.
pub(crate) fn literal_keys(value: &toml::Value) -> Vec<String> {
    let Some(toml::Value::Array(providers)) = value.get("providers") else {
        return Vec::new();
    };
    providers
        .iter()
        .enumerate()
        .filter_map(|(index, provider)| match provider.get("api_key") {
            Some(toml::Value::String(text)) if !text.contains("${") => {
                Some(format!("providers.{index}.api_key"))
            }
            _ => None,
        })
        .collect()
}

/// Strict mode's refusal of a key written into the file.
pub(crate) fn literal_key_issue(key: String) -> ConfigIssue {
    ConfigIssue {
        key,
        message: "strict mode refuses an API key written into the config file: write api_key = \"${VARIABLE}\" and set the variable, or set the key with PUT /api/v1/providers/{name} (or set [security] mode = \"local\")".into(),
    }
}

fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
}

fn valid_base_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty()
                && !host.contains('@')
                && !url.contains(char::is_whitespace)
                && !url.contains(['?', '#'])
        }
        None => false,
    }
}

/// Records issues with their keys; the table's own copy of validate's helper, so this
/// file depends on nothing of config's but its leaf types.
struct Check<'a>(&'a mut Vec<ConfigIssue>);

impl Check<'_> {
    fn push(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(ConfigIssue {
            key: key.into(),
            message: message.into(),
        });
    }

    fn range(&mut self, key: &str, value: u64, min: u64, max: u64) -> u64 {
        if value < min || value > max {
            self.push(
                key,
                format!("{value} is out of range: must be between {min} and {max}"),
            );
        }
        value.clamp(min, max)
    }

    /// `providers.N.fallbacks`: each key a model this provider offers, each value a list
    /// of `provider/model` names (whether those providers exist is checked once all are
    /// known).
    fn fallbacks(
        &mut self,
        index: usize,
        models: &[String],
        raw: &BTreeMap<String, Vec<String>>,
    ) -> BTreeMap<String, Vec<ModelRef>> {
        let mut fallbacks = BTreeMap::new();
        for (model, chain) in raw {
            let key = format!("providers.{index}.fallbacks.{model}");
            if model.is_empty() || model.chars().any(|c| c.is_control() || c.is_whitespace()) {
                self.push(&key, format!("{model:?} is not a model name"));
                continue;
            }
            if !models.is_empty() && !models.contains(model) {
                self.push(
                    &key,
                    format!("{model:?} is not one of this provider's models"),
                );
                continue;
            }
            if chain.is_empty() || chain.len() > MAX_FALLBACKS {
                self.push(
                    &key,
                    format!("name between 1 and {MAX_FALLBACKS} fallbacks, as \"provider/model\""),
                );
                continue;
            }
            let mut parsed = Vec::with_capacity(chain.len());
            for (position, text) in chain.iter().enumerate() {
                match parse_model_ref(text) {
                    Ok(model) => parsed.push(model),
                    Err(message) => self.push(&format!("{key}.{position}"), message),
                }
            }
            if parsed.len() == chain.len() {
                fallbacks.insert(model.clone(), parsed);
            }
        }
        fallbacks
    }

    fn duration(&mut self, key: &str, value: Duration, min: Duration, max: Duration) -> Duration {
        if value < min || value > max {
            self.push(
                key,
                format!(
                    "{} is out of range: must be between {} and {}",
                    humantime::format_duration(value),
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ),
            );
        }
        value.clamp(min, max)
    }
}

fn redacted<S: serde::Serializer>(value: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_some("***"),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests;
