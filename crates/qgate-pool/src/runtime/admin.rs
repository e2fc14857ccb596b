//! Changes that come from outside the request path: admin enable/disable/reset, state
//! restored from disk, and state decided by another instance.

use super::{AccountCore, AccountRuntime};
use crate::breaker::BreakerPhase;
use crate::persist::SharedState;
use crate::state::{AccountState, StateKind, Transition};

/// What admin actions compare before and after.
#[derive(Debug, Clone, Copy)]
struct Reading {
    enabled: bool,
    health: StateKind,
    breaker: StateKind,
}

impl Reading {
    fn effective(self) -> StateKind {
        if self.enabled {
            self.health
        } else {
            StateKind::Disabled
        }
    }
}

impl AccountRuntime {
    fn read(&self, core: &AccountCore, now_ms: u64) -> Reading {
        Reading {
            enabled: self.is_enabled(),
            health: core.health.kind_at(now_ms),
            breaker: match core.breaker.phase_at(now_ms) {
                BreakerPhase::Closed => StateKind::BreakerClosed,
                BreakerPhase::Open => StateKind::BreakerOpen,
                BreakerPhase::HalfOpen => StateKind::BreakerHalfOpen,
            },
        }
    }

    /// Record what changed since `before`: the health state (even while disabled, so a
    /// restored suspension is not hidden behind the admin flag), enablement, breaker.
    fn diff(
        &self,
        before: Reading,
        core: &AccountCore,
        now_ms: u64,
        reason: &str,
        out: &mut Vec<Transition>,
    ) {
        let after = self.read(core, now_ms);
        if after.health != before.health {
            let timed = matches!(
                after.health,
                StateKind::Throttled | StateKind::QuotaExhausted
            );
            let until = if timed { core.health.until_ms() } else { None };
            out.push(self.transition(before.health, after.health, until, reason));
        }
        if after.enabled != before.enabled {
            out.push(self.transition(before.effective(), after.effective(), None, reason));
        }
        if after.breaker != before.breaker {
            let until = if after.breaker == StateKind::BreakerOpen {
                core.breaker.open_until_ms()
            } else {
                None
            };
            out.push(self.transition(before.breaker, after.breaker, until, reason));
        }
    }

    /// Admin enable (`Some(true)`), disable (`Some(false)`) or back to the config (`None`).
    pub(crate) fn set_admin_override(&self, value: Option<bool>, now_ms: u64) -> Vec<Transition> {
        let core = self.core.lock();
        let before = self.read(&core, now_ms);
        self.store_admin_override(value);
        let reason = match value {
            Some(true) => "enabled by admin",
            Some(false) => "disabled by admin",
            None => "admin override cleared",
        };
        let mut out = Vec::new();
        self.diff(before, &core, now_ms, reason, &mut out);
        out
    }

    /// Close the breaker and lift every health state; counters and the admin flag stay.
    pub(crate) fn reset(&self, now_ms: u64) -> Vec<Transition> {
        let mut core = self.core.lock();
        let before = self.read(&core, now_ms);
        let mut out = Vec::new();
        for mark in core.model_marks.iter().filter(|m| now_ms < m.until_ms) {
            let mut t = self.transition(
                StateKind::ModelUnavailable,
                StateKind::Active,
                None,
                "reset by admin",
            );
            t.model = Some(mark.model.clone());
            out.push(t);
        }
        core.health = AccountState::Active;
        core.breaker.reset();
        core.throttle_level = 0;
        core.overload_level = 0;
        core.overload_until_ms = 0;
        core.model_marks.clear();
        self.diff(before, &core, now_ms, "reset by admin", &mut out);
        self.sync_gates(&core);
        out
    }

    /// An out-of-band check (the gateway's health probe) showed the account serving:
    /// close the breaker and end a throttle cooldown and overload backoff. Stronger states
    /// (quota, suspension, refresh denial) are left alone: a cheap probe cannot disprove
    /// them, and one may have been reported while the probe was out.
    pub(crate) fn probe_succeeded(&self, now_ms: u64) -> Vec<Transition> {
        let mut core = self.core.lock();
        let before = self.read(&core, now_ms);
        if matches!(core.health, AccountState::Throttled { .. }) {
            core.health = AccountState::Active;
            core.throttle_level = 0;
        }
        core.breaker.reset();
        core.overload_level = 0;
        core.overload_until_ms = 0;
        let mut out = Vec::new();
        self.diff(before, &core, now_ms, "health check succeeded", &mut out);
        self.sync_gates(&core);
        out
    }

    /// A refresh with the account's credentials succeeded after all: lift a refresh
    /// denial (and nothing else).
    pub(crate) fn refresh_succeeded(&self, now_ms: u64) -> Vec<Transition> {
        let mut core = self.core.lock();
        let before = self.read(&core, now_ms);
        if matches!(core.health, AccountState::RefreshDenied { .. }) {
            core.health = AccountState::Active;
        }
        let mut out = Vec::new();
        self.diff(before, &core, now_ms, "token refresh succeeded", &mut out);
        self.sync_gates(&core);
        out
    }

    /// Restore a persisted state (startup). Only states still in force are taken.
    pub(crate) fn restore(
        &self,
        admin_enabled: Option<bool>,
        state: Option<AccountState>,
        now_ms: u64,
    ) -> Vec<Transition> {
        let mut core = self.core.lock();
        let before = self.read(&core, now_ms);
        if admin_enabled.is_some() {
            self.store_admin_override(admin_enabled);
        }
        if let Some(state) = state
            && state.in_force(now_ms)
            && !matches!(state, AccountState::Disabled { .. })
        {
            core.health = state;
        }
        let mut out = Vec::new();
        self.diff(before, &core, now_ms, "restored from saved state", &mut out);
        self.sync_gates(&core);
        out
    }

    pub(crate) fn shared_state(&self) -> SharedState {
        let core = self.core.lock();
        SharedState {
            account: self.id.clone(),
            admin_enabled: self.admin_override(),
            state: core.health.clone(),
            breaker: core.breaker.record(),
            unavailable_models: core.model_marks.clone(),
            throttle_level: core.throttle_level,
            overload_level: core.overload_level,
            overload_until_ms: core.overload_until_ms,
        }
    }

    /// Adopt a state another instance decided (shared-store mode). Replaces the local
    /// view wholesale; counters stay local.
    pub(crate) fn adopt(&self, remote: &SharedState, now_ms: u64) -> Vec<Transition> {
        let mut core = self.core.lock();
        let before = self.read(&core, now_ms);
        self.store_admin_override(remote.admin_enabled);
        core.health = match &remote.state {
            AccountState::Disabled { .. } => AccountState::Active,
            other => other.clone(),
        };
        core.breaker.adopt(&remote.breaker);
        core.model_marks = remote.unavailable_models.clone();
        core.throttle_level = remote.throttle_level;
        core.overload_level = remote.overload_level;
        core.overload_until_ms = remote.overload_until_ms;
        let mut out = Vec::new();
        self.diff(
            before,
            &core,
            now_ms,
            "state from another instance",
            &mut out,
        );
        self.sync_gates(&core);
        out
    }
}
