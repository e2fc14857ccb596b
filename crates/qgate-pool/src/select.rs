//! The per-request filter shared by every strategy, the reservation that turns a chosen
//! account into a `Lease`, and the diagnosis behind `NoAccount` when nothing fits.
//!
//! `fit` is lock-free and changes nothing; strategies call it freely while scanning.
//! `take` is the only step that mutates: it reserves the in-flight slot under the cap
//! (compare-and-swap), takes the half-open probe if the breaker needs one, and counts the
//! RPM window last, so a refused selection consumes neither slot nor RPM budget.

use crate::error::NoAccount;
use crate::id::AccountId;
use crate::lease::Lease;
use crate::pool::{Pool, Slot};
use crate::runtime::GateView;

/// One request's needs.
#[derive(Debug, Clone, Copy)]
pub struct SelectRequest<'a> {
    /// Upstream model id (after the gateway's model mapping).
    pub model: &'a str,
    /// Conversation key for sticky routing (e.g. from `metadata.user_id`).
    pub session: Option<&'a str>,
    /// Accounts already tried for this request.
    pub exclude: &'a [AccountId],
}

impl<'a> SelectRequest<'a> {
    pub fn new(model: &'a str) -> SelectRequest<'a> {
        SelectRequest {
            model,
            session: None,
            exclude: &[],
        }
    }
}

/// An account that may take the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fit {
    /// In overload backoff: used only when no fit account of the tier is not.
    pub backed_off: bool,
}

/// Everything a strategy needs to judge and take accounts for one request.
pub(crate) struct Ctx<'p, 'r> {
    pool: &'p Pool,
    req: &'r SelectRequest<'r>,
    now_ms: u64,
    breaker_on: bool,
}

impl<'p, 'r> Ctx<'p, 'r> {
    pub fn new(pool: &'p Pool, req: &'r SelectRequest<'r>, now_ms: u64) -> Self {
        Ctx {
            pool,
            req,
            now_ms,
            breaker_on: pool.cfg.breaker.enabled,
        }
    }

    pub fn slot(&self, idx: usize) -> &'p Slot {
        &self.pool.slots[idx]
    }

    fn excluded(&self, slot: &Slot) -> bool {
        self.req.exclude.iter().any(|id| id.same(&slot.settings.id))
    }

    /// Lock-free: may this account take the request right now?
    pub fn fit(&self, idx: usize) -> Option<Fit> {
        let slot = self.slot(idx);
        let rt = &slot.runtime;
        if rt.gate_view(self.now_ms, self.breaker_on) != GateView::Usable
            || self.excluded(slot)
            || !slot.allows(self.req.model)
            || slot
                .settings
                .max_concurrency
                .is_some_and(|cap| rt.in_flight() >= cap)
            || (slot.settings.rpm_limit.is_some() && rt.rpm_full(self.now_ms))
            || rt.model_blocked(self.req.model, self.now_ms)
        {
            return None;
        }
        Some(Fit {
            backed_off: rt.is_backed_off(self.now_ms),
        })
    }

    /// Reserve the account for this request, or leave everything as it was.
    pub fn take(&self, idx: usize) -> Option<Lease> {
        let slot = self.slot(idx);
        let rt = &slot.runtime;
        if !rt.reserve_slot(slot.settings.max_concurrency) {
            return None;
        }
        let Some(probe) = rt.admit(self.now_ms, self.breaker_on) else {
            rt.release_slot();
            return None;
        };
        if let Some(limit) = slot.settings.rpm_limit
            && !rt.take_rpm(limit, self.now_ms)
        {
            if let Some(probe) = probe {
                rt.release_probe(probe);
            }
            rt.release_slot();
            return None;
        }
        rt.record_selected(self.now_ms);
        Some(Lease::new(rt.clone(), probe))
    }

    /// Why nothing could be selected, with the soonest recovery where one is known.
    pub fn no_account(&self) -> NoAccount {
        let now = self.now_ms;
        let mut candidates = 0usize;
        let mut supported = 0usize;
        let mut busy = false;
        let mut timed_out = 0usize;
        let mut soonest_timeout: Option<u64> = None;
        let mut soonest_any: Option<u64> = None;
        let earliest = |slot: &mut Option<u64>, t: u64| {
            *slot = Some(slot.map_or(t, |s| s.min(t)));
        };
        for slot in self.pool.slots.iter() {
            let rt = &slot.runtime;
            if !slot.allows(self.req.model) || rt.model_blocked(self.req.model, now) {
                continue;
            }
            supported += 1;
            if self.excluded(slot) {
                continue;
            }
            candidates += 1;
            match rt.gate_view(now, self.breaker_on) {
                GateView::Disabled | GateView::Held | GateView::ProbeInFlight => {}
                GateView::TimedOut(until) => {
                    timed_out += 1;
                    earliest(&mut soonest_timeout, until);
                    earliest(&mut soonest_any, until);
                }
                GateView::BreakerOpen(until) => earliest(&mut soonest_any, until),
                // Usable but not taken: at its cap, RPM window full, or lost a race.
                GateView::Usable => busy = true,
            }
        }
        if supported == 0 {
            return NoAccount::ModelNotSupported;
        }
        // Every account that could serve the model was tried already: the last
        // failure, not the model, is the answer.
        if candidates == 0 {
            return NoAccount::AllExcluded;
        }
        if busy {
            return NoAccount::AllBusy;
        }
        if let Some(until) = soonest_timeout
            && timed_out == candidates
        {
            return NoAccount::AllThrottled {
                retry_after_ms: until.saturating_sub(now),
            };
        }
        NoAccount::Unavailable {
            retry_after_ms: soonest_any.map(|t| t.saturating_sub(now)),
        }
    }
}
