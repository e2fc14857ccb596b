//! The first answer end to end: streaming and non-streaming text, each streamed word
//! delivered as it comes, a token refresh, and Anthropic-shaped errors for malformed
//! requests.

use crate::support::*;
use serde_json::{Value, json};

#[tokio::test]
async fn streaming_text_is_a_complete_anthropic_stream() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let (status, events) = env
        .stream(&hello(
            "Tell me about event streams [[sim words=12 chunk=3]]",
        ))
        .await;
    assert_eq!(status, 200, "{events:?}");
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert!(names.contains(&"content_block_start"));
    assert!(names.contains(&"content_block_stop"));
    assert!(names.contains(&"message_delta"));
    let start = &events[0].1["message"];
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["role"], "assistant");
    assert_eq!(start["model"], "claude-sonnet-4-5");
    assert!(start["usage"]["input_tokens"].as_u64().unwrap() > 0);
    let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "end_turn");
    assert!(delta.1["usage"]["output_tokens"].as_u64().unwrap() > 0);
    let text = streamed_text(&events);
    assert_eq!(text.split_whitespace().count(), 12, "{text}");
}

#[tokio::test]
async fn each_streamed_word_reaches_the_client_when_the_upstream_sends_it() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    // Four words 300 ms apart: a relay that held events back (until the end, a buffer
    // filling, or the next event) would deliver two words in one read.
    let mut response = env
        .post_stream(&hello("one word at a time [[sim words=4 delay_ms=300]]"))
        .await;
    assert_eq!(response.status(), 200);
    let started = std::time::Instant::now();
    let mut sse = String::new();
    let mut words_seen = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        sse.push_str(std::str::from_utf8(&chunk).unwrap());
        let words = streamed_text(&parse_sse(&sse)).split_whitespace().count();
        if words_seen.last().is_none_or(|&(n, _)| n < words) {
            words_seen.push((words, started.elapsed()));
        }
    }
    check_sse(&sse).unwrap();
    let counts: Vec<usize> = words_seen.iter().map(|&(n, _)| n).collect();
    assert_eq!(counts, [1, 2, 3, 4], "words per read: {words_seen:?}");
    for pair in words_seen.windows(2) {
        assert!(
            pair[1].1 - pair[0].1 >= std::time::Duration::from_millis(150),
            "two words arrived together: {words_seen:?}"
        );
    }
}

#[tokio::test]
async fn non_streaming_text_is_a_full_message() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let r = env
        .post("/v1/messages", &hello("Hi there [[sim words=7]]"))
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("request-id").is_some());
    let v: Value = r.json().await.unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(
        v["content"][0]["text"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        7
    );
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn expired_access_token_is_refreshed_once_and_the_request_succeeds() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let (s, _) = env.message(&hello("warm up")).await;
    assert_eq!(s, 200);
    let before = count(&env.sim_stats().await, "sim-1", "token_refreshes");
    env.sim.expire_access_tokens();
    let (s, v) = env.message(&hello("after expiry")).await;
    assert_eq!(s, 200, "{v}");
    let after = count(&env.sim_stats().await, "sim-1", "token_refreshes");
    assert_eq!(after, before + 1, "exactly one refresh after expiry");
}

#[tokio::test]
async fn malformed_json_gets_an_anthropic_400() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let r = env
        .http
        .post(env.url("/v1/messages"))
        .header("content-type", "application/json")
        .body("{\"model\": \"x\", \"messages\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("request-id").is_some());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid request body")
    );
}

#[tokio::test]
async fn missing_required_fields_get_an_anthropic_400() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    for body in [
        json!({"model": "claude-sonnet-4-5", "messages": [{"role":"user","content":"x"}]}),
        json!({"max_tokens": 5, "messages": [{"role":"user","content":"x"}]}),
        json!({"model": "claude-sonnet-4-5", "max_tokens": 5}),
        json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": []}),
    ] {
        let (s, v) = env.message(&body).await;
        assert_eq!(s, 400, "{body} -> {v}");
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    }
    let stats = env.sim_stats().await;
    assert_eq!(
        count(&stats, "sim-1", "chat_requests"),
        0,
        "nothing reached the upstream"
    );
}

#[tokio::test]
async fn probes_query_strings_and_unknown_paths() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let r = env.http.head(env.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (s, _) = env.message(&hello("q")).await;
    assert_eq!(s, 200);
    let r = env
        .post("/v1/messages?beta=true", &hello("with query"))
        .await;
    assert_eq!(r.status(), 200);
    let (s, v) = env.get("/v2/nothing").await;
    assert_eq!(s, 404);
    assert_eq!(v["error"]["type"], "not_found_error");
}

/// Every response carries its own `request-id`, whatever answered it: a handler, the
/// router's fallbacks, or an error from the request's body.
#[tokio::test]
async fn every_response_has_its_own_request_id() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let mut ids = Vec::new();
    let responses = [
        env.post("/v1/messages", &hello("id please")).await,
        env.http.get(env.url("/v2/nothing")).send().await.unwrap(),
        env.http.put(env.url("/v1/messages")).send().await.unwrap(),
        env.http.get(env.url("/")).send().await.unwrap(),
        env.http
            .post(env.url("/v1/messages"))
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .unwrap(),
    ];
    for (r, status) in responses.into_iter().zip([200, 404, 400, 200, 400]) {
        assert_eq!(r.status().as_u16(), status);
        let id = r.headers()["request-id"].to_str().unwrap().to_owned();
        let hex = id.strip_prefix("req_").unwrap_or_default();
        assert!(
            hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        assert_eq!(r.headers().get_all("request-id").iter().count(), 1);
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "ids repeat: {ids:?}");
}

#[tokio::test]
async fn unknown_model_is_a_not_found_error() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let mut body = hello("x");
    body["model"] = json!("gpt-4o");
    let (s, v) = env.message(&body).await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["error"]["type"], "not_found_error");
}
