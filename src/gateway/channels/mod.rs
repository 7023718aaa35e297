//! Channels: doors through which other programs reach one agent, such as the signed
//! webhook ([`webhook`]). Telegram or Matrix would each be one more [`Channel`].
//!
//! The registry holds the channels `[[channels]]` names (read-only here) and the ones
//! managed through `/api/v1/channels`, stored in the `channels` tree with their secret
//! sealed under the master key (`channels.<name>` in the secrets tree), in one name
//! space. It hands out a channel to check a delivery against (or a decoy for an unknown
//! name, so both fail alike), remembers which delivery ids were accepted (bounded, each
//! forgotten when its signature could no longer be fresh), and lets the security audit
//! compare secrets. It never speaks HTTP, never runs an agent, and never returns a
//! secret except to the route that created or rotated it.

mod channel;
pub mod error;
pub mod webhook;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

pub use channel::{Channel, ChannelSettings, Inbound};
pub use error::ChannelError;

use crate::config::{
    ChannelConfig, ChannelKindName, DEFAULT_REPLY_TIMEOUT, SecurityMode, channel_secret_problem,
    reply_url_problem, valid_channel_name,
};
use crate::keys::secrets::Secrets;
use crate::secret::Secret;
use crate::store::{SecretName, Store, Tree, TreeName};

/// How many accepted delivery ids are remembered at most.
pub const MAX_SEEN: usize = 10_000;

/// Where a channel is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Config,
    Api,
}

/// A channel as shown: never its secret, only a hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelView {
    pub name: String,
    pub kind: ChannelKindName,
    pub agent: String,
    pub owner: String,
    pub reply_url: Option<String>,
    /// Seconds.
    pub reply_timeout: u64,
    /// The secret's last four characters.
    pub secret_hint: String,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

impl ChannelView {
    pub fn settings(&self) -> ChannelSettings {
        ChannelSettings {
            name: self.name.clone(),
            kind: self.kind,
            agent: self.agent.clone(),
            owner: self.owner.clone(),
            reply_url: self.reply_url.clone(),
            reply_timeout: Duration::from_secs(self.reply_timeout),
        }
    }
}

/// A channel as a client sends it to create or replace one (the secret apart).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub name: String,
    #[serde(default = "webhook_kind")]
    pub kind: String,
    pub agent: String,
    /// The caller when absent.
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub reply_url: Option<String>,
    /// Seconds, 1 to 120.
    #[serde(default)]
    pub reply_timeout: Option<u64>,
}

fn webhook_kind() -> String {
    "webhook".into()
}

/// The secret's hint: its last four characters.
pub fn hint(secret: &Secret) -> String {
    let text = secret.expose();
    let tail: String = text
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// A fresh secret: 32 random bytes as 64 hex digits.
pub fn generate_secret() -> Result<Secret, ChannelError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ChannelError::Secrets(crate::keys::secrets::SecretsError::Random))?;
    Ok(Secret::new(hex::encode(bytes)))
}

/// The configured and the stored channels, and the delivery ids they accepted.
#[derive(Debug)]
pub struct Channels {
    store: Store,
    configured: Vec<ChannelConfig>,
    stored: Tree<String, ChannelView>,
    secrets: std::sync::Arc<Secrets>,
    mode: SecurityMode,
    deliveries: Deliveries,
    decoy: Secret,
    /// Serializes writes, so a name check and its insert are one step.
    write: Mutex<()>,
}

impl Channels {
    pub fn open(
        store: &Store,
        configured: Vec<ChannelConfig>,
        secrets: std::sync::Arc<Secrets>,
        mode: SecurityMode,
    ) -> Result<Channels, ChannelError> {
        let decoy = Secret::new(hex::encode(
            secrets.derive("aisopod/v1/channels/decoy").expose(),
        ));
        Ok(Channels {
            store: store.clone(),
            configured,
            stored: store.tree(TreeName::Channels)?,
            deliveries: Deliveries::open(store)?,
            secrets,
            mode,
            decoy,
            write: Mutex::new(()),
        })
    }

    fn secret_name(name: &str) -> Result<SecretName, ChannelError> {
        SecretName::parse(&format!("channels.{name}"))
            .map_err(|_| ChannelError::Invalid(vec!["name: not a valid channel name".into()]))
    }

