//! Hostile connections: slow-loris clients (the header-read timeout closes them while
//! everyone else is served), silent connections, slow bodies, a client that stops reading
//! mid-stream (waited for, not failed, and served whole), and clients that go away
//! mid-stream, before the first byte, or during a non-streaming reply — the upstream
//! request is cancelled, every in-flight count (simulator, account, metric) returns to
//! zero, and no account is penalised.

use crate::admin::eventually;
use crate::hostile::*;
use crate::support::*;
use serde_json::json;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// A header-read timeout short enough for tests; every wait below is bounded.
fn short_header_timeout(accounts: usize) -> Opts {
    Opts::accounts(accounts).env("HEADER_READ_TIMEOUT", "1s")
}

/// Writes `bytes` one per `pace`, stopping early when the server closes. Returns how many
/// were written and whether the server closed the connection.
async fn dribble(
    stream: &mut tokio::net::TcpStream,
    bytes: &[u8],
    pace: Duration,
) -> (usize, bool) {
    for (i, byte) in bytes.iter().enumerate() {
        if stream.write_all(&[*byte]).await.is_err() {
            return (i, true);
        }
        // Reading doubles as the pause: EOF or a reset means the server closed.
        let mut buf = [0u8; 512];
        match tokio::time::timeout(pace, tokio::io::AsyncReadExt::read(stream, &mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (i + 1, true),
            // A 408 or other response before the close is fine; keep reading for EOF.
            Ok(Ok(_)) => {
                let (_, closed) = read_until_closed(stream, pace * 3).await;
                return (i + 1, closed);
            }
            Err(_) => {}
        }
    }
    (bytes.len(), false)
}

#[tokio::test]
async fn slow_loris_clients_are_cut_off_and_others_are_served() {
    let env = TestEnv::start(short_header_timeout(1)).await;
    let head = b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\r\n";
    let mut lorises = Vec::new();
    for _ in 0..20 {
        let env_addr = gateway_addr(&env);
        lorises.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(env_addr).await.unwrap();
            // One byte per second: the whole head would take over a minute.
            dribble(&mut stream, head, Duration::from_secs(1)).await
        }));
    }
    // Meanwhile a normal client is served.
    let (status, v) = env.message(&hello("while the lorises crawl")).await;
    assert_eq!(status, 200, "{v}");
    for loris in lorises {
        let (written, closed) = loris.await.unwrap();
        assert!(closed, "a slow-loris connection stayed open");
        assert!(
            written < head.len() / 2,
            "the head was read slowly for {written} bytes"
        );
    }
    assert_eq!(
        count(&env.sim_stats().await, "sim-1", "chat_requests"),
        1,
        "only the normal client reached the upstream"
    );
    assert_unharmed(&env, "after slow-loris clients").await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_by_the_header_timeout() {
    let env = TestEnv::start(short_header_timeout(1)).await;
    let mut stream = tokio::net::TcpStream::connect(gateway_addr(&env))
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(closed, "a connection that never sends a byte is held open");
    // After a served request, an idle keep-alive connection is not a slow loris; it may
    // stay open, but it must still serve its next request.
    let mut stream = connect_and_send(&env, b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read(&mut stream, &mut buf),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(raw_status(&buf[..n]), Some(200));
    assert_unharmed(&env, "after a silent connection").await;
}

#[tokio::test]
async fn a_slow_body_does_not_hold_up_other_clients() {
    let env = TestEnv::start(short_header_timeout(1)).await;
    let mut slow = Vec::new();
    for _ in 0..10 {
        let addr = gateway_addr(&env);
        slow.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{")
                .await
                .unwrap();
            // The body trickles (or stalls); its connection holds nothing but itself.
            dribble(&mut stream, &[b' '; 8], Duration::from_millis(500)).await
        }));
    }
    for i in 0..3 {
        let (status, v) = env.message(&hello(&format!("fast client {i}"))).await;
        assert_eq!(status, 200, "{v}");
    }
    for task in slow {
        task.abort();
    }
    assert_eq!(count(&env.sim_stats().await, "sim-1", "chat_requests"), 3);
    assert_unharmed(&env, "after slow bodies").await;
}

