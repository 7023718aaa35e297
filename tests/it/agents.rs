//! Agents over REST, over HTTP/1.1 and HTTP/2: `agent:read` lists and reads,
//! `agent:manage` creates, replaces and deletes; agents from the config file are
//! read-only; a refusal names the bad field and stores nothing.

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::json;

use crate::chats::{World, call};

const CONFIGURED: &str = "[[providers]]\nname = \"ollama\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:11434/v1\"\n\
    [[providers]]\nname = \"openai\"\nkind = \"openai\"\nbase_url = \"https://api.openai.com/v1\"\n\
    [[agents]]\nname = \"helper\"\nprovider = \"ollama\"\nmodel = \"llama3.1:8b\"\nfallbacks = [\"openai/gpt-4o-mini\"]\ntemperature = 0.3\n";

#[test]
fn agents_are_managed_over_the_api_and_configured_ones_stay_read_only() {
    let w = World::new(CONFIGURED, &[]);
    let reader = w.api_token("reader", &["agent:read"]);
    let manager = w.api_token("manager", &["agent:read", "agent:manage"]);
    for http1 in [true, false] {
        let client = w.client(http1);
        let name = if http1 { "writer-h1" } else { "writer-h2" };
        let agent_url = w.url(&format!("/api/v1/agents/{name}"));
        let spec = json!({
            "name": name, "provider": "openai", "model": "gpt-4o-mini",
            "system_prompt": "Write well.", "tools": ["read_file"], "temperature": 0.7,
        });

        let (status, listed) = call(
            &client,
            Method::GET,
            &w.url("/api/v1/agents"),
            &reader,
            None,
        );
        assert_eq!(status, StatusCode::OK);
        let helper = &listed["agents"][0];
        assert_eq!(helper["name"], "helper");
        assert_eq!(helper["source"], "config");
        assert_eq!(helper["fallbacks"], json!(["openai/gpt-4o-mini"]));

        // agent:read may not change anything.
        let (status, _) = call(
            &client,
            Method::POST,
            &w.url("/api/v1/agents"),
            &reader,
            Some(spec.clone()),
        );
        assert_eq!(status, StatusCode::FORBIDDEN);

        // A bad field is named and nothing is stored.
        let mut bad = spec.clone();
        bad["temperature"] = json!(3);
        bad["fallbacks"] = json!(["no-slash"]);
        let (status, answer) = call(
            &client,
            Method::POST,
            &w.url("/api/v1/agents"),
            &manager,
            Some(bad),
        );
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("temperature: must be between 0 and 2"),
            "{message}"
        );
        assert!(message.contains("fallbacks.0:"), "{message}");
        // A provider the config file does not name is refused like in the file.
        let mut unknown = spec.clone();
        unknown["provider"] = json!("olama");
        unknown["fallbacks"] = json!(["ollama/llama3", "openrouter/x"]);
        let (status, answer) = call(
            &client,
            Method::POST,
            &w.url("/api/v1/agents"),
            &manager,
            Some(unknown),
        );
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("provider: \"olama\" is not the name of a [[providers]] entry"),
            "{message}"
        );
        assert!(message.contains("fallbacks.1: \"openrouter\""), "{message}");
        assert!(!message.contains("fallbacks.0"), "{message}");
        let (status, _) = call(&client, Method::GET, &agent_url, &reader, None);
        assert_eq!(status, StatusCode::NOT_FOUND);
        // The API never picks a directory on the host.
        let mut rooted = spec.clone();
        rooted["workspace"] = json!("/");
        let (status, answer) = call(
            &client,
            Method::POST,
            &w.url("/api/v1/agents"),
            &manager,
            Some(rooted),
        );
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");

        let (status, created) = call(
            &client,
            Method::POST,
            &w.url("/api/v1/agents"),
            &manager,
            Some(spec.clone()),
        );
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["source"], "api");
        assert!(
            created["workspace"]
                .as_str()
                .unwrap()
                .ends_with(&format!("workspaces/{name}"))
        );
        let (status, _) = call(
            &client,
            Method::POST,
            &w.url("/api/v1/agents"),
            &manager,
            Some(spec.clone()),
        );
        assert_eq!(status, StatusCode::CONFLICT);
        let mut taken = spec.clone();
        taken["name"] = json!("helper");
        let (status, _) = call(
            &client,
            Method::POST,
            &w.url("/api/v1/agents"),
            &manager,
            Some(taken),
        );
        assert_eq!(status, StatusCode::CONFLICT);

        let mut changed = spec.clone();
        changed["temperature"] = json!(0.1);
        let (status, updated) = call(&client, Method::PUT, &agent_url, &manager, Some(changed));
        assert_eq!(status, StatusCode::OK, "{updated}");
        let (_, read) = call(&client, Method::GET, &agent_url, &reader, None);
        assert_eq!(read["temperature"], json!(0.1));

        // The configured agent cannot be changed or deleted here.
        let helper_url = w.url("/api/v1/agents/helper");
        let mut helper_spec = spec.clone();
        helper_spec["name"] = json!("helper");
        let (status, answer) = call(
            &client,
            Method::PUT,
            &helper_url,
            &manager,
            Some(helper_spec),
        );
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(answer["error"]["code"], "read_only");
        let (status, _) = call(&client, Method::DELETE, &helper_url, &manager, None);
        assert_eq!(status, StatusCode::CONFLICT);

        let (status, _) = call(&client, Method::DELETE, &agent_url, &reader, None);
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = call(&client, Method::DELETE, &agent_url, &manager, None);
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = call(&client, Method::GET, &agent_url, &reader, None);
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let audit = crate::support::stdout(&w.setup.cli(&["audit", "export"]));
    assert!(audit.contains("agent.create") && audit.contains("agent.delete"));
}
