//! What the soak will do, decided up front from the seed: how long, how many rounds, the
//! chaos schedule of each round, and the requests each client worker sends.
//!
//! The plan is deterministic for a seed; the interleaving of concurrent requests with the
//! schedule is not (two cores, real sockets), which is why every check is an invariant
//! that must hold whatever the interleaving.

use qgate_sim::FaultKind;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Accounts configured through the environment on both gateways (`sim-1` … `sim-4`).
pub const CONFIGURED: usize = 4;
/// Client workers, spread over the two gateways.
pub const WORKERS: usize = 12;
/// Longest round: long soaks run many rounds, each checked on its own.
const MAX_ROUND_SECS: u64 = 30;
/// The short soak's traffic time (two rounds), sized so setup, settling and checks fit
/// in a minute on a 2-core machine.
const DEFAULT_SECS: u64 = 24;
const DEFAULT_SEED: u64 = 0x00c4_a05e;

/// `QGATE_CHAOS_SEED` and `QGATE_CHAOS_SECS`, or the defaults.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub seed: u64,
    /// Seconds of traffic over all rounds (settling and checks come on top).
    pub secs: u64,
}

impl Settings {
    pub fn from_env() -> Settings {
        let read = |name: &str| {
            std::env::var(name).ok().map(|v| {
                let v = v.trim();
                v.strip_prefix("0x")
                    .map(|hex| u64::from_str_radix(hex, 16))
                    .unwrap_or_else(|| v.parse())
                    .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
            })
        };
        Settings {
            seed: read("QGATE_CHAOS_SEED").unwrap_or(DEFAULT_SEED),
            secs: read("QGATE_CHAOS_SECS").unwrap_or(DEFAULT_SECS).max(4),
        }
    }

    /// At least two rounds, so the second can be compared with the first.
    pub fn rounds(&self) -> u64 {
        self.secs.div_ceil(MAX_ROUND_SECS).max(2)
    }

    pub fn round_length(&self) -> Duration {
        Duration::from_millis(self.secs * 1000 / self.rounds())
    }

    /// A generator for one purpose (`stream` apart) of one round.
    pub fn rng(&self, round: u64, stream: u64) -> StdRng {
        StdRng::seed_from_u64(
            self.seed ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ stream.rotate_left(32),
        )
    }
}

/// How often an injected fault fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    Count(u32),
    Probability(f64),
}

/// One thing the chaos driver does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `targeted`: one account picked among those present when it runs; else every account.
    Fault {
        kind: FaultKind,
        trigger: Trigger,
        targeted: bool,
        delay_ms: u64,
    },
    ClearFaults,
    KillRedis,
    RestartRedis,
    ExpireTokens,
    AddAccount,
    RemoveAccount,
}

/// Faults that leave an account in a state only an operator lifts.
pub fn is_lasting(kind: FaultKind) -> bool {
    lasting_state(kind).is_some()
}

/// The account state a fault kind leads to when it does not heal by itself.
pub fn lasting_state(kind: FaultKind) -> Option<&'static str> {
    match kind {
        FaultKind::Suspended => Some("suspended"),
        FaultKind::MonthlyQuota | FaultKind::Quota402 => Some("quota_exhausted"),
        FaultKind::RefreshInvalidGrant => Some("refresh_denied"),
        FaultKind::Throttle
        | FaultKind::ExpiredToken
        | FaultKind::InvalidModel
        | FaultKind::Overloaded
        | FaultKind::Unavailable
        | FaultKind::SlowFirstByte
        | FaultKind::MidstreamException
        | FaultKind::MidstreamReset
        | FaultKind::BadCrc
        | FaultKind::Refresh5xx => None,
    }
}

/// The round's schedule, sorted by time from the round's start.
pub fn schedule(settings: &Settings, round: u64) -> Vec<(Duration, Action)> {
    let mut rng = settings.rng(round, 1);
    let length = settings.round_length().as_millis() as u64;
    let at = |rng: &mut StdRng, from: f64, to: f64| {
        Duration::from_millis(
            rng.random_range((length as f64 * from) as u64..=(length as f64 * to) as u64),
        )
    };
    let mut plan = Vec::new();
    // Every kind at least once per round, then as many random extras as seconds / 2.
    let mut kinds: Vec<FaultKind> = FaultKind::ALL.to_vec();
    kinds.shuffle(&mut rng);
    let extras = length / 2000;
    for _ in 0..extras {
        let transient: Vec<FaultKind> = FaultKind::ALL
            .into_iter()
            .filter(|k| !is_lasting(*k))
            .collect();
        kinds.push(transient[rng.random_range(0..transient.len())]);
    }
    for kind in kinds {
        let time = at(&mut rng, 0.0, 0.8);
        plan.push((time, fault(&mut rng, kind)));
    }
    // Probability faults fire until cleared: clear every few seconds.
    let mut clear = 2500 + rng.random_range(0..1500);
    while clear < length {
        plan.push((Duration::from_millis(clear), Action::ClearFaults));
        clear += 2500 + rng.random_range(0..1500);
    }
    for _ in 0..(length / 15_000).max(1) {
        let kill = at(&mut rng, 0.1, 0.7);
        let down = Duration::from_millis(rng.random_range(500..=2500));
        plan.push((kill, Action::KillRedis));
        plan.push((kill + down, Action::RestartRedis));
    }
    for _ in 0..(length / 8_000).max(1) {
        plan.push((at(&mut rng, 0.0, 0.9), Action::ExpireTokens));
    }
    for _ in 0..(length / 6_000).max(1) {
        plan.push((at(&mut rng, 0.0, 0.6), Action::AddAccount));
    }
    for _ in 0..(length / 10_000).max(1) {
        plan.push((at(&mut rng, 0.3, 0.9), Action::RemoveAccount));
    }
    plan.sort_by_key(|(time, _)| *time);
    plan
}

