//! The command filter's checks of `[tools.shell]`, every mistake at once and each with
//! its key, for `validate-config` and start-up (handed to `config::load_checked`). The
//! filter's builder refuses the same mistakes, one at a time. This module builds nothing.

use super::pattern::Glob;
use crate::config::{Config, ConfigIssue, shell_rule_key};

/// What the filter would refuse in `[tools.shell]`.
pub fn shell_config_issues(config: &Config) -> Vec<ConfigIssue> {
    let shell = &config.tools.shell;
    let mut issues = Vec::new();
    let mut push = |key: String, message: String| issues.push(ConfigIssue { key, message });
    for (index, program) in shell.allowed_programs.iter().enumerate() {
        if let Err(message) = check_program_name(program) {
            push(format!("tools.shell.allowed_programs.{index}"), message);
        }
    }
    for (index, host) in shell.allowed_hosts.iter().enumerate() {
        if let Err(message) = normalize_host_pattern(host) {
            push(format!("tools.shell.allowed_hosts.{index}"), message);
        }
    }
    let mut accepted: Vec<&str> = Vec::new();
    for (index, rule) in shell.rules.iter().enumerate() {
        let name = shell_rule_key(index, &rule.id);
        let mut ok = true;
        let mut bad = |field: &str, message: String| {
            push(format!("{name}.{field}"), message);
            ok = false;
        };
        if let Err(message) = check_rule_id(&rule.id) {
            bad("id", message);
        } else if accepted.contains(&rule.id.as_str()) {
            bad("id", format!("duplicate rule id {:?}", rule.id));
        }
        let absolute = rule.program.starts_with('/') && !rule.program.contains(char::is_whitespace);
        if let Err(message) = check_program_name(&rule.program)
            && !absolute
        {
            bad("program", message);
        }
        if let Some(args) = &rule.args
            && let Err(message) = Glob::parse(args)
        {
            bad("args", message);
        }
        if ok {
            accepted.push(&rule.id);
        }
    }
    issues
}

/// Checks a program name for `allowed_programs` and rules: a bare name, no path.
pub fn check_program_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 128 {
        return Err(format!("{name:?} is not a program name"));
    }
    if name.contains('/') || name.contains(char::is_whitespace) {
        return Err(format!(
            "{name:?} is not a bare program name such as \"git\" (no paths or spaces)"
        ));
    }
    Ok(())
}

/// Checks a rule id: letters, digits, `.`, `_`, `-`.
pub fn check_rule_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("every rule needs an id, such as \"git-status\"".into());
    }
    if id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "{id:?} is not a rule id: use up to 64 letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(())
}

/// Normalizes an `allowed_hosts` entry: a host name, an IP address, or `*.domain`.
pub fn normalize_host_pattern(text: &str) -> Result<String, String> {
    let lower = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let name = lower.strip_prefix("*.").unwrap_or(&lower);
    let ip = name.trim_start_matches('[').trim_end_matches(']');
    if ip.parse::<std::net::IpAddr>().is_ok() && !lower.starts_with("*.") {
        return Ok(ip.to_string());
    }
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid {
        Ok(lower)
    } else {
        Err(format!(
            "{text:?} is not a host name, an IP address or *.domain (no schemes, ports or paths)"
        ))
    }
}
