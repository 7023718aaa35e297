//! A fast loopback LLM upstream for the benchmarks in `bench/gateway`: it speaks just
//! enough of OpenAI's chat completions API (`POST …/chat/completions`, plain and
//! `stream: true`, and `GET …/models`) to stand behind aisopod, LiteLLM or nothing, and
//! answers at once with a fixed body, so what a load test measures is the path in
//! between.
//!
//! A streamed answer is `--chunks` content chunks `--interval-ms` apart; each chunk's
//! content starts with the upstream's send time in microseconds since the Unix epoch, so
//! a client on the same host (`bench_client chunks`) can tell how long each chunk spent
//! on the way. It never checks a key and keeps nothing: it is a benchmark fixture, built
//! only as an example, never part of the `aisopod` binary.
//!
//! ```text
//! cargo run --release --example bench_upstream -- --listen 127.0.0.1:0 --chunks 20 --interval-ms 20
//! ```
//! The first line on stdout is the base URL (`http://127.0.0.1:PORT/v1`).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use clap::Parser;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Content chunks in a streamed answer.
    #[arg(long, default_value_t = 20)]
    chunks: u32,
    /// Pause between two streamed chunks, in milliseconds.
    #[arg(long, default_value_t = 20)]
    interval_ms: u64,
    /// Tokio worker threads (the upstream should cost the machine little).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

#[derive(Debug, Clone, Copy)]
struct Stream {
    chunks: u32,
    interval: Duration,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let stream = Stream {
        chunks: args.chunks,
        interval: Duration::from_millis(args.interval_ms),
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .route("/chat/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .with_state(stream);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("http://{addr}/v1");
    // Without TCP_NODELAY a chunk written while the previous one is unacknowledged waits
    // for the peer's delayed ACK (~40 ms), which would swamp what the bench measures.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.context("serving")
}

fn micros_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros())
}

async fn models() -> Response {
    axum::Json(json!({
        "object": "list",
        "data": [{"id": "bench", "object": "model", "created": 0, "owned_by": "bench"}],
    }))
    .into_response()
}

async fn completions(State(stream): State<Stream>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("bench")
        .to_owned();
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        let usage = request
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true);
        return streamed(stream, model, usage);
    }
    axum::Json(json!({
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "ok"},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9},
    }))
    .into_response()
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> Bytes {
    let event = json!({
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    Bytes::from(format!("data: {event}\n\n"))
}

fn streamed(stream: Stream, model: String, usage: bool) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut sent = tx
            .send(Ok(chunk(&model, json!({"role": "assistant"}), None)))
            .await
            .is_ok();
        for index in 0..stream.chunks {
            if !sent {
                return;
            }
            if index > 0 {
                tokio::time::sleep(stream.interval).await;
            }
            let content = format!("{} ", micros_now());
            sent = tx
                .send(Ok(chunk(&model, json!({"content": content}), None)))
                .await
                .is_ok();
        }
        let mut tail = chunk(&model, json!({}), Some("stop")).to_vec();
        if usage {
            let event = json!({
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [],
                "usage": {
                    "prompt_tokens": 8,
                    "completion_tokens": stream.chunks,
                    "total_tokens": 8 + stream.chunks,
                },
            });
            tail.extend_from_slice(format!("data: {event}\n\n").as_bytes());
        }
        tail.extend_from_slice(b"data: [DONE]\n\n");
        if sent {
            let _ = tx.send(Ok(Bytes::from(tail))).await;
        }
    });
    let body = Body::from_stream(tokio_stream_from(rx));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The receiving half of a channel as a `Stream`, without pulling in tokio-stream.
fn tokio_stream_from<T>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
