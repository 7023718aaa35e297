//! The shape of an agent: the rules every agent's fields are held to, whether it comes
//! from `[[agents]]` in the config file or from `/api/v1/agents`. Both callers report a
//! broken rule under the field's own name (`temperature`), the config prefixing it with
//! the entry's key (`agents.0.temperature`). This file only checks values; it never
//! looks at which providers are configured (their owner cross-checks names) and never
//! touches the filesystem.

use super::common::{ModelRef, TOOL_NAMES};

/// Default for `max_tool_iterations`.
pub const DEFAULT_TOOL_ITERATIONS: u32 = 10;
/// Highest `max_tool_iterations`.
pub const MAX_TOOL_ITERATIONS: u64 = 100;
/// Longest system prompt, in bytes.
pub const MAX_SYSTEM_PROMPT: usize = 32 * 1024;
/// Longest model name, in bytes.
pub const MAX_MODEL_NAME: usize = 200;

/// The fields of an agent as given, before their checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct AgentFields<'a> {
    pub name: &'a str,
    pub provider: Option<&'a str>,
    pub model: Option<&'a str>,
    pub fallbacks: &'a [String],
    pub system_prompt: Option<&'a str>,
    pub tools: &'a [String],
    pub max_tool_iterations: Option<u64>,
    pub temperature: Option<f64>,
}

/// The checked values of [`AgentFields`] that need parsing.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedAgent {
    pub fallbacks: Vec<ModelRef>,
    pub max_tool_iterations: u32,
}

/// The fields of an agent that name a provider no `[[providers]]` entry has (its own
/// provider, a fallback's), each with its message; both the config file and the API
/// refuse them, so a misspelt name is found when the agent is made, not at its first chat.
pub fn unknown_providers(
    provider: Option<&str>,
    fallbacks: &[ModelRef],
    configured: &[&str],
) -> Vec<(String, String)> {
    let missing = |name: &str| format!("{name:?} is not the name of a [[providers]] entry");
    let own = provider
        .filter(|name| !configured.contains(name))
        .map(|name| ("provider".to_string(), missing(name)));
    let fallbacks = fallbacks
        .iter()
        .enumerate()
        .filter(|(_, fallback)| !configured.contains(&fallback.provider.as_str()))
        .map(|(position, fallback)| (format!("fallbacks.{position}"), missing(&fallback.provider)));
    own.into_iter().chain(fallbacks).collect()
}

/// Agent names: short, and safe as a directory name.
pub fn valid_agent_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphanumeric)
}

/// Provider names: the same alphabet as agent names, up to 64 bytes.
pub fn valid_provider_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphanumeric)
}

/// Model names as upstreams spell them (`gpt-4o-mini`, `llama3.1:8b`,
/// `meta-llama/llama-3-70b`): printable, no spaces.
pub fn valid_model_name(name: &str) -> bool {
    (1..=MAX_MODEL_NAME).contains(&name.len()) && name.chars().all(|c| c.is_ascii_graphic())
}

/// Parses `provider/model`; the model part may itself contain `/`.
pub fn parse_model_ref(text: &str) -> Result<ModelRef, String> {
    match text.split_once('/') {
        Some((provider, model)) if valid_provider_name(provider) && valid_model_name(model) => {
            Ok(ModelRef {
                provider: provider.to_string(),
                model: model.to_string(),
            })
        }
        _ => Err(format!(
            "{:?} is not a provider/model name: use a provider name (a-z 0-9 - _), '/', and the model's name",
            text.chars().take(80).collect::<String>()
        )),
    }
}

