//! The account-wide guess budget: how many passwords clients the account does not know
//! may have checked against one username, whoever sends them and from how many
//! addresses.
//!
//! Each username (existing or not, so that a refusal never tells whether an account
//! exists) has a budget of [`BURST`] checks that refills by one every [`SPACING_SECS`]
//! (a GCRA, kept as the time the budget is next full). A spread attack can therefore
//! have at most `BURST + W / SPACING_SECS` passwords checked against one account in any
//! window of `W` seconds, however many addresses it uses. A check is spent before the
//! password is verified, so a refused try costs no argon2 and tells nothing about the
//! password; a check that finds the right password is given back, so the owner's own
//! logins never use up what guessers leave (and a right guess ends the attack anyway).
//!
//! The budget lives in memory only: it bounds what a guesser gets while the gateway runs
//! (a restart refills it), and it is bounded itself ([`MAX_NAMES`]). It never decides who
//! is exempt from it; `users` does (clients that proved an earlier login, familiar
//! addresses).

use std::collections::HashMap;
use std::sync::Mutex;

/// Checks a username may have at once after a quiet period.
pub const BURST: i64 = 10;
/// Then one more check per this many seconds.
pub const SPACING_SECS: i64 = 60;
/// Usernames whose budget is tracked. Only budgets in use (not full) matter: when the
/// map is full, full budgets are dropped first (forgetting one changes nothing), then
/// the half closest to full, so spraying names cannot refill an attacked account (its
/// budget is the most spent) and a full map costs one sort per `MAX_NAMES / 2` names.
const MAX_NAMES: usize = 4096;

/// Per-username guess budgets.
#[derive(Debug, Default)]
pub struct GuessBudgets {
    /// Username -> when its budget is full again (unix seconds).
    full_at: Mutex<HashMap<String, i64>>,
}

impl GuessBudgets {
    /// Spends one password check on `name` at `now`; when none is left, how many seconds
    /// until the next one.
    pub fn spend(&self, name: &str, now: i64) -> Result<(), i64> {
        let mut full_at = self.full_at.lock().unwrap_or_else(|p| p.into_inner());
        let next_full = full_at.get(name).copied().unwrap_or(now).max(now);
        let tolerance = (BURST - 1) * SPACING_SECS;
        if next_full - now > tolerance {
            return Err(next_full - tolerance - now);
        }
        if !full_at.contains_key(name) && full_at.len() >= MAX_NAMES {
            full_at.retain(|_, at| *at > now);
            if full_at.len() >= MAX_NAMES {
                let mut by_debt: Vec<(i64, String)> =
                    full_at.iter().map(|(n, at)| (*at, n.clone())).collect();
                by_debt.sort_unstable();
                for (_, closest) in by_debt.iter().take(MAX_NAMES / 2) {
                    full_at.remove(closest);
                }
            }
        }
        full_at.insert(name.to_string(), next_full + SPACING_SECS);
        Ok(())
    }

    /// Gives back a check spent on `name` that found the right password.
    pub fn refund(&self, name: &str) {
        if let Some(at) = self
            .full_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(name)
        {
            *at -= SPACING_SECS;
        }
    }

    /// Refills `name`'s budget (the console's `user unlock`).
    pub fn refill(&self, name: &str) {
        self.full_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.full_at.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_check_per_spacing_in_any_window() {
        let budgets = GuessBudgets::default();
        let start = 1_800_000_000;
        for _ in 0..BURST {
            budgets.spend("owner", start).unwrap();
        }
        assert_eq!(budgets.spend("owner", start), Err(SPACING_SECS));
        assert_eq!(budgets.spend("owner", start + 15), Err(SPACING_SECS - 15));
        // Asking every second for an hour gets one check per spacing, no more.
        let mut granted = BURST;
        for second in 1..=3600 {
            if budgets.spend("owner", start + second).is_ok() {
                granted += 1;
            }
        }
        assert_eq!(granted, BURST + 3600 / SPACING_SECS);
        // A check that found the right password is given back.
        budgets.refund("owner");
        budgets.spend("owner", start + 3600).unwrap();
        assert!(budgets.spend("owner", start + 3600).is_err());
        // Another name has its own budget; a quiet period refills it all.
        budgets.spend("other", start + 3600).unwrap();
        for _ in 0..BURST {
            budgets
                .spend("owner", start + 3600 + BURST * SPACING_SECS)
                .unwrap();
        }
        budgets.refill("owner");
        budgets
            .spend("owner", start + 3600 + BURST * SPACING_SECS)
            .unwrap();
    }

    #[test]
    fn spraying_names_neither_grows_the_map_nor_refills_an_attacked_account() {
        let budgets = GuessBudgets::default();
        let now = 1_800_000_000;
        for _ in 0..BURST {
            budgets.spend("owner", now).unwrap();
        }
        for n in 0..3 * MAX_NAMES {
            budgets.spend(&format!("sprayed{n}"), now).unwrap();
        }
        assert!(budgets.tracked() <= MAX_NAMES);
        assert!(
            budgets.spend("owner", now).is_err(),
            "the attacked account's budget was forgotten"
        );
    }
}
