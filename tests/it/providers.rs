//! The provider kinds and their client against the scripted upstream (tests/it/upstream.rs):
//! real HTTP on loopback, both protocols, streamed and whole, tool calls, usage, retries,
//! fallbacks, every failure mode and cancellation.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aisopod::gateway::providers::{
    ChatRequest, ClientSettings, Completion, FinishReason, HttpClient, Message, ModelRef, Pause,
    Provider, ProviderError, ProviderKind, Providers, StreamEvent, TimeoutPhase, ToolDef, Usage,
};
use aisopod::secret::Secret;
use futures_util::StreamExt;
use serde_json::json;

use crate::upstream::{Answer, Upstream};

const KEY: &str = "sk-test-5ecret-KEY-9f3a";

/// Records the waits the client asks for and returns at once, so retries are checked
/// without sleeping.
#[derive(Debug, Default)]
struct RecordedPause(Mutex<Vec<Duration>>);

impl Pause for RecordedPause {
    fn pause(&self, wait: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.0.lock().unwrap().push(wait);
        Box::pin(async {})
    }
}

fn settings() -> ClientSettings {
    ClientSettings {
        connect_timeout: Duration::from_millis(500),
        read_timeout: Duration::from_millis(300),
        retries: 2,
        backoff: Duration::from_millis(100),
        max_wait: Duration::from_secs(10),
        max_body: 1 << 20,
        extra_roots: Vec::new(),
    }
}

fn provider_with(
    name: &str,
    kind: ProviderKind,
    up: &Upstream,
    settings: ClientSettings,
) -> (Provider, Arc<RecordedPause>) {
    let pause = Arc::new(RecordedPause::default());
    let client = HttpClient::new(settings, pause.clone()).unwrap();
    let base = match kind {
        ProviderKind::OpenAi => up.openai_base(),
        ProviderKind::Anthropic => up.url(),
    };
    let provider = Provider::new(
        name,
        kind,
        &base,
        Some(Secret::new(KEY)),
        Vec::new(),
        client,
    )
    .unwrap();
    (provider, pause)
}

fn openai(up: &Upstream) -> (Provider, Arc<RecordedPause>) {
    provider_with("local", ProviderKind::OpenAi, up, settings())
}

fn anthropic(up: &Upstream) -> (Provider, Arc<RecordedPause>) {
    provider_with("claude", ProviderKind::Anthropic, up, settings())
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "m1".into(),
        messages: vec![Message::system("be brief"), Message::user("hi")],
        tools: vec![ToolDef {
            name: "shell".into(),
            description: "run a command".into(),
            parameters: json!({"type": "object", "properties": {"cmd": {"type": "string"}}}),
        }],
        temperature: Some(0.2),
        max_tokens: Some(64),
    }
}

async fn events(provider: &Provider) -> Result<Vec<StreamEvent>, ProviderError> {
    let mut stream = provider.stream(&request()).await?;
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event?);
    }
    Ok(events)
}

fn fold(events: &[StreamEvent]) -> Completion {
    let mut completion = Completion::default();
    for event in events {
        completion.apply(event);
    }
    completion
}

/// The key never shows in what an error says, in either form.
fn assert_no_key(err: &ProviderError) {
    assert!(!err.to_string().contains(KEY), "{err}");
    assert!(!format!("{err:?}").contains(KEY), "{err:?}");
    assert!(!err.to_string().contains("5ecret"), "{err}");
}

#[tokio::test]
async fn openai_whole_answer_sends_the_key_as_bearer_and_reads_usage() {
    let up = Upstream::start().await;
    up.push(Answer::openai_text("Hello there", (9, 3)));
    let (provider, _) = openai(&up);
    let completion = provider.complete(&request()).await.unwrap();
    assert_eq!(completion.text, "Hello there");
    assert_eq!(completion.finish, Some(FinishReason::Stop));
    assert_eq!(
        completion.usage,
        Some(Usage {
            prompt_tokens: 9,
            completion_tokens: 3
        })
    );
    let seen = &up.requests()[0];
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(seen.header("x-api-key"), None);
    let body = seen.json();
    assert_eq!(body["model"], "m1");
    assert_eq!(body["stream"], false);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["tools"][0]["function"]["name"], "shell");
    // The key travels in the one header and nowhere else.
    assert_eq!(seen.everything().matches(KEY).count(), 1);
}

