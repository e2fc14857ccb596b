//! Threading layouts (`WORKERS`): one-per-CPU worker threads (the default), a fixed
//! number, and the shared work-stealing runtime all answer concurrent streams whole; a
//! shutdown lets streams running on worker threads finish.

use crate::support::*;
use std::time::Duration;

/// Sends a streaming request for `prompt` through `client`; returns once the head is in.
async fn start_stream(client: reqwest::Client, url: String, prompt: &str) -> reqwest::Response {
    let mut body = hello(prompt);
    body["stream"] = serde_json::json!(true);
    post_json(&client, &url, &body).await
}

/// Streams `n` replies at once, each from its own client (own connection); returns each
/// one's status, word count and whether it ended with `message_stop`.
async fn concurrent_streams(env: &TestEnv, n: usize, prompt: &str) -> Vec<(u16, usize, bool)> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let url = env.url("/v1/messages");
        let prompt = prompt.to_owned();
        tasks.push(tokio::spawn(async move {
            let r = start_stream(reqwest::Client::new(), url, &prompt).await;
            let status = r.status().as_u16();
            let events = parse_sse(&r.text().await.unwrap_or_default());
            let stopped = events.last().is_some_and(|(n, _)| n == "message_stop");
            (
                status,
                streamed_text(&events).split_whitespace().count(),
                stopped,
            )
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn every_threading_layout_answers_concurrent_streams_whole() {
    for (layout, threaded) in [("shared", false), ("1", true), ("3", true)] {
        let env = TestEnv::start(Opts::accounts(2).env("WORKERS", layout)).await;
        let gw = env.gw.as_ref().unwrap();
        let held = {
            let env = &env;
            async move {
                concurrent_streams(
                    env,
                    12,
                    "Count to thirty [[sim words=30 chunk=3 delay_ms=20]]",
                )
                .await
            }
        };
        // While the streams run, their tasks live on the workers (or on the caller's
        // runtime in the shared layout): the most seen at once while they ran.
        let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
        let held = async move {
            let r = held.await;
            let _ = done_tx.send(());
            r
        };
        let watch = async {
            let mut most = 0;
            for _ in 0..1000 {
                most = most.max(gw.worker_tasks());
                tokio::select! {
                    _ = &mut done_rx => break,
                    _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                }
            }
            most
        };
        let (replies, tasks_on_workers) = tokio::join!(held, watch);
        for (status, words, stopped) in &replies {
            assert_eq!(*status, 200, "layout {layout}");
            assert_eq!(*words, 30, "layout {layout}");
            assert!(
                stopped,
                "layout {layout}: stream not ended with message_stop"
            );
        }
        if threaded {
            assert!(
                tasks_on_workers >= 12,
                "layout {layout}: only {tasks_on_workers} tasks on the workers while 12 streams ran"
            );
        } else {
            assert_eq!(tasks_on_workers, 0, "shared layout has no workers");
        }
    }
}

/// Established TCP connections (IPv4, this network namespace) to `port` on loopback:
/// the gateway's upstream connections to the simulator.
fn connections_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let remote = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address rem_address st ...; 01 = ESTABLISHED
            cols.len() > 3 && cols[2].ends_with(&remote) && cols[3] == "01"
        })
        .count()
}

