//! Account changes through the admin API (add, patch, remove) while the gateway may be
//! killed at any moment, and the record of what it acknowledged, to judge what a restarted
//! gateway shows: the acknowledged state, or that plus the one change in flight.

use crate::crash_proxy::Seen;
use parking_lot::Mutex;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The account set as the admin API shows it: id → weight.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot(pub BTreeMap<String, u64>);

impl Snapshot {
    /// From `GET /accounts`.
    pub fn from_listing(listing: &Value) -> Snapshot {
        let accounts = listing
            .as_array()
            .unwrap_or_else(|| panic!("GET /accounts: {listing}"));
        Snapshot(
            accounts
                .iter()
                .map(|a| {
                    (
                        a["id"].as_str().unwrap().to_owned(),
                        a["weight"].as_u64().unwrap(),
                    )
                })
                .collect(),
        )
    }

    fn index(id: &str) -> usize {
        id.trim_start_matches("sim-").parse().unwrap()
    }
}

/// What one burst of admin changes achieved before the kill.
#[derive(Debug)]
pub struct Outcome {
    acknowledged: Snapshot,
    in_flight: Option<Snapshot>,
    added_with: BTreeMap<usize, String>,
}

/// Everything acknowledged across all rounds.
#[derive(Debug)]
pub struct AdminLog {
    acknowledged: Snapshot,
    in_flight: Option<Snapshot>,
    /// Refresh token each added account was (last) added with.
    added_with: BTreeMap<usize, String>,
    configured: usize,
}

impl AdminLog {
    pub fn new(configured: usize) -> AdminLog {
        AdminLog {
            acknowledged: Snapshot((1..=configured).map(|i| (format!("sim-{i}"), 10)).collect()),
            in_flight: None,
            added_with: BTreeMap::new(),
            configured,
        }
    }

    pub fn acknowledged(&self) -> &Snapshot {
        &self.acknowledged
    }

    /// The restarted gateway shows `restored`: it must be what was acknowledged, or that
    /// plus the change in flight at the kill. It becomes the new acknowledged state.
    pub fn check_restored(&mut self, restored: &Snapshot, round: usize) {
        let ok = *restored == self.acknowledged || Some(restored) == self.in_flight.as_ref();
        assert!(
            ok,
            "round {round}: after the restart the accounts are {restored:?}; acknowledged \
             {:?}, in flight {:?}",
            self.acknowledged, self.in_flight
        );
        self.acknowledged = restored.clone();
        self.in_flight = None;
    }

    /// Account `i` was removed and added again with `token` (same weight).
    pub fn readded(&mut self, i: usize, token: String) {
        self.added_with.insert(i, token);
    }

    pub fn absorb(&mut self, outcome: Outcome) {
        self.acknowledged = outcome.acknowledged;
        self.in_flight = outcome.in_flight;
        self.added_with.extend(outcome.added_with);
    }

    /// Indexes of the accounts acknowledged as present.
    pub fn present_accounts(&self) -> Vec<usize> {
        self.acknowledged
            .0
            .keys()
            .map(|id| Snapshot::index(id))
            .collect()
    }

    /// Added accounts that may be present after the kill, with the token they were added
    /// with.
    pub fn maybe_added(&self) -> BTreeMap<usize, String> {
        let in_flight = self.in_flight.iter().flat_map(|s| s.0.keys());
        self.acknowledged
            .0
            .keys()
            .chain(in_flight)
            .map(|id| Snapshot::index(id))
            .filter(|i| *i > self.configured)
            .filter_map(|i| self.added_with.get(&i).map(|t| (i, t.clone())))
            .collect()
    }
}

/// The simulator's current refresh token of account `i`, as the proxy saw it issued.
fn current_token(seen: &Mutex<Seen>, i: usize) -> String {
    seen.lock()
        .issued_refresh
        .get(&i)
        .and_then(|issued| issued.last().cloned())
        .unwrap_or_else(|| qgate_sim::credentials(i).refresh_token)
}

/// Who makes a burst of admin changes, against which gateway and simulator.
pub struct Burst {
    pub http: reqwest::Client,
    /// The gateway's base URL.
    pub base: String,
    pub admin_key: &'static str,
    pub seed: u64,
    /// Accounts in the configuration (`sim-1`..).
    pub configured: usize,
    /// Simulator accounts after those, which may be added.
    pub spare: usize,
    pub seen: Arc<Mutex<Seen>>,
}

/// Makes random admin changes, starting from `start`, until the gateway stops answering.
pub fn spawn(burst: Burst, start: Snapshot) -> tokio::task::JoinHandle<Outcome> {
    let Burst {
        http,
        base,
        admin_key,
        seed,
        configured,
        spare,
        seen,
    } = burst;
    tokio::spawn(async move {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut outcome = Outcome {
            acknowledged: start,
            in_flight: None,
            added_with: BTreeMap::new(),
        };
        for _ in 0..1_000 {
            let acked = outcome.acknowledged.clone();
            let absent: Vec<usize> = (configured + 1..=configured + spare)
                .filter(|i| !acked.0.contains_key(&format!("sim-{i}")))
                .collect();
            let added: Vec<String> = acked
                .0
                .keys()
                .filter(|id| Snapshot::index(id) > configured)
                .cloned()
                .collect();
            let mut target = acked.clone();
            let request = match rng.random_range(0..3) {
                0 if !absent.is_empty() => {
                    let i = absent[rng.random_range(0..absent.len())];
                    let c = qgate_sim::credentials(i);
                    let token = current_token(&seen, i);
                    outcome.added_with.insert(i, token.clone());
                    target.0.insert(c.account.clone(), 5);
                    http.post(format!("{base}/accounts")).json(&json!({
                        "id": c.account, "refresh_token": token, "client_id": c.client_id,
                        "client_secret": c.client_secret, "weight": 5}))
                }
                2 if !added.is_empty() => {
                    let id = &added[rng.random_range(0..added.len())];
                    target.0.remove(id);
                    http.delete(format!("{base}/accounts/{id}"))
                }
                _ => {
                    let ids: Vec<&String> = acked.0.keys().collect();
                    let id = ids[rng.random_range(0..ids.len())].clone();
                    let weight = rng.random_range(1..=100u64);
                    target.0.insert(id.clone(), weight);
                    http.patch(format!("{base}/accounts/{id}"))
                        .json(&json!({"weight": weight}))
                }
            };
            outcome.in_flight = Some(target.clone());
            match request.bearer_auth(admin_key).send().await {
                Ok(r) if r.status().is_success() => {
                    outcome.acknowledged = target;
                    outcome.in_flight = None;
                }
                Ok(r) => panic!("admin change refused: {} {:?}", r.status(), r.text().await),
                // The gateway is gone; the change may or may not have landed.
                Err(_) => return outcome,
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..20))).await;
        }
        outcome
    })
}
