//! Hostile sizes and shapes through the real gateway: bodies over `MAX_BODY_BYTES` (413,
//! answered while the client is still sending, so the body was never buffered whole),
//! huge headers (431 or a clean close), thousands of tools or messages, empty messages and
//! contents, unknown roles and block types, absurd `max_tokens`. No crash, no penalty.

use crate::hostile::*;
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const BODY_LIMIT: usize = 64 * 1024;

fn limited() -> Opts {
    Opts::accounts(2).env("MAX_BODY_BYTES", BODY_LIMIT.to_string())
}

/// Sends `head`, then body bytes (`chunk` after `chunk`, at most `most` bytes) while
/// reading the answer. Returns the response, the body bytes sent when its first byte
/// arrived, and the body bytes sent in all (the server stops them by closing).
async fn push_body_until_answered(
    env: &TestEnv,
    head: &[u8],
    chunk: &[u8],
    most: usize,
) -> (Vec<u8>, usize, usize) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let stream = connect_and_send(env, head).await;
    let (mut reader, mut writer) = stream.into_split();
    let chunk = chunk.to_vec();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let writing = tokio::spawn(async move {
        while counter.load(Ordering::Relaxed) < most {
            if writer.write_all(&chunk).await.is_err() {
                return;
            }
            counter.fetch_add(chunk.len(), Ordering::Relaxed);
        }
        // Keep the write side open: a FIN would end the body for the server.
        std::future::pending::<()>().await;
    });
    let mut first = [0u8; 1];
    let mut response = Vec::new();
    let mut sent_at_answer = most;
    if let Ok(Ok(1)) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::AsyncReadExt::read(&mut reader, &mut first),
    )
    .await
    {
        sent_at_answer = sent.load(Ordering::Relaxed);
        response.push(first[0]);
        let (rest, _) = read_until_closed(&mut reader, Duration::from_secs(30)).await;
        response.extend(rest);
    }
    // Give the writer a bounded chance to notice the close.
    for _ in 0..100 {
        if writing.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    writing.abort();
    (response, sent_at_answer, sent.load(Ordering::Relaxed))
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_before_it_is_all_sent() {
    let env = TestEnv::start(limited()).await;
    let before = upstream_calls(&env).await;
    // Declared as 1 GiB; at most 64 MiB is ever sent.
    let head = b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1073741824\r\n\r\n";
    let (response, at_answer, sent) =
        push_body_until_answered(&env, head, &[b' '; 16 * 1024], 64 << 20).await;
    assert_eq!(
        raw_status(&response),
        Some(413),
        "{}",
        String::from_utf8_lossy(&response)
    );
    assert_anthropic_error(
        &raw_json_body(&response),
        "request_too_large",
        "content-length",
    );
    eprintln!("content-length: answered after {at_answer} bytes, {sent} sent in all");
    assert!(
        at_answer < 64 << 20,
        "the gateway read {at_answer} bytes before answering"
    );
    assert!(
        sent < 64 << 20,
        "the gateway kept reading the body after its 413 ({sent} bytes)"
    );

    // Chunked, with no length announced at all.
    let head = b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    let mut chunk = format!("{:x}\r\n", 16 * 1024).into_bytes();
    chunk.extend_from_slice(&[b' '; 16 * 1024]);
    chunk.extend_from_slice(b"\r\n");
    let (response, at_answer, sent) = push_body_until_answered(&env, head, &chunk, 64 << 20).await;
    assert_eq!(
        raw_status(&response),
        Some(413),
        "{}",
        String::from_utf8_lossy(&response)
    );
    eprintln!("chunked: answered after {at_answer} bytes, {sent} sent in all");
    assert!(
        at_answer < 64 << 20,
        "the gateway read {at_answer} bytes before answering"
    );
    assert!(
        sent < 64 << 20,
        "the gateway kept reading the body after its 413 ({sent} bytes)"
    );

    // count_tokens has the same limit.
    let r = env
        .http
        .post(env.url("/v1/messages/count_tokens"))
        .header("content-type", "application/json")
        .body(vec![b' '; BODY_LIMIT + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // The unread body leaves the connection unusable, and the client is told so rather
    // than reusing it as the server closes it.
    assert_eq!(
        r.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    assert_eq!(upstream_calls(&env).await, before);
    assert_unharmed(&env, "after huge bodies").await;
}

#[tokio::test]
async fn huge_headers_get_a_431_or_a_clean_close() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let big_value = "a".repeat(256 * 1024);
    let one_big = format!("GET /health HTTP/1.1\r\nhost: x\r\nx-big: {big_value}\r\n\r\n");
    let mut many = String::from("GET /health HTTP/1.1\r\nhost: x\r\n");
    for i in 0..5_000 {
        many.push_str(&format!("x-h-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let long_path = format!(
        "GET /{} HTTP/1.1\r\nhost: x\r\n\r\n",
        "p".repeat(256 * 1024)
    );
    for (what, head) in [
        ("one 256 KiB header", one_big),
        ("5000 headers", many),
        ("a 256 KiB path", long_path),
    ] {
        let stream = tokio::net::TcpStream::connect(gateway_addr(&env))
            .await
            .unwrap();
        let (mut reader, mut writer) = stream.into_split();
        // The server may close before reading everything; a failed write is fine.
        let bytes = head.into_bytes();
        let writing = tokio::spawn(async move { writer.write_all(&bytes).await.is_ok() });
        let (response, closed) = read_until_closed(&mut reader, Duration::from_secs(20)).await;
        writing.abort();
        let status = raw_status(&response);
        eprintln!("{what}: {status:?}");
        assert!(
            closed,
            "{what}: the connection stayed open after an oversized head"
        );
        assert!(
            matches!(status, None | Some(431) | Some(414) | Some(400)),
            "{what}: {}",
            String::from_utf8_lossy(&response[..response.len().min(300)])
        );
    }
    assert_unharmed(&env, "after huge headers").await;
}

fn tools(n: usize) -> Value {
    (0..n)
        .map(|i| {
            json!({
                "name": format!("tool_{i}"),
                "description": format!("Tool number {i}."),
                "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}}
            })
        })
        .collect()
}

/// A request the gateway may serve or refuse, but must answer properly — a whole message
/// or an Anthropic error, and the same streamed — without a penalty.
async fn served_or_refused(env: &TestEnv, body: &Value, what: &str) -> u16 {
    let (status, v) = env.message(body).await;
    eprintln!("{what}: {status}");
    assert!(
        matches!(status, 200 | 400 | 413),
        "{what}: unexpected {status}: {v}"
    );
    if let Err(problem) = check_reply(status, &v) {
        panic!("{what}: {problem}");
    }
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let r = env.post("/v1/messages", &streamed).await;
    let stream_status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(stream_status, status, "{what}: streaming and not disagree");
    if stream_status == 200 {
        let summary = check_sse(&text).unwrap_or_else(|problem| panic!("{what}: {problem}"));
        assert!(
            !summary.errored,
            "{what}: the stream ended in an error: {text}"
        );
    }
    assert_unharmed(env, what).await;
    status
}

#[tokio::test]
async fn thousands_of_tools_are_served_or_refused_cleanly() {
    let env = TestEnv::start(Opts::accounts(2)).await;
    let mut body = hello("use a tool");
    body["tools"] = tools(3_000);
    served_or_refused(&env, &body, "3000 tools").await;
    // Thousands of tools with the same name: one survives.
    body["tools"] = (0..2_000)
        .map(|_| json!({"name": "Bash", "input_schema": {"type": "object"}}))
        .collect();
    let status = served_or_refused(&env, &body, "2000 copies of one tool").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn thousands_of_messages_are_served() {
    let env = TestEnv::start(Opts::accounts(2)).await;
    for n in [4_001usize, 12_001] {
        let messages: Vec<Value> = (0..n)
            .map(|i| {
                let role = if i % 2 == 0 { "user" } else { "assistant" };
                json!({"role": role, "content": format!("turn {i}")})
            })
            .collect();
        let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": messages});
        let status = served_or_refused(&env, &body, &format!("{n} messages")).await;
        assert_eq!(status, 200, "{n} messages are repaired to fit, not refused");
    }
    // A long tool loop: every call paired with its result.
    let mut messages = Vec::new();
    for i in 0..1_500 {
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": format!("toolu_{i}"), "content": "ok"}]}));
        messages.push(json!({"role": "assistant", "content": [
            {"type": "tool_use", "id": format!("toolu_{}", i + 1), "name": "Bash", "input": {"command": "ls"}}]}));
    }
    messages[0] = json!({"role": "user", "content": "start"});
    messages.push(json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1500", "content": "done"}]}));
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": messages,
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}]});
    assert_eq!(
        served_or_refused(&env, &body, "a 1500-call tool loop").await,
        200
    );
}

#[tokio::test]
async fn empty_messages_and_empty_contents() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let before = upstream_calls(&env).await;
    for body in [
        json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": []}),
        json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [
            {"role": "assistant", "content": "only the assistant"}]}),
        json!({"model": "", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
    ] {
        let (status, v) = env.message(&body).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_anthropic_error(&v, "invalid_request_error", &body.to_string());
    }
    assert_eq!(upstream_calls(&env).await, before, "refused locally");
    // Empty contents are repaired (the service refuses them; a client would not know why).
    for content in [
        json!(""),
        json!([]),
        json!([{"type": "text", "text": ""}]),
        json!("   "),
    ] {
        let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 5,
            "messages": [{"role": "user", "content": content}]});
        assert_eq!(
            served_or_refused(&env, &body, &content.to_string()).await,
            200
        );
        let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": content},
            {"role": "user", "content": content}]});
        assert_eq!(
            served_or_refused(&env, &body, &format!("turns of {content}")).await,
            200
        );
    }
}

