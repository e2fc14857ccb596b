//! Per-account live state: counters, timestamps, the account state, the breaker, per-model
//! marks and the RPM window. One `AccountRuntime` per id lives in an `Arc` that survives
//! config reloads (a rebuilt pool adopts the runtimes of the ids it keeps) and that every
//! lease holds, so a request started under the old config still settles its account.
//!
//! Layout follows the request path: selection reads only atomics ("gates" that summarise
//! the mutex-protected state as "blocked until t"), and takes this account's small mutex
//! only when it must hand out a half-open probe, check a per-model mark or count an RPM
//! slot. Reports and admin actions change state under the mutex and refresh the gates
//! before releasing it.

use crate::breaker::{Admission, Breaker, BreakerChange, ProbeId};
use crate::id::AccountId;
use crate::outcome::ErrorClass;
use crate::rpm::RpmWindow;
use crate::state::{AccountState, StateKind, Transition};
use crate::strategy::Changes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64,
    Ordering::{Relaxed, SeqCst},
};

mod admin;
mod report;

/// An (account, model) pair that upstream refused (`INVALID_MODEL_ID`), until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelMark {
    pub model: String,
    pub until_ms: u64,
}

/// Marks per account are few (one per model the gateway maps to); the cap only guards
/// against a misbehaving caller inventing model names.
const MAX_MODEL_MARKS: usize = 64;

const ADMIN_NONE: u8 = 0;
const ADMIN_ENABLED: u8 = 1;
const ADMIN_DISABLED: u8 = 2;

const NO_LATENCY: u64 = u64::MAX;

/// The mutex-protected part.
#[derive(Debug)]
pub(crate) struct AccountCore {
    /// Never `Disabled`: enablement is the pair of flags on the runtime.
    pub health: AccountState,
    /// When `health` was last entered (decided here or adopted); orders concurrent
    /// decisions of several instances (`adopt`).
    pub health_since_ms: u64,
    /// The lift that entered `health` when it is `Active` after a non-active state.
    pub health_lift: Option<crate::state::Lift>,
    pub breaker: Breaker,
    /// 429s in a row without a success; the next cooldown is base × 2^level.
    pub throttle_level: u32,
    pub overload_level: u32,
    pub overload_until_ms: u64,
    pub model_marks: Vec<ModelMark>,
    pub last_error_class: Option<ErrorClass>,
    pub ttfe_ewma_ms: Option<f64>,
}

impl AccountCore {
    pub(crate) fn set_health(&mut self, state: AccountState, now_ms: u64) {
        self.health = state;
        self.health_since_ms = now_ms;
        self.health_lift = None;
    }

    pub(crate) fn lift(&mut self, lift: crate::state::Lift, now_ms: u64) {
        self.set_health(AccountState::Active, now_ms);
        self.health_lift = Some(lift);
    }
}

impl Default for AccountCore {
    fn default() -> Self {
        AccountCore {
            health: AccountState::Active,
            health_since_ms: 0,
            health_lift: None,
            breaker: Breaker::default(),
            throttle_level: 0,
            overload_level: 0,
            overload_until_ms: 0,
            model_marks: Vec::new(),
            last_error_class: None,
            ttfe_ewma_ms: None,
        }
    }
}

/// `repr(C, align(64))`: everything selection reads (gates, load counters) comes first
/// and fills exactly one cache line, so judging an account costs one line fetch; the
/// report-side counters and the mutexes follow.
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct AccountRuntime {
    /// Changed only by `record_selected`, which keeps `least_used` indexes in step.
    requests: AtomicU64,
    health_gate: AtomicU64,
    breaker_gate: AtomicU64,
    model_gate: AtomicU64,
    rpm_gate: AtomicU64,
    backoff_until: AtomicU64,
    ttfe_ewma_us: AtomicU64,
    in_flight: AtomicU32,
    config_enabled: AtomicBool,
    admin: AtomicU8,
    pub id: AccountId,
    pub successes: AtomicU64,
    pub errors: AtomicU64,
    pub cancelled: AtomicU64,
    pub errors_by_class: [AtomicU64; ErrorClass::ALL.len()],
    pub last_used_ms: AtomicU64,
    pub last_success_ms: AtomicU64,
    pub last_error_ms: AtomicU64,
    pub core: Mutex<AccountCore>,
    rpm: Mutex<RpmWindow>,
    /// The change marks of the `least_used` indexes that hold this account, with its
    /// position in each, marked at each change of its load; usually one, two while a
    /// reload replaces a pool.
    watchers: Mutex<Vec<(Arc<Changes>, usize)>>,
    /// `watchers` is not empty: other strategies' changes skip its lock (see
    /// `load_changed` for why this flag cannot hide a change from a new watcher).
    watched: AtomicBool,
}

/// What the lock-free gates say about an account at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateView {
    Disabled,
    /// Throttled or out of quota until then.
    TimedOut(u64),
    /// Suspended or refresh-denied: until an admin acts.
    Held,
    BreakerOpen(u64),
    ProbeInFlight,
    /// Usable as far as state and breaker go (maybe as the half-open probe).
    Usable,
}