/// Over TLS the client offers HTTP/2 by ALPN and uses it with an upstream that accepts
/// it. The upstream's private CA is trusted only through `extra_roots`: without it the
/// certificate is refused, and a file that holds no certificate is refused up front.
#[tokio::test]
async fn the_client_speaks_http2_to_a_tls_upstream_and_trusts_only_the_roots_it_is_given() {
    let (up, ca_pem) = Upstream::start_tls().await;
    up.push(Answer::openai_stream(&["over ", "h2"], (1, 1)));
    up.push(Answer::openai_text("whole", (1, 1)));
    let trusting = HttpClient::new(
        ClientSettings {
            extra_roots: vec![ca_pem.into_bytes()],
            ..settings()
        },
        Arc::new(RecordedPause::default()),
    )
    .unwrap();
    let lan = |client: HttpClient| {
        Provider::new(
            "lan",
            ProviderKind::OpenAi,
            &up.openai_base_tls(),
            Some(Secret::new(KEY)),
            Vec::new(),
            client,
        )
        .unwrap()
    };
    let provider = lan(trusting);
    let streamed = fold(&events(&provider).await.unwrap());
    assert_eq!(streamed.text, "over h2");
    let whole = provider.complete(&request()).await.unwrap();
    assert_eq!(whole.text, "whole");
    let seen = up.requests();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(request.version, http::Version::HTTP_2, "{request:?}");
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
    }

    let system_roots_only = HttpClient::new(
        ClientSettings {
            retries: 0,
            ..settings()
        },
        Arc::new(RecordedPause::default()),
    )
    .unwrap();
    let err = lan(system_roots_only)
        .complete(&request())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Connection { .. }),
        "an unknown CA is refused: {err:?}"
    );
    assert_eq!(up.requests().len(), 2, "nothing was sent to it");
    assert_no_key(&err);

    let refused = HttpClient::new(
        ClientSettings {
            extra_roots: vec![b"not a certificate".to_vec()],
            ..settings()
        },
        Arc::new(RecordedPause::default()),
    );
    assert!(matches!(refused, Err(ProviderError::Config { .. })));
}

