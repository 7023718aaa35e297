//! The web dashboard: its files as a browser fetches them (content types, CSP, caching
//! by version and ETag) over HTTP/1.1 and HTTP/2; browser sessions (the refresh token
//! only in an `HttpOnly` cookie on `/auth/refresh`, refused cross-site, cleared by
//! logout) next to API clients that keep theirs in the body; the audit log routes; the
//! device-flow page in the dashboard's style; and the whole dashboard in headless
//! Chromium (tests/browser/dashboard.mjs).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use http::{StatusCode, header};
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

use crate::support::{Gateway, OWNER_PW, Setup, version_of};
use crate::upstream::{Answer, Upstream};

const FAST: &str = "[rate_limit]\nauth_per_minute = 1000\nauth_burst = 1000\napi_per_minute = 10000\napi_burst = 1000\n[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1";

fn owner_gateway() -> (Setup, Gateway) {
    let setup = Setup::new(FAST);
    setup.add_owner();
    let gateway = setup.start();
    (setup, gateway)
}

fn version_in(page: &str) -> String {
    let start = page.find("/assets/").unwrap() + "/assets/".len();
    page[start..].split('/').next().unwrap().to_string()
}

fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn refresh_cookie(response: &Response) -> Option<String> {
    set_cookies(response)
        .into_iter()
        .find(|c| c.starts_with("aisopod_refresh="))
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

fn dashboard_login(client: &Client, gateway: &Gateway) -> Response {
    client
        .post(format!("{}/auth/login", gateway.url))
        .header("x-aisopod-client", "dashboard")
        .json(&json!({"username": "owner", "password": OWNER_PW}))
        .send()
        .unwrap()
}

fn cookie_refresh(
    client: &Client,
    gateway: &Gateway,
    cookie: &str,
    extra: &[(&str, &str)],
) -> Response {
    let mut request = client
        .post(format!("{}/auth/refresh", gateway.url))
        .header(header::COOKIE, format!("aisopod_refresh={cookie}"));
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().unwrap()
}

#[test]
fn the_page_and_its_assets_are_served_with_types_csp_and_caching_over_both_protocols() {
    let (_setup, gateway) = owner_gateway();
    for http1 in [true, false] {
        let version = version_of(http1);
        let client = gateway.client_speaking(version, "127.0.0.1");
        let page = client.get(format!("{}/", gateway.url)).send().unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.version(), version);
        let headers = page.headers().clone();
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        let etag = headers[header::ETAG].to_str().unwrap().to_string();
        let text = page.text().unwrap();
        assert!(text.contains("<main id=\"view\""), "{text}");
        let v = version_in(&text);

        // Unchanged: 304 with no body.
        let again = client
            .get(format!("{}/", gateway.url))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert!(again.bytes().unwrap().is_empty());

        for (file, content_type) in [
            ("app.js", "text/javascript; charset=utf-8"),
            ("chat.js", "text/javascript; charset=utf-8"),
            ("app.css", "text/css; charset=utf-8"),
            ("icon.svg", "image/svg+xml"),
        ] {
            let asset = client
                .get(format!("{}/assets/{v}/{file}", gateway.url))
                .send()
                .unwrap();
            assert_eq!(asset.status(), 200, "{file}");
            assert_eq!(
                asset.headers()[header::CONTENT_TYPE],
                content_type,
                "{file}"
            );
            assert_eq!(
                asset.headers()[header::CACHE_CONTROL],
                "public, max-age=31536000, immutable",
                "{file}"
            );
            assert!(asset.headers().contains_key(header::ETAG), "{file}");
        }
        // A page of another version, or a name that is not an asset, gets a JSON 404.
        for path in [
            "/assets/000000000000/app.js".to_string(),
            format!("/assets/{v}/secret.txt"),
            format!("/assets/{v}/..%2F..%2FCargo.toml"),
        ] {
            let missing = client.get(format!("{}{path}", gateway.url)).send().unwrap();
            assert_eq!(missing.status(), 404, "{path}");
            let body: Value = missing.json().unwrap();
            assert_eq!(body["error"]["code"], "not_found", "{path}");
        }
        let manifest = client
            .get(format!("{}/manifest.webmanifest", gateway.url))
            .send()
            .unwrap();
        assert_eq!(
            manifest.headers()[header::CONTENT_TYPE],
            "application/manifest+json"
        );
        let manifest: Value = manifest.json().unwrap();
        assert_eq!(manifest["display"], "standalone");
        assert_eq!(manifest["icons"][0]["src"], format!("/assets/{v}/icon.svg"));
    }
}

