//! The issue list validation writes into, with the range checks every table uses.

use std::time::Duration;

use crate::config::issue::ConfigIssue;

pub(super) const KIB: u64 = 1024;
pub(super) const MIB: u64 = 1024 * 1024;

pub(super) struct Issues<'a>(pub(super) &'a mut Vec<ConfigIssue>);

impl Issues<'_> {
    pub(super) fn push(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(ConfigIssue {
            key: key.into(),
            message: message.into(),
        });
    }

    pub(super) fn range(&mut self, key: &str, value: u64, min: u64, max: u64) -> u64 {
        if value < min || value > max {
            self.push(
                key,
                format!("{value} is out of range: must be between {min} and {max}"),
            );
        }
        value.clamp(min, max)
    }

    pub(super) fn duration(
        &mut self,
        key: &str,
        value: Duration,
        min: Duration,
        max: Duration,
    ) -> Duration {
        if value < min || value > max {
            self.push(
                key,
                format!(
                    "{} is out of range: must be between {} and {}",
                    humantime::format_duration(value),
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ),
            );
        }
        value.clamp(min, max)
    }
}