/// Checks every field, reporting each broken rule as `(field, message)`; the checked
/// values when nothing was broken.
pub fn check_agent(
    fields: &AgentFields<'_>,
    report: &mut dyn FnMut(String, String),
) -> Option<CheckedAgent> {
    let mut ok = true;
    let mut fail = |field: String, message: String| {
        ok = false;
        report(field, message);
    };
    if !valid_agent_name(fields.name) {
        fail(
            "name".into(),
            format!(
                "{:?} is not a valid agent name: use 1 to 32 lowercase letters, digits, '-' or '_', starting with a letter or digit",
                fields.name.chars().take(40).collect::<String>()
            ),
        );
    }
    match (fields.provider, fields.model) {
        (Some(provider), _) if !valid_provider_name(provider) => fail(
            "provider".into(),
            "must be 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or digit".into(),
        ),
        (Some(_), None) => fail("model".into(), "is required when provider is set".into()),
        (None, Some(_)) => fail("provider".into(), "is required when model is set".into()),
        _ => {}
    }
    if let Some(model) = fields.model
        && !valid_model_name(model)
    {
        fail(
            "model".into(),
            format!("must be 1 to {MAX_MODEL_NAME} printable characters without spaces"),
        );
    }
    let mut fallbacks = Vec::new();
    for (index, text) in fields.fallbacks.iter().enumerate() {
        match parse_model_ref(text) {
            Ok(model) => fallbacks.push(model),
            Err(message) => fail(format!("fallbacks.{index}"), message),
        }
    }
    if !fields.fallbacks.is_empty() && fields.provider.is_none() {
        fail(
            "fallbacks".into(),
            "need provider and model: fallbacks are tried after the agent's own model".into(),
        );
    }
    if let Some(prompt) = fields.system_prompt
        && prompt.len() > MAX_SYSTEM_PROMPT
    {
        fail(
            "system_prompt".into(),
            format!(
                "is {} bytes: must be at most {MAX_SYSTEM_PROMPT}",
                prompt.len()
            ),
        );
    }
    for (index, tool) in fields.tools.iter().enumerate() {
        if !TOOL_NAMES.contains(&tool.as_str()) {
            fail(
                format!("tools.{index}"),
                format!(
                    "unknown tool {:?}: the tools are {}",
                    tool.chars().take(40).collect::<String>(),
                    TOOL_NAMES.join(", ")
                ),
            );
        }
    }
    let iterations = fields
        .max_tool_iterations
        .unwrap_or(u64::from(DEFAULT_TOOL_ITERATIONS));
    if !(1..=MAX_TOOL_ITERATIONS).contains(&iterations) {
        fail(
            "max_tool_iterations".into(),
            format!("{iterations} is out of range: must be between 1 and {MAX_TOOL_ITERATIONS}"),
        );
    }
    if let Some(temperature) = fields.temperature
        && !(temperature.is_finite() && (0.0..=2.0).contains(&temperature))
    {
        fail("temperature".into(), "must be between 0 and 2".into());
    }
    ok.then(|| CheckedAgent {
        fallbacks,
        max_tool_iterations: u32::try_from(iterations).unwrap_or(DEFAULT_TOOL_ITERATIONS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(fields: AgentFields<'_>) -> Vec<(String, String)> {
        let mut found = Vec::new();
        check_agent(&fields, &mut |field, message| found.push((field, message)));
        found
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let fallbacks = vec!["openai/gpt-4o".to_string(), "nope".to_string()];
        let tools = vec!["shell".to_string(), "rm".to_string()];
        let found = problems(AgentFields {
            name: "Bad Name",
            provider: Some("openai"),
            model: Some("gpt 4"),
            fallbacks: &fallbacks,
            system_prompt: Some(&"x".repeat(MAX_SYSTEM_PROMPT + 1)),
            tools: &tools,
            max_tool_iterations: Some(0),
            temperature: Some(2.5),
        });
        let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "model",
                "fallbacks.1",
                "system_prompt",
                "tools.1",
                "max_tool_iterations",
                "temperature"
            ]
        );
        assert!(found.iter().any(|(_, m)| m == "must be between 0 and 2"));
    }

    #[test]
    fn a_sound_agent_passes_and_fallbacks_keep_slashes_in_model_names() {
        let fallbacks = vec!["openrouter/meta-llama/llama-3-70b".to_string()];
        let checked = check_agent(
            &AgentFields {
                name: "helper",
                provider: Some("ollama"),
                model: Some("llama3.1:8b"),
                fallbacks: &fallbacks,
                temperature: Some(0.0),
                ..AgentFields::default()
            },
            &mut |field, message| panic!("{field}: {message}"),
        )
        .unwrap();
        assert_eq!(checked.max_tool_iterations, DEFAULT_TOOL_ITERATIONS);
        assert_eq!(checked.fallbacks[0].provider, "openrouter");
        assert_eq!(checked.fallbacks[0].model, "meta-llama/llama-3-70b");
        assert!(
            problems(AgentFields {
                name: "x",
                temperature: Some(f64::NAN),
                ..AgentFields::default()
            })
            .iter()
            .any(|(f, _)| f == "temperature")
        );
    }
}
