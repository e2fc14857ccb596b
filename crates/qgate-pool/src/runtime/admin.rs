//! Changes that come from outside the request path: admin enable/disable/reset, state
//! restored from disk, and state decided by another instance.

use super::{AccountCore, AccountRuntime};
use crate::breaker::BreakerPhase;
use crate::persist::SharedState;
use crate::state::{AccountState, Lift, StateKind, Transition};

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
        core.lift(Lift::Reset, now_ms);
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
            core.lift(Lift::Probe, now_ms);
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
            core.lift(Lift::Refresh, now_ms);
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
            // Entered before the restart, at a time we know only for lasting states: a
            // lift another instance made meanwhile must still win over it.
            let since = match &state {
                AccountState::Suspended { since_ms, .. }
                | AccountState::RefreshDenied { since_ms, .. } => *since_ms,
                _ => 0,
            };
            core.set_health(state, since.min(now_ms));
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
            state_since_ms: core.health_since_ms,
            lift: core.health_lift,
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
        // Two instances may decide about one account at once, each before hearing of the
        // other: the states merge (`merged_state`) rather than the later record undoing
        // the other's decision. When ours is kept, the caller republishes it
        // (`SharedState::state_since_ms` differs from the record's).
        let remote_health = match &remote.state {
            AccountState::Disabled { .. } => AccountState::Active,
            other => other.clone(),
        };
        let ours = (&core.health, core.health_since_ms, core.health_lift);
        let theirs = (&remote_health, remote.state_since_ms, remote.lift);
        if !merged_keeps_ours(ours, theirs, now_ms) {
            core.health = remote_health;
            core.health_since_ms = remote.state_since_ms;
            core.health_lift = remote.lift;
        }
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

/// Whether merging our state with another instance's keeps ours. Symmetric, so both
/// instances end on the same state whichever hears of the other first:
/// - `Active` is only ever entered by a lift (admin reset, a successful probe or token
///   refresh): a lift wins over an older state of its kind (`Lift::lifts`; an unknown
///   lift counts as a reset) and over anything elapsed, and loses to anything newer;
/// - otherwise what is in force beats what has elapsed, the more severe state beats the
///   less severe one (as within one instance: a late 429 does not undo a suspension),
///   and between equals the newer wins.
pub(crate) fn merged_keeps_ours(
    ours: (&AccountState, u64, Option<Lift>),
    theirs: (&AccountState, u64, Option<Lift>),
    now_ms: u64,
) -> bool {
    // The last two fields only break exact ties, the same way on both sides.
    fn rank(state: &AccountState, since: u64, now_ms: u64) -> (u8, u8, u64, u64, &str) {
        let (in_force, severity) = match state {
            AccountState::Active => (0, 0),
            s if s.in_force(now_ms) => (1, s.severity()),
            _ => (0, 0),
        };
        let until = state.until_ms().unwrap_or(u64::MAX);
        (
            in_force,
            severity,
            since,
            until,
            state.reason().unwrap_or(""),
        )
    }
    // Whether the lift `x` ends the other side's state `y`.
    let ends = |x: (&AccountState, u64, Option<Lift>), y: (&AccountState, u64, Option<Lift>)| {
        !y.0.in_force(now_ms) || (x.1 > y.1 && x.2.unwrap_or(Lift::Reset).lifts(y.0))
    };
    let (a, b) = (ours, theirs);
    let a_lift = matches!(a.0, AccountState::Active);
    let b_lift = matches!(b.0, AccountState::Active);
    match (a_lift, b_lift) {
        (true, false) => ends(a, b),
        (false, true) => !ends(b, a),
        _ => rank(a.0, a.1, now_ms) >= rank(b.0, b.1, now_ms),
    }
}

#[cfg(test)]
mod merge_tests {
    use super::merged_keeps_ours;
    use crate::state::{AccountState, Lift};

    const NOW: u64 = 10_000;

