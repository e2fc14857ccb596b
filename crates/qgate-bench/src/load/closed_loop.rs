//! Closed loop: `concurrency` workers, each with its own keep-alive connection, send the
//! next request as soon as the previous reply ends, until the deadline. Measures capacity
//! at that concurrency; latency here is service time (the loop waits for the target, so it
//! is not the latency a client at a fixed rate would see: that is the open loop's job).

use super::{Recorder, Workload};
use crate::client::{Connection, ErrorKind, Observation, now_ns};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What one closed-loop run measured.
#[derive(Debug)]
pub struct ClosedLoopRun {
    pub recorder: Recorder,
    /// From the first send to the last reply.
    pub elapsed: Duration,
}

/// Runs `concurrency` workers for `duration` (requests in flight at the deadline finish).
pub async fn run(work: Arc<Workload>, concurrency: usize, duration: Duration) -> ClosedLoopRun {
    let next = Arc::new(AtomicU64::new(0));
    let started = now_ns();
    let deadline = started + duration.as_nanos() as u64;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let work = work.clone();
        let next = next.clone();
        workers.spawn(async move { worker(&work, &next, deadline).await });
    }
    let mut recorder = Recorder::new(work.names.len());
    while let Some(done) = workers.join_next().await {
        if let Ok(part) = done {
            recorder.merge(&part);
        } else {
            // A panicked worker would otherwise vanish from the counts.
            *recorder.errors.entry(ErrorKind::Transport).or_default() += 1;
        }
    }
    ClosedLoopRun {
        recorder,
        elapsed: Duration::from_nanos(now_ns().saturating_sub(started)),
    }
}

async fn worker(work: &Workload, next: &AtomicU64, deadline: u64) -> Recorder {
    let mut recorder = Recorder::new(work.names.len());
    let mut connection: Option<Connection> = None;
    while now_ns() < deadline {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let (scenario, call) = work.call(i);
        let started = now_ns();
        let open = match connection.take() {
            Some(c) if c.is_usable() => Ok(c),
            _ => Connection::open(work.endpoint.addr).await,
        };
        let observation = match open {
            Ok(mut c) => {
                let observation = c.call(&work.endpoint, call, started).await;
                if observation.error.is_none() {
                    connection = Some(c);
                }
                observation
            }
            Err(_) => Observation::failed(started, ErrorKind::Transport),
        };
        recorder.record(scenario, work.streams(scenario), &observation);
        if observation.error == Some(ErrorKind::Transport) {
            // A refused connection would otherwise spin through the deadline.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    recorder
}
