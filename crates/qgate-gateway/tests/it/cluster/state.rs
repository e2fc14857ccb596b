//! Pool state across instances: suspensions and breakers decided by one instance's
//! traffic hold on all; sticky sessions and counts are cluster-wide.

use super::{SPREAD, account};
use crate::support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_suspended_through_one_instance_is_skipped_by_the_others() {
    let c = TestCluster::start(3, super::admin_opts(3)).await;
    c.fault(json!({"account": "sim-2", "fault": "suspended", "count": 1}))
        .await;
    // Only gateway 0 serves until sim-2's suspension is seen there.
    for n in 0..12 {
        let (s, v) = c.message(0, &hello(&format!("through 0: {n}"))).await;
        assert_eq!(s, 200, "{v}");
    }
    let (_, on_0) = account(&c, 0, "sim-2").await;
    assert_eq!(on_0["state"], "suspended", "{on_0}");

    let started = std::time::Instant::now();
    for i in [1, 2] {
        assert!(
            eventually(SPREAD, || async {
                account(&c, i, "sim-2").await.1["state"] == "suspended"
            })
            .await,
            "gateway {i} did not adopt the suspension"
        );
    }
    eprintln!(
        "suspension seen by both other gateways after {:?}",
        started.elapsed()
    );

    // And they route around it: no request of theirs reaches sim-2.
    let before = count(&c.sim_stats().await, "sim-2", "chat_requests");
    for n in 0..12 {
        let (s, v) = c
            .message(1 + n % 2, &hello(&format!("through 1/2: {n}")))
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let after = count(&c.sim_stats().await, "sim-2", "chat_requests");
    assert_eq!(before, after, "sim-2 was skipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_opened_on_one_instance_is_open_on_all() {
    let c = TestCluster::start(
        3,
        super::admin_opts(3).env("CIRCUIT_BREAKER_ERROR_THRESHOLD", "2"),
    )
    .await;
    c.fault(json!({"account": "sim-3", "fault": "unavailable"}))
        .await;
    assert!(
        eventually(SPREAD, || async {
            let _ = c.message(0, &hello("open it")).await;
            account(&c, 0, "sim-3").await.1["breaker"]["phase"] == "open"
        })
        .await,
        "the breaker opens on gateway 0"
    );
    for i in [1, 2] {
        assert!(
            eventually(SPREAD, || async {
                account(&c, i, "sim-3").await.1["breaker"]["phase"] == "open"
            })
            .await,
            "gateway {i} sees the breaker open"
        );
    }
    // Resetting it on one instance closes it everywhere.
    let (s, v) = c
        .admin(2, reqwest::Method::POST, "/accounts/sim-3/reset", None)
        .await;
    assert_eq!(s, 200, "{v}");
    for i in [0, 1] {
        assert!(
            eventually(SPREAD, || async {
                account(&c, i, "sim-3").await.1["breaker"]["phase"] == "closed"
            })
            .await,
            "gateway {i} sees the reset"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_the_whole_pool_and_keep_each_instance_apart() {
    let c = TestCluster::start(3, super::admin_opts(2)).await;
    for n in 0..9 {
        let (s, v) = c.message(n % 3, &hello(&format!("count me {n}"))).await;
        assert_eq!(s, 200, "{v}");
    }
    let stats = || async {
        c.admin(0, reqwest::Method::GET, "/accounts/stats", None)
            .await
            .1
    };
    let complete = eventually(SPREAD, || async { stats().await["total_requests"] == 9 }).await;
    let last = stats().await;
    assert!(complete, "{last}");
    assert_eq!(last["total_successes"], 9, "{last}");
    assert_eq!(last["cluster"]["instance_requests"], 3, "{last}");
    assert_eq!(last["cluster"]["redis"], "up");
    let per_account: u64 = last["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["cluster"]["request_count"].as_u64().unwrap())
        .sum();
    assert_eq!(per_account, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sticky_session_stays_on_one_account_across_instances() {
    let c = TestCluster::start(3, Opts::accounts(3).env("STICKY_SESSIONS", "true")).await;
    let body = |n: usize| {
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 64,
            "metadata": {"user_id": "user-cluster-session-1"},
            "messages": [{"role": "user", "content": format!("turn {n}")}]
        })
    };
    let (s, v) = c.message(0, &body(0)).await;
    assert_eq!(s, 200, "{v}");
    let before = c.sim_stats().await;
    let bound: Vec<&str> = ["sim-1", "sim-2", "sim-3"]
        .into_iter()
        .filter(|a| count(&before, a, "chat_requests") == 1)
        .collect();
    assert_eq!(bound.len(), 1, "{before}");
    for n in 1..9 {
        let (s, v) = c.message(n % 3, &body(n)).await;
        assert_eq!(s, 200, "{v}");
    }
    let after = c.sim_stats().await;
    assert_eq!(count(&after, bound[0], "chat_requests"), 9, "{after}");
}