    fn configured_view(config: &ChannelConfig) -> ChannelView {
        ChannelView {
            name: config.name.clone(),
            kind: config.kind,
            agent: config.agent.clone(),
            owner: config.owner.clone(),
            reply_url: config.reply_url.clone(),
            reply_timeout: config.reply_timeout.as_secs(),
            secret_hint: hint(&config.secret),
            source: Source::Config,
            created: None,
            created_by: None,
        }
    }

    /// Every channel, configured ones first, then stored ones by name.
    pub fn list(&self) -> Result<Vec<ChannelView>, ChannelError> {
        let mut all: Vec<ChannelView> = self.configured.iter().map(Self::configured_view).collect();
        for entry in self.stored.iter_from(None) {
            let (_, view) = entry?;
            all.push(view);
        }
        Ok(all)
    }

    pub fn get(&self, name: &str) -> Result<ChannelView, ChannelError> {
        if let Some(config) = self.configured.iter().find(|c| c.name == name) {
            return Ok(Self::configured_view(config));
        }
        self.stored
            .get(&name.to_string())?
            .ok_or_else(|| ChannelError::NotFound(short(name)))
    }

    /// The channel to check a delivery for `name` against; for an unknown name, a
    /// decoy that costs the same and never accepts.
    pub fn for_delivery(&self, name: &str) -> Result<Box<dyn Channel>, ChannelError> {
        let decoy =
            || -> Box<dyn Channel> { Box::new(webhook::Webhook::decoy(self.decoy.clone())) };
        match self.resolve(name) {
            Ok((view, secret)) => match view.kind {
                ChannelKindName::Webhook => {
                    Ok(Box::new(webhook::Webhook::new(view.settings(), secret)))
                }
            },
            Err(ChannelError::NotFound(_)) => Ok(decoy()),
            Err(err) => Err(err),
        }
    }

    /// A channel's settings with its secret, for checking and signing.
    pub fn resolve(&self, name: &str) -> Result<(ChannelView, Secret), ChannelError> {
        if let Some(config) = self.configured.iter().find(|c| c.name == name) {
            return Ok((Self::configured_view(config), config.secret.clone()));
        }
        let view = self
            .stored
            .get(&name.to_string())?
            .ok_or_else(|| ChannelError::NotFound(short(name)))?;
        let secret = self
            .secrets
            .get(&Self::secret_name(name)?)?
            .ok_or_else(|| ChannelError::NotFound(short(name)))?;
        Ok((view, secret))
    }

    /// Checks a spec's fields; `owner` has been resolved by the caller.
    fn check(&self, spec: &ChannelSpec) -> Result<(ChannelKindName, u64), ChannelError> {
        let mut problems = Vec::new();
        if !valid_channel_name(&spec.name) {
            problems.push(
                "name: use 1 to 32 lowercase letters, digits, '-' or '_', starting with a letter or digit"
                    .to_string(),
            );
        }
        let kind = ChannelKindName::parse(&spec.kind);
        if kind.is_none() {
            problems.push("kind: the only channel kind is \"webhook\"".into());
        }
        if let Some(url) = &spec.reply_url
            && let Some(problem) = reply_url_problem(url, self.mode)
        {
            problems.push(format!("reply_url: {problem}"));
        }
        let timeout = spec
            .reply_timeout
            .unwrap_or(DEFAULT_REPLY_TIMEOUT.as_secs());
        if !(1..=120).contains(&timeout) {
            problems.push("reply_timeout: must be between 1 and 120 seconds".into());
        }
        match kind {
            Some(kind) if problems.is_empty() => Ok((kind, timeout)),
            _ => Err(ChannelError::Invalid(problems)),
        }
    }

