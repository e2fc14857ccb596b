//! Worker-thread gauges, read at scrape time: open connections, live tasks and busy time
//! per worker (`qgate_worker_connections`, `qgate_worker_tasks`,
//! `qgate_worker_busy_seconds_total`). A connection stays on the worker it was handed to,
//! so these show whether the load is spread or one thread carries it.

use super::collector::emit;
use crate::server::workers::WorkerPool;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabel {
    worker: String,
}

/// Reads the pool's workers on every scrape.
#[derive(Debug)]
pub struct WorkerCollector {
    pool: Arc<WorkerPool>,
}

impl WorkerCollector {
    pub fn new(pool: Arc<WorkerPool>) -> Self {
        WorkerCollector { pool }
    }
}

impl Collector for WorkerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let connections = Family::<WorkerLabel, Gauge>::default();
        let tasks = Family::<WorkerLabel, Gauge>::default();
        let busy = Family::<WorkerLabel, Counter<f64, AtomicU64>>::default();
        for w in self.pool.stats() {
            let l = WorkerLabel {
                worker: w.index.to_string(),
            };
            connections.get_or_create(&l).set(w.connections as i64);
            tasks.get_or_create(&l).set(w.tasks as i64);
            busy.get_or_create(&l).inc_by(w.busy.as_secs_f64());
        }
        emit(
            &mut encoder,
            "qgate_worker_connections",
            "Client connections open on each worker thread",
            &connections,
        )?;
        emit(
            &mut encoder,
            "qgate_worker_tasks",
            "Tasks alive on each worker thread (connections, streams, upstream connections)",
            &tasks,
        )?;
        emit(
            &mut encoder,
            "qgate_worker_busy_seconds",
            "Time each worker thread spent running tasks",
            &busy,
        )
    }
}