#[test]
fn a_browser_session_keeps_its_refresh_token_in_an_httponly_cookie_refused_cross_site() {
    let (_setup, gateway) = owner_gateway();
    let host = format!("127.0.0.1:{}", gateway.addr().port());
    let own_origin = format!("https://{host}");
    for http1 in [true, false] {
        let client = gateway.client_speaking(version_of(http1), "127.0.0.1");
        let login = dashboard_login(&client, &gateway);
        assert_eq!(login.status(), 200);
        let cookie = refresh_cookie(&login).expect("the login sets the refresh cookie");
        for attribute in [
            "Path=/auth/refresh",
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
        ] {
            assert!(cookie.contains(attribute), "{attribute} in {cookie}");
        }
        let body: Value = login.json().unwrap();
        assert!(body["access_token"].is_string(), "{body}");
        assert!(
            body.get("refresh_token").is_none(),
            "not readable by the page: {body}"
        );
        assert!(body.get("known_client").is_none(), "{body}");
        let token = cookie_value(&cookie);

        // Cross-site: no custom header, another Origin, or a cross-site fetch. Refused
        // before the token is looked at, so the token still works afterwards.
        for extra in [
            vec![],
            vec![
                ("x-aisopod-client", "dashboard"),
                ("origin", "https://evil.example"),
            ],
            vec![
                ("x-aisopod-client", "dashboard"),
                ("sec-fetch-site", "cross-site"),
            ],
            vec![("x-aisopod-client", "dashboard"), ("origin", "null")],
        ] {
            let refused = cookie_refresh(&client, &gateway, &token, &extra);
            assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{extra:?}");
            let body: Value = refused.json().unwrap();
            assert!(
                body["error"]["message"].as_str().unwrap().len() > 10,
                "{body}"
            );
        }
        // The owner's own page, right after: a new access token and a rotated cookie.
        let headers = [
            ("x-aisopod-client", "dashboard"),
            ("origin", own_origin.as_str()),
            ("sec-fetch-site", "same-origin"),
        ];
        let refreshed = cookie_refresh(&client, &gateway, &token, &headers);
        assert_eq!(refreshed.status(), 200);
        let rotated = cookie_value(&refresh_cookie(&refreshed).unwrap());
        assert_ne!(rotated, token);
        let body: Value = refreshed.json().unwrap();
        let access = body["access_token"].as_str().unwrap().to_string();
        assert!(body.get("refresh_token").is_none(), "{body}");
        let me = client
            .get(format!("{}/api/v1/me", gateway.url))
            .bearer_auth(&access)
            .send()
            .unwrap();
        assert_eq!(me.status(), 200);

        // Logout clears the cookie and ends the session family: the rotated cookie is dead.
        let logout = client
            .post(format!("{}/auth/logout", gateway.url))
            .bearer_auth(&access)
            .send()
            .unwrap();
        assert_eq!(logout.status(), StatusCode::NO_CONTENT);
        let cleared = refresh_cookie(&logout).unwrap();
        assert!(
            cleared.starts_with("aisopod_refresh=;") && cleared.contains("Max-Age=0"),
            "{cleared}"
        );
        let after = cookie_refresh(&client, &gateway, &rotated, &headers);
        assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
        assert!(
            refresh_cookie(&after).unwrap().contains("Max-Age=0"),
            "a dead cookie is removed"
        );
    }

    // API clients are unchanged: the refresh token in the body, no refresh cookie.
    let client = gateway.client();
    let login = client
        .post(format!("{}/auth/login", gateway.url))
        .json(&json!({"username": "owner", "password": OWNER_PW}))
        .send()
        .unwrap();
    assert!(refresh_cookie(&login).is_none());
    let body: Value = login.json().unwrap();
    let refreshed = client
        .post(format!("{}/auth/refresh", gateway.url))
        .json(&json!({"refresh_token": body["refresh_token"]}))
        .send()
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let body: Value = refreshed.json().unwrap();
    assert!(body["refresh_token"].is_string());
    let log = gateway.log_text();
    assert!(!log.contains(body["refresh_token"].as_str().unwrap()));
}

