//! Account states: throttle, quota, suspension, refresh denial, per-model marks, admin
//! enable/disable, and what the counters show.

use crate::*;
use qgate_pool::{AccountState, ErrorClass, first_of_next_month_ms};

const S: u64 = 1_000;

#[test]
fn throttle_honours_retry_after() {
    let pool = pool(Strategy::RoundRobin, names(&["a", "b"]));
    let t = fail(
        &pool,
        "a",
        Outcome::Throttled {
            retry_after_ms: Some(42 * S),
        },
        T0,
    );
    assert_eq!(kinds(&t), [(StateKind::Active, StateKind::Throttled)]);
    assert_eq!(t[0].until_ms, Some(T0 + 42 * S));
    assert!(t[0].reason.contains("retry-after"), "{}", t[0].reason);
    assert!(!serve_n(&pool, 5, T0 + 42 * S - 1).contains(&"a".to_owned()));
    assert_eq!(state_of(&pool, "a", T0 + 42 * S), StateKind::Active);
    assert!(serve_n(&pool, 2, T0 + 42 * S).contains(&"a".to_owned()));
}

#[test]
fn throttle_without_retry_after_escalates_and_a_success_resets_it() {
    let pool = pool(Strategy::RoundRobin, names(&["a"]));
    let mut now = T0;
    let mut periods = Vec::new();
    for _ in 0..6 {
        let t = fail(
            &pool,
            "a",
            Outcome::Throttled {
                retry_after_ms: None,
            },
            now,
        );
        let until = t[0].until_ms.unwrap();
        periods.push((until - now) / S);
        now = until;
    }
    assert_eq!(periods, [30, 60, 120, 240, 480, 600]);
    assert_eq!(pool.status("a", now).unwrap().throttle_level, 6);
    serve(&pool, now);
    assert_eq!(pool.status("a", now).unwrap().throttle_level, 0);
    let t = fail(
        &pool,
        "a",
        Outcome::Throttled {
            retry_after_ms: None,
        },
        now,
    );
    assert_eq!(t[0].until_ms, Some(now + 30 * S));
}

#[test]
fn a_burst_of_429s_from_one_moment_escalates_once() {
    let pool = pool(Strategy::RoundRobin, names(&["a"]));
    let in_flight: Vec<Lease> = (0..4).map(|_| select(&pool, T0).unwrap()).collect();
    let mut transitions = Vec::new();
    for lease in in_flight {
        transitions.extend(pool.report(
            lease,
            Outcome::Throttled {
                retry_after_ms: None,
            },
            T0,
        ));
    }
    assert_eq!(transitions.len(), 1, "{transitions:?}");
    let status = pool.status("a", T0).unwrap();
    assert_eq!(status.state.until_ms(), Some(T0 + 30 * S));
    assert_eq!(status.throttle_level, 1);
}

#[test]
fn all_throttled_hints_the_soonest_recovery() {
    let pool = pool(Strategy::WeightedRoundRobin, names(&["a", "b", "c"]));
    fail(
        &pool,
        "a",
        Outcome::Throttled {
            retry_after_ms: Some(50 * S),
        },
        T0,
    );
    fail(
        &pool,
        "b",
        Outcome::Throttled {
            retry_after_ms: Some(20 * S),
        },
        T0,
    );
    fail(
        &pool,
        "c",
        Outcome::QuotaExhausted {
            reset_at_ms: Some(T0 + 90 * S),
        },
        T0,
    );
    assert_eq!(
        select(&pool, T0 + 5 * S).unwrap_err(),
        NoAccount::AllThrottled {
            retry_after_ms: 15 * S
        }
    );
    assert_eq!(serve(&pool, T0 + 20 * S), "b");
}

#[test]
fn quota_lasts_until_the_upstream_reset_time() {
    let pool = pool(Strategy::RoundRobin, names(&["a"]));
    let reset = T0 + 3_600 * S;
    let t = fail(
        &pool,
        "a",
        Outcome::QuotaExhausted {
            reset_at_ms: Some(reset),
        },
        T0,
    );
    assert_eq!(kinds(&t), [(StateKind::Active, StateKind::QuotaExhausted)]);
    assert_eq!(t[0].until_ms, Some(reset));
    assert!(t[0].affects_persistence());
    assert_eq!(
        select(&pool, T0).unwrap_err(),
        NoAccount::AllThrottled {
            retry_after_ms: 3_600 * S
        }
    );
    assert_eq!(serve(&pool, reset), "a");
}

