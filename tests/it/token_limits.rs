//! Limits per API token (requests a minute, model tokens a UTC day), over HTTP/1.1 and
//! HTTP/2: a token over its limit gets 429 with `Retry-After` (in OpenAI's error shape
//! on `/v1/*`), another token and the owner's session are served all the while, the
//! token is served again once its window passes, and a flood is audited once a window.
//! Also how limits are set, changed and listed over the API and the CLI.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use aisopod::gateway::usage::UsageEvent;
use aisopod::server::state::App;

use crate::chats::{World, call};
use crate::support::{stderr, stdout};

/// Makes an API token of `owner` through `POST /api/v1/tokens`: (id, secret).
fn token(w: &World, owner: &str, name: &str, limits: Value) -> (String, String) {
    let mut body = json!({"name": name, "scopes": ["chat:read", "chat:write"], "owner": owner});
    for (key, value) in limits.as_object().unwrap() {
        body[key] = value.clone();
    }
    let (status, created) = call(
        &w.gateway.client(),
        Method::POST,
        &w.url("/api/v1/tokens"),
        w.token("root"),
        Some(body),
    );
    assert_eq!(status, StatusCode::CREATED, "{created}");
    (
        created["id"].as_str().unwrap().to_string(),
        created["token"].as_str().unwrap().to_string(),
    )
}

fn new_chat(w: &World, who: &str) -> String {
    let (status, chat) = call(
        &w.gateway.client(),
        Method::POST,
        &w.url("/api/v1/chats"),
        who,
        Some(json!({"title": "limits"})),
    );
    assert_eq!(status, StatusCode::CREATED, "{chat}");
    chat["id"].as_str().unwrap().to_string()
}

/// Posts a chat message; the status, `Retry-After` and body.
fn post(client: &Client, w: &World, chat: &str, who: &str) -> (StatusCode, Option<u64>, Value) {
    let response = client
        .post(w.url(&format!("/api/v1/chats/{chat}/messages")))
        .bearer_auth(who)
        .json(&json!({"content": "hello"}))
        .send()
        .unwrap();
    let status = response.status();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry, response.json().unwrap_or(Value::Null))
}

fn limit_records(app: &App) -> Vec<Value> {
    app.audit()
        .all()
        .map(|r| serde_json::to_value(r.unwrap()).unwrap())
        .filter(|r| r["action"] == "auth.token_limit_reached")
        .collect()
}

#[test]
fn a_token_over_its_requests_a_minute_is_refused_with_retry_after_and_nobody_else_is() {
    let w = World::new("", &[]);
    let app = w.gateway.app.clone().unwrap();
    w.gateway.clock.as_ref().unwrap().freeze();
    let owner = w.token("root").to_string();
    let (_, limited) = token(&w, "root", "limited", json!({"requests_per_minute": 3}));
    let (_, other) = token(&w, "root", "other", json!({"requests_per_minute": 3}));
    let chat = new_chat(&w, &owner);

    for http1 in [true, false] {
        let client = w.client(http1);
        w.gateway.advance_clock(Duration::from_secs(60));
        for _ in 0..3 {
            let (status, _, body) = post(&client, &w, &chat, &limited);
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        for round in 0..10 {
            let (status, retry, body) = post(&client, &w, &chat, &limited);
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
            assert_eq!(retry, Some(20), "a burst of 3, then one each 60/3 s");
            assert_eq!(body["error"]["code"], "rate_limited");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("3 requests a minute"),
                "{body}"
            );
            // Nobody else is affected during the flood.
            if round % 5 == 0 {
                let (status, _, body) = post(&client, &w, &chat, &other);
                assert_eq!(status, StatusCode::CREATED, "another token: {body}");
            }
            let (status, _, body) = post(&client, &w, &chat, &owner);
            assert_eq!(status, StatusCode::CREATED, "the owner's session: {body}");
        }
        // Reading is no model call: the limited token still reads its chat.
        let (status, page) = call(
            &client,
            Method::GET,
            &w.url(&format!("/api/v1/chats/{chat}/messages")),
            &limited,
            None,
        );
        assert_eq!(status, StatusCode::OK, "{page}");
        w.gateway.advance_clock(Duration::from_secs(60));
        let (status, _, body) = post(&client, &w, &chat, &limited);
        assert_eq!(status, StatusCode::CREATED, "a minute later: {body}");
    }
    // Twenty refusals in two minutes: two records, the second counting none unrecorded
    // (each minute's first refusal is recorded; the rest of that minute only counted).
    let records = limit_records(&app);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["details"]["limit"], "requests_per_minute");
    assert_eq!(records[0]["outcome"], "denied");
    assert_eq!(records[1]["details"]["unrecorded_before"], 9);
}

