//! Multi-instance mode: three gateways, one simulator, one real Redis (private
//! `redis-server` on a unix socket). One file per acceptance criterion of issue 7.

mod admin;
mod latency;
mod limits;
mod outage;
mod refresh;
mod secrets;
mod state;

use crate::support::*;
use serde_json::Value;
use std::time::Duration;

/// Bound for "the other instances see it" checks: generous for a loaded machine; the
/// design bound (pub/sub at once, reconcile every 500 ms) is well inside it.
pub const SPREAD: Duration = Duration::from_secs(5);

pub fn admin_opts(accounts: usize) -> Opts {
    Opts::accounts(accounts).env("ADMIN_API_KEY", "admin-key-for-tests")
}

/// Account `id`'s view on gateway `i`.
pub async fn account(c: &TestCluster, i: usize, id: &str) -> (u16, Value) {
    c.admin(i, reqwest::Method::GET, &format!("/accounts/{id}"), None)
        .await
}

/// `n` requests sent at once, spread over the gateways round robin; their statuses.
pub async fn burst(c: &TestCluster, n: usize, prompt: &str) -> Vec<u16> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let http = c.http.clone();
        let url = c.url(i % c.nodes.len(), "/v1/messages");
        let body = hello(&format!("{prompt} {i}"));
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .header("anthropic-version", "2023-06-01")
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
