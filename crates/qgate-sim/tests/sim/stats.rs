//! Counters, concurrency tracking, and the server's lifecycle.

use super::*;
use std::time::Duration;

#[tokio::test]
async fn counters_show_how_load_was_spread() {
    let sim = start_default().await;
    let tokens = [sim.token(1).await, sim.token(2).await, sim.token(3).await];
    for (i, token) in tokens.iter().enumerate() {
        for _ in 0..=i {
            assert_eq!(
                sim.chat(Dialect::Kiro, token, &request("hi")).await.status,
                200
            );
        }
    }
    let stats = sim.stats().await;
    assert_eq!(stats, sim.handle.stats(), "endpoint and handle agree");
    for (name, expected) in [("sim-1", 1), ("sim-2", 2), ("sim-3", 3)] {
        let account = stats.account(name);
        assert_eq!(
            (account.chat_requests, account.chat_ok),
            (expected, expected),
            "{name}"
        );
        assert_eq!(account.token_refreshes, 1, "{name}");
        assert_eq!(account.in_flight, 0, "{name}");
        assert_eq!(
            account.chat_errors + account.validation_failures + account.faults_fired,
            0
        );
    }
    assert_eq!(stats.total_chat_requests(), 6);
    assert_eq!(stats.last_violation, None);

    let raw: Value = sim
        .client
        .get(sim.url("/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys: Vec<&str> = raw["accounts"]["sim-1"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "chat_requests",
        "chat_ok",
        "chat_errors",
        "token_refreshes",
        "refresh_failures",
        "validation_failures",
        "in_flight",
        "max_in_flight",
        "faults_fired",
    ] {
        assert!(keys.contains(&key), "{key} missing from {raw}");
    }
    assert!(raw.as_object().unwrap().contains_key("last_violation"));
}

#[tokio::test(start_paused = true)]
async fn in_flight_counts_streams_until_their_body_ends() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let slow = request("[[sim words=2 first_ms=10000]]");
    // Headers come back at once; the bodies are held by the pause.
    let first = sim.send_chat(Dialect::Kiro, &token, &slow).await;
    let second = sim.send_chat(Dialect::Kiro, &token, &slow).await;
    let during = sim.handle.stats().account("sim-1");
    assert_eq!((during.in_flight, during.max_in_flight), (2, 2));
    let (a, b) = tokio::join!(read_transcript(first), read_transcript(second));
    assert_eq!((a.text_pieces().len(), b.text_pieces().len()), (2, 2));
    let after = sim.handle.stats().account("sim-1");
    assert_eq!((after.in_flight, after.max_in_flight), (0, 2));
}

#[tokio::test]
async fn every_response_has_its_own_request_id() {
    let sim = start_default().await;
    let mut ids = Vec::new();
    for response in [
        sim.client
            .post(sim.url("/token"))
            .body("{}")
            .send()
            .await
            .unwrap(),
        sim.client
            .post(sim.url("/refreshToken"))
            .body("{}")
            .send()
            .await
            .unwrap(),
        sim.client.get(sim.url("/_sim/stats")).send().await.unwrap(),
    ] {
        ids.push(
            response.headers()["x-amzn-requestid"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "{ids:?}");
}

/// Reads one HTTP/1.1 response with a content length from `stream`.
async fn read_response(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap();
            if buf.len() >= end + 4 + length {
                return text;
            }
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed after {} bytes", buf.len());
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(start_paused = true)]
async fn connections_are_kept_alive_even_when_idle() {
    use tokio::io::AsyncWriteExt;
    let sim = start_default().await;
    let mut stream = tokio::net::TcpStream::connect(sim.handle.addr())
        .await
        .unwrap();
    for _ in 0..3 {
        stream
            .write_all(b"GET /_sim/stats HTTP/1.1\r\nhost: sim\r\n\r\n")
            .await
            .unwrap();
        let response = read_response(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        // An idle minute on the paused clock: no server-side idle timeout closes it.
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}

#[tokio::test]
async fn shutdown_stops_the_server_and_open_streams() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let addr = sim.handle.addr();
    let held = sim
        .send_chat(
            Dialect::Kiro,
            &token,
            &request("[[sim words=2 first_ms=600000]]"),
        )
        .await;
    let TestSim {
        handle,
        client: _client,
    } = sim;
    handle.shutdown().await;
    let reply = tokio::time::timeout(Duration::from_secs(30), read_transcript(held))
        .await
        .expect("the held stream ends with the server");
    assert!(reply.transport_error, "{reply:?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens any more"
    );
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let sim = start_default().await;
    let addr = sim.handle.addr();
    drop(sim);
    // The abort lands when the runtime next polls; yield until the listener is gone.
    let mut gone = false;
    for _ in 0..100 {
        tokio::task::yield_now().await;
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            gone = true;
            break;
        }
    }
    assert!(gone);
}
