//! The systemd unit: systemd's own checks pass and its hardening scores as intended.

use std::process::Command;

use crate::support::{BIN, stderr, stdout};

const UNIT: &str = include_str!("../../systemd/aisopod.service");

/// The unit with ExecStart pointing at the binary under test, in a temporary directory
/// (`systemd-analyze verify` checks that the executable exists).
fn unit_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aisopod.service");
    std::fs::write(&path, UNIT.replace("/usr/bin/aisopod", BIN)).unwrap();
    (dir, path)
}

fn systemd_analyze(args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("systemd-analyze is missing ({e}): install Debian's systemd package (scripts/setup does)"))
}

#[test]
fn the_unit_passes_systemd_analyze_verify_without_warnings() {
    let (_dir, path) = unit_file();
    let out = systemd_analyze(&["verify", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let warnings: Vec<&str> = std::str::from_utf8(&out.stderr)
        .unwrap()
        .lines()
        .filter(|l| l.contains("aisopod.service"))
        .collect();
    assert!(
        warnings.is_empty(),
        "systemd-analyze verify warned:\n{}",
        warnings.join("\n")
    );
}

#[test]
fn the_unit_exposure_score_is_at_most_3() {
    let (_dir, path) = unit_file();
    let out = systemd_analyze(&["security", "--offline=true", path.to_str().unwrap()]);
    let text = stdout(&out);
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for aisopod.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{text}\n{}", stderr(&out)));
    eprintln!("systemd-analyze security --offline=true: exposure {score}");
    assert!(score <= 3.0, "exposure {score} > 3.0:\n{text}");
    for directive in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "User=aisopod",
        "Type=notify",
        "MemoryMax=",
    ] {
        assert!(
            UNIT.lines().any(|l| l.starts_with(directive)),
            "{directive} missing"
        );
    }
}