#[test]
fn quota_without_reset_time_lasts_until_the_first_of_next_month() {
    let pool = pool(Strategy::RoundRobin, names(&["a", "b", "c"]));
    // 2023-11-14 -> 2023-12-01T00:00:00Z
    let t = fail(
        &pool,
        "a",
        Outcome::QuotaExhausted { reset_at_ms: None },
        T0,
    );
    assert_eq!(t[0].until_ms, Some(1_701_388_800 * S));
    // December rolls into January: 2024-12-15 -> 2025-01-01
    let dec = 1_734_220_800 * S;
    let t = fail(
        &pool,
        "b",
        Outcome::QuotaExhausted { reset_at_ms: None },
        dec,
    );
    assert_eq!(t[0].until_ms, Some(1_735_689_600 * S));
    // a reset time already in the past is not believed
    let t = fail(
        &pool,
        "c",
        Outcome::QuotaExhausted {
            reset_at_ms: Some(T0 - 1),
        },
        T0,
    );
    assert_eq!(t[0].until_ms, Some(first_of_next_month_ms(T0)));
    assert_eq!(
        state_of(&pool, "a", 1_701_388_800 * S - 1),
        StateKind::QuotaExhausted
    );
    assert_eq!(state_of(&pool, "a", 1_701_388_800 * S), StateKind::Active);
}

#[test]
fn suspension_and_refresh_denial_hold_until_reset() {
    let pool = pool(Strategy::RoundRobin, names(&["a", "b", "c"]));
    let t = fail(&pool, "a", Outcome::Suspended, T0);
    assert_eq!(kinds(&t), [(StateKind::Active, StateKind::Suspended)]);
    // refresh failures are reported by id (there may be no lease)
    let t = pool.report("b", Outcome::RefreshDenied, T0);
    assert_eq!(kinds(&t), [(StateKind::Active, StateKind::RefreshDenied)]);

    let years_later = T0 + 3 * 365 * 86_400 * S;
    assert_eq!(state_of(&pool, "a", years_later), StateKind::Suspended);
    assert_eq!(state_of(&pool, "b", years_later), StateKind::RefreshDenied);
    assert_eq!(serve_n(&pool, 3, years_later), ["c", "c", "c"]);

    // weaker news does not lift them
    assert!(
        pool.report(
            "a",
            Outcome::Throttled {
                retry_after_ms: None
            },
            T0
        )
        .is_empty()
    );
    assert!(
        pool.report("a", Outcome::Success { ttfe_ms: 1 }, T0)
            .is_empty()
    );
    assert!(
        pool.report("b", Outcome::QuotaExhausted { reset_at_ms: None }, T0)
            .is_empty()
    );
    assert!(matches!(
        pool.status("a", T0).unwrap().state,
        AccountState::Suspended { since_ms: T0, .. }
    ));

    assert_eq!(
        pool.select(
            &SelectRequest {
                exclude: &[id("c")],
                ..req()
            },
            T0
        )
        .unwrap_err(),
        NoAccount::Unavailable {
            retry_after_ms: None
        }
    );
    let t = pool.reset("a", T0 + 1).unwrap();
    assert_eq!(kinds(&t), [(StateKind::Suspended, StateKind::Active)]);
    pool.reset("b", T0 + 1).unwrap();
    assert_eq!(serve_n(&pool, 3, T0 + 1).len(), 3);
    assert_eq!(state_of(&pool, "b", T0 + 1), StateKind::Active);
}

#[test]
fn allow_lists_route_models_to_accounts_that_may_serve_them() {
    let mut accounts = names(&["free", "pro"]);
    accounts[0].allowed_models = Some(vec!["claude-haiku".into()]);
    accounts[1].allowed_models = Some(vec!["claude-haiku".into(), "claude-opus".into()]);
    let pool = pool(Strategy::RoundRobin, accounts);
    for _ in 0..5 {
        let lease = pool.select(&SelectRequest::new("claude-opus"), T0).unwrap();
        assert_eq!(lease.account(), "pro");
    }
    let haiku: Vec<String> = (0..4)
        .map(|_| {
            let lease = pool
                .select(&SelectRequest::new("claude-haiku"), T0)
                .unwrap();
            lease.account().to_string()
        })
        .collect();
    assert!(haiku.contains(&"free".to_owned()) && haiku.contains(&"pro".to_owned()));

    pool.disable("pro").unwrap();
    assert_eq!(
        pool.select(&SelectRequest::new("claude-opus"), T0)
            .unwrap_err(),
        NoAccount::Unavailable {
            retry_after_ms: None
        }
    );
    assert_eq!(
        pool.select(&SelectRequest::new("gpt-4"), T0).unwrap_err(),
        NoAccount::ModelNotSupported
    );
    // once the only account entitled to a model has been tried, the answer is "all
    // tried" (the gateway reports that attempt's failure), not "model not supported"
    pool.enable("pro").unwrap();
    let tried = [id("pro")];
    let retry = SelectRequest {
        exclude: &tried,
        ..SelectRequest::new("claude-opus")
    };
    assert_eq!(pool.select(&retry, T0).unwrap_err(), NoAccount::AllExcluded);
}

