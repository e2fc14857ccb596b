//! The added latency of Redis mode: one gateway in local mode and one in Redis mode on the
//! same simulator, N sequential and N concurrent requests each, in alternating rounds.
//! A measurement, not a test: it prints p50/p99 and asserts only that every request
//! succeeded. Run it in release mode:
//!
//! ```sh
//! cargo test --release -p qgate-gateway --test it redis_mode_latency -- --ignored --nocapture
//! ```

use crate::support::*;
use serde_json::json;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;
const PER_ROUND: usize = 100;
const CONCURRENCY: usize = 16;

fn accounts_toml(limits: &str) -> String {
    (1..=3)
        .map(|i| {
            let c = qgate_sim::credentials(i);
            format!(
                "[[accounts]]\nid = \"sim-{i}\"\nrefresh_token = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n{limits}\n",
                c.refresh_token, c.client_id, c.client_secret
            )
        })
        .collect()
}

fn body(n: usize, sessions: bool) -> serde_json::Value {
    let mut b = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": format!("latency {n} [[sim words=2]]")}]
    });
    if sessions {
        b["metadata"] = json!({"user_id": format!("user-{}", n % 50)});
    }
    b
}

async fn one(c: &TestCluster, node: usize, n: usize, sessions: bool) -> Duration {
    let started = Instant::now();
    let (s, v) = c.message(node, &body(n, sessions)).await;
    assert_eq!(s, 200, "{v}");
    started.elapsed()
}

async fn sequential(c: &TestCluster, node: usize, sessions: bool, out: &mut Vec<Duration>) {
    for n in 0..PER_ROUND {
        out.push(one(c, node, n, sessions).await);
    }
}

async fn concurrent(c: &TestCluster, node: usize, sessions: bool, out: &mut Vec<Duration>) {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let next = next.clone();
        let http = c.http.clone();
        let url = c.url(node, "/v1/messages");
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= PER_ROUND {
                    return mine;
                }
                let started = Instant::now();
                let r = http
                    .post(&url)
                    .header("anthropic-version", "2023-06-01")
                    .json(&body(n, sessions))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let _ = r.bytes().await.unwrap();
                mine.push(started.elapsed());
            }
        }));
    }
    for w in workers {
        out.extend(w.await.unwrap());
    }
}

fn pct(sorted: &[Duration], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn line(label: &str, mut d: Vec<Duration>) -> (f64, f64) {
    d.sort();
    let (p50, p99) = (pct(&d, 50), pct(&d, 99));
    eprintln!(
        "  {label:<28} n={:<5} p50 {p50:>7.3} ms   p99 {p99:>7.3} ms",
        d.len()
    );
    (p50, p99)
}

async fn compare(title: &str, limits: &str, sessions: bool) {
    let mut c = TestCluster::start(1, Opts::accounts(3).toml(accounts_toml(limits))).await;
    let local = c.add_node(&[("REDIS_URL", "")]).await;
    let redis = 0;
    // Warm up: tokens, connections.
    for n in 0..20 {
        one(&c, local, n, sessions).await;
        one(&c, redis, n, sessions).await;
    }
    let (mut seq_local, mut seq_redis, mut con_local, mut con_redis) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        sequential(&c, local, sessions, &mut seq_local).await;
        sequential(&c, redis, sessions, &mut seq_redis).await;
        concurrent(&c, local, sessions, &mut con_local).await;
        concurrent(&c, redis, sessions, &mut con_redis).await;
    }
    eprintln!("\n{title}");
    let a = line("sequential, local", seq_local);
    let b = line("sequential, redis", seq_redis);
    let x = line(&format!("concurrent ({CONCURRENCY}), local"), con_local);
    let y = line(&format!("concurrent ({CONCURRENCY}), redis"), con_redis);
    eprintln!(
        "  added by redis mode: sequential p50 {:+.3} ms p99 {:+.3} ms; concurrent p50 {:+.3} ms p99 {:+.3} ms",
        b.0 - a.0,
        b.1 - a.1,
        y.0 - x.0,
        y.1 - x.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
async fn redis_mode_latency_side_by_side() {
    compare(
        "no per-account limits, no sessions (redis off the request path)",
        "",
        false,
    )
    .await;
    compare(
        "per-account limits + sticky sessions (acquire + sticky read on every request)",
        "max_concurrency = 64\nrpm_limit = 100000",
        true,
    )
    .await;
}