    /// Stores a new channel with `secret` (sealed). `owner` is the user the agent will
    /// run as, already checked to exist by the caller, as is the agent.
    pub fn create(
        &self,
        spec: ChannelSpec,
        owner: String,
        secret: &Secret,
        created_by: &str,
        created: String,
    ) -> Result<ChannelView, ChannelError> {
        let (kind, reply_timeout) = self.check(&spec)?;
        check_secret(secret)?;
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        if self.configured.iter().any(|c| c.name == spec.name)
            || self.stored.get(&spec.name)?.is_some()
        {
            return Err(ChannelError::Exists(spec.name));
        }
        if self.secret_matches_locked(secret.expose().as_bytes())? {
            return Err(ChannelError::SecretReused);
        }
        let view = ChannelView {
            name: spec.name,
            kind,
            agent: spec.agent,
            owner,
            reply_url: spec.reply_url,
            reply_timeout,
            secret_hint: hint(secret),
            source: Source::Api,
            created: Some(created),
            created_by: Some(created_by.to_string()),
        };
        self.secrets.set(&Self::secret_name(&view.name)?, secret)?;
        self.stored.insert(&view.name, &view)?;
        self.store.sync()?;
        Ok(view)
    }

    /// Replaces a stored channel's settings (its name and secret stay).
    pub fn update(
        &self,
        name: &str,
        spec: ChannelSpec,
        owner: String,
    ) -> Result<ChannelView, ChannelError> {
        let (kind, reply_timeout) = self.check(&spec)?;
        if spec.name != name {
            return Err(ChannelError::Invalid(vec![
                "name: a channel cannot be renamed; create a new one".into(),
            ]));
        }
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.stored_for_change(name)?;
        let view = ChannelView {
            kind,
            agent: spec.agent,
            owner,
            reply_url: spec.reply_url,
            reply_timeout,
            ..current
        };
        self.stored.insert(&view.name, &view)?;
        self.store.sync()?;
        Ok(view)
    }

    /// Replaces a stored channel's secret; the old one stops working at once.
    pub fn rotate(&self, name: &str, secret: &Secret) -> Result<ChannelView, ChannelError> {
        check_secret(secret)?;
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.stored_for_change(name)?;
        if self.secret_matches_locked(secret.expose().as_bytes())? {
            return Err(ChannelError::SecretReused);
        }
        let view = ChannelView {
            secret_hint: hint(secret),
            ..current
        };
        self.secrets.set(&Self::secret_name(name)?, secret)?;
        self.stored.insert(&view.name, &view)?;
        self.store.sync()?;
        Ok(view)
    }

    pub fn delete(&self, name: &str) -> Result<(), ChannelError> {
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        self.stored_for_change(name)?;
        self.stored.remove(&name.to_string())?;
        self.secrets.remove(&Self::secret_name(name)?)?;
        self.store.sync()?;
        Ok(())
    }

    fn stored_for_change(&self, name: &str) -> Result<ChannelView, ChannelError> {
        if self.configured.iter().any(|c| c.name == name) {
            return Err(ChannelError::ReadOnly(name.to_string()));
        }
        self.stored
            .get(&name.to_string())?
            .ok_or_else(|| ChannelError::NotFound(short(name)))
    }

    /// Every channel's name and secret, for the security audit's reused-secret check.
    pub(crate) fn secrets(&self) -> Result<Vec<(String, Secret)>, ChannelError> {
        let mut all: Vec<(String, Secret)> = self
            .configured
            .iter()
            .map(|c| (c.name.clone(), c.secret.clone()))
            .collect();
        for entry in self.stored.iter_from(None) {
            let (name, _) = entry?;
            if let Some(secret) = self.secrets.get(&Self::secret_name(&name)?)? {
                all.push((name, secret));
            }
        }
        Ok(all)
    }

    /// Whether `candidate` is the secret of any channel (compared in constant time).
    pub fn secret_matches(&self, candidate: &[u8]) -> Result<bool, ChannelError> {
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        self.secret_matches_locked(candidate)
    }

    fn secret_matches_locked(&self, candidate: &[u8]) -> Result<bool, ChannelError> {
        Ok(self.secrets()?.iter().fold(false, |found, (_, secret)| {
            bool::from(secret.expose().as_bytes().ct_eq(candidate)) | found
        }))
    }

    /// Remembers that `delivery` on `channel` was accepted, until its signature
    /// (timestamp `signed`) could no longer be fresh.
    pub fn accept_delivery(
        &self,
        channel: &str,
        delivery: &str,
        signed: i64,
        now: i64,
    ) -> Result<(), ChannelError> {
        self.deliveries
            .accept(channel, delivery, signed + webhook::WINDOW_SECS, now)
    }

    /// How many delivery ids are remembered now.
    pub fn remembered(&self) -> usize {
        self.deliveries.seen.len()
    }

