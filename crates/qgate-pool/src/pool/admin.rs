//! Admin actions and state exchange: enable/disable/reset by id, export/import of the
//! restart-surviving states, and the per-account shared state for multi-instance setups.

use super::Pool;
use crate::error::PoolError;
use crate::persist::{PersistedState, SharedState};
use crate::state::{AccountState, Transition};

/// Enabling and disabling take no time, so their transitions name the other side's
/// state as stored: evaluated at time zero, every time-limited state is still in force
/// (its `until_ms` in the transition says whether it has run out since).
const AS_STORED: u64 = 0;

impl Pool {
    /// Enable an account (even one disabled in the configuration) until told otherwise.
    pub fn enable(&self, id: &str) -> Result<Vec<Transition>, PoolError> {
        Ok(self
            .slot(id)?
            .runtime
            .set_admin_override(Some(true), AS_STORED))
    }

    /// Take an account out of rotation. Requests already in flight finish normally.
    pub fn disable(&self, id: &str) -> Result<Vec<Transition>, PoolError> {
        Ok(self
            .slot(id)?
            .runtime
            .set_admin_override(Some(false), AS_STORED))
    }

    /// Forget an admin enable/disable: the configuration decides again.
    pub fn clear_admin_override(&self, id: &str) -> Result<Vec<Transition>, PoolError> {
        Ok(self.slot(id)?.runtime.set_admin_override(None, AS_STORED))
    }

    /// Close the breaker and clear throttle, quota, suspension, refresh denial, model
    /// marks, overload backoff and the failure run. Counters and enable/disable stay.
    /// Also the step after an account got new credentials.
    pub fn reset(&self, id: &str, now_ms: u64) -> Result<Vec<Transition>, PoolError> {
        Ok(self.slot(id)?.runtime.reset(now_ms))
    }

    /// The gateway's active health check succeeded: close the breaker and end a throttle
    /// cooldown. Quota, suspension, refresh denial and enablement are untouched.
    pub fn probe_succeeded(&self, id: &str, now_ms: u64) -> Result<Vec<Transition>, PoolError> {
        Ok(self.slot(id)?.runtime.probe_succeeded(now_ms))
    }

    /// A token refresh succeeded (e.g. an operator forced one after fixing the account):
    /// lift a refresh denial. Nothing else changes.
    pub fn refresh_succeeded(&self, id: &str, now_ms: u64) -> Result<Vec<Transition>, PoolError> {
        Ok(self.slot(id)?.runtime.refresh_succeeded(now_ms))
    }

    /// The states a restart must not forget, one entry per account that has any.
    pub fn export_persistent(&self) -> Vec<PersistedState> {
        self.slots
            .iter()
            .filter_map(|slot| {
                let rt = &slot.runtime;
                let admin_enabled = rt.admin_override();
                let state = {
                    let core = rt.core.lock();
                    match &core.health {
                        AccountState::QuotaExhausted { .. }
                        | AccountState::Suspended { .. }
                        | AccountState::RefreshDenied { .. } => Some(core.health.clone()),
                        AccountState::Active
                        | AccountState::Disabled { .. }
                        | AccountState::Throttled { .. } => None,
                    }
                };
                (admin_enabled.is_some() || state.is_some()).then(|| PersistedState {
                    account: slot.settings.id.clone(),
                    admin_enabled,
                    state,
                })
            })
            .collect()
    }

    /// Restore saved states. Accounts no longer configured are skipped, and so are
    /// states that have run out by `now_ms` (a quota whose reset has passed).
    pub fn import_persistent(&self, states: Vec<PersistedState>, now_ms: u64) {
        self.import_persistent_reporting(states, now_ms);
    }

    /// [`Pool::import_persistent`], returning what changed (for a startup log line).
    pub fn import_persistent_reporting(
        &self,
        states: Vec<PersistedState>,
        now_ms: u64,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        for saved in states {
            if let Some(idx) = self.slot_index(saved.account.as_str()) {
                out.extend(self.slots[idx].runtime.restore(
                    saved.admin_enabled,
                    saved.state,
                    now_ms,
                ));
            }
        }
        out
    }

    /// One account's shareable health, to publish to other instances after a transition.
    pub fn shared_state(&self, id: &str) -> Option<SharedState> {
        let idx = self.slot_index(id)?;
        Some(self.slots[idx].runtime.shared_state())
    }

    /// Adopt what another instance decided about an account (ignored if the account is
    /// not configured here).
    pub fn apply_remote(&self, state: &SharedState, now_ms: u64) -> Vec<Transition> {
        match self.slot_index(state.account.as_str()) {
            Some(idx) => self.slots[idx].runtime.adopt(state, now_ms),
            None => Vec::new(),
        }
    }
}
