//! Whether code execution is available right now: the one state value `/ready`, the
//! admin socket and tool calls read. It owns only the state and its wire form (the
//! strings `/ready` has always shown); it never probes the kernel or runs anything.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The sandbox's state, from start-up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxStatus {
    /// The runner exists and its start-up self-test has not answered yet.
    Checking,
    /// The self-test passed: runs are served.
    Ok,
    /// `[tools.sandbox] enabled = false`.
    Disabled,
    /// No runs: the reason, fit for the operator (no secret, no internals beyond the
    /// kernel feature or self-test result that failed).
    Unavailable(String),
}

impl SandboxStatus {
    /// True only when runs are served.
    pub fn is_ok(&self) -> bool {
        matches!(self, SandboxStatus::Ok)
    }
}

impl std::fmt::Display for SandboxStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SandboxStatus::Checking => f.write_str("checking"),
            SandboxStatus::Ok => f.write_str("ok"),
            SandboxStatus::Disabled => f.write_str("disabled"),
            SandboxStatus::Unavailable(reason) => write!(f, "unavailable: {reason}"),
        }
    }
}

/// Written as the same strings as before the state was a type, so `/ready` readers
/// and scripts see no change.
impl Serialize for SandboxStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Read back from the same strings (the admin socket's `status` answer carries it).
impl<'de> Deserialize<'de> for SandboxStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match text.as_str() {
            "checking" => SandboxStatus::Checking,
            "ok" => SandboxStatus::Ok,
            "disabled" => SandboxStatus::Disabled,
            other => SandboxStatus::Unavailable(
                other
                    .strip_prefix("unavailable: ")
                    .unwrap_or(other)
                    .to_string(),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_keeps_the_wire_string_ready_has_always_shown() {
        for (status, wire) in [
            (SandboxStatus::Checking, "checking"),
            (SandboxStatus::Ok, "ok"),
            (SandboxStatus::Disabled, "disabled"),
            (
                SandboxStatus::Unavailable("no user namespaces".into()),
                "unavailable: no user namespaces",
            ),
        ] {
            assert_eq!(serde_json::to_value(&status).unwrap(), wire);
            assert_eq!(status.to_string(), wire);
            assert_eq!(
                serde_json::from_value::<SandboxStatus>(wire.into()).unwrap(),
                status
            );
        }
        assert!(SandboxStatus::Ok.is_ok());
        assert!(!SandboxStatus::Checking.is_ok());
    }
}
