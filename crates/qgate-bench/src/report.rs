//! The report: every number the run measured, as JSON (for files and tools) and as
//! markdown tables (for people, see [`markdown`]). Latencies are in microseconds.
//!
//! "Added" latency of a relay is its percentile minus the direct target's same percentile
//! from the same run and phase: a difference of distributions, not a per-request pairing.

pub mod markdown;

use crate::client::ErrorKind;
use crate::load::Recorder;
use crate::load::streams::StreamsMemory;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Where and how the run happened.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub date: String,
    pub command: String,
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub qgate_binary: String,
    /// The simulator's command.
    pub simulator: String,
    pub nginx: Option<String>,
    pub accounts: usize,
    pub mix: Vec<String>,
    /// The open-file limit in force for the harness and its children.
    pub nofile_limit: u64,
    pub notes: Vec<String>,
}

/// p50/p90/p99/max/mean of a histogram of nanoseconds, in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Option<Percentiles> {
        if histogram.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1_000.0;
        Some(Percentiles {
            count: histogram.len(),
            p50_us: us(histogram.value_at_quantile(0.50)),
            p90_us: us(histogram.value_at_quantile(0.90)),
            p99_us: us(histogram.value_at_quantile(0.99)),
            max_us: us(histogram.max()),
            mean_us: histogram.mean() / 1_000.0,
        })
    }
}

/// CPU spent during a phase, per completed request, and as cores busy on average.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Cpu {
    /// The relay's processes (none for the direct target).
    pub relay_us_per_request: Option<f64>,
    pub sim_us_per_request: f64,
    pub client_us_per_request: f64,
    pub relay_cores: Option<f64>,
    pub sim_cores: f64,
    pub client_cores: f64,
}

/// CPU time deltas of one target's phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSpent {
    pub relay: Option<Duration>,
    pub sim: Duration,
    pub client: Duration,
}

impl CpuSpent {
    pub fn add(&mut self, other: CpuSpent) {
        self.relay = match (self.relay, other.relay) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.sim += other.sim;
        self.client += other.client;
    }

    pub fn per_request(&self, requests: u64, wall: Duration) -> Cpu {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / requests.max(1) as f64;
        let cores = |d: Duration| d.as_secs_f64() / wall.as_secs_f64().max(1e-9);
        Cpu {
            relay_us_per_request: self.relay.map(per),
            sim_us_per_request: per(self.sim),
            client_us_per_request: per(self.client),
            relay_cores: self.relay.map(cores),
            sim_cores: cores(self.sim),
            client_cores: cores(self.client),
        }
    }
}

/// One target in one phase.
#[derive(Debug, Clone, Serialize)]
pub struct TargetResult {
    pub target: String,
    pub requests: u64,
    pub ok: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
    pub error_total: u64,
    pub throughput_rps: f64,
    pub latency: Option<Percentiles>,
    pub ttft: Option<Percentiles>,
    pub chunk_relay: Option<Percentiles>,
    /// Open loop only: how late the harness itself sent.
    pub send_lag: Option<Percentiles>,
    pub per_scenario: BTreeMap<String, Percentiles>,
    pub cpu: Cpu,
}

impl TargetResult {
    pub fn new(
        target: &str,
        recorder: &Recorder,
        names: &[String],
        wall: Duration,
        cpu: CpuSpent,
    ) -> TargetResult {
        let requests = recorder.ok + recorder.error_count();
        TargetResult {
            target: target.to_owned(),
            requests,
            ok: recorder.ok,
            errors: recorder.errors.clone(),
            error_total: recorder.error_count(),
            throughput_rps: recorder.ok as f64 / wall.as_secs_f64().max(1e-9),
            latency: Percentiles::of(&recorder.latency),
            ttft: Percentiles::of(&recorder.ttft),
            chunk_relay: Percentiles::of(&recorder.chunk),
            send_lag: Percentiles::of(&recorder.send_lag),
            per_scenario: names
                .iter()
                .zip(&recorder.per_scenario)
                .filter_map(|(name, h)| Some((name.clone(), Percentiles::of(h)?)))
                .collect(),
            cpu: cpu.per_request(requests, wall),
        }
    }
}