#[tokio::test]
async fn openai_stream_delivers_text_then_usage_then_finish() {
    let up = Upstream::start().await;
    up.push(
        Answer::openai_stream(&["Hel", "lo", "!"], (4, 3)).delay_each(Duration::from_millis(5)),
    );
    let (provider, _) = openai(&up);
    let events = events(&provider).await.unwrap();
    assert_eq!(
        events,
        vec![
            StreamEvent::TextDelta("Hel".into()),
            StreamEvent::TextDelta("lo".into()),
            StreamEvent::TextDelta("!".into()),
            StreamEvent::Usage(Usage {
                prompt_tokens: 4,
                completion_tokens: 3
            }),
            StreamEvent::Finish(FinishReason::Stop),
        ]
    );
    let body = up.requests()[0].json();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn openai_tool_calls_streamed_and_whole_agree() {
    let up = Upstream::start().await;
    up.push(Answer::openai_stream_tool_call(
        "call_1",
        "shell",
        &["{\"cmd\"", ":\"ls", "\"}"],
    ));
    up.push(Answer::openai_tool_calls(&[(
        "call_1",
        "shell",
        "{\"cmd\":\"ls\"}",
    )]));
    let (provider, _) = openai(&up);
    let streamed = fold(&events(&provider).await.unwrap());
    let whole = provider.complete(&request()).await.unwrap();
    assert_eq!(streamed.tool_calls.len(), 1);
    assert_eq!(streamed.tool_calls[0].id, "call_1");
    assert_eq!(streamed.tool_calls[0].name, "shell");
    assert_eq!(streamed.tool_calls[0].arguments, "{\"cmd\":\"ls\"}");
    assert_eq!(streamed.finish, Some(FinishReason::ToolCalls));
    assert_eq!(streamed.tool_calls, whole.tool_calls);
    assert_eq!(whole.finish, Some(FinishReason::ToolCalls));
}

#[tokio::test]
async fn openai_model_list() {
    let up = Upstream::start().await;
    up.push(Answer::openai_models(&["llama3", "qwen"]));
    let (provider, _) = openai(&up);
    assert_eq!(
        provider.list_models().await.unwrap(),
        vec!["llama3", "qwen"]
    );
    let seen = &up.requests()[0];
    assert_eq!(seen.path, "/v1/models");
    assert_eq!(seen.method, "GET");
}

#[tokio::test]
async fn anthropic_whole_answer_with_tool_use_and_its_request_shape() {
    let up = Upstream::start().await;
    up.push(Answer::anthropic_message(
        "Let me look.",
        &[("toolu_1", "shell", json!({"cmd": "ls"}))],
        (12, 8),
    ));
    let (provider, _) = anthropic(&up);
    let mut req = request();
    req.messages.push(Message::assistant(
        "",
        vec![aisopod::gateway::providers::ToolCall {
            id: "toolu_0".into(),
            name: "shell".into(),
            arguments: "{\"cmd\":\"pwd\"}".into(),
        }],
    ));
    req.messages.push(Message::tool("toolu_0", "/home"));
    let completion = provider.complete(&req).await.unwrap();
    assert_eq!(completion.text, "Let me look.");
    assert_eq!(completion.finish, Some(FinishReason::ToolCalls));
    assert_eq!(completion.tool_calls[0].name, "shell");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&completion.tool_calls[0].arguments).unwrap(),
        json!({"cmd": "ls"})
    );
    assert_eq!(completion.usage.unwrap().total(), 20);

    let seen = &up.requests()[0];
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some(KEY));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.everything().matches(KEY).count(), 1);
    let body = seen.json();
    assert_eq!(body["system"], "be brief");
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
    assert_eq!(body["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(body["messages"][1]["content"][0]["input"]["cmd"], "pwd");
    assert_eq!(body["messages"][2]["content"][0]["tool_use_id"], "toolu_0");
}

#[tokio::test]
async fn anthropic_stream_with_text_tool_input_and_usage() {
    let up = Upstream::start().await;
    up.push(Answer::anthropic_stream(
        &["Sure", ", one sec"],
        Some(("toolu_9", "shell", &["{\"cmd\":", " \"uptime\"}"])),
        (20, 11),
    ));
    let (provider, _) = anthropic(&up);
    let events = events(&provider).await.unwrap();
    assert_eq!(events.first(), Some(&StreamEvent::TextDelta("Sure".into())));
    assert!(events.contains(&StreamEvent::ToolCallStart {
        index: 0,
        id: "toolu_9".into(),
        name: "shell".into()
    }));
    assert!(events.contains(&StreamEvent::ToolCallEnd { index: 0 }));
    assert_eq!(
        events.last(),
        Some(&StreamEvent::Finish(FinishReason::ToolCalls))
    );
    let completion = fold(&events);
    assert_eq!(completion.text, "Sure, one sec");
    assert_eq!(completion.tool_calls[0].arguments, "{\"cmd\": \"uptime\"}");
    assert_eq!(
        completion.usage,
        Some(Usage {
            prompt_tokens: 20,
            completion_tokens: 11
        })
    );
    assert_eq!(up.requests()[0].json()["stream"], true);
}

#[tokio::test]
async fn anthropic_error_event_before_output_is_a_transient_failure() {
    let up = Upstream::start().await;
    up.push(Answer::sse_named([
        (
            "message_start".to_string(),
            json!({"type":"message_start","message":{"usage":{"input_tokens":1}}}).to_string(),
        ),
        (
            "error".to_string(),
            json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})
                .to_string(),
        ),
    ]));
    let (provider, _) = anthropic(&up);
    let err = events(&provider).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::Status {
            provider: "claude".into(),
            status: 529
        }
    );
    assert!(err.is_transient());
    assert!(
        !err.to_string().contains("Overloaded"),
        "the upstream's message is not passed on: {err}"
    );
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_it_asks_for() {
    let up = Upstream::start().await;
    up.push(
        Answer::status(429)
            .header("retry-after", "3")
            .body("{\"error\":\"slow down\"}"),
    );
    up.push(Answer::openai_text("ok", (1, 1)));
    let (provider, pause) = openai(&up);
    let completion = provider.complete(&request()).await.unwrap();
    assert_eq!(completion.text, "ok");
    assert_eq!(*pause.0.lock().unwrap(), vec![Duration::from_secs(3)]);
    assert_eq!(up.requests().len(), 2);
}