    fn quota() -> AccountState {
        AccountState::QuotaExhausted {
            until_ms: NOW + 60_000,
            reason: "quota".into(),
        }
    }
    fn throttled(until_ms: u64) -> AccountState {
        AccountState::Throttled {
            until_ms,
            reason: "429".into(),
        }
    }
    fn suspended() -> AccountState {
        AccountState::Suspended {
            since_ms: 5_000,
            reason: "suspended".into(),
        }
    }

    /// Exactly one side keeps its state, and both sides agree which. `Active` here is
    /// an admin reset's.
    fn winner(a: (&AccountState, u64), b: (&AccountState, u64)) -> AccountState {
        winner_lifted((a.0, a.1, None), (b.0, b.1, None))
    }

    fn winner_lifted(
        a: (&AccountState, u64, Option<Lift>),
        b: (&AccountState, u64, Option<Lift>),
    ) -> AccountState {
        let a_keeps = merged_keeps_ours(a, b, NOW);
        let b_keeps = merged_keeps_ours(b, a, NOW);
        assert_ne!(
            a_keeps, b_keeps,
            "{a:?} vs {b:?}: the merge must be symmetric"
        );
        if a_keeps { a.0.clone() } else { b.0.clone() }
    }

    #[test]
    fn exact_ties_are_broken_the_same_way_on_both_sides() {
        assert_eq!(
            winner(
                (&throttled(NOW + 100), 5_000),
                (&throttled(NOW + 900), 5_000)
            ),
            throttled(NOW + 900)
        );
    }

    #[test]
    fn an_older_active_record_does_not_undo_a_newer_decision() {
        assert_eq!(
            winner((&quota(), 5_000), (&AccountState::Active, 0)),
            quota()
        );
    }

    #[test]
    fn a_newer_lift_undoes_an_older_state() {
        assert_eq!(
            winner((&suspended(), 5_000), (&AccountState::Active, 6_000)),
            AccountState::Active
        );
    }

    #[test]
    fn a_newer_throttle_does_not_undo_an_older_quota_in_force() {
        assert_eq!(
            winner((&quota(), 5_000), (&throttled(NOW + 500), 6_000)),
            quota()
        );
    }

    #[test]
    fn the_more_severe_state_wins_and_elapsed_states_lose() {
        assert_eq!(
            winner((&quota(), 6_000), (&suspended(), 5_000)),
            suspended()
        );
        assert_eq!(
            winner((&throttled(NOW - 1), 7_000), (&quota(), 5_000)),
            quota()
        );
        // Two throttles in force: the newer.
        assert_eq!(
            winner(
                (&throttled(NOW + 100), 5_000),
                (&throttled(NOW + 900), 6_000)
            ),
            throttled(NOW + 900)
        );
        // An elapsed state and an older lift: the lift.
        assert_eq!(
            winner((&throttled(NOW - 1), 7_000), (&AccountState::Active, 5_000)),
            AccountState::Active
        );
    }

    #[test]
    fn a_newer_lift_ends_only_older_states_of_its_kind() {
        let active = AccountState::Active;
        // Chaos soak finding 10: a probe that ended a throttle on one instance must not
        // undo a quota decided on the other a moment before.
        assert_eq!(
            winner_lifted((&quota(), 5_000, None), (&active, 6_000, Some(Lift::Probe))),
            quota()
        );
        assert_eq!(
            winner_lifted(
                (&quota(), 5_000, None),
                (&active, 6_000, Some(Lift::Refresh))
            ),
            quota()
        );
        assert_eq!(
            winner_lifted(
                (&suspended(), 5_000, None),
                (&active, 6_000, Some(Lift::Probe))
            ),
            suspended()
        );
        // What each lift does end.
        assert_eq!(
            winner_lifted(
                (&throttled(NOW + 500), 5_000, None),
                (&active, 6_000, Some(Lift::Probe))
            ),
            active
        );
        let denied = AccountState::RefreshDenied {
            since_ms: 5_000,
            reason: "invalid_grant".into(),
        };
        assert_eq!(
            winner_lifted(
                (&denied, 5_000, None),
                (&active, 6_000, Some(Lift::Refresh))
            ),
            active
        );
        assert_eq!(
            winner_lifted((&quota(), 5_000, None), (&active, 6_000, Some(Lift::Reset))),
            active
        );
    }
}
