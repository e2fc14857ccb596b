//! `Lease`: what `select` hands out. It holds the account's in-flight slot (and, for the
//! one request that tests a half-open breaker, the probe permit) until dropped, so a
//! request that panics or is cancelled can never leak a slot — the seed's
//! `active_requests` could.
//!
//! A lease is `Send + 'static` (it owns an `Arc` of the account's runtime), so the
//! gateway can move it into the task that streams the response. It is settled at most
//! once: the first `Pool::report` for it counts; a lease dropped unreported counts as
//! cancelled and gives its probe back.

use crate::breaker::ProbeId;
use crate::id::AccountId;
use crate::runtime::AccountRuntime;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct Lease {
    runtime: Arc<AccountRuntime>,
    probe: Option<ProbeId>,
    settled: AtomicBool,
}

impl Lease {
    /// Wraps a slot already reserved on `runtime`.
    pub(crate) fn new(runtime: Arc<AccountRuntime>, probe: Option<ProbeId>) -> Lease {
        Lease {
            runtime,
            probe,
            settled: AtomicBool::new(false),
        }
    }

    pub fn account(&self) -> &AccountId {
        &self.runtime.id
    }

    /// This request is the half-open breaker's single probe.
    pub fn is_probe(&self) -> bool {
        self.probe.is_some()
    }

    /// Whether an outcome was already reported for this lease.
    pub fn is_settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }

    /// Claims the right to report; `None` if someone already did.
    pub(crate) fn settle(&self) -> Option<(&Arc<AccountRuntime>, Option<ProbeId>)> {
        if self.settled.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some((&self.runtime, self.probe))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.settled.swap(true, Ordering::AcqRel) {
            self.runtime.cancelled.fetch_add(1, Ordering::Relaxed);
            if let Some(probe) = self.probe {
                self.runtime.release_probe(probe);
            }
        }
        self.runtime.release_slot();
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("account", self.account())
            .field("probe", &self.is_probe())
            .field("settled", &self.is_settled())
            .finish()
    }
}