#[tokio::test]
async fn a_429_asking_too_long_a_wait_is_not_slept_on() {
    let up = Upstream::start().await;
    up.push(Answer::status(429).header("retry-after", "3600"));
    let (provider, pause) = openai(&up);
    let err = provider.complete(&request()).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::RateLimited {
            provider: "local".into(),
            retry_after: Some(Duration::from_secs(3600))
        }
    );
    assert!(err.to_string().contains("retry after 1h"), "{err}");
    assert!(pause.0.lock().unwrap().is_empty());
    assert_eq!(up.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_back_off_and_give_up_after_the_retries() {
    let up = Upstream::start().await;
    for _ in 0..3 {
        up.push(Answer::status(503).body("internal: db at 10.0.0.5 down"));
    }
    up.push(Answer::openai_text("never asked for", (1, 1)));
    let (provider, pause) = openai(&up);
    let err = provider.complete(&request()).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::Status {
            provider: "local".into(),
            status: 503
        }
    );
    assert!(!err.to_string().contains("10.0.0.5"), "{err}");
    assert_eq!(
        *pause.0.lock().unwrap(),
        vec![Duration::from_millis(100), Duration::from_millis(200)]
    );
    assert_eq!(up.requests().len(), 3);
    assert_eq!(up.pending(), 1);
}

#[tokio::test]
async fn a_rejected_key_is_not_retried_and_not_repeated() {
    let up = Upstream::start().await;
    up.push(Answer::json(
        401,
        json!({"error": {"message": format!("Incorrect API key provided: {KEY}")}}),
    ));
    let (provider, pause) = openai(&up);
    let err = provider.complete(&request()).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::AuthRejected {
            provider: "local".into()
        }
    );
    assert_no_key(&err);
    assert!(pause.0.lock().unwrap().is_empty());
    // A client error is the caller's to fix: no retry, no fallback.
    up.push(Answer::status(400));
    let err = provider.complete(&request()).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::Status {
            provider: "local".into(),
            status: 400
        }
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn garbage_is_a_bad_response_in_both_kinds_and_both_modes() {
    let up = Upstream::start().await;
    up.push(Answer::garbage());
    up.push(Answer::garbage());
    up.push(Answer::sse(["{not json".to_string()]));
    up.push(
        Answer::status(200)
            .header("content-type", "text/event-stream")
            .body(vec![b'x'; 2 << 20]),
    );
    let (openai, _) = openai(&up);
    let (claude, _) = anthropic(&up);
    for err in [
        openai.complete(&request()).await.unwrap_err(),
        claude.complete(&request()).await.unwrap_err(),
        events(&openai).await.unwrap_err(),
        events(&openai).await.unwrap_err(),
    ] {
        assert!(matches!(err, ProviderError::BadResponse { .. }), "{err:?}");
        assert!(!err.to_string().contains("tru"), "{err}");
        assert_no_key(&err);
    }
}

#[tokio::test]
async fn a_stream_cut_midway_is_a_dropped_connection_after_what_arrived() {
    let up = Upstream::start().await;
    up.push(Answer::openai_stream(&["one", "two", "three"], (1, 1)).cut_after(2));
    up.push(Answer::anthropic_stream(&["a", "b"], None, (1, 1)).cut_after(4));
    let (openai, _) = openai(&up);
    let mut stream = openai.stream(&request()).await.unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        StreamEvent::TextDelta("one".into())
    );
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        StreamEvent::TextDelta("two".into())
    );
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(
        err,
        ProviderError::Dropped {
            provider: "local".into()
        }
    );
    assert!(stream.next().await.is_none());
    let (claude, _) = anthropic(&up);
    let err = events(&claude).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::Dropped {
            provider: "claude".into()
        }
    );
}

