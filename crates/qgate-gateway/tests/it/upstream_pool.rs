//! qgate's own upstream connection pool (`upstream/pool.rs`), end to end: connections
//! are reused, and one the upstream closed while it sat idle is never used for a request
//! — the request goes out on a new connection, the client sees nothing, and the account
//! is charged nothing — and answers whose bytes arrive split anywhere (the response head,
//! chunk sizes) are read whole. `MAX_ATTEMPTS=1` so that no retry on the gateway's side
//! could hide a failed attempt.

use crate::support::{Opts, TestEnv, hello, streamed_text};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OnceCell;

/// A pass-through in front of the simulator: each accepted connection is handed to a
/// relay function with the simulator's address. Counts the connections it accepted.
struct PassThrough {
    addr: SocketAddr,
    target: Arc<OnceCell<SocketAddr>>,
    accepted: Arc<AtomicUsize>,
}

impl PassThrough {
    async fn start<R, F>(relay: R) -> PassThrough
    where
        R: Fn(TcpStream, SocketAddr) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Arc::new(OnceCell::new());
        let accepted = Arc::new(AtomicUsize::new(0));
        let (t, count) = (target.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Some(&to) = t.get() else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(relay(client, to));
            }
        });
        PassThrough {
            addr,
            target,
            accepted,
        }
    }

    /// A gateway with one account whose upstream is this pass-through: one attempt per
    /// request and one worker, so one connection pool.
    async fn gateway(&self) -> TestEnv {
        let env = TestEnv::start(
            Opts::accounts(1)
                .env("AMAZONQ_API_ENDPOINT", format!("http://{}", self.addr))
                .env("MAX_ATTEMPTS", "1")
                .env("WORKERS", "1"),
        )
        .await;
        self.target.set(env.sim.addr()).unwrap();
        env
    }
}

async fn relay(mut client: TcpStream, to: SocketAddr) {
    let Ok(mut upstream) = TcpStream::connect(to).await else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

#[tokio::test]
async fn connections_are_reused_and_one_the_upstream_closed_while_idle_is_replaced() {
    // Closes each connection 600 ms after accepting it, as an upstream's keep-alive
    // timeout does: dropping both sockets at the deadline closes the connection.
    let closer = PassThrough::start(|client, to| async move {
        let _ = tokio::time::timeout(Duration::from_millis(600), relay(client, to)).await;
    })
    .await;
    let env = closer.gateway().await;

    let ask = |n: usize| {
        let env = &env;
        async move {
            let (status, events) = env.stream(&hello(&format!("question {n}"))).await;
            assert_eq!(status, 200, "request {n}: {events:?}");
            assert!(
                !streamed_text(&events).is_empty(),
                "request {n}: {events:?}"
            );
            assert_eq!(events.last().unwrap().0, "message_stop", "request {n}");
        }
    };
    ask(1).await;
    ask(2).await;
    assert_eq!(
        closer.accepted.load(Ordering::SeqCst),
        1,
        "the second request reused the first one's connection"
    );
    // The upstream has closed that connection by now; it sits idle in the pool.
    tokio::time::sleep(Duration::from_millis(900)).await;
    ask(3).await;
    ask(4).await;
    assert_eq!(closer.accepted.load(Ordering::SeqCst), 2);
    let account = env.get("/accounts/sim-1").await.1;
    assert_eq!(account["success_count"], 4, "{account}");
    assert_eq!(account["error_count"], 0, "{account}");
}

/// Relays to the simulator, handing its answers on in pieces: the first 400 bytes one at
/// a time with a pause after each, so the response head and the first chunk sizes are
/// split across reads, then 5 bytes at a time.
async fn trickle(client: TcpStream, to: SocketAddr) {
    let Ok(upstream) = TcpStream::connect(to).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut up_rx, mut up_tx) = upstream.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_rx, &mut up_tx).await;
    });
    let mut sent = 0usize;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match up_rx.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for piece in buf[..n].chunks(if sent < 400 { 1 } else { 5 }) {
            if client_tx.write_all(piece).await.is_err() {
                return;
            }
            sent += piece.len();
            if sent <= 400 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
    }
}

#[tokio::test]
async fn answers_split_at_any_byte_are_relayed_whole_and_the_connection_reused() {
    let trickler = PassThrough::start(trickle).await;
    let env = trickler.gateway().await;

    let (status, events) = env.stream(&hello("split me")).await;
    assert_eq!(status, 200, "{events:?}");
    assert_eq!(events.last().unwrap().0, "message_stop", "{events:?}");
    // The same question unstreamed, through the same pieces and on the same connection
    // (the chunked body's end was found in the split bytes, so the connection went
    // back): the simulator answers a question alike every time, so both carry the same
    // words, none lost or doubled.
    let (status, body) = env.message(&hello("split me")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stop_reason"], "end_turn", "{body}");
    let text = body["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.split_whitespace().count() >= 5, "{body}");
    assert_eq!(streamed_text(&events), text);
    assert_eq!(trickler.accepted.load(Ordering::SeqCst), 1);
    let account = env.get("/accounts/sim-1").await.1;
    assert_eq!(account["success_count"], 2, "{account}");
    assert_eq!(account["error_count"], 0, "{account}");
}
