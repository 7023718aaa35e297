//! The password blocklist's memory: a running gateway estimates password strength in a
//! short-lived child of its own binary, so the common-password table never stays in it,
//! and the child's verdicts are the in-process ones.

use std::path::PathBuf;

use aisopod::auth::password::{PasswordError, Passwords};
use aisopod::config::PasswordConfig;
use aisopod::secret::Secret;

use crate::support::{BIN, Setup, stderr};

fn config() -> PasswordConfig {
    PasswordConfig {
        min_length: 15,
        max_length: 128,
        argon2_memory_kib: 8 * 1024,
        argon2_iterations: 1,
        argon2_parallelism: 1,
        max_concurrent_hashes: 1,
    }
}

#[test]
fn the_helper_judges_as_the_process_does_and_a_broken_one_falls_back() {
    let in_process = Passwords::new(&config());
    let helped = Passwords::new(&config());
    helped.estimate_in(PathBuf::from(BIN));
    let broken = Passwords::new(&config());
    broken.estimate_in(PathBuf::from("/bin/false"));
    for (password, weak) in [
        ("passwordpassword", true),
        ("qwertyuiopasdfgh", true),
        ("alicealicealice1", true),
        ("1qaz2wsx3edc4rfv", true),
        ("correct horse battery staple", false),
        ("walrus cinnamon lantern quietly", false),
        ("ñandú-sobre-el-hielo-azul", false),
    ] {
        let secret = Secret::new(password);
        let expected = in_process.check_policy(&secret, &["alice"]);
        assert_eq!(expected.is_err(), weak, "{password}");
        for passwords in [&helped, &broken] {
            assert_eq!(
                passwords.check_policy(&secret, &["alice"]),
                expected,
                "{password}"
            );
        }
    }
    assert_eq!(
        helped.check_policy(
            &Secret::new("alice-in-wonderland"),
            &["alice-in-wonderland"]
        ),
        Err(PasswordError::TooCommon),
        "the context words reach the helper"
    );
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn checking_passwords_leaves_no_blocklist_in_the_gateways_memory() {
    let setup = Setup::new("[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1");
    let gateway = setup.start_process();
    assert!(gateway.get("/ready").status().is_success());
    let before = rss_kib(gateway.pid());
    // Refused by the policy before any hashing: only the strength estimate runs.
    for weak in ["passwordpassword", "qwertyuiopasdfgh", "iloveyouiloveyou"] {
        let refused = setup.cli_with(
            &["user", "add", "--admin", "owner", "--password-stdin"],
            &[],
            Some(weak.as_bytes()),
        );
        assert_eq!(refused.status.code(), Some(1), "{weak}");
        assert!(
            stderr(&refused).contains("too common"),
            "{}",
            stderr(&refused)
        );
    }
    let after = rss_kib(gateway.pid());
    // zxcvbn's tables, when they were built in the gateway, added about 7,800 KiB.
    assert!(
        after < before + 3 * 1024,
        "the gateway grew from {before} KiB to {after} KiB"
    );
}
