//! The OpenAI-compatible API (`/v1/models`, `/v1/chat/completions`, `/v1/responses`)
//! against the scripted upstream (tests/it/upstream.rs), over HTTP/1.1 and HTTP/2: the
//! pass-through whole and streamed, tool calls both ways, usage under the API token,
//! OpenAI's error shape for bad input and for every upstream failure (mid-stream too),
//! and the official `openai` Python client (tests/python/openai_client.py).

use std::time::{Duration, Instant};

use aisopod::gateway::usage::{UsageFilter, UsageRow};
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::chats::{FAST, World};
use crate::upstream::{Answer, Upstream};

const UPSTREAM_KEY: &str = "sk-upstream-7f3e-NEVER-SHOWN";

/// A gateway with an `openai` provider `local` (model `m1`), an `anthropic` provider
/// `claude` and an agent `helper`, all against one scripted upstream; a `chat:write`
/// API token and a `chat:read` one.
struct Fixture {
    w: World,
    up: Upstream,
    writer: String,
    reader: String,
    _runtime: tokio::runtime::Runtime,
}

impl Fixture {
    fn start() -> Fixture {
        Fixture::with("")
    }

    /// [`Fixture::start`] with `extra` config tables.
    fn with(extra: &str) -> Fixture {
        Fixture::with_local("", extra)
    }

    /// [`Fixture::with`], with `local_extra` keys in provider `local`'s table;
    /// `UPSTREAM_BASE` in either stands for the scripted upstream's `base_url`.
    fn with_local(local_extra: &str, extra: &str) -> Fixture {
        let (runtime, up) = Upstream::on_own_runtime();
        let base = format!("sse_keepalive = \"40ms\"\nmax_body = \"256k\"\n{FAST}");
        let extra = format!(
            "[[providers]]\nname = \"local\"\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"{UPSTREAM_KEY}\"\nmodels = [\"m1\"]\nretries = 0\nread_timeout = \"1s\"\n{local_extra}\n\
             [[providers]]\nname = \"claude\"\nkind = \"anthropic\"\nbase_url = \"{}\"\nmodels = [\"sonnet\"]\nretries = 0\n\
             [[agents]]\nname = \"helper\"\nprovider = \"local\"\nmodel = \"m1\"\n{extra}\n",
            up.openai_base(),
            up.url()
        )
        .replace("UPSTREAM_BASE", &up.openai_base());
        // A key written into the file needs local mode.
        let extra = if extra.contains("[security]") {
            extra
        } else {
            extra + "[security]\nmode = \"local\"\n"
        };
        let w = World::with_limits(&base, &extra, &[]);
        let writer = w.api_token("script", &["chat:read", "chat:write"]);
        let reader = w.api_token("reader", &["chat:read"]);
        Fixture {
            w,
            up,
            writer,
            reader,
            _runtime: runtime,
        }
    }

