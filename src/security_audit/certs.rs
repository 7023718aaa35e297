//! The checks on the TLS certificates on disk: expired (critical), expiring within 30
//! days (high), or unreadable. Self-signed certificates renew themselves, so for them
//! the fix is a restart or `aisopod cert regenerate`; files from elsewhere must be
//! replaced by their issuer.

use crate::tls::{CertInfo, TlsSummary};

use super::catalog::finding;
use super::findings::Finding;

/// How close to expiry a certificate is reported (30 days).
pub const EXPIRY_WARNING_SECS: i64 = 30 * 86_400;

/// Findings for the certificates of `summary` at `now` (unix seconds). `summary` is the
/// outcome of reading them: `Ok(None)` when TLS is off, `Err` with the reason when they
/// cannot be read.
pub fn check(summary: &Result<Option<TlsSummary>, String>, now: i64) -> Vec<Finding> {
    let summary = match summary {
        Ok(None) => return Vec::new(),
        Ok(Some(summary)) => summary,
        Err(reason) => {
            return vec![finding(
                "tls.cert_unreadable",
                reason.clone(),
                "restore the certificate files, or run `aisopod cert regenerate` (self-signed mode)",
            )];
        }
    };
    let self_signed = summary.mode == "self-signed";
    let mut found = Vec::new();
    let mut each = |what: &str, cert: &CertInfo| {
        let fix = if self_signed {
            "run `aisopod cert regenerate` (or restart the gateway, which renews it)".to_string()
        } else {
            "install a renewed certificate at [tls] cert_file and restart the gateway".to_string()
        };
        let left = cert.not_after_unix - now;
        if left <= 0 {
            found.push(finding(
                "tls.cert_expired",
                format!(
                    "the {what} certificate {} (sha256 {}) expired at {}",
                    cert.subject, cert.sha256, cert.not_after
                ),
                fix,
            ));
        } else if left < EXPIRY_WARNING_SECS {
            found.push(finding(
                "tls.cert_expiring",
                format!(
                    "the {what} certificate {} (sha256 {}) expires at {}, in {} days",
                    cert.subject,
                    cert.sha256,
                    cert.not_after,
                    left / 86_400
                ),
                fix,
            ));
        }
    };
    each("server", &summary.server);
    if let Some(ca) = &summary.ca {
        each("device CA", ca);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(not_after_unix: i64) -> CertInfo {
        CertInfo {
            subject: "CN=aisopod".into(),
            sha256: "AB:CD".into(),
            names: Vec::new(),
            not_before: String::new(),
            not_after: "then".into(),
            not_before_unix: 0,
            not_after_unix,
        }
    }

    fn summary(mode: &str, server: i64, ca: Option<i64>) -> Result<Option<TlsSummary>, String> {
        Ok(Some(TlsSummary {
            mode: mode.into(),
            ca: ca.map(cert),
            server: cert(server),
            renews_after: None,
        }))
    }

    fn ids(found: &[Finding]) -> Vec<&str> {
        found.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn expired_is_critical_and_under_30_days_is_high() {
        let now = 1_000_000_000;
        assert!(
            check(
                &summary("self-signed", now + 31 * 86_400, Some(now + 9_000 * 86_400)),
                now
            )
            .is_empty()
        );
        let soon = check(&summary("files", now + 29 * 86_400, None), now);
        assert_eq!(ids(&soon), ["tls.cert_expiring"]);
        assert!(soon[0].evidence.contains("in 29 days"));
        assert!(soon[0].fix.contains("cert_file"));
        let gone = check(&summary("self-signed", now + 86_400, Some(now)), now);
        assert_eq!(ids(&gone), ["tls.cert_expiring", "tls.cert_expired"]);
        assert!(gone[1].evidence.contains("device CA"));
    }

    #[test]
    fn tls_off_has_no_certificate_finding_and_unreadable_files_are_high() {
        assert!(check(&Ok(None), 0).is_empty());
        assert_eq!(
            ids(&check(&Err("no such file".into()), 0)),
            ["tls.cert_unreadable"]
        );
    }
}