#[test]
fn the_audit_routes_filter_verify_and_export_for_admins_only() {
    let (_setup, gateway) = owner_gateway();
    let client = gateway.client();
    let login: Value = client
        .post(format!("{}/auth/login", gateway.url))
        .json(&json!({"username": "owner", "password": OWNER_PW}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let access = login["access_token"].as_str().unwrap();
    let created: Value = client
        .post(format!("{}/api/v1/tokens", gateway.url))
        .bearer_auth(access)
        .json(&json!({"name": "reader", "scopes": ["chat:read"]}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let reader = created["token"].as_str().unwrap();
    let get = |path: &str, bearer: &str| {
        client
            .get(format!("{}{path}", gateway.url))
            .bearer_auth(bearer)
            .send()
            .unwrap()
    };
    let all: Value = get("/api/v1/audit?action=auth.", access).json().unwrap();
    let records = all["records"].as_array().unwrap();
    assert!(records.iter().any(|r| r["action"] == "auth.login"), "{all}");
    assert!(
        records
            .iter()
            .all(|r| r["action"].as_str().unwrap().starts_with("auth."))
    );
    let by_actor: Value = get("/api/v1/audit?actor=user:owner&limit=1", access)
        .json()
        .unwrap();
    assert_eq!(
        by_actor["records"].as_array().unwrap().len(),
        1,
        "{by_actor}"
    );
    assert_eq!(by_actor["records"][0]["actor"], "user:owner");
    let none: Value = get("/api/v1/audit?since=2999-01-01T00:00:00Z", access)
        .json()
        .unwrap();
    assert_eq!(none["records"].as_array().unwrap().len(), 0);
    for bad in ["limit=0", "limit=5000", "since=yesterday-ish", "colour=red"] {
        let response = get(&format!("/api/v1/audit?{bad}"), access);
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().unwrap();
        assert_eq!(body["error"]["code"], "invalid_request", "{bad}: {body}");
    }

    let verified: Value = get("/api/v1/audit/verify", access).json().unwrap();
    assert_eq!(verified["ok"], true, "{verified}");
    let export = get("/api/v1/audit/export", access);
    assert_eq!(
        export.headers()[header::CONTENT_TYPE],
        "application/x-ndjson"
    );
    let text = export.text().unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 3, "{text}");
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l["hash"].is_string())
    );
    assert!(lines.last().unwrap().get("audit_seal").is_some(), "{text}");

    for path in [
        "/api/v1/audit",
        "/api/v1/audit/verify",
        "/api/v1/audit/export",
    ] {
        assert_eq!(get(path, reader).status(), 403, "{path}");
    }
    // The export itself is on the record.
    let exported: Value = get("/api/v1/audit?action=audit.exported", access)
        .json()
        .unwrap();
    assert_eq!(
        exported["records"].as_array().unwrap().len(),
        1,
        "{exported}"
    );
}

#[test]
fn the_device_flow_page_wears_the_dashboards_style_sheet_and_no_inline_code() {
    let (_setup, gateway) = owner_gateway();
    for http1 in [true, false] {
        let client = gateway.client_speaking(version_of(http1), "127.0.0.1");
        let dashboard = client
            .get(format!("{}/", gateway.url))
            .send()
            .unwrap()
            .text()
            .unwrap();
        let v = version_in(&dashboard);
        let started: Value = client
            .post(format!("{}/auth/device/code", gateway.url))
            .form(&[("client_id", "<b>printer</b>"), ("scope", "chat:read")])
            .send()
            .unwrap()
            .json()
            .unwrap();
        let code = started["user_code"].as_str().unwrap();
        for (query, focus) in [
            (String::new(), "id=\"user-code\""),
            (format!("?user_code={code}"), "id=\"username\""),
        ] {
            let page = client
                .get(format!("{}/device{query}", gateway.url))
                .send()
                .unwrap();
            assert_eq!(page.status(), 200);
            let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .to_string();
            assert!(csp.contains("default-src 'self'") && !csp.contains("unsafe"));
            let html = page.text().unwrap();
            assert!(
                html.contains(&format!(
                    "<link rel=\"stylesheet\" href=\"/assets/{v}/app.css\">"
                )),
                "{html}"
            );
            assert!(
                !html.contains("<script") && !html.contains("<style") && !html.contains("style=")
            );
            assert!(!html.contains("<b>printer"), "{html}");
            // Every field has its label, and the first empty one takes the focus.
            for id in ["user-code", "username", "password"] {
                assert!(html.contains(&format!("<label for=\"{id}\">")), "{html}");
            }
            let focused = html.split(" autofocus").next().unwrap();
            let last_id = focused.rsplit("<input ").next().unwrap();
            assert!(last_id.contains(focus), "{query}: {html}");
        }
        // A refusal is a sentence in the dashboard's alert style, with a way back.
        let refused = client
            .post(format!("{}/device", gateway.url))
            .form(&[
                ("user_code", "ZZZZ-ZZZZ"),
                ("username", "owner"),
                ("password", OWNER_PW),
                ("action", "approve"),
            ])
            .send()
            .unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let html = refused.text().unwrap();
        assert!(
            html.contains("class=\"msg error\" role=\"alert\"")
                && html.contains("That code is unknown or expired.")
                && html.contains("<a href=\"/device\">"),
            "{html}"
        );
        let css = client
            .get(format!("{}/assets/{v}/app.css", gateway.url))
            .send()
            .unwrap();
        assert_eq!(css.status(), 200);
    }
}

/// The owner's password after the browser test changes it on the Settings page.
const NEW_PW: &str = "a brand new owner passphrase, 77 lanterns";

#[test]
fn chromium_runs_the_dashboard_from_setup_to_logout() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if let Some(why) = crate::browser::unavailable(&dir) {
        crate::support::missing_tool(&why);
        return;
    }
    let (_runtime, up) = Upstream::on_own_runtime();
    let setup = Setup::new(&format!(
        "{FAST}\n[[providers]]\nname = \"local\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodels = [\"m1\"]\nretries = 0\n\
         [[agents]]\nname = \"helper\"\nprovider = \"local\"\nmodel = \"m1\"\ntools = [\"shell\"]\n",
        up.openai_base()
    ));
    let gateway = setup.start();
    let app = gateway.app.clone().unwrap();
    let code = app
        .services
        .auth
        .claim
        .current()
        .expect("a claim code while unowned");
    // The first turn: streamed text. The second: a shell call that needs approval (the
    // phone denies it), then the answer.
    up.push(Answer::openai_stream(
        &["Hello ", "from ", "the ", "gateway."],
        (3, 4),
    ));
    let arguments = json!({ "command": "factor 42 > factors.txt; cat factors.txt" }).to_string();
    up.push(Answer::openai_stream_tool_call(
        "call_1",
        "shell",
        &[&arguments],
    ));
    up.push(Answer::openai_stream(
        &["Understood, I did not run it."],
        (3, 3),
    ));

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots");
    // The pages as the browser drew them, for docs/src/images (copied by hand after a
    // look: tokens and pairing pages show this run's throwaway secrets).
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-pages");
    let mut browser = Command::new("node")
        .arg("dashboard.mjs")
        .args([
            gateway.url.as_str(),
            code.as_str(),
            OWNER_PW,
            shots.to_str().unwrap(),
            images.to_str().unwrap(),
            NEW_PW,
        ])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut steps = Vec::new();
    for line in BufReader::new(browser.stdout.take().unwrap()).lines() {
        let step: Value = serde_json::from_str(&line.unwrap()).unwrap();
        assert_ne!(
            step["step"],
            "failed",
            "{step} (screenshots in {})",
            shots.display()
        );
        steps.push(step);
    }
    assert!(browser.wait().unwrap().success(), "{steps:?}");
    let find = |name: &str| {
        steps
            .iter()
            .find(|s| s["step"] == name)
            .unwrap_or_else(|| panic!("no step {name} in {steps:?}"))
            .clone()
    };

    // The token was shown once, and it works.
    let token = find("token")["token"].as_str().unwrap().to_string();
    let me = gateway
        .client()
        .get(format!("{}/api/v1/me", gateway.url))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(me.status(), 200);
    assert!(!gateway.log_text().contains(&token));

    // The audit log exported from the viewer is JSONL ending with the seal.
    let audit_step = find("audit");
    assert!(
        audit_step["exported"].as_u64().unwrap() > 10,
        "{audit_step}"
    );
    assert_eq!(audit_step["sealed"], true, "{audit_step}");

    // The account added on the Users page exists, disabled.
    assert_eq!(find("users")["state"], "disabled");
    let reader = app.services.auth.accounts.get("reader").unwrap().unwrap();
    assert!(reader.disabled);

    // The answer streamed in more than one piece, and the shell call was denied from
    // the phone.
    let chat = find("streamed");
    assert_eq!(chat["text"], "Hello from the gateway.");
    assert!(chat["updates"].as_u64().unwrap() >= 2, "{chat}");
    let approval = find("approval");
    assert_eq!(approval["answeredBy"], "phone");
    let audit = app.audit().list(&Default::default()).unwrap();
    let denied = audit
        .iter()
        .find(|r| r.action.starts_with("approval.") && r.details.to_string().contains("shell"));
    assert!(denied.is_some(), "{audit:?}");

    // Settings: the mode this gateway runs in, the audit's findings worst first and
    // told as sentences (the token made above never expires), the sandbox's state; the
    // skip link is the Tab stop before the navigation and moves the focus without
    // leaving the page.
    let settings = find("settings");
    let mode = serde_json::to_value(app.config().security.mode).unwrap();
    let mode = mode.as_str().unwrap();
    assert!(
        settings["mode"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Security mode: {mode}.")),
        "{settings}"
    );
    let findings = settings["findings"].as_array().unwrap();
    let order = ["critical", "high", "medium", "low", "info"];
    let ranks: Vec<usize> = findings
        .iter()
        .map(|f| order.iter().position(|s| f["severity"] == *s).unwrap())
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{settings}");
    for id in ["token.no_expiry", "build.no_advisory_db"] {
        assert!(findings.iter().any(|f| f["id"] == id), "{id}: {settings}");
    }
    assert!(
        findings.iter().all(|f| {
            let text = f["text"].as_str().unwrap();
            text.contains("Seen: ") && text.contains("Fix: ")
        }),
        "{settings}"
    );
    let sandbox = settings["sandbox"].as_str().unwrap();
    let expected = match app.sandbox_status().to_string().as_str() {
        "ok" => "Tools run code in the sandbox",
        "disabled" => "Running code is turned off",
        "checking" => "The sandbox is testing itself",
        _ => "Running code is unavailable",
    };
    // The self-test may have finished between the page's look and this one.
    assert!(
        sandbox.starts_with(expected) || sandbox.starts_with("The sandbox is testing itself"),
        "{sandbox}"
    );
    assert_eq!(settings["firstTab"], "skip", "{settings}");
    assert_eq!(
        settings["skipped"],
        json!({"focus": "view", "hash": "#/settings"})
    );

    // The provider's key was set and never shown back; the CA downloaded as PEM.
    assert_eq!(settings["keyShown"], false, "{settings}");
    assert_eq!(settings["caName"], "aisopod-ca.crt");
    assert_eq!(settings["caPem"], true);
    assert!(
        app.gateway
            .upstreams
            .list()
            .unwrap()
            .iter()
            .any(|p| p.name == "local"
                && matches!(p.key.source, aisopod::gateway::upstreams::KeySource::Api)),
        "the key was not stored"
    );

    // The device flow's page wears the dashboard's style sheet, starts with the focus
    // in the first empty field, and approves by keyboard; the program's token works.
    let device = find("device");
    assert_eq!(device["styled"]["header"], "flex", "{device}");
    assert_eq!(device["styled"]["form"], "grid", "{device}");
    assert_eq!(device["styled"]["approve"], "rgb(20, 83, 45)", "{device}");
    assert_eq!(device["styled"]["focus"], "username", "{device}");
    assert_eq!(
        device["outcome"],
        "Approved. You can return to your device."
    );
    assert_eq!(device["user"], "owner");
    assert_eq!(device["scopes"], json!(["chat:read"]));

    // The phone's device is revoked, its socket closed, and the owner signed out.
    let devices = app.services.auth.paired.list().unwrap();
    assert_eq!(devices.len(), 1);
    assert!(devices[0].revoked.is_some());
    assert_eq!(find("renamed")["renameFocus"], true);
    assert_eq!(devices[0].name, "kitchen phone");
    assert_eq!(find("phone-closed")["live"], "Offline");
    let out = find("logged-out");
    assert_eq!(
        out["refresh"], 401,
        "the refresh cookie no longer works: {out}"
    );
    assert!(
        out["storage"].as_u64().unwrap() == 0,
        "nothing in web storage: {out}"
    );
    // The page never saw a refresh token.
    assert_eq!(out["refreshTokensSeen"], 0, "{out}");
    // The password changed on the Settings page is the one that signs in now.
    find("password");
    for (password, status) in [(OWNER_PW, 401), (NEW_PW, 200)] {
        let login = gateway
            .client()
            .post(format!("{}/auth/login", gateway.url))
            .json(&json!({"username": "owner", "password": password}))
            .send()
            .unwrap();
        assert_eq!(login.status(), status);
    }
    let log = gateway.log_text();
    assert!(!log.contains(&code.replace('-', "")) && !log.contains(OWNER_PW));
    assert!(!log.contains(NEW_PW) && !log.contains("sk-dashboard-test"));
}
