//! Giving freed heap back to the system once the gateway goes quiet. glibc's malloc keeps
//! what a burst of requests freed in its arenas (one per busy thread), so an idle gateway
//! stays at its high-water mark; `malloc_trim` returns those pages. It runs at the first
//! check of a quiet spell — no request finished during a whole check interval and no
//! stream open — so it never competes with traffic, and once more when the upstream
//! connections that spell left idle in the pools have been closed (their buffers are freed
//! only then, up to twice the pool's idle timeout later). Not at all while the gateway is
//! busy.

use crate::state::AppState;
use crate::upstream::connect::POOL_IDLE_TIMEOUT;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the gateway checks whether it has gone quiet.
const CHECK_EVERY: Duration = Duration::from_secs(10);

pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut quiet = Quiet::new(state.metrics.finished_requests(), pools_closed_after());
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Idle upstream connections are polled by nobody: they are closed here once
        // they have waited a pool's idle timeout.
        state.upstream.close_expired();
        if quiet.check(state.metrics.finished_requests(), state.streams.len()) {
            let released = trim();
            tracing::debug!(released, "idle: returned freed heap to the system");
        }
    }
}

/// The quiet check by which every connection left idle at the start of the spell has
/// been closed (above, within a check interval of its idle timeout).
fn pools_closed_after() -> u32 {
    let checks = (2 * POOL_IDLE_TIMEOUT.as_secs()).div_ceil(CHECK_EVERY.as_secs()) + 1;
    u32::try_from(checks).unwrap_or(u32::MAX)
}

/// Decides when to trim: at the first check that saw no activity, and again at the
/// `second` quiet check in a row.
#[derive(Debug)]
struct Quiet {
    /// Finished requests at the previous check.
    last: u64,
    /// Quiet checks in a row since the last activity; `None` before any activity.
    quiet: Option<u32>,
    second: u32,
}

impl Quiet {
    fn new(finished: u64, second: u32) -> Self {
        Quiet {
            last: finished,
            quiet: None,
            second,
        }
    }

    fn check(&mut self, finished: u64, open_streams: usize) -> bool {
        if finished != self.last || open_streams > 0 {
            self.last = finished;
            self.quiet = Some(0);
            return false;
        }
        match &mut self.quiet {
            None => false,
            Some(n) => {
                *n = n.saturating_add(1);
                *n == 1 || *n == self.second
            }
        }
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
        let mut q = Quiet::new(0, 19);
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
    fn trims_again_once_the_pools_have_closed_what_the_spell_left_idle() {
        let second = super::pools_closed_after();
        // Pool connections idle for 90 s are closed by a check every 90 s: within 180 s.
        assert_eq!(second, 19);
        let mut q = Quiet::new(0, second);
        assert!(!q.check(5, 0), "busy");
        // The quiet checks (10 s apart) that trim, over 400 s of quiet.
        let trims: Vec<u32> = (1..=40).filter(|_| q.check(5, 0)).collect();
        assert_eq!(trims, vec![1, 19]);
        // Activity starts the count again.
        assert!(!q.check(6, 0));
        assert!(q.check(6, 0));
    }

    #[test]
    fn never_trims_while_a_stream_is_open() {
        let mut q = Quiet::new(0, 19);
        assert!(!q.check(10, 1));
        assert!(
            !q.check(10, 1),
            "no request finished, but a stream is still open"
        );
        assert!(q.check(10, 0), "the stream ended: quiet now");
    }
}
