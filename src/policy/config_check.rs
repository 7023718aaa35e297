//! The command filter's checks of `[tools.shell]`, every mistake at once and each with
//! its key, for `validate-config` and start-up (handed to `config::load_checked`). The
//! filter's builder refuses the same mistakes, one at a time. This module builds nothing.

use super::{Glob, check_program_name, check_rule_id, normalize_host_pattern};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigError, ConfigSource, ProcessEnvironment};
    use crate::policy::{CommandFilter, FilterContext};

    const BAD_SHELL: &str = r#"
[tools.shell]
allowed_programs = ["git", "/bin/ls"]
allowed_hosts = ["example.org", "https://evil.example/x"]

[[tools.shell.rules]]
id = "ok-rule"
action = "allow"
program = "/usr/bin/make"

[[tools.shell.rules]]
id = "ok-rule"
action = "deny"
program = "rm"

[[tools.shell.rules]]
id = "bad id"
action = "approve"
program = "two words"
args = "x\\"
"#;

    fn keys(err: &ConfigError) -> Vec<String> {
        err.issues().into_iter().map(|issue| issue.key).collect()
    }

    #[test]
    fn every_shell_mistake_is_reported_with_its_key_in_one_run() {
        let err = crate::config::parse_checked(
            &format!("[server]\nmax_body = 1\n{BAD_SHELL}"),
            ConfigSource::Defaults,
            &ProcessEnvironment,
            &[&shell_config_issues],
        )
        .unwrap_err();
        assert_eq!(
            keys(&err),
            [
                "server.max_body",
                "tools.shell.allowed_programs.1",
                "tools.shell.allowed_hosts.1",
                "tools.shell.rules.1 (id \"ok-rule\").id",
                "tools.shell.rules.2 (id \"bad id\").id",
                "tools.shell.rules.2 (id \"bad id\").program",
                "tools.shell.rules.2 (id \"bad id\").args",
            ]
        );
        let text = err.to_string();
        assert!(
            text.contains("\"/bin/ls\" is not a bare program name"),
            "{text}"
        );
        assert!(text.contains("duplicate rule id \"ok-rule\""), "{text}");
    }

    #[test]
    fn without_the_owner_check_the_filter_still_refuses_when_built() {
        let config =
            crate::config::parse(BAD_SHELL, ConfigSource::Defaults, &ProcessEnvironment).unwrap();
        let context = FilterContext::for_config(&config, None);
        let err = CommandFilter::from_config(&config.tools.shell, context).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tools.shell.allowed_programs.1: \"/bin/ls\" is not a bare program name such as \"git\" (no paths or spaces)"
        );
    }

    #[test]
    fn a_valid_shell_table_passes_both() {
        let text = "[tools.shell]\nallowed_hosts = [\"*.Example.org.\"]\n";
        let config = crate::config::parse_checked(
            text,
            ConfigSource::Defaults,
            &ProcessEnvironment,
            &[&shell_config_issues],
        )
        .unwrap();
        let context = FilterContext::for_config(&config, None);
        assert!(CommandFilter::from_config(&config.tools.shell, context).is_ok());
    }
}
