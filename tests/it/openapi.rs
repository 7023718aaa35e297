//! The API described: `GET /api/openapi.json` names every route the router serves and
//! nothing else, each operation's security is its route's access, every secured route
//! refuses a missing credential and a token without its scope (HTTP/1.1 and HTTP/2), and
//! schemathesis finds no 5xx, no answer outside its schema and no scope bypass.

use std::collections::BTreeSet;
use std::process::Command;

use aisopod::auth::scopes::Scope;
use aisopod::server::auth::Access;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Gateway, Setup, stderr, version_of};

const FAST: &str = "[rate_limit]\nauth_per_minute = 100000\nauth_burst = 100000\napi_per_minute = 100000\napi_burst = 100000\nauthenticated_per_minute = 100000\nauthenticated_burst = 100000\n[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1";

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// A gateway with an owner and one API token per scope, named after the scope.
fn gateway_with_tokens() -> (Setup, Gateway, Vec<(Scope, String)>) {
    let setup = Setup::new(FAST);
    setup.add_owner();
    let tokens = Scope::ALL
        .iter()
        .map(|scope| {
            let created = setup.cli(&[
                "auth",
                "create-token",
                "--scopes",
                scope.as_str(),
                "--name",
                &scope.as_str().replace(':', "-"),
                "--json",
            ]);
            assert!(created.status.success(), "{}", stderr(&created));
            let created: Value = serde_json::from_slice(&created.stdout).unwrap();
            (*scope, created["token"].as_str().unwrap().to_string())
        })
        .collect();
    let gateway = setup.start();
    (setup, gateway, tokens)
}

fn document(gateway: &Gateway) -> Value {
    let response = gateway.get("/api/openapi.json");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "the document is JSON"
    );
    response.json().unwrap()
}

/// A concrete path for a route pattern: every `{param}` becomes `x`.
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|part| if part.starts_with('{') { "x" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every (method, path pattern) the document describes.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.to_uppercase(), path.clone()));
        }
    }
    operations
}

/// Every (method, path pattern) the router serves: the declared paths, and for each the
/// methods the router names in `Allow` when asked (with an admin token, which passes
/// every access check) with a method no route takes.
fn served(gateway: &Gateway, admin: &str) -> BTreeSet<(String, String)> {
    let api = aisopod::server::api();
    let paths: BTreeSet<&str> = api.access().entries().map(|(_, path, _)| path).collect();
    let client = gateway.client();
    let mut operations = BTreeSet::new();
    for path in paths {
        let response = client
            .request(
                reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
                format!("{}{}", gateway.url, concrete(path)),
            )
            .bearer_auth(admin)
            .send()
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{path} takes PROPFIND?"
        );
        let allow = response.headers()["allow"].to_str().unwrap().to_string();
        for method in allow.split(',').map(str::trim) {
            if METHODS.contains(&method) {
                operations.insert((method.to_string(), path.to_string()));
            }
        }
    }
    operations
}

#[test]
fn every_served_route_is_documented_and_every_documented_route_is_served() {
    let (_setup, gateway, tokens) = gateway_with_tokens();
    let doc = document(&gateway);
    assert_eq!(doc["openapi"], "3.1.0");
    let documented = documented(&doc);
    let admin = &tokens.iter().find(|(s, _)| *s == Scope::Admin).unwrap().1;
    let served = served(&gateway, admin);
    assert!(served.len() > 50, "the probe found only {served:?}");
    let undocumented: Vec<String> = served
        .difference(&documented)
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    let unserved: Vec<String> = documented
        .difference(&served)
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "served but not in /api/openapi.json (add #[utoipa::path] to the handler and list it in its module's openapi()): {undocumented:#?}"
    );
    assert!(
        unserved.is_empty(),
        "in /api/openapi.json but not served: {unserved:#?}"
    );
}

/// What the document must say for `access`, written out independently of the code
/// that generates it.
fn expected_security(access: Access) -> Value {
    match access {
        Access::Public | Access::Credentials => json!([]),
        Access::Authenticated => json!([{ "bearer": [] }, { "api_key": [] }]),
        Access::Scope(scope) => {
            json!([{ "bearer": [scope.as_str()] }, { "api_key": [scope.as_str()] }])
        }
    }
}

#[test]
fn each_operations_security_and_refusals_are_its_routes_access() {
    let (_setup, gateway, _) = gateway_with_tokens();
    let doc = document(&gateway);
    let api = aisopod::server::api();
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({ "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearer"]["description"] })
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["name"],
        "X-API-Key"
    );
    for (method, path) in documented(&doc) {
        let operation = &doc["paths"][&path][method.to_lowercase()];
        let access = api
            .access()
            .lookup(&Method::from_bytes(method.as_bytes()).unwrap(), &path)
            .unwrap_or_else(|| panic!("{method} {path} has no access declaration"));
        assert_eq!(
            operation["security"],
            expected_security(access),
            "{method} {path}"
        );
        let responses = &operation["responses"];
        let shape = if path.starts_with("/v1/") {
            "#/components/schemas/OpenAIError"
        } else {
            "#/components/schemas/Error"
        };
        let mut refusals = vec!["401", "default"];
        if matches!(access, Access::Scope(_)) {
            refusals.push("403");
        }
        if access != Access::Public {
            refusals.push("429");
        }
        for status in refusals {
            assert_eq!(
                responses[status]["content"]["application/json"]["schema"]["$ref"], shape,
                "{method} {path} answers {status} in the error shape"
            );
        }
        if operation.get("requestBody").is_some() {
            assert!(responses.get("413").is_some(), "{method} {path}: no 413");
        }
    }
}

