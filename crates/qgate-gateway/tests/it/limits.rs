//! Per-account concurrency caps and the bounded wait queue, requests-per-minute limits,
//! sticky sessions, and a large pool — through the real gateway.

use crate::support::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn account_toml(id: &str, index: usize, extra: &str) -> String {
    let c = qgate_sim::credentials(index);
    format!(
        "[[accounts]]\nid = \"{id}\"\nrefresh_token = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n{extra}\n",
        c.refresh_token, c.client_id, c.client_secret
    )
}

async fn concurrent(env: &TestEnv, n: usize, prompt: &str) -> Vec<u16> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let http = env.http.clone();
        let url = env.url("/v1/messages");
        let body = hello(&format!("{prompt} {i}"));
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn requests_over_the_concurrency_cap_wait_for_a_slot() {
    let env =
        TestEnv::start(Opts::accounts(1).toml(account_toml("sim-1", 1, "max_concurrency = 1")))
            .await;
    let statuses = concurrent(&env, 4, "[[sim words=3 first_ms=150]] slow").await;
    assert_eq!(statuses, vec![200; 4]);
    let stats = env.sim_stats().await;
    assert_eq!(count(&stats, "sim-1", "max_in_flight"), 1, "{stats}");
    assert_eq!(count(&stats, "sim-1", "chat_ok"), 4);
}

#[tokio::test]
async fn the_wait_queue_times_out_with_a_529() {
    let env = TestEnv::start(
        Opts::accounts(1)
            .toml(account_toml("sim-1", 1, "max_concurrency = 1"))
            .env("QUEUE_TIMEOUT", "200ms"),
    )
    .await;
    let http = env.http.clone();
    let url = env.url("/v1/messages");
    let slow = tokio::spawn(async move {
        http.post(url)
            .json(&hello("[[sim words=2 first_ms=2000]] hold the slot"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let r = env.post("/v1/messages", &hello("second")).await;
    let waited = started.elapsed();
    assert_eq!(r.status(), 529);
    assert!(r.headers().get("retry-after").is_some());
    assert!(
        waited < Duration::from_millis(1900),
        "it waited for the queue, not the slot"
    );
    assert_eq!(slow.await.unwrap(), 200);
}

#[tokio::test]
async fn requests_per_minute_limit_spills_to_other_accounts_then_waits() {
    let toml = format!(
        "{}{}",
        account_toml("sim-1", 1, "rpm_limit = 3"),
        account_toml("sim-2", 2, "rpm_limit = 3")
    );
    let env = TestEnv::start(Opts::accounts(2).toml(toml).env("QUEUE_TIMEOUT", "300ms")).await;
    for i in 0..6 {
        let (s, v) = env.message(&hello(&format!("r{i}"))).await;
        assert_eq!(s, 200, "{v}");
    }
    let stats = env.sim_stats().await;
    assert_eq!(count(&stats, "sim-1", "chat_requests"), 3);
    assert_eq!(count(&stats, "sim-2", "chat_requests"), 3);
    let (s, v) = env.message(&hello("seventh")).await;
    assert_eq!(s, 529, "{v}");
    let stats = env.sim_stats().await;
    assert_eq!(
        count(&stats, "sim-1", "chat_requests") + count(&stats, "sim-2", "chat_requests"),
        6,
        "no account exceeded its limit"
    );
}

#[tokio::test]
async fn a_session_sticks_to_one_account() {
    let env = TestEnv::start(Opts::accounts(3).env("LOAD_BALANCE_STRATEGY", "round_robin")).await;
    for i in 0..9 {
        let mut body = hello(&format!("turn {i}"));
        body["metadata"] = json!({"user_id": "{\"device_id\":\"d\",\"session_id\":\"0149c1dd-471e-41b2-a989-8a28586cdc81\"}"});
        let (s, _) = env.message(&body).await;
        assert_eq!(s, 200);
    }
    let stats = env.sim_stats().await;
    let served: Vec<u64> = ["sim-1", "sim-2", "sim-3"]
        .iter()
        .map(|a| count(&stats, a, "chat_requests"))
        .collect();
    assert_eq!(served.iter().filter(|n| **n > 0).count(), 1, "{served:?}");
    // Without a session, round robin spreads evenly.
    for i in 0..9 {
        let (s, _) = env.message(&hello(&format!("anon {i}"))).await;
        assert_eq!(s, 200);
    }
    let stats = env.sim_stats().await;
    let served: Vec<u64> = ["sim-1", "sim-2", "sim-3"]
        .iter()
        .map(|a| count(&stats, a, "chat_requests"))
        .collect();
    assert_eq!(served.iter().sum::<u64>(), 18);
    assert!(served.iter().all(|n| *n >= 3), "{served:?}");
}

#[tokio::test]
async fn a_pool_of_100_accounts_spreads_evenly() {
    let env =
        TestEnv::start(Opts::accounts(100).env("LOAD_BALANCE_STRATEGY", "weighted_round_robin"))
            .await;
    let statuses = concurrent(&env, 200, "[[sim words=2]] wide").await;
    assert!(statuses.iter().all(|s| *s == 200));
    let stats = env.sim_stats().await;
    for i in 1..=100 {
        assert_eq!(
            count(&stats, &format!("sim-{i}"), "chat_requests"),
            2,
            "sim-{i}"
        );
    }
}
