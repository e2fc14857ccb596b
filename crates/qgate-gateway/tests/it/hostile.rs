//! Hostile request bodies through the real gateway over HTTP: malformed and truncated
//! JSON, wrong types in every major field, deep nesting, invalid UTF-8. Each must get an
//! Anthropic-shaped 4xx without reaching the upstream, and leave the gateway healthy and
//! every account unpenalised. Helpers shared by the other `hostile_*` modules live here.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Chat requests the simulator received, all accounts together.
pub async fn upstream_calls(env: &TestEnv) -> u64 {
    let stats = env.sim_stats().await;
    stats["accounts"]
        .as_object()
        .map(|accounts| {
            accounts
                .values()
                .map(|a| a["chat_requests"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// `/health` is healthy and every account is active, its breaker closed with no failure
/// counted, and nothing in flight: a hostile client cost no account anything.
pub async fn assert_unharmed(env: &TestEnv, what: &str) {
    let (status, health) = env.get("/health").await;
    assert_eq!(
        (status, health["status"].as_str()),
        (200, Some("healthy")),
        "{what}: {health}"
    );
    for i in 1..=env.accounts {
        let id = format!("sim-{i}");
        let (status, account) = env.get(&format!("/accounts/{id}")).await;
        assert_eq!(status, 200, "{what}: {account}");
        assert_eq!(
            account["state"], "active",
            "{what}: {id} penalised: {account}"
        );
        assert_eq!(account["breaker"]["phase"], "closed", "{what}: {account}");
        assert_eq!(
            account["breaker"]["consecutive_failures"], 0,
            "{what}: {id} counted a failure: {account}"
        );
        assert_eq!(account["in_flight"], 0, "{what}: {account}");
    }
}

/// Asserts an Anthropic error body of the given type.
pub fn assert_anthropic_error(body: &Value, kind: &str, what: &str) {
    assert_eq!(body["type"], "error", "{what}: {body}");
    assert_eq!(body["error"]["type"], kind, "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
}

/// POSTs raw bytes to `/v1/messages`; returns status and the JSON body (Null if none).
pub async fn post_raw(env: &TestEnv, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let r = env
        .http
        .post(env.url("/v1/messages"))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Each body is refused with a 400 `invalid_request_error` and no upstream call.
async fn all_refused_locally(env: &TestEnv, bodies: Vec<(String, Vec<u8>)>) {
    let before = upstream_calls(env).await;
    for (what, body) in bodies {
        let (status, v) = post_raw(env, body).await;
        assert_eq!(status, 400, "{what}: {v}");
        assert_anthropic_error(&v, "invalid_request_error", &what);
    }
    assert_eq!(upstream_calls(env).await, before, "the upstream was called");
    assert_unharmed(env, "after refused bodies").await;
}

/// The host:port of the gateway.
pub fn gateway_addr(env: &TestEnv) -> String {
    env.base.trim_start_matches("http://").to_owned()
}

/// Reads from `stream` until EOF, an error, or `limit` passes; what arrived before.
pub async fn read_until_closed(
    stream: &mut (impl AsyncReadExt + Unpin),
    limit: Duration,
) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, false),
        }
    }
}

/// The status code of a raw HTTP/1.1 response, if one arrived.
pub fn raw_status(response: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(response);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// The JSON body of a raw HTTP/1.1 response with `Content-Length`.
pub fn raw_json_body(response: &[u8]) -> Value {
    let text = String::from_utf8_lossy(response);
    text.split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null)
}

/// Writes `head` on a fresh connection, then returns it.
pub async fn connect_and_send(env: &TestEnv, head: &[u8]) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(gateway_addr(env))
        .await
        .unwrap();
    stream.write_all(head).await.unwrap();
    stream
}

fn valid_body() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "system": "be brief",
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    })
}

