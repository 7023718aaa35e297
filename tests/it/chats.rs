//! Chats over REST, over HTTP/1.1 and HTTP/2: who may open a chat, who sees which
//! message on every read route, and bad input refused with a clear error that changes
//! nothing. Also the shared fixtures of the agents and usage tests.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::support::{Gateway, Setup, stderr, version_of};

pub const FAST: &str = "[rate_limit]\nauth_per_minute = 1000\nauth_burst = 1000\napi_per_minute = 10000\napi_burst = 1000\n[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1";
pub const PASSWORD: &str = "walrus cinnamon lantern quietly";

/// A gateway with `extra` config, the admin `root` and the users `users`, each logged
/// in: (name, access token).
pub struct World {
    pub setup: Setup,
    pub gateway: Gateway,
    pub tokens: Vec<(String, String)>,
}

impl World {
    pub fn new(extra: &str, users: &[&str]) -> World {
        World::with_limits(FAST, extra, users)
    }

    /// [`World::new`] with `base` config in place of [`FAST`].
    pub fn with_limits(base: &str, extra: &str, users: &[&str]) -> World {
        let setup = Setup::new(&format!("{base}\n{extra}"));
        for (name, admin) in
            std::iter::once((&"root", true)).chain(users.iter().map(|u| (u, false)))
        {
            let mut args = vec!["user", "add"];
            if admin {
                args.push("--admin");
            }
            args.extend([*name, "--password-stdin"]);
            let added = setup.cli_with(&args, &[], Some(PASSWORD.as_bytes()));
            assert!(added.status.success(), "{}", stderr(&added));
        }
        let gateway = setup.start();
        let tokens = std::iter::once("root")
            .chain(users.iter().copied())
            .map(|name| (name.to_string(), login(&gateway, name)))
            .collect();
        World {
            setup,
            gateway,
            tokens,
        }
    }

    /// Logs everyone in again (after the clock moved past the sessions' expiry).
    pub fn log_in_again(&mut self) {
        for (name, token) in &mut self.tokens {
            *token = login(&self.gateway, name);
        }
    }

    pub fn token(&self, name: &str) -> &str {
        &self.tokens.iter().find(|(n, _)| n == name).unwrap().1
    }

    pub fn client(&self, http1: bool) -> Client {
        self.gateway.client_speaking(version_of(http1), "127.0.0.1")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.url)
    }

    /// An API token of `root` with these scopes.
    pub fn api_token(&self, name: &str, scopes: &[&str]) -> String {
        let created: Value = self
            .gateway
            .client()
            .post(self.url("/auth/create-token"))
            .bearer_auth(self.token("root"))
            .json(&json!({"name": name, "scopes": scopes}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        created["token"].as_str().expect("a token").to_string()
    }
}

fn login(gateway: &Gateway, user: &str) -> String {
    let tokens: Value = gateway
        .client()
        .post(format!("{}/auth/login", gateway.url))
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

/// Sends a request and returns the status and the JSON body (`null` when empty).
pub fn call(
    client: &Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().unwrap();
    let status = response.status();
    let text = response.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn contents(messages: &Value) -> BTreeSet<String> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

/// Every message `token` can read in `chat` by walking its pages one message at a time.
fn paged(w: &World, client: &Client, chat: &str, token: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => w.url(&format!("/api/v1/chats/{chat}/messages?limit=1&cursor={c}")),
            None => w.url(&format!("/api/v1/chats/{chat}/messages?limit=1")),
        };
        let (status, page) = call(client, reqwest::Method::GET, &url, token, None);
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(contents(&page["messages"]));
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return seen,
        }
    }
}

