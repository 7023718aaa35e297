//! Provider keys set over the API, against the scripted upstream: the key set with
//! `PUT /api/v1/providers/{name}` is the one the upstream receives from the next request
//! on, `DELETE` brings back the config's `${VAR}` key, and the key never shows in a
//! response, the audit log, the log output, the data directory or a backup. Over
//! HTTP/1.1 and HTTP/2.

use std::path::Path;

use aisopod::gateway::providers::{ChatRequest, Message, ModelRef};
use http::Version;
use reqwest::Method;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::chats::{FAST, PASSWORD, call};
use crate::support::{Gateway, Setup, stderr};
use crate::upstream::{Answer, Upstream};

const CONFIG_KEY: &str = "sk-config-2b8d-ENV-k4Wm";
const API_KEYS: [&str; 2] = ["sk-api-h1-7c1e-SEALED-q9Zt", "sk-api-h2-0d5a-SEALED-r2Pv"];

struct Keys {
    setup: Setup,
    gateway: Gateway,
    up: Upstream,
    runtime: tokio::runtime::Runtime,
}

impl Keys {
    fn env() -> [(&'static str, &'static str); 2] {
        [
            ("UPSTREAM_KEY", CONFIG_KEY),
            ("AISOPOD_BACKUP_PASSPHRASE", "otter violin harbour tuesday"),
        ]
    }

    fn start() -> Keys {
        let (runtime, up) = Upstream::on_own_runtime();
        let setup = Setup::new(&format!(
            "{FAST}\n[[providers]]\nname = \"local\"\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"${{UPSTREAM_KEY}}\"\nmodels = [\"m1\"]\n",
            up.openai_base()
        ));
        let added = setup.cli_with(
            &["user", "add", "--admin", "root", "--password-stdin"],
            &Self::env(),
            Some(PASSWORD.as_bytes()),
        );
        assert!(added.status.success(), "{}", stderr(&added));
        let gateway = setup.start_with(&Self::env());
        Keys {
            setup,
            gateway,
            up,
            runtime,
        }
    }

