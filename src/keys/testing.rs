//! A throwaway data directory with a store and the secrets sealed in it, for the unit
//! tests of the modules that need both (audit, auth, the gateway). Compiled only for
//! tests; it knows nothing of what the tests keep in the store.

use std::sync::Arc;

use super::secrets::Secrets;
use crate::store::Store;

#[derive(Debug)]
pub struct KeyedStore {
    /// Held so that the directory lives as long as the store.
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub secrets: Arc<Secrets>,
}

/// A fresh store with a small cache and a new master key in a new temporary directory.
pub fn keyed_store() -> KeyedStore {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("tempdir: {err}"));
    let store = Store::open(dir.path(), 1 << 20).unwrap_or_else(|err| panic!("{err}"));
    let secrets = Secrets::open(dir.path(), &store).unwrap_or_else(|err| panic!("{err}"));
    KeyedStore {
        dir,
        store,
        secrets: Arc::new(secrets),
    }
}
