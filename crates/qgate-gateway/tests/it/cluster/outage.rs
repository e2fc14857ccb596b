//! Redis dies mid-run: clients see nothing; the outage shows in `/health` and metrics;
//! when Redis returns, what was decided meanwhile reaches every instance.

use super::{SPREAD, account};
use crate::support::*;
use serde_json::json;

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_is_invisible_to_clients_and_state_reconciles_after_it() {
    // Limits and sticky sessions put Redis on every request's path.
    let mut c = TestCluster::start(3, super::admin_opts(3).env("STICKY_SESSIONS", "true")).await;
    let body = |n: usize| {
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 64,
            "metadata": {"user_id": format!("user-{}", n % 5)},
            "messages": [{"role": "user", "content": format!("outage run {n} [[sim words=2]]")}]
        })
    };
    let mut statuses = Vec::new();
    for n in 0..30 {
        statuses.push(c.message(n % 3, &body(n)).await.0);
    }
    assert_eq!(metric(&c.metrics(0).await, "qgate_redis_up"), Some(1.0));

    c.redis.stop();
    for n in 30..60 {
        statuses.push(c.message(n % 3, &body(n)).await.0);
    }
    // Decided during the outage, on gateway 0 alone.
    c.fault(json!({"account": "sim-2", "fault": "suspended", "count": 1}))
        .await;
    for n in 60..75 {
        statuses.push(c.message(0, &body(n)).await.0);
    }
    assert_eq!(account(&c, 0, "sim-2").await.1["state"], "suspended");
    let (s, health) = c.get(1, "/health").await;
    assert_eq!(s, 200, "the pool is still healthy: {health}");
    assert_eq!(health["redis"], "down", "{health}");
    let text = c.metrics(1).await;
    assert_eq!(metric(&text, "qgate_redis_up"), Some(0.0), "{text}");
    assert!(metric(&text, "qgate_redis_errors_total").unwrap_or(0.0) >= 1.0);

    c.redis.restart();
    for n in 75..90 {
        statuses.push(c.message(n % 3, &body(n)).await.0);
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    for i in [1, 2] {
        assert!(
            eventually(SPREAD * 2, || async {
                account(&c, i, "sim-2").await.1["state"] == "suspended"
            })
            .await,
            "gateway {i} learns of the suspension decided during the outage"
        );
        assert!(
            eventually(SPREAD, || async {
                c.get(i, "/health").await.1["redis"] == "up"
            })
            .await
        );
    }
}
