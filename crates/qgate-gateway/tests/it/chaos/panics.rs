//! Panics of the soak's own runtime threads, gateway tasks included.
//!
//! Tokio catches a panicking task and the gateway carries on, so a panic would pass
//! unnoticed unless something listens. The panic hook is process-wide and other tests may
//! run (and fail by panicking) in the same process, so only threads whose name carries
//! this soak's prefix are counted: the soak runs on a runtime of its own with that name.

use std::sync::{Arc, Mutex, Once};

/// The thread-name prefix of the soak's runtime.
pub const THREAD_PREFIX: &str = "qgate-chaos-";

static INSTALL: Once = Once::new();
static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

// A panic while the lock is held poisons it; the record is still good.
fn lock_seen() -> std::sync::MutexGuard<'static, Vec<String>> {
    SEEN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Installs the hook once per process (chained to the previous one, so the usual message
/// is still printed) and returns a view of what it recorded.
pub fn watch() -> PanicLog {
    INSTALL.call_once(|| {
        let previous = Arc::new(std::panic::take_hook());
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or_default();
            if name.starts_with(THREAD_PREFIX) {
                let location = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                lock_seen().push(format!("thread {name} panicked at {location}: {message}"));
            }
            previous(info);
        }));
    });
    PanicLog {
        start: lock_seen().len(),
    }
}

/// Panics recorded since [`watch`] returned it.
#[derive(Debug)]
pub struct PanicLog {
    start: usize,
}

impl PanicLog {
    pub fn seen(&self) -> Vec<String> {
        lock_seen().iter().skip(self.start).cloned().collect()
    }
}