#[test]
fn a_websocket_ticket_made_with_a_limited_token_carries_its_limits() {
    let w = World::new("", &[]);
    let app = w.gateway.app.clone().unwrap();
    w.gateway.clock.as_ref().unwrap().freeze();
    let (_, limited) = token(&w, "root", "socket", json!({"requests_per_minute": 2}));
    let auth = &app.services.auth;
    let principal = auth.resolve(&limited).unwrap();
    let ticket = auth.ws_ticket(&principal, 30).unwrap();
    let socket = auth.redeem_ws_ticket(&ticket).unwrap();
    let ip = IpAddr::from([127, 0, 0, 1]);
    let admit = || aisopod::server::quota::admit(&app, &socket, Some(ip), "ws chat.send");
    assert!(admit().is_ok() && admit().is_ok());
    let refusal = admit().unwrap_err().api_error();
    assert_eq!(refusal.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refusal.retry_after, Some(30));
    // The owner's own session is not the token.
    let session = auth.resolve(w.token("root")).unwrap();
    for _ in 0..5 {
        assert!(aisopod::server::quota::admit(&app, &session, Some(ip), "ws chat.send").is_ok());
    }
}

/// A `/v1/*` route on the gateway's own middleware stack, served with its certificate,
/// standing in for the OpenAI-compatible routes.
struct V1Probe {
    /// Serves the probe; dropped after `stop` is sent.
    _runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    url: String,
}

impl V1Probe {
    fn start(app: &Arc<App>) -> V1Probe {
        use aisopod::auth::scopes::Scope;
        use aisopod::server::Api;
        use aisopod::server::auth::Access;
        let api = Api::new().route(
            "/v1/chat/completions",
            Access::Scope(Scope::ChatWrite),
            axum::routing::post(|| async { axum::Json(json!({"object": "chat.completion"})) }),
        );
        let router = aisopod::server::with_middleware(app.clone(), api);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let tls = app.tls.as_ref().map(|tls| tls.server_config());
        let limits = aisopod::server::ConnectionLimits::from_app(app);
        runtime.spawn(aisopod::server::serve(
            listener,
            router,
            tls,
            limits,
            async {
                let _ = stopped.await;
            },
        ));
        V1Probe {
            _runtime: runtime,
            stop: Some(stop),
            url,
        }
    }
}

impl Drop for V1Probe {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn completion(client: &Client, probe: &V1Probe, key: &str) -> (StatusCode, Option<u64>, Value) {
    let response = client
        .post(format!("{}/v1/chat/completions", probe.url))
        .bearer_auth(key)
        .json(&json!({"model": "default", "messages": []}))
        .send()
        .unwrap();
    let status = response.status();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry, response.json().unwrap_or(Value::Null))
}

