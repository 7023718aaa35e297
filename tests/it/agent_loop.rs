//! The agent loop against the scripted upstream, called as the OpenAI API and `/ws`
//! call it: a turn streams text, runs the tools the model asks for, hands the results
//! back in the next request, records usage and audits each step; it stops at the
//! agent's iteration limit, on cancellation and on upstream failures, and a stored
//! agent has its tools without a restart.

use std::sync::Arc;
use std::time::Duration;

use aisopod::gateway::agent_loop::{self, LoopError, Outcome, Turn, TurnEvent, TurnOptions};
use aisopod::gateway::agents::AgentSpec;
use aisopod::gateway::approval::Requester;
use aisopod::gateway::providers::Message;
use aisopod::gateway::usage::UsageFilter;
use aisopod::server::state::App;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::chats::FAST;
use crate::support::{Gateway, Setup};
use crate::upstream::{Answer, Upstream};

pub struct LoopWorld {
    pub _setup: Setup,
    pub gateway: Gateway,
    pub up: Upstream,
    pub runtime: tokio::runtime::Runtime,
}

impl LoopWorld {
    /// A gateway with provider `local` (read timeout `read_timeout`) on the scripted
    /// upstream and the agent `helper` with the file tools, plus `extra` config (where
    /// `UPSTREAM_BASE` stands for the scripted upstream's `base_url`).
    pub fn start(read_timeout: &str, extra: &str) -> LoopWorld {
        let (runtime, up) = Upstream::on_own_runtime();
        let setup = Setup::new(&format!(
            "{FAST}\n[[providers]]\nname = \"local\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodels = [\"m1\"]\nread_timeout = \"{read_timeout}\"\nretries = 0\n\
             [[agents]]\nname = \"helper\"\nprovider = \"local\"\nmodel = \"m1\"\nsystem_prompt = \"You help.\"\nmax_tool_iterations = 2\ntools = [\"read_file\", \"list_dir\"]\n{extra}",
            up.openai_base()
        )
        .replace("UPSTREAM_BASE", &up.openai_base()));
        let gateway = setup.start();
        LoopWorld {
            _setup: setup,
            gateway,
            up,
            runtime,
        }
    }

    pub fn app(&self) -> Arc<App> {
        self.gateway.app.clone().unwrap()
    }

    /// Writes a file into an agent's workspace.
    pub fn workspace_file(&self, agent: &str, name: &str, content: &str) {
        let agent = self.app().gateway.agents.get(agent).unwrap();
        std::fs::create_dir_all(&agent.workspace).unwrap();
        std::fs::write(agent.workspace.join(name), content).unwrap();
    }

    /// Runs one turn to its end, collecting every event.
    pub fn turn(
        &self,
        agent: &str,
        context: Vec<Message>,
        cancel: CancellationToken,
    ) -> (Vec<TurnEvent>, Result<Outcome, LoopError>) {
        let app = self.app();
        let turn = Turn {
            agent: agent.into(),
            requester: Requester {
                user: "alice".into(),
                agent: String::new(),
                session: None,
            },
            token: Some("tok1".into()),
            context,
            options: TurnOptions::default(),
        };
        self.runtime.block_on(async move {
            let (tx, mut rx) = mpsc::channel(4);
            let collect = tokio::spawn(async move {
                let mut events = Vec::new();
                while let Some(event) = rx.recv().await {
                    events.push(event);
                }
                events
            });
            let deps = app.agent_loop().await;
            let result = agent_loop::run(&deps, turn, tx, cancel).await;
            (collect.await.unwrap(), result)
        })
    }
}

