//! Clients for the benchmarks in `bench/gateway`, built only as an example (never part
//! of the `aisopod` binary):
//!
//! - `chunks`: streams chat completions from `bench_upstream`, directly or through a
//!   gateway, and measures how long each content chunk took from the upstream's send
//!   time (written into the chunk) to its arrival here, on the same host clock. Prints
//!   one JSON object with the percentiles in microseconds.
//! - `sockets`: opens authenticated WebSockets to aisopod's `/ws` and holds them open
//!   (answering pings) until stdin closes, printing `open N` once they all are.
//!
//! ```text
//! bench_client chunks --url http://127.0.0.1:PORT/v1 --model bench --requests 30
//! bench_client sockets --port 8443 --ca data/tls/ca.pem --token aisp_... --count 100
//! ```

use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use futures_util::StreamExt as _;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Per-chunk delay of streamed chat completions.
    Chunks {
        /// Base URL of the OpenAI-compatible API (…/v1).
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "bench")]
        model: String,
        /// Sent as `Authorization: Bearer …`.
        #[arg(long)]
        token: Option<String>,
        /// PEM file of the CA to trust for https (aisopod's `data/tls/ca.pem`).
        #[arg(long)]
        ca: Option<std::path::PathBuf>,
        /// Streamed requests in all.
        #[arg(long, default_value_t = 30)]
        requests: usize,
        /// Requests streaming at once.
        #[arg(long, default_value_t = 5)]
        concurrency: usize,
    },
    /// Hold authenticated WebSockets to aisopod's /ws open until stdin closes.
    Sockets {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        ca: std::path::PathBuf,
        /// An API token with chat:read, sent as `X-API-Key`.
        #[arg(long)]
        token: String,
        #[arg(long, default_value_t = 100)]
        count: usize,
    },
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Chunks {
            url,
            model,
            token,
            ca,
            requests,
            concurrency,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let report =
                runtime.block_on(chunks(url, model, token, ca, requests, concurrency.max(1)))?;
            println!("{report}");
            Ok(())
        }
        Command::Sockets {
            port,
            ca,
            token,
            count,
        } => sockets(port, &ca, &token, count),
    }
}

fn micros_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros())
}

async fn chunks(
    url: String,
    model: String,
    token: Option<String>,
    ca: Option<std::path::PathBuf>,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Value> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(60));
    if let Some(ca) = ca {
        let pem = std::fs::read(&ca).with_context(|| format!("reading {}", ca.display()))?;
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    let client = builder.build()?;
    let endpoint = format!("{}/chat/completions", url.trim_end_matches('/'));
    let body = json!({
        "model": model,
        "stream": true,
        "messages": [{"role": "user", "content": "Say something."}],
    });
    let delays = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(requests);
    for _ in 0..requests {
        let permit = semaphore.clone().acquire_owned().await?;
        let (client, endpoint, body, token) = (
            client.clone(),
            endpoint.clone(),
            body.clone(),
            token.clone(),
        );
        let (delays, errors) = (delays.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let result = one_stream(&client, &endpoint, &body, token.as_deref()).await;
            drop(permit);
            match result {
                Ok(found) => {
                    if let Ok(mut all) = delays.lock() {
                        all.extend(found);
                    }
                }
                Err(err) => {
                    eprintln!("bench_client: {err:#}");
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let mut all = delays
        .lock()
        .map_err(|_| anyhow::anyhow!("a task panicked"))?
        .clone();
    all.sort_unstable();
    let pick = |q: f64| -> u64 {
        if all.is_empty() {
            return 0;
        }
        let rank = ((q * all.len() as f64).ceil() as usize).clamp(1, all.len());
        all.get(rank - 1).copied().unwrap_or(0)
    };
    Ok(json!({
        "requests": requests,
        "errors": errors.load(std::sync::atomic::Ordering::Relaxed),
        "chunks": all.len(),
        "p50_us": pick(0.50),
        "p90_us": pick(0.90),
        "p99_us": pick(0.99),
        "max_us": all.last().copied().unwrap_or(0),
    }))
}

/// The delays of one streamed answer's chunks, in microseconds.
async fn one_stream(
    client: &reqwest::Client,
    endpoint: &str,
    body: &Value,
    token: Option<&str>,
) -> anyhow::Result<Vec<u64>> {
    let mut request = client.post(endpoint).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    if !response.status().is_success() {
        let status = response.status();
        bail!("{status}: {}", response.text().await.unwrap_or_default());
    }
    let mut stream = response.bytes_stream();
    let mut pending = Vec::<u8>::new();
    let mut delays = Vec::new();
    let mut done = false;
    while let Some(piece) = stream.next().await {
        let arrived = micros_now();
        pending.extend_from_slice(&piece?);
        while let Some(end) = pending.windows(2).position(|pair| pair == b"\n\n") {
            let event: Vec<u8> = pending.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event);
            for line in text.lines() {
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                let data = data.trim();
                if data == "[DONE]" {
                    done = true;
                    continue;
                }
                let Ok(chunk) = serde_json::from_str::<Value>(data) else {
                    bail!("not JSON: {data}");
                };
                let content = chunk
                    .pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                for stamp in content.split_whitespace() {
                    let sent: u128 = stamp
                        .parse()
                        .with_context(|| format!("no send time in chunk {content:?}"))?;
                    delays.push(u64::try_from(arrived.saturating_sub(sent)).unwrap_or(u64::MAX));
                }
            }
        }
    }
    if !done {
        bail!("the stream ended without [DONE]");
    }
    Ok(delays)
}

fn sockets(port: u16, ca: &std::path::Path, token: &str, count: usize) -> anyhow::Result<()> {
    use rustls_pki_types::pem::PemObject as _;
    use tungstenite::client::IntoClientRequest as _;
    let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls_pki_types::CertificateDer::from_pem_slice(&pem)?)?;
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let connection = rustls::ClientConnection::new(
            config.clone(),
            rustls_pki_types::ServerName::try_from("127.0.0.1")?,
        )?;
        let socket = std::net::TcpStream::connect(("127.0.0.1", port))?;
        let stream = rustls::StreamOwned::new(connection, socket);
        let mut request = format!("wss://127.0.0.1:{port}/ws").into_client_request()?;
        request.headers_mut().insert("x-api-key", token.parse()?);
        let (mut ws, _) = tungstenite::client(request, stream)
            .map_err(|err| anyhow::anyhow!("WebSocket handshake failed: {err}"))?;
        // Reading answers the server's pings; the socket stays open until it closes.
        held.push(std::thread::spawn(move || while ws.read().is_ok() {}));
    }
    println!("open {count}");
    let mut rest = Vec::new();
    std::io::stdin().read_to_end(&mut rest)?;
    std::process::exit(0)
}