#[tokio::test]
async fn a_hang_is_a_read_timeout_before_and_during_a_stream() {
    let up = Upstream::start().await;
    let quick = ClientSettings {
        retries: 0,
        ..settings()
    };
    up.push(Answer::hang());
    up.push(Answer::openai_stream(&["a", "b"], (1, 1)).stall_after(1));
    let (provider, _) = provider_with("local", ProviderKind::OpenAi, &up, quick);
    let err = provider.complete(&request()).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::Timeout {
            provider: "local".into(),
            phase: TimeoutPhase::Read,
            after: Duration::from_millis(300)
        }
    );
    assert!(err.is_transient());
    let mut stream = provider.stream(&request()).await.unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        StreamEvent::TextDelta("a".into())
    );
    let err = stream.next().await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::Timeout {
                phase: TimeoutPhase::Read,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn nothing_listening_is_a_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let pause = Arc::new(RecordedPause::default());
    let client = HttpClient::new(settings(), pause.clone()).unwrap();
    let provider = Provider::new(
        "gone",
        ProviderKind::OpenAi,
        &format!("http://{addr}/v1"),
        Some(Secret::new(KEY)),
        Vec::new(),
        client,
    )
    .unwrap();
    let err = provider.complete(&request()).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::Connection {
            provider: "gone".into()
        }
    );
    assert_no_key(&err);
    assert_eq!(
        pause.0.lock().unwrap().len(),
        2,
        "connection failures are retried"
    );
}

#[tokio::test]
async fn dropping_the_stream_closes_the_upstream_request() {
    let up = Upstream::start().await;
    up.push(Answer::openai_stream(&["first", "second"], (1, 1)).stall_after(1));
    let (provider, _) = openai(&up);
    let mut stream = provider.stream(&request()).await.unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        StreamEvent::TextDelta("first".into())
    );
    drop(stream);
    assert!(
        up.wait_abandoned(1).await,
        "the upstream never saw the request end"
    );
}

#[tokio::test]
async fn fallbacks_are_tried_in_order_until_one_answers() {
    let first = Upstream::start().await;
    let second = Upstream::start().await;
    let third = Upstream::start().await;
    first.push(Answer::status(429).header("retry-after", "3600"));
    second.push(Answer::openai_stream(&["never"], (1, 1)).cut_after(0));
    third.push(Answer::anthropic_stream(&["from the third"], None, (2, 3)));
    let quick = ClientSettings {
        retries: 0,
        ..settings()
    };
    let providers = Providers::new([
        provider_with("a", ProviderKind::OpenAi, &first, quick.clone()).0,
        provider_with("b", ProviderKind::OpenAi, &second, quick.clone()).0,
        provider_with("c", ProviderKind::Anthropic, &third, quick).0,
    ]);
    let chain: Vec<ModelRef> = ["a/m1", "b/m2", "c/m3"]
        .iter()
        .map(|m| ModelRef::parse(m).unwrap())
        .collect();
    let (used, stream) = providers.stream(&chain, &request()).await.unwrap();
    assert_eq!(used.to_string(), "c/m3");
    let completion = Completion::collect(stream).await.unwrap();
    assert_eq!(completion.text, "from the third");
    assert_eq!(first.requests()[0].json()["model"], "m1");
    assert_eq!(second.requests()[0].json()["model"], "m2");
    assert_eq!(third.requests()[0].json()["model"], "m3");

    // A failure another upstream would not fix stops the search.
    first.push(Answer::status(401));
    let err = providers.complete(&chain, &request()).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::AuthRejected {
            provider: "a".into()
        }
    );
    assert_eq!(second.requests().len(), 1);

    // All failing: the last failure is reported.
    first.push(Answer::status(500));
    second.push(Answer::status(502));
    third.push(Answer::status(503));
    let err = providers.complete(&chain, &request()).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::Status {
            provider: "c".into(),
            status: 503
        }
    );

    // Once output reached the caller, a later failure is the caller's; no fallback.
    first.push(Answer::openai_stream(&["partial", "rest"], (1, 1)).cut_after(1));
    let (used, mut stream) = providers.stream(&chain, &request()).await.unwrap();
    assert_eq!(used.provider, "a");
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        StreamEvent::TextDelta("partial".into())
    );
    assert!(stream.next().await.unwrap().is_err());
    assert_eq!(second.requests().len(), 2);
}