impl AccountRuntime {
    pub fn new(id: AccountId, enabled: bool) -> AccountRuntime {
        AccountRuntime {
            id,
            config_enabled: AtomicBool::new(enabled),
            admin: AtomicU8::new(ADMIN_NONE),
            health_gate: AtomicU64::new(0),
            breaker_gate: AtomicU64::new(0),
            model_gate: AtomicU64::new(0),
            rpm_gate: AtomicU64::new(0),
            backoff_until: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            ttfe_ewma_us: AtomicU64::new(NO_LATENCY),
            requests: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            errors_by_class: Default::default(),
            last_used_ms: AtomicU64::new(0),
            last_success_ms: AtomicU64::new(0),
            last_error_ms: AtomicU64::new(0),
            core: Mutex::new(AccountCore::default()),
            rpm: Mutex::new(RpmWindow::default()),
            watchers: Mutex::new(Vec::new()),
            watched: AtomicBool::new(false),
        }
    }

    pub fn set_config_enabled(&self, enabled: bool) {
        self.config_enabled.store(enabled, Relaxed);
    }

    pub fn admin_override(&self) -> Option<bool> {
        match self.admin.load(Relaxed) {
            ADMIN_ENABLED => Some(true),
            ADMIN_DISABLED => Some(false),
            _ => None,
        }
    }

    pub(crate) fn store_admin_override(&self, value: Option<bool>) {
        let raw = match value {
            None => ADMIN_NONE,
            Some(true) => ADMIN_ENABLED,
            Some(false) => ADMIN_DISABLED,
        };
        self.admin.store(raw, Relaxed);
    }

    /// An admin's word beats the configuration, in both directions.
    pub fn is_enabled(&self) -> bool {
        self.admin_override()
            .unwrap_or_else(|| self.config_enabled.load(Relaxed))
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    pub fn is_backed_off(&self, now_ms: u64) -> bool {
        now_ms < self.backoff_until.load(Relaxed)
    }

    /// Smoothed time to first event, µs; `None` before the first success.
    pub fn latency_us(&self) -> Option<u64> {
        let raw = self.ttfe_ewma_us.load(Relaxed);
        (raw != NO_LATENCY).then_some(raw)
    }

    /// The state and breaker as seen by selection, without locking.
    pub fn gate_view(&self, now_ms: u64, breaker_on: bool) -> GateView {
        if !self.is_enabled() {
            return GateView::Disabled;
        }
        match self.health_gate.load(Relaxed) {
            u64::MAX => return GateView::Held,
            until if now_ms < until => return GateView::TimedOut(until),
            _ => {}
        }
        if breaker_on {
            match self.breaker_gate.load(Relaxed) {
                u64::MAX => return GateView::ProbeInFlight,
                until if now_ms < until => return GateView::BreakerOpen(until),
                _ => {}
            }
        }
        GateView::Usable
    }

    /// Whether upstream refused `model` for this account and the mark still holds.
    pub fn model_blocked(&self, model: &str, now_ms: u64) -> bool {
        if now_ms >= self.model_gate.load(Relaxed) {
            return false;
        }
        let core = self.core.lock();
        core.model_marks
            .iter()
            .any(|m| m.model == model && now_ms < m.until_ms)
    }

    pub fn rpm_full(&self, now_ms: u64) -> bool {
        now_ms < self.rpm_gate.load(Relaxed)
    }

    /// Reserve an in-flight slot under the cap; two racing selections cannot both get
    /// the last one.
    pub fn reserve_slot(&self, cap: Option<u32>) -> bool {
        match cap {
            None => {
                self.in_flight.fetch_add(1, SeqCst);
                true
            }
            Some(cap) => self
                .in_flight
                .fetch_update(SeqCst, Relaxed, |n| (n < cap).then_some(n + 1))
                .is_ok(),
        }
    }

    pub fn release_slot(&self) {
        self.in_flight.fetch_sub(1, SeqCst);
        self.load_changed();
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Relaxed)
    }

    /// (in flight, requests) for a `least_used` index, read after its subscription.
    pub(crate) fn load_for_index(&self) -> (u32, u64) {
        (self.in_flight.load(SeqCst), self.requests.load(SeqCst))
    }

    /// Subscribes an index's change marks, where this account is member `pos`, to changes
    /// of its load. The index reads the counters (`load_for_index`) after this returns.
    pub(crate) fn watch(&self, changes: Arc<Changes>, pos: usize) {
        let mut watchers = self.watchers.lock();
        watchers.retain(|(c, _)| c.alive());
        watchers.push((changes, pos));
        self.watched.store(true, SeqCst);
    }

