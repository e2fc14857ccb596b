//! Giving freed heap back to the system once the gateway goes quiet. glibc's malloc keeps
//! what a burst of requests freed in its arenas (one per busy thread), so an idle gateway
//! stays at its high-water mark; `malloc_trim` returns those pages. It runs once per quiet
//! spell — no request finished during a whole check interval and no stream open — so it
//! never competes with traffic, and not at all while the gateway is busy or has already
//! trimmed since the last request.

use crate::state::AppState;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the gateway checks whether it has gone quiet.
const CHECK_EVERY: Duration = Duration::from_secs(10);

pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut quiet = Quiet::new(state.metrics.finished_requests());
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if quiet.check(state.metrics.finished_requests(), state.streams.len()) {
            let released = trim();
            tracing::debug!(released, "idle: returned freed heap to the system");
        }
    }
}

/// Decides when to trim: after activity, at the first check that saw none.
#[derive(Debug)]
struct Quiet {
    /// Finished requests at the previous check.
    last: u64,
    /// Finished requests when memory was last trimmed.
    trimmed_at: u64,
}

impl Quiet {
    fn new(finished: u64) -> Self {
        Quiet {
            last: finished,
            trimmed_at: finished,
        }
    }

    fn check(&mut self, finished: u64, open_streams: usize) -> bool {
        let idle = finished == self.last && open_streams == 0;
        self.last = finished;
        if idle && finished != self.trimmed_at {
            self.trimmed_at = finished;
            return true;
        }
        false
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() -> bool {
    // SAFETY: `malloc_trim` has no preconditions: it takes each arena's lock itself and
    // only releases memory malloc holds as free.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators (musl, macOS) give memory back on their own terms.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::Quiet;

    #[test]
    fn trims_once_after_activity_when_nothing_finished_for_a_whole_interval() {
        let mut q = Quiet::new(0);
        assert!(
            !q.check(0, 0),
            "nothing served since start: nothing to give back"
        );
        assert!(
            !q.check(40, 0),
            "requests finished during this interval: busy"
        );
        assert!(q.check(40, 0), "a quiet interval after activity");
        assert!(!q.check(40, 0), "already trimmed; still quiet");
        assert!(!q.check(41, 0), "busy again");
        assert!(q.check(41, 0));
    }

    #[test]
    fn never_trims_while_a_stream_is_open() {
        let mut q = Quiet::new(0);
        assert!(!q.check(10, 1));
        assert!(
            !q.check(10, 1),
            "no request finished, but a stream is still open"
        );
        assert!(q.check(10, 0), "the stream ended: quiet now");
    }
}
