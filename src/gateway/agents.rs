//! Agents: the ones `[[agents]]` in the config names (read-only here) and the ones
//! managed through `/api/v1/agents`, stored in the `agents` tree. One name space: a
//! stored agent may not take a configured agent's name.
//!
//! Every agent, wherever it comes from, passes the same field rules
//! (`config::agents::check_agent`), and a refusal names the field. A stored agent's
//! workspace is always `<data_dir>/workspaces/<name>`: the API never chooses a directory
//! on the host. This module never checks that a provider is configured (the providers'
//! owner does) and never runs an agent.

use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::config::agents::{AgentFields, check_agent};
use crate::config::{AgentConfig, TOOL_NAMES};
use crate::store::{Store, StoreError, Tree, TreeName};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("no agent {0}")]
    NotFound(String),
    #[error("agent {0} already exists")]
    Exists(String),
    #[error(
        "agent {0} comes from the config file and is read-only here; change [[agents]] instead"
    )]
    ReadOnly(String),
    /// Each broken rule as `field: message`.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An agent as a client sends it to create or replace one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    pub name: String,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub fallbacks: Vec<String>,
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Every tool when absent, as in the config file.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    #[serde(default)]
    pub max_tool_iterations: Option<u64>,
    #[serde(default)]
    pub temperature: Option<f64>,
}

/// Where an agent is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Config,
    Api,
}

/// An agent as shown and as the agent loop reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub name: String,
    pub provider: Option<String>,
    pub model: Option<String>,
    /// `provider/model` names.
    pub fallbacks: Vec<String>,
    pub system_prompt: Option<String>,
    pub tools: Vec<String>,
    pub max_tool_iterations: u32,
    pub temperature: Option<f64>,
    pub workspace: PathBuf,
    pub source: Source,
}

impl Agent {
    fn from_config(config: &AgentConfig) -> Agent {
        Agent {
            name: config.name.clone(),
            provider: config.provider.clone(),
            model: config.model.clone(),
            fallbacks: config.fallbacks.iter().map(ToString::to_string).collect(),
            system_prompt: config.system_prompt.clone(),
            tools: config.tools.clone(),
            max_tool_iterations: config.max_tool_iterations,
            temperature: config.temperature,
            workspace: config.workspace.clone(),
            source: Source::Config,
        }
    }

    /// The agent in the config's form, for the agent loop and the tool registry.
    pub fn to_config(&self) -> AgentConfig {
        AgentConfig {
            name: self.name.clone(),
            tools: self.tools.clone(),
            workspace: self.workspace.clone(),
            provider: self.provider.clone(),
            model: self.model.clone(),
            fallbacks: self
                .fallbacks
                .iter()
                .filter_map(|f| crate::config::agents::parse_model_ref(f).ok())
                .collect(),
            system_prompt: self.system_prompt.clone(),
            max_tool_iterations: self.max_tool_iterations,
            temperature: self.temperature,
        }
    }
}

/// The configured and the stored agents.
#[derive(Debug)]
pub struct Agents {
    store: Store,
    configured: Vec<AgentConfig>,
    /// The `[[providers]]` names an agent may use.
    providers: Vec<String>,
    stored: Tree<String, Agent>,
    workspaces: PathBuf,
    /// Serializes writes, so a name check and its insert are one step.
    write: Mutex<()>,
}

impl Agents {
    pub fn open(
        store: &Store,
        configured: Vec<AgentConfig>,
        providers: Vec<String>,
        data_dir: &std::path::Path,
    ) -> Result<Agents, AgentError> {
        Ok(Agents {
            store: store.clone(),
            configured,
            providers,
            stored: store.tree(TreeName::Agents)?,
            workspaces: data_dir.join("workspaces"),
            write: Mutex::new(()),
        })
    }