#[test]
fn on_v1_routes_refusals_are_in_openais_shape_and_tokens_a_day_reset_at_utc_midnight() {
    let w = World::new("", &[]);
    let app = w.gateway.app.clone().unwrap();
    let clock = w.gateway.clock.clone().unwrap();
    clock.freeze();
    // The test moves the clock two minutes within one UTC day.
    let to_midnight = || {
        let now = aisopod::clock::Clock::now(&clock);
        let midnight = (now.date() + time::Duration::days(1))
            .midnight()
            .assume_utc();
        // Whole seconds rounded up, as `Retry-After` says them.
        let left = midnight - now;
        u64::try_from(left.whole_seconds() + i64::from(left.subsec_nanoseconds() > 0)).unwrap()
    };
    if to_midnight() < 600 {
        clock.advance(Duration::from_secs(to_midnight() + 1));
    }
    let probe = V1Probe::start(&app);
    let (_, per_minute) = token(&w, "root", "per-minute", json!({"requests_per_minute": 3}));
    let (daily_id, daily) = token(&w, "root", "daily", json!({"tokens_per_day": 1000}));
    let (_, free) = token(&w, "root", "free", json!({}));
    let usage = |tokens: u64| {
        app.gateway.usage.record(UsageEvent {
            user: "root",
            token: Some(&daily_id),
            agent: Some("default"),
            model: "ollama/llama3",
            prompt_tokens: tokens / 2,
            completion_tokens: tokens - tokens / 2,
        });
    };
    usage(600);

    for http1 in [true, false] {
        let client = w.client(http1);
        w.gateway.advance_clock(Duration::from_secs(60));
        for _ in 0..3 {
            let (status, _, body) = completion(&client, &probe, &per_minute);
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let (status, retry, body) = completion(&client, &probe, &per_minute);
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry, Some(20));
        let error = &body["error"];
        assert_eq!(error["type"], "requests", "{body}");
        assert_eq!(error["code"], "rate_limit_exceeded");
        assert_eq!(error["param"], Value::Null);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("3 requests a minute")
        );
        let (status, _, body) = completion(&client, &probe, &free);
        assert_eq!(status, StatusCode::OK, "a token without limits: {body}");
    }

    // Under the day's limit (600 of 1000) a request is served, whatever it then uses.
    let client = w.client(true);
    let (status, _, body) = completion(&client, &probe, &daily);
    assert_eq!(status, StatusCode::OK, "{body}");
    usage(500);
    let to_midnight = to_midnight();
    for http1 in [true, false] {
        let client = w.client(http1);
        let (status, retry, body) = completion(&client, &probe, &daily);
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(retry, Some(to_midnight), "until midnight UTC");
        assert_eq!(body["error"]["type"], "tokens", "{body}");
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("1100 used today")
        );
        // Outside /v1 the same refusal comes in the API's own shape.
        let chat = new_chat(&w, w.token("root"));
        let (status, retry, body) = post(&client, &w, &chat, &daily);
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(retry, Some(to_midnight));
        assert_eq!(body["error"]["code"], "rate_limited");
    }
    w.gateway.advance_clock(Duration::from_secs(to_midnight));
    for http1 in [true, false] {
        let (status, _, body) = completion(&w.client(http1), &probe, &daily);
        assert_eq!(status, StatusCode::OK, "a new UTC day: {body}");
    }
}