#[tokio::test]
async fn a_burst_of_streams_leaves_at_most_the_configured_idle_upstream_connections() {
    let env = TestEnv::start(
        Opts::accounts(1)
            .env("WORKERS", "1")
            .env("UPSTREAM_POOL_IDLE", "2"),
    )
    .await;
    let port = env.sim.addr().port();
    // One request first: the token client's connection(s) to the simulator and one
    // pooled chat connection are open from here on.
    let first = concurrent_streams(&env, 1, "warm up [[sim words=2]]").await;
    assert_eq!(first[0].0, 200);
    let others = connections_to(port)
        .checked_sub(1)
        .expect("the chat connection is counted");
    let burst = concurrent_streams(&env, 10, "Hold on [[sim words=4 first_ms=300]]");
    let watch = async {
        let mut most = 0;
        for _ in 0..60 {
            most = most.max(connections_to(port));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        most
    };
    let (replies, most) = tokio::join!(burst, watch);
    assert!(replies.iter().all(|r| r.0 == 200 && r.2), "{replies:?}");
    // The ten streams were in flight at once, each on its own upstream connection.
    assert!(
        most >= others + 10,
        "only {most} connections seen during the burst"
    );
    // When they came back, the pool kept two and closed the rest.
    let settled = eventually(Duration::from_secs(5), || async {
        connections_to(port) <= others + 2
    })
    .await;
    assert!(
        settled,
        "{} connections stayed open ({others} not the chat pool's)",
        connections_to(port)
    );
    // Kept connections are reused: the next requests open nothing new.
    for _ in 0..3 {
        let r = concurrent_streams(&env, 1, "again [[sim words=2]]").await;
        assert_eq!(r[0].0, 200);
    }
    assert!(connections_to(port) <= others + 2);
}

#[tokio::test]
async fn shutdown_lets_streams_on_worker_threads_finish() {
    let mut env = TestEnv::start(Opts::accounts(1).env("WORKERS", "2")).await;
    let (started_tx, mut started_rx) = tokio::sync::mpsc::channel::<()>(4);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let client = reqwest::Client::new();
        let url = env.url("/v1/messages");
        let started = started_tx.clone();
        tasks.push(tokio::spawn(async move {
            let r = start_stream(client, url, "Slowly [[sim words=20 chunk=2 delay_ms=40]]").await;
            assert_eq!(r.status(), 200);
            let _ = started.send(()).await;
            parse_sse(&r.text().await.unwrap_or_default())
        }));
    }
    // Every stream has its headers (the reply takes ~400 ms more): shut down now.
    for _ in 0..4 {
        tokio::time::timeout(Duration::from_secs(10), started_rx.recv())
            .await
            .expect("streams started")
            .unwrap();
    }
    let base = env.base.clone();
    env.stop_gateway().await;
    for t in tasks {
        let events = t.await.unwrap();
        assert_eq!(
            events.last().map(|(n, _)| n.as_str()),
            Some("message_stop"),
            "a stream was cut by the shutdown: {events:?}"
        );
        assert_eq!(streamed_text(&events).split_whitespace().count(), 20);
    }
    // The listener is closed: a new request cannot connect.
    let after = reqwest::Client::new()
        .get(format!("{base}/health"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(after.is_err(), "the gateway still answered after shutdown");
}

#[tokio::test]
async fn metrics_show_each_workers_connections_tasks_and_busy_time() {
    use crate::admin::ADMIN;
    use crate::metrics::{scrape, value};
    let env = TestEnv::start(
        Opts::accounts(1)
            .env("WORKERS", "3")
            .env("ADMIN_API_KEY", ADMIN),
    )
    .await;
    let replies = concurrent_streams(&env, 6, "Hello [[sim words=8 chunk=2]]").await;
    assert!(
        replies
            .iter()
            .all(|(s, w, stop)| *s == 200 && *w == 8 && *stop)
    );
    let m = scrape(&env).await;
    let (mut busy_total, mut open_total) = (0.0, 0.0);
    for w in 0..3 {
        let label = format!("{{worker=\"{w}\"}}");
        let conns = value(&m, &format!("qgate_worker_connections{label}"))
            .unwrap_or_else(|| panic!("no connections gauge for worker {w}:\n{m}"));
        open_total += conns;
        assert!(
            value(&m, &format!("qgate_worker_tasks{label}")).is_some(),
            "{m}"
        );
        busy_total += value(&m, &format!("qgate_worker_busy_seconds_total{label}"))
            .unwrap_or_else(|| panic!("no busy counter for worker {w}:\n{m}"));
    }
    assert!(value(&m, "qgate_worker_connections{worker=\"3\"}").is_none());
    // The scrape's own connection is open on one of them while it is answered.
    assert!(open_total >= 1.0, "{m}");
    // Six streams' connections and the scrape itself ran on the workers.
    assert!(busy_total > 0.0, "{m}");

    // The shared layout has no workers to report.
    let shared = TestEnv::start(
        Opts::accounts(1)
            .env("WORKERS", "shared")
            .env("ADMIN_API_KEY", ADMIN),
    )
    .await;
    assert!(!scrape(&shared).await.contains("qgate_worker_"));
}
