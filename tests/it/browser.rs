//! The pairing page in a real browser: headless Chromium (Debian's `chromium`, driven by
//! npm's `playwright-core` from tests/browser) opens the URL read off the simulated
//! OLED, makes its non-extractable WebCrypto key, claims, shows the confirmation code,
//! and finishes after the simulated button press. The secret must leave no trace in the
//! server's log, in any request the browser made, or in a `Referer`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::hardware::Board;
use crate::support::Setup;

const FAST: &str = "[rate_limit]\nauth_per_minute = 1000\nauth_burst = 1000\napi_per_minute = 10000\napi_burst = 1000\n[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1\n[hardware]\nlong_press = \"500ms\"";

/// Why the browser cannot run here, if it cannot.
pub fn unavailable(dir: &Path) -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!(
            "{chromium} is not installed (scripts/setup installs it)"
        ));
    }
    if !dir.join("node_modules/playwright-core").exists() {
        return Some("tests/browser has no node_modules (scripts/setup runs npm ci)".into());
    }
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|out| out.status.success()) {
        return Some("node is not installed".into());
    }
    None
}

#[test]
fn chromium_pairs_from_the_oled_qr_with_a_non_extractable_key_after_the_button_press() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if let Some(why) = unavailable(&dir) {
        crate::support::missing_tool(&why);
        return;
    }
    let board = Board::default();
    let setup = Setup::new(FAST);
    setup.add_owner();
    let gateway = setup.start_on(board.devices());
    let app = gateway.app.clone().unwrap();
    let limit = std::time::Duration::from_secs(5);
    crate::hardware::wait_for("the display is drawn", limit, || {
        board.oled.written() >= 1024
    });
    board.button.long();
    let mut codes = Vec::new();
    crate::hardware::wait_for("the OLED shows the QR", limit, || {
        codes = board.oled.codes();
        !codes.is_empty()
    });
    let payload = codes.remove(0);
    let secret = payload.rsplit_once('#').unwrap().1.to_string();
    let host = format!(
        "{}.local",
        nix::unistd::gethostname().unwrap().to_str().unwrap()
    );

    let mut browser = Command::new("node")
        .arg("pair.mjs")
        .args([payload.as_str(), host.as_str(), "chromium phone"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let mut next = || -> Value {
        let line = lines.next().expect("the browser reports").unwrap();
        let step: Value = serde_json::from_str(&line).unwrap();
        assert_ne!(step["step"], "failed", "{step}");
        step
    };
    let shown = next();
    assert_eq!(shown["step"], "code", "{shown}");
    // The page dropped the fragment from the address bar before it claimed.
    let href = shown["href"].as_str().unwrap();
    assert!(!href.contains('#') && !href.contains(&secret), "{href}");
    // The display names the same phone and code the page shows; the press confirms it.
    match app.pairing.showing() {
        Some(aisopod::pairing::Showing::Confirm { device, code, .. }) => {
            assert_eq!(device, "chromium phone");
            assert_eq!(code, shown["code"].as_str().unwrap());
        }
        other => panic!("{other:?}"),
    }
    board.button.short();
    let paired = next();
    assert_eq!(paired["step"], "paired", "{paired}");
    assert!(browser.wait().unwrap().success());
    assert_eq!(paired["extractable"], false, "{paired}");
    assert_eq!(paired["exported"], "refused", "{paired}");
    assert_eq!(paired["curve"], "P-256");
    let device_id = paired["device_id"].as_str().unwrap();
    let listed = app.services.auth.paired.list().unwrap();
    assert!(
        listed
            .iter()
            .any(|d| d.id == device_id && d.name == "chromium phone")
    );

    // No trace of the secret: not in a request the browser made, not in a Referer, not
    // in the server's log.
    let requests = paired["requests"].as_array().unwrap();
    assert!(requests.len() >= 3, "{requests:?}");
    for request in requests {
        assert!(
            !request["url"].as_str().unwrap().contains(&secret),
            "{request}"
        );
        assert!(
            request["referer"].is_null(),
            "no Referer is sent: {request}"
        );
    }
    let log = gateway.log_text();
    assert!(log.contains("/pair/claim"), "the claim is in the log");
    assert!(!log.contains(&secret), "the secret is not in the log");
}
