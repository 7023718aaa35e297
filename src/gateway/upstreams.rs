//! The running gateway's providers with their keys: each configured provider uses the
//! key set over the API (sealed in the store with the master key under
//! `providers.NAME`), else the key its config names (`${VAR}`), else none. A key set or
//! removed here takes effect for the next request. It owns which key a provider uses and
//! what may be shown of it (where it came from and its last four characters); it never
//! returns, logs or stores a key in clear, and never speaks HTTP.

use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use crate::config::{ProviderConfig, ProviderKindName};
use crate::gateway::providers::{Pause, ProviderError, Providers};
use crate::keys::secrets::{Secrets, SecretsError};
use crate::secret::Secret;
use crate::store::SecretName;

/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 4096;
/// Keys shorter than this show no hint: four characters would give away too much.
const HINT_MIN_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamsError {
    #[error("no provider named {0:?} is configured; add it under [[providers]] first")]
    Unknown(String),
    #[error("api_key {0}")]
    BadKey(&'static str),
    #[error("the providers cannot be set up: {0}")]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

/// Where a provider's key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySource {
    Api,
    Config,
    None,
}

/// What may be shown of a key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    pub source: KeySource,
    /// `…` and the last four characters, for keys of 12 characters or more.
    pub hint: Option<String>,
}

/// A provider as `GET /api/v1/providers` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderView {
    pub name: String,
    pub kind: &'static str,
    pub base_url: String,
    pub models: Vec<String>,
    pub key: KeyView,
}

/// The configured providers and the keys they use now.
#[derive(Debug)]
pub struct Upstreams {
    configs: Vec<ProviderConfig>,
    /// Built from the config alone, with the config's keys.
    configured: Providers,
    secrets: Arc<Secrets>,
    live: RwLock<Arc<Providers>>,
    /// One change at a time, so the live set always matches the store.
    changing: Mutex<()>,
}

impl Upstreams {
    /// The providers `configs` describes, each with the key stored for it if any.
    pub fn open(
        configs: &[ProviderConfig],
        secrets: Arc<Secrets>,
        pause: Arc<dyn Pause>,
    ) -> Result<Self, UpstreamsError> {
        let configured = Providers::from_config(configs, pause)?;
        let upstreams = Self {
            configs: configs.to_vec(),
            live: RwLock::new(Arc::new(configured.clone())),
            configured,
            secrets,
            changing: Mutex::new(()),
        };
        upstreams.reload()?;
        Ok(upstreams)
    }

    /// The providers as they are now: what a request uses from start to end, even if a
    /// key changes meanwhile.
    pub fn current(&self) -> Arc<Providers> {
        self.live
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Seals `key` as provider `name`'s key, in place of the config's, from the next
    /// request on.
    pub fn set_key(&self, name: &str, key: &Secret) -> Result<(), UpstreamsError> {
        check_key(key)?;
        let secret = self.secret_name(name)?;
        let _changing = self.lock();
        self.secrets.set(&secret, key)?;
        self.reload()
    }

    /// Removes provider `name`'s stored key (its config key applies again); whether
    /// there was one.
    pub fn remove_key(&self, name: &str) -> Result<bool, UpstreamsError> {
        let secret = self.secret_name(name)?;
        let _changing = self.lock();
        let removed = self.secrets.remove(&secret)?;
        self.reload()?;
        Ok(removed)
    }

    /// Every configured provider with where its key comes from, never the key.
    pub fn list(&self) -> Result<Vec<ProviderView>, UpstreamsError> {
        let mut views = Vec::with_capacity(self.configs.len());
        for config in &self.configs {
            let stored = self.secrets.get(&self.secret_name(&config.name)?)?;
            let (source, key) = match (stored, &config.api_key) {
                (Some(key), _) => (KeySource::Api, Some(key)),
                (None, Some(key)) => (KeySource::Config, Some(key.clone())),
                (None, None) => (KeySource::None, None),
            };
            views.push(ProviderView {
                name: config.name.clone(),
                kind: match config.kind {
                    ProviderKindName::OpenAi => "openai",
                    ProviderKindName::Anthropic => "anthropic",
                },
                base_url: config.base_url.clone(),
                models: config.models.clone(),
                key: KeyView {
                    source,
                    hint: key.as_ref().and_then(hint),
                },
            });
        }
        Ok(views)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The store's name for a configured provider's key.
    fn secret_name(&self, name: &str) -> Result<SecretName, UpstreamsError> {
        if !self.configs.iter().any(|c| c.name == name) {
            return Err(UpstreamsError::Unknown(name.to_string()));
        }
        SecretName::parse(&format!("providers.{name}"))
            .map_err(|_| UpstreamsError::Unknown(name.to_string()))
    }

    /// Rebuilds the live set from the config and the stored keys.
    fn reload(&self) -> Result<(), UpstreamsError> {
        let mut providers = Vec::with_capacity(self.configs.len());
        for provider in self.configured.iter() {
            let stored = self.secrets.get(&self.secret_name(provider.name())?)?;
            providers.push(match stored {
                Some(key) => provider.with_key(Some(key)),
                None => provider.clone(),
            });
        }
        *self
            .live
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(Providers::new(providers));
        Ok(())
    }
}

/// Refuses what no upstream would accept in a header, so nothing unusable is stored.
fn check_key(key: &Secret) -> Result<(), UpstreamsError> {
    let text = key.expose();
    if text.is_empty() {
        return Err(UpstreamsError::BadKey("is empty"));
    }
    if text.len() > MAX_KEY_LEN {
        return Err(UpstreamsError::BadKey("is longer than 4096 bytes"));
    }
    if !text.chars().all(|c| c.is_ascii_graphic()) {
        return Err(UpstreamsError::BadKey(
            "may hold only printable ASCII: no spaces, control characters or other characters",
        ));
    }
    Ok(())
}

fn hint(key: &Secret) -> Option<String> {
    let text = key.expose();
    if text.chars().count() < HINT_MIN_LEN {
        return None;
    }
    let last: String = text
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Some(format!("…{last}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_printable_keys_of_sane_length_are_accepted() {
        for bad in ["", "sk-a b", "sk-\u{7}x", "sk-\nx", "sk-ключ"] {
            assert!(check_key(&Secret::new(bad)).is_err(), "{bad:?}");
        }
        assert!(check_key(&Secret::new("x".repeat(MAX_KEY_LEN + 1))).is_err());
        assert!(check_key(&Secret::new("x".repeat(MAX_KEY_LEN))).is_ok());
        assert!(check_key(&Secret::new("sk-proj-AbC_123-xyz")).is_ok());
    }

    #[test]
    fn the_hint_is_the_last_four_of_a_long_key_only() {
        assert_eq!(
            hint(&Secret::new("sk-0123456789abWXYZ")).as_deref(),
            Some("…WXYZ")
        );
        assert_eq!(hint(&Secret::new("ollama")), None);
    }
}
