//! `[tools]` and `[[agents]]`: the sandbox's limits, the shell's policy and rules, file
//! limits, and the agents that tools act for.

use std::path::Path;

use super::issues::{Issues, MIB};
use crate::config::agents::{
    AgentFields, CheckedAgent, DEFAULT_TOOL_ITERATIONS, check_agent, valid_agent_name,
};
use crate::config::common::*;
use crate::config::raw::*;
use crate::config::sandbox::{Language, Limits, Preference, ranges};
use crate::config::settings::*;

/// `[tools]`: the sandbox, the file tools' limits and the shell.
pub(super) fn validate_tools(
    raw: RawTools,
    mode: SecurityMode,
    check: &mut Issues<'_>,
) -> ToolsConfig {
    ToolsConfig {
        sandbox: validate_sandbox(raw.sandbox, check),
        files: FilesConfig {
            max_read: check.range("tools.files.max_read", raw.files.max_read.0, 1, 64 * MIB),
            max_write: check.range("tools.files.max_write", raw.files.max_write.0, 1, 64 * MIB),
            max_entries: check.range("tools.files.max_entries", raw.files.max_entries, 1, 100_000)
                as usize,
        },
        shell: validate_shell(raw.shell, mode, check),
    }
}

pub(super) fn validate_agents(
    raw: Vec<RawAgent>,
    data_dir: &Path,
    check: &mut Issues<'_>,
) -> Vec<AgentConfig> {
    let workspace = |name: &str| data_dir.join("workspaces").join(name);
    let all_tools = || TOOL_NAMES.iter().map(|t| t.to_string()).collect();
    if raw.is_empty() {
        return vec![AgentConfig {
            name: DEFAULT_AGENT.into(),
            tools: all_tools(),
            workspace: workspace(DEFAULT_AGENT),
            provider: None,
            model: None,
            fallbacks: Vec::new(),
            system_prompt: None,
            max_tool_iterations: DEFAULT_TOOL_ITERATIONS,
            temperature: None,
        }];
    }
    let mut agents: Vec<AgentConfig> = Vec::new();
    for (index, agent) in raw.into_iter().enumerate() {
        let key = format!("agents.{index}");
        if !valid_agent_name(&agent.name) {
            check.push(
                &format!("{key}.name"),
                format!(
                    "{:?} is not a valid agent name: use 1 to 32 lowercase letters, digits, '-' or '_', starting with a letter or digit",
                    agent.name
                ),
            );
            continue;
        }
        if agents.iter().any(|a| a.name == agent.name) {
            check.push(
                &format!("{key}.name"),
                format!("agent {:?} is defined twice", agent.name),
            );
            continue;
        }
        let tools = agent.tools.unwrap_or_else(all_tools);
        let checked = check_agent(
            &AgentFields {
                name: &agent.name,
                provider: agent.provider.as_deref(),
                model: agent.model.as_deref(),
                fallbacks: &agent.fallbacks,
                system_prompt: agent.system_prompt.as_deref(),
                tools: &tools,
                max_tool_iterations: agent.max_tool_iterations,
                temperature: agent.temperature,
            },
            &mut |field, message| check.push(&format!("{key}.{field}"), message),
        );
        let workspace = match agent.workspace {
            Some(path) if path.is_absolute() && data_dir.starts_with(&path) => {
                check.push(
                    &format!("{key}.workspace"),
                    format!(
                        "{} holds the gateway's data directory {} (its store and master key): give the agent a directory of its own",
                        path.display(),
                        data_dir.display()
                    ),
                );
                continue;
            }
            Some(path)
                if path.starts_with(data_dir) && !path.starts_with(data_dir.join("workspaces")) =>
            {
                check.push(
                    &format!("{key}.workspace"),
                    format!(
                        "{} is inside the gateway's data directory: use a directory under {} or outside it",
                        path.display(),
                        data_dir.join("workspaces").display()
                    ),
                );
                continue;
            }
            Some(path) if path.is_absolute() => path,
            Some(path) => {
                check.push(
                    &format!("{key}.workspace"),
                    format!("{} is not an absolute path", path.display()),
                );
                continue;
            }
            None => workspace(&agent.name),
        };
        // Kept even when broken (the issues already fail the run), so a later entry
        // with the same name is still reported as a duplicate.
        let checked = checked.unwrap_or(CheckedAgent {
            fallbacks: Vec::new(),
            max_tool_iterations: DEFAULT_TOOL_ITERATIONS,
        });
        agents.push(AgentConfig {
            name: agent.name,
            tools,
            workspace,
            provider: agent.provider,
            model: agent.model,
            fallbacks: checked.fallbacks,
            system_prompt: agent.system_prompt,
            max_tool_iterations: checked.max_tool_iterations,
            temperature: agent.temperature,
        });
    }
    agents
}

