//! What an audit reports: the severities, one finding (a stable id, a title, the
//! evidence seen and the fix), and the report that gathers them with what `--fix` did.
//! This file only holds and renders findings; it never looks at the machine.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How bad a finding is, from worst to merely informative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }

    /// Whether a finding of this severity makes `security audit` exit 1.
    pub fn fails(self) -> bool {
        matches!(self, Severity::Critical | Severity::High)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One problem (or fact) the audit found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable across releases, dotted (`files.master_key_mode`); documented in the book.
    pub id: String,
    pub severity: Severity,
    pub title: String,
    /// What was seen: a path and its mode, a config key and its value, a token's id.
    /// Never a secret.
    pub evidence: String,
    /// What to do about it.
    pub fix: String,
}

impl Finding {
    pub fn new(
        id: &str,
        severity: Severity,
        title: impl Into<String>,
        evidence: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            id: id.to_string(),
            severity,
            title: title.into(),
            evidence: evidence.into(),
            fix: fix.into(),
        }
    }
}

/// The version of [`Report`]'s JSON shape; it changes only when a field changes meaning
/// or goes away.
pub const REPORT_VERSION: u32 = 1;

/// Counts per severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub info: usize,
}

/// An audit's outcome: the findings, worst first, and what `--fix` repaired before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    /// When the audit ran (RFC 3339, UTC).
    pub generated: String,
    pub summary: Summary,
    pub findings: Vec<Finding>,
    /// What `--fix` changed, one line each (empty without `--fix`).
    #[serde(default)]
    pub fixed: Vec<String>,
}

impl Report {
    /// A report of `findings`, sorted worst first (then by id, so runs compare).
    pub fn new(generated: String, mut findings: Vec<Finding>, fixed: Vec<String>) -> Report {
        findings.sort_by(|a, b| (a.severity, &a.id).cmp(&(b.severity, &b.id)));
        let mut summary = Summary::default();
        for finding in &findings {
            let count = match finding.severity {
                Severity::Critical => &mut summary.critical,
                Severity::High => &mut summary.high,
                Severity::Medium => &mut summary.medium,
                Severity::Low => &mut summary.low,
                Severity::Info => &mut summary.info,
            };
            *count += 1;
        }
        Report {
            version: REPORT_VERSION,
            generated,
            summary,
            findings,
            fixed,
        }
    }

    /// This report with `findings` and `fixed` lines added, sorted and counted again.
    pub fn extended(self, findings: Vec<Finding>, fixed: Vec<String>) -> Report {
        let mut all = self.findings;
        all.extend(findings);
        let mut done = fixed;
        done.extend(self.fixed);
        Report::new(self.generated, all, done)
    }

    /// Whether any finding is high or critical (`security audit` then exits 1).
    pub fn fails(&self) -> bool {
        self.findings.iter().any(|f| f.severity.fails())
    }

    /// The ids found, in report order.
    pub fn ids(&self) -> Vec<&str> {
        self.findings.iter().map(|f| f.id.as_str()).collect()
    }

    /// The report for people: what `--fix` did, then the findings grouped by severity,
    /// each with its evidence and fix, then the counts.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.fixed {
            out.push_str(&format!("fixed: {line}\n"));
        }
        if !self.fixed.is_empty() {
            out.push('\n');
        }
        for severity in Severity::ALL {
            let group: Vec<&Finding> = self
                .findings
                .iter()
                .filter(|f| f.severity == severity)
                .collect();
            if group.is_empty() {
                continue;
            }
            out.push_str(&format!(
                "{} ({})\n",
                severity.name().to_uppercase(),
                group.len()
            ));
            for finding in group {
                out.push_str(&format!("  [{}] {}\n", finding.id, finding.title));
                out.push_str(&format!("      evidence: {}\n", finding.evidence));
                out.push_str(&format!("      fix:      {}\n", finding.fix));
            }
            out.push('\n');
        }
        let s = &self.summary;
        out.push_str(&format!(
            "{} critical, {} high, {} medium, {} low, {} info\n",
            s.critical, s.high, s.medium, s.low, s.info
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &str, severity: Severity) -> Finding {
        Finding::new(id, severity, "t", "e", "f")
    }

    #[test]
    fn a_report_sorts_worst_first_and_fails_only_on_high_or_critical() {
        let report = Report::new(
            "now".into(),
            vec![
                finding("b.low", Severity::Low),
                finding("a.high", Severity::High),
                finding("c.crit", Severity::Critical),
            ],
            Vec::new(),
        );
        assert_eq!(report.ids(), ["c.crit", "a.high", "b.low"]);
        assert!(report.fails());
        assert_eq!(report.summary.high, 1);
        let calm = Report::new(
            "now".into(),
            vec![finding("x", Severity::Medium), finding("y", Severity::Info)],
            Vec::new(),
        );
        assert!(!calm.fails());
    }

    #[test]
    fn the_rendering_groups_by_severity_with_evidence_and_fix() {
        let report = Report::new(
            "now".into(),
            vec![
                Finding::new(
                    "files.master_key_mode",
                    Severity::High,
                    "master.key is readable by others",
                    "/d/master.key has mode 644",
                    "chmod 600 /d/master.key",
                ),
                finding("build.no_advisory_db", Severity::Info),
            ],
            vec!["chmod 600 /d/master.key (was 644)".into()],
        );
        let text = report.render();
        assert!(text.starts_with("fixed: chmod 600 /d/master.key (was 644)\n"));
        let high = text.find("HIGH (1)").unwrap();
        let info = text.find("INFO (1)").unwrap();
        assert!(high < info);
        assert!(text.contains("evidence: /d/master.key has mode 644"));
        assert!(text.contains("fix:      chmod 600 /d/master.key"));
        assert!(text.ends_with("0 critical, 1 high, 0 medium, 0 low, 1 info\n"));
    }
}