#[tokio::test]
async fn unknown_models_are_refused_before_any_request() {
    let up = Upstream::start().await;
    let pause = Arc::new(RecordedPause::default());
    let client = HttpClient::new(settings(), pause).unwrap();
    let provider = Provider::new(
        "local",
        ProviderKind::OpenAi,
        &up.openai_base(),
        None,
        vec!["llama3".into()],
        client.clone(),
    )
    .unwrap();
    let providers = Providers::new([provider]);
    for name in ["local/gpt-9", "other/llama3"] {
        let err = providers
            .complete(&[ModelRef::parse(name).unwrap()], &request())
            .await
            .unwrap_err();
        assert_eq!(err, ProviderError::UnknownModel { model: name.into() });
    }
    assert!(up.requests().is_empty());
    let err = Provider::new(
        "x",
        ProviderKind::OpenAi,
        "file:///etc/passwd",
        None,
        Vec::new(),
        client,
    )
    .unwrap_err();
    assert!(err.to_string().contains("base_url"), "{err}");
}

#[tokio::test]
async fn providers_from_config_reach_their_upstream_with_the_expanded_key() {
    use aisopod::config::{ConfigSource, Environment, parse};
    struct Env(String);
    impl Environment for Env {
        fn var(&self, name: &str) -> Option<String> {
            (name == "UPSTREAM_KEY").then(|| self.0.clone())
        }
        fn installed(&self) -> bool {
            false
        }
    }
    let up = Upstream::start().await;
    up.push(Answer::anthropic_message("configured", &[], (1, 1)));
    let text = format!(
        "[[providers]]\nname = \"claude\"\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key = \"${{UPSTREAM_KEY}}\"\nmodels = [\"haiku\"]\n",
        up.url()
    );
    let config = parse(&text, ConfigSource::Defaults, &Env(KEY.into())).unwrap();
    let providers =
        Providers::from_config(&config.providers, Arc::new(RecordedPause::default())).unwrap();
    let chain = [ModelRef::parse("claude/haiku").unwrap()];
    let (_, completion) = providers.complete(&chain, &request()).await.unwrap();
    assert_eq!(completion.text, "configured");
    assert_eq!(up.requests()[0].header("x-api-key"), Some(KEY));
    assert_eq!(up.requests()[0].json()["model"], "haiku");
}

#[tokio::test]
async fn a_loopback_upstream_that_the_lan_reaches_is_found() {
    use aisopod::config::{ConfigSource, Environment, parse};
    use aisopod::gateway::providers::{exposed_local_upstreams, local_addresses};
    struct NoEnv;
    impl Environment for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
        fn installed(&self) -> bool {
            false
        }
    }
    let addresses = local_addresses();
    assert!(
        !addresses.is_empty(),
        "this test needs a non-loopback address"
    );
    let everywhere = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let loopback_only = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let text = format!(
        "[[providers]]\nname = \"open\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:{}/v1\"\n\n[[providers]]\nname = \"closed\"\nkind = \"openai\"\nbase_url = \"http://localhost:{}/v1\"\n",
        everywhere.local_addr().unwrap().port(),
        loopback_only.local_addr().unwrap().port()
    );
    let config = parse(&text, ConfigSource::Defaults, &NoEnv).unwrap();
    let found =
        exposed_local_upstreams(&config.providers, &addresses, Duration::from_millis(300)).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].provider, "open");
    assert!(found[0].to_string().contains("bind it to 127.0.0.1"));
}

#[test]
fn strict_mode_refuses_to_start_beside_an_exposed_local_upstream() {
    use crate::support::{BIN, Setup, stop_child, wait_timeout};
    let everywhere = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = everywhere.local_addr().unwrap().port();
    let setup = Setup::new(&format!(
        "[[providers]]\nname = \"ollama\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\n"
    ));
    let mut child = std::process::Command::new(BIN)
        .args(["gateway", "start", "--config"])
        .arg(&setup.config)
        .env_remove("AISOPOD_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let Some(status) = wait_timeout(&mut child, Duration::from_secs(20)) else {
        stop_child(&mut child);
        panic!("the gateway started beside an exposed upstream");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("strict mode refuses to start"), "{stderr}");
    assert!(stderr.contains("also answers on"), "{stderr}");
    assert!(stderr.contains("bind it to 127.0.0.1"), "{stderr}");
}
