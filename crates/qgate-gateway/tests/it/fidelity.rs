//! Real Claude Code request bodies (`fixtures/claude-code/*.json`, recorded with their path
//! and headers) replayed through the gateway, streaming and not: the simulator's validator
//! must accept what the gateway sends, and the system prompt, tools and session must
//! arrive. Then a two-turn tool exchange shaped exactly like Claude Code's second turn.

use crate::support::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Headers of the recording that describe the recorded connection, not the request.
const CONNECTION_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "connection",
    "accept-encoding",
    "x-api-key",
];

struct Fixture {
    name: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

fn fixtures() -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/claude-code");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "fixtures found: {files:?}");
    files
        .into_iter()
        .map(|file| {
            let recorded: Value =
                serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let headers = recorded["headers"]
                .as_object()
                .map(|h| {
                    h.iter()
                        .filter(|(k, _)| !CONNECTION_HEADERS.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            Fixture {
                name: file.file_name().unwrap().to_string_lossy().into_owned(),
                path: recorded["path"].as_str().unwrap().to_owned(),
                headers,
                body: recorded["body"].clone(),
            }
        })
        .collect()
}

/// Sends `body` to `path` with the recording's headers, as Claude Code did.
async fn replay(env: &TestEnv, fixture: &Fixture, path: &str, body: &Value) -> (u16, String) {
    let mut req = env
        .http
        .post(env.url(path))
        .header("x-api-key", "sk-ant-fake");
    for (k, v) in &fixture.headers {
        req = req.header(k, v);
    }
    let resp = req.body(body.to_string()).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

fn messages_path(fixture: &Fixture) -> String {
    if fixture.path.starts_with("/v1/messages/count_tokens") {
        "/v1/messages?beta=true".to_owned()
    } else {
        fixture.path.clone()
    }
}

/// The body as a `/v1/messages` call (count_tokens bodies have no `max_tokens`).
fn as_message(fixture: &Fixture, stream: bool) -> Value {
    let mut body = fixture.body.clone();
    if body.get("max_tokens").is_none() {
        body["max_tokens"] = json!(32000);
    }
    body["stream"] = json!(stream);
    body
}

/// `metadata.user_id` is a JSON string; its `session_id` is the conversation.
fn session_id(body: &Value) -> Option<String> {
    let user_id: Value = serde_json::from_str(body["metadata"]["user_id"].as_str()?).ok()?;
    user_id["session_id"].as_str().map(str::to_owned)
}

fn validation_failures(stats: &Value) -> u64 {
    stats["accounts"]
        .as_object()
        .map(|a| {
            a.values()
                .filter_map(|s| s["validation_failures"].as_u64())
                .sum()
        })
        .unwrap_or(0)
}

async fn last_request(env: &TestEnv, account: &str) -> Value {
    let url = format!("{}/_sim/last-request?account={account}", env.sim.base_url());
    let resp = env.http.get(url).send().await.unwrap();
    assert_eq!(
        resp.status(),
        200,
        "the simulator saw a request from {account}"
    );
    resp.json().await.unwrap()
}

/// Every string inside `v`, concatenated: where a text landed upstream is the
/// translation's business; that it landed somewhere is the client's.
fn all_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|i| all_text(i, out)),
        Value::Object(map) => map.values().for_each(|i| all_text(i, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A distinctive piece of a long text (the first line with some substance).
fn probe(text: &str) -> &str {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.len() >= 40)
        .unwrap_or(text.trim());
    let end = line
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .take_while(|&i| i <= 120)
        .last()
        .unwrap_or(0);
    &line[..end]
}

/// What the client sent must be in what the simulator received.
async fn assert_arrived(env: &TestEnv, fixture: &Fixture) {
    let upstream = last_request(env, "sim-1").await;
    let state = &upstream["conversationState"];
    let mut sent = String::new();
    all_text(&upstream, &mut sent);
    let name = &fixture.name;

    let system = match &fixture.body["system"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let in_messages = fixture.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "system")
        .filter_map(|m| m["content"].as_str().map(str::to_owned));
    for text in system.iter().cloned().chain(in_messages) {
        if text.starts_with("x-anthropic-billing-header") {
            continue; // Claude Code's own accounting line, meaningless upstream
        }
        let piece = probe(&text);
        assert!(
            sent.contains(piece),
            "{name}: system text {piece:?} was not sent"
        );
    }

    let want: Vec<&str> = fixture.body["tools"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    let tools = &state["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"];
    let got: Vec<&str> = tools
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["toolSpecification"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    for tool in &want {
        assert!(
            got.contains(tool),
            "{name}: tool {tool} missing upstream: {got:?}"
        );
    }

    if let Some(session) = session_id(&fixture.body) {
        assert_eq!(
            state["conversationId"],
            json!(session),
            "{name}: conversation id"
        );
    }
}

#[tokio::test]
async fn every_claude_code_fixture_is_accepted_by_the_simulator() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    for fixture in fixtures() {
        let name = &fixture.name;
        if fixture.path.starts_with("/v1/messages/count_tokens") {
            let (s, body) = replay(&env, &fixture, &fixture.path, &fixture.body).await;
            assert_eq!(s, 200, "{name}: {body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert!(v["input_tokens"].as_u64().unwrap() > 0, "{name}: {v}");
        }

        let path = messages_path(&fixture);
        let (s, body) = replay(&env, &fixture, &path, &as_message(&fixture, false)).await;
        assert_eq!(s, 200, "{name} non-streaming: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["type"], "message", "{name}: {v}");
        assert_eq!(v["model"], fixture.body["model"], "{name}: model echoed");
        assert!(!v["content"].as_array().unwrap().is_empty(), "{name}: {v}");
        assert_arrived(&env, &fixture).await;

        let (s, body) = replay(&env, &fixture, &path, &as_message(&fixture, true)).await;
        assert_eq!(s, 200, "{name} streaming: {body}");
        let events = parse_sse(&body);
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.first(), Some(&"message_start"), "{name}: {names:?}");
        assert_eq!(names.last(), Some(&"message_stop"), "{name}: {names:?}");
        assert!(!names.contains(&"error"), "{name}: {events:?}");
        assert_arrived(&env, &fixture).await;

        let stats = env.sim_stats().await;
        assert_eq!(validation_failures(&stats), 0, "{name}: {stats}");
    }
    let stats = env.sim_stats().await;
    assert_eq!(count(&stats, "sim-1", "chat_errors"), 0, "{stats}");
}

/// Claude Code sizes its context (`/context`, auto-compaction) from both numbers, so
/// `count_tokens` and the `usage.input_tokens` of the same body must tell the same story.
#[tokio::test]
async fn count_tokens_agrees_with_message_usage_on_claude_code_bodies() {
    for fixture in fixtures() {
        // A fresh gateway each time: no calibration learnt from an earlier body.
        let env = TestEnv::start(Opts::accounts(1)).await;
        let name = &fixture.name;
        let mut counted = json!({});
        for field in ["model", "messages", "system", "tools", "thinking"] {
            if let Some(v) = fixture.body.get(field) {
                counted[field] = v.clone();
            }
        }
        let before = count_tokens(&env, &fixture, &counted).await;
        let (s, body) = replay(
            &env,
            &fixture,
            &messages_path(&fixture),
            &as_message(&fixture, false),
        )
        .await;
        assert_eq!(s, 200, "{name}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let used = v["usage"]["input_tokens"].as_u64().unwrap();
        let after = count_tokens(&env, &fixture, &counted).await;
        for (when, n) in [("before", before), ("after", after)] {
            let ratio = used as f64 / n as f64;
            assert!(
                (0.75..=1.33).contains(&ratio),
                "{name} ({}): usage.input_tokens {used} vs count_tokens {n} {when} the call",
                fixture.body["model"]
            );
        }
    }
}

/// Claude Code repeats its tool list on every request, and the gateway parses and converts
/// a repeated list once (docs/benchmarks.md, fifth round). Repeats must send upstream and
/// count exactly what the first request did, and a list differing in one character must
/// be converted anew.
#[tokio::test]
async fn a_repeated_tool_list_goes_upstream_exactly_as_the_first_time() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let fixture = fixtures()
        .into_iter()
        .find(|f| !f.path.starts_with("/v1/messages/count_tokens") && f.body["tools"].is_array())
        .expect("a recorded /v1/messages call with tools");
    let path = messages_path(&fixture);
    let body = as_message(&fixture, false);
    let counted = json!({
        "model": body["model"], "messages": body["messages"], "tools": body["tools"]
    });
    let upstream_tools = |upstream: Value| {
        upstream["conversationState"]["currentMessage"]["userInputMessage"]
            ["userInputMessageContext"]["tools"]
            .clone()
    };

    // Counted before any reply, so no calibration comes between the counts.
    let counts = [
        count_tokens(&env, &fixture, &counted).await,
        count_tokens(&env, &fixture, &counted).await,
        count_tokens(&env, &fixture, &counted).await,
    ];
    assert_eq!(counts[0], counts[1]);
    assert_eq!(counts[0], counts[2]);

    let mut sent = Vec::new();
    for _ in 0..3 {
        let (s, text) = replay(&env, &fixture, &path, &body).await;
        assert_eq!(s, 200, "{text}");
        sent.push(upstream_tools(last_request(&env, "sim-1").await));
    }
    assert!(
        sent[0].as_array().is_some_and(|t| t.len() > 10),
        "{}",
        sent[0]
    );
    assert_eq!(sent[0], sent[1]);
    assert_eq!(sent[0], sent[2]);

    // The same list with one letter of one description changed.
    let mut changed = body.clone();
    let description = changed["tools"][1]["description"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = description.chars().next().unwrap();
    let edited = format!(
        "{}{}",
        first.to_ascii_lowercase(),
        &description[first.len_utf8()..]
    );
    assert_ne!(edited, description);
    changed["tools"][1]["description"] = json!(edited);
    let (s, text) = replay(&env, &fixture, &path, &changed).await;
    assert_eq!(s, 200, "{text}");
    let tools = upstream_tools(last_request(&env, "sim-1").await);
    let name = changed["tools"][1]["name"].as_str().unwrap();
    let spec = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["toolSpecification"])
        .find(|t| t["name"] == name)
        .unwrap();
    let probe = probe(&edited);
    assert!(
        spec["description"].as_str().unwrap().contains(probe),
        "{name}: {probe:?} not in {spec}"
    );
    assert_ne!(tools, sent[0]);
}

async fn count_tokens(env: &TestEnv, fixture: &Fixture, body: &Value) -> u64 {
    let (s, text) = replay(env, fixture, "/v1/messages/count_tokens?beta=true", body).await;
    assert_eq!(s, 200, "{}: {text}", fixture.name);
    let v: Value = serde_json::from_str(&text).unwrap();
    v["input_tokens"].as_u64().unwrap()
}

mod two_turns;