#[test]
fn nobody_reads_what_their_visibility_hides_on_any_route_over_http1_and_http2() {
    use reqwest::Method;
    let w = World::new("", &["alice", "bob", "carol"]);
    for http1 in [true, false] {
        let client = w.client(http1);
        let post = |token: &str, path: &str, body: Value| {
            call(&client, Method::POST, &w.url(path), token, Some(body))
        };
        let (status, chat) = post(
            w.token("alice"),
            "/api/v1/chats",
            json!({"title": "trip", "members": ["bob"]}),
        );
        assert_eq!(status, StatusCode::CREATED, "{chat}");
        let id = chat["id"].as_str().unwrap().to_string();
        let messages = format!("/api/v1/chats/{id}/messages");
        for (who, content, visibility) in [
            ("alice", "hello all", "public"),
            ("alice", "alice secret", "private"),
            ("alice", "note for the model", "agent_only"),
            ("bob", "bob secret", "private"),
            ("root", "admin note", "admin_only"),
        ] {
            let (status, body) = post(
                w.token(who),
                &messages,
                json!({"content": content, "visibility": visibility}),
            );
            assert_eq!(status, StatusCode::CREATED, "{who} {visibility}: {body}");
        }
        // A member cannot post what only admins may.
        let (status, body) = post(
            w.token("bob"),
            &messages,
            json!({"content": "fake admin", "visibility": "admin_only"}),
        );
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

        let expect = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        for (who, visible) in [
            ("alice", expect(&["hello all", "alice secret"])),
            ("bob", expect(&["hello all", "bob secret"])),
            ("root", expect(&["hello all", "admin note"])),
        ] {
            let token = w.token(who);
            let (status, read) = call(
                &client,
                Method::GET,
                &w.url(&format!("/api/v1/chats/{id}")),
                token,
                None,
            );
            assert_eq!(status, StatusCode::OK, "{read}");
            assert_eq!(
                contents(&read["messages"]),
                visible,
                "{who} GET chat, http1={http1}"
            );
            let (_, history) = call(&client, Method::GET, &w.url(&messages), token, None);
            assert_eq!(
                contents(&history["messages"]),
                visible,
                "{who} GET messages"
            );
            assert_eq!(paged(&w, &client, &id, token), visible, "{who} paging");
        }

        // A turn's context is what its prompter may see plus the agent_only note: never
        // another member's private message, never the admins' note.
        let app = w.gateway.app.as_ref().unwrap();
        for (who, context) in [
            (
                "alice",
                expect(&["hello all", "alice secret", "note for the model"]),
            ),
            (
                "bob",
                expect(&["hello all", "bob secret", "note for the model"]),
            ),
        ] {
            let prompter = aisopod::gateway::chats::Viewer {
                user: who.into(),
                device: None,
                admin: false,
            };
            let seen: BTreeSet<String> = app
                .gateway
                .chats
                .turn_context(&prompter, &id, 100)
                .unwrap()
                .into_iter()
                .map(|m| m.content)
                .collect();
            assert_eq!(seen, context, "{who}'s turn");
        }

        // Carol is no member: the chat does not exist for her on any route.
        let carol = w.token("carol");
        for (method, path) in [
            (Method::GET, format!("/api/v1/chats/{id}")),
            (Method::GET, messages.clone()),
            (Method::DELETE, format!("/api/v1/chats/{id}")),
        ] {
            let (status, body) = call(&client, method.clone(), &w.url(&path), carol, None);
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
            assert_eq!(body["error"]["code"], "not_found");
        }
        let (status, _) = post(carol, &messages, json!({"content": "let me in"}));
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, listed) = call(&client, Method::GET, &w.url("/api/v1/chats"), carol, None);
        assert_eq!(listed["chats"], json!([]));
        let (_, listed) = call(
            &client,
            Method::GET,
            &w.url("/api/v1/chats"),
            w.token("bob"),
            None,
        );
        assert!(
            listed["chats"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["id"] == id)
        );

        // A member may not delete; the owner may, and everything in it is gone.
        let (status, _) = call(
            &client,
            Method::DELETE,
            &w.url(&format!("/api/v1/chats/{id}")),
            w.token("bob"),
            None,
        );
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = call(
            &client,
            Method::DELETE,
            &w.url(&format!("/api/v1/chats/{id}")),
            w.token("alice"),
            None,
        );
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = call(
            &client,
            Method::GET,
            &w.url(&messages),
            w.token("alice"),
            None,
        );
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            app.gateway
                .chats
                .turn_context(
                    &aisopod::gateway::chats::Viewer {
                        user: "alice".into(),
                        device: None,
                        admin: false
                    },
                    &id,
                    100
                )
                .is_err()
        );
    }
}

