//! The MCP endpoint (`/mcp`) as MCP clients use it, over HTTP/1.1 and HTTP/2: the
//! session's life (initialize, notifications, ping, tools/list, tools/call, DELETE,
//! expiry on the gateway's clock, the per-token cap), authentication as a resource
//! server (401 with the resource metadata's URL, X-API-Key, no tokens in URLs, scopes
//! per tool), the Origin check before anything else, bad input answered in JSON-RPC's
//! shape with nothing done, approvals of a tool call answered over `/ws`, and the
//! official MCP Python SDK client (tests/python/mcp_client.py).

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::chats::{FAST, World};
use crate::upstream::{Answer, Upstream};

/// A command the default allowlist sends to a person for approval.
const NEEDS_APPROVAL: &str = "factor 42 > factors.txt; cat factors.txt";
const ALLOWED_ORIGIN: &str = "https://dash.example";

/// A gateway with the agent `helper` (file tools and shell) on a scripted upstream; an
/// API token with every scope the tools need and one with `chat:write` only.
struct Fixture {
    w: World,
    up: Upstream,
    full: String,
    chatter: String,
    _runtime: tokio::runtime::Runtime,
}

impl Fixture {
    /// The owner's `/ws`, past its hello: where approval requests arrive.
    fn approver_socket(&self) -> crate::support::WsSocket {
        let ca = std::fs::read(self.w.gateway.data_dir.join("tls/ca.pem")).unwrap();
        let mut socket = crate::support::wss_connect(
            &ca,
            self.w.gateway.addr().port(),
            "/ws",
            &[("authorization", &format!("Bearer {}", self.w.token("root")))],
        )
        .unwrap();
        assert_eq!(
            crate::support::next_ws_message(&mut socket)["type"],
            "hello"
        );
        socket
    }

    fn start() -> Fixture {
        let (runtime, up) = Upstream::on_own_runtime();
        let sandbox = crate::sandbox::sandbox_toml(crate::sandbox::SANDBOX);
        let security =
            format!("[security]\nmode = \"local\"\ncors_origins = [\"{ALLOWED_ORIGIN}\"]\n");
        let sandbox = if sandbox.contains("[security]\nmode = \"local\"\n") {
            sandbox.replace("[security]\nmode = \"local\"\n", &security)
        } else {
            format!("{sandbox}{security}")
        };
        let extra = format!(
            "[[providers]]\nname = \"local\"\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"sk-upstream\"\nmodels = [\"m1\"]\nretries = 0\n\
             [[agents]]\nname = \"helper\"\nprovider = \"local\"\nmodel = \"m1\"\ntools = [\"shell\", \"read_file\", \"write_file\", \"list_dir\"]\n\
             [tools.shell]\npolicy = \"allowlist\"\n{sandbox}",
            up.openai_base()
        );
        let w = World::with_limits(&format!("sse_keepalive = \"40ms\"\n{FAST}"), &extra, &[]);
        let full = w.api_token("mcp", &["chat:read", "chat:write", "agent:manage"]);
        let chatter = w.api_token("chatter", &["chat:write"]);
        Fixture {
            w,
            up,
            full,
            chatter,
            _runtime: runtime,
        }
    }

    fn url(&self) -> String {
        self.w.url("/mcp")
    }

    /// Opens a session with `token`; its id.
    fn initialize(&self, client: &Client, token: &str) -> String {
        let (status, headers, body) = post(
            client,
            &self.url(),
            Some(token),
            None,
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"}}}),
        );
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["result"]["protocolVersion"], "2025-11-25");
        let session = headers["mcp-session-id"].to_str().unwrap().to_string();
        let (status, _, _) = post(
            client,
            &self.url(),
            Some(token),
            Some(&session),
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        );
        assert_eq!(status, StatusCode::ACCEPTED);
        session
    }

    fn rpc(
        &self,
        client: &Client,
        token: &str,
        session: &str,
        id: i64,
        method: &str,
        params: Value,
    ) -> (StatusCode, Value) {
        let (status, _, body) = post(
            client,
            &self.url(),
            Some(token),
            Some(session),
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        );
        (status, body)
    }

    /// The audit records of `action`.
    fn audited(&self, action: &str) -> Vec<aisopod::audit::AuditRecord> {
        let app = self.w.gateway.app.clone().unwrap();
        app.audit()
            .all()
            .filter_map(Result::ok)
            .filter(|r| r.action == action)
            .collect()
    }
}

