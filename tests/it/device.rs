//! The device authorization grant (RFC 8628) end to end: our own `aisopod login
//! --device` client against a real gateway, the protocol's answers to raw polls, the
//! approval page, and the CA pin.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};

use crate::support::{BIN, Gateway, OWNER_PW, Setup, stdout, version_of};

const CONFIG: &str = "[rate_limit]\nauth_per_minute = 1000\nauth_burst = 1000\n[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1\ndevice_poll_interval = \"1s\"";

fn gateway_with_owner(extra: &str) -> (Setup, Gateway) {
    let setup = Setup::new(extra);
    setup.add_owner();
    let gateway = setup.start();
    (setup, gateway)
}

fn approve(
    gateway: &Gateway,
    user_code: &str,
    action: &str,
    password: &str,
) -> (StatusCode, String) {
    let response = gateway
        .client()
        .post(format!("{}/device", gateway.url))
        .form(&[
            ("user_code", user_code),
            ("username", "owner"),
            ("password", password),
            ("action", action),
        ])
        .send()
        .unwrap();
    (response.status(), response.text().unwrap())
}

fn ca_fingerprint(setup: &Setup) -> String {
    let shown: Value =
        serde_json::from_slice(&setup.cli(&["cert", "show", "--json"]).stdout).unwrap();
    shown["ca"]["sha256"].as_str().unwrap().to_string()
}

