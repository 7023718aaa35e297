//! Approval round trip over a local WebSocket: a `shell` tool call that needs approval,
//! the request delivered to a client on `/ws`, the client's answer, the command run in
//! the sandbox, the result back to the caller.
//!
//! ```text
//! cargo bench --bench approval -- [--runs N]
//! ```
//!
//! The gateway runs in this process, started by `app::run_with` as `gateway start`
//! starts it (TLS off, loopback, static-token auth); the client is a blocking
//! tungstenite socket on its own thread that answers every request at once. Three rows, each the median and p99 of `--runs` calls:
//!
//! * request → answer: from asking the broker to the broker's answer (no tool run);
//! * `shell` needing approval: the whole call, including the sandbox run;
//! * `shell` allowed without approval: the same kind of call with no person in the
//!   loop, as the baseline the approval adds to.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aisopod::config::{ConfigSource, ProcessEnvironment};
use aisopod::gateway::approval::{CanonicalInput, NewRequest, Requester};
use aisopod::gateway::tools::{Call, CallContext, CallReport};
use aisopod::server::state::App;
use serde_json::{Value, json};
use tungstenite::Message;

const TOKEN: &str = "bench-static-token-0123456789abcdef0123456789";

fn main() -> std::process::ExitCode {
    // The sandbox re-executes this binary as its helper (`/proc/self/exe`).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if aisopod::sandbox::launcher::is_helper(&args) {
        return aisopod::sandbox::launcher::helper_main();
    }
    let runs = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(30usize);
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nbind = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n[tls]\nmode = \"off\"\n[security]\nmode = \"local\"\n[auth]\nmode = \"token\"\ntoken = \"{TOKEN}\"\n[logging]\nfilter = \"warn\"\n",
        dir.path().join("data").display()
    );
    let config = aisopod::config::parse(&text, ConfigSource::Defaults, &ProcessEnvironment)
        .unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        // Started as `gateway start` starts it, on a listener bound here.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (ready, started) = tokio::sync::oneshot::channel::<Arc<App>>();
        let options = aisopod::app::Options {
            on_ready: Some(Box::new(move |serving: &aisopod::app::Ready| {
                let _ = ready.send(serving.app.clone());
            })),
            notify_systemd: false,
            ..aisopod::app::Options::default()
        };
        let listeners = aisopod::app::Listeners {
            api: Some(listener),
            redirect: None,
        };
        tokio::spawn(async move {
            if let Err(err) =
                aisopod::app::run_with(config, listeners, options, std::future::pending()).await
            {
                eprintln!("the gateway stopped: {err}");
            }
        });
        let app = started.await.expect("the gateway did not start");
        let sandbox = app.sandbox_runner().await.err();
        let (greeted, hello) = std::sync::mpsc::channel();
        std::thread::spawn(move || answer_everything(addr, greeted));
        // Measure only once the client is connected and has been greeted.
        hello
            .recv_timeout(Duration::from_secs(60))
            .expect("the WebSocket client was not greeted");

        // The gateway allows a connection 10 messages a second (burst 20); the client
        // answers once per call, so calls are paced under that, between measurements.
        let pace = Duration::from_millis(110);
        let mut asked = Vec::new();
        for i in 0..runs {
            tokio::time::sleep(pace).await;
            let started = Instant::now();
            let resolved = app
                .approvals
                .ask(app.audit(), request(&format!("factor {i}")))
                .await;
            assert!(
                resolved.allowed(),
                "call {i}: {resolved:?} after {:?}",
                started.elapsed()
            );
            asked.push(started.elapsed());
        }
        println!("| approval over a local WebSocket ({runs} calls) | median | p99 |");
        println!("|---|---|---|");
        row("request → answer (broker, no tool run)", &mut asked);
        if let Some(reason) = sandbox {
            println!("| tool calls | not measured: {reason} | |");
            return;
        }
        let mut approved = Vec::new();
        let mut allowed = Vec::new();
        for i in 0..runs {
            tokio::time::sleep(pace).await;
            approved.push(call(&app, &format!("factor {}", 1000 + i)).await);
            allowed.push(call(&app, &format!("seq {}", 1 + i % 3)).await);
        }
        row(
            "`shell` needing approval: request → answer → sandbox run → result",
            &mut approved,
        );
        row("`shell` allowed without approval (baseline)", &mut allowed);
    });
    std::process::ExitCode::SUCCESS
}

fn request(command: &str) -> NewRequest {
    NewRequest {
        tool: "shell".into(),
        input: CanonicalInput {
            summary: command.into(),
            code_sha256: None,
            cwd: "/work".into(),
            files: Vec::new(),
        },
        requester: Requester {
            user: "bench".into(),
            agent: "default".into(),
            session: None,
        },
        reason: "bench".into(),
        rule: "bench".into(),
        remember_offered: false,
    }
}

async fn call(app: &App, command: &str) -> Duration {
    let runner = app.sandbox_runner().await;
    let ctx = CallContext {
        audit: app.audit(),
        approvals: &app.approvals,
        runner: runner.as_ref().map(|r| *r).map_err(String::as_str),
    };
    let started = Instant::now();
    let report = CallReport::from(
        app.tools
            .call(
                ctx,
                Call {
                    agent: "default".into(),
                    tool: "shell".into(),
                    input: json!({ "command": command }),
                    requester: Requester {
                        user: "bench".into(),
                        agent: "default".into(),
                        session: None,
                    },
                },
            )
            .await,
    );
    let elapsed = started.elapsed();
    assert!(matches!(report, CallReport::Done { .. }), "{report:?}");
    elapsed
}

/// A WebSocket client that allows every request it is shown.
fn answer_everything(addr: std::net::SocketAddr, greeted: std::sync::mpsc::Sender<()>) {
    use tungstenite::client::IntoClientRequest;
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (mut socket, _) = tungstenite::client(request, stream).unwrap();
    loop {
        let Ok(message) = socket.read() else { return };
        let Message::Text(body) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(&body).unwrap();
        if value["type"] == "hello" {
            let _ = greeted.send(());
        }
        if value["type"] == "approval.request" {
            let reply = json!({
                "type": "approval.respond",
                "requestId": value["requestId"],
                "allow": true,
                "inputHash": value["inputHash"],
            });
            if socket
                .send(Message::Text(reply.to_string().into()))
                .is_err()
            {
                return;
            }
        }
    }
}

fn row(name: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(index).copied().unwrap_or_default()
    };
    println!(
        "| {name} | {:.2} ms | {:.2} ms |",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    );
}
