//! Open loop: request `i` is due at `start + i / rate`, whatever happened to earlier ones,
//! and its latency counts from that intended time. A target that stalls therefore pays for
//! every request that queued behind the stall (no coordinated omission).
//!
//! The schedule runs on its own OS thread with `nanosleep` (tokio's timer has millisecond
//! granularity, which would add up to a millisecond of harness delay to a sub-millisecond
//! measurement). Each due request becomes a task on the runtime that takes an idle
//! keep-alive connection or opens one; how late tasks start is recorded as `send_lag`, so
//! the harness's own delay is visible next to the targets'.

use super::{Recorder, Workload};
use crate::client::{Connection, ErrorKind, Observation, now_ns};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// What one open-loop run measured.
#[derive(Debug)]
pub struct OpenLoopRun {
    pub recorder: Recorder,
    /// From the first intended send to the last reply.
    pub elapsed: Duration,
}

/// Keep-alive connections shared by the request tasks.
#[derive(Debug)]
struct Pool {
    idle: Mutex<Vec<Connection>>,
    /// Caps requests in flight; a request waiting here is late, and that counts.
    in_flight: Semaphore,
}

impl Pool {
    fn take(&self) -> Option<Connection> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while let Some(connection) = idle.pop() {
            if connection.is_usable() {
                return Some(connection);
            }
        }
        None
    }

    fn put(&self, connection: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(connection);
    }

    async fn call(&self, work: &Workload, i: u64, intended: u64) -> (usize, Observation) {
        let (scenario, call) = work.call(i);
        let Ok(_permit) = self.in_flight.acquire().await else {
            return (
                scenario,
                Observation::failed(intended, ErrorKind::Transport),
            );
        };
        let connection = match self.take() {
            Some(connection) => Ok(connection),
            None => Connection::open(work.endpoint.addr).await,
        };
        let observation = match connection {
            Ok(mut connection) => {
                let observation = connection.call(&work.endpoint, call, intended).await;
                if observation.error.is_none() && connection.is_usable() {
                    self.put(connection);
                }
                observation
            }
            Err(_) => Observation::failed(intended, ErrorKind::Transport),
        };
        (scenario, observation)
    }
}

/// Sends `rate` requests per second for `duration`; at most `max_in_flight` at once;
/// `warm_connections` are opened before the clock starts.
pub async fn run(
    work: Arc<Workload>,
    rate: f64,
    duration: Duration,
    max_in_flight: usize,
    warm_connections: usize,
) -> OpenLoopRun {
    let pool = Arc::new(Pool {
        idle: Mutex::new(Vec::new()),
        in_flight: Semaphore::new(max_in_flight.max(1)),
    });
    for _ in 0..warm_connections {
        if let Ok(connection) = Connection::open(work.endpoint.addr).await {
            pool.put(connection);
        }
    }
    let rate = rate.max(0.001);
    let scheduled = (rate * duration.as_secs_f64()).round() as u64;
    let interval_ns = 1e9 / rate;
    let (results, mut received) = mpsc::unbounded_channel::<(usize, Observation, u64)>();
    let runtime = tokio::runtime::Handle::current();
    // A little head room so the first sends are not late by construction.
    let start = now_ns() + 5_000_000;
    let dispatch_work = work.clone();
    let dispatcher = std::thread::spawn(move || {
        for i in 0..scheduled {
            let intended = start + (i as f64 * interval_ns) as u64;
            let now = now_ns();
            if intended > now {
                std::thread::sleep(Duration::from_nanos(intended - now));
            }
            let work = dispatch_work.clone();
            let pool = pool.clone();
            let results = results.clone();
            runtime.spawn(async move {
                let lag = now_ns().saturating_sub(intended);
                let (scenario, observation) = pool.call(&work, i, intended).await;
                let _ = results.send((scenario, observation, lag));
            });
        }
    });
    let mut recorder = Recorder::new(work.names.len());
    // The channel closes when the dispatcher and every request task have dropped their
    // senders, i.e. when the last reply is in.
    while let Some((scenario, observation, lag)) = received.recv().await {
        recorder.record(scenario, work.streams(scenario), &observation);
        recorder.record_lag(lag);
    }
    let seen = recorder.ok + recorder.error_count();
    if dispatcher.join().is_err() || seen < scheduled {
        *recorder.errors.entry(ErrorKind::Transport).or_default() +=
            scheduled - seen.min(scheduled);
    }
    OpenLoopRun {
        recorder,
        elapsed: Duration::from_nanos(now_ns().saturating_sub(start)),
    }
}