#[tokio::test]
async fn unknown_roles_are_refused_and_unknown_blocks_skipped() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let before = upstream_calls(&env).await;
    for role in ["tool", "developer", "", "USER", "function"] {
        let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 5,
            "messages": [{"role": role, "content": "x"}]});
        let (status, v) = env.message(&body).await;
        assert_eq!(status, 400, "role {role:?}: {v}");
        assert_anthropic_error(&v, "invalid_request_error", role);
    }
    assert_eq!(upstream_calls(&env).await, before, "refused locally");
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [
        {"role": "user", "content": [
            {"type": "hologram", "data": "?"},
            {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {}},
            {"type": "text", "text": "what is this"},
            {"type": "", "x": 1}]}]});
    assert_eq!(
        served_or_refused(&env, &body, "unknown block types").await,
        200
    );
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "hologram"}]}]});
    assert_eq!(
        served_or_refused(&env, &body, "only unknown blocks").await,
        200
    );
}

#[tokio::test]
async fn absurd_max_tokens() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let before = upstream_calls(&env).await;
    for max_tokens in [
        "0",
        "-1",
        "-9223372036854775808",
        "1e30",
        "18446744073709551616",
        "1.5",
        "\"100\"",
        "null",
        "true",
        "[]",
    ] {
        let body = format!(
            r#"{{"model":"claude-sonnet-4-5","max_tokens":{max_tokens},"messages":[{{"role":"user","content":"x"}}]}}"#
        );
        let (status, v) = post_raw(&env, body).await;
        assert_eq!(status, 400, "max_tokens {max_tokens}: {v}");
        assert_anthropic_error(&v, "invalid_request_error", max_tokens);
    }
    assert_eq!(upstream_calls(&env).await, before, "refused locally");
    // Amazon Q has no output limit to pass on: counts up to the model's window are
    // served; more than the whole window is refused, as the real API does.
    for max_tokens in [1u64, 64_000, 200_000] {
        let mut body = hello("x");
        body["max_tokens"] = json!(max_tokens);
        let (status, v) = env.message(&body).await;
        assert_eq!(status, 200, "max_tokens {max_tokens}: {v}");
    }
    let before = upstream_calls(&env).await;
    for max_tokens in [200_001u64, 1_000_000_000_000_000_000, u64::MAX] {
        let mut body = hello("x");
        body["max_tokens"] = json!(max_tokens);
        let (status, v) = env.message(&body).await;
        assert_eq!(status, 400, "max_tokens {max_tokens}: {v}");
        assert_anthropic_error(&v, "invalid_request_error", "max_tokens");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("maximum allowed")
        );
    }
    assert_eq!(upstream_calls(&env).await, before, "refused locally");
    assert_unharmed(&env, "after absurd max_tokens").await;
}

