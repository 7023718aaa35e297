//! [`ChannelError`]: why a channel could not be managed, or why a delivery on one was
//! refused. Messages never quote a secret, a signature or a body.

use crate::keys::secrets::SecretsError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("no channel {0}")]
    NotFound(String),
    #[error("channel {0} already exists")]
    Exists(String),
    #[error(
        "channel {0} comes from the config file and is read-only here; change [[channels]] instead"
    )]
    ReadOnly(String),
    /// Each broken rule as `field: message`.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// A secret equal to an API token, a provider key or another channel's secret.
    #[error(
        "this secret is already used elsewhere (an API token, a provider key or another channel); use a secret of its own"
    )]
    SecretReused,
    /// The delivery headers are missing or not in the documented form.
    #[error("{0}")]
    MalformedHeader(&'static str),
    /// The signature does not match, or the channel does not exist: one answer for both.
    #[error("the signature does not match this channel's secret")]
    BadSignature,
    #[error(
        "the signature's timestamp is more than 5 minutes from the gateway's clock; sign with the current time"
    )]
    Stale,
    #[error("delivery {0} was already accepted; send a new delivery id")]
    Replayed(String),
    #[error("too many recent deliveries are being remembered; retry in a few minutes")]
    SeenFull,
    #[error("the body must be a JSON object {{\"text\": \"...\"}} with non-empty text")]
    BadBody,
    #[error("the body is larger than the {limit} bytes a delivery may carry")]
    TooLarge { limit: usize },
    /// Posting the reply to the channel's `reply_url` failed.
    #[error("the reply could not be delivered: {0}")]
    Reply(String),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ChannelError {
    /// A short, stable name for audit records.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Exists(_) => "exists",
            Self::ReadOnly(_) => "read_only",
            Self::Invalid(_) => "invalid",
            Self::SecretReused => "secret_reused",
            Self::MalformedHeader(_) => "malformed_header",
            Self::BadSignature => "bad_signature",
            Self::Stale => "stale_timestamp",
            Self::Replayed(_) => "replayed",
            Self::SeenFull => "seen_ids_full",
            Self::BadBody => "bad_body",
            Self::TooLarge { .. } => "too_large",
            Self::Reply(_) => "reply_failed",
            Self::Secrets(_) => "secrets",
            Self::Store(_) => "store",
        }
    }

    /// Whether the refusal is one a forger could cause (counted against its address).
    pub fn is_authentication_failure(&self) -> bool {
        matches!(
            self,
            Self::MalformedHeader(_) | Self::BadSignature | Self::Stale
        )
    }
}
