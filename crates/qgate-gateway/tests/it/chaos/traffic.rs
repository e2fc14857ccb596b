//! Client workers: concurrent streaming and non-streaming requests through both gateways
//! until the round's deadline, every reply checked as it arrives.

use super::check::{Reply, check, snippet};
use super::plan::{Requests, Settings, WORKERS};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Longer than any scripted reply plus every failover: a request still open after this
/// is a hang, and counts as a violation.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(45);
/// Longest pause a worker takes on `retry-after`.
const RETRY_PAUSE_MAX: Duration = Duration::from_secs(1);
/// Bound on one worker's loop, whatever the clock says.
const MAX_REQUESTS_PER_WORKER: u64 = 100_000;

/// What the clients saw in one round.
#[derive(Debug, Default)]
pub struct Tally {
    /// Outcome label → count.
    pub outcomes: BTreeMap<String, u64>,
    /// Request kind → (sent, completed).
    pub by_ask: BTreeMap<String, (u64, u64)>,
    pub violations: Vec<String>,
}

impl Tally {
    pub fn total(&self) -> u64 {
        self.outcomes.values().sum::<u64>() + self.violations.len() as u64
    }

    pub fn merge(&mut self, other: Tally) {
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
        for (k, (sent, done)) in other.by_ask {
            let e = self.by_ask.entry(k).or_default();
            e.0 += sent;
            e.1 += done;
        }
        self.violations.extend(other.violations);
    }
}

/// Runs [`WORKERS`] workers against `gateways` until `deadline`.
pub async fn run(
    settings: Settings,
    round: u64,
    gateways: [String; 2],
    deadline: Instant,
    claude_code: Arc<Value>,
) -> Tally {
    // A client per round: dropping it closes its connections, so the server side's
    // connection tasks end and the task count after the round means something.
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("client");
    let mut workers = Vec::new();
    for worker in 0..WORKERS as u64 {
        let http = http.clone();
        let gateways = gateways.clone();
        let mut requests = Requests::new(&settings, round, worker, claude_code.clone());
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            for _ in 0..MAX_REQUESTS_PER_WORKER {
                if Instant::now() >= deadline {
                    break;
                }
                let request = requests.next(round);
                let url = format!("{}/v1/messages", gateways[request.gateway]);
                let result = send(&http, &url, &request.body, request.stream).await;
                let ask = format!("{:?}", request.ask);
                let entry = tally.by_ask.entry(ask.clone()).or_default();
                entry.0 += 1;
                let mut pause = None;
                let verdict = result.and_then(|reply| {
                    pause = reply
                        .retry_after
                        .as_deref()
                        .and_then(|s| s.parse::<u64>().ok());
                    check(&request, &reply).map_err(|e| format!("{e} — {}", snippet(&reply.body)))
                });
                match verdict {
                    Ok(outcome) => {
                        if matches!(outcome, super::check::Outcome::Complete { .. }) {
                            entry.1 += 1;
                        }
                        *tally.outcomes.entry(outcome.label()).or_default() += 1;
                        // As SDKs do: honour retry-after (capped), instead of measuring how
                        // fast an empty pool can say no.
                        if let Some(secs) = pause {
                            let wait = Duration::from_secs(secs).min(RETRY_PAUSE_MAX);
                            tokio::time::sleep_until(deadline.min(Instant::now() + wait)).await;
                        }
                    }
                    Err(why) => tally.violations.push(format!(
                        "request {:#x} ({ask}, stream {}, gateway {}): {why}",
                        request.id, request.stream, request.gateway
                    )),
                }
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for worker in workers {
        match worker.await {
            Ok(tally) => total.merge(tally),
            Err(err) => total
                .violations
                .push(format!("a client worker failed: {err}")),
        }
    }
    total
}

async fn send(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
    stream: bool,
) -> Result<Reply, String> {
    let mut body = body.clone();
    body["stream"] = json!(stream);
    let response = http
        .post(url)
        .header("x-api-key", "test")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("no response: {e} (timeout: {})", e.is_timeout()))?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let status = response.status().as_u16();
    let content_type = header("content-type").unwrap_or_default();
    let retry_after = header("retry-after");
    let body = response.text().await.map_err(|e| {
        format!(
            "{status}: the body broke off: {e} (timeout: {})",
            e.is_timeout()
        )
    })?;
    Ok(Reply {
        status,
        content_type,
        retry_after,
        body,
    })
}
