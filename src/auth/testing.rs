//! Fixtures shared by the auth modules' unit tests: a temporary store, a manual clock and
//! accounts hashed with cheap argon2 parameters (never used outside tests).

use std::sync::Arc;

use crate::auth::password::Passwords;
use crate::auth::users::Accounts;
use crate::clock::{ManualClock, SharedClock};
use crate::config::ConfigSource;
use crate::keys::secrets::Secrets;
use crate::store::Store;

pub use crate::config::testing::NoEnv;

pub struct Fixture {
    /// Held so the store's directory lives as long as the fixture.
    pub _dir: tempfile::TempDir,
    pub store: Store,
    pub secrets: Arc<Secrets>,
    pub clock: ManualClock,
    pub shared: SharedClock,
    pub accounts: Accounts,
}

/// A fresh store and accounts service; `auth_toml` adds keys to `[auth]`.
pub fn fixture(auth_toml: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let text = format!("[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1\n{auth_toml}\n");
    let config = crate::config::parse(&text, ConfigSource::Defaults, &NoEnv)
        .unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(dir.path(), 1 << 20).unwrap_or_else(|e| panic!("{e}"));
    let secrets = Arc::new(Secrets::open(dir.path(), &store).unwrap_or_else(|e| panic!("{e}")));
    let clock = ManualClock::new(
        time::OffsetDateTime::from_unix_timestamp(1_800_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    );
    let shared: SharedClock = Arc::new(clock.clone());
    let accounts = Accounts::open(
        &store,
        Passwords::new(&config.auth.password),
        shared.clone(),
        &config.auth,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    Fixture {
        _dir: dir,
        store,
        secrets,
        clock,
        shared,
        accounts,
    }
}
