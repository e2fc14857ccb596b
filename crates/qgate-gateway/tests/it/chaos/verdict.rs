//! After a round's traffic: what must hold once faults are cleared and the gateways have
//! had their cooldowns (short breaker timeout, 1 s health checks) — in-flight gauges at
//! zero everywhere, both gateways agreeing on the account set the admin calls produced,
//! and every account's state explained by the injection log.
//!
//! "Explained" both ways. An account in a lasting state had a fault of the matching kind
//! injected for it this round (or for every account) and the simulator counted a fault
//! fired for it; `refresh_denied` only after `refresh_invalid_grant`, `suspended` only
//! after `suspended`, `quota_exhausted` only after `monthly_quota` / `quota_402`. And an
//! account whose gateway counted an error of a lasting class this round ends in that
//! state (or a more severe one): nothing but an admin lifts them. Any other account ends
//! `active` with its breaker closed. An account refused a model has `invalid_model` in
//! its log.

use super::driver::{ALL, Chaos};
use super::plan::lasting_state;
use crate::support::TestCluster;
use qgate_sim::FaultKind;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One gateway's view after a round.
#[derive(Debug)]
pub struct View {
    pub accounts: BTreeMap<String, Value>,
    pub in_flight: u64,
    pub queued: u64,
    /// `amazonq_active_requests` series that are not 0.
    pub busy_series: Vec<String>,
    pub redis: String,
}

/// Both gateways and the simulator, read at one moment.
#[derive(Debug)]
pub struct Observation {
    pub views: Vec<View>,
    pub sim: Value,
}

/// Counters at a round's start, so the round is judged on its own.
#[derive(Debug, Default)]
pub struct Baseline {
    /// (gateway, account) → error class → count.
    errors: BTreeMap<(usize, String), BTreeMap<String, u64>>,
    fired: BTreeMap<String, u64>,
}