#[test]
fn limits_are_set_validated_listed_and_changed_by_an_admin_or_tightened_by_their_owner() {
    let w = World::new("", &["carol"]);
    let root = w.token("root").to_string();
    let carol = w.token("carol").to_string();
    for http1 in [true, false] {
        let client = w.client(http1);
        // Validation names the bad field, and nothing is made.
        for (limits, field) in [
            (json!({"requests_per_minute": 0}), "requests_per_minute"),
            (json!({"tokens_per_day": 0}), "tokens_per_day"),
            (json!({"requests_per_minute": "ten"}), "requests_per_minute"),
            (json!({"tokens_per_day": -5}), "tokens_per_day"),
        ] {
            let mut body = json!({"name": "bad", "scopes": ["chat:read"]});
            for (key, value) in limits.as_object().unwrap() {
                body[key] = value.clone();
            }
            let (status, answer) = call(
                &client,
                Method::POST,
                &w.url("/api/v1/tokens"),
                &root,
                Some(body),
            );
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
            assert!(
                answer["error"]["message"].as_str().unwrap().contains(field),
                "{answer}"
            );
        }
    }
    let (_, list) = call(
        &w.gateway.client(),
        Method::GET,
        &w.url("/api/v1/tokens"),
        &root,
        None,
    );
    assert_eq!(list, json!([]), "a refused token is not made");

    let (carols, _) = token(&w, "carol", "carols", json!({"requests_per_minute": 60}));
    let (roots, _) = token(&w, "root", "roots", json!({}));
    let patch = |who: &str, id: &str, body: Value| {
        call(
            &w.gateway.client(),
            Method::PATCH,
            &w.url(&format!("/api/v1/tokens/{id}")),
            who,
            Some(body),
        )
    };
    let (status, changed) = patch(
        &carol,
        &carols,
        json!({"requests_per_minute": 30, "tokens_per_day": 5000}),
    );
    assert_eq!(status, StatusCode::OK, "the owner tightens: {changed}");
    assert_eq!(
        (
            changed["requests_per_minute"].as_u64(),
            changed["tokens_per_day"].as_u64()
        ),
        (Some(30), Some(5000))
    );
    for (loosen, field) in [
        (json!({"requests_per_minute": 31}), "requests_per_minute"),
        (json!({"tokens_per_day": null}), "tokens_per_day"),
    ] {
        let (status, answer) = patch(&carol, &carols, loosen);
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(field));
    }
    for id in [roots.as_str(), "0123456789abcdef"] {
        let (status, answer) = patch(&carol, id, json!({"requests_per_minute": 1}));
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "another's token, or none: {answer}"
        );
    }
    let (status, answer) = patch(&carol, &carols, json!({"colour": "red"}));
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let (status, lifted) = patch(&root, &carols, json!({"requests_per_minute": null}));
    assert_eq!(status, StatusCode::OK, "an admin lifts: {lifted}");
    assert_eq!(lifted["requests_per_minute"], Value::Null);
    assert_eq!(lifted["tokens_per_day"], 5000);

    // The CLI, through the running gateway's admin socket.
    let made = w.setup.cli(&[
        "auth",
        "create-token",
        "--scopes",
        "chat:write",
        "--name",
        "cli",
        "--owner",
        "carol",
        "--rpm",
        "12",
        "--tokens-per-day",
        "9000",
        "--json",
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    let made: Value = serde_json::from_str(&stdout(&made)).unwrap();
    assert_eq!(
        (
            made["requests_per_minute"].as_u64(),
            made["tokens_per_day"].as_u64()
        ),
        (Some(12), Some(9000))
    );
    let id = made["id"].as_str().unwrap();
    let changed = w.setup.cli(&[
        "auth",
        "limit-token",
        id,
        "--tokens-per-day",
        "none",
        "--requests-per-minute",
        "6",
    ]);
    assert!(changed.status.success(), "{}", stderr(&changed));
    assert!(
        stdout(&changed).contains("limits 6/min"),
        "{}",
        stdout(&changed)
    );
    let bad = w.setup.cli(&["auth", "limit-token", id, "--rpm", "0"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("requests_per_minute"),
        "{}",
        stderr(&bad)
    );
    let listed = stdout(&w.setup.cli(&["auth", "list-tokens"]));
    let line = listed.lines().find(|l| l.contains(id)).unwrap();
    assert!(line.ends_with("limits 6/min"), "{listed}");
    let (_, list) = call(
        &w.gateway.client(),
        Method::GET,
        &w.url("/api/v1/tokens"),
        &root,
        None,
    );
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap();
    assert_eq!(
        (
            listed["requests_per_minute"].as_u64(),
            listed["tokens_per_day"].as_u64()
        ),
        (Some(6), None)
    );
    let records: Vec<String> = w
        .gateway
        .app
        .as_ref()
        .unwrap()
        .audit()
        .all()
        .map(|r| {
            serde_json::to_value(r.unwrap()).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        records
            .iter()
            .filter(|a| *a == "auth.token_limits_changed")
            .count(),
        2,
        "{records:?}"
    );
}
