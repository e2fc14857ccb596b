//! Whether Redis is reachable, as seen by the operations themselves: the first failed
//! operation marks it down and logs **once**; the first successful one marks it up and
//! logs once. Watchers (the gateway's reconcile loop) wake on every change.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use tokio::sync::watch;

/// Reachability of Redis plus an error counter (`qgate_redis_up`, `qgate_redis_errors_total`).
pub struct Health {
    up: watch::Sender<bool>,
    errors: AtomicU64,
    /// When an operation last failed to reach the server.
    last_unreachable: Mutex<Option<Instant>>,
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health")
            .field("up", &self.is_up())
            .field("errors", &self.errors_total())
            .finish()
    }
}

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}

impl Health {
    /// Starts as up: the first failure then logs the outage, and a gateway that never
    /// reaches Redis says so once instead of never.
    pub fn new() -> Self {
        Health {
            up: watch::Sender::new(true),
            errors: AtomicU64::new(0),
            last_unreachable: Mutex::new(None),
        }
    }

    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// Failed operations since start (timeouts, connection errors, refused scripts).
    pub fn errors_total(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Down now, or unreachable at some point in the last `window`.
    pub fn unreachable_within(&self, window: Duration) -> bool {
        !self.is_up()
            || self
                .last_unreachable
                .lock()
                .is_some_and(|at| at.elapsed() < window)
    }

    /// A receiver that sees every up/down change.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.up.subscribe()
    }

    pub(crate) fn record_ok(&self) {
        let recovered = self.up.send_if_modified(|up| !std::mem::replace(up, true));
        if recovered {
            tracing::info!("redis is reachable again; shared state resumes");
        }
    }

    /// `reachable`: the server answered, with an error. Only failures to reach it count
    /// as an outage; an error reply is a bug worth counting, and proof the server is there.
    pub(crate) fn record_error(
        &self,
        op: &'static str,
        reachable: bool,
        detail: &dyn fmt::Display,
    ) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if reachable {
            tracing::warn!(op, error = %detail, "redis refused an operation");
            self.record_ok();
            return;
        }
        *self.last_unreachable.lock() = Some(Instant::now());
        let went_down = self.up.send_if_modified(|up| std::mem::replace(up, false));
        if went_down {
            tracing::warn!(op, error = %detail, "redis is unreachable; serving on local state until it returns");
        } else {
            tracing::debug!(op, error = %detail, "redis still unreachable");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_seen_once_and_errors_counted() {
        let health = Health::new();
        let mut watcher = health.watch();
        assert!(health.is_up());
        assert!(!watcher.has_changed().unwrap_or(true));

        health.record_error("get", false, &"connection refused");
        health.record_error("get", false, &"connection refused");
        assert!(!health.is_up());
        assert!(health.unreachable_within(Duration::ZERO));
        assert_eq!(health.errors_total(), 2);
        assert!(watcher.has_changed().unwrap_or(false));
        watcher.mark_unchanged();

        health.record_ok();
        health.record_ok();
        assert!(health.is_up());
        assert!(
            health.unreachable_within(Duration::from_secs(60)),
            "the outage is recent"
        );
        assert!(!health.unreachable_within(Duration::ZERO));
        assert!(watcher.has_changed().unwrap_or(false));
        watcher.mark_unchanged();

        health.record_error("eval", true, &"script error");
        assert!(
            health.is_up(),
            "an error reply proves the server is reachable"
        );
        assert!(!watcher.has_changed().unwrap_or(true));
        assert_eq!(health.errors_total(), 3);
    }
}
