//! Between rounds, an operator lifts the lasting states the verdict has explained, so the
//! next round starts from a whole pool: `POST /accounts/{id}/refresh` on every gateway for
//! a refused refresh token (each instance's token manager holds its own denial), `POST
//! /accounts/{id}/reset` for the rest. What cannot be lifted is reported and carried.

use super::driver::Chaos;
use super::verdict::{self, Observation};
use crate::support::TestCluster;
use reqwest::Method;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// Lifts lasting states; returns the accounts still in one (account → state) and adds a
/// failure line for each.
pub async fn lift_lasting_states(
    c: &TestCluster,
    chaos: &mut Chaos,
    round: u64,
    obs: &Observation,
    limit: Duration,
    failures: &mut Vec<String>,
) -> (Observation, BTreeMap<String, String>) {
    for (id, state) in verdict::lasting(obs) {
        if state == "refresh_denied" {
            for gateway in 0..c.nodes.len() {
                let path = format!("/accounts/{id}/refresh");
                let (status, answer) = c.admin(gateway, Method::POST, &path, None).await;
                let detail = if status == 200 {
                    String::new()
                } else {
                    answer.to_string()
                };
                chaos.note(
                    round,
                    format!("refresh {id} on gateway {gateway} → {status} {detail}"),
                );
            }
        }
        let (status, _) = c
            .admin(0, Method::POST, &format!("/accounts/{id}/reset"), None)
            .await;
        chaos.note(round, format!("reset {id} ({state}) → {status}"));
    }
    let deadline = Instant::now() + limit;
    let obs = loop {
        let obs = verdict::observe(c).await;
        if verdict::lasting(&obs).is_empty() || Instant::now() >= deadline {
            break obs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let carried: BTreeMap<String, String> = verdict::lasting(&obs).into_iter().collect();
    for (id, state) in &carried {
        failures.push(format!(
            "after round {round}: {id} stays {state} although an operator refreshed and reset it"
        ));
    }
    (obs, carried)
}
