//! Measuring one phase over every target: rounds that interleave the targets, CPU read
//! from `/proc` around each target's slice (its relay, the simulator, this harness), and
//! the per-target results folded into a [`PhaseReport`].

use super::{REQUEST_TIMEOUT, Settings};
use crate::client::Endpoint;
use crate::load::{Recorder, Workload, closed_loop, open_loop};
use crate::mix::{self, Prepared};
use crate::proc_stats::{self, Usage};
use crate::report::{CpuSpent, PhaseReport, TargetResult};
use crate::targets::Relay;
use anyhow::Result;
use std::sync::Arc;
use std::time::Duration;

/// Open-loop requests in flight at once, per target: far above what the rates we run
/// need, so it only bounds a target that has stopped answering.
const REQUESTS_IN_FLIGHT_CAP: usize = 4096;
/// Unmeasured run of a mix a target has not seen yet.
const WARM_NEW_MIX: Duration = Duration::from_millis(300);

/// A target with its workload.
#[derive(Debug)]
pub struct Target<'a> {
    pub name: &'static str,
    pub work: Arc<Workload>,
    /// nginx or qgate; `None` for the simulator directly.
    pub relay: Option<&'a Relay>,
}

impl<'a> Target<'a> {
    pub fn new(
        name: &'static str,
        endpoint: Endpoint,
        relay: Option<&'a Relay>,
        prepared: &[Prepared],
        order: &[usize],
    ) -> Target<'a> {
        let work = Workload::new(endpoint, prepared, order.to_vec(), REQUEST_TIMEOUT);
        Target {
            name,
            work: Arc::new(work),
            relay,
        }
    }

    /// The relay's processes (none for direct).
    pub fn pids(&self) -> Vec<u32> {
        self.relay.map(Relay::pids).unwrap_or_default()
    }

    /// The same target with another mix.
    pub fn with_mix(&self, prepared: &[Prepared]) -> Target<'a> {
        let order = mix::weighted_order(prepared);
        Target::new(
            self.name,
            self.work.endpoint.clone(),
            self.relay,
            prepared,
            &order,
        )
    }
}

/// CPU readings of everything involved in one target's slice.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    relay: Option<Usage>,
    sim: Usage,
    client: Usage,
}

fn snapshot(target: &Target<'_>, sim_pid: u32) -> Result<Snapshot> {
    let relay = match target.relay {
        Some(relay) => Some(proc_stats::read(&relay.pids())?),
        None => None,
    };
    Ok(Snapshot {
        relay,
        sim: proc_stats::read(&[sim_pid])?,
        client: proc_stats::own()?,
    })
}

fn spent(before: Snapshot, after: Snapshot) -> CpuSpent {
    CpuSpent {
        relay: match (before.relay, after.relay) {
            (Some(b), Some(a)) => Some(a.cpu.saturating_sub(b.cpu)),
            _ => None,
        },
        sim: after.sim.cpu.saturating_sub(before.sim.cpu),
        client: after.client.cpu.saturating_sub(before.client.cpu),
    }
}

/// What one target accumulated over the rounds of a phase.
#[derive(Debug)]
struct Tally {
    recorder: Recorder,
    wall: Duration,
    cpu: CpuSpent,
}

async fn in_rounds<F, Fut>(
    settings: &Settings,
    list: &[Target<'_>],
    sim_pid: u32,
    mut slice: F,
) -> Result<Vec<TargetResult>>
where
    F: FnMut(Arc<Workload>, Duration) -> Fut,
    Fut: Future<Output = (Recorder, Duration)>,
{
    let per_round = settings.duration / settings.rounds;
    let mut tallies: Vec<Tally> = list
        .iter()
        .map(|t| Tally {
            recorder: Recorder::new(t.work.names.len()),
            wall: Duration::ZERO,
            cpu: CpuSpent::default(),
        })
        .collect();
    for _ in 0..settings.rounds {
        for (target, tally) in list.iter().zip(tallies.iter_mut()) {
            let before = snapshot(target, sim_pid)?;
            let (recorder, wall) = slice(target.work.clone(), per_round).await;
            let after = snapshot(target, sim_pid)?;
            tally.recorder.merge(&recorder);
            tally.wall += wall;
            tally.cpu.add(spent(before, after));
        }
    }
    Ok(list
        .iter()
        .zip(&tallies)
        .map(|(target, tally)| {
            TargetResult::new(
                target.name,
                &tally.recorder,
                &target.work.names,
                tally.wall,
                tally.cpu,
            )
        })
        .collect())
}

/// The mix at a fixed rate on every target.
pub async fn open_phase(
    settings: &Settings,
    list: &[Target<'_>],
    sim_pid: u32,
) -> Result<PhaseReport> {
    let rate = settings.rate;
    let warm = settings.concurrency;
    let results = in_rounds(settings, list, sim_pid, |work, duration| async move {
        let run = open_loop::run(work, rate, duration, REQUESTS_IN_FLIGHT_CAP, warm).await;
        (run.recorder, run.elapsed)
    })
    .await?;
    Ok(PhaseReport::new(
        "open",
        format!("open loop at {rate} req/s"),
        settings.duration,
        results,
    ))
}

/// The targets' mix at a fixed concurrency on every target; `warm` first runs each
/// briefly unmeasured (for a mix the targets have not seen yet).
pub async fn closed_phase(
    settings: &Settings,
    list: &[Target<'_>],
    sim_pid: u32,
    name: &str,
    warm: bool,
) -> Result<PhaseReport> {
    let concurrency = settings.concurrency;
    if warm {
        for target in list {
            let _ = closed_loop::run(target.work.clone(), concurrency, WARM_NEW_MIX).await;
        }
    }
    let results = in_rounds(settings, list, sim_pid, |work, duration| async move {
        let run = closed_loop::run(work, concurrency, duration).await;
        (run.recorder, run.elapsed)
    })
    .await?;
    Ok(PhaseReport::new(
        name,
        format!("closed loop at concurrency {concurrency}"),
        settings.duration,
        results,
    ))
}
