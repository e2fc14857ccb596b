//! K streams held open at once, to read what each costs in memory: K streaming requests
//! whose reply starts only after a long `first_ms`, each on its own connection. When the
//! simulator reports all K in flight (so every one has passed through the relay), the
//! relay's RSS is read; then every stream is read to its end and judged like any other
//! request, so "held with zero errors" is checked, not assumed.

use super::{Recorder, Workload};
use crate::client::{Connection, ErrorKind, Observation, now_ns};
use crate::proc_stats;
use crate::targets::sim_in_flight;
use anyhow::Result;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Connections being opened at once: a burst of thousands of SYNs overflows listen
/// backlogs and turns into one-second retransmits.
const CONNECT_PARALLELISM: usize = 128;
const POLL: Duration = Duration::from_millis(100);

/// Memory with K streams open.
#[derive(Debug, Clone, Serialize)]
pub struct StreamsMemory {
    pub streams: usize,
    pub rss_before_kib: u64,
    /// RSS once all K were in flight at the simulator.
    pub rss_open_kib: u64,
    /// RSS growth divided by the streams in flight when it was read.
    pub per_stream_kib: f64,
    /// From the first connect until the peak was reached.
    pub ramp_s: f64,
    /// The most the simulator saw in flight at once.
    pub peak_in_flight: u64,
    pub ok: u64,
    pub errors: u64,
}

/// Opens `k` streams of `work`'s first scenario (which must hold them with `first_ms`)
/// against the relay whose processes are `pids`.
pub async fn run(
    work: Arc<Workload>,
    k: usize,
    pids: &[u32],
    sim: SocketAddr,
    hold: Duration,
) -> Result<(StreamsMemory, Recorder)> {
    let before = proc_stats::read(pids)?;
    let started = now_ns();
    let connecting = Arc::new(Semaphore::new(CONNECT_PARALLELISM));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..k as u64 {
        let work = work.clone();
        let connecting = connecting.clone();
        tasks.spawn(async move {
            let (scenario, call) = work.call(i);
            let started = now_ns();
            let connection = {
                let _permit = connecting.acquire().await;
                Connection::open(work.endpoint.addr).await
            };
            let observation = match connection {
                Ok(mut connection) => connection.call(&work.endpoint, call, started).await,
                Err(_) => Observation::failed(started, ErrorKind::Transport),
            };
            (scenario, observation)
        });
    }
    let mut control = Connection::open(sim).await?;
    let deadline = tokio::time::Instant::now() + hold;
    let mut peak = 0;
    let mut open = before;
    let mut peak_at = started;
    while tokio::time::Instant::now() < deadline {
        let in_flight = sim_in_flight(&mut control, sim).await.unwrap_or(0);
        if in_flight > peak {
            peak = in_flight;
            peak_at = now_ns();
            open = proc_stats::read(pids)?;
        }
        if in_flight >= k as u64 {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let mut recorder = Recorder::new(work.names.len());
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((scenario, observation)) => {
                recorder.record(scenario, work.streams(scenario), &observation);
            }
            Err(_) => *recorder.errors.entry(ErrorKind::Transport).or_default() += 1,
        }
    }
    let grown = open.rss_kib.saturating_sub(before.rss_kib);
    Ok((
        StreamsMemory {
            streams: k,
            rss_before_kib: before.rss_kib,
            rss_open_kib: open.rss_kib,
            per_stream_kib: grown as f64 / peak.max(1) as f64,
            ramp_s: peak_at.saturating_sub(started) as f64 / 1e9,
            peak_in_flight: peak,
            ok: recorder.ok,
            errors: recorder.error_count(),
        },
        recorder,
    ))
}