pub(super) fn validate_sandbox(raw: RawSandbox, check: &mut Issues<'_>) -> SandboxConfig {
    let runtime = match raw.runtime.trim().to_ascii_lowercase().as_str() {
        "namespaces" => SandboxRuntime::Namespaces,
        "none" => SandboxRuntime::None,
        "docker" | "wasm" => {
            check.push(
                "tools.sandbox.runtime",
                format!(
                    "{:?} is not supported: aisopod isolates tools with the kernel's own namespaces, cgroups, seccomp and Landlock (Docker needs a root daemon and is heavy on a Raspberry Pi; WebAssembly cannot run the Python, Node and Bash programs agents write); use \"namespaces\"",
                    raw.runtime
                ),
            );
            SandboxRuntime::Namespaces
        }
        _ => {
            check.push(
                "tools.sandbox.runtime",
                format!("unknown runtime {:?}: use \"namespaces\" (or \"none\" for development, without isolation)", raw.runtime),
            );
            SandboxRuntime::Namespaces
        }
    };
    let mut allowed_languages = Vec::new();
    for (index, name) in raw.allowed_languages.iter().enumerate() {
        match Language::from_name(name) {
            Some(language) if !allowed_languages.contains(&language) => {
                allowed_languages.push(language)
            }
            Some(_) => {}
            None => check.push(
                &format!("tools.sandbox.allowed_languages.{index}"),
                format!("unknown language {name:?}: use \"python\", \"javascript\" or \"bash\""),
            ),
        }
    }
    if raw.enabled && raw.allowed_languages.is_empty() {
        check.push(
            "tools.sandbox.allowed_languages",
            "is empty while the sandbox is enabled: list languages or set enabled = false",
        );
    }
    let cgroup = match raw.cgroup.trim().to_ascii_lowercase().as_str() {
        "auto" => Preference::Auto,
        "v1" => Preference::V1,
        "v2" => Preference::V2,
        _ => {
            check.push(
                "tools.sandbox.cgroup",
                format!(
                    "unknown cgroup interface {:?}: use \"auto\", \"v1\" or \"v2\"",
                    raw.cgroup
                ),
            );
            Preference::Auto
        }
    };
    let cpu = raw.cpu_limit.0;
    let (cpu_min, cpu_max) = ranges::CPU_MILLIS;
    let cpu_millis =
        if cpu.is_finite() && (f64::from(cpu_min)..=f64::from(cpu_max)).contains(&(cpu * 1000.0)) {
            (cpu * 1000.0).round() as u32
        } else {
            check.push(
                "tools.sandbox.cpu_limit",
                format!(
                    "{cpu} is out of range: must be between {} and {} (a fraction of one CPU)",
                    f64::from(cpu_min) / 1000.0,
                    f64::from(cpu_max) / 1000.0
                ),
            );
            500
        };
    let max_output = check.range(
        "tools.sandbox.max_output",
        raw.max_output.0,
        ranges::MAX_OUTPUT.0,
        ranges::MAX_OUTPUT.1,
    );
    let limits = Limits {
        timeout: check.duration(
            "tools.sandbox.timeout",
            raw.timeout.0,
            ranges::TIMEOUT.0,
            ranges::TIMEOUT.1,
        ),
        memory: check.range(
            "tools.sandbox.memory_limit",
            raw.memory_limit.0,
            ranges::MEMORY.0,
            ranges::MEMORY.1,
        ),
        cpu_millis,
        pids: check.range(
            "tools.sandbox.pids_limit",
            raw.pids_limit,
            ranges::PIDS.0,
            ranges::PIDS.1,
        ),
        max_output,
        tmp_size: check.range(
            "tools.sandbox.tmp_size",
            raw.tmp_size.0,
            ranges::TMP_SIZE.0,
            ranges::TMP_SIZE.1,
        ),
        max_files: check.range(
            "tools.sandbox.max_files",
            raw.max_files,
            ranges::MAX_FILES.0,
            ranges::MAX_FILES.1,
        ) as usize,
        max_file_size: max_output,
        network: raw.network,
    };
    SandboxConfig {
        enabled: raw.enabled,
        runtime,
        limits,
        allowed_languages,
        max_code: check.range(
            "tools.sandbox.max_code",
            raw.max_code.0,
            ranges::MAX_CODE.0,
            ranges::MAX_CODE.1,
        ),
        max_concurrent: check.range(
            "tools.sandbox.max_concurrent",
            raw.max_concurrent,
            ranges::MAX_CONCURRENT.0,
            ranges::MAX_CONCURRENT.1,
        ) as usize,
        queue_timeout: check.duration(
            "tools.sandbox.queue_timeout",
            raw.queue_timeout.0,
            ranges::QUEUE_TIMEOUT.0,
            ranges::QUEUE_TIMEOUT.1,
        ),
        cgroup,
    }
}

