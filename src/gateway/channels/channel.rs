//! What every kind of channel is: its settings, the delivery it lets through, and the
//! trait a kind implements. A leaf of `channels/`, so the registry and each kind use it
//! without importing each other.

use std::time::Duration;

use super::error::ChannelError;
use crate::config::ChannelKindName;

/// What every channel has, whatever its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSettings {
    pub name: String,
    pub kind: ChannelKindName,
    /// The agent that answers.
    pub agent: String,
    /// The user the agent runs as: its approvals go to this user.
    pub owner: String,
    /// Where replies are posted; `None` answers in the response.
    pub reply_url: Option<String>,
    pub reply_timeout: Duration,
}

/// A delivery that passed its channel's check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub delivery: String,
    /// The signed timestamp (unix seconds).
    pub timestamp: i64,
    /// The message for the agent.
    pub text: String,
}

/// One kind of channel: its settings, and how an inbound delivery is authenticated
/// and read.
pub trait Channel: Send + Sync + std::fmt::Debug {
    fn settings(&self) -> &ChannelSettings;

    /// Authenticates a delivery (its id, its signature header and body, at `now` unix
    /// seconds) and reads the message from it. Whether the id was seen before is the
    /// registry's to decide, after this succeeds.
    fn authenticate(
        &self,
        delivery: &str,
        signature: &str,
        body: &[u8],
        now: i64,
    ) -> Result<Inbound, ChannelError>;
}