#[test]
fn the_cli_signs_in_with_a_pinned_ca_after_approval_on_the_page() {
    let (setup, gateway) = gateway_with_owner(CONFIG);
    let fingerprint = ca_fingerprint(&setup);
    let credentials = setup.dir.path().join("home/credentials");
    let mut child = Command::new(BIN)
        .args([
            "login",
            "--device",
            &gateway.url,
            "--fingerprint",
            &fingerprint.to_lowercase(),
            "--scopes",
            "chat:read",
        ])
        .arg("--credentials")
        .arg(&credentials)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut user_code = String::new();
    let mut seen = String::new();
    for _ in 0..200 {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if let Some(code) = line.split("enter the code").nth(1) {
            user_code = code.trim().to_string();
            break;
        }
    }
    assert_eq!(user_code.len(), 9, "no user code in:\n{seen}");
    // The page shows who asks, escaped.
    let page = gateway
        .client()
        .get(format!("{}/device?user_code={user_code}", gateway.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("aisopod-cli") && page.contains("chat:read"),
        "{page}"
    );
    let (status, retry) = approve(&gateway, &user_code, "approve", "wrong password here");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The same form again, with the error, the code and the username kept (issue 10).
    assert!(
        retry.contains("Invalid username or password")
            && retry.contains("<form method=\"post\" action=\"/device\">")
            && retry.contains(&format!("value=\"{user_code}\""))
            && retry.contains("value=\"owner\"")
            && retry.contains("aisopod-cli"),
        "{retry}"
    );
    let (status, body) = approve(&gateway, &user_code.to_lowercase(), "approve", OWNER_PW);
    assert_eq!(status, StatusCode::OK, "{body}");
    let finished = crate::support::wait_timeout(&mut child, Duration::from_secs(20))
        .expect("login did not finish");
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    assert!(finished.success(), "{seen}{rest}");
    assert_eq!(
        std::fs::metadata(&credentials)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let stored: Value = serde_json::from_slice(&std::fs::read(&credentials).unwrap()).unwrap();
    let entry = &stored[gateway.url.as_str()];
    assert_eq!(entry["ca_sha256"], fingerprint.as_str());
    let token = entry["access_token"].as_str().unwrap();
    let me: Value = gateway
        .client()
        .get(format!("{}/api/v1/me", gateway.url))
        .bearer_auth(token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["username"], "owner");
    assert_eq!(
        me["scopes"],
        json!(["chat:read"]),
        "the approver granted only what was asked"
    );
    let audit = stdout(&setup.cli(&["audit", "export"]));
    assert!(audit.contains("auth.device_decision") && audit.contains("auth.device_token"));
}

#[test]
fn a_wrong_fingerprint_stops_the_login_before_anything_is_sent() {
    let (setup, gateway) = gateway_with_owner(CONFIG);
    let out = Command::new(BIN)
        .args([
            "login",
            "--device",
            &gateway.url,
            "--fingerprint",
            &"AB:".repeat(31).to_string(),
            "--credentials",
        ])
        .arg(setup.dir.path().join("creds"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to continue"));
    assert!(!setup.dir.path().join("creds").exists());
}

#[test]
fn raw_polls_get_the_rfc_8628_answers() {
    let (_setup, gateway) = gateway_with_owner(CONFIG);
    let client = gateway.client();
    let start = || -> Value {
        client
            .post(format!("{}/auth/device/code", gateway.url))
            .form(&[("client_id", "python-client")])
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let poll = |device_code: &str| -> (StatusCode, Value) {
        let response = client
            .post(format!("{}/auth/token", gateway.url))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", device_code),
                ("client_id", "python-client"),
            ])
            .send()
            .unwrap();
        (response.status(), response.json().unwrap())
    };
    let started = start();
    for key in [
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    ] {
        assert!(!started[key].is_null(), "{key} missing: {started}");
    }
    let code = started["user_code"].as_str().unwrap();
    assert!(
        code.chars()
            .filter(|c| *c != '-')
            .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)),
        "{code}"
    );
    let device = started["device_code"].as_str().unwrap();
    assert_eq!(
        poll(device),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "authorization_pending", "error_description": "the code has not been approved yet"})
        )
    );
    assert_eq!(poll(device).1["error"], "slow_down");
    // slow_down adds 5 s to the 1 s interval: once the gateway's clock is past it, a
    // poll is answered normally again.
    gateway.advance_clock(Duration::from_millis(6100));
    assert_eq!(poll(device).1["error"], "authorization_pending");
    approve(&gateway, code, "deny", OWNER_PW);
    assert_eq!(poll(device).1["error"], "access_denied");
    assert_eq!(
        poll(device).1["error"],
        "invalid_grant",
        "a denied code is gone"
    );
    let (status, body) = poll("aisd_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let other = client
        .post(format!("{}/auth/token", gateway.url))
        .form(&[("grant_type", "password")])
        .send()
        .unwrap();
    assert_eq!(
        other.json::<Value>().unwrap()["error"],
        "unsupported_grant_type"
    );
    let missing = client
        .post(format!("{}/auth/device/code", gateway.url))
        .form(&[("scope", "chat:read")])
        .send()
        .unwrap();
    assert_eq!(missing.json::<Value>().unwrap()["error"], "invalid_request");
    let bad_scope = client
        .post(format!("{}/auth/device/code", gateway.url))
        .form(&[("client_id", "x"), ("scope", "root")])
        .send()
        .unwrap();
    assert_eq!(bad_scope.json::<Value>().unwrap()["error"], "invalid_scope");
}

#[test]
fn the_page_escapes_what_clients_send_and_guessing_codes_is_limited() {
    let (_setup, gateway) =
        gateway_with_owner("[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1");
    let client = gateway.client();
    let started: Value = client
        .post(format!("{}/auth/device/code", gateway.url))
        .form(&[("client_id", "<script>alert(1)</script>")])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let code = started["user_code"].as_str().unwrap();
    let page = client
        .get(format!("{}/device?user_code={code}", gateway.url))
        .send()
        .unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().unwrap();
    assert!(
        html.contains("&lt;script&gt;") && !html.contains("<script>"),
        "{html}"
    );
    // Guessing user codes from one address runs into the limit quickly.
    let mut limited = false;
    for i in 0..20 {
        let (status, _) = approve(&gateway, &format!("BBBB-BC{i:02}"), "approve", OWNER_PW);
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "20 guesses in a row were not limited");
}