/// `[tools.shell]`: the policy and each rule's action. What a program name, a host pattern,
/// a rule id or an argument pattern may be is the command filter's to say
/// (`policy::shell_config_issues`, and again when the filter is built).
pub(super) fn validate_shell(
    raw: RawShell,
    mode: SecurityMode,
    check: &mut Issues<'_>,
) -> ShellConfig {
    let policy = match raw.policy.as_deref().map(|p| p.trim().to_ascii_lowercase()) {
        None => match mode {
            SecurityMode::Strict => ShellPolicy::Allowlist,
            SecurityMode::Local => ShellPolicy::Denylist,
        },
        Some(p) if p == "allowlist" => ShellPolicy::Allowlist,
        Some(p) if p == "denylist" => ShellPolicy::Denylist,
        Some(_) => {
            check.push(
                "tools.shell.policy",
                format!(
                    "unknown policy {:?}: use \"allowlist\" or \"denylist\"",
                    raw.policy.unwrap_or_default()
                ),
            );
            ShellPolicy::Allowlist
        }
    };
    let mut rules: Vec<ShellRule> = Vec::new();
    for (index, rule) in raw.rules.into_iter().enumerate() {
        let action = match rule.action.trim().to_ascii_lowercase().as_str() {
            "allow" => ShellRuleAction::Allow,
            "approve" => ShellRuleAction::Approve,
            "deny" => ShellRuleAction::Deny,
            other => {
                check.push(
                    &format!("{}.action", shell_rule_key(index, &rule.id)),
                    format!("unknown action {other:?}: use \"allow\", \"approve\" or \"deny\""),
                );
                ShellRuleAction::Deny
            }
        };
        rules.push(ShellRule {
            id: rule.id,
            action,
            program: rule.program,
            args: rule.args,
        });
    }
    ShellConfig {
        policy,
        allowed_programs: raw.allowed_programs,
        allowed_hosts: raw.allowed_hosts,
        rules,
    }
}
