//! What is wrong that the owner must see on the device itself: a display or bus that
//! fails, the store failing, a part of the gateway that could not start. Each alert is
//! raised under a short name by whoever noticed it and cleared by the same once it is
//! well again; the LED plays its error pattern while any is raised. This module only
//! keeps the list; it never decides what counts as wrong and never blinks.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The alerts raised now, by name.
#[derive(Debug, Default)]
pub struct Alerts {
    raised: Mutex<BTreeMap<&'static str, String>>,
}

impl Alerts {
    /// Raises (or updates) the alert `what` with the reason `why`; true when it was not
    /// raised before, so the caller logs a failure once.
    pub fn raise(&self, what: &'static str, why: impl Into<String>) -> bool {
        self.lock().insert(what, why.into()).is_none()
    }

    /// Clears `what`; true when it was raised.
    pub fn clear(&self, what: &'static str) -> bool {
        self.lock().remove(what).is_some()
    }

    /// The alerts raised now, as (name, reason), sorted by name.
    pub fn current(&self) -> Vec<(String, String)> {
        self.lock()
            .iter()
            .map(|(what, why)| ((*what).to_string(), why.clone()))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, String>> {
        self.raised
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_is_raised_once_until_cleared() {
        let alerts = Alerts::default();
        assert!(alerts.is_empty());
        assert!(alerts.raise("display", "no answer at 0x3c"));
        assert!(!alerts.raise("display", "still no answer"));
        assert_eq!(
            alerts.current(),
            vec![("display".to_string(), "still no answer".to_string())]
        );
        assert!(alerts.clear("display"));
        assert!(!alerts.clear("display"));
        assert!(alerts.is_empty());
    }
}
