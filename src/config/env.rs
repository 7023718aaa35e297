//! What the process environment contributes: variables, whether the binary is installed,
//! and `${VAR}` expansion in string values. It never reads the config file itself.

use super::issue::ConfigIssue;

/// What the process environment contributes to the configuration.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
    /// True when the binary runs from a system location (`/usr/...`) rather than a
    /// checkout, which decides the default data directory.
    fn installed(&self) -> bool;
}

/// An installed appliance with nothing set in its environment: the defaults exactly as
/// a flashed device gets them, for judging them in tests, benchmarks and fuzzing.
#[derive(Debug, Default, Clone, Copy)]
pub struct ApplianceEnvironment;

impl Environment for ApplianceEnvironment {
    fn var(&self, _: &str) -> Option<String> {
        None
    }

    fn installed(&self) -> bool {
        true
    }
}

/// The real process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn installed(&self) -> bool {
        std::env::current_exe()
            .map(|exe| exe.starts_with("/usr/"))
            .unwrap_or(false)
    }
}

/// Replaces `${NAME}` in every string value with the environment variable's value.
/// `$${` stands for a literal `${`.
pub(super) fn expand_env(
    value: &mut toml::Value,
    path: &mut Vec<String>,
    env: &dyn Environment,
    issues: &mut Vec<ConfigIssue>,
) {
    match value {
        toml::Value::String(text) if text.contains('$') => match expand_str(text, env) {
            Ok(expanded) => *text = expanded,
            Err(message) => issues.push(ConfigIssue {
                key: path.join("."),
                message,
            }),
        },
        toml::Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                path.push(index.to_string());
                expand_env(item, path, env, issues);
                path.pop();
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                path.push(key.clone());
                expand_env(item, path, env, issues);
                path.pop();
            }
        }
        _ => {}
    }
}

pub(super) fn expand_str(text: &str, env: &dyn Environment) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        let (before, from_dollar) = rest.split_at(start);
        out.push_str(before);
        if let Some(after) = from_dollar.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = from_dollar.strip_prefix("${") {
            let end = after.find('}').ok_or_else(|| {
                "unterminated ${...}: write ${NAME}, or $${ for a literal ${".to_string()
            })?;
            let (name, tail) = after.split_at(end);
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(format!("invalid variable name {name:?} in ${{...}}"));
            }
            let value = env
                .var(name)
                .ok_or_else(|| format!("environment variable {name} is not set"))?;
            out.push_str(&value);
            rest = tail.get(1..).unwrap_or("");
        } else {
            out.push('$');
            rest = from_dollar.get(1..).unwrap_or("");
        }
    }
    out.push_str(rest);
    Ok(out)
}
