//! Signed webhooks, as a sending program and an operator see them: a signed delivery
//! reaches the channel's agent on the scripted upstream and its reply comes back (or is
//! posted, signed, to a loopback receiver); replayed ids, old timestamps, bad
//! signatures, unknown channels and oversized bodies are refused in the API's shape and
//! audited; a flood of bad signatures is limited while the owner's good delivery is
//! still served; channels are managed over HTTP/1.1 and HTTP/2 with their scopes, the
//! secret shown once; and the shell example of the docs works as written.

use std::time::{Duration, Instant};

use aisopod::gateway::channels::webhook::{
    SIGNATURE_HEADER, parse_signature, signature_header, verify,
};
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::chats::{FAST, PASSWORD};
use crate::support::{Gateway, Setup, stderr, version_of};
use crate::upstream::{Answer, Upstream};

const SECRET: &str = "9f1c2e7a4b6d8f0a1c3e5a7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f";
const ASYNC_SECRET: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

struct World {
    _setup: Setup,
    gateway: Gateway,
    up: Upstream,
    receiver: Upstream,
    _runtime: tokio::runtime::Runtime,
}

impl World {
    /// A gateway with the agent `helper` on the scripted upstream, the admin `owner`
    /// and the user `bob`, the channel `ci` (answers in the response) and the channel
    /// `later` (posts its reply to a loopback receiver), with `base` rate limits.
    fn start(base: &str) -> World {
        let (runtime, up) = Upstream::on_own_runtime();
        let receiver = runtime.block_on(Upstream::start());
        let setup = Setup::new(&format!(
            "{base}\n[security]\nmode = \"local\"\n[[providers]]\nname = \"local\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodels = [\"m1\"]\nretries = 0\n\
             [[agents]]\nname = \"helper\"\nprovider = \"local\"\nmodel = \"m1\"\ntools = []\n\
             [[channels]]\nname = \"ci\"\nkind = \"webhook\"\nagent = \"helper\"\nowner = \"owner\"\nsecret = \"${{HOOK_SECRET}}\"\n\
             [[channels]]\nname = \"later\"\nkind = \"webhook\"\nagent = \"helper\"\nowner = \"owner\"\nsecret = \"${{LATER_SECRET}}\"\nreply_url = \"{}/replies\"\nreply_timeout = \"5s\"\n",
            up.openai_base(),
            receiver.url()
        ));
        let env = [("HOOK_SECRET", SECRET), ("LATER_SECRET", ASYNC_SECRET)];
        for (name, admin) in [("owner", true), ("bob", false)] {
            let mut args = vec!["user", "add"];
            if admin {
                args.push("--admin");
            }
            args.extend([name, "--password-stdin"]);
            let added = setup.cli_with(&args, &env, Some(PASSWORD.as_bytes()));
            assert!(added.status.success(), "{}", stderr(&added));
        }
        let gateway = setup.start_with(&env);
        World {
            _setup: setup,
            gateway,
            up,
            receiver,
            _runtime: runtime,
        }
    }

