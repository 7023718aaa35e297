//! `provider/model` names as the providers resolve them. A leaf of `providers/`, so the
//! provider and the registry both use it without importing each other.

use std::fmt;

use super::types::ProviderError;

/// `provider/model`: a configured provider's name and a model it serves. The model part
/// may itself hold `/` (OpenRouter's `meta-llama/llama-3-8b`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelRef {
    pub provider: String,
    pub model: String,
}

impl ModelRef {
    pub fn parse(text: &str) -> Result<Self, ProviderError> {
        match text.split_once('/') {
            Some((provider, model)) if !provider.is_empty() && !model.is_empty() => Ok(Self {
                provider: provider.to_string(),
                model: model.to_string(),
            }),
            _ => Err(ProviderError::UnknownModel {
                model: text.to_string(),
            }),
        }
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}