    /// Forgets delivery ids whose signatures can no longer be fresh.
    pub fn prune_deliveries(&self, now: i64) -> Result<usize, ChannelError> {
        self.deliveries.prune(now)
    }
}

fn check_secret(secret: &Secret) -> Result<(), ChannelError> {
    match channel_secret_problem(secret) {
        Some(problem) => Err(ChannelError::Invalid(vec![format!("secret: {problem}")])),
        None => Ok(()),
    }
}

fn short(name: &str) -> String {
    name.chars().take(40).collect()
}

/// Accepted delivery ids with the unix time after which they are forgotten, keyed
/// `<channel>\n<id>`. At most [`MAX_SEEN`]: when full, the expired are pruned, and if
/// that frees nothing a new delivery is refused rather than an old id forgotten early.
#[derive(Debug)]
struct Deliveries {
    seen: Tree<String, i64>,
    store: Store,
    accepted: AtomicU64,
}

impl Deliveries {
    /// Every this many acceptances, expired ids are pruned even when there is room.
    const PRUNE_EVERY: u64 = 256;

    fn open(store: &Store) -> Result<Deliveries, ChannelError> {
        Ok(Deliveries {
            seen: store.tree(TreeName::Deliveries)?,
            store: store.clone(),
            accepted: AtomicU64::new(0),
        })
    }

    fn accept(
        &self,
        channel: &str,
        delivery: &str,
        expires: i64,
        now: i64,
    ) -> Result<(), ChannelError> {
        let count = self.accepted.fetch_add(1, Ordering::Relaxed);
        if count % Self::PRUNE_EVERY == Self::PRUNE_EVERY - 1 || self.seen.len() >= MAX_SEEN {
            self.prune(now)?;
        }
        let key = format!("{channel}\n{delivery}");
        if self.seen.get(&key)?.is_some_and(|until| until > now) {
            return Err(ChannelError::Replayed(delivery.to_string()));
        }
        if self.seen.len() >= MAX_SEEN {
            return Err(ChannelError::SeenFull);
        }
        // An expired record of the same id is replaced; a live one makes this fail.
        if !self.seen.insert_new(&key, &expires)? {
            let mut replaced = false;
            self.seen.update(&key, |until| {
                replaced = *until <= now;
                Ok::<_, ChannelError>(replaced.then_some(expires))
            })?;
            if !replaced {
                return Err(ChannelError::Replayed(delivery.to_string()));
            }
        }
        self.store.sync()?;
        Ok(())
    }

