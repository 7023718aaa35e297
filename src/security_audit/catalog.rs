//! Every finding the audit can report: its stable id, severity and title, in one table
//! that the checks, the book (`docs/src/security-audit.md`) and the tests share. This
//! file only holds the table; it never inspects anything.

use super::findings::{Finding, Severity};

/// `(id, severity, title)` for each finding, grouped by area.
pub const CATALOG: &[(&str, Severity, &str)] = &[
    // Binds and authentication
    (
        "auth.none_exposed",
        Severity::Critical,
        "authentication is off on an address the network reaches",
    ),
    ("auth.none_local", Severity::Medium, "authentication is off"),
    (
        "tls.off_exposed",
        Severity::High,
        "TLS is off on an address the network reaches",
    ),
    ("tls.off_local", Severity::Low, "TLS is off (loopback only)"),
    (
        "security.local_mode",
        Severity::Medium,
        "strict mode is off on an address the network reaches",
    ),
    (
        "pairing.no_confirmation",
        Severity::High,
        "pairing does not ask the owner to confirm a new device",
    ),
    // Secrets
    ("secret.short", Severity::High, "a secret is too short"),
    ("secret.weak", Severity::High, "a secret is easy to guess"),
    (
        "secret.reused",
        Severity::High,
        "the same secret is used in two places",
    ),
    (
        "secret.equals_token",
        Severity::Critical,
        "a secret is also a working API token",
    ),
    (
        "secret.inline_in_config",
        Severity::Medium,
        "a secret is written into the config file",
    ),
    // Files
    (
        "files.data_dir_mode",
        Severity::High,
        "the data directory is open to other users",
    ),
    (
        "files.master_key_mode",
        Severity::Critical,
        "master.key is readable or writable by other users",
    ),
    (
        "files.tls_key_mode",
        Severity::High,
        "a TLS private key is readable or writable by other users",
    ),
    (
        "files.config_writable",
        Severity::High,
        "the config file is writable by other users",
    ),
    (
        "files.config_readable",
        Severity::Medium,
        "the config file holds secrets and is readable by other users",
    ),
    // TLS certificates
    (
        "tls.cert_expired",
        Severity::Critical,
        "a certificate has expired",
    ),
    (
        "tls.cert_expiring",
        Severity::High,
        "a certificate expires within 30 days",
    ),
    (
        "tls.cert_unreadable",
        Severity::High,
        "the TLS certificate cannot be read",
    ),
    // CORS and proxies
    ("cors.wildcard", Severity::High, "CORS allows every origin"),
    (
        "cors.plain_http_origin",
        Severity::Low,
        "CORS allows an origin over plain HTTP",
    ),
    (
        "proxy.trust_all",
        Severity::Critical,
        "every address is trusted as a proxy",
    ),
    (
        "proxy.private_range",
        Severity::High,
        "a whole private range is trusted as a proxy",
    ),
    // LLM upstreams
    (
        "llm.port_exposed",
        Severity::High,
        "a local LLM server answers on the network without authentication",
    ),
    (
        "llm.plain_http_upstream",
        Severity::Medium,
        "a remote LLM upstream is reached over plain HTTP",
    ),
    // Sandbox
    (
        "sandbox.disabled",
        Severity::Info,
        "code execution is disabled",
    ),
    (
        "sandbox.no_isolation",
        Severity::Critical,
        "code execution runs without any isolation",
    ),
    (
        "sandbox.layer_missing",
        Severity::High,
        "a sandbox layer is missing on this kernel",
    ),
    (
        "sandbox.cgroup_unenforced",
        Severity::High,
        "a sandbox resource limit is not enforced",
    ),
    (
        "sandbox.landlock_missing",
        Severity::Low,
        "Landlock is unavailable, so runs go without it",
    ),
    // Tokens and accounts
    (
        "token.no_expiry",
        Severity::Medium,
        "an API token never expires",
    ),
    (
        "token.admin_unused",
        Severity::Medium,
        "an admin token has not been used for 90 days",
    ),
    (
        "account.inactive",
        Severity::Low,
        "an account has not logged in for 90 days",
    ),
    // Audit log and build
    (
        "audit.chain_broken",
        Severity::Critical,
        "the audit log does not verify",
    ),
    (
        "build.no_advisory_db",
        Severity::Info,
        "this build does not check for security advisories",
    ),
];

/// The finding `id` from the catalog, with what was seen and the fix. An id missing
/// from the catalog is a programming error that the catalog's tests catch; it still
/// yields a finding (high, so it is not overlooked) rather than a panic.
pub fn finding(id: &str, evidence: impl Into<String>, fix: impl Into<String>) -> Finding {
    let (severity, title) = CATALOG
        .iter()
        .find(|(known, _, _)| *known == id)
        .map_or((Severity::High, id), |(_, severity, title)| {
            (*severity, *title)
        });
    Finding::new(id, severity, title, evidence, fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_dotted() {
        let mut ids: Vec<&str> = CATALOG.iter().map(|(id, _, _)| *id).collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count, "an id appears twice");
        assert!(count >= 30);
        for id in ids {
            assert!(
                id.split_once('.')
                    .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty()),
                "{id}"
            );
        }
    }

    #[test]
    fn the_book_documents_every_finding_with_its_severity() {
        let book = include_str!("../../docs/src/security-audit.md");
        for (id, severity, _) in CATALOG {
            let row = book
                .lines()
                .find(|line| line.starts_with(&format!("| `{id}` ")))
                .unwrap_or_else(|| panic!("{id} is not in docs/src/security-audit.md"));
            assert!(
                row.contains(&format!("| {} |", severity.name())),
                "{id}: the book's row does not say {severity}: {row}"
            );
        }
    }

    #[test]
    fn a_finding_takes_its_severity_and_title_from_the_catalog() {
        let f = finding("cors.wildcard", "cors_origins = [\"*\"]", "list origins");
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.title, "CORS allows every origin");
    }
}
