//! Recovery from outside the request path: a successful health probe and a successful
//! token refresh lift exactly what they can disprove, and nothing stronger.

use crate::*;
use qgate_pool::BreakerPhase;

fn trip(pool: &Pool, who: &str, now: u64) {
    for _ in 0..5 {
        fail(pool, who, Outcome::Transient, now);
    }
}

#[test]
fn probe_success_closes_an_open_breaker_and_counts_as_one_transition() {
    let pool = pool(Strategy::RoundRobin, names(&["a"]));
    trip(&pool, "a", T0);
    assert_eq!(
        pool.status("a", T0).unwrap().breaker.phase,
        BreakerPhase::Open
    );
    let t = pool.probe_succeeded("a", T0 + 10).unwrap();
    assert_eq!(
        kinds(&t),
        [(StateKind::BreakerOpen, StateKind::BreakerClosed)]
    );
    let status = pool.status("a", T0 + 10).unwrap();
    assert_eq!(status.breaker.phase, BreakerPhase::Closed);
    assert!(status.available);
    assert_eq!(serve(&pool, T0 + 11), "a");
}

#[test]
fn probe_success_ends_a_throttle_cooldown() {
    let pool = pool(Strategy::RoundRobin, names(&["a"]));
    fail(
        &pool,
        "a",
        Outcome::Throttled {
            retry_after_ms: None,
        },
        T0,
    );
    assert_eq!(state_of(&pool, "a", T0 + 1), StateKind::Throttled);
    let t = pool.probe_succeeded("a", T0 + 1).unwrap();
    assert_eq!(kinds(&t), [(StateKind::Throttled, StateKind::Active)]);
    assert_eq!(state_of(&pool, "a", T0 + 1), StateKind::Active);
    assert_eq!(serve(&pool, T0 + 2), "a");
}

#[test]
fn probe_success_leaves_stronger_states_alone() {
    let pool = pool(Strategy::RoundRobin, names(&["s", "q", "r"]));
    fail(&pool, "s", Outcome::Suspended, T0);
    fail(
        &pool,
        "q",
        Outcome::QuotaExhausted { reset_at_ms: None },
        T0,
    );
    fail(&pool, "r", Outcome::RefreshDenied, T0);
    for (who, kind) in [
        ("s", StateKind::Suspended),
        ("q", StateKind::QuotaExhausted),
        ("r", StateKind::RefreshDenied),
    ] {
        assert!(pool.probe_succeeded(who, T0 + 1).unwrap().is_empty());
        assert_eq!(state_of(&pool, who, T0 + 1), kind);
    }
}

#[test]
fn probe_success_on_a_healthy_account_changes_nothing() {
    let pool = pool(Strategy::RoundRobin, names(&["a"]));
    serve(&pool, T0);
    assert!(pool.probe_succeeded("a", T0).unwrap().is_empty());
    assert!(pool.probe_succeeded("nope", T0).is_err());
}

#[test]
fn refresh_success_lifts_only_a_refresh_denial() {
    let pool = pool(Strategy::RoundRobin, names(&["r", "s"]));
    fail(&pool, "r", Outcome::RefreshDenied, T0);
    fail(&pool, "s", Outcome::Suspended, T0);
    let t = pool.refresh_succeeded("r", T0 + 1).unwrap();
    assert_eq!(kinds(&t), [(StateKind::RefreshDenied, StateKind::Active)]);
    assert_eq!(state_of(&pool, "r", T0 + 1), StateKind::Active);
    assert!(pool.refresh_succeeded("s", T0 + 1).unwrap().is_empty());
    assert_eq!(state_of(&pool, "s", T0 + 1), StateKind::Suspended);
    assert!(pool.refresh_succeeded("nope", T0).is_err());
}
