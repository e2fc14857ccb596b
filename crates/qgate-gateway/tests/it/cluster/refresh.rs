//! Token refresh across instances: one refresh per account for the whole cluster.

use super::burst;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_refresh_each_expired_account_once() {
    let c = TestCluster::start(
        3,
        Opts::accounts(3).sim(qgate_sim::SimConfig {
            accounts: 3,
            rotate_refresh_tokens: true,
            ..Default::default()
        }),
    )
    .await;
    // Cold start: no instance has a token yet.
    let statuses = burst(&c, 300, "cold [[sim words=2]]").await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let cold = c.sim_stats().await;
    for a in ["sim-1", "sim-2", "sim-3"] {
        assert_eq!(count(&cold, a, "token_refreshes"), 1, "{a} cold: {cold}");
    }

    // Every access token expires upstream; 300 requests at once across the instances.
    c.sim.expire_access_tokens();
    let statuses = burst(&c, 300, "after expiry [[sim words=2]]").await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let after = c.sim_stats().await;
    for a in ["sim-1", "sim-2", "sim-3"] {
        assert_eq!(
            count(&after, a, "token_refreshes"),
            2,
            "{a}: exactly one more refresh for the whole cluster: {after}"
        );
        assert_eq!(count(&after, a, "refresh_failures"), 0, "{a}: {after}");
    }
}