#[test]
fn model_unavailable_marks_expire_after_their_ttl() {
    let pool = pool(Strategy::RoundRobin, names(&["a", "b"]));
    let t = fail(
        &pool,
        "a",
        Outcome::ModelUnavailable {
            model: MODEL.into(),
        },
        T0,
    );
    assert_eq!(
        kinds(&t),
        [(StateKind::Active, StateKind::ModelUnavailable)]
    );
    assert_eq!(t[0].model.as_deref(), Some(MODEL));
    let ttl = 1_800 * S;
    assert_eq!(t[0].until_ms, Some(T0 + ttl));
    // a second refusal while marked is not a new transition
    assert!(
        pool.report(
            "a",
            Outcome::ModelUnavailable {
                model: MODEL.into()
            },
            T0
        )
        .is_empty()
    );

    assert_eq!(serve_n(&pool, 4, T0 + 1), ["b", "b", "b", "b"]);
    // other models are unaffected, and so is the account's state
    let other = pool
        .select(&SelectRequest::new("claude-haiku"), T0 + 1)
        .unwrap();
    drop(other);
    let status = pool.status("a", T0 + 1).unwrap();
    assert_eq!(status.state, AccountState::Active);
    assert_eq!(status.unavailable_models.len(), 1);

    fail(
        &pool,
        "b",
        Outcome::ModelUnavailable {
            model: MODEL.into(),
        },
        T0 + 2,
    );
    assert_eq!(
        select(&pool, T0 + 3).unwrap_err(),
        NoAccount::ModelNotSupported
    );
    assert_eq!(serve(&pool, T0 + ttl), "a");
    assert!(
        pool.status("a", T0 + ttl)
            .unwrap()
            .unavailable_models
            .is_empty()
    );
}

#[test]
fn configuration_and_admin_decide_enablement() {
    let mut accounts = names(&["a", "b"]);
    accounts[1].enabled = false;
    let pool = pool(Strategy::RoundRobin, accounts);
    assert_eq!(serve_n(&pool, 3, T0), ["a", "a", "a"]);
    assert_eq!(
        pool.status("b", T0).unwrap().state,
        AccountState::Disabled {
            reason: "disabled in configuration".into()
        }
    );
    let t = pool.enable("b").unwrap();
    assert_eq!(kinds(&t), [(StateKind::Disabled, StateKind::Active)]);
    assert!(serve_n(&pool, 2, T0).contains(&"b".to_owned()));
    let t = pool.disable("a").unwrap();
    assert_eq!(kinds(&t), [(StateKind::Active, StateKind::Disabled)]);
    assert!(t[0].affects_persistence());
    assert_eq!(pool.status("a", T0).unwrap().admin_override, Some(false));
    assert_eq!(serve_n(&pool, 2, T0), ["b", "b"]);
    assert!(pool.disable("nobody").is_err());
}

#[test]
fn a_lease_is_settled_once_and_unknown_ids_change_nothing() {
    let pool = pool(Strategy::RoundRobin, names(&["a"]));
    let lease = select(&pool, T0).unwrap();
    pool.report(&lease, Outcome::Transient, T0);
    assert!(lease.is_settled());
    pool.report(&lease, Outcome::Transient, T0);
    drop(lease);
    let status = pool.status("a", T0).unwrap();
    assert_eq!((status.error_count, status.cancelled_count), (1, 0));
    assert_eq!(status.breaker.consecutive_failures, 1);
    assert_eq!(status.in_flight, 0);
    assert!(pool.report("ghost", Outcome::Suspended, T0).is_empty());
}

#[test]
fn counters_and_timestamps_describe_what_happened() {
    let pool = pool(Strategy::RoundRobin, names(&["a"]));
    serve(&pool, T0);
    fail(&pool, "a", Outcome::ClientError, T0 + 1);
    fail(&pool, "a", Outcome::Transient, T0 + 2);
    drop(select(&pool, T0 + 3).unwrap()); // abandoned: counts as cancelled
    let s = pool.status("a", T0 + 4).unwrap();
    assert_eq!(
        (
            s.request_count,
            s.success_count,
            s.error_count,
            s.cancelled_count
        ),
        (4, 1, 2, 1)
    );
    assert_eq!(s.errors_by_class.get(&ErrorClass::Client), Some(&1));
    assert_eq!(s.errors_by_class.get(&ErrorClass::Transient), Some(&1));
    assert_eq!(s.last_error_class, Some(ErrorClass::Transient));
    assert_eq!(
        (s.last_used_ms, s.last_success_ms, s.last_error_ms),
        (Some(T0 + 3), Some(T0), Some(T0 + 2))
    );
    let health = pool.health(T0 + 4);
    assert_eq!((health.total, health.routable, health.in_flight), (1, 1, 0));
    assert_eq!(health.by_state[&StateKind::Active], 1);
}

#[test]
fn health_changes_of_a_disabled_account_are_still_reported() {
    let pool = pool(Strategy::RoundRobin, names(&["a"]));
    let in_flight = select(&pool, T0).unwrap();
    pool.disable("a").unwrap();
    let t = pool.report(in_flight, Outcome::Suspended, T0);
    assert_eq!(kinds(&t), [(StateKind::Active, StateKind::Suspended)]);
    assert_eq!(state_of(&pool, "a", T0), StateKind::Disabled);
    let t = pool.reset("a", T0).unwrap();
    assert_eq!(kinds(&t), [(StateKind::Suspended, StateKind::Active)]);
    let t = pool.enable("a").unwrap();
    assert_eq!(kinds(&t), [(StateKind::Disabled, StateKind::Active)]);
}