/// Sends `head` then `pieces` with a pause between them, so the body reaches the server
/// in several reads; returns the `input_tokens` of the answer.
async fn count_sent_in_pieces(env: &TestEnv, head: &[u8], pieces: &[Vec<u8>]) -> u64 {
    let mut stream = tokio::net::TcpStream::connect(gateway_addr(env))
        .await
        .unwrap();
    stream.write_all(head).await.unwrap();
    for piece in pieces {
        stream.write_all(piece).await.unwrap();
        stream.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (response, _) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&response);
    assert_eq!(raw_status(&response), Some(200), "{text}");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
    v["input_tokens"].as_u64().unwrap()
}

#[tokio::test]
async fn a_body_that_arrives_in_pieces_is_read_whole() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/claude-code/first-turn.json");
    let fixture: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let body = serde_json::to_vec(&fixture["body"]).unwrap();
    let pieces: Vec<Vec<u8>> = body
        .chunks(body.len() / 7 + 1)
        .map(<[u8]>::to_vec)
        .collect();
    assert!(pieces.len() >= 7);

    let whole = env
        .http
        .post(env.url("/v1/messages/count_tokens"))
        .header("x-api-key", "test")
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), 200);
    let whole: Value = whole.json().await.unwrap();
    let expected = whole["input_tokens"].as_u64().unwrap();
    assert!(expected > 10_000, "{whole}");

    // Announced length, the body in seven writes.
    let head = format!(
        "POST /v1/messages/count_tokens HTTP/1.1\r\nhost: x\r\nx-api-key: test\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    assert_eq!(
        count_sent_in_pieces(&env, head.as_bytes(), &pieces).await,
        expected
    );

    // No length: the same pieces as chunks, then the last chunk.
    let head = "POST /v1/messages/count_tokens HTTP/1.1\r\nhost: x\r\nx-api-key: test\r\n\
                content-type: application/json\r\ntransfer-encoding: chunked\r\n\
                connection: close\r\n\r\n";
    let mut chunks: Vec<Vec<u8>> = pieces
        .iter()
        .map(|p| {
            let mut c = format!("{:x}\r\n", p.len()).into_bytes();
            c.extend_from_slice(p);
            c.extend_from_slice(b"\r\n");
            c
        })
        .collect();
    chunks.push(b"0\r\n\r\n".to_vec());
    assert_eq!(
        count_sent_in_pieces(&env, head.as_bytes(), &chunks).await,
        expected
    );
    assert_unharmed(&env, "after bodies in pieces").await;
}
