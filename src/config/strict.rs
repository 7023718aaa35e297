//! Strict mode's rules: what `[security] mode = "strict"` refuses, each naming the key to
//! change, and the key-file permission check it relies on.

use std::path::Path;

use super::common::*;
use super::issue::ConfigIssue;
use super::settings::*;

impl Config {
    /// What strict mode refuses, each naming the key to change.
    pub fn strict_violations(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut refuse = |key: &str, message: String| {
            issues.push(ConfigIssue {
                key: key.into(),
                message: format!("{message} (or set [security] mode = \"local\")"),
            })
        };
        if self.auth.mode == AuthMode::None {
            refuse(
                "auth.mode",
                "strict mode refuses auth mode \"none\": choose \"password\", \"token\" or \"device\"".into(),
            );
        }
        if self.tls.mode == TlsMode::Off && !self.server.bind.ip().is_loopback() {
            refuse(
                "tls.mode",
                format!(
                    "strict mode refuses TLS off on the non-loopback address {}: use mode \"self-signed\" or \"files\", or bind to 127.0.0.1",
                    self.server.bind
                ),
            );
        }
        if !self.pairing.confirm {
            refuse(
                "pairing.confirm",
                "strict mode refuses pairing without confirmation: remove `confirm = false` from [pairing]".into(),
            );
        }
        if self.security.cors_origins.iter().any(|o| o == "*") {
            refuse(
                "security.cors_origins",
                "strict mode refuses the wildcard origin \"*\": list the exact origins".into(),
            );
        }
        for (key, secret) in [
            ("auth.token", &self.auth.token),
            ("auth.jwt_secret", &self.auth.jwt_secret),
        ] {
            if let Some(secret) = secret
                && secret.len() < MIN_SECRET_BYTES
            {
                refuse(
                    key,
                    format!(
                        "strict mode refuses a secret of {} bytes: use at least {MIN_SECRET_BYTES} (aisopod auth gen-secret makes one)",
                        secret.len()
                    ),
                );
            }
        }
        if let TlsMode::Files { key, .. } = &self.tls.mode
            && let Some(problem) = key_file_problem(key)
        {
            refuse("tls.key_file", problem);
        }
        let sandbox = &self.tools.sandbox;
        if sandbox.enabled && sandbox.runtime == SandboxRuntime::None {
            refuse(
                "tools.sandbox.runtime",
                "strict mode refuses runtime \"none\", which runs tool code without any isolation: use \"namespaces\", or set enabled = false".into(),
            );
        }
        issues
    }
}

/// Why a private key file is unacceptable in strict mode, if it is: missing, unreadable,
/// or readable by group or others.
pub fn key_file_problem(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Err(err) => Some(format!("cannot read key file {}: {err}", path.display())),
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => Some(format!(
            "key file {} has mode {:o}, readable by group or others: run chmod 600 on it",
            path.display(),
            meta.permissions().mode() & 0o777
        )),
        Ok(_) => None,
    }
}