fn fault(rng: &mut StdRng, kind: FaultKind) -> Action {
    let lasting = is_lasting(kind);
    let trigger = if lasting || rng.random_bool(0.5) {
        Trigger::Count(if lasting { 1 } else { rng.random_range(1..=4) })
    } else {
        Trigger::Probability((rng.random_range(5..=30) as f64) / 100.0)
    };
    Action::Fault {
        kind,
        trigger,
        // Lasting faults on every account at once would only measure an empty pool.
        targeted: lasting || rng.random_bool(0.5),
        // Around the gateway's 1 s first-event timeout: some wait, some fail over.
        delay_ms: rng.random_range(300..=1500),
    }
}

/// Dynamic accounts the plan may add over the whole soak (the simulator needs them all).
pub fn max_added(settings: &Settings) -> usize {
    (0..settings.rounds())
        .map(|round| {
            schedule(settings, round)
                .iter()
                .filter(|(_, a)| *a == Action::AddAccount)
                .count()
        })
        .sum()
}

/// What a request asks for, so its reply can be checked against it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    Text,
    /// A scripted tool call whose input is `{"req": id}`.
    Tool,
    Thinking,
    /// Paced frames.
    Slow,
    /// A recorded Claude Code first turn (~80 KB, 24 tools, adaptive thinking).
    ClaudeCode,
    /// ~200 KB of prompt text.
    Huge,
}

/// One request a worker sends.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: u64,
    pub ask: Ask,
    pub stream: bool,
    pub gateway: usize,
    pub body: Value,
}

/// Builds requests for one worker; bodies differ by id so replies differ too.
pub struct Requests {
    rng: StdRng,
    worker: u64,
    sent: u64,
    claude_code: Arc<Value>,
}

impl Requests {
    pub fn new(settings: &Settings, round: u64, worker: u64, claude_code: Arc<Value>) -> Self {
        Requests {
            rng: settings.rng(round, 100 + worker),
            worker,
            sent: 0,
            claude_code,
        }
    }

    pub fn next(&mut self, round: u64) -> Request {
        self.sent += 1;
        let id = (round << 40) | (self.worker << 24) | self.sent;
        let roll = self.rng.random_range(0..100);
        let ask = match roll {
            0..35 => Ask::Text,
            35..55 => Ask::Tool,
            55..70 => Ask::Thinking,
            70..87 => Ask::Slow,
            87..97 => Ask::ClaudeCode,
            _ => Ask::Huge,
        };
        let words = self.rng.random_range(3..=30);
        let chunk = self.rng.random_range(1..=3);
        let user = format!("user-{}", self.rng.random_range(0..6));
        let body = match ask {
            Ask::Text => simple(&format!("chaos {id} [[sim words={words} chunk={chunk}]]")),
            Ask::Tool => {
                let mut b = simple(&format!(
                    "chaos {id} run it [[sim tool=Bash input={{\"req\": {id}}}]]"
                ));
                b["tools"] = json!([{
                    "name": "Bash",
                    "description": "Runs a shell command",
                    "input_schema": {"type": "object", "properties": {"req": {"type": "integer"}}}
                }]);
                b
            }
            Ask::Thinking => {
                let mut b = simple(&format!("chaos {id} think [[sim words={words}]]"));
                b["max_tokens"] = json!(4096);
                b["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
                b
            }
            Ask::Slow => {
                let delay = self.rng.random_range(20..=150);
                let first = self.rng.random_range(0..=400);
                simple(&format!(
                    "chaos {id} slowly [[sim words={} delay_ms={delay} first_ms={first}]]",
                    words.min(12)
                ))
            }
            Ask::ClaudeCode => {
                let mut b = (*self.claude_code).clone();
                b["messages"] = json!([{"role": "user", "content": format!("chaos {id} [[sim words={words}]]")}]);
                b
            }
            Ask::Huge => simple(&format!(
                "chaos {id} {} [[sim words={words}]]",
                "a large body of text ".repeat(10_000)
            )),
        };
        let mut body = body;
        body["metadata"] = json!({"user_id": user});
        Request {
            id,
            ask,
            stream: self.rng.random_bool(0.5),
            gateway: self.rng.random_range(0..2),
            body,
        }
    }
}

fn simple(text: &str) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": text}]
    })
}

/// The recorded Claude Code first turn's request body, without `stream` (set per request).
pub fn claude_code_body() -> Arc<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/claude-code/first-turn.json");
    let text = std::fs::read_to_string(&path).expect("the Claude Code fixture");
    let mut recorded: Value = serde_json::from_str(&text).expect("fixture JSON");
    let mut body = recorded["body"].take();
    if let Some(map) = body.as_object_mut() {
        map.remove("stream");
    }
    Arc::new(body)
}