#[test]
fn bad_chat_input_gets_a_clear_error_and_changes_nothing() {
    use reqwest::Method;
    let w = World::new(
        "[chats]\nmax_message = \"1k\"\nmax_page = 20\nmax_per_user = 2",
        &["alice"],
    );
    let alice = w.token("alice");
    for http1 in [true, false] {
        let client = w.client(http1);
        let (status, chat) = call(
            &client,
            Method::POST,
            &w.url("/api/v1/chats"),
            alice,
            Some(json!({"title": format!("chat http1={http1}")})),
        );
        assert_eq!(status, StatusCode::CREATED, "{chat}");
        let id = chat["id"].as_str().unwrap();
        let messages = w.url(&format!("/api/v1/chats/{id}/messages"));
        let (status, _) = call(
            &client,
            Method::POST,
            &messages,
            alice,
            Some(json!({"content": "kept"})),
        );
        assert_eq!(status, StatusCode::CREATED);

        // (method, url, body, status, code, what the message says)
        type Refusal = (
            Method,
            String,
            Option<Value>,
            StatusCode,
            &'static str,
            &'static str,
        );
        let refusals: Vec<Refusal> = vec![
            (
                Method::POST,
                messages.clone(),
                Some(json!({"content": "x".repeat(2000)})),
                StatusCode::PAYLOAD_TOO_LARGE,
                "message_too_large",
                "max_message",
            ),
            (
                Method::POST,
                messages.clone(),
                Some(json!({"content": "hi", "visibility": "secret"})),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "unknown variant",
            ),
            (
                Method::POST,
                messages.clone(),
                Some(json!({"content": "   "})),
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "empty",
            ),
            (
                Method::GET,
                format!("{messages}?cursor=yesterday"),
                None,
                StatusCode::BAD_REQUEST,
                "bad_cursor",
                "cursor",
            ),
            (
                Method::GET,
                format!("{messages}?limit=5000"),
                None,
                StatusCode::BAD_REQUEST,
                "page_too_large",
                "max_page",
            ),
            (
                Method::GET,
                w.url("/api/v1/chats?cursor=not-a-chat"),
                None,
                StatusCode::BAD_REQUEST,
                "bad_cursor",
                "cursor",
            ),
            (
                Method::GET,
                w.url("/api/v1/chats/..%2F..%2Fetc"),
                None,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "not a chat id",
            ),
            (
                Method::POST,
                w.url("/api/v1/chats/0123456789abcdef0123456789abcdef/messages"),
                Some(json!({"content": "to nowhere"})),
                StatusCode::NOT_FOUND,
                "not_found",
                "no chat",
            ),
            (
                Method::POST,
                w.url("/api/v1/chats"),
                Some(json!({"title": "x", "members": ["nobody"]})),
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "members.0",
            ),
            (
                Method::POST,
                w.url("/api/v1/chats"),
                Some(json!({"title": "x", "agent": "no-such-agent"})),
                StatusCode::NOT_FOUND,
                "not_found",
                "no agent",
            ),
        ];
        for (method, url, body, status, code, says) in refusals {
            let (got, answer) = call(&client, method.clone(), &url, alice, body);
            assert_eq!(got, status, "{method} {url}: {answer}");
            assert_eq!(answer["error"]["code"], code, "{method} {url}: {answer}");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains(says), "{method} {url}: {message}");
        }
        let (_, history) = call(&client, Method::GET, &messages, alice, None);
        assert_eq!(
            contents(&history["messages"]),
            BTreeSet::from(["kept".to_string()])
        );
    }
    // Two chats exist (one per protocol): the third is refused and none is added.
    let client = w.client(true);
    let (status, answer) = call(
        &client,
        Method::POST,
        &w.url("/api/v1/chats"),
        alice,
        Some(json!({"title": "one too many"})),
    );
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "limit_reached");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_per_user")
    );
    let (_, listed) = call(&client, Method::GET, &w.url("/api/v1/chats"), alice, None);
    assert_eq!(listed["chats"].as_array().unwrap().len(), 2);
    // The owner is served normally right after the refusals.
    let chat = listed["chats"][0]["id"].as_str().unwrap();
    let (status, _) = call(
        &client,
        Method::POST,
        &w.url(&format!("/api/v1/chats/{chat}/messages")),
        alice,
        Some(json!({"content": "still here"})),
    );
    assert_eq!(status, StatusCode::CREATED);
}

#[test]
fn chat_listing_pages_with_a_cursor_newest_first() {
    use reqwest::Method;
    let w = World::new("", &["alice"]);
    let alice = w.token("alice");
    let client = w.client(false);
    let mut made = Vec::new();
    for n in 0..5 {
        let (status, chat) = call(
            &client,
            Method::POST,
            &w.url("/api/v1/chats"),
            alice,
            Some(json!({"title": format!("chat {n}")})),
        );
        assert_eq!(status, StatusCode::CREATED);
        made.push(chat["id"].as_str().unwrap().to_string());
        // Chat ids start with the creation time in milliseconds.
        w.gateway.advance_clock(std::time::Duration::from_millis(5));
    }
    let mut seen = Vec::new();
    let mut url = w.url("/api/v1/chats?limit=2");
    loop {
        let (status, page) = call(&client, Method::GET, &url, alice, None);
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["chats"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string()),
        );
        match page["next"].as_str() {
            Some(next) => url = w.url(&format!("/api/v1/chats?limit=2&cursor={next}")),
            None => break,
        }
    }
    made.reverse();
    assert_eq!(seen, made);
}

