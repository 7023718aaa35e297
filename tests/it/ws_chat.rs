//! Chat over `/ws` end to end, against the scripted upstream: a turn streams deltas,
//! runs a tool, hands its result to the model, and stores the reply with its prompt's
//! visibility; other people never see a private exchange (over `/ws` history and over
//! REST on HTTP/1.1 and HTTP/2); a second send while a turn runs is `busy`; cancel and
//! upstream failures end the turn with a clear code, store no reply, and the chat works
//! right after.

use reqwest::Method;
use serde_json::{Value, json};

use crate::chats::{World, call};
use crate::support::{WsSocket, next_ws_message, wss_connect};
use crate::upstream::{Answer, Upstream};

pub(crate) fn connect(w: &World, token: &str) -> WsSocket {
    let ca = std::fs::read(w.gateway.data_dir.join("tls/ca.pem")).unwrap();
    let auth = format!("Bearer {token}");
    let mut socket = wss_connect(
        &ca,
        w.gateway.addr().port(),
        "/ws",
        &[("authorization", auth.as_str())],
    )
    .expect("the WebSocket connects");
    assert_eq!(next_ws_message(&mut socket)["type"], "hello");
    socket
}

pub(crate) fn send(socket: &mut WsSocket, message: Value) {
    socket
        .send(tungstenite::Message::Text(message.to_string().into()))
        .unwrap();
}

/// Messages up to and including the first of type `last` (approvals skipped).
pub(crate) fn until(socket: &mut WsSocket, last: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let message = next_ws_message(socket);
        let kind = message["type"].as_str().unwrap_or_default().to_string();
        seen.push(message);
        if kind == last || (kind == "chat.error" && last != "chat.error") {
            return seen;
        }
    }
}

fn of_type<'a>(messages: &'a [Value], kind: &str) -> Vec<&'a Value> {
    messages.iter().filter(|m| m["type"] == kind).collect()
}