pub async fn observe(c: &TestCluster) -> Observation {
    let mut views = Vec::new();
    for i in 0..c.nodes.len() {
        let (_, stats) = c
            .admin(i, reqwest::Method::GET, "/accounts/stats", None)
            .await;
        let (_, health) = c.get(i, "/health").await;
        let accounts = stats["accounts"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|a| (a["id"].as_str().unwrap_or_default().to_owned(), a.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let busy_series = c
            .metrics(i)
            .await
            .lines()
            .filter(|l| l.starts_with("amazonq_active_requests{"))
            .filter(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) != Some(0.0))
            .map(str::to_owned)
            .collect();
        views.push(View {
            accounts,
            in_flight: stats["in_flight"].as_u64().unwrap_or(u64::MAX),
            queued: stats["queued"].as_u64().unwrap_or(u64::MAX),
            busy_series,
            redis: health["redis"].as_str().unwrap_or_default().to_owned(),
        });
    }
    Observation {
        views,
        sim: c.sim_stats().await,
    }
}

impl Baseline {
    pub fn take(obs: &Observation) -> Baseline {
        let mut baseline = Baseline::default();
        for (i, view) in obs.views.iter().enumerate() {
            for (id, account) in &view.accounts {
                baseline
                    .errors
                    .insert((i, id.clone()), errors_by_class(account));
            }
        }
        if let Some(accounts) = obs.sim["accounts"].as_object() {
            for (id, a) in accounts {
                baseline
                    .fired
                    .insert(id.clone(), a["faults_fired"].as_u64().unwrap_or(0));
            }
        }
        baseline
    }
}

fn errors_by_class(account: &Value) -> BTreeMap<String, u64> {
    account["errors_by_class"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// How hard a lasting state holds (the pool's order: a weaker report never replaces a
/// stronger state).
fn severity(state: &str) -> u8 {
    match state {
        "quota_exhausted" => 2,
        "refresh_denied" => 3,
        "suspended" => 4,
        _ => 0,
    }
}

/// Everything that does not hold yet; empty when the round passed.
///
/// `carried`: lasting states an operator could not lift after an earlier round (account →
/// state); already reported there, so not again.
pub fn problems(
    obs: &Observation,
    chaos: &Chaos,
    baseline: &Baseline,
    carried: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    let expected = &chaos.expected;
    let kinds_in = |log: &BTreeMap<String, BTreeSet<&'static str>>, id: &str| {
        let mut kinds = log.get(id).cloned().unwrap_or_default();
        kinds.extend(log.get(ALL).into_iter().flatten().copied());
        kinds
    };
    for (i, view) in obs.views.iter().enumerate() {
        let gw = format!("gateway {i}");
        let ids: BTreeSet<String> = view.accounts.keys().cloned().collect();
        if ids != *expected {
            out.push(format!(
                "{gw} has accounts {ids:?}, the admin calls made {expected:?}"
            ));
        }
        if view.in_flight != 0 || view.queued != 0 {
            out.push(format!(
                "{gw}: in_flight {} queued {} after the traffic",
                view.in_flight, view.queued
            ));
        }
        if !view.busy_series.is_empty() {
            out.push(format!("{gw}: {:?}", view.busy_series));
        }
        if view.redis != "up" {
            out.push(format!(
                "{gw}: redis {:?} in /health after its restart",
                view.redis
            ));
        }
        for (id, account) in &view.accounts {
            let state = account["state"].as_str().unwrap_or_default();
            let phase = account["breaker"]["phase"].as_str().unwrap_or_default();
            if account["in_flight"].as_u64() != Some(0) {
                out.push(format!("{gw} {id}: in_flight {}", account["in_flight"]));
            }
            let kinds = kinds_in(&chaos.injected, id);
            let fired = obs.sim["accounts"][id]["faults_fired"]
                .as_u64()
                .unwrap_or(0)
                .saturating_sub(baseline.fired.get(id).copied().unwrap_or(0));
            if severity(state) > 0 && carried.get(id).is_some_and(|c| c == state) {
                // Reported in the round it could not be lifted after.
            } else if severity(state) > 0 {
                let cause = FaultKind::ALL
                    .into_iter()
                    .filter(|k| lasting_state(*k) == Some(state))
                    .find(|k| kinds.contains(k.as_str()));
                match cause {
                    Some(_) if fired > 0 => {}
                    Some(kind) => out.push(format!(
                        "{gw} {id} is {state} ({}), {} was injected but the simulator fired no fault for it",
                        account["state_reason"], kind.as_str()
                    )),
                    None => out.push(format!(
                        "{gw} {id} is {state} ({}) but no fault that causes it was injected for it this round (injected: {kinds:?}; errors: {:?})",
                        account["state_reason"],
                        errors_by_class(account)
                    )),
                }
            } else if state != "active" || phase != "closed" {
                out.push(format!(
                    "{gw} {id} is {state} with its breaker {phase} after the cooldowns ({}; injected: {kinds:?})",
                    account["state_reason"]
                ));
            }
            let before = baseline
                .errors
                .get(&(i, id.clone()))
                .cloned()
                .unwrap_or_default();
            for (class, n) in errors_by_class(account) {
                let grew = n > before.get(&class).copied().unwrap_or(0);
                if grew && severity(&class) > 0 && severity(state) < severity(&class) {
                    out.push(format!(
                        "{gw} {id} counted a {class} error this round but ends {state}"
                    ));
                }
            }
            let refused = account["unavailable_models"]
                .as_array()
                .is_some_and(|m| !m.is_empty());
            let ever = kinds_in(&chaos.ever_injected, id);
            if refused && !ever.contains(FaultKind::InvalidModel.as_str()) {
                out.push(format!(
                    "{gw} {id} has models marked unavailable {} without an invalid_model fault",
                    account["unavailable_models"]
                ));
            }
        }
    }
    // Both gateways share the pool state through Redis: they must agree.
    if let [a, b] = obs.views.as_slice() {
        for (id, left) in &a.accounts {
            if let Some(right) = b.accounts.get(id)
                && left["state"] != right["state"]
            {
                out.push(format!(
                    "{id}: gateway 0 says {}, gateway 1 says {}",
                    left["state"], right["state"]
                ));
            }
        }
    }
    if let Some(accounts) = obs.sim["accounts"].as_object() {
        for (id, a) in accounts {
            if a["in_flight"].as_u64() != Some(0) {
                out.push(format!("simulator {id}: in_flight {}", a["in_flight"]));
            }
        }
    }
    out
}

/// Final states, one line per account, for the summary.
pub fn states(obs: &Observation) -> Vec<String> {
    let mut lines = Vec::new();
    for (i, view) in obs.views.iter().enumerate() {
        for (id, a) in &view.accounts {
            lines.push(format!(
                "gateway {i} {id}: {} (breaker {}, errors {:?})",
                a["state"].as_str().unwrap_or_default(),
                a["breaker"]["phase"].as_str().unwrap_or_default(),
                errors_by_class(a)
            ));
        }
    }
    lines
}

/// Accounts in a lasting state on any gateway, with the most severe one seen.
pub fn lasting(obs: &Observation) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (id, account) in obs.views.iter().flat_map(|v| v.accounts.iter()) {
        let state = account["state"].as_str().unwrap_or_default();
        let known = out.get(id).map_or(0, |s| severity(s));
        if severity(state) > known {
            out.insert(id.clone(), state.to_owned());
        }
    }
    out
}