    /// Every agent: the configured ones first, then the stored ones by name.
    pub fn list(&self) -> Result<Vec<Agent>, AgentError> {
        let mut agents: Vec<Agent> = self.configured.iter().map(Agent::from_config).collect();
        for entry in self.stored.iter_from(None) {
            agents.push(entry?.1);
        }
        Ok(agents)
    }

    pub fn get(&self, name: &str) -> Result<Agent, AgentError> {
        if let Some(config) = self.configured.iter().find(|a| a.name == name) {
            return Ok(Agent::from_config(config));
        }
        self.stored
            .get(&name.to_string())?
            .ok_or_else(|| AgentError::NotFound(short(name)))
    }

    pub fn create(&self, spec: AgentSpec) -> Result<Agent, AgentError> {
        let agent = self.checked(spec)?;
        let _write = self.lock();
        if self.is_configured(&agent.name) || !self.stored.insert_new(&agent.name, &agent)? {
            return Err(AgentError::Exists(agent.name));
        }
        self.store.sync()?;
        Ok(agent)
    }

    /// Replaces a stored agent; its name stays (`spec.name` must match it).
    pub fn update(&self, name: &str, spec: AgentSpec) -> Result<Agent, AgentError> {
        if self.is_configured(name) {
            return Err(AgentError::ReadOnly(name.to_string()));
        }
        if spec.name != name {
            return Err(AgentError::Invalid(vec![
                "name: must match the agent's name in the path; an agent cannot be renamed".into(),
            ]));
        }
        let agent = self.checked(spec)?;
        let _write = self.lock();
        if self.stored.get(&agent.name)?.is_none() {
            return Err(AgentError::NotFound(short(name)));
        }
        self.stored.insert(&agent.name, &agent)?;
        self.store.sync()?;
        Ok(agent)
    }

    pub fn delete(&self, name: &str) -> Result<(), AgentError> {
        if self.is_configured(name) {
            return Err(AgentError::ReadOnly(name.to_string()));
        }
        let _write = self.lock();
        if !self.stored.remove(&name.to_string())? {
            return Err(AgentError::NotFound(short(name)));
        }
        self.store.sync()?;
        Ok(())
    }

    fn is_configured(&self, name: &str) -> bool {
        self.configured.iter().any(|a| a.name == name)
    }

    fn checked(&self, spec: AgentSpec) -> Result<Agent, AgentError> {
        let tools = spec
            .tools
            .unwrap_or_else(|| TOOL_NAMES.iter().map(|t| t.to_string()).collect());
        let mut problems = Vec::new();
        let checked = check_agent(
            &AgentFields {
                name: &spec.name,
                provider: spec.provider.as_deref(),
                model: spec.model.as_deref(),
                fallbacks: &spec.fallbacks,
                system_prompt: spec.system_prompt.as_deref(),
                tools: &tools,
                max_tool_iterations: spec.max_tool_iterations,
                temperature: spec.temperature,
            },
            &mut |field, message| problems.push(format!("{field}: {message}")),
        );
        let configured: Vec<&str> = self.providers.iter().map(String::as_str).collect();
        if let Some(checked) = &checked {
            let unknown = crate::config::agents::unknown_providers(
                spec.provider.as_deref(),
                &checked.fallbacks,
                &configured,
            );
            problems.extend(
                unknown
                    .into_iter()
                    .map(|(field, message)| format!("{field}: {message}")),
            );
        }
        let Some(checked) = checked.filter(|_| problems.is_empty()) else {
            return Err(AgentError::Invalid(problems));
        };
        Ok(Agent {
            workspace: self.workspaces.join(&spec.name),
            name: spec.name,
            provider: spec.provider,
            model: spec.model,
            fallbacks: checked.fallbacks.iter().map(ToString::to_string).collect(),
            system_prompt: spec.system_prompt,
            tools,
            max_tool_iterations: checked.max_tool_iterations,
            temperature: spec.temperature,
            source: Source::Api,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn short(text: &str) -> String {
    text.chars().take(40).collect()
}