fn texts(events: &[TurnEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_turn_streams_runs_the_tool_and_the_model_gets_its_result() {
    let w = LoopWorld::start("5s", "");
    w.workspace_file("helper", "notes.txt", "buy oat milk");
    w.up.push(Answer::openai_stream_tool_call(
        "call_1",
        "read_file",
        &["{\"path\":", "\"notes.txt\"}"],
    ));
    w.up.push(Answer::openai_stream(
        &["The note ", "says: oat milk"],
        (20, 6),
    ));
    let (events, result) = w.turn(
        "helper",
        vec![Message::user("what does my note say?")],
        CancellationToken::new(),
    );
    let outcome = result.unwrap();
    assert_eq!(outcome.text, "The note says: oat milk");
    assert_eq!(texts(&events), outcome.text);
    assert_eq!(outcome.model, "local/m1");
    assert_eq!(outcome.usage.prompt_tokens, 27);
    assert_eq!(outcome.usage.completion_tokens, 11);
    assert_eq!(outcome.tools.len(), 1);
    assert!(outcome.tools[0].ok, "{:?}", outcome.tools[0]);
    // Events in order: the call, its result, the answer, then Done.
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            TurnEvent::TextDelta(_) => "text",
            TurnEvent::ToolCall { .. } => "call",
            TurnEvent::ToolResult { .. } => "result",
            TurnEvent::ApprovalWaiting { .. } => "approval",
            TurnEvent::Usage { .. } => "usage",
            TurnEvent::Done { .. } => "done",
            TurnEvent::Failed(_) => "failed",
        })
        .collect();
    assert_eq!(
        kinds,
        ["usage", "call", "result", "text", "text", "usage", "done"]
    );
    match &events[1] {
        TurnEvent::ToolCall {
            name, input_hash, ..
        } => {
            assert_eq!(name, "read_file");
            assert_eq!(input_hash.len(), 64);
        }
        other => panic!("{other:?}"),
    }
    // The produced messages: the call, its result, the answer.
    assert_eq!(outcome.messages.len(), 3);
    assert!(
        matches!(&outcome.messages[0], Message::Assistant { tool_calls, .. } if tool_calls.len() == 1)
    );
    assert!(
        matches!(&outcome.messages[1], Message::Tool { call_id, content } if call_id == "call_1" && content.contains("buy oat milk"))
    );
    // The upstream got the system prompt, the tools, and then the tool's result.
    let requests = w.up.requests();
    assert_eq!(requests.len(), 2);
    let first = requests[0].json();
    assert_eq!(first["messages"][0]["role"], "system");
    assert_eq!(first["messages"][0]["content"], "You help.");
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["read_file", "list_dir"]);
    let second = requests[1].json();
    let messages = second["messages"].as_array().unwrap();
    let tool_message = messages.last().unwrap();
    assert_eq!(tool_message["role"], "tool");
    assert_eq!(tool_message["tool_call_id"], "call_1");
    assert!(
        tool_message["content"]
            .as_str()
            .unwrap()
            .contains("buy oat milk")
    );
    assert_eq!(
        messages[messages.len() - 2]["tool_calls"][0]["id"],
        "call_1"
    );
    // Usage: one row for the two upstream calls.
    let rows = w
        .app()
        .gateway
        .usage
        .query(&UsageFilter::default())
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].requests, 2);
    assert_eq!(rows[0].user, "alice");
    assert_eq!(rows[0].token.as_deref(), Some("tok1"));
    assert_eq!(rows[0].agent.as_deref(), Some("helper"));
    assert_eq!(rows[0].model, "local/m1");
    assert_eq!(rows[0].prompt_tokens, 27);
    // Audit: the turn's start and end and the call by name and hash, never content.
    let audit = audit_text(&w);
    assert!(audit.contains("agent.turn"), "{audit}");
    assert!(audit.contains("agent.tool_call"), "{audit}");
    assert!(!audit.contains("oat milk"), "{audit}");
    assert!(!audit.contains("what does my note say"), "{audit}");
}