/// A standard OAuth client library (Python's Authlib, installed by scripts/setup) gets
/// tokens through the device flow and uses them.
#[test]
fn a_standard_oauth_library_completes_the_device_flow() {
    let (_setup, gateway) = gateway_with_owner(CONFIG);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/clients/authlib_device.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .arg(&gateway.url)
        .arg(gateway.data_dir.join("tls/ca.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed (scripts/setup installs Authlib)");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let user_code = line
        .strip_prefix("USER_CODE ")
        .unwrap_or_else(|| panic!("unexpected: {line}"))
        .trim()
        .to_string();
    let (status, _) = approve(&gateway, &user_code, "approve", OWNER_PW);
    assert_eq!(status, StatusCode::OK);
    let status = crate::support::wait_timeout(&mut child, Duration::from_secs(30))
        .expect("the Authlib client did not finish");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{rest}{err}");
    assert!(rest.contains("TOKEN_TYPE Bearer"), "{rest}");
    assert!(rest.contains("ME owner chat:read"), "{rest}");
}

/// Issue 10 item 11: HTTP/2 requests carry no `Host`; the authority they carry must
/// still give the verification URI its port.
#[test]
fn verification_uri_keeps_the_port_over_http2_and_http1() {
    let (_setup, gateway) = gateway_with_owner(CONFIG);
    for http1 in [false, true] {
        let client = gateway.client_speaking(version_of(http1), "127.0.0.1");
        let response = client
            .post(format!("{}/auth/device/code", gateway.url))
            .form(&[("client_id", "cli")])
            .send()
            .unwrap();
        let expected = version_of(http1);
        assert_eq!(response.version(), expected);
        let body: Value = response.json().unwrap();
        assert_eq!(
            body["verification_uri"],
            format!("{}/device", gateway.url),
            "{expected:?}"
        );
        let complete = body["verification_uri_complete"].as_str().unwrap();
        assert!(
            complete.starts_with(&format!("{}/device?user_code=", gateway.url)),
            "{complete}"
        );
    }

    // A configured public_url wins over whatever the request says.
    let (_setup, gateway) = gateway_with_owner(&format!(
        "public_url = \"https://pi.example:8443\"\n{CONFIG}"
    ));
    let body: Value = gateway
        .client()
        .post(format!("{}/auth/device/code", gateway.url))
        .form(&[("client_id", "cli")])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["verification_uri"], "https://pi.example:8443/device");
}

/// Issue 10, item 3: on production defaults one address cannot hold the device's pending
/// grants: its flood is refused (429 with `Retry-After`) while another address still
/// gets a code, over HTTP/1.1 and HTTP/2.
#[test]
fn one_address_flooding_device_codes_does_not_block_another() {
    let (_setup, gateway) = gateway_with_owner("");
    let client = |address: &str, http1: bool| gateway.client_speaking(version_of(http1), address);
    let code = |client: &reqwest::blocking::Client| {
        client
            .post(format!("{}/auth/device/code", gateway.url))
            .form(&[("client_id", "flood")])
            .send()
            .unwrap()
    };
    for (flooder, other, http1) in [
        ("127.0.0.40", "127.0.0.41", true),
        ("127.0.0.42", "127.0.0.43", false),
    ] {
        let flooding = client(flooder, http1);
        let mut granted = 0;
        for _ in 0..50 {
            let response = code(&flooding);
            match response.status() {
                StatusCode::OK => granted += 1,
                StatusCode::TOO_MANY_REQUESTS => {
                    assert!(response.headers().contains_key("retry-after"));
                }
                other => panic!("unexpected {other}"),
            }
        }
        assert!(granted <= 5, "{flooder} got {granted} codes");
        let response = code(&client(other, http1));
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().unwrap();
        assert!(body["user_code"].as_str().is_some());
    }
}