/// POSTs one message as MCP clients do; the status, headers and the one JSON-RPC
/// message of the answer (from JSON or from the last SSE `data:`), `null` when empty.
fn post(
    client: &Client,
    url: &str,
    token: Option<&str>,
    session: Option<&str>,
    body: &Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().unwrap();
    (status, headers, message_of(&text))
}

/// The last JSON-RPC message of a JSON or SSE body.
fn message_of(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Null;
    }
    if let Ok(value) = serde_json::from_str(text) {
        return value;
    }
    sse_messages(text)
        .pop()
        .unwrap_or_else(|| panic!("neither JSON nor SSE: {text}"))
}

fn sse_messages(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).unwrap())
        .collect()
}

fn tool_names(body: &Value) -> Vec<String> {
    body["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_session_lists_and_calls_tools_and_ends_over_http1_and_http2() {
    let f = Fixture::start();
    for http1 in [true, false] {
        let client = f.w.client(http1);
        let session = f.initialize(&client, &f.full);
        let (status, pong) = f.rpc(&client, &f.full, &session, 1, "ping", json!({}));
        assert_eq!((status, &pong["result"]), (StatusCode::OK, &json!({})));

        let (_, listed) = f.rpc(&client, &f.full, &session, 2, "tools/list", json!({}));
        assert_eq!(
            tool_names(&listed),
            [
                "helper",
                "helper__list_dir",
                "helper__read_file",
                "helper__shell",
                "helper__write_file"
            ]
        );
        let shell = &listed["result"]["tools"][3];
        assert_eq!(shell["inputSchema"]["required"], json!(["command"]));

        // A registry tool that runs: written, then read back from the workspace.
        let name = if http1 { "one.txt" } else { "two.txt" };
        let (status, written) = f.rpc(&client, &f.full, &session, 3, "tools/call",
            json!({"name": "helper__write_file", "arguments": {"path": name, "content": "hello mcp"}}));
        assert_eq!(status, StatusCode::OK, "{written}");
        assert_eq!(written["result"]["isError"], false, "{written}");
        let (_, read) = f.rpc(
            &client,
            &f.full,
            &session,
            4,
            "tools/call",
            json!({"name": "helper__read_file", "arguments": {"path": name}}),
        );
        assert_eq!(read["id"], 4);
        assert_eq!(
            read["result"]["structuredContent"]["content"], "hello mcp",
            "{read}"
        );
        assert!(
            read["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("hello mcp")
        );

        // The agent as a tool: one turn, its answer as the result.
        f.up.push(Answer::openai_stream(&["Hello ", "from helper"], (3, 2)));
        let (status, asked) = f.rpc(
            &client,
            &f.full,
            &session,
            5,
            "tools/call",
            json!({"name": "helper", "arguments": {"prompt": "say hello"}}),
        );
        assert_eq!(status, StatusCode::OK, "{asked}");
        assert_eq!(
            asked["result"]["content"][0]["text"], "Hello from helper",
            "{asked}"
        );
        assert_eq!(asked["result"]["isError"], false);
        let prompt = f.up.requests().pop().unwrap().json();
        assert_eq!(
            prompt["messages"].as_array().unwrap().last().unwrap()["content"],
            "say hello"
        );

        // No server stream; DELETE ends the session, which is then unknown.
        let get = client
            .get(f.url())
            .bearer_auth(&f.full)
            .header("accept", "text/event-stream")
            .send()
            .unwrap();
        assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
        let deleted = client
            .delete(f.url())
            .bearer_auth(&f.full)
            .header("mcp-session-id", &session)
            .send()
            .unwrap();
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        let (status, gone) = f.rpc(&client, &f.full, &session, 6, "ping", json!({}));
        assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
        assert_eq!(gone["error"]["code"], -32600);
    }
}

#[test]
fn authentication_origin_and_scopes_are_the_resource_servers() {
    let f = Fixture::start();
    for http1 in [true, false] {
        let client = f.w.client(http1);
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
        let base = f.w.gateway.url.clone();
        let metadata_url =
            format!("Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource\"");
        // No credential, and a wrong one: 401 naming the resource metadata, JSON-RPC shape.
        for token in [None, Some("aisopod_wrong_token")] {
            let (status, headers, body) = post(&client, &f.url(), token, None, &init);
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
            assert_eq!(headers["www-authenticate"], metadata_url.as_str());
            assert_eq!(body["jsonrpc"], "2.0");
            assert_eq!(body["error"]["code"], -32600);
        }
        // A token in the URL is refused, even a valid one.
        let (status, _, body) = post(
            &client,
            &format!("{}?access_token={}", f.url(), f.full),
            None,
            None,
            &init,
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        // A foreign browser origin is refused before the credential is even looked at.
        for token in [None, Some(f.full.as_str())] {
            let response = client
                .post(f.url())
                .header("origin", "https://evil.example")
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json");
            let response = match token {
                Some(t) => response.bearer_auth(t),
                None => response,
            };
            let response = response.body(init.to_string()).send().unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
            assert_eq!(response.json::<Value>().unwrap()["error"]["code"], -32600);
        }
        // The configured origin and the gateway's own are served; so is X-API-Key.
        for origin in [ALLOWED_ORIGIN.to_string(), base.clone()] {
            let response = client
                .post(f.url())
                .header("origin", origin)
                .header("x-api-key", &f.full)
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .body(init.to_string())
                .send()
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert!(response.headers().contains_key("mcp-session-id"));
        }
        // The metadata names this device as its own authorization server.
        for path in [
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
        ] {
            let meta: Value = client.get(f.w.url(path)).send().unwrap().json().unwrap();
            assert_eq!(meta["resource"], format!("{base}/mcp"));
            assert_eq!(meta["authorization_servers"], json!([base]));
            assert_eq!(meta["bearer_methods_supported"], json!(["header"]));
        }
        let server: Value = client
            .get(f.w.url("/.well-known/oauth-authorization-server"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(server["issuer"], base);
        assert_eq!(
            server["device_authorization_endpoint"],
            format!("{base}/auth/device/code")
        );
        assert_eq!(server["token_endpoint"], format!("{base}/auth/token"));

        // chat:write sees and calls the agent, not its raw tools.
        let session = f.initialize(&client, &f.chatter);
        let (_, listed) = f.rpc(&client, &f.chatter, &session, 2, "tools/list", json!({}));
        assert_eq!(tool_names(&listed), ["helper"]);
        let (status, _, refused) = post(
            &client,
            &f.url(),
            Some(&f.chatter),
            Some(&session),
            &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                    "params": {"name": "helper__list_dir", "arguments": {"path": "."}}}),
        );
        assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
        assert_eq!(refused["id"], 3);
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("agent:manage")
        );
        // A session is its credential's: another token cannot use it.
        let (status, _) = f.rpc(&client, &f.full, &session, 4, "ping", json!({}));
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Right after all that, the owner is served normally.
        let (status, pong) = f.rpc(&client, &f.chatter, &session, 5, "ping", json!({}));
        assert_eq!(status, StatusCode::OK, "{pong}");
    }
    // Refusals are audited (once per address and minute, whichever layer refused).
    let refused = [f.audited("http.refused"), f.audited("mcp.refused")].concat();
    assert!(refused.iter().any(|r| r.target == "/mcp"), "{refused:?}");
}

#[test]
fn sessions_expire_are_capped_per_token_and_check_the_protocol_version() {
    let f = Fixture::start();
    let client = f.w.client(false);
    let first = f.initialize(&client, &f.full);
    let later: Vec<String> = (0..8).map(|_| f.initialize(&client, &f.full)).collect();
    // The ninth session of one token ended its least recently used, the first.
    let (status, _) = f.rpc(&client, &f.full, &first, 1, "ping", json!({}));
    assert_eq!(status, StatusCode::NOT_FOUND);
    for session in &later {
        assert_eq!(
            f.rpc(&client, &f.full, session, 2, "ping", json!({})).0,
            StatusCode::OK
        );
    }
    // Another token's sessions are untouched by that, and its own count apart.
    let other = f.initialize(&client, &f.chatter);
    // A token opening session after session never holds more than its 8: it cannot
    // fill the gateway's table against everyone else.
    for _ in 0..24 {
        f.initialize(&client, &f.full);
    }
    let app = f.w.gateway.app.clone().unwrap();
    assert_eq!(app.mcp.count(), 9);
    assert_eq!(
        f.rpc(&client, &f.chatter, &other, 8, "ping", json!({})).0,
        StatusCode::OK
    );
    let later: Vec<String> = (0..8).map(|_| f.initialize(&client, &f.full)).collect();
    // Without the session header, or with a protocol version never spoken: 400.
    let (status, _, body) = post(
        &client,
        &f.url(),
        Some(&f.full),
        None,
        &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["id"], 3);
    let response = client
        .post(f.url())
        .bearer_auth(&f.full)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-session-id", &later[0])
        .header("mcp-protocol-version", "1999-01-01")
        .body(json!({"jsonrpc": "2.0", "id": 4, "method": "ping"}).to_string())
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().unwrap().contains("1999-01-01"));
    // An hour idle ends a session; one in use lives on.
    f.w.gateway.advance_clock(Duration::from_secs(1800));
    assert_eq!(
        f.rpc(&client, &f.chatter, &other, 5, "ping", json!({})).0,
        StatusCode::OK
    );
    f.w.gateway.advance_clock(Duration::from_secs(1801));
    assert_eq!(
        f.rpc(&client, &f.full, &later[1], 6, "ping", json!({})).0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        f.rpc(&client, &f.chatter, &other, 7, "ping", json!({})).0,
        StatusCode::OK
    );
}

#[test]
fn bad_input_gets_json_rpc_errors_audited_with_nothing_done() {
    let f = Fixture::start();
    for http1 in [true, false] {
        let client = f.w.client(http1);
        let session = f.initialize(&client, &f.full);
        let raw = |text: String| {
            let response = client
                .post(f.url())
                .bearer_auth(&f.full)
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .header("mcp-session-id", &session)
                .body(text)
                .send()
                .unwrap();
            let status = response.status();
            (
                status,
                serde_json::from_str::<Value>(&response.text().unwrap()).unwrap(),
            )
        };
        let cases = [
            ("{\"jsonrpc\": \"2.0\", \"id\": 1,".to_string(), -32700, Value::Null),
            ("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]".to_string(), -32600, Value::Null),
            (json!({"jsonrpc": "1.0", "id": 2, "method": "ping"}).to_string(), -32600, json!(2)),
            (json!({"jsonrpc": "2.0", "id": 3, "method": "resources/list"}).to_string(), -32601, json!(3)),
            (json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": 7}}).to_string(), -32602, json!(4)),
            (json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "nope"}}).to_string(), -32602, json!(5)),
            (json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "helper__write_file",
                "arguments": {"path": "bad.txt", "content": 12}}}).to_string(), -32602, json!(6)),
            (json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "helper__write_file",
                "arguments": {"path": "bad.txt", "content": "x", "mode": "0777"}}}).to_string(), -32602, json!(7)),
            (json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "helper",
                "arguments": {"prompt": "x".repeat(300 * 1024)}}}).to_string(), -32600, Value::Null),
        ];
        for (text, code, id) in cases {
            let (status, body) = raw(text);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["jsonrpc"], "2.0");
            assert_eq!(
                (body["error"]["code"].as_i64().unwrap(), &body["id"]),
                (code, &id),
                "{body}"
            );
        }
        // A client that takes neither JSON nor events, or sends no JSON: refused too.
        let response = client
            .post(f.url())
            .bearer_auth(&f.full)
            .header("accept", "text/html")
            .header("content-type", "application/json")
            .header("mcp-session-id", &session)
            .body(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string())
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
        assert_eq!(response.json::<Value>().unwrap()["error"]["code"], -32600);
        let response = client
            .post(f.url())
            .bearer_auth(&f.full)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "text/plain")
            .header("mcp-session-id", &session)
            .body("ping")
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // Nothing was written by the refused calls, and the session still serves.
        let (_, read) = f.rpc(
            &client,
            &f.full,
            &session,
            9,
            "tools/call",
            json!({"name": "helper__read_file", "arguments": {"path": "bad.txt"}}),
        );
        assert_eq!(read["result"]["isError"], true, "{read}");
        let (status, _) = f.rpc(&client, &f.full, &session, 10, "ping", json!({}));
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(
        f.up.requests().len(),
        0,
        "no refused call reached the model"
    );
    assert!(!f.audited("mcp.refused").is_empty());
    assert_eq!(f.w.gateway.get("/health").status(), StatusCode::OK);
}