#[tokio::test]
async fn malformed_and_truncated_json_is_a_400_and_costs_nothing() {
    let env = TestEnv::start(Opts::accounts(2)).await;
    let full = serde_json::to_vec(&valid_body()).unwrap();
    let mut bodies: Vec<(String, Vec<u8>)> = (1..full.len())
        .step_by(5)
        .map(|cut| (format!("cut at {cut}"), full[..cut].to_vec()))
        .collect();
    for text in [
        "",
        "   ",
        "null",
        "[]",
        "42",
        "\"a string\"",
        "{",
        "}",
        "{}}",
        "{\"model\": \"claude-sonnet-4-5\",}",
        "{'model': 'claude-sonnet-4-5'}",
        "{\"model\": \"claude-sonnet-4-5\" \"max_tokens\": 1}",
        "{\"model\": \"claude-sonnet-4-5\", \"max_tokens\": 1, \"messages\": [{\"role\":\"user\",\"content\":\"x\"}]} trailing",
        "\u{feff}{\"model\": \"x\"}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"\\ud800\"}]}",
        "{\"max_tokens\": 1e999}",
    ] {
        bodies.push((format!("{text:?}"), text.as_bytes().to_vec()));
    }
    // count_tokens parses the same way.
    for (what, body) in &bodies {
        let r = env
            .http
            .post(env.url("/v1/messages/count_tokens"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "count_tokens, {what}");
        let v: Value = r.json().await.unwrap();
        assert_anthropic_error(&v, "invalid_request_error", what);
    }
    all_refused_locally(&env, bodies).await;
}

#[tokio::test]
async fn wrong_types_in_every_major_field_are_a_400() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let wrong: &[(&str, Value)] = &[
        ("/model", json!(5)),
        ("/model", json!(null)),
        ("/model", json!(["claude-sonnet-4-5"])),
        ("/max_tokens", json!("64")),
        ("/max_tokens", json!(-1)),
        ("/max_tokens", json!(1.5)),
        ("/max_tokens", json!(null)),
        ("/max_tokens", json!({})),
        ("/messages", json!("hi")),
        ("/messages", json!({"role": "user"})),
        ("/messages", json!([5])),
        ("/messages", json!([null])),
        ("/messages/0/role", json!(5)),
        ("/messages/0/role", json!(null)),
        ("/messages/0/content", json!(5)),
        ("/messages/0/content", json!(null)),
        ("/messages/0/content", json!({"type": "text", "text": "hi"})),
        ("/messages/0/content", json!([5])),
        ("/messages/0/content", json!(["hi"])),
        ("/messages/0/content/0/type", json!(5)),
        ("/messages/0/content/0/text", json!(5)),
        ("/messages/0/content/0/text", json!(["hi"])),
        ("/system", json!(5)),
        ("/system", json!({"type": "text", "text": "x"})),
        ("/system", json!([5])),
        ("/tools", json!({"name": "Bash"})),
        ("/tools", json!("Bash")),
        ("/tools", json!([5])),
        ("/tools/0/name", json!(5)),
        ("/tools/0/name", json!(null)),
        ("/tools/0/description", json!(5)),
        ("/stream", json!("yes")),
        ("/stream", json!(1)),
        ("/thinking", json!("enabled")),
        ("/thinking", json!({"type": 5})),
        (
            "/thinking",
            json!({"type": "enabled", "budget_tokens": "lots"}),
        ),
        ("/metadata", json!("user")),
        ("/metadata", json!({"user_id": 5})),
        ("/temperature", json!("hot")),
        ("/top_p", json!([])),
        ("/top_k", json!(-1)),
        ("/stop_sequences", json!("STOP")),
        ("/stop_sequences", json!([1, 2])),
    ];
    let mut bodies = Vec::new();
    for (pointer, value) in wrong {
        let mut body = valid_body();
        set_pointer(&mut body, pointer, value.clone());
        bodies.push((
            format!("{pointer} = {value}"),
            serde_json::to_vec(&body).unwrap(),
        ));
    }
    // Blocks of a known type with their fields of the wrong type.
    for block in [
        json!({"type": "image", "source": 5}),
        json!({"type": "image", "source": {"type": "base64", "media_type": 5, "data": "x"}}),
        json!({"type": "tool_use", "id": 5, "name": "Bash", "input": {}}),
        json!({"type": "tool_use", "id": "t", "name": ["Bash"], "input": {}}),
        json!({"type": "tool_result", "tool_use_id": null, "content": "x"}),
        json!({"type": "tool_result", "tool_use_id": "t", "content": 5}),
        json!({"type": "tool_result", "tool_use_id": "t", "content": [5]}),
        json!({"type": "tool_result", "tool_use_id": "t", "is_error": "no"}),
        json!({"type": "thinking", "thinking": 5, "signature": "s"}),
    ] {
        let mut body = valid_body();
        body["messages"][0]["content"] = json!([block]);
        bodies.push((format!("block {block}"), serde_json::to_vec(&body).unwrap()));
    }
    all_refused_locally(&env, bodies).await;
}