    fn prune(&self, now: i64) -> Result<usize, ChannelError> {
        let mut expired = Vec::new();
        for entry in self.seen.iter_from(None) {
            let (key, until) = entry?;
            if until <= now {
                expired.push(key);
            }
        }
        for key in &expired {
            self.seen.remove(key)?;
        }
        Ok(expired.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::sync::Arc;

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        channels: Channels,
    }

    fn open(configured: Vec<ChannelConfig>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let secrets = Arc::new(Secrets::open(dir.path(), &store).unwrap());
        let channels = Channels::open(&store, configured, secrets, SecurityMode::Local).unwrap();
        Fixture {
            _dir: dir,
            channels,
        }
    }

    fn spec(name: &str) -> ChannelSpec {
        ChannelSpec {
            name: name.into(),
            kind: "webhook".into(),
            agent: "helper".into(),
            ..ChannelSpec::default()
        }
    }

    fn configured(name: &str, secret: &str) -> ChannelConfig {
        ChannelConfig {
            name: name.into(),
            kind: ChannelKindName::Webhook,
            agent: "helper".into(),
            owner: "owner".into(),
            secret: Secret::new(secret),
            reply_url: None,
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
        }
    }

    #[test]
    fn a_stored_channel_keeps_its_secret_sealed_and_shows_a_hint() {
        let f = open(vec![]);
        let secret = generate_secret().unwrap();
        let view = f
            .channels
            .create(
                spec("ci"),
                "owner".into(),
                &secret,
                "user:owner",
                "t".into(),
            )
            .unwrap();
        assert_eq!(view.secret_hint, hint(&secret));
        let shown = serde_json::to_string(&f.channels.list().unwrap()).unwrap();
        assert!(!shown.contains(secret.expose()));
        let (_, resolved) = f.channels.resolve("ci").unwrap();
        assert_eq!(resolved, secret);
        assert!(
            f.channels
                .secret_matches(secret.expose().as_bytes())
                .unwrap()
        );
        assert!(!f.channels.secret_matches(b"something else").unwrap());
    }

    #[test]
    fn names_are_one_space_and_configured_channels_are_read_only() {
        let f = open(vec![configured("cfg", &"c".repeat(40))]);
        let secret = generate_secret().unwrap();
        assert!(matches!(
            f.channels
                .create(spec("cfg"), "owner".into(), &secret, "a", "t".into()),
            Err(ChannelError::Exists(_))
        ));
        assert!(matches!(
            f.channels.delete("cfg"),
            Err(ChannelError::ReadOnly(_))
        ));
        assert!(matches!(
            f.channels.rotate("cfg", &secret),
            Err(ChannelError::ReadOnly(_))
        ));
        assert!(matches!(
            f.channels.delete("nope"),
            Err(ChannelError::NotFound(_))
        ));
    }

    #[test]
    fn a_secret_already_used_by_a_channel_is_refused() {
        let f = open(vec![configured("cfg", &"c".repeat(40))]);
        let reused = Secret::new("c".repeat(40));
        assert!(matches!(
            f.channels
                .create(spec("ci"), "owner".into(), &reused, "a", "t".into()),
            Err(ChannelError::SecretReused)
        ));
        assert!(matches!(
            f.channels.create(
                spec("ci"),
                "owner".into(),
                &Secret::new("short"),
                "a",
                "t".into()
            ),
            Err(ChannelError::Invalid(_))
        ));
    }

    #[test]
    fn rotation_replaces_the_secret_and_delete_removes_it() {
        let f = open(vec![]);
        let first = generate_secret().unwrap();
        f.channels
            .create(spec("ci"), "owner".into(), &first, "a", "t".into())
            .unwrap();
        let second = generate_secret().unwrap();
        f.channels.rotate("ci", &second).unwrap();
        assert_eq!(f.channels.resolve("ci").unwrap().1, second);
        assert!(
            !f.channels
                .secret_matches(first.expose().as_bytes())
                .unwrap()
        );
        f.channels.delete("ci").unwrap();
        assert!(matches!(
            f.channels.resolve("ci"),
            Err(ChannelError::NotFound(_))
        ));
        assert!(f.channels.secrets().unwrap().is_empty());
    }

    #[test]
    fn an_unknown_channel_gets_a_decoy_that_refuses_like_a_bad_signature() {
        let f = open(vec![]);
        let body = br#"{"text":"hi"}"#;
        let header = webhook::signature_header(b"whatever", 100, "d1", body);
        let channel = f.channels.for_delivery("ghost").unwrap();
        assert!(matches!(
            channel.authenticate("d1", &header, body, 100),
            Err(ChannelError::BadSignature)
        ));
    }

    #[test]
    fn each_delivery_id_is_accepted_once_until_it_expires() {
        let f = open(vec![]);
        f.channels.accept_delivery("ci", "d1", 1000, 1000).unwrap();
        assert!(matches!(
            f.channels.accept_delivery("ci", "d1", 1000, 1001),
            Err(ChannelError::Replayed(_))
        ));
        f.channels
            .accept_delivery("other", "d1", 1000, 1001)
            .unwrap();
        assert_eq!(f.channels.prune_deliveries(1299).unwrap(), 0);
        assert_eq!(f.channels.prune_deliveries(1300).unwrap(), 2);
        assert_eq!(f.channels.remembered(), 0);
    }

    #[test]
    fn the_seen_ids_are_bounded_and_refuse_rather_than_forget_early() {
        let f = open(vec![]);
        for i in 0..MAX_SEEN {
            f.channels
                .deliveries
                .seen
                .insert(&format!("ci\n{i}"), &2000)
                .unwrap();
        }
        assert!(matches!(
            f.channels.accept_delivery("ci", "new", 1000, 1000),
            Err(ChannelError::SeenFull)
        ));
        // Once they age out, they are pruned and new deliveries are taken again.
        f.channels.accept_delivery("ci", "new", 2000, 2000).unwrap();
        assert_eq!(f.channels.remembered(), 1);
    }
}