    fn client(&self, version: Version) -> Client {
        self.gateway.client_speaking(version, "127.0.0.1")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.url)
    }

    fn login(&self) -> String {
        let tokens: Value = self
            .gateway
            .client()
            .post(self.url("/auth/login"))
            .json(&json!({"username": "root", "password": PASSWORD}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        tokens["access_token"].as_str().unwrap().to_string()
    }

    /// One request through the running gateway's providers; the key the upstream saw.
    fn key_used(&self) -> String {
        self.up.push(Answer::openai_text("hello", (1, 1)));
        let providers = self
            .gateway
            .app
            .as_ref()
            .unwrap()
            .gateway
            .upstreams
            .current();
        let request = ChatRequest {
            model: "m1".into(),
            messages: vec![Message::user("hi")],
            tools: Vec::new(),
            temperature: None,
            max_tokens: None,
        };
        let chain = [ModelRef::parse("local/m1").unwrap()];
        let (_, completion) = self
            .runtime
            .block_on(providers.complete(&chain, &request))
            .unwrap();
        assert_eq!(completion.text, "hello");
        let requests = self.up.requests();
        let auth = requests.last().unwrap().header("authorization").unwrap();
        auth.strip_prefix("Bearer ").unwrap().to_string()
    }

    /// The provider's `key` as the API lists it.
    fn listed_key(&self, client: &Client, token: &str) -> Value {
        let (status, body) = call(
            client,
            Method::GET,
            &self.url("/api/v1/providers"),
            token,
            None,
        );
        assert_eq!(status, 200, "{body}");
        let provider = &body["providers"][0];
        assert_eq!(provider["name"], "local");
        assert_eq!(provider["kind"], "openai");
        assert_eq!(provider["base_url"], self.up.openai_base());
        assert_eq!(provider["models"], json!(["m1"]));
        provider["key"].clone()
    }

    /// A raw PUT: the status and the body as text.
    fn put_raw(&self, client: &Client, token: &str, name: &str, body: &str) -> (u16, String) {
        let response = client
            .put(self.url(&format!("/api/v1/providers/{name}")))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        (response.status().as_u16(), response.text().unwrap())
    }
}

fn hint(key: &str) -> String {
    format!("…{}", &key[key.len() - 4..])
}

/// Every file under `dir`, with the bytes it holds.
fn files(dir: &Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn a_key_set_over_the_api_is_used_at_once_and_never_shown() {
    let mut k = Keys::start();
    let owner = k.login();
    assert_eq!(k.key_used(), CONFIG_KEY);
    let listed = k.listed_key(&k.client(Version::HTTP_2), &owner);
    assert_eq!(
        listed,
        json!({"source": "config", "hint": hint(CONFIG_KEY)})
    );
    let mut seen = String::new();
    for (version, api_key) in [Version::HTTP_11, Version::HTTP_2]
        .into_iter()
        .zip(API_KEYS)
    {
        let client = k.client(version);

        let (status, body) = k.put_raw(
            &client,
            &owner,
            "local",
            &json!({"api_key": api_key}).to_string(),
        );
        assert_eq!(status, 204, "{body}");
        seen.push_str(&body);
        assert_eq!(k.key_used(), api_key, "the next request uses the new key");
        let listed = k.listed_key(&client, &owner);
        assert_eq!(listed, json!({"source": "api", "hint": hint(api_key)}));
        seen.push_str(&listed.to_string());

        // Removing it brings back the config's key at once; a second removal finds none.
        let (status, body) = call(
            &client,
            Method::DELETE,
            &k.url("/api/v1/providers/local"),
            &owner,
            None,
        );
        assert_eq!(status, 204, "{body}");
        assert_eq!(k.key_used(), CONFIG_KEY);
        let listed = k.listed_key(&client, &owner);
        assert_eq!(
            listed,
            json!({"source": "config", "hint": hint(CONFIG_KEY)})
        );
        let (status, body) = call(
            &client,
            Method::DELETE,
            &k.url("/api/v1/providers/local"),
            &owner,
            None,
        );
        assert_eq!(status, 404, "{body}");

        let (status, body) = k.put_raw(
            &client,
            &owner,
            "local",
            &json!({"api_key": api_key}).to_string(),
        );
        assert_eq!(status, 204, "{body}");
        let (status, one) = call(
            &client,
            Method::GET,
            &k.url("/api/v1/providers/local"),
            &owner,
            None,
        );
        assert_eq!(status, 200);
        assert_eq!(one["key"], json!({"source": "api", "hint": hint(api_key)}));
        seen.push_str(&one.to_string());
    }
    let last = API_KEYS[1];
    assert_eq!(k.key_used(), last);

    // The key is sealed on disk and in a backup made while the gateway runs.
    let backup = k.setup.dir.path().join("keys.backup");
    let made = k.setup.cli_with(
        &["backup", "create", backup.to_str().unwrap()],
        &Keys::env(),
        None,
    );
    assert!(made.status.success(), "{}", stderr(&made));
    let audit = k.setup.cli_with(&["audit", "export"], &Keys::env(), None);
    assert!(audit.status.success(), "{}", stderr(&audit));
    let audit = String::from_utf8_lossy(&audit.stdout).to_string();
    assert_eq!(audit.matches("provider.key_set").count(), 4, "{audit}");
    assert_eq!(audit.matches("provider.key_remove").count(), 2, "{audit}");
    let mut stored = Vec::new();
    files(&k.gateway.data_dir, &mut stored);
    stored.push((backup.clone(), std::fs::read(&backup).unwrap()));
    assert!(stored.len() > 3);
    let log = k.gateway.log_text();
    assert!(!log.is_empty(), "no log output to search");
    for key in API_KEYS.iter().chain([&CONFIG_KEY]) {
        assert!(!seen.contains(key), "a response showed {key}");
        assert!(!audit.contains(key), "the audit log holds {key}");
        assert!(!log.contains(key), "the log output holds {key}");
        for (path, bytes) in &stored {
            assert!(
                !holds(bytes, key),
                "{} holds {key} in clear",
                path.display()
            );
        }
    }

    // The sealed key outlives a restart and still comes before the config's.
    k.gateway.stop();
    k.gateway = k.setup.start_with(&Keys::env());
    let owner = k.login();
    assert_eq!(k.key_used(), last);
    let listed = k.listed_key(&k.client(Version::HTTP_11), &owner);
    assert_eq!(listed, json!({"source": "api", "hint": hint(last)}));
}

#[test]
fn bad_keys_and_callers_are_refused_and_change_nothing() {
    let k = Keys::start();
    let owner = k.login();
    let (status, created) = call(
        &k.gateway.client(),
        Method::POST,
        &k.url("/auth/create-token"),
        &owner,
        Some(json!({"name": "reader", "scopes": ["config:read"]})),
    );
    assert!(status.is_success(), "{created}");
    let reader = created["token"].as_str().unwrap().to_string();
    let leak = "sk-leak-3f9e-NEVER-ECHOED-w7Qx";
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let client = k.client(version);
        let (status, _) = k.put_raw(
            &client,
            &owner,
            "local",
            &json!({"api_key": API_KEYS[0]}).to_string(),
        );
        assert_eq!(status, 204);

        let too_long = "k".repeat(4097);
        let bad: [(&str, String, &str); 9] = [
            ("local", json!({"api_key": ""}).to_string(), "is empty"),
            ("local", json!({"api_key": too_long}).to_string(), "4096"),
            (
                "local",
                json!({"api_key": format!("{leak}\u{7}")}).to_string(),
                "control characters",
            ),
            (
                "local",
                json!({"api_key": format!("{leak} x")}).to_string(),
                "no spaces",
            ),
            (
                "local",
                format!("{{\"api_key\": \"{leak}"),
                "not valid JSON",
            ),
            ("local", json!({"api_key": 5}).to_string(), "{\"api_key\""),
            ("local", json!({"key": leak}).to_string(), "{\"api_key\""),
            (
                "local",
                json!({"api_key": leak, "more": leak}).to_string(),
                "{\"api_key\"",
            ),
            ("local", json!([leak]).to_string(), "{\"api_key\""),
        ];
        for (name, body, says) in bad {
            let (status, answer) = k.put_raw(&client, &owner, name, &body);
            assert_eq!(status, 400, "{body:.60}: {answer}");
            let message: Value = serde_json::from_str(&answer).unwrap();
            let message = message["error"]["message"].as_str().unwrap();
            assert!(message.contains(says), "{message}");
            assert!(!answer.contains(leak), "the error echoed the key: {answer}");
        }
        let (status, answer) = k.put_raw(
            &client,
            &owner,
            "elsewhere",
            &json!({"api_key": leak}).to_string(),
        );
        assert_eq!(status, 404, "{answer}");
        let message: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(
            message["error"]["message"],
            "no provider named \"elsewhere\" is configured; add it under [[providers]] first"
        );
        let (status, _) = call(
            &client,
            Method::DELETE,
            &k.url("/api/v1/providers/elsewhere"),
            &owner,
            None,
        );
        assert_eq!(status, 404);

        // Without config:write: refused, yet free to read; the owner is served after.
        let (status, answer) = k.put_raw(
            &client,
            &reader,
            "local",
            &json!({"api_key": leak}).to_string(),
        );
        assert_eq!(status, 403, "{answer}");
        let (status, _) = call(
            &client,
            Method::DELETE,
            &k.url("/api/v1/providers/local"),
            &reader,
            None,
        );
        assert_eq!(status, 403);
        assert_eq!(k.listed_key(&client, &reader)["source"], "api");
        assert_eq!(k.key_used(), API_KEYS[0], "nothing refused was stored");

        let (status, _) = k.put_raw(
            &client,
            &owner,
            "local",
            &json!({"api_key": API_KEYS[1]}).to_string(),
        );
        assert_eq!(status, 204);
        assert_eq!(k.key_used(), API_KEYS[1]);
    }
    assert!(!k.gateway.log_text().contains(leak));
}