#[test]
fn a_private_chat_turn_streams_runs_a_tool_and_only_its_author_sees_the_reply() {
    let (runtime, up) = Upstream::on_own_runtime();
    let w = World::new(
        &format!(
            "[[providers]]\nname = \"local\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodels = [\"m1\"]\nread_timeout = \"2s\"\nretries = 0\n\
             [[agents]]\nname = \"helper\"\nprovider = \"local\"\nmodel = \"m1\"\ntools = [\"read_file\"]\n",
            up.openai_base()
        ),
        &["alice", "bob"],
    );
    let app = w.gateway.app.clone().unwrap();
    let workspace = app.gateway.agents.get("helper").unwrap().workspace;
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::write(workspace.join("notes.txt"), "buy oat milk").unwrap();
    let client = w.client(true);
    let (status, chat) = call(
        &client,
        Method::POST,
        &w.url("/api/v1/chats"),
        w.token("alice"),
        Some(json!({"title": "shopping", "agent": "helper", "members": ["bob"]})),
    );
    assert_eq!(status, 201, "{chat}");
    let chat_id = chat["id"].as_str().unwrap().to_string();

    up.push(Answer::openai_stream_tool_call(
        "call_1",
        "read_file",
        &["{\"path\":", "\"notes.txt\"}"],
    ));
    up.push(Answer::openai_stream(&["It says ", "oat milk"], (20, 6)));
    let mut alice = connect(&w, w.token("alice"));
    send(
        &mut alice,
        json!({"type": "chat.send", "chatId": chat_id, "content": "what is on my list?", "visibility": "private"}),
    );
    let turn = until(&mut alice, "chat.done");
    let accepted = of_type(&turn, "chat.accepted")[0];
    let reply_id = accepted["messageId"].as_u64().unwrap();
    assert_eq!(reply_id, accepted["promptId"].as_u64().unwrap() + 1);
    let call_frame = of_type(&turn, "tool.call")[0];
    assert_eq!(call_frame["name"], "read_file");
    assert_eq!(call_frame["inputHash"].as_str().unwrap().len(), 64);
    let result = of_type(&turn, "tool.result")[0];
    assert_eq!(result["ok"], true, "{result}");
    let text: String = of_type(&turn, "chat.delta")
        .iter()
        .map(|d| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "It says oat milk");
    let done = of_type(&turn, "chat.done")[0];
    assert_eq!(done["messageId"], reply_id);
    assert_eq!(done["usage"]["totalTokens"], 38);
    // The model got the tool's result in its next request.
    let second = up.requests()[1].json();
    let last = second["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["role"], "tool");
    assert!(last["content"].as_str().unwrap().contains("buy oat milk"));

    // Alice sees her prompt and the reply; bob sees neither, over /ws and REST.
    send(
        &mut alice,
        json!({"type": "chat.history", "chatId": chat_id}),
    );
    let history = until(&mut alice, "chat.history").pop().unwrap();
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{history}");
    assert_eq!(messages[0]["id"], reply_id);
    assert_eq!(messages[0]["author"]["kind"], "agent");
    assert_eq!(messages[0]["visibility"], "private");
    assert_eq!(messages[0]["content"], "It says oat milk");
    let mut bob = connect(&w, w.token("bob"));
    send(&mut bob, json!({"type": "chat.history", "chatId": chat_id}));
    let seen = until(&mut bob, "chat.history").pop().unwrap();
    assert_eq!(seen["messages"], json!([]), "{seen}");
    for http1 in [true, false] {
        let (status, page) = call(
            &w.client(http1),
            Method::GET,
            &w.url(&format!("/api/v1/chats/{chat_id}/messages")),
            w.token("bob"),
            None,
        );
        assert_eq!(status, 200);
        assert!(!page.to_string().contains("oat milk"), "{page}");
        let (_, page) = call(
            &w.client(http1),
            Method::GET,
            &w.url(&format!("/api/v1/chats/{chat_id}/messages")),
            w.token("alice"),
            None,
        );
        assert!(page.to_string().contains("It says oat milk"), "{page}");
    }
    // Usage and audit rows exist for the turn.
    let rows = app.gateway.usage.query(&Default::default()).unwrap();
    assert!(rows.iter().any(|r| r.user == "alice" && r.requests == 2));
    let audit: Vec<String> = app
        .audit()
        .all()
        .map(|r| serde_json::to_string(&r.unwrap()).unwrap())
        .collect();
    assert!(audit.iter().any(|r| r.contains("agent.turn")));
    assert!(audit.iter().any(|r| r.contains("agent.tool_call")));
    assert!(!audit.iter().any(|r| r.contains("oat milk")));

    // A turn that stalls mid-stream: a second send is busy, cancel stops it, nothing
    // is stored.
    up.push(Answer::openai_stream(&["partial ", "never"], (1, 1)).stall_after(1));
    send(
        &mut alice,
        json!({"type": "chat.send", "chatId": chat_id, "content": "and now?"}),
    );
    let accepted = until(&mut alice, "chat.accepted").pop().unwrap();
    let hung_reply = accepted["messageId"].as_u64().unwrap();
    let partial = until(&mut alice, "chat.delta").pop().unwrap();
    assert_eq!(partial["delta"], "partial ", "{partial}");
    send(
        &mut bob,
        json!({"type": "chat.send", "chatId": chat_id, "content": "me too"}),
    );
    let busy = until(&mut bob, "chat.error").pop().unwrap();
    assert_eq!(busy["code"], "busy", "{busy}");
    send(
        &mut alice,
        json!({"type": "chat.cancel", "chatId": chat_id}),
    );
    let ended = until(&mut alice, "chat.error").pop().unwrap();
    assert_eq!(ended["code"], "cancelled", "{ended}");
    assert!(runtime.block_on(up.wait_abandoned(1)));
    // An upstream failure is a clear error; the chat still works after.
    up.push(Answer::status(500));
    send(
        &mut alice,
        json!({"type": "chat.send", "chatId": chat_id, "content": "again"}),
    );
    let failed = until(&mut alice, "chat.error").pop().unwrap();
    assert_eq!(failed["code"], "upstream_error", "{failed}");
    assert!(!failed["message"].as_str().unwrap().contains("127.0.0.1"));
    up.push(Answer::openai_stream(&["fine"], (1, 1)));
    send(
        &mut alice,
        json!({"type": "chat.send", "chatId": chat_id, "content": "last"}),
    );
    let done = until(&mut alice, "chat.done").pop().unwrap();
    assert_eq!(done["type"], "chat.done");
    send(
        &mut alice,
        json!({"type": "chat.history", "chatId": chat_id}),
    );
    let history = until(&mut alice, "chat.history").pop().unwrap();
    let ids: Vec<u64> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert!(!ids.contains(&hung_reply), "{history}");
    let agent_replies = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author"]["kind"] == "agent")
        .count();
    assert_eq!(agent_replies, 2, "{history}");
    // A chat id nobody owns is not found, not busy.
    send(
        &mut bob,
        json!({"type": "chat.send", "chatId": "0".repeat(32), "content": "x"}),
    );
    assert_eq!(
        until(&mut bob, "chat.error").pop().unwrap()["code"],
        "not_found"
    );
}

#[test]
fn a_shell_call_the_owner_approves_runs_in_the_sandbox_and_a_denied_one_is_a_result_for_the_model()
{
    const COMMAND: &str = "factor 42 > factors.txt; cat factors.txt";
    let (_runtime, up) = Upstream::on_own_runtime();
    let w = World::new(
        &format!(
            "{}\n[[providers]]\nname = \"local\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodels = [\"m1\"]\nretries = 0\n\
             [[agents]]\nname = \"helper\"\nprovider = \"local\"\nmodel = \"m1\"\ntools = [\"shell\"]\n",
            crate::sandbox::sandbox_toml(crate::sandbox::SANDBOX),
            up.openai_base()
        ),
        &["alice"],
    );
    let client = w.client(false);
    let (status, chat) = call(
        &client,
        Method::POST,
        &w.url("/api/v1/chats"),
        w.token("alice"),
        Some(json!({"title": "maths", "agent": "helper"})),
    );
    assert_eq!(status, 201, "{chat}");
    let chat_id = chat["id"].as_str().unwrap().to_string();
    let arguments = json!({ "command": COMMAND }).to_string();
    let mut alice = connect(&w, w.token("alice"));
    for allow in [true, false] {
        up.push(Answer::openai_stream_tool_call(
            "call_1",
            "shell",
            &[&arguments],
        ));
        up.push(Answer::openai_stream(&["Here you are."], (3, 3)));
        send(
            &mut alice,
            json!({"type": "chat.send", "chatId": chat_id, "content": "factor 42"}),
        );
        let request = until(&mut alice, "approval.request").pop().unwrap();
        assert_eq!(request["type"], "approval.request", "{request}");
        assert_eq!(request["toolName"], "shell");
        assert_eq!(request["requester"]["user"], "alice");
        assert_eq!(request["requester"]["agent"], "helper");
        send(
            &mut alice,
            json!({"type": "approval.respond", "requestId": request["requestId"], "allow": allow,
                   "inputHash": request["inputHash"]}),
        );
        let turn = until(&mut alice, "chat.done");
        assert_eq!(turn.last().unwrap()["type"], "chat.done", "{turn:?}");
        let result = of_type(&turn, "tool.result")[0];
        let sent_back = up.requests().last().unwrap().json();
        let tool_message = sent_back["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(tool_message["role"], "tool");
        if allow {
            assert_eq!(result["ok"], true, "{result}");
            assert_eq!(result["result"]["stdout"], "42: 2 3 7\n", "{result}");
            assert!(
                tool_message["content"]
                    .as_str()
                    .unwrap()
                    .contains("42: 2 3 7")
            );
        } else {
            assert_eq!(result["ok"], false, "{result}");
            let content = tool_message["content"].as_str().unwrap();
            assert!(content.contains("not approved"), "{content}");
        }
    }
}

#[test]
fn a_token_over_its_requests_a_minute_gets_chat_error_and_its_prompt_is_not_stored() {
    let (_runtime, up) = Upstream::on_own_runtime();
    let w = World::new(
        &format!(
            "[[providers]]\nname = \"local\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodels = [\"m1\"]\nread_timeout = \"2s\"\nretries = 0\n\
             [[agents]]\nname = \"helper\"\nprovider = \"local\"\nmodel = \"m1\"\n",
            up.openai_base()
        ),
        &["alice"],
    );
    w.gateway.clock.as_ref().unwrap().freeze();
    let client = w.client(true);
    let (status, created) = call(
        &client,
        Method::POST,
        &w.url("/api/v1/tokens"),
        w.token("root"),
        Some(json!({"name": "phone-script", "owner": "alice",
            "scopes": ["chat:read", "chat:write"], "requests_per_minute": 1})),
    );
    assert_eq!(status, 201, "{created}");
    let limited = created["token"].as_str().unwrap().to_string();
    let (status, chat) = call(
        &client,
        Method::POST,
        &w.url("/api/v1/chats"),
        w.token("alice"),
        Some(json!({"title": "budget", "agent": "helper"})),
    );
    assert_eq!(status, 201, "{chat}");
    let chat_id = chat["id"].as_str().unwrap().to_string();
    let messages = || {
        let (status, page) = call(
            &client,
            Method::GET,
            &w.url(&format!("/api/v1/chats/{chat_id}/messages")),
            w.token("alice"),
            None,
        );
        assert_eq!(status, 200, "{page}");
        page["messages"].as_array().unwrap().len()
    };

    let mut script = connect(&w, &limited);
    up.push(Answer::openai_stream(&["one"], (3, 1)));
    send(
        &mut script,
        json!({"type": "chat.send", "chatId": chat_id, "content": "first"}),
    );
    assert_eq!(
        until(&mut script, "chat.done").last().unwrap()["type"],
        "chat.done"
    );
    send(
        &mut script,
        json!({"type": "chat.send", "chatId": chat_id, "content": "second"}),
    );
    let refused = until(&mut script, "chat.error");
    let error = refused.last().unwrap();
    assert_eq!(error["code"], "rate_limited", "{error}");
    assert_eq!(messages(), 2, "the refused prompt is not stored");
    assert_eq!(up.requests().len(), 1, "the refused send reached no model");

    // The owner's own session is not the token: served right away.
    let mut owner = connect(&w, w.token("alice"));
    up.push(Answer::openai_stream(&["two"], (3, 1)));
    send(
        &mut owner,
        json!({"type": "chat.send", "chatId": chat_id, "content": "from the app"}),
    );
    assert_eq!(
        until(&mut owner, "chat.done").last().unwrap()["type"],
        "chat.done"
    );
    // And the token itself a minute later.
    w.gateway.advance_clock(std::time::Duration::from_secs(60));
    up.push(Answer::openai_stream(&["three"], (3, 1)));
    send(
        &mut script,
        json!({"type": "chat.send", "chatId": chat_id, "content": "third"}),
    );
    assert_eq!(
        until(&mut script, "chat.done").last().unwrap()["type"],
        "chat.done"
    );
    assert_eq!(messages(), 6);
}

/// Frames up to the server's close, which must come within `bound`: the JSON messages
/// and the close code.
fn closed_within(socket: &mut WsSocket, bound: std::time::Duration) -> (Vec<Value>, Option<u16>) {
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    loop {
        assert!(
            started.elapsed() < bound,
            "not closed within {bound:?}: {seen:?}"
        );
        match socket.read() {
            Ok(tungstenite::Message::Text(body)) => seen.push(serde_json::from_str(&body).unwrap()),
            Ok(tungstenite::Message::Close(frame)) => {
                return (seen, frame.map(|f| u16::from(f.code)));
            }
            Ok(_) => {}
            Err(err) => panic!("the socket failed before a close frame: {err}"),
        }
    }
}

/// Revoking a token or logging out closes that credential's open sockets at once (not
/// at the next periodic check) and stops their running turns: the upstream request is
/// cancelled. Other credentials' sockets stay and are served.
#[test]
fn revoking_a_token_or_logging_out_closes_its_sockets_and_stops_their_turns() {
    let (runtime, up) = Upstream::on_own_runtime();
    let w = World::new(
        &format!(
            "[[providers]]\nname = \"local\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodels = [\"m1\"]\nread_timeout = \"60s\"\nretries = 0\n\
             [[agents]]\nname = \"helper\"\nprovider = \"local\"\nmodel = \"m1\"\n",
            up.openai_base()
        ),
        &["alice"],
    );
    let client = w.client(false);
    let (status, created) = call(
        &client,
        Method::POST,
        &w.url("/api/v1/tokens"),
        w.token("root"),
        Some(json!({"name": "phone", "owner": "alice", "scopes": ["chat:read", "chat:write"]})),
    );
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    let token_id = created["id"].as_str().expect("the token's id").to_string();
    let (status, chat) = call(
        &client,
        Method::POST,
        &w.url("/api/v1/chats"),
        w.token("alice"),
        Some(json!({"title": "long", "agent": "helper"})),
    );
    assert_eq!(status, 201, "{chat}");
    let chat_id = chat["id"].as_str().unwrap().to_string();
    // A socket of another credential, which must stay open.
    let mut bystander = connect(&w, w.token("alice"));

    // A turn in progress on the token's socket: text arrived, then the model is slow.
    let mut phone = connect(&w, &token);
    up.push(Answer::openai_stream(&["thinking", "more"], (1, 1)).stall_after(1));
    send(
        &mut phone,
        json!({"type": "chat.send", "chatId": chat_id, "content": "think hard"}),
    );
    until(&mut phone, "chat.delta");
    let (status, body) = call(
        &client,
        Method::DELETE,
        &w.url(&format!("/api/v1/tokens/{token_id}")),
        w.token("root"),
        None,
    );
    assert!(status.is_success(), "{status} {body}");
    // Well under the 60 s read timeout; the periodic re-check is not what ends it.
    let (seen, code) = closed_within(&mut phone, std::time::Duration::from_secs(5));
    assert_eq!(code, Some(1008), "{seen:?}");
    assert!(
        seen.iter().any(|m| m["code"] == "session_revoked"),
        "{seen:?}"
    );
    assert!(
        runtime.block_on(up.wait_abandoned(1)),
        "the upstream request was cancelled"
    );

    // A session logged out: its socket closes and its turn stops the same way.
    let login: Value = w
        .gateway
        .client()
        .post(w.url("/auth/login"))
        .json(&json!({"username": "alice", "password": crate::chats::PASSWORD}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let session = login["access_token"].as_str().unwrap().to_string();
    let mut browser = connect(&w, &session);
    up.push(Answer::openai_stream(&["thinking", "more"], (1, 1)).stall_after(1));
    send(
        &mut browser,
        json!({"type": "chat.send", "chatId": chat_id, "content": "think again"}),
    );
    until(&mut browser, "chat.delta");
    let (status, body) = call(
        &client,
        Method::POST,
        &w.url("/auth/logout"),
        &session,
        None,
    );
    assert!(status.is_success(), "{status} {body}");
    let (seen, code) = closed_within(&mut browser, std::time::Duration::from_secs(5));
    assert_eq!(code, Some(1008), "{seen:?}");
    assert!(
        runtime.block_on(up.wait_abandoned(2)),
        "the upstream request was cancelled"
    );

    // The owner's other session is served right after, on its open socket.
    up.push(Answer::openai_stream(&["fine"], (1, 1)));
    send(
        &mut bystander,
        json!({"type": "chat.send", "chatId": chat_id, "content": "still there?"}),
    );
    // (It may also hear of the ended turns in the chat: it reads on to its answer.)
    let done = loop {
        let message = next_ws_message(&mut bystander);
        if message["type"] == "chat.done" {
            break message;
        }
    };
    assert!(done["messageId"].is_u64(), "{done}");
}
