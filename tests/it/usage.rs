//! Usage accounting: recorded through the gateway's own function (as the agent loop
//! will) and read back over REST on HTTP/1.1 and HTTP/2, per user and UTC day.

use std::time::Duration;

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::Value;

use aisopod::gateway::usage::UsageEvent;

use crate::chats::{World, call};

#[test]
fn usage_is_counted_per_user_and_day_and_each_user_reads_only_their_own() {
    let mut w = World::new("", &["alice", "bob"]);
    let app = w.gateway.app.clone().unwrap();
    let usage = &app.gateway.usage;
    let event = |user| UsageEvent {
        user,
        token: None,
        agent: Some("default"),
        model: "ollama/llama3.1:8b",
        prompt_tokens: 100,
        completion_tokens: 20,
    };
    usage.record(event("alice"));
    usage.record(event("alice"));
    usage.record(event("bob"));
    // Some counts written to the store, some only in memory: readers see them all.
    usage.flush().unwrap();
    w.gateway.advance_clock(Duration::from_secs(24 * 3600));
    usage.record(event("alice"));
    let day_two = usage.today();
    w.log_in_again();

    let rows = |answer: &Value| answer["rows"].as_array().unwrap().clone();
    for http1 in [true, false] {
        let client = w.client(http1);
        let get = |token: &str, query: &str| {
            call(
                &client,
                Method::GET,
                &w.url(&format!("/api/v1/usage{query}")),
                token,
                None,
            )
        };
        let (status, own) = get(w.token("alice"), "");
        assert_eq!(status, StatusCode::OK, "{own}");
        assert_eq!(rows(&own).len(), 2, "{own}");
        assert!(rows(&own).iter().all(|r| r["user"] == "alice"));
        assert_eq!(own["totals"]["requests"], 3);
        assert_eq!(own["totals"]["prompt_tokens"], 300);
        assert_eq!(own["totals"]["completion_tokens"], 60);

        let (status, one_day) = get(w.token("alice"), &format!("?from={day_two}&to={day_two}"));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one_day["totals"]["requests"], 1);

        for query in ["?user=bob", "?all=true"] {
            let (status, answer) = get(w.token("alice"), query);
            assert_eq!(status, StatusCode::FORBIDDEN, "{query}: {answer}");
        }
        let (_, everyone) = get(w.token("root"), "?all=true");
        assert_eq!(everyone["totals"]["requests"], 4);
        let (_, bobs) = get(w.token("root"), "?user=bob");
        assert_eq!(bobs["totals"]["requests"], 1);

        for query in [
            "?from=2026-02-30",
            "?from=yesterday",
            "?from=2026-03-02&to=2026-03-01",
            "?colour=red",
        ] {
            let (status, answer) = get(w.token("alice"), query);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
            assert_eq!(answer["error"]["code"], "invalid_request");
        }
    }
}
