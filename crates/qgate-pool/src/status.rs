//! Read-only views for the admin API, metrics and `/health`. Building them never changes
//! anything: time-limited states, breaker timeouts and model marks are evaluated against
//! the `now_ms` passed in, not written back.

use crate::breaker::BreakerPhase;
use crate::config::AccountSettings;
use crate::id::AccountId;
use crate::outcome::ErrorClass;
use crate::pool::{Pool, Slot};
use crate::runtime::ModelMark;
use crate::state::{AccountState, StateKind};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

/// The breaker as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerStatus {
    pub phase: BreakerPhase,
    /// End of the current (or last elapsed) open period.
    pub open_until_ms: Option<u64>,
    /// The open period in use: base, doubled per failed probe, capped.
    pub timeout_ms: u64,
    pub consecutive_failures: u32,
    pub opened_total: u64,
    pub probe_in_flight: bool,
}

/// Everything the admin API shows about one account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountStatus {
    pub id: AccountId,
    pub settings: AccountSettings,
    /// Effective at the time asked (an elapsed throttle reads as active).
    pub state: AccountState,
    /// Could take a request now, ignoring per-request limits (model, cap, RPM).
    pub available: bool,
    /// `Some` when an admin enabled or disabled the account against the config.
    pub admin_override: Option<bool>,
    pub breaker: BreakerStatus,
    pub in_flight: u32,
    pub request_count: u64,
    pub success_count: u64,
    /// Failed attempts of any class (client errors included; see `errors_by_class`).
    pub error_count: u64,
    pub cancelled_count: u64,
    pub errors_by_class: BTreeMap<ErrorClass, u64>,
    pub last_error_class: Option<ErrorClass>,
    /// Smoothed time to first upstream event.
    pub latency_ewma_ms: Option<f64>,
    pub last_used_ms: Option<u64>,
    pub last_success_ms: Option<u64>,
    pub last_error_ms: Option<u64>,
    /// Models upstream refused for this account, still in force.
    pub unavailable_models: Vec<ModelMark>,
    /// De-preferred after global overload answers until then.
    pub overload_backoff_until_ms: Option<u64>,
    /// 429s in a row; the next cooldown without retry-after is base × 2^level.
    pub throttle_level: u32,
    /// Requests in the last minute, when an RPM limit is set.
    pub rpm_used: Option<u32>,
}

/// Pool-wide counts for `/health` and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolHealth {
    pub total: usize,
    /// Accounts that could take a request now.
    pub routable: usize,
    pub in_flight: u64,
    /// Accounts per account-level state (every kind present, zeros included).
    pub by_state: BTreeMap<StateKind, usize>,
    pub breaker_open: usize,
    pub breaker_half_open: usize,
    /// Milliseconds from now until the first unavailable account comes back by itself
    /// (throttle, quota or breaker ending); `None` if none will without an admin.
    pub soonest_recovery_ms: Option<u64>,
}

fn nonzero(v: u64) -> Option<u64> {
    (v != 0).then_some(v)
}

/// When an unavailable account becomes usable without anyone acting: once both its
/// time-limited state and its open breaker have run out.
fn recovery(status: &AccountStatus, breaker_until: Option<u64>) -> Option<u64> {
    if status.available {
        return None;
    }
    let state_until = match &status.state {
        AccountState::Active => None,
        AccountState::Throttled { until_ms, .. }
        | AccountState::QuotaExhausted { until_ms, .. } => Some(*until_ms),
        AccountState::Disabled { .. }
        | AccountState::Suspended { .. }
        | AccountState::RefreshDenied { .. } => return None,
    };
    match (state_until, breaker_until) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (one, other) => one.or(other),
    }
}