    fn post(&self, client: &Client, path: &str, token: &str, body: &Value) -> (StatusCode, String) {
        let response = client
            .post(self.w.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .unwrap();
        let status = response.status();
        (status, response.text().unwrap())
    }

    /// The usage rows once `count` requests are counted (recording runs beside the
    /// answer, so it is waited for).
    fn usage_after(&self, count: u64) -> Vec<UsageRow> {
        let app = self.w.gateway.app.clone().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let rows = app.gateway.usage.query(&UsageFilter::default()).unwrap();
            let total: u64 = rows.iter().map(|r| r.requests).sum();
            if total >= count || Instant::now() > deadline {
                return rows;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The gateway still answers and serves a plain completion.
    fn still_serves(&self, client: &Client) {
        self.up.push(Answer::openai_text("fine", (1, 1)));
        let (status, body) = self.post(
            client,
            "/v1/chat/completions",
            &self.writer,
            &chat("local/m1", false),
        );
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(json_of(&body)["choices"][0]["message"]["content"], "fine");
    }
}

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream,
           "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]})
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// An SSE body's events as (event name, data); comment lines counted apart.
fn sse(text: &str) -> (Vec<(Option<String>, String)>, usize) {
    let mut events = Vec::new();
    let mut comments = 0;
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut name = None;
        let mut data = Vec::new();
        for line in block.lines() {
            if line.starts_with(':') {
                comments += 1;
            } else if let Some(rest) = line.strip_prefix("event:") {
                name = Some(rest.trim().to_string());
            } else if let Some(rest) = line.strip_prefix("data:") {
                data.push(rest.trim_start().to_string());
            }
        }
        if !data.is_empty() {
            events.push((name, data.join("\n")));
        }
    }
    (events, comments)
}

/// An error body in OpenAI's shape, with its `code` and `param`.
fn assert_openai_error(body: &str, code: &str, param: Option<&str>) {
    let value = json_of(body);
    let error = &value["error"];
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(error["type"].as_str().is_some(), "{body}");
    assert!(error.as_object().unwrap().contains_key("param"), "{body}");
    if let Some(param) = param {
        assert_eq!(error["param"], param, "{body}");
    }
}

#[test]
fn models_lists_agents_and_provider_models_to_any_credential_and_refusals_are_openai_errors() {
    let f = Fixture::start();
    for http1 in [true, false] {
        let client = f.w.client(http1);
        let listed: Value = client
            .get(f.w.url("/v1/models"))
            .bearer_auth(&f.reader)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(listed["object"], "list");
        let ids: Vec<&str> = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["helper", "claude/sonnet", "local/m1"], "{listed}");
        assert_eq!(listed["data"][2]["object"], "model");
        assert!(
            !listed.to_string().contains(&f.up.url()),
            "no base URL shown"
        );

        for (token, status, code) in [
            (None, StatusCode::UNAUTHORIZED, "unauthorized"),
            (
                Some("aisp_wrong"),
                StatusCode::UNAUTHORIZED,
                "invalid_credential",
            ),
        ] {
            let mut request = client.get(f.w.url("/v1/models"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().unwrap();
            assert_eq!(response.status(), status);
            assert_openai_error(&response.text().unwrap(), code, None);
        }
        // chat:read may list but not ask a model.
        let (status, body) = f.post(
            &client,
            "/v1/chat/completions",
            &f.reader,
            &chat("local/m1", false),
        );
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_openai_error(&body, "forbidden", None);
        let unknown = client
            .get(f.w.url("/v1/embeddings"))
            .bearer_auth(&f.writer)
            .send()
            .unwrap();
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        assert_openai_error(&unknown.text().unwrap(), "not_found", None);
    }
    assert!(f.up.requests().is_empty(), "nothing reached the upstream");
}

#[test]
fn chat_completions_pass_through_whole_and_streamed_with_tool_calls_and_usage_per_token() {
    let f = Fixture::start();
    let tools = json!([{"type": "function", "function": {"name": "add", "description": "adds",
        "parameters": {"type": "object", "properties": {"a": {"type": "number"}}}}}]);
    for http1 in [true, false] {
        let client = f.w.client(http1);
        // Whole.
        f.up.push(Answer::openai_text("Hello there", (9, 3)));
        let (status, body) = f.post(
            &client,
            "/v1/chat/completions",
            &f.writer,
            &chat("local/m1", false),
        );
        assert_eq!(status, StatusCode::OK, "{body}");
        let answer = json_of(&body);
        assert_eq!(answer["object"], "chat.completion");
        assert_eq!(answer["model"], "local/m1");
        assert_eq!(answer["choices"][0]["message"]["content"], "Hello there");
        assert_eq!(answer["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            answer["usage"],
            json!({"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12})
        );
        let seen = f.up.requests().pop().unwrap();
        assert_eq!(seen.path, "/v1/chat/completions");
        assert_eq!(
            seen.header("authorization"),
            Some(format!("Bearer {UPSTREAM_KEY}").as_str())
        );
        assert!(
            !seen.everything().contains(&f.writer),
            "the client's token never goes upstream"
        );
        assert_eq!(seen.json()["model"], "m1");
        assert_eq!(
            seen.json()["messages"][1],
            json!({"role": "user", "content": "hi"})
        );

        // Streamed, with the usage chunk.
        f.up.push(Answer::openai_stream(&["Hel", "lo"], (5, 2)));
        let mut request = chat("local/m1", true);
        request["stream_options"] = json!({"include_usage": true});
        let response = client
            .post(f.w.url("/v1/chat/completions"))
            .bearer_auth(&f.writer)
            .json(&request)
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let (events, _) = sse(&response.text().unwrap());
        let data: Vec<&str> = events.iter().map(|(_, d)| d.as_str()).collect();
        assert_eq!(data.last(), Some(&"[DONE]"));
        let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| json_of(d)).collect();
        assert!(
            chunks
                .iter()
                .all(|c| c["object"] == "chat.completion.chunk")
        );
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Hello");
        assert_eq!(
            chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
            "stop"
        );
        assert_eq!(chunks.last().unwrap()["choices"], json!([]));
        assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 7);

        // A client-declared tool, called in a stream, and its result sent back.
        f.up.push(Answer::openai_stream_tool_call(
            "call_1",
            "add",
            &["{\"a\":", "2}"],
        ));
        let mut request = chat("local/m1", true);
        request["tools"] = tools.clone();
        let (status, body) = f.post(&client, "/v1/chat/completions", &f.writer, &request);
        assert_eq!(status, StatusCode::OK, "{body}");
        let (events, _) = sse(&body);
        let chunks: Vec<Value> = events
            .iter()
            .filter(|(_, d)| d != "[DONE]")
            .map(|(_, d)| json_of(d))
            .collect();
        let start = &chunks[1]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(start["id"], "call_1");
        assert_eq!(start["function"]["name"], "add");
        let arguments: String = chunks
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
            })
            .collect();
        assert_eq!(arguments, "{\"a\":2}");
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "tool_calls"
        );
        let sent_tools = f.up.requests().pop().unwrap().json()["tools"].clone();
        assert_eq!(sent_tools[0]["function"]["name"], "add");

        f.up.push(Answer::openai_tool_calls(&[("call_2", "add", "{\"a\":3}")]));
        let mut request = chat("local/m1", false);
        request["tools"] = tools.clone();
        request["messages"] = json!([
            {"role": "user", "content": "add 2"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{\"a\":2}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "2"},
        ]);
        let (status, body) = f.post(&client, "/v1/chat/completions", &f.writer, &request);
        assert_eq!(status, StatusCode::OK, "{body}");
        let answer = json_of(&body);
        assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(answer["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(
            answer["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":3}"
        );
        let sent = f.up.requests().pop().unwrap().json();
        assert_eq!(sent["messages"][2]["role"], "tool");
        assert_eq!(sent["messages"][2]["tool_call_id"], "call_1");
    }
    // An Anthropic provider behind the same API.
    let client = f.w.client(true);
    f.up.push(Answer::anthropic_stream(&["Bon", "jour"], None, (4, 2)));
    let (status, body) = f.post(
        &client,
        "/v1/chat/completions",
        &f.writer,
        &chat("claude/sonnet", true),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let (events, _) = sse(&body);
    let text: String = events
        .iter()
        .filter(|(_, d)| d != "[DONE]")
        .filter_map(|(_, d)| {
            json_of(d)["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(text, "Bonjour");
    assert_eq!(f.up.requests().pop().unwrap().path, "/v1/messages");

    let rows = f.usage_after(9);
    let token_rows: Vec<&UsageRow> = rows.iter().filter(|r| r.token.is_some()).collect();
    assert_eq!(
        token_rows.iter().map(|r| r.requests).sum::<u64>(),
        9,
        "{rows:?}"
    );
    let local = rows.iter().find(|r| r.model == "local/m1").unwrap();
    assert_eq!(local.user, "root");
    assert_eq!(local.agent, None);
    // Whole (9), streamed (5), streamed tool call (7), whole tool call (none reported).
    assert_eq!(local.prompt_tokens, 2 * (9 + 5 + 7), "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.model == "claude/sonnet" && r.prompt_tokens == 4)
    );
}

#[test]
fn bad_requests_get_a_400_naming_the_field_and_reach_no_upstream() {
    let f = Fixture::start();
    let user = json!([{"role": "user", "content": "hi"}]);
    let many: Vec<Value> = (0..1025)
        .map(|_| json!({"role": "user", "content": "x"}))
        .collect();
    let cases: Vec<(Value, StatusCode, &str, Option<&str>)> = vec![
        (
            json!({"model": "local/m1", "messages": user, "n": 2}),
            StatusCode::BAD_REQUEST,
            "unsupported_parameter",
            Some("n"),
        ),
        (
            json!({"model": "local/m1", "messages": user, "top_p": 0.3}),
            StatusCode::BAD_REQUEST,
            "unsupported_parameter",
            Some("top_p"),
        ),
        (
            json!({"model": "local/m1", "messages": user, "temperature": "warm"}),
            StatusCode::BAD_REQUEST,
            "invalid_value",
            Some("temperature"),
        ),
        (
            json!({"model": "local/m1", "messages": "hi"}),
            StatusCode::BAD_REQUEST,
            "invalid_value",
            Some("messages"),
        ),
        (
            json!({"model": 7, "messages": user}),
            StatusCode::BAD_REQUEST,
            "invalid_value",
            Some("model"),
        ),
        (
            json!({"model": "local/m1", "messages": [{"role": "wizard", "content": "x"}]}),
            StatusCode::BAD_REQUEST,
            "invalid_value",
            Some("messages[0].role"),
        ),
        (
            json!({"model": "local/m1", "messages": many}),
            StatusCode::BAD_REQUEST,
            "invalid_value",
            Some("messages"),
        ),
        (
            json!({"model": "local/m1", "messages": user, "tools": [{"type": "retrieval"}]}),
            StatusCode::BAD_REQUEST,
            "unsupported_parameter",
            Some("tools[0].type"),
        ),
        (
            json!({"model": "local/nope", "messages": user}),
            StatusCode::NOT_FOUND,
            "model_not_found",
            Some("model"),
        ),
        (
            json!({"model": "nobody", "messages": user}),
            StatusCode::NOT_FOUND,
            "model_not_found",
            Some("model"),
        ),
    ];
    for http1 in [true, false] {
        let client = f.w.client(http1);
        for (body, status, code, param) in &cases {
            let (got, text) = f.post(&client, "/v1/chat/completions", &f.writer, body);
            assert_eq!(got, *status, "{body}: {text}");
            assert_openai_error(&text, code, *param);
        }
        for (body, param) in [
            (
                json!({"model": "local/m1", "input": "hi", "previous_response_id": "resp_1"}),
                "previous_response_id",
            ),
            (
                json!({"model": "local/m1", "input": "hi", "tools": [{"type": "web_search"}]}),
                "tools[0].type",
            ),
            (
                json!({"model": "local/m1", "input": [{"type": "image"}]}),
                "input[0].type",
            ),
            (json!({"model": "local/m1"}), "input"),
        ] {
            let (got, text) = f.post(&client, "/v1/responses", &f.writer, &body);
            assert_eq!(got, StatusCode::BAD_REQUEST, "{body}: {text}");
            assert_openai_error(
                &text,
                json_of(&text)["error"]["code"].as_str().unwrap(),
                Some(param),
            );
        }
        // Not JSON, and over the body limit.
        let response = client
            .post(f.w.url("/v1/chat/completions"))
            .bearer_auth(&f.writer)
            .header("content-type", "application/json")
            .body("{\"model\": ")
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_openai_error(&response.text().unwrap(), "invalid_json", None);
        let huge = json!({"model": "local/m1", "messages": [{"role": "user", "content": "x".repeat(300 * 1024)}]});
        let (got, text) = f.post(&client, "/v1/chat/completions", &f.writer, &huge);
        assert_eq!(got, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
        assert_openai_error(&text, "payload_too_large", None);
    }
    assert!(f.up.requests().is_empty(), "nothing reached the upstream");
    assert!(f.usage_after(0).is_empty(), "nothing counted");
    f.still_serves(&f.w.client(false));
}

#[test]
fn upstream_failures_are_clear_openai_errors_before_and_during_a_stream_and_nothing_is_counted() {
    let f = Fixture::start();
    for http1 in [true, false] {
        let client = f.w.client(http1);
        for (answer, status, code) in [
            (
                Answer::garbage(),
                StatusCode::BAD_GATEWAY,
                "upstream_bad_response",
            ),
            (
                Answer::json(500, json!({"error": {"message": "secret upstream detail"}})),
                StatusCode::BAD_GATEWAY,
                "upstream_error",
            ),
            (
                Answer::json(401, json!({"error": "bad key sk-upstream"})),
                StatusCode::BAD_GATEWAY,
                "upstream_auth",
            ),
            (
                Answer::hang(),
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
            ),
        ] {
            f.up.push(answer);
            let (got, body) = f.post(
                &client,
                "/v1/chat/completions",
                &f.writer,
                &chat("local/m1", false),
            );
            assert_eq!(got, status, "{body}");
            assert_openai_error(&body, code, None);
            assert!(
                !body.contains("secret upstream detail") && !body.contains(UPSTREAM_KEY),
                "{body}"
            );
        }
        // A stream that fails before its first byte is a plain error too.
        f.up.push(Answer::status(503));
        let (got, body) = f.post(
            &client,
            "/v1/chat/completions",
            &f.writer,
            &chat("local/m1", true),
        );
        assert_eq!(got, StatusCode::BAD_GATEWAY, "{body}");
        assert_openai_error(&body, "upstream_error", None);

        // Cut and stalled mid-stream: the text so far, an error event, no [DONE].
        for (answer, code) in [
            (
                Answer::openai_stream(&["Hel", "lo", "there"], (1, 1)).cut_after(2),
                "upstream_dropped",
            ),
            (
                Answer::openai_stream(&["Hel", "lo", "there"], (1, 1)).stall_after(2),
                "upstream_timeout",
            ),
        ] {
            f.up.push(answer);
            let (got, body) = f.post(
                &client,
                "/v1/chat/completions",
                &f.writer,
                &chat("local/m1", true),
            );
            assert_eq!(got, StatusCode::OK, "{body}");
            let (events, _) = sse(&body);
            let last = json_of(&events.last().unwrap().1);
            assert_eq!(last["error"]["code"], code, "{body}");
            assert!(!body.contains("[DONE]"), "{body}");
            assert!(body.contains("Hel"), "{body}");
        }
        // The same through the Responses API: response.failed.
        f.up.push(Answer::openai_stream(&["Hel", "lo"], (1, 1)).cut_after(1));
        let (got, body) = f.post(
            &client,
            "/v1/responses",
            &f.writer,
            &json!({"model": "local/m1", "input": "hi", "stream": true}),
        );
        assert_eq!(got, StatusCode::OK, "{body}");
        let (events, _) = sse(&body);
        let (name, data) = events.last().unwrap();
        assert_eq!(name.as_deref(), Some("response.failed"), "{body}");
        assert_eq!(
            json_of(data)["response"]["error"]["code"],
            "upstream_dropped"
        );
    }
    assert!(
        f.usage_after(0).is_empty(),
        "failed answers are not counted"
    );
    f.still_serves(&f.w.client(true));
    assert_eq!(f.usage_after(1).len(), 1);
}

/// `local/m1` with a fallback to `backup/m2` (the same scripted upstream under another
/// provider name, so the recorded requests show which model was asked).
fn fallback_fixture() -> Fixture {
    Fixture::with_local(
        "fallbacks = { \"m1\" = [\"backup/m2\"] }",
        "[[providers]]\nname = \"backup\"\nkind = \"openai\"\nbase_url = \"UPSTREAM_BASE\"\nmodels = [\"m2\"]\nretries = 0\nread_timeout = \"1s\"\n",
    )
}

/// The models the upstream was asked for, from the `from`th request on.
fn asked(up: &Upstream, from: usize) -> Vec<String> {
    up.requests()[from..]
        .iter()
        .map(|r| r.json()["model"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_pass_through_falls_back_in_order_on_429_5xx_timeouts_and_drops_before_any_output() {
    let f = fallback_fixture();
    for http1 in [true, false] {
        let client = f.w.client(http1);
        for (stream, failure) in [
            (
                false,
                Answer::json(500, json!({"error": "upstream detail"})),
            ),
            (true, Answer::status(503)),
            (false, Answer::status(429).header("retry-after", "1")),
            (true, Answer::status(429)),
            (false, Answer::hang()),
            (true, Answer::hang()),
            // The connection breaks before the status line's body: nothing was answered.
            (true, Answer::openai_stream(&["x"], (1, 1)).cut_after(0)),
            (false, Answer::openai_stream(&["x"], (1, 1)).cut_after(0)),
        ] {
            let before = f.up.requests().len();
            f.up.push(failure.clone());
            if stream {
                f.up.push(Answer::openai_stream(&["from ", "backup"], (2, 2)));
            } else {
                f.up.push(Answer::openai_text("from backup", (2, 2)));
            }
            let (status, body) = f.post(
                &client,
                "/v1/chat/completions",
                &f.writer,
                &chat("local/m1", stream),
            );
            assert_eq!(status, StatusCode::OK, "{failure:?}: {body}");
            let text = if stream {
                let (events, _) = sse(&body);
                assert_eq!(events.last().unwrap().1, "[DONE]", "{body}");
                events
                    .iter()
                    .filter(|(_, d)| d != "[DONE]")
                    .filter_map(|(_, d)| {
                        json_of(d)["choices"][0]["delta"]["content"]
                            .as_str()
                            .map(str::to_string)
                    })
                    .collect::<String>()
            } else {
                json_of(&body)["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap()
                    .to_string()
            };
            assert_eq!(text, "from backup", "{failure:?}: {body}");
            assert_eq!(asked(&f.up, before), ["m1", "m2"], "{failure:?}");
            assert!(!body.contains("upstream detail"), "{body}");
        }

        // Both fail: the last failure, as a plain OpenAI error.
        let before = f.up.requests().len();
        f.up.push(Answer::status(500));
        f.up.push(Answer::status(502));
        let (status, body) = f.post(
            &client,
            "/v1/chat/completions",
            &f.writer,
            &chat("local/m1", true),
        );
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert_openai_error(&body, "upstream_error", None);
        assert_eq!(asked(&f.up, before), ["m1", "m2"]);

        // A client error is the caller's: no fallback.
        let before = f.up.requests().len();
        f.up.push(Answer::json(400, json!({"error": "bad"})));
        let (status, body) = f.post(
            &client,
            "/v1/chat/completions",
            &f.writer,
            &chat("local/m1", false),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(asked(&f.up, before), ["m1"]);

        // Output already streamed: no fallback, the text so far and a clear error event.
        for failure in [
            Answer::openai_stream(&["Hel", "lo", "there"], (1, 1)).cut_after(2),
            Answer::openai_stream(&["Hel", "lo", "there"], (1, 1)).stall_after(2),
        ] {
            let before = f.up.requests().len();
            f.up.push(failure);
            let (status, body) = f.post(
                &client,
                "/v1/chat/completions",
                &f.writer,
                &chat("local/m1", true),
            );
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(body.contains("Hel"), "{body}");
            assert!(!body.contains("[DONE]"), "{body}");
            let (events, _) = sse(&body);
            let last = json_of(&events.last().unwrap().1);
            assert!(
                ["upstream_dropped", "upstream_timeout"]
                    .contains(&last["error"]["code"].as_str().unwrap_or("")),
                "{body}"
            );
            assert!(
                last["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("local")),
                "{body}"
            );
            assert_eq!(asked(&f.up, before), ["m1"], "no fallback after output");
        }
    }
    // The answers are counted under the model that gave them.
    let rows = f.usage_after(16);
    assert!(rows.iter().all(|r| r.model == "backup/m2"), "{rows:?}");
    assert_eq!(rows.iter().map(|r| r.requests).sum::<u64>(), 16);
    f.still_serves(&f.w.client(true));
}

#[test]
fn a_slow_upstream_keeps_the_stream_alive_with_comments_and_a_closed_client_cancels_it() {
    let f = Fixture::start();
    for http1 in [true, false] {
        let client = f.w.client(http1);
        f.up.push(
            Answer::openai_stream(&["a", "b"], (1, 1)).delay_each(Duration::from_millis(150)),
        );
        let (status, body) = f.post(
            &client,
            "/v1/chat/completions",
            &f.writer,
            &chat("local/m1", true),
        );
        assert_eq!(status, StatusCode::OK);
        let (events, comments) = sse(&body);
        assert!(
            comments >= 2,
            "keep-alive comments while the upstream is silent: {body}"
        );
        assert_eq!(events.last().unwrap().1, "[DONE]");
    }
    // A client that goes away mid-stream ends the upstream request.
    f.up.push(Answer::openai_stream(&["a"], (1, 1)).stall_after(1));
    let mut response =
        f.w.client(true)
            .post(f.w.url("/v1/chat/completions"))
            .bearer_auth(&f.writer)
            .json(&chat("local/m1", true))
            .send()
            .unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read(&mut response, &mut first).unwrap();
    drop(response);
    let abandoned = f._runtime.block_on(f.up.wait_abandoned(1));
    assert!(abandoned, "the upstream request was cancelled");
    f.still_serves(&f.w.client(false));
}

#[test]
fn responses_translate_instructions_input_items_and_function_tools_whole_and_streamed() {
    let f = Fixture::start();
    for http1 in [true, false] {
        let client = f.w.client(http1);
        f.up.push(Answer::openai_text("Hi!", (6, 2)));
        let (status, body) = f.post(
            &client,
            "/v1/responses",
            &f.writer,
            &json!({"model": "local/m1", "instructions": "be brief", "input": "hello", "max_output_tokens": 50}),
        );
        assert_eq!(status, StatusCode::OK, "{body}");
        let answer = json_of(&body);
        assert_eq!(answer["object"], "response");
        assert_eq!(answer["status"], "completed");
        assert_eq!(answer["output"][0]["content"][0]["text"], "Hi!");
        assert_eq!(answer["usage"]["total_tokens"], 8);
        let sent = f.up.requests().pop().unwrap().json();
        assert_eq!(
            sent["messages"],
            json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}])
        );
        assert_eq!(sent["max_tokens"], 50);

        // A function tool called in a stream.
        f.up.push(Answer::openai_stream_tool_call(
            "call_9",
            "lookup",
            &["{\"q\":", "\"x\"}"],
        ));
        let (status, body) = f.post(
            &client,
            "/v1/responses",
            &f.writer,
            &json!({"model": "local/m1", "input": [{"role": "user", "content": [{"type": "input_text", "text": "find x"}]}],
                    "stream": true,
                    "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]}),
        );
        assert_eq!(status, StatusCode::OK, "{body}");
        let (events, _) = sse(&body);
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
        assert_eq!(names.first(), Some(&"response.created"));
        assert_eq!(names.last(), Some(&"response.completed"));
        assert!(
            names.contains(&"response.function_call_arguments.delta"),
            "{names:?}"
        );
        let numbers: Vec<u64> = events
            .iter()
            .map(|(_, d)| json_of(d)["sequence_number"].as_u64().unwrap())
            .collect();
        assert_eq!(numbers, (0..numbers.len() as u64).collect::<Vec<_>>());
        let done = json_of(&events.last().unwrap().1);
        let call = &done["response"]["output"][0];
        assert_eq!(call["type"], "function_call");
        assert_eq!(call["call_id"], "call_9");
        assert_eq!(call["arguments"], "{\"q\":\"x\"}");

        // The call's output goes back as a tool message, and the answer streams as text.
        f.up.push(Answer::openai_stream(&["It is ", "x."], (8, 3)));
        let (status, body) = f.post(
            &client,
            "/v1/responses",
            &f.writer,
            &json!({"model": "local/m1", "stream": true, "input": [
                {"role": "user", "content": "find x"},
                {"type": "function_call", "call_id": "call_9", "name": "lookup", "arguments": "{\"q\":\"x\"}"},
                {"type": "function_call_output", "call_id": "call_9", "output": "x is 42"},
            ]}),
        );
        assert_eq!(status, StatusCode::OK, "{body}");
        let (events, _) = sse(&body);
        let text: String = events
            .iter()
            .filter(|(n, _)| n.as_deref() == Some("response.output_text.delta"))
            .map(|(_, d)| json_of(d)["delta"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(text, "It is x.");
        let done = json_of(&events.last().unwrap().1);
        assert_eq!(
            done["response"]["output"][0]["content"][0]["text"],
            "It is x."
        );
        assert_eq!(done["response"]["usage"]["output_tokens"], 3);
        let sent = f.up.requests().pop().unwrap().json();
        assert_eq!(sent["messages"][1]["tool_calls"][0]["id"], "call_9");
        assert_eq!(
            sent["messages"][2],
            json!({"role": "tool", "tool_call_id": "call_9", "content": "x is 42"})
        );
    }
}

/// An upstream that ignores `stream: true` and answers one JSON document (some servers
/// and proxies do) still gives a streaming client its answer, pass-through and agent.
#[test]
fn an_upstream_answering_a_stream_request_whole_is_streamed_from_its_answer() {
    let f = Fixture::start();
    let client = f.w.client(false);
    for model in ["local/m1", "helper"] {
        f.up.push(Answer::openai_text("whole answer", (4, 2)));
        let (status, body) = f.post(
            &client,
            "/v1/chat/completions",
            &f.writer,
            &chat(model, true),
        );
        assert_eq!(status, StatusCode::OK, "{model}: {body}");
        let (events, _) = sse(&body);
        assert_eq!(events.last().map(|(_, d)| d.as_str()), Some("[DONE]"));
        let text: String = events[..events.len() - 1]
            .iter()
            .filter_map(|(_, d)| {
                json_of(d)["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(String::from)
            })
            .collect();
        assert_eq!(text, "whole answer", "{model}");
        assert_eq!(f.up.requests().pop().unwrap().json()["stream"], true);
    }
    f.still_serves(&client);
}

/// The official `openai` Python client, unchanged but for base URL, key and the device
/// CA: models, a plain and a streamed chat, a plain and a streamed response, the same
/// with an agent, a bad key.
#[test]
fn the_official_openai_python_client_works_against_the_gateway() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import openai, httpx2"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        crate::support::missing_tool("python3 with the openai package is not installed");
        return;
    }
    let f = Fixture::start();
    f.up.push(Answer::openai_text("plain answer", (3, 2)));
    f.up.push(Answer::openai_stream(&["stre", "amed"], (3, 2)));
    f.up.push(Answer::openai_text("a response", (3, 2)));
    f.up.push(Answer::openai_stream(&["streamed ", "response"], (3, 2)));
    // The same client with the agent `helper`.
    f.up.push(Answer::openai_text("agent answer", (3, 2)));
    f.up.push(Answer::openai_stream(&["agent ", "response"], (3, 2)));
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/openai_client.py");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .env("AISOPOD_URL", format!("{}/v1", f.w.gateway.url))
        .env("AISOPOD_KEY", &f.writer)
        .env("AISOPOD_CA", f.w.gateway.data_dir.join("tls/ca.pem"))
        .env("AISOPOD_MODEL", "local/m1")
        .env("AISOPOD_AGENT", "helper")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .output()
        .unwrap();
    crate::support::assert_client_steps(
        &output,
        &[
            "models ok",
            "chat ok",
            "chat stream ok",
            "responses ok",
            "responses stream ok",
            "bad key ok",
        ],
    );
    assert_eq!(f.up.pending(), 0, "every scripted answer was asked for");
    let rows = f.usage_after(6);
    assert_eq!(rows.iter().map(|r| r.requests).sum::<u64>(), 6);
    assert_eq!(
        rows.iter()
            .filter(|r| r.agent.as_deref() == Some("helper"))
            .count(),
        1
    );
}

fn python_with_openai() -> bool {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import openai, httpx2"])
        .output();
    probe.is_ok_and(|o| o.status.success())
}

/// After an agent's tool ran, a failure is answered with `x-should-retry: false`, so a
/// client does not run the tools again by retrying on its own; the official client,
/// with its default two retries, sends the request once. Before any tool ran, a failure
/// may be retried as usual.
#[test]
fn an_agent_failing_after_its_tools_ran_tells_clients_not_to_retry() {
    let f = Fixture::with(
        "[[agents]]\nname = \"lister\"\nprovider = \"local\"\nmodel = \"m1\"\ntools = [\"list_dir\"]\n",
    );
    let ask = |client: &Client| {
        client
            .post(f.w.url("/v1/chat/completions"))
            .bearer_auth(&f.writer)
            .json(&json!({"model": "lister", "messages": [{"role": "user", "content": "ls"}]}))
            .send()
            .unwrap()
    };
    for http1 in [true, false] {
        let client = f.w.client(http1);
        // The model's first answer fails: nothing ran, retrying is safe.
        f.up.push(Answer::status(500));
        let response = ask(&client);
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert!(response.headers().get("x-should-retry").is_none());

        let before = f.up.requests().len();
        f.up.push(Answer::openai_stream_tool_call("c1", "list_dir", &["{}"]));
        f.up.push(Answer::status(500));
        let response = ask(&client);
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(
            response
                .headers()
                .get("x-should-retry")
                .and_then(|v| v.to_str().ok()),
            Some("false")
        );
        let body = response.text().unwrap();
        assert_openai_error(&body, "upstream_error", None);
        assert_eq!(
            f.up.requests().len() - before,
            2,
            "the tool's result was sent on"
        );
    }
    if !python_with_openai() {
        crate::support::missing_tool("python3 with the openai package is not installed");
        return;
    }
    let before = f.up.requests().len();
    f.up.push(Answer::openai_stream_tool_call("c1", "list_dir", &["{}"]));
    f.up.push(Answer::status(500));
    // What a retry would get, so that one would succeed and be seen.
    f.up.push(Answer::openai_stream_tool_call("c2", "list_dir", &["{}"]));
    f.up.push(Answer::openai_stream(&["again"], (1, 1)));
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/openai_no_retry.py");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .env("AISOPOD_URL", format!("{}/v1", f.w.gateway.url))
        .env("AISOPOD_KEY", &f.writer)
        .env("AISOPOD_CA", f.w.gateway.data_dir.join("tls/ca.pem"))
        .env("AISOPOD_AGENT", "lister")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.lines().any(|l| l == "no retry ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(f.up.requests().len() - before, 2, "the turn ran once");
    assert_eq!(f.up.pending(), 2, "no retry asked for more");
}

/// Audit records hold tool calls by name and input hash: a marker planted in a tool's
/// input (a path, file contents) and so in its output never reaches the audit log.
#[test]
fn audit_records_never_hold_tool_input_or_output() {
    const MARKER: &str = "zq-planted-7781";
    let f = Fixture::with(
        "[[agents]]\nname = \"scribe\"\nprovider = \"local\"\nmodel = \"m1\"\ntools = [\"write_file\", \"read_file\", \"list_dir\"]\n",
    );
    let path = format!("{MARKER}-notes.txt");
    let write = json!({"path": path, "content": format!("secret {MARKER} text")}).to_string();
    let read = json!({"path": path}).to_string();
    f.up.push(Answer::openai_stream_tool_call(
        "c1",
        "write_file",
        &[&write],
    ));
    f.up.push(Answer::openai_stream_tool_call("c2", "read_file", &[&read]));
    f.up.push(Answer::openai_stream_tool_call("c3", "list_dir", &["{}"]));
    // A path outside the workspace: the refusal quotes it to the model.
    let outside = json!({"path": format!("../{MARKER}")}).to_string();
    f.up.push(Answer::openai_stream_tool_call(
        "c4",
        "read_file",
        &[&outside],
    ));
    f.up.push(Answer::openai_stream(&["done"], (1, 1)));
    let (status, body) = f.post(
        &f.w.client(false),
        "/v1/chat/completions",
        &f.writer,
        &json!({"model": "scribe", "messages": [{"role": "user", "content": "take notes"}]}),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json_of(&body)["choices"][0]["message"]["content"], "done");
    // The marker did travel through the tools: the model was given it back.
    let last = f.up.requests().pop().unwrap().everything();
    assert!(
        last.matches(MARKER).count() >= 4,
        "inputs, the file read back, the listing and the refusal: {last}"
    );
    let export = f.w.setup.cli(&["audit", "export", "--format", "jsonl"]);
    let audit = crate::support::stdout(&export);
    for action in ["\"agent.tool_call\"", "\"tool.call\"", "\"agent.turn\""] {
        assert!(audit.contains(action), "{action} missing:\n{audit}");
    }
    assert_eq!(
        audit
            .lines()
            .filter(|l| l.contains("\"tool.call\""))
            .count(),
        4,
        "{audit}"
    );
    assert!(
        !audit.contains(MARKER),
        "tool content in the audit log:\n{audit}"
    );
}

/// The next JSON message on the socket, skipping pings, or a failure after `limit` (the
/// server's pings would keep a plain read waiting for ever).
fn next_message_within(socket: &mut crate::support::WsSocket, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        assert!(Instant::now() < deadline, "no message within {limit:?}");
        match socket.read().expect("a message") {
            tungstenite::Message::Text(body) => return serde_json::from_str(&body).unwrap(),
            _ => continue,
        }
    }
}

/// A command the default allowlist sends to a person for approval.
const NEEDS_APPROVAL: &str = "factor 42 > factors.txt; cat factors.txt";

#[test]
fn an_agent_model_runs_the_loop_server_side_with_a_tool_call_approved_over_the_websocket() {
    let sandbox = crate::sandbox::sandbox_toml(crate::sandbox::SANDBOX);
    let f = Fixture::with(&format!(
        "[[agents]]\nname = \"sheller\"\nprovider = \"local\"\nmodel = \"m1\"\nsystem_prompt = \"You run commands.\"\ntools = [\"shell\"]\n[tools.shell]\npolicy = \"allowlist\"\n{sandbox}"
    ));
    let ca = std::fs::read(f.w.gateway.data_dir.join("tls/ca.pem")).unwrap();
    let mut socket = crate::support::wss_connect(
        &ca,
        f.w.gateway.addr().port(),
        "/ws",
        &[("authorization", &format!("Bearer {}", f.w.token("root")))],
    )
    .unwrap();
    assert_eq!(
        crate::support::next_ws_message(&mut socket)["type"],
        "hello"
    );
    let arguments = json!({"command": NEEDS_APPROVAL}).to_string();
    let (head, tail) = arguments.split_at(10);

    // Chat completions, streamed over HTTP/2: the agent's shell call waits for the
    // owner's approval over /ws, runs, and the model answers from its result.
    f.up.push(Answer::openai_stream_tool_call(
        "call_1",
        "shell",
        &[head, tail],
    ));
    f.up.push(Answer::openai_stream(&["Factors: ", "2 3 7"], (11, 4)));
    let call = {
        let client = f.w.client(false);
        let url = f.w.url("/v1/chat/completions");
        let token = f.writer.clone();
        std::thread::spawn(move || {
            let response = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"model": "sheller", "stream": true,
                              "messages": [{"role": "user", "content": "factor 42"}]}))
                .send()
                .unwrap();
            (response.status(), response.text().unwrap())
        })
    };
    let request = next_message_within(&mut socket, Duration::from_secs(20));
    assert_eq!(request["type"], "approval.request", "{request}");
    assert_eq!(request["toolName"], "shell");
    assert_eq!(request["requester"]["user"], "root");
    let answer = json!({"type": "approval.respond", "requestId": request["requestId"],
                        "allow": true, "inputHash": request["inputHash"]});
    socket
        .send(tungstenite::Message::Text(answer.to_string().into()))
        .unwrap();
    let (status, body) = call.join().unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let (events, _) = sse(&body);
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = events
        .iter()
        .filter(|(_, d)| d != "[DONE]")
        .map(|(_, d)| json_of(d))
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Factors: 2 3 7");
    assert!(
        !body.contains("tool_calls"),
        "the agent's own tools are not the client's: {body}"
    );
    let requests = f.up.requests();
    let first = requests[0].json();
    assert_eq!(
        first["messages"][0],
        json!({"role": "system", "content": "You run commands."})
    );
    assert_eq!(first["tools"][0]["function"]["name"], "shell");
    let second = requests[1].json();
    let result = second["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(result["role"], "tool", "{second}");
    assert!(
        result["content"].as_str().unwrap().contains("42: 2 3 7"),
        "{result}"
    );

    // The Responses API, whole, over HTTP/1.1: a denied call is a result for the model.
    // (The loop always streams from the upstream.)
    f.up.push(Answer::openai_stream_tool_call(
        "call_2",
        "shell",
        &[&arguments],
    ));
    f.up.push(Answer::openai_stream(&["It was not ", "allowed."], (5, 4)));
    let call = {
        let client = f.w.client(true);
        let url = f.w.url("/v1/responses");
        let token = f.writer.clone();
        std::thread::spawn(move || {
            let response = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"model": "sheller", "input": "factor 42"}))
                .send()
                .unwrap();
            (response.status(), response.text().unwrap())
        })
    };
    // (The first request's `approval.resolved` comes first.)
    let request = loop {
        let message = next_message_within(&mut socket, Duration::from_secs(20));
        if message["type"] != "approval.resolved" {
            break message;
        }
    };
    assert_eq!(request["type"], "approval.request", "{request}");
    let answer =
        json!({"type": "approval.respond", "requestId": request["requestId"], "allow": false});
    socket
        .send(tungstenite::Message::Text(answer.to_string().into()))
        .unwrap();
    let (status, body) = call.join().unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer = json_of(&body);
    assert_eq!(answer["status"], "completed");
    assert_eq!(
        answer["output"][0]["content"][0]["text"],
        "It was not allowed."
    );
    assert_eq!(answer["output"].as_array().unwrap().len(), 1, "{body}");
    let denied = f.up.requests().pop().unwrap().json();
    let result = denied["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(result["role"], "tool");
    assert!(
        result["content"].as_str().unwrap().contains("error"),
        "{result}"
    );

    // Client-declared tools are refused with an agent; nothing reaches the upstream.
    let before = f.up.requests().len();
    let (status, body) = f.post(
        &f.w.client(true),
        "/v1/chat/completions",
        &f.writer,
        &json!({"model": "sheller", "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "mine"}}]}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_openai_error(&body, "unsupported_parameter", Some("tools"));
    assert_eq!(f.up.requests().len(), before);

    // Usage is counted under the agent and the token (by the loop, per upstream call),
    // and no chat was stored.
    let rows = f.usage_after(4);
    assert!(
        rows.iter()
            .all(|r| r.agent.as_deref() == Some("sheller") && r.token.is_some()),
        "{rows:?}"
    );
    assert_eq!(rows.iter().map(|r| r.requests).sum::<u64>(), 4);
    let chats: Value =
        f.w.client(true)
            .get(f.w.url("/api/v1/chats"))
            .bearer_auth(f.w.token("root"))
            .send()
            .unwrap()
            .json()
            .unwrap();
    assert_eq!(chats["chats"], json!([]), "stateless: {chats}");
}
