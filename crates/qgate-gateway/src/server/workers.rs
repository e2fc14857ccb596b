//! Worker threads: one single-threaded tokio runtime per worker. The accept loop hands
//! each connection to the worker with the fewest open connections; from then on the
//! connection, the handlers of its requests, their streams and (through
//! [`current`]) the upstream connections they use all run on that one thread. Nothing of
//! a request crosses threads, so no wake-up, work stealing or lock hand-off between cores
//! is paid per chunk — the cost that dominated a streamed request on tokio's shared
//! work-stealing pool.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

thread_local! {
    static WORKER_INDEX: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The index of the worker thread this code runs on, if it runs on one.
pub fn current() -> Option<usize> {
    WORKER_INDEX.with(Cell::get)
}

/// The running workers. Dropping the pool (or calling [`WorkerPool::stop`]) ends them;
/// each worker drops its runtime on its own thread, cancelling what is still running.
#[derive(Debug)]
pub struct WorkerPool {
    workers: Vec<Worker>,
    stop: CancellationToken,
    next: AtomicUsize,
}

#[derive(Debug)]
struct Worker {
    handle: Handle,
    open: Arc<AtomicUsize>,
}

/// One worker's load, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct WorkerStats {
    pub index: usize,
    pub connections: usize,
    pub tasks: usize,
    pub busy: std::time::Duration,
}

/// Counts a connection open on its worker until dropped.
#[derive(Debug)]
pub struct Placed {
    open: Arc<AtomicUsize>,
}

impl Drop for Placed {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl WorkerPool {
    /// Starts `n` workers (at least one), named `qgate-worker-<i>`.
    pub fn start(n: usize) -> std::io::Result<Self> {
        let stop = CancellationToken::new();
        let mut workers = Vec::with_capacity(n.max(1));
        for index in 0..n.max(1) {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let stopped = stop.clone();
            std::thread::Builder::new()
                .name(format!("qgate-worker-{index}"))
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    WORKER_INDEX.with(|w| w.set(Some(index)));
                    let _ = tx.send(Ok(rt.handle().clone()));
                    rt.block_on(stopped.cancelled());
                    // Dropped here, on its own thread, outside any async context.
                    drop(rt);
                })?;
            let handle = rx
                .recv()
                .map_err(|_| std::io::Error::other("worker thread ended while starting"))??;
            workers.push(Worker {
                handle,
                open: Arc::new(AtomicUsize::new(0)),
            });
        }
        Ok(Self {
            workers,
            stop,
            next: AtomicUsize::new(0),
        })
    }

    /// Picks the worker with the fewest open connections (ties go round robin, so an
    /// idle pool still spreads new connections) and counts one more there.
    pub fn place(&self) -> (&Handle, Placed) {
        let n = self.workers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut chosen = &self.workers[start];
        for k in 1..n {
            let w = &self.workers[(start + k) % n];
            if w.open.load(Ordering::Relaxed) < chosen.open.load(Ordering::Relaxed) {
                chosen = w;
            }
        }
        chosen.open.fetch_add(1, Ordering::Relaxed);
        (
            &chosen.handle,
            Placed {
                open: chosen.open.clone(),
            },
        )
    }

    /// Per worker: open connections, live tasks and time spent running tasks.
    pub fn stats(&self) -> Vec<WorkerStats> {
        self.workers
            .iter()
            .enumerate()
            .map(|(index, w)| {
                let m = w.handle.metrics();
                WorkerStats {
                    index,
                    connections: w.open.load(Ordering::Relaxed),
                    tasks: m.num_alive_tasks(),
                    // A current-thread runtime has one worker, index 0.
                    busy: m.worker_total_busy_duration(0),
                }
            })
            .collect()
    }

    /// Ends every worker; tasks still running on them are cancelled.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_connections(pool: &WorkerPool) -> Vec<usize> {
        pool.stats().iter().map(|w| w.connections).collect()
    }

    #[test]
    fn connections_go_to_the_least_loaded_worker_and_are_counted_until_dropped() {
        let pool = WorkerPool::start(3).unwrap();
        let a = pool.place();
        let b = pool.place();
        let c = pool.place();
        // Three connections on three workers: one each.
        assert_eq!(open_connections(&pool), vec![1, 1, 1]);
        drop(b);
        let loads = open_connections(&pool);
        let freed = loads
            .iter()
            .position(|&n| n == 0)
            .expect("one worker freed");
        // The next connection goes to the worker that just lost its connection.
        let d = pool.place();
        assert_eq!(open_connections(&pool)[freed], 1);
        drop((a, c, d));
        assert_eq!(open_connections(&pool), vec![0, 0, 0]);
    }

    #[test]
    fn code_spawned_on_a_worker_knows_its_index_and_other_threads_do_not() {
        let pool = WorkerPool::start(2).unwrap();
        assert_eq!(current(), None);
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (handle, _placed) = pool.place();
            let (tx, rx) = std::sync::mpsc::channel();
            handle.spawn(async move {
                let _ = tx.send(current());
            });
            seen.push(rx.recv().unwrap());
        }
        seen.sort();
        assert_eq!(seen, vec![Some(0), Some(1)]);
    }
}