impl Pool {
    fn account_status(&self, slot: &Slot, now_ms: u64) -> AccountStatus {
        let rt = &slot.runtime;
        let core = rt.core.lock();
        let state = rt.state_at(&core, now_ms);
        let breaker_on = self.cfg.breaker.enabled;
        let phase = core.breaker.phase_at(now_ms);
        let breaker_admits = !breaker_on
            || match phase {
                BreakerPhase::Closed => true,
                BreakerPhase::Open => false,
                BreakerPhase::HalfOpen => !core.breaker.probe_in_flight(),
            };
        let errors_by_class = ErrorClass::ALL
            .into_iter()
            .map(|c| (c, rt.errors_by_class[c.index()].load(Relaxed)))
            .filter(|&(_, n)| n > 0)
            .collect();
        AccountStatus {
            id: slot.settings.id.clone(),
            settings: slot.settings.clone(),
            available: state == AccountState::Active && breaker_admits,
            state,
            admin_override: rt.admin_override(),
            breaker: BreakerStatus {
                phase,
                open_until_ms: core.breaker.open_until_ms(),
                timeout_ms: core.breaker.timeout_ms(&self.cfg.breaker),
                consecutive_failures: core.breaker.consecutive_failures(),
                opened_total: core.breaker.opened_total(),
                probe_in_flight: core.breaker.probe_in_flight(),
            },
            in_flight: rt.in_flight(),
            request_count: rt.requests(),
            success_count: rt.successes.load(Relaxed),
            error_count: rt.errors.load(Relaxed),
            cancelled_count: rt.cancelled.load(Relaxed),
            errors_by_class,
            last_error_class: core.last_error_class,
            latency_ewma_ms: core.ttfe_ewma_ms,
            last_used_ms: nonzero(rt.last_used_ms.load(Relaxed)),
            last_success_ms: nonzero(rt.last_success_ms.load(Relaxed)),
            last_error_ms: nonzero(rt.last_error_ms.load(Relaxed)),
            unavailable_models: core
                .model_marks
                .iter()
                .filter(|m| now_ms < m.until_ms)
                .cloned()
                .collect(),
            overload_backoff_until_ms: (now_ms < core.overload_until_ms)
                .then_some(core.overload_until_ms),
            throttle_level: core.throttle_level,
            rpm_used: slot.settings.rpm_limit.map(|_| rt.rpm_used(now_ms)),
        }
    }

    /// Every account, in configured order.
    pub fn snapshot(&self, now_ms: u64) -> Vec<AccountStatus> {
        self.slots
            .iter()
            .map(|slot| self.account_status(slot, now_ms))
            .collect()
    }

    pub fn status(&self, id: &str, now_ms: u64) -> Option<AccountStatus> {
        let idx = self.slot_index(id)?;
        Some(self.account_status(&self.slots[idx], now_ms))
    }

    pub fn health(&self, now_ms: u64) -> PoolHealth {
        let mut health = PoolHealth {
            total: self.slots.len(),
            routable: 0,
            in_flight: 0,
            by_state: StateKind::ACCOUNT.into_iter().map(|k| (k, 0)).collect(),
            breaker_open: 0,
            breaker_half_open: 0,
            soonest_recovery_ms: None,
        };
        for slot in self.slots.iter() {
            let status = self.account_status(slot, now_ms);
            *health.by_state.entry(status.state.kind()).or_default() += 1;
            health.routable += usize::from(status.available);
            health.in_flight += u64::from(status.in_flight);
            let breaker_until = match status.breaker.phase {
                BreakerPhase::Closed => None,
                BreakerPhase::Open => {
                    health.breaker_open += 1;
                    status.breaker.open_until_ms
                }
                BreakerPhase::HalfOpen => {
                    health.breaker_half_open += 1;
                    None
                }
            };
            if let Some(back) = recovery(&status, breaker_until) {
                let in_ms = back.saturating_sub(now_ms);
                health.soonest_recovery_ms =
                    Some(health.soonest_recovery_ms.map_or(in_ms, |s| s.min(in_ms)));
            }
        }
        health
    }
}