/// A relay's percentiles minus the direct target's, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Added {
    pub target: String,
    pub latency_p50_us: Option<f64>,
    pub latency_p90_us: Option<f64>,
    pub latency_p99_us: Option<f64>,
    pub ttft_p50_us: Option<f64>,
    pub ttft_p99_us: Option<f64>,
    pub chunk_p50_us: Option<f64>,
    pub chunk_p99_us: Option<f64>,
}

/// One measured phase over every target.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub name: String,
    /// `open loop at 500 rps`, `closed loop at concurrency 16`, ...
    pub shape: String,
    pub duration_s: f64,
    pub targets: Vec<TargetResult>,
    pub added: Vec<Added>,
    /// qgate's CPU per request over nginx's.
    pub cpu_ratio_qgate_over_nginx: Option<f64>,
}

impl PhaseReport {
    pub fn new(name: &str, shape: String, duration: Duration, targets: Vec<TargetResult>) -> Self {
        let direct = targets.iter().find(|t| t.target == "direct");
        let added = match direct {
            Some(direct) => targets
                .iter()
                .filter(|t| t.target != "direct")
                .map(|t| added_over(t, direct))
                .collect(),
            None => Vec::new(),
        };
        let relay_cpu = |name: &str| {
            targets
                .iter()
                .find(|t| t.target == name)
                .and_then(|t| t.cpu.relay_us_per_request)
        };
        let cpu_ratio_qgate_over_nginx = match (relay_cpu("qgate"), relay_cpu("nginx")) {
            (Some(q), Some(n)) if n > 0.0 => Some(q / n),
            _ => None,
        };
        PhaseReport {
            name: name.to_owned(),
            shape,
            duration_s: duration.as_secs_f64(),
            targets,
            added,
            cpu_ratio_qgate_over_nginx,
        }
    }
}

fn added_over(relay: &TargetResult, direct: &TargetResult) -> Added {
    let diff = |a: Option<Percentiles>, b: Option<Percentiles>, pick: fn(&Percentiles) -> f64| {
        Some(pick(&a?) - pick(&b?))
    };
    Added {
        target: relay.target.clone(),
        latency_p50_us: diff(relay.latency, direct.latency, |p| p.p50_us),
        latency_p90_us: diff(relay.latency, direct.latency, |p| p.p90_us),
        latency_p99_us: diff(relay.latency, direct.latency, |p| p.p99_us),
        ttft_p50_us: diff(relay.ttft, direct.ttft, |p| p.p50_us),
        ttft_p99_us: diff(relay.ttft, direct.ttft, |p| p.p99_us),
        chunk_p50_us: diff(relay.chunk_relay, direct.chunk_relay, |p| p.p50_us),
        chunk_p99_us: diff(relay.chunk_relay, direct.chunk_relay, |p| p.p99_us),
    }
}

/// CPU per request of a relay for 20- and 200-frame replies, and what each extra frame costs.
#[derive(Debug, Clone, Serialize)]
pub struct FrameCost {
    pub target: String,
    pub cpu_us_per_request_20_frames: f64,
    pub cpu_us_per_request_200_frames: f64,
    pub cpu_us_per_extra_frame: f64,
}

/// Resident memory.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Memory {
    /// qgate after start and warm-up, with nothing in flight.
    pub qgate_idle_rss_kib: Option<u64>,
    /// qgate after every load phase, with nothing in flight.
    pub qgate_after_load_rss_kib: Option<u64>,
    /// qgate `settle_secs` after the load phases, still idle.
    pub qgate_settled_rss_kib: Option<u64>,
    pub settle_secs: f64,
    /// qgate `settle_secs` after the held streams ended (read to the end), idle again.
    pub qgate_after_streams_rss_kib: Option<u64>,
    pub nginx_idle_rss_kib: Option<u64>,
    pub streams: Vec<(String, StreamsMemory)>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub meta: Meta,
    pub warmup_errors: u64,
    pub phases: Vec<PhaseReport>,
    pub frame_cost: Vec<FrameCost>,
    pub memory: Memory,
    /// Errors in every measured phase and the streams phase (must be zero).
    pub errors_total: u64,
}

impl Report {
    pub fn count_errors(&mut self) {
        let phases: u64 = self
            .phases
            .iter()
            .flat_map(|p| &p.targets)
            .map(|t| t.error_total)
            .sum();
        let streams: u64 = self.memory.streams.iter().map(|(_, s)| s.errors).sum();
        self.errors_total = phases + streams + self.warmup_errors;
    }
}
