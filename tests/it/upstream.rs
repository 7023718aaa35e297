//! A scripted LLM upstream: a real HTTP server on 127.0.0.1:0 that answers each request
//! with the next answer a test queued (OpenAI or Anthropic shapes, streamed or whole,
//! with delays, error statuses, garbage, a stream cut mid-way or a hang) and records what
//! it received. Tests talk to it through the gateway's own HTTP client, never a mock.
//!
//! ```ignore
//! let up = Upstream::start().await;
//! up.push(Answer::openai_stream(&["Hel", "lo"]).usage(3, 2));
//! up.push(Answer::status(429).header("retry-after", "2"));
//! // ... call the provider at up.openai_base() ...
//! assert_eq!(up.requests()[0].header("authorization"), Some("Bearer k"));
//! ```

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// One piece of a scripted body.
#[derive(Debug, Clone)]
enum Part {
    Bytes(Vec<u8>),
    Delay(Duration),
    /// Never sends more and never ends (until the client goes away).
    Stall,
    /// Breaks the connection without ending the body.
    Abort,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    parts: Vec<Part>,
    /// Never send even the status line.
    hang: bool,
}

impl Answer {
    /// An answer with this status and no body.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            parts: Vec::new(),
            hang: false,
        }
    }

    /// A JSON answer.
    pub fn json(status: u16, value: Value) -> Self {
        Self::status(status)
            .header("content-type", "application/json")
            .body(value.to_string())
    }

    /// 200 with a body that is not JSON at all.
    pub fn garbage() -> Self {
        Self::status(200)
            .header("content-type", "application/json")
            .body("{\"choices\": [tru")
    }

    /// Accepts the request and never answers.
    pub fn hang() -> Self {
        Self {
            hang: true,
            ..Self::status(200)
        }
    }

    /// A `text/event-stream` answer whose events carry these `data:` payloads.
    pub fn sse(data: impl IntoIterator<Item = String>) -> Self {
        let mut answer = Self::status(200).header("content-type", "text/event-stream");
        for data in data {
            answer = answer.body(format!("data: {data}\n\n"));
        }
        answer
    }

    /// Like [`Answer::sse`], with an `event:` name per event (Anthropic's shape).
    pub fn sse_named(events: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut answer = Self::status(200).header("content-type", "text/event-stream");
        for (name, data) in events {
            answer = answer.body(format!("event: {name}\ndata: {data}\n\n"));
        }
        answer
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Appends bytes to the body (each call is one write, so one chunk on the wire).
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.parts.push(Part::Bytes(bytes.into()));
        self
    }

    /// Waits `delay` before every part of the body.
    pub fn delay_each(mut self, delay: Duration) -> Self {
        self.parts = self
            .parts
            .into_iter()
            .flat_map(|part| [Part::Delay(delay), part])
            .collect();
        self
    }

    /// Sends the first `parts` parts of the body, then breaks the connection.
    pub fn cut_after(mut self, parts: usize) -> Self {
        self.parts.truncate(parts);
        // A pause first, so what was sent is flushed before the connection breaks (hyper
        // would otherwise drop its unsent buffer, headers included).
        self.parts.push(Part::Delay(Duration::from_millis(30)));
        self.parts.push(Part::Abort);
        self
    }

    /// Sends the first `parts` parts of the body, then goes silent for good.
    pub fn stall_after(mut self, parts: usize) -> Self {
        self.parts.truncate(parts);
        self.parts.push(Part::Stall);
        self
    }

    // ---- OpenAI shapes -------------------------------------------------------------

    /// A whole chat completion with `text`.
    pub fn openai_text(text: &str, usage: (u64, u64)) -> Self {
        Self::json(
            200,
            json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1,
                          "total_tokens": usage.0 + usage.1},
            }),
        )
    }

    /// A whole chat completion calling tools: `(id, name, arguments)`.
    pub fn openai_tool_calls(calls: &[(&str, &str, &str)]) -> Self {
        let calls: Vec<Value> = calls
            .iter()
            .map(|(id, name, args)| {
                json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})
            })
            .collect();
        Self::json(
            200,
            json!({
                "id": "chatcmpl-2", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "finish_reason": "tool_calls",
                             "message": {"role": "assistant", "content": null, "tool_calls": calls}}],
            }),
        )
    }

    /// A streamed chat completion: one chunk per text piece, the finishing chunk, a
    /// usage chunk and `[DONE]`.
    pub fn openai_stream(pieces: &[&str], usage: (u64, u64)) -> Self {
        let mut data: Vec<String> = pieces
            .iter()
            .map(|piece| openai_chunk(json!({"content": piece}), None))
            .collect();
        data.push(openai_chunk(json!({}), Some("stop")));
        data.push(openai_usage_chunk(usage));
        data.push("[DONE]".into());
        Self::sse(data)
    }

    /// A streamed tool call whose arguments arrive in `fragments`.
    pub fn openai_stream_tool_call(id: &str, name: &str, fragments: &[&str]) -> Self {
        let mut data = vec![openai_chunk(
            json!({"tool_calls": [{"index": 0, "id": id, "type": "function",
                                   "function": {"name": name, "arguments": ""}}]}),
            None,
        )];
        for fragment in fragments {
            data.push(openai_chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}),
                None,
            ));
        }
        data.push(openai_chunk(json!({}), Some("tool_calls")));
        data.push(openai_usage_chunk((7, 5)));
        data.push("[DONE]".into());
        Self::sse(data)
    }

    /// A model list for `GET /v1/models`.
    pub fn openai_models(ids: &[&str]) -> Self {
        let data: Vec<Value> = ids
            .iter()
            .map(|id| json!({"id": id, "object": "model", "created": 1, "owned_by": "x"}))
            .collect();
        Self::json(200, json!({"object": "list", "data": data}))
    }

    // ---- Anthropic shapes ----------------------------------------------------------

    /// A whole Messages API answer with text and optional tool uses `(id, name, input)`.
    pub fn anthropic_message(text: &str, tools: &[(&str, &str, Value)], usage: (u64, u64)) -> Self {
        let mut content = vec![json!({"type": "text", "text": text})];
        for (id, name, input) in tools {
            content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
        }
        let stop = if tools.is_empty() {
            "end_turn"
        } else {
            "tool_use"
        };
        Self::json(
            200,
            json!({
                "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
                "content": content, "stop_reason": stop,
                "usage": {"input_tokens": usage.0, "output_tokens": usage.1},
            }),
        )
    }

    /// A streamed Messages API answer: text pieces, then a tool use whose input JSON
    /// arrives in `fragments` (when `tool` is given).
    pub fn anthropic_stream(
        pieces: &[&str],
        tool: Option<(&str, &str, &[&str])>,
        usage: (u64, u64),
    ) -> Self {
        let mut events = vec![
            (
                "message_start",
                json!({"type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant", "content": [],
                "model": "claude", "stop_reason": null,
                "usage": {"input_tokens": usage.0, "output_tokens": 1}}}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
            ),
            ("ping", json!({"type": "ping"})),
        ];
        for piece in pieces {
            events.push((
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": piece}}),
            ));
        }
        events.push((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ));
        let mut stop = "end_turn";
        if let Some((id, name, fragments)) = tool {
            stop = "tool_use";
            events.push((
                "content_block_start",
                json!({"type": "content_block_start", "index": 1,
                "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
            ));
            for fragment in fragments {
                events.push((
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": fragment}}),
                ));
            }
            events.push((
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 1}),
            ));
        }
        events.push((
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"output_tokens": usage.1}}),
        ));
        events.push(("message_stop", json!({"type": "message_stop"})));
        Self::sse_named(
            events
                .into_iter()
                .map(|(n, d)| (n.to_string(), d.to_string())),
        )
    }
}