/// The next approval request on the socket (skipping other messages).
fn next_request(socket: &mut crate::support::WsSocket) -> Value {
    loop {
        let message = crate::support::next_ws_message(socket);
        if message["type"] == "approval.request" {
            return message;
        }
    }
}

fn answer(socket: &mut crate::support::WsSocket, request: &Value, allow: bool) {
    let answer = json!({"type": "approval.respond", "requestId": request["requestId"],
                        "allow": allow, "inputHash": request["inputHash"]});
    socket
        .send(tungstenite::Message::Text(answer.to_string().into()))
        .unwrap();
}

#[test]
fn a_call_that_needs_approval_streams_its_wait_and_is_answered_over_the_websocket() {
    let f = Fixture::start();
    let mut socket = f.approver_socket();
    for (http1, allow) in [(true, true), (false, false)] {
        let client = f.w.client(http1);
        let session = f.initialize(&client, &f.full);
        let call = {
            let (client, url, token, session) =
                (client.clone(), f.url(), f.full.clone(), session.clone());
            std::thread::spawn(move || {
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .header("accept", "application/json, text/event-stream")
                    .header("content-type", "application/json")
                    .header("mcp-session-id", session)
                    .body(
                        json!({"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": {
                        "name": "helper__shell", "arguments": {"command": NEEDS_APPROVAL},
                        "_meta": {"progressToken": "p1"}}})
                        .to_string(),
                    )
                    .send()
                    .unwrap();
                let kind = response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .to_string();
                (response.status(), kind, response.text().unwrap())
            })
        };
        let request = next_request(&mut socket);
        assert_eq!(request["toolName"], "shell");
        assert_eq!(request["requester"]["user"], "root");
        assert_eq!(request["toolInput"]["summary"], NEEDS_APPROVAL);
        answer(&mut socket, &request, allow);
        let (status, kind, body) = call.join().unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        let messages = sse_messages(&body);
        assert_eq!(messages[0]["method"], "notifications/progress", "{body}");
        assert_eq!(messages[0]["params"]["progressToken"], "p1");
        let last = messages.last().unwrap();
        assert_eq!(last["id"], 11);
        if allow {
            assert_eq!(last["result"]["isError"], false, "{last}");
            assert!(
                last["result"]["structuredContent"]["stdout"]
                    .as_str()
                    .unwrap()
                    .contains("42: 2 3 7"),
                "{last}"
            );
        } else {
            assert_eq!(last["result"]["isError"], true, "{last}");
            assert!(
                last["result"]["content"][0]["text"]
                    .as_str()
                    .unwrap()
                    .contains("not approved"),
                "{last}"
            );
        }
    }
    // What the command filter denies never reaches a person.
    let client = f.w.client(true);
    let session = f.initialize(&client, &f.full);
    let (status, denied) = f.rpc(
        &client,
        &f.full,
        &session,
        12,
        "tools/call",
        json!({"name": "helper__shell", "arguments": {"command": "rm -rf /"}}),
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(denied["result"]["isError"], true, "{denied}");
    assert!(
        denied["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{denied}"
    );
}

/// The official MCP Python SDK client, unchanged but for the URL, the header and the
/// device CA: lists tools, calls one that runs, one a person approves over `/ws` (this
/// test), one a person denies and one the command filter denies.
#[test]
fn the_official_mcp_python_client_lists_and_calls_tools() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import mcp, httpx2"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        crate::support::missing_tool("python3 with the mcp package is not installed");
        return;
    }
    let f = Fixture::start();
    let mut socket = f.approver_socket();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/mcp_client.py");
    let child = std::process::Command::new("python3")
        .arg(&script)
        .env("AISOPOD_MCP_URL", f.url())
        .env("AISOPOD_KEY", &f.full)
        .env("AISOPOD_CA", f.w.gateway.data_dir.join("tls/ca.pem"))
        .env("AISOPOD_COMMAND", NEEDS_APPROVAL)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The script asks twice: the first is allowed, the second denied. A thread answers,
    // so a script that fails early ends the test instead of leaving it waiting.
    let answered = std::thread::spawn(move || {
        for allow in [true, false] {
            let request = next_request(&mut socket);
            assert_eq!(request["toolInput"]["summary"], NEEDS_APPROVAL);
            answer(&mut socket, &request, allow);
        }
    });
    let output = child.wait_with_output().unwrap();
    crate::support::assert_client_steps(
        &output,
        &[
            "list ok",
            "call ok",
            "approved ok",
            "denied ok",
            "filtered ok",
            "bad arguments ok",
        ],
    );
    assert!(answered.join().is_ok(), "the approvals were answered");
}