    fn client(&self, http1: bool) -> Client {
        self.gateway.client_speaking(version_of(http1), "127.0.0.1")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.url)
    }

    fn now(&self) -> i64 {
        use aisopod::clock::Clock;
        self.gateway.clock.as_ref().unwrap().now().unix_timestamp()
    }

    fn login(&self, user: &str) -> String {
        let tokens: Value = self
            .gateway
            .client()
            .post(self.url("/auth/login"))
            .json(&json!({"username": user, "password": PASSWORD}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        tokens["access_token"]
            .as_str()
            .expect("a login")
            .to_string()
    }

    fn api_token(&self, session: &str, name: &str, scopes: &[&str]) -> String {
        let created: Value = self
            .gateway
            .client()
            .post(self.url("/auth/create-token"))
            .bearer_auth(session)
            .json(&json!({"name": name, "scopes": scopes}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        created["token"].as_str().expect("a token").to_string()
    }

    /// Posts a delivery with the given signature header; status and JSON body.
    fn deliver_raw(
        &self,
        client: &Client,
        channel: &str,
        id: &str,
        signature: &str,
        body: &[u8],
    ) -> (StatusCode, Value) {
        let response = client
            .post(self.url(&format!("/hooks/{channel}")))
            .header("content-type", "application/json")
            .header("x-aisopod-delivery", id)
            .header(SIGNATURE_HEADER, signature)
            .body(body.to_vec())
            .send()
            .unwrap();
        let status = response.status();
        let text = response.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Posts a delivery signed with `secret` at time `t`.
    fn deliver(
        &self,
        client: &Client,
        channel: &str,
        secret: &str,
        id: &str,
        t: i64,
        body: &[u8],
    ) -> (StatusCode, Value) {
        let signature = signature_header(secret.as_bytes(), t, id, body);
        self.deliver_raw(client, channel, id, &signature, body)
    }

    fn audit_actions(&self) -> Vec<(String, String, Value)> {
        let app = self.gateway.app.as_ref().unwrap();
        app.audit()
            .all()
            .map(|r| {
                let r = r.unwrap();
                let outcome = serde_json::to_value(r.outcome).unwrap();
                (r.action, outcome.as_str().unwrap().to_string(), r.details)
            })
            .collect()
    }
}

fn text_body(text: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "text": text })).unwrap()
}

#[test]
fn a_signed_delivery_reaches_the_agent_and_its_reply_comes_back_once() {
    let w = World::start(FAST);
    for http1 in [true, false] {
        let client = w.client(http1);
        w.up.push(Answer::openai_stream(&["All ", "green."], (12, 3)));
        let id = format!("build-{http1}");
        let body = text_body("Did the nightly build pass?");
        let (status, answer) = w.deliver(&client, "ci", SECRET, &id, w.now(), &body);
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["reply"], "All green.");
        assert_eq!(answer["delivery"], id.as_str());
        let asked = w.up.requests().last().unwrap().everything();
        assert!(asked.contains("Did the nightly build pass?"), "{asked}");
        assert!(!asked.contains(SECRET));

        // The same delivery again, even freshly signed, is refused and runs nothing.
        let before = w.up.requests().len();
        let (status, answer) = w.deliver(&client, "ci", SECRET, &id, w.now(), &body);
        assert_eq!(status, StatusCode::CONFLICT, "{answer}");
        assert_eq!(answer["error"]["code"], "replayed");
        assert_eq!(w.up.requests().len(), before);
    }
    let audit = w.audit_actions();
    assert_eq!(
        audit
            .iter()
            .filter(|(a, ..)| a == "webhook.accepted")
            .count(),
        2
    );
    let replays: Vec<_> = audit
        .iter()
        .filter(|(a, _, d)| a == "webhook.refused" && d["reason"] == "replayed")
        .collect();
    assert_eq!(replays.len(), 2);
    let all = format!("{audit:?}");
    assert!(!all.contains("nightly build"), "the body is never audited");
    assert!(!all.contains(SECRET));
}

