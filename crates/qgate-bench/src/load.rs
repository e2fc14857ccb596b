//! Load generation against one target: what to send ([`Workload`]), what was seen
//! ([`Recorder`]), and the ways of sending it: [`open_loop`] (fixed rate, latency from the
//! intended send time), [`closed_loop`] (fixed concurrency) and [`streams`] (K streams held
//! open at once, for memory).

pub mod closed_loop;
pub mod open_loop;
pub mod streams;

use crate::client::{Call, Endpoint, ErrorKind, Observation, Protocol};
use crate::mix::Prepared;
use bytes::Bytes;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

/// Histograms hold nanoseconds up to this (a minute); larger values are clamped.
const HISTOGRAM_MAX_NS: u64 = 60_000_000_000;

/// The requests one target gets, in a fixed order shared by all targets.
#[derive(Debug)]
pub struct Workload {
    pub endpoint: Endpoint,
    /// Per scenario: body in this target's protocol, and whether the client streams it.
    pub bodies: Vec<(Bytes, bool)>,
    pub names: Vec<String>,
    /// Scenario index of request `i` is `order[i % order.len()]`.
    pub order: Vec<usize>,
    pub timeout: Duration,
}

impl Workload {
    pub fn new(endpoint: Endpoint, mix: &[Prepared], order: Vec<usize>, timeout: Duration) -> Self {
        let bodies = mix
            .iter()
            .map(|p| {
                let body = match endpoint.protocol {
                    Protocol::AmazonQ => p.amazonq.clone(),
                    Protocol::Anthropic => p.anthropic.clone(),
                };
                (body, p.scenario.stream)
            })
            .collect();
        Workload {
            endpoint,
            bodies,
            names: mix.iter().map(|p| p.scenario.name.clone()).collect(),
            order,
            timeout,
        }
    }

    /// Scenario index and call of request `i`.
    pub fn call(&self, i: u64) -> (usize, Call<'_>) {
        let scenario = self
            .order
            .get((i % self.order.len().max(1) as u64) as usize)
            .copied()
            .unwrap_or(0);
        let (body, stream) = &self.bodies[scenario];
        (
            scenario,
            Call {
                body,
                stream: *stream,
                timeout: self.timeout,
            },
        )
    }

    /// Whether scenario `index` is a streamed one (time to first token applies).
    pub fn streams(&self, index: usize) -> bool {
        self.bodies.get(index).is_some_and(|(_, stream)| *stream)
    }
}

/// Everything measured for one target in one phase.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Whole request, from (intended) send to the last byte.
    pub latency: Histogram<u64>,
    /// To the first text or tool content, streamed scenarios only.
    pub ttft: Histogram<u64>,
    /// Receive time minus the simulator's stamp, per text chunk.
    pub chunk: Histogram<u64>,
    /// Open loop: how late the harness sent relative to the schedule.
    pub send_lag: Histogram<u64>,
    pub per_scenario: Vec<Histogram<u64>>,
    pub ok: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
}

/// Three significant digits over 1 ns ..= 60 s.
fn histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, 3) {
        Ok(histogram) => histogram,
        Err(e) => unreachable!("constant histogram bounds are valid: {e}"),
    }
}

impl Recorder {
    pub fn new(scenarios: usize) -> Recorder {
        Recorder {
            latency: histogram(),
            ttft: histogram(),
            chunk: histogram(),
            send_lag: histogram(),
            per_scenario: (0..scenarios).map(|_| histogram()).collect(),
            ok: 0,
            errors: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, scenario: usize, streamed: bool, observation: &Observation) {
        if let Some(error) = observation.error {
            *self.errors.entry(error).or_default() += 1;
            return;
        }
        self.ok += 1;
        let latency = observation
            .finished_ns
            .saturating_sub(observation.started_ns);
        self.latency.saturating_record(latency.max(1));
        if let Some(histogram) = self.per_scenario.get_mut(scenario) {
            histogram.saturating_record(latency.max(1));
        }
        if streamed && let Some(first) = observation.first_content_ns {
            self.ttft
                .saturating_record(first.saturating_sub(observation.started_ns).max(1));
        }
        for delay in &observation.chunk_delays_ns {
            self.chunk.saturating_record((*delay).max(1));
        }
    }

    pub fn record_lag(&mut self, lag_ns: u64) {
        self.send_lag.saturating_record(lag_ns.max(1));
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.ttft.add(&other.ttft);
        let _ = self.chunk.add(&other.chunk);
        let _ = self.send_lag.add(&other.send_lag);
        for (mine, theirs) in self.per_scenario.iter_mut().zip(&other.per_scenario) {
            let _ = mine.add(theirs);
        }
        self.ok += other.ok;
        for (kind, count) in &other.errors {
            *self.errors.entry(*kind).or_default() += count;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observation(latency: u64, error: Option<ErrorKind>) -> Observation {
        Observation {
            started_ns: 1_000,
            finished_ns: 1_000 + latency,
            first_content_ns: Some(1_500),
            chunk_delays_ns: vec![40, 60],
            error,
        }
    }

    #[test]
    fn records_successes_and_counts_errors_apart() {
        let mut a = Recorder::new(2);
        a.record(0, true, &observation(10_000, None));
        a.record(1, false, &observation(20_000, None));
        let mut b = Recorder::new(2);
        b.record(1, false, &observation(5, Some(ErrorKind::Status)));
        a.merge(&b);
        assert_eq!(a.ok, 2);
        assert_eq!(a.error_count(), 1);
        assert_eq!(a.latency.len(), 2);
        assert_eq!(a.ttft.len(), 1, "only the streamed scenario has a TTFT");
        assert_eq!(a.chunk.len(), 4);
        assert_eq!(a.per_scenario[1].len(), 1);
        assert!(a.latency.max() >= 19_990);
    }
}