pub fn audit_text(w: &LoopWorld) -> String {
    let app = w.app();
    app.audit()
        .all()
        .map(|r| serde_json::to_string(&r.unwrap()).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_refused_tool_is_a_result_for_the_model_and_the_iteration_limit_is_an_error() {
    let w = LoopWorld::start("5s", "");
    // A path outside the workspace: the guard refuses, the model reads why.
    w.up.push(Answer::openai_stream_tool_call(
        "c1",
        "read_file",
        &["{\"path\":\"../../etc/passwd\"}"],
    ));
    w.up.push(Answer::openai_stream_tool_call("c2", "list_dir", &["{}"]));
    w.up.push(Answer::openai_stream_tool_call("c3", "list_dir", &["{}"]));
    let (events, result) = w.turn(
        "helper",
        vec![Message::user("look around")],
        CancellationToken::new(),
    );
    assert_eq!(
        result.unwrap_err(),
        LoopError::IterationLimit { limit: 2 },
        "{events:?}"
    );
    assert!(matches!(
        events.last(),
        Some(TurnEvent::Failed(LoopError::IterationLimit { limit: 2 }))
    ));
    let refused = events
        .iter()
        .find_map(|e| match e {
            TurnEvent::ToolResult { id, ok, result, .. } if id == "c1" => {
                Some((*ok, result.clone()))
            }
            _ => None,
        })
        .unwrap();
    assert!(!refused.0);
    assert!(refused.1["error"].is_string(), "{}", refused.1);
    let second = w.up.requests()[1].json();
    let last = second["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["role"], "tool");
    assert!(last["content"].as_str().unwrap().contains("error"));
    // Three upstream calls: two rounds of tools, then the refusal.
    assert_eq!(w.up.requests().len(), 3);
    // Errors a turn can end with have stable codes.
    assert_eq!(
        LoopError::IterationLimit { limit: 2 }.code(),
        "tool_iterations_exceeded"
    );
}

#[test]
fn a_hanging_upstream_is_stopped_by_cancellation_and_by_its_read_timeout() {
    // `patient` waits a minute for its upstream: only the cancellation can end its turn
    // within the test's bounds.
    let w = LoopWorld::start(
        "1s",
        "[[providers]]\nname = \"patient\"\nkind = \"openai\"\nbase_url = \"UPSTREAM_BASE\"\nread_timeout = \"60s\"\nretries = 0\n\
         [[agents]]\nname = \"waiter\"\nprovider = \"patient\"\nmodel = \"m1\"\n",
    );
    w.up.push(Answer::hang());
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let (events, result, cancelled_at) = std::thread::scope(|scope| {
        // Cancels once the upstream holds the request, however slow the machine is.
        let canceller = scope.spawn(|| {
            let waiter = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            assert!(
                waiter.block_on(w.up.wait_requests(1)),
                "the request arrived"
            );
            trigger.cancel();
            std::time::Instant::now()
        });
        let (events, result) = w.turn("waiter", vec![Message::user("hi")], cancel);
        (events, result, canceller.join().unwrap())
    });
    assert_eq!(result.unwrap_err(), LoopError::Cancelled);
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(10),
        "the turn ended at once, long before the read timeout: {:?}",
        cancelled_at.elapsed()
    );
    assert!(matches!(
        events.last(),
        Some(TurnEvent::Failed(LoopError::Cancelled))
    ));
    assert!(w.runtime.block_on(w.up.wait_abandoned(1)));
    // A stream that stalls after some text: the read timeout ends it with a clear code.
    w.up.push(Answer::openai_stream(&["partial"], (1, 1)).stall_after(1));
    let (_, result) = w.turn(
        "helper",
        vec![Message::user("hi")],
        CancellationToken::new(),
    );
    let err = result.unwrap_err();
    assert_eq!(err.code(), "upstream_timeout", "{err}");
    // Garbage and a 500 are clear errors too; the gateway still answers after.
    w.up.push(Answer::sse(["{not json".to_string()]));
    let (_, result) = w.turn(
        "helper",
        vec![Message::user("hi")],
        CancellationToken::new(),
    );
    assert_eq!(result.unwrap_err().code(), "upstream_bad_response");
    w.up.push(Answer::status(500));
    let (_, result) = w.turn(
        "helper",
        vec![Message::user("hi")],
        CancellationToken::new(),
    );
    assert_eq!(result.unwrap_err().code(), "upstream_error");
    w.up.push(Answer::openai_stream(&["fine"], (1, 1)));
    let (_, result) = w.turn(
        "helper",
        vec![Message::user("hi")],
        CancellationToken::new(),
    );
    assert_eq!(result.unwrap().text, "fine");
}

#[test]
fn a_stored_agent_has_its_tools_without_a_restart() {
    let w = LoopWorld::start("5s", "");
    let app = w.app();
    let agent = app
        .gateway
        .agents
        .create(AgentSpec {
            name: "scribe".into(),
            provider: Some("local".into()),
            model: Some("m1".into()),
            tools: Some(vec!["list_dir".into()]),
            ..AgentSpec::default()
        })
        .unwrap();
    w.workspace_file("scribe", "todo.md", "x");
    assert!(agent.workspace.ends_with("workspaces/scribe"));
    w.up.push(Answer::openai_stream_tool_call("c1", "list_dir", &["{}"]));
    w.up.push(Answer::openai_stream(&["one file"], (1, 1)));
    let (events, result) = w.turn(
        "scribe",
        vec![Message::user("what is there?")],
        CancellationToken::new(),
    );
    assert_eq!(result.unwrap().text, "one file");
    let listed = events
        .iter()
        .find_map(|e| match e {
            TurnEvent::ToolResult { ok, result, .. } => Some((*ok, result.clone())),
            _ => None,
        })
        .unwrap();
    assert!(listed.0, "{}", listed.1);
    assert!(listed.1.to_string().contains("todo.md"), "{}", listed.1);
    let first = w.up.requests()[0].json();
    assert_eq!(first["tools"].as_array().unwrap().len(), 1);
}

/// An agent's model brings its provider's fallbacks (the same chain as the
/// pass-through's): a 503 before any output moves the turn to the next model, and an
/// agent's own fallbacks follow.
#[test]
fn an_agents_turn_falls_back_through_its_providers_and_its_own_chain() {
    let w = LoopWorld::start(
        "5s",
        "[[providers]]\nname = \"spare\"\nkind = \"openai\"\nbase_url = \"UPSTREAM_BASE\"\nretries = 0\nfallbacks = { \"s1\" = [\"spare/s2\"] }\n\
         [[agents]]\nname = \"sturdy\"\nprovider = \"spare\"\nmodel = \"s1\"\nfallbacks = [\"local/m1\"]\n",
    );
    let models = |from: usize| -> Vec<String> {
        w.up.requests()[from..]
            .iter()
            .map(|r| r.json()["model"].as_str().unwrap_or("").to_string())
            .collect()
    };
    w.up.push(Answer::status(503));
    w.up.push(Answer::openai_stream(&["from s2"], (1, 1)));
    let (_, result) = w.turn(
        "sturdy",
        vec![Message::user("hi")],
        CancellationToken::new(),
    );
    let outcome = result.unwrap();
    assert_eq!(outcome.text, "from s2");
    assert_eq!(outcome.model, "spare/s2");
    assert_eq!(models(0), ["s1", "s2"]);

    w.up.push(Answer::status(429));
    w.up.push(Answer::openai_stream(&["x"], (1, 1)).cut_after(0));
    w.up.push(Answer::openai_stream(&["from m1"], (1, 1)));
    let (_, result) = w.turn(
        "sturdy",
        vec![Message::user("hi")],
        CancellationToken::new(),
    );
    let outcome = result.unwrap();
    assert_eq!(outcome.text, "from m1");
    assert_eq!(outcome.model, "local/m1");
    assert_eq!(models(2), ["s1", "s2", "m1"]);
}
