//! The limiter script: caps, refusals that take nothing, lease expiry and atomicity.

use std::time::Duration;

use super::connect;
use crate::redis::test_server::RedisServer;
use crate::redis::{Acquire, LeaseRef};

const T0: u64 = 1_700_000_000_000;
const TTL: Duration = Duration::from_secs(30);

#[tokio::test]
async fn concurrency_cap_counts_leases_until_released() {
    let server = RedisServer::start();
    let store = connect(&server);
    for lease in ["a", "b"] {
        assert_eq!(
            store
                .acquire("sim-1", Some(2), None, lease, TTL, T0)
                .await
                .unwrap(),
            Acquire::Granted
        );
    }
    assert_eq!(
        store
            .acquire("sim-1", Some(2), None, "c", TTL, T0)
            .await
            .unwrap(),
        Acquire::AtConcurrency
    );
    assert_eq!(store.in_flight("sim-1", T0).await.unwrap(), 2);
    // Other accounts have their own cap.
    assert_eq!(
        store
            .acquire("sim-2", Some(2), None, "c", TTL, T0)
            .await
            .unwrap(),
        Acquire::Granted
    );
    store.release("sim-1", "a").await.unwrap();
    assert_eq!(
        store
            .acquire("sim-1", Some(2), None, "c", TTL, T0)
            .await
            .unwrap(),
        Acquire::Granted
    );
}

#[tokio::test]
async fn rpm_window_refuses_without_consuming_and_reopens_after_a_minute() {
    let server = RedisServer::start();
    let store = connect(&server);
    for (i, lease) in ["r1", "r2", "r3"].into_iter().enumerate() {
        let now = T0 + i as u64 * 1000;
        assert_eq!(
            store
                .acquire("sim-1", None, Some(3), lease, TTL, now)
                .await
                .unwrap(),
            Acquire::Granted
        );
    }
    let now = T0 + 10_000;
    for attempt in 0..5 {
        assert_eq!(
            store
                .acquire("sim-1", None, Some(3), &format!("x{attempt}"), TTL, now)
                .await
                .unwrap(),
            Acquire::AtRpm {
                retry_after_ms: 50_000
            }
        );
    }
    assert_eq!(
        store.rpm_used("sim-1", now).await.unwrap(),
        3,
        "refusals took nothing"
    );
    // r1 leaves the window one minute after it started.
    assert_eq!(
        store
            .acquire("sim-1", None, Some(3), "r4", TTL, T0 + 60_001)
            .await
            .unwrap(),
        Acquire::Granted
    );
    assert_eq!(
        store
            .acquire("sim-1", None, Some(3), "r5", TTL, T0 + 60_002)
            .await
            .unwrap(),
        Acquire::AtRpm {
            retry_after_ms: 998
        }
    );
}

#[tokio::test]
async fn a_refused_concurrency_check_takes_no_rpm_budget() {
    let server = RedisServer::start();
    let store = connect(&server);
    assert_eq!(
        store
            .acquire("sim-1", Some(1), Some(10), "a", TTL, T0)
            .await
            .unwrap(),
        Acquire::Granted
    );
    for i in 0..5 {
        assert_eq!(
            store
                .acquire("sim-1", Some(1), Some(10), &format!("b{i}"), TTL, T0)
                .await
                .unwrap(),
            Acquire::AtConcurrency
        );
    }
    assert_eq!(store.rpm_used("sim-1", T0).await.unwrap(), 1);
}

#[tokio::test]
async fn leases_of_a_dead_instance_expire_unless_extended() {
    let server = RedisServer::start();
    let store = connect(&server);
    let short = Duration::from_millis(1000);
    store
        .acquire("sim-1", Some(1), None, "dead", short, T0)
        .await
        .unwrap();
    store
        .acquire("sim-2", Some(1), None, "alive", short, T0)
        .await
        .unwrap();
    store
        .extend_leases(
            &[LeaseRef {
                account: "sim-2",
                lease_id: "alive",
            }],
            T0 + 5_000,
            short,
        )
        .await
        .unwrap();
    let later = T0 + 1_001;
    assert_eq!(
        store
            .acquire("sim-1", Some(1), None, "next", short, later)
            .await
            .unwrap(),
        Acquire::Granted,
        "the dead instance's lease freed itself"
    );
    assert_eq!(
        store
            .acquire("sim-2", Some(1), None, "next", short, later)
            .await
            .unwrap(),
        Acquire::AtConcurrency,
        "an extended lease still counts"
    );
    // Extending a released lease does not bring it back.
    store.release("sim-2", "alive").await.unwrap();
    store
        .extend_leases(
            &[LeaseRef {
                account: "sim-2",
                lease_id: "alive",
            }],
            T0 + 9_000,
            short,
        )
        .await
        .unwrap();
    assert_eq!(store.in_flight("sim-2", later).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_acquisitions_never_exceed_the_cap() {
    let server = RedisServer::start();
    let stores = [connect(&server), connect(&server), connect(&server)];
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = stores[i % 3].clone();
        tasks.push(tokio::spawn(async move {
            store
                .acquire("sim-1", Some(5), Some(20), &format!("lease-{i}"), TTL, T0)
                .await
                .unwrap()
        }));
    }
    let mut granted = 0;
    for task in tasks {
        if task.await.unwrap() == Acquire::Granted {
            granted += 1;
        }
    }
    assert_eq!(granted, 5);
    assert_eq!(stores[0].rpm_used("sim-1", T0).await.unwrap(), 5);
}

#[tokio::test]
async fn no_limits_means_no_round_trip() {
    let mut server = RedisServer::start();
    let store = connect(&server);
    server.stop();
    assert_eq!(
        store
            .acquire("sim-1", None, None, "a", TTL, T0)
            .await
            .unwrap(),
        Acquire::Granted
    );
    assert!(store.health().is_up(), "nothing was sent");
}
