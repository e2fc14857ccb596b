//! The upstream response head limit: 4 KiB (`upstream/http1.rs`, `MAX_HEAD`); Amazon Q's
//! are under 1 KiB. Through a pass-through in front of the simulator that pads
//! every response head with extra headers: a 3 KiB head streams as usual, an 8 KiB head
//! is a clean, Anthropic-shaped error — and the gateway serves the next request.

use crate::support::{Opts, TestEnv, hello, streamed_text};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OnceCell;

/// Relays to the simulator, adding `pad` bytes of headers to each response head and
/// `connection: close`, so every request gets a fresh connection and a padded head.
struct Padder {
    addr: SocketAddr,
    target: Arc<OnceCell<SocketAddr>>,
    pad: Arc<AtomicUsize>,
}

impl Padder {
    async fn start() -> Padder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Arc::new(OnceCell::new());
        let pad = Arc::new(AtomicUsize::new(0));
        let (t, p) = (target.clone(), pad.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Some(&to) = t.get() else { continue };
                tokio::spawn(relay(client, to, p.load(Ordering::SeqCst)));
            }
        });
        Padder { addr, target, pad }
    }
}

async fn relay(client: TcpStream, to: SocketAddr, pad: usize) {
    let Ok(upstream) = TcpStream::connect(to).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut up_read, mut up_write) = upstream.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut up_write).await;
    });
    // Everything up to the end of the first head, then the rest unchanged.
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        let Ok(n) = up_read.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 2;
        }
    };
    let mut out = head[..end].to_vec();
    let mut added = 0;
    let mut i = 0;
    while added < pad {
        let line = format!("x-test-padding-{i}: {}\r\n", "p".repeat(100));
        added += line.len();
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out.extend_from_slice(b"connection: close\r\n");
    out.extend_from_slice(&head[end..]);
    if client_write.write_all(&out).await.is_err() {
        return;
    }
    let _ = tokio::io::copy(&mut up_read, &mut client_write).await;
    let _ = client_write.shutdown().await;
}

#[tokio::test]
async fn response_heads_up_to_the_read_buffer_are_read_and_larger_ones_fail_cleanly() {
    let padder = Padder::start().await;
    let env = TestEnv::start(
        Opts::accounts(1)
            .env("AMAZONQ_API_ENDPOINT", format!("http://{}", padder.addr))
            .env("MAX_ATTEMPTS", "2")
            // Failures here are the point; the breaker is tested elsewhere.
            .env("CIRCUIT_BREAKER_ENABLED", "false"),
    )
    .await;
    padder.target.set(env.sim.addr()).unwrap();

    // A 3 KiB head (three times a real one): streamed as usual.
    padder.pad.store(3 * 1024, Ordering::SeqCst);
    let body = hello("a padded head");
    let (status, events) = env.stream(&body).await;
    assert_eq!(status, 200, "{events:?}");
    assert!(!streamed_text(&events).is_empty(), "{events:?}");
    assert_eq!(events.last().unwrap().0, "message_stop", "{events:?}");

    // An 8 KiB head: more than the gateway reads. An error in the API's shape, not a hang
    // or a dropped connection.
    padder.pad.store(8 * 1024, Ordering::SeqCst);
    let r = env.post("/v1/messages", &hello("too much head")).await;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert!(status >= 500, "{status} {text}");
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["type"], "error", "{text}");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{text}"
    );
    let (status, events) = env.stream(&body).await;
    assert!(
        status >= 500 || events.iter().any(|(e, _)| e == "error"),
        "{events:?}"
    );

    // Back to ordinary heads: served again.
    padder.pad.store(0, Ordering::SeqCst);
    let (status, events) = env.stream(&body).await;
    assert_eq!(status, 200, "{events:?}");
    assert_eq!(events.last().unwrap().0, "message_stop", "{events:?}");
}
