//! The chaos driver: carries out a round's schedule against the simulator, Redis and the
//! admin API, and writes down exactly what it did and when — the injection log the final
//! account states are checked against.

use super::plan::{Action, CONFIGURED, Trigger};
use crate::support::TestCluster;
use qgate_sim::FaultKind;
use rand::Rng;
use rand::rngs::StdRng;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::time::Instant;

/// The target of a fault injected on every account.
pub const ALL: &str = "*";

/// What the driver did, across rounds.
#[derive(Debug)]
pub struct Chaos {
    start: Instant,
    /// Accounts both gateways should have once admin changes have spread.
    pub expected: BTreeSet<String>,
    /// Accounts added through the admin API and not removed.
    dynamic: Vec<String>,
    next_index: usize,
    /// `+12.345s r0 …` lines, in order.
    pub log: Vec<String>,
    /// Fault kinds injected this round, by account (or [`ALL`]).
    pub injected: BTreeMap<String, BTreeSet<&'static str>>,
    /// Fault kinds injected over the whole soak, by account (or [`ALL`]): marks that
    /// outlive a round (a refused model stays refused for 30 minutes) are judged on it.
    pub ever_injected: BTreeMap<String, BTreeSet<&'static str>>,
    /// Action → how many times it was done, over the soak (fault kinds by name).
    pub counts: BTreeMap<String, u64>,
}

impl Chaos {
    pub fn new(start: Instant) -> Chaos {
        Chaos {
            start,
            expected: (1..=CONFIGURED).map(|i| format!("sim-{i}")).collect(),
            dynamic: Vec::new(),
            next_index: CONFIGURED + 1,
            log: Vec::new(),
            injected: BTreeMap::new(),
            ever_injected: BTreeMap::new(),
            counts: BTreeMap::new(),
        }
    }

    pub fn note(&mut self, round: u64, what: String) {
        let at = self.start.elapsed().as_secs_f64();
        self.log.push(format!("+{at:8.3}s r{round} {what}"));
    }

    fn count(&mut self, what: impl Into<String>) {
        *self.counts.entry(what.into()).or_default() += 1;
    }

    /// Carries out `schedule` (times from `round_start`); returns with Redis running.
    pub async fn run_round(
        &mut self,
        c: &mut TestCluster,
        round: u64,
        round_start: Instant,
        schedule: &[(Duration, Action)],
        rng: &mut StdRng,
    ) {
        self.injected.clear();
        for (at, action) in schedule {
            tokio::time::sleep_until(round_start + *at).await;
            self.act(c, round, action, rng).await;
        }
        if !c.redis.is_running() {
            self.act(c, round, &Action::RestartRedis, rng).await;
        }
    }

    async fn act(&mut self, c: &mut TestCluster, round: u64, action: &Action, rng: &mut StdRng) {
        match action {
            Action::Fault {
                kind,
                trigger,
                targeted,
                delay_ms,
            } => {
                let target = if *targeted {
                    let present: Vec<&String> = self.expected.iter().collect();
                    present[rng.random_range(0..present.len())].clone()
                } else {
                    ALL.to_owned()
                };
                self.inject(c, round, *kind, *trigger, &target, *delay_ms)
                    .await;
            }
            Action::ClearFaults => {
                let status = sim_call(c, Method::DELETE, "/_sim/faults").await;
                self.count("clear faults");
                self.note(round, format!("clear faults → {status}"));
            }
            Action::KillRedis => {
                c.redis.stop();
                self.count("redis kill");
                self.note(round, "redis-server killed".into());
            }
            Action::RestartRedis => {
                // Polls for PING with std sleeps: keep it off the async workers.
                tokio::task::block_in_place(|| c.redis.restart());
                self.note(round, "redis-server restarted".into());
            }
            Action::ExpireTokens => {
                let status = sim_call(c, Method::POST, "/_sim/expire-tokens").await;
                self.count("expire access tokens");
                self.note(round, format!("every access token expired → {status}"));
            }
            Action::AddAccount => self.add(c, round, rng).await,
            Action::RemoveAccount => self.remove(c, round, rng).await,
        }
    }

    async fn inject(
        &mut self,
        c: &TestCluster,
        round: u64,
        kind: FaultKind,
        trigger: Trigger,
        target: &str,
        delay_ms: u64,
    ) {
        let mut spec = json!({"fault": kind.as_str()});
        match trigger {
            Trigger::Count(n) => spec["count"] = json!(n),
            Trigger::Probability(p) => spec["probability"] = json!(p),
        }
        if target != ALL {
            spec["account"] = json!(target);
        }
        if kind == FaultKind::SlowFirstByte {
            spec["delay_ms"] = json!(delay_ms);
        }
        let status = c
            .http
            .post(format!("{}/_sim/faults", c.sim.base_url()))
            .json(&spec)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        assert_eq!(status, 200, "the simulator refused fault {spec}");
        for log in [&mut self.injected, &mut self.ever_injected] {
            log.entry(target.to_owned())
                .or_default()
                .insert(kind.as_str());
        }
        self.count(format!("fault {}", kind.as_str()));
        let how = match trigger {
            Trigger::Count(n) => format!("count {n}"),
            Trigger::Probability(p) => format!("probability {p}"),
        };
        self.note(
            round,
            format!("fault {} on {target} ({how})", kind.as_str()),
        );
    }

    async fn add(&mut self, c: &TestCluster, round: u64, rng: &mut StdRng) {
        // A never-used simulator account: with rotation on, an old one's configured
        // refresh token would have been rotated away.
        let index = self.next_index;
        self.next_index += 1;
        let creds = qgate_sim::credentials(index);
        let gateway = rng.random_range(0..c.nodes.len());
        let body = json!({
            "id": creds.account,
            "refresh_token": creds.refresh_token,
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        });
        let (status, answer) = c
            .admin(gateway, Method::POST, "/accounts", Some(body))
            .await;
        self.count(format!("account add → {status}"));
        if status == 201 {
            self.expected.insert(creds.account.clone());
            self.dynamic.push(creds.account.clone());
        }
        self.note(
            round,
            format!(
                "add {} on gateway {gateway} → {status} {}",
                creds.account,
                brief(&answer, status)
            ),
        );
    }

    async fn remove(&mut self, c: &TestCluster, round: u64, rng: &mut StdRng) {
        if self.dynamic.is_empty() {
            return;
        }
        let id = self.dynamic[rng.random_range(0..self.dynamic.len())].clone();
        let gateway = rng.random_range(0..c.nodes.len());
        let path = format!("/accounts/{id}?timeout_secs=2");
        let (status, answer) = c.admin(gateway, Method::DELETE, &path, None).await;
        self.count(format!("account remove → {status}"));
        if status == 200 {
            self.expected.remove(&id);
            self.dynamic.retain(|d| *d != id);
        }
        self.note(
            round,
            format!(
                "remove {id} on gateway {gateway} → {status} {}",
                brief(&answer, status)
            ),
        );
    }
}

fn brief(answer: &Value, status: u16) -> String {
    if (200..300).contains(&status) {
        String::new()
    } else {
        answer.to_string()
    }
}

async fn sim_call(c: &TestCluster, method: Method, path: &str) -> u16 {
    c.http
        .request(method, format!("{}{path}", c.sim.base_url()))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}