/// Every in-flight count is back to zero: the simulator's (the upstream request ended),
/// the account's, and the `amazonq_active_requests` gauge.
async fn nothing_in_flight(env: &TestEnv) -> bool {
    let sim = env.sim_stats().await;
    let upstream_idle =
        (1..=env.accounts).all(|i| count(&sim, &format!("sim-{i}"), "in_flight") == 0);
    let mut accounts_idle = true;
    for i in 1..=env.accounts {
        let (_, account) = env.get(&format!("/accounts/sim-{i}")).await;
        accounts_idle &= account["in_flight"] == 0;
    }
    let metrics = env
        .http
        .get(env.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let active: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("amazonq_active_requests"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    upstream_idle && accounts_idle && active == 0.0
}

/// The simulator is serving one request for `sim-1`.
async fn upstream_busy(env: &TestEnv) -> bool {
    count(&env.sim_stats().await, "sim-1", "in_flight") == 1
}

#[tokio::test]
async fn a_client_leaving_mid_stream_cancels_the_upstream_request() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    // 300 words, 100 ms apart: the reply would take 30 s; every wait below is shorter.
    let mut response = env
        .post_stream(&hello("tell me everything [[sim words=300 delay_ms=100]]"))
        .await;
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("message_start"));
    assert!(upstream_busy(&env).await, "the upstream is streaming");
    drop(response);
    assert!(
        eventually(100, || nothing_in_flight(&env)).await,
        "the upstream request, account slot or active gauge outlived the client"
    );
    let account = env.get("/accounts/sim-1").await.1;
    assert_eq!(account["cancelled_count"], 1, "{account}");
    assert_unharmed(&env, "after a client left mid-stream").await;
    let (status, _) = env.message(&hello("the account still serves")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_client_that_stops_reading_mid_stream_gets_all_of_it_when_it_resumes() {
    let env = TestEnv::start(Opts::accounts(1).sim(qgate_sim::SimConfig {
        accounts: 1,
        max_output_words: 20_000,
        ..Default::default()
    }))
    .await;
    // 20 000 words as fast as the upstream sends them (~2.6 MB of SSE) while this client
    // reads nothing for 0.8 s after the first chunk: the stream waits for the client, then
    // arrives whole, and the pause counts against nothing.
    let mut body = hello("everything at once [[sim words=20000]]");
    body["max_tokens"] = json!(32000);
    let mut response = env.post_stream(&body).await;
    assert_eq!(response.status(), 200);
    let mut sse = response.chunk().await.unwrap().unwrap().to_vec();
    tokio::time::sleep(Duration::from_millis(800)).await;
    while let Some(chunk) = response.chunk().await.unwrap() {
        sse.extend_from_slice(&chunk);
    }
    let sse = String::from_utf8(sse).unwrap();
    check_sse(&sse).unwrap();
    let events = parse_sse(&sse);
    assert_eq!(streamed_text(&events).split_whitespace().count(), 20_000);
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("message_stop"));
    let account = env.get("/accounts/sim-1").await.1;
    assert_eq!(account["success_count"], 1, "{account}");
    assert_unharmed(&env, "after a client paused mid-stream").await;
}

#[tokio::test]
async fn a_client_leaving_before_the_first_byte_cancels_the_upstream_request() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let body = serde_json::to_vec(&json!({
        "model": "claude-sonnet-4-5", "max_tokens": 5, "stream": true,
        "messages": [{"role": "user", "content": "slow start [[sim words=3 first_ms=30000]]"}]
    }))
    .unwrap();
    let mut head = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    head.extend_from_slice(&body);
    let stream = connect_and_send(&env, &head).await;
    assert!(
        eventually(100, || upstream_busy(&env)).await,
        "the request reached the upstream"
    );
    drop(stream);
    assert!(
        eventually(100, || nothing_in_flight(&env)).await,
        "the upstream request outlived its client"
    );
    assert_unharmed(&env, "after a client left before the first byte").await;
}

#[tokio::test]
async fn a_client_leaving_a_non_streaming_request_penalises_nobody() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let r = env
        .http
        .post(env.url("/v1/messages"))
        .json(&hello("slow and whole [[sim words=20 delay_ms=50]]"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(r.is_err(), "the client gave up before the reply");
    // Nothing reached this client, so finishing or cancelling are both fine; what counts
    // is that everything is released and the account is unharmed.
    assert!(
        eventually(200, || nothing_in_flight(&env)).await,
        "the request was never released"
    );
    assert_unharmed(&env, "after a non-streaming client left").await;
}

#[tokio::test]
async fn a_client_that_stalls_mid_body_gets_a_408_and_its_connection_back() {
    // Reported by the reliability suite: a stalled body used to hold the connection and
    // its task for good.
    let env = TestEnv::start(Opts::accounts(1).env("BODY_READ_TIMEOUT", "1s")).await;
    let head = b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{\"model\":";
    let mut stream = connect_and_send(&env, head).await;
    let (response, _closed) = read_until_closed(&mut stream, Duration::from_secs(15)).await;
    assert_eq!(
        raw_status(&response),
        Some(408),
        "{}",
        String::from_utf8_lossy(&response)
    );
    let v = raw_json_body(&response);
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(upstream_calls(&env).await, 0);
    assert_unharmed(&env, "after a stalled body").await;
}