#[test]
fn every_secured_route_refuses_without_a_credential_and_without_its_scope() {
    let (_setup, gateway, tokens) = gateway_with_tokens();
    let doc = document(&gateway);
    let token_of = |scope: Scope| {
        tokens
            .iter()
            .find(|(s, _)| *s == scope)
            .map(|(_, t)| t.clone())
            .unwrap()
    };
    let mut checked = 0;
    for http1 in [true, false] {
        let client = gateway.client_speaking(version_of(http1), "127.0.0.1");
        for (method, path) in documented(&doc) {
            let security = &doc["paths"][&path][method.to_lowercase()]["security"];
            let Some(requirement) = security.get(0) else {
                continue;
            };
            let request = |token: Option<&str>| {
                let mut builder = client.request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    format!("{}{}", gateway.url, concrete(&path)),
                );
                if method != "GET" && method != "DELETE" {
                    builder = builder.json(&json!({}));
                }
                if let Some(token) = token {
                    builder = builder.bearer_auth(token);
                }
                builder.send().unwrap()
            };
            let anonymous = request(None);
            assert_eq!(
                anonymous.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} without a credential (http1: {http1})"
            );
            let body: Value = anonymous.json().unwrap();
            assert!(body["error"]["message"].is_string(), "{body}");
            let needed = requirement["bearer"][0].as_str();
            if let Some(needed) = needed {
                let needed = Scope::parse(needed).unwrap();
                // A token of some other scope (never admin, which holds them all).
                let other = Scope::ALL
                    .into_iter()
                    .find(|s| *s != needed && *s != Scope::Admin)
                    .unwrap();
                let refused = request(Some(&token_of(other)));
                assert_eq!(
                    refused.status(),
                    StatusCode::FORBIDDEN,
                    "{method} {path} with a {} token (http1: {http1})",
                    other.as_str()
                );
                let body: Value = refused.json().unwrap();
                assert!(body["error"]["message"].is_string(), "{body}");
            }
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} secured operations checked");
    // Right after the refusals the owner's admin token is served as usual.
    let admin = token_of(Scope::Admin);
    let me = gateway
        .client()
        .get(format!("{}/api/v1/me", gateway.url))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
}

/// Runs schemathesis against the running gateway with `token`; returns its report.
fn schemathesis(gateway: &Gateway, token: Option<&str>) -> (bool, String) {
    let mut command = Command::new("python3");
    command
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("{}/api/openapi.json", gateway.url))
        .args(["--url", &gateway.url])
        .arg("--tls-verify")
        .arg(gateway_ca(gateway))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "4",
            "--workers",
            "2",
            "--seed",
            "13",
            "--no-color",
            "--exclude-path",
            "/ws",
            // JSON-RPC over Streamable HTTP: its own tests drive it (tests/it/mcp.rs).
            "--exclude-path",
            "/mcp",
        ])
        .env_remove("AISOPOD_LOG")
        // schemathesis keeps a cache in its working directory: not in the checkout.
        .current_dir(&gateway.data_dir);
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let output = command
        .output()
        .expect("schemathesis (scripts/setup installs it)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}

fn gateway_ca(gateway: &Gateway) -> std::path::PathBuf {
    gateway.data_dir.join("tls/ca.pem")
}

#[test]
fn schemathesis_finds_no_server_error_no_schema_break_and_no_scope_bypass() {
    let (_setup, gateway, tokens) = gateway_with_tokens();
    let mut runs: Vec<Option<&str>> = vec![None];
    runs.extend(tokens.iter().map(|(_, t)| Some(t.as_str())));
    for token in runs {
        let (passed, report) = schemathesis(&gateway, token);
        assert!(passed, "schemathesis failed:\n{report}");
    }
    // The gateway is up and serves its owner afterwards.
    let ready = gateway.get("/ready");
    assert_eq!(ready.status(), StatusCode::OK);
}

#[test]
fn the_token_endpoints_refuse_an_unreadable_body_in_rfc_6749s_shape() {
    let (_setup, gateway, _) = gateway_with_tokens();
    let client = gateway.client();
    for path in ["/auth/token", "/auth/device/code"] {
        for (content_type, body) in [
            (
                "application/x-www-form-urlencoded",
                "device_code=&refresh_token=",
            ),
            ("application/json", "{\"grant_type\": 7}"),
            ("application/json", "not json"),
        ] {
            let response = client
                .post(format!("{}{path}", gateway.url))
                .header("content-type", content_type)
                .body(body)
                .send()
                .unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path} {body}");
            let answer: Value = response.json().unwrap();
            assert_eq!(
                answer["error"], "invalid_request",
                "{path} {body}: {answer}"
            );
            assert!(answer["error_description"].is_string(), "{answer}");
        }
    }
    // Right after, a well-formed request is served.
    let started = client
        .post(format!("{}/auth/device/code", gateway.url))
        .form(&[("client_id", "cli")])
        .send()
        .unwrap();
    assert_eq!(started.status(), StatusCode::OK);
}