/// The default API rate limit lets one phone run a streaming chat, the dashboard and an
/// OpenAI client at once: a busy minute of all three, sent as fast as the gateway
/// answers (harder than the same requests spread over the minute), never sees a 429,
/// over HTTP/1.1 and HTTP/2. A flood, anonymous or with a valid token, is still refused,
/// and the owner is served right after.
#[test]
fn one_phone_with_three_clients_is_never_limited_while_a_flood_is() {
    use reqwest::Method;
    let w = World::with_limits(
        "[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1",
        "",
        &[],
    );
    let session = w.token("root").to_string();
    let openai = w.api_token("openai-client", &["chat:read", "chat:write", "agent:read"]);
    let script = w.api_token("runaway-script", &["chat:read"]);
    let dashboard = w.gateway.client_speaking(version_of(false), "127.0.0.1");
    let chat_app = w.gateway.client_speaking(version_of(true), "127.0.0.1");
    let openai_client = w.gateway.client_speaking(version_of(false), "127.0.0.1");
    let (status, chat) = call(
        &chat_app,
        Method::POST,
        &w.url("/api/v1/chats"),
        &session,
        Some(json!({"title": "phone"})),
    );
    assert_eq!(status, StatusCode::CREATED);
    let messages = w.url(&format!(
        "/api/v1/chats/{}/messages",
        chat["id"].as_str().unwrap()
    ));
    let dashboard_paths = [
        "/api/v1/chats",
        "/api/v1/agents",
        "/api/v1/usage",
        "/api/v1/approvals",
    ];

    let mut minute: Vec<(&Client, Method, String, &str, Option<Value>)> = Vec::new();
    // The dashboard loads (12 requests), then polls three endpoints every 5 s (36).
    for i in 0..48 {
        let path = dashboard_paths[i % dashboard_paths.len()];
        minute.push((&dashboard, Method::GET, w.url(path), &session, None));
    }
    // The chat: a WebSocket ticket, then five messages, each with a history read.
    minute.push((
        &chat_app,
        Method::POST,
        w.url("/auth/ws-ticket"),
        &session,
        None,
    ));
    for n in 0..5 {
        let body = json!({"content": format!("message {n}")});
        minute.push((
            &chat_app,
            Method::POST,
            messages.clone(),
            &session,
            Some(body),
        ));
        minute.push((&chat_app, Method::GET, messages.clone(), &session, None));
    }
    // An OpenAI client in a tool loop: one request every 2 s.
    for _ in 0..30 {
        minute.push((
            &openai_client,
            Method::GET,
            w.url("/api/v1/agents"),
            &openai,
            None,
        ));
    }
    // Interleaved, as three clients on one phone would send them.
    minute.sort_by_key(|(_, _, url, _, _)| url.len() % 3);
    let sent = minute.len();
    for (client, method, url, token, body) in minute {
        let (status, answer) = call(client, method.clone(), &url, token, body);
        assert!(
            status.is_success(),
            "{method} {url}: {status} {answer} (of {sent})"
        );
    }

    // Floods from other addresses: without a credential, and with a valid token.
    let anonymous = w.gateway.client_speaking(version_of(false), "127.0.0.9");
    let tokened = w.gateway.client_speaking(version_of(true), "127.0.0.10");
    let mut limited = [0, 0];
    for _ in 0..400 {
        let status = anonymous
            .get(w.url("/api/v1/chats"))
            .send()
            .unwrap()
            .status();
        limited[0] += usize::from(status == StatusCode::TOO_MANY_REQUESTS);
        let (status, _) = call(
            &tokened,
            Method::GET,
            &w.url("/api/v1/chats"),
            &script,
            None,
        );
        limited[1] += usize::from(status == StatusCode::TOO_MANY_REQUESTS);
    }
    assert!(
        limited[0] >= 300,
        "anonymous flood: {} of 400 refused",
        limited[0]
    );
    assert!(
        limited[1] >= 100,
        "token flood: {} of 400 refused",
        limited[1]
    );

    // The owner's clients are served at once.
    for (client, token) in [(&dashboard, &session), (&openai_client, &openai)] {
        let (status, _) = call(client, Method::GET, &w.url("/api/v1/chats"), token, None);
        assert_eq!(status, StatusCode::OK);
    }
}
