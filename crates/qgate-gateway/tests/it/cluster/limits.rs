//! Per-account limits hold for the three instances together.

use super::burst;
use crate::support::*;

fn one_account(extra: &str) -> String {
    let c = qgate_sim::credentials(1);
    format!(
        "[[accounts]]\nid = \"sim-1\"\nrefresh_token = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n{extra}\n",
        c.refresh_token, c.client_id, c.client_secret
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_requests_per_minute_across_three_instances() {
    let c = TestCluster::start(
        3,
        Opts::accounts(1)
            .toml(one_account("rpm_limit = 60"))
            .env("QUEUE_TIMEOUT", "200ms")
            // Exactness is the point here: a loaded test machine must not turn a slow
            // answer into the local fallback.
            .env("REDIS_TIMEOUT", "3s"),
    )
    .await;
    // 90 requests within a few seconds: 30 per instance, under each one's own count.
    let statuses = burst(&c, 90, "[[sim words=2]] rpm").await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 60, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 529 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(count(&c.sim_stats().await, "sim-1", "chat_ok"), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_cap_of_one_holds_across_instances() {
    let c = TestCluster::start(
        3,
        Opts::accounts(1)
            .toml(one_account("max_concurrency = 1"))
            .env("REDIS_TIMEOUT", "3s"),
    )
    .await;
    let statuses = burst(&c, 6, "[[sim words=3 first_ms=100]] one at a time").await;
    assert_eq!(statuses, vec![200; 6]);
    let stats = c.sim_stats().await;
    assert_eq!(count(&stats, "sim-1", "max_in_flight"), 1, "{stats}");
    assert_eq!(count(&stats, "sim-1", "chat_ok"), 6);
}