    /// Marks this account in its `least_used` indexes after a change of `in_flight` or
    /// `requests`; drops the subscriptions of indexes that are gone.
    ///
    /// The counters change with `SeqCst` before `watched` is read, and `watch` sets
    /// `watched` before the index reads the counters, all `SeqCst`: a change that reads
    /// `false` here comes before the flag was set in the single order of those
    /// operations, so the new index's own read sees it.
    fn load_changed(&self) {
        if !self.watched.load(SeqCst) {
            return;
        }
        let mut watchers = self.watchers.lock();
        watchers.retain(|(changes, pos)| {
            let alive = changes.alive();
            if alive {
                changes.mark(*pos);
            }
            alive
        });
        if watchers.is_empty() {
            self.watched.store(false, SeqCst);
        }
    }

    /// Breaker admission for a request about to be handed out. Lock-free while closed.
    pub fn admit(&self, now_ms: u64, breaker_on: bool) -> Option<Option<ProbeId>> {
        if !breaker_on || self.breaker_gate.load(Relaxed) == 0 {
            return Some(None);
        }
        let mut core = self.core.lock();
        let admission = core.breaker.admit(now_ms);
        self.breaker_gate.store(core.breaker.gate(), Relaxed);
        match admission {
            Admission::Pass => Some(None),
            Admission::Probe(probe) => Some(Some(probe)),
            Admission::Reject => None,
        }
    }

    pub fn release_probe(&self, probe: ProbeId) {
        let mut core = self.core.lock();
        core.breaker.release_probe(probe);
        self.breaker_gate.store(core.breaker.gate(), Relaxed);
    }

    /// Count one request against the RPM limit, or refuse without counting.
    pub fn take_rpm(&self, limit: u32, now_ms: u64) -> bool {
        let mut window = self.rpm.lock();
        match window.try_take(limit, now_ms) {
            Ok(()) => true,
            Err(full_until) => {
                self.rpm_gate.store(full_until, Relaxed);
                false
            }
        }
    }

    pub fn rpm_used(&self, now_ms: u64) -> u32 {
        self.rpm.lock().used(now_ms)
    }

    /// Bookkeeping once a selection has succeeded.
    pub fn record_selected(&self, now_ms: u64) {
        self.requests.fetch_add(1, SeqCst);
        self.last_used_ms.fetch_max(now_ms, Relaxed);
        self.load_changed();
    }

    /// Re-derive every gate from the core; called with the core locked after each change.
    pub(crate) fn sync_gates(&self, core: &AccountCore) {
        self.health_gate.store(core.health.gate(), Relaxed);
        self.breaker_gate.store(core.breaker.gate(), Relaxed);
        let model_gate = core.model_marks.iter().map(|m| m.until_ms).max();
        self.model_gate.store(model_gate.unwrap_or(0), Relaxed);
        self.backoff_until.store(core.overload_until_ms, Relaxed);
        let latency = core.ttfe_ewma_ms.map_or(NO_LATENCY, |ms| {
            (ms * 1000.0).round().clamp(0.0, 1e15) as u64
        });
        self.ttfe_ewma_us.store(latency, Relaxed);
    }

    /// The account state as the admin API shows it at `now_ms`.
    pub(crate) fn state_at(&self, core: &AccountCore, now_ms: u64) -> AccountState {
        if !self.is_enabled() {
            let reason = match self.admin_override() {
                Some(_) => "disabled by admin",
                None => "disabled in configuration",
            };
            return AccountState::Disabled {
                reason: reason.to_owned(),
            };
        }
        if core.health.in_force(now_ms) {
            core.health.clone()
        } else {
            AccountState::Active
        }
    }

    pub(crate) fn transition(
        &self,
        from: StateKind,
        to: StateKind,
        until_ms: Option<u64>,
        reason: impl Into<String>,
    ) -> Transition {
        Transition {
            account: self.id.clone(),
            from,
            to,
            until_ms,
            reason: reason.into(),
            model: None,
        }
    }

    /// The transition for a breaker phase change, if any.
    pub(crate) fn breaker_transition(
        &self,
        change: BreakerChange,
        core: &AccountCore,
        cause: &str,
    ) -> Transition {
        let failures = core.breaker.consecutive_failures();
        match change {
            BreakerChange::Opened { until_ms } => self.transition(
                StateKind::BreakerClosed,
                StateKind::BreakerOpen,
                Some(until_ms),
                format!("{failures} consecutive failures (last: {cause})"),
            ),
            BreakerChange::Reopened { until_ms } => self.transition(
                StateKind::BreakerHalfOpen,
                StateKind::BreakerOpen,
                Some(until_ms),
                format!("half-open probe failed ({cause})"),
            ),
            BreakerChange::Closed => self.transition(
                StateKind::BreakerHalfOpen,
                StateKind::BreakerClosed,
                None,
                "half-open probe succeeded",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn selection_fields_share_the_first_cache_line() {
        for end in [
            offset_of!(AccountRuntime, in_flight) + 4,
            offset_of!(AccountRuntime, admin) + 1,
            offset_of!(AccountRuntime, config_enabled) + 1,
            offset_of!(AccountRuntime, backoff_until) + 8,
        ] {
            assert!(end <= 64, "{end}");
        }
        assert_eq!(std::mem::align_of::<AccountRuntime>(), 64);
    }
}