#[test]
fn old_bad_unknown_and_oversized_deliveries_are_refused_in_the_apis_shape() {
    let w = World::start(FAST);
    let client = w.client(true);
    let body = text_body("hello");

    // Signed five minutes and a bit ago, as the gateway's clock sees it.
    let t = w.now();
    w.gateway.advance_clock(Duration::from_secs(301));
    let (status, answer) = w.deliver(&client, "ci", SECRET, "old-1", t, &body);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["error"]["code"], "stale_signature");

    let (bad_status, bad) = w.deliver(&client, "ci", &"0".repeat(64), "bad-1", w.now(), &body);
    assert_eq!(bad_status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad["error"]["code"], "bad_signature");
    let (ghost_status, ghost) = w.deliver(&client, "ghost", SECRET, "bad-1", w.now(), &body);
    assert_eq!(
        (ghost_status, &ghost),
        (bad_status, &bad),
        "an unknown channel is a bad signature"
    );

    // The body changed after signing.
    let signature = signature_header(SECRET.as_bytes(), w.now(), "bad-2", &body);
    let (status, answer) = w.deliver_raw(&client, "ci", "bad-2", &signature, &text_body("hellO"));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["error"]["code"], "bad_signature");

    for (id, signature) in [("m-1", "v1=abc"), ("", "t=1,v1=00"), ("m 2", "t=1")] {
        let (status, answer) = w.deliver_raw(&client, "ci", id, signature, &body);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"]["code"], "bad_request");
    }

    let (status, answer) = w.deliver(&client, "ci", SECRET, "not-text", w.now(), b"[1,2]");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["code"], "invalid_request");

    let huge = text_body(&"x".repeat(70 * 1024));
    let (status, answer) = w.deliver(&client, "ci", SECRET, "huge-1", w.now(), &huge);
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer["error"]["code"], "payload_too_large");

    assert!(
        w.up.requests().is_empty(),
        "no refused delivery reached the agent"
    );
    let reasons: Vec<String> = w
        .audit_actions()
        .into_iter()
        .filter(|(a, ..)| a == "webhook.refused")
        .map(|(_, _, d)| d["reason"].as_str().unwrap().to_string())
        .collect();
    for reason in [
        "stale_timestamp",
        "bad_signature",
        "malformed_header",
        "bad_body",
        "too_large",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} not audited: {reasons:?}"
        );
    }

    // Right after all that, a good delivery is served.
    w.up.push(Answer::openai_stream(&["hi"], (1, 1)));
    let (status, answer) = w.deliver(&client, "ci", SECRET, "good-1", w.now(), &body);
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[test]
fn with_a_reply_url_the_answer_is_202_and_the_reply_is_posted_signed() {
    let w = World::start(FAST);
    let client = w.client(false);
    w.up.push(Answer::openai_stream(&["Disk is at 71%."], (5, 4)));
    w.receiver.push(Answer::status(204));
    let (status, answer) = w.deliver(
        &client,
        "later",
        ASYNC_SECRET,
        "disk-1",
        w.now(),
        &text_body("How full is the disk?"),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["status"], "accepted");
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.receiver.requests().is_empty() {
        assert!(Instant::now() < deadline, "no reply was posted");
        std::thread::sleep(Duration::from_millis(20));
    }
    let posted = w.receiver.requests().remove(0);
    assert_eq!(posted.path, "/replies");
    assert_eq!(posted.header("x-aisopod-delivery"), Some("disk-1"));
    let signature = parse_signature(posted.header(SIGNATURE_HEADER).unwrap()).unwrap();
    assert!(verify(
        ASYNC_SECRET.as_bytes(),
        &signature,
        "disk-1",
        &posted.body
    ));
    assert_eq!(posted.json()["reply"], "Disk is at 71%.");
    assert_eq!(posted.json()["channel"], "later");

    // A receiver that fails is a failed reply in the audit log.
    w.up.push(Answer::openai_stream(&["ok"], (1, 1)));
    w.receiver.push(Answer::status(500));
    let (status, _) = w.deliver(
        &client,
        "later",
        ASYNC_SECRET,
        "disk-2",
        w.now(),
        &text_body("again"),
    );
    assert_eq!(status, StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let failed = w
            .audit_actions()
            .into_iter()
            .any(|(a, o, d)| a == "webhook.reply" && o == "failure" && d["delivery"] == "disk-2");
        if failed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the failed reply was not audited"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn channels_are_managed_with_their_scopes_and_the_secret_is_shown_once() {
    let w = World::start(FAST);
    let session = w.login("owner");
    let manage = w.api_token(
        &session,
        "hooks-manage",
        &["channel:manage", "channel:read"],
    );
    let read = w.api_token(&session, "hooks-read", &["channel:read"]);
    let bob = w.login("bob");
    for http1 in [true, false] {
        let client = w.client(http1);
        let name = if http1 { "made-h1" } else { "made-h2" };
        let call = |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
            let mut request = client.request(method, w.url(path)).bearer_auth(token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().unwrap();
            let status = response.status();
            let text = response.text().unwrap();
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
                text,
            )
        };
        use reqwest::Method as M;

        let (status, _, _) = call(
            M::POST,
            "/api/v1/channels",
            &read,
            Some(json!({"name": name, "agent": "helper"})),
        );
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, created, _) = call(
            M::POST,
            "/api/v1/channels",
            &manage,
            Some(json!({"name": name, "agent": "helper"})),
        );
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let secret = created["secret"].as_str().unwrap().to_string();
        assert_eq!(secret.len(), 64);
        assert_eq!(created["channel"]["owner"], "owner");

        let (status, listed, text) = call(M::GET, "/api/v1/channels", &read, None);
        assert_eq!(status, StatusCode::OK);
        assert!(!text.contains(&secret), "a listing never shows the secret");
        assert!(!text.contains(SECRET));
        let names: Vec<&str> = listed["channels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&name) && names.contains(&"ci"), "{names:?}");
        let (status, one, text) = call(M::GET, &format!("/api/v1/channels/{name}"), &read, None);
        assert_eq!(status, StatusCode::OK);
        assert!(!text.contains(&secret));
        assert_eq!(one["secret_hint"], format!("…{}", &secret[60..]));

        // The new channel takes deliveries signed with the secret it was given.
        w.up.push(Answer::openai_stream(&["yes"], (1, 1)));
        let body = text_body("up?");
        let (status, answer) = w.deliver(&client, name, &secret, "first", w.now(), &body);
        assert_eq!(status, StatusCode::OK, "{answer}");

        // Rotation: the old secret stops working, the new one works.
        let (status, rotated, _) = call(
            M::POST,
            &format!("/api/v1/channels/{name}/rotate-secret"),
            &manage,
            None,
        );
        assert_eq!(status, StatusCode::OK, "{rotated}");
        let fresh = rotated["secret"].as_str().unwrap().to_string();
        assert_ne!(fresh, secret);
        let (status, _) = w.deliver(&client, name, &secret, "second", w.now(), &body);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        w.up.push(Answer::openai_stream(&["yes"], (1, 1)));
        let (status, _) = w.deliver(&client, name, &fresh, "third", w.now(), &body);
        assert_eq!(status, StatusCode::OK);

        // A secret that is an API token, or another channel's, is refused.
        let (status, refused, text) = call(
            M::POST,
            &format!("/api/v1/channels/{name}/rotate-secret"),
            &manage,
            Some(json!({"secret": read})),
        );
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert!(
            !text.contains(&read),
            "the refusal does not echo the secret"
        );
        let (status, _, _) = call(
            M::POST,
            "/api/v1/channels",
            &manage,
            Some(json!({"name": format!("{name}-x"), "agent": "helper", "secret": SECRET})),
        );
        assert_eq!(status, StatusCode::CONFLICT);

        // Bad fields are named; a configured channel is read-only; others' are hidden.
        let (status, bad, _) = call(
            M::POST,
            "/api/v1/channels",
            &manage,
            Some(json!({"name": "Bad Name", "agent": "nobody"})),
        );
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let (status, bad, _) = call(
            M::POST,
            "/api/v1/channels",
            &manage,
            Some(json!({"name": format!("{name}-y"), "agent": "helper", "reply_timeout": "soon"})),
        );
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            bad["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("reply_timeout"),
            "{bad}"
        );
        let (status, _, _) = call(M::DELETE, "/api/v1/channels/ci", &manage, None);
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, _, _) = call(M::GET, &format!("/api/v1/channels/{name}"), &bob, None);
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "bob's account holds no channel scope"
        );
        let (status, _, _) = call(
            M::POST,
            "/api/v1/channels",
            &bob,
            Some(json!({"name": "bobs", "agent": "helper", "owner": "owner"})),
        );
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "bob cannot make a channel, let alone one that runs as the owner"
        );

        let (status, updated, _) = call(
            M::PUT,
            &format!("/api/v1/channels/{name}"),
            &manage,
            Some(json!({"name": name, "agent": "helper", "reply_timeout": 30})),
        );
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!(updated["reply_timeout"], 30);
        let (status, _, _) = call(
            M::DELETE,
            &format!("/api/v1/channels/{name}"),
            &manage,
            None,
        );
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _, _) = call(M::GET, &format!("/api/v1/channels/{name}"), &read, None);
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, answer) = w.deliver(&client, name, &fresh, "fourth", w.now(), &body);
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        let (status, _, _) = call(M::GET, "/api/v1/channels", "not-a-token", None);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[test]
fn a_flood_of_bad_signatures_is_limited_and_the_owners_delivery_still_goes_through() {
    let w = World::start(
        "[rate_limit]\nauth_per_minute = 6\nauth_burst = 5\n[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1",
    );
    let client = w.client(true);
    let body = text_body("status?");
    let mut limited = 0;
    for i in 0..40 {
        let (status, answer) = w.deliver(
            &client,
            "ci",
            &"f".repeat(64),
            &format!("flood-{i}"),
            w.now(),
            &body,
        );
        match status {
            StatusCode::UNAUTHORIZED => {
                assert!(limited == 0, "refused outright again after being limited")
            }
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(answer["error"]["code"], "rate_limited");
                limited += 1;
            }
            other => panic!("unexpected {other}: {answer}"),
        }
    }
    assert!(limited >= 30, "only {limited} of 40 were limited");
    let audit = w.audit_actions();
    let records = audit
        .iter()
        .filter(|(a, ..)| a.starts_with("webhook."))
        .count();
    assert!(
        records <= 8,
        "a flood writes a few records, not one per try: {records}"
    );

    // The owner's sender, from the same address, is served during and right after.
    w.up.push(Answer::openai_stream(&["fine"], (1, 1)));
    let (status, answer) = w.deliver(&client, "ci", SECRET, "owner-1", w.now(), &body);
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["reply"], "fine");
}

#[test]
fn the_shell_example_in_the_docs_works_as_written() {
    let w = World::start(FAST);
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/src/webhooks.md"))
            .unwrap();
    let script = page
        .split("```sh\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .find(|block| block.contains("X-Aisopod-Signature"))
        .expect("the docs show a signed delivery");
    w.up.push(Answer::openai_stream(&["Nothing to worry about."], (3, 4)));
    let output = std::process::Command::new("bash")
        .arg("-euc")
        .arg(script)
        .env("AISOPOD_HOOK_SECRET", SECRET)
        .env("AISOPOD_URL", &w.gateway.url)
        .env("AISOPOD_CA", w.gateway.data_dir.join("tls/ca.pem"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&output.stdout)));
    assert_eq!(answer["reply"], "Nothing to worry about.", "{answer}");
    assert!(answer["delivery"].as_str().unwrap().starts_with("backup-"));
}