fn set_pointer(body: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        body
    } else {
        body.pointer_mut(parent).unwrap()
    };
    match target {
        Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
        other => other[key] = value,
    }
}

/// `depth` nested arrays around `inner`, built without recursion.
pub fn nested_arrays(depth: usize, inner: &str) -> String {
    let mut s = String::with_capacity(depth * 2 + inner.len());
    s.extend(std::iter::repeat_n('[', depth));
    s.push_str(inner);
    s.extend(std::iter::repeat_n(']', depth));
    s
}

#[tokio::test]
async fn deep_nesting_hits_the_parsers_recursion_limit_not_the_stack() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let deep = nested_arrays(100_000, "1");
    let deep_objects = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    let bodies = vec![
        (
            "100 000 arrays as a tool input".to_owned(),
            format!(
                r#"{{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{{"role":"user","content":[{{"type":"tool_use","id":"t","name":"n","input":{deep}}}]}}]}}"#
            ),
        ),
        (
            "100 000 arrays as content".to_owned(),
            format!(
                r#"{{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{{"role":"user","content":{deep}}}]}}"#
            ),
        ),
        (
            "100 000 objects as tool_choice".to_owned(),
            format!(
                r#"{{"model":"claude-sonnet-4-5","max_tokens":5,"tool_choice":{deep_objects},"messages":[{{"role":"user","content":"x"}}]}}"#
            ),
        ),
        (
            "100 000 arrays as an input schema".to_owned(),
            format!(
                r#"{{"model":"claude-sonnet-4-5","max_tokens":5,"tools":[{{"name":"t","input_schema":{deep}}}],"messages":[{{"role":"user","content":"x"}}]}}"#
            ),
        ),
        ("100 000 arrays as the whole body".to_owned(), deep.clone()),
    ];
    all_refused_locally(
        &env,
        bodies
            .into_iter()
            .map(|(what, body)| (what, body.into_bytes()))
            .collect(),
    )
    .await;
    // count_tokens and the admin API parse JSON too.
    for path in ["/v1/messages/count_tokens", "/accounts"] {
        let r = env
            .http
            .post(env.url(path))
            .header("content-type", "application/json")
            .body(deep.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!((400..500).contains(&status), "{path}: {status}");
    }
    assert_unharmed(&env, "after deep nesting").await;
}

#[tokio::test]
async fn invalid_utf8_is_a_400() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let mut bodies = Vec::new();
    for bad in [
        &b"\xff"[..],
        b"\xc3\x28",
        b"\xe2\x82",
        b"\xed\xa0\x80",
        b"\xf8\x88\x80\x80\x80",
    ] {
        let mut body =
            br#"{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"x"#
                .to_vec();
        body.extend_from_slice(bad);
        body.extend_from_slice(br#""}]}"#);
        bodies.push((format!("{bad:x?} in a string"), body));
    }
    let mut key = br#"{"model":"claude-sonnet-4-5","max_tokens":5,"#.to_vec();
    key.extend_from_slice(b"\"\xff\":1,");
    key.extend_from_slice(br#""messages":[{"role":"user","content":"x"}]}"#);
    bodies.push(("invalid UTF-8 in a key".into(), key));
    all_refused_locally(&env, bodies).await;

    // Invalid UTF-8 in a header value and in the path: refused or ignored, never a crash.
    let mut stream = connect_and_send(
        &env,
        b"POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: \xff\xfe\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
    )
    .await;
    let (response, _) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(
        raw_status(&response),
        Some(400),
        "{}",
        String::from_utf8_lossy(&response)
    );
    let mut stream = connect_and_send(
        &env,
        b"GET /accounts/\xff\xfe HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    let (response, _) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    let status = raw_status(&response);
    assert!(
        status.is_none_or(|s| (400..500).contains(&s)),
        "{}",
        String::from_utf8_lossy(&response)
    );
    assert_unharmed(&env, "after invalid UTF-8").await;
}