fn openai_chunk(delta: Value, finish: Option<&str>) -> String {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    .to_string()
}

fn openai_usage_chunk(usage: (u64, u64)) -> String {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [],
           "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1,
                     "total_tokens": usage.0 + usage.1}})
    .to_string()
}

/// A request the upstream received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The HTTP version it came over.
    pub version: axum::http::Version,
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Everything the upstream saw of this request, as text, for leak checks.
    pub fn everything(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())))
            .collect();
        format!(
            "{} {}\n{}\n\n{}",
            self.method,
            self.path,
            headers.join("\n"),
            String::from_utf8_lossy(&self.body)
        )
    }
}

#[derive(Default)]
struct Shared {
    answers: Mutex<VecDeque<Answer>>,
    requests: Mutex<Vec<Recorded>>,
    /// Answers the client walked away from before their end.
    abandoned: AtomicUsize,
    changed: Notify,
}

/// A running scripted upstream; it stops when dropped.
pub struct Upstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    /// An upstream served by a runtime of its own, for a test that is not async itself:
    /// keep the runtime as long as the upstream.
    pub fn on_own_runtime() -> (tokio::runtime::Runtime, Upstream) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let up = runtime.block_on(Upstream::start());
        (runtime, up)
    }

    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// The same upstream over TLS with a certificate for 127.0.0.1 from a CA of its own
    /// (returned as PEM), offering HTTP/2 and HTTP/1.1 by ALPN; `base_url`s are
    /// `https://127.0.0.1:PORT`.
    pub async fn start_tls() -> (Self, String) {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "scripted upstream CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let shared = Arc::new(Shared::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
            }
        });
        (Self { addr, shared, task }, ca.pem())
    }

    /// `https://127.0.0.1:PORT/v1`, for an upstream from [`Upstream::start_tls`].
    pub fn openai_base_tls(&self) -> String {
        format!("https://{}/v1", self.addr)
    }

    /// Queues the answer to the next request.
    pub fn push(&self, answer: Answer) -> &Self {
        self.shared.answers.lock().unwrap().push_back(answer);
        self
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `base_url` an `openai` provider uses for it.
    pub fn openai_base(&self) -> String {
        format!("{}/v1", self.url())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Answers still queued.
    pub fn pending(&self) -> usize {
        self.shared.answers.lock().unwrap().len()
    }

    /// Waits (up to five seconds) until `count` requests have arrived; whether they did.
    pub async fn wait_requests(&self, count: usize) -> bool {
        let wait = async {
            loop {
                let notified = self.shared.changed.notified();
                if self.shared.requests.lock().unwrap().len() >= count {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .is_ok()
    }

    /// Waits (up to five seconds) until `count` answers were abandoned by the client
    /// before their end: the connection closed or the stream was reset.
    pub async fn wait_abandoned(&self, count: usize) -> bool {
        let wait = async {
            loop {
                let notified = self.shared.changed.notified();
                if self.shared.abandoned.load(Ordering::SeqCst) >= count {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .is_ok()
    }
}

/// Counts an answer as abandoned when dropped before it was finished.
struct Watch {
    shared: Arc<Shared>,
    finished: bool,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.abandoned.fetch_add(1, Ordering::SeqCst);
            self.shared.changed.notify_waiters();
        }
    }
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    version: axum::http::Version,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.lock().unwrap().push(Recorded {
        version,
        method,
        path: uri.path().to_string(),
        headers,
        body,
    });
    let next = shared.answers.lock().unwrap().pop_front();
    shared.changed.notify_waiters();
    let Some(script) = next else {
        return Response::builder()
            .status(StatusCode::IM_A_TEAPOT)
            .body(Body::from("no scripted answer left"))
            .unwrap();
    };
    let mut watch = Watch {
        shared: shared.clone(),
        finished: false,
    };
    if script.hang {
        std::future::pending::<()>().await;
    }
    let mut response = Response::builder().status(script.status);
    for (name, value) in &script.headers {
        response = response.header(name, value);
    }
    let parts = script.parts;
    let stream = futures_util::stream::unfold(
        (parts.into_iter(), Some(watch.take())),
        |(mut parts, mut watch)| async move {
            loop {
                match parts.next() {
                    Some(Part::Bytes(bytes)) => {
                        return Some((Ok::<_, std::io::Error>(Bytes::from(bytes)), (parts, watch)));
                    }
                    Some(Part::Delay(delay)) => tokio::time::sleep(delay).await,
                    Some(Part::Stall) => std::future::pending::<()>().await,
                    Some(Part::Abort) => {
                        if let Some(watch) = watch.as_mut() {
                            watch.finished = true;
                        }
                        return Some((Err(std::io::Error::other("scripted cut")), (parts, None)));
                    }
                    None => {
                        if let Some(watch) = watch.as_mut() {
                            watch.finished = true;
                        }
                        return None;
                    }
                }
            }
        },
    );
    response.body(Body::from_stream(stream)).unwrap()
}

impl Watch {
    /// Moves the watch into the body, leaving a finished one behind for the handler.
    fn take(&mut self) -> Watch {
        self.finished = true;
        Watch {
            shared: self.shared.clone(),
            finished: false,
        }
    }
}
