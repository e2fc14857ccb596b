//! What survives restarts (export/import), config reloads (rebuild) and what crosses
//! instances (shared state).

use crate::*;
use qgate_pool::{AccountState, BreakerPhase, PersistedState, SharedState};

fn four() -> Pool {
    pool(Strategy::RoundRobin, names(&["a", "b", "c", "d"]))
}

#[test]
fn persistent_states_round_trip_through_json() {
    let before = four();
    fail(&before, "a", Outcome::Suspended, T0);
    before.report("b", Outcome::RefreshDenied, T0);
    fail(
        &before,
        "c",
        Outcome::QuotaExhausted {
            reset_at_ms: Some(T0 + 86_400_000),
        },
        T0,
    );
    before.disable("d").unwrap();
    // short-lived things are not persisted
    before.report(
        "d",
        Outcome::Throttled {
            retry_after_ms: Some(5_000),
        },
        T0,
    );

    let saved = before.export_persistent();
    assert_eq!(saved.len(), 4, "{saved:?}");
    let json = serde_json::to_string(&saved).unwrap();
    let loaded: Vec<PersistedState> = serde_json::from_str(&json).unwrap();
    assert_eq!(loaded, saved);

    let after = four();
    let t = after.import_persistent_reporting(loaded, T0 + 1_000);
    assert_eq!(
        kinds(&t),
        [
            (StateKind::Active, StateKind::Suspended),
            (StateKind::Active, StateKind::RefreshDenied),
            (StateKind::Active, StateKind::QuotaExhausted),
            (StateKind::Active, StateKind::Disabled),
        ]
    );
    for who in ["a", "b", "c", "d"] {
        assert_eq!(
            after.status(who, T0 + 1_000).unwrap().state,
            before.status(who, T0 + 1_000).unwrap().state,
            "{who}"
        );
    }
    assert_eq!(after.export_persistent(), saved);
    assert_eq!(after.health(T0 + 1_000).routable, 0);
}

#[test]
fn import_skips_expired_states_and_unknown_accounts() {
    let saved = vec![
        PersistedState {
            account: id("a"),
            admin_enabled: None,
            state: Some(AccountState::QuotaExhausted {
                until_ms: T0,
                reason: "quota".into(),
            }),
        },
        PersistedState {
            account: id("gone"),
            admin_enabled: Some(false),
            state: None,
        },
    ];
    let pool = four();
    assert!(pool.import_persistent_reporting(saved, T0).is_empty());
    assert_eq!(pool.health(T0).routable, 4);
}

#[test]
fn rebuild_keeps_runtime_state_for_ids_that_remain() {
    let old = pool(Strategy::RoundRobin, names(&["a", "b", "c"]));
    serve_n(&old, 3, T0);
    fail(&old, "a", Outcome::Suspended, T0);
    for _ in 0..5 {
        fail(&old, "b", Outcome::Transient, T0);
    }
    let in_flight = select(&old, T0).unwrap();
    assert_eq!(in_flight.account(), "c");

    let mut new_accounts = names(&["b", "a", "new"]);
    new_accounts[0].weight = 3;
    let new = old
        .rebuild(cfg(Strategy::WeightedRoundRobin), new_accounts)
        .unwrap();
    assert_eq!(
        new.account_ids().map(|a| a.as_str()).collect::<Vec<_>>(),
        ["b", "a", "new"]
    );
    assert_eq!(state_of(&new, "a", T0), StateKind::Suspended);
    let b = new.status("b", T0).unwrap();
    assert_eq!(b.breaker.phase, BreakerPhase::Open);
    assert_eq!(b.settings.weight, 3);
    assert_eq!(b.request_count, 6);
    assert!(new.status("c", T0).is_none());
    assert_eq!(serve(&new, T0), "new");

    // a lease from before the reload still settles its account
    let t = new.report(in_flight, Outcome::Suspended, T0);
    assert_eq!(kinds(&t), [(StateKind::Active, StateKind::Suspended)]);
    assert_eq!(
        old.status("c", T0).unwrap().state.kind(),
        StateKind::Suspended
    );
    assert_eq!(old.status("c", T0).unwrap().in_flight, 0);

    assert!(
        old.rebuild(cfg(Strategy::Random), names(&["x", "x"]))
            .is_err()
    );
}

#[test]
fn shared_state_moves_decisions_between_instances() {
    let here = four();
    let there = four();
    for _ in 0..5 {
        fail(&here, "a", Outcome::Transient, T0);
    }
    fail(
        &here,
        "b",
        Outcome::ModelUnavailable {
            model: MODEL.into(),
        },
        T0,
    );
    here.disable("c").unwrap();

    for who in ["a", "b", "c"] {
        let state = here.shared_state(who).unwrap();
        let json = serde_json::to_string(&state).unwrap();
        let state: SharedState = serde_json::from_str(&json).unwrap();
        there.apply_remote(&state, T0);
    }
    assert_eq!(
        there.status("a", T0).unwrap().breaker.phase,
        BreakerPhase::Open
    );
    assert_eq!(there.status("b", T0).unwrap().unavailable_models.len(), 1);
    assert_eq!(state_of(&there, "c", T0), StateKind::Disabled);
    assert_eq!(serve_n(&there, 3, T0 + 1), ["d", "d", "d"]);
    let other_model = there
        .select(&SelectRequest::new("claude-haiku"), T0 + 1)
        .unwrap();
    assert_ne!(other_model.account(), "a");
}

#[test]
fn persisted_json_has_a_readable_shape() {
    let pool = four();
    fail(&pool, "a", Outcome::Suspended, T0);
    let json = serde_json::to_value(pool.export_persistent()).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{
            "account": "a",
            "state": {
                "state": "suspended",
                "since_ms": T0,
                "reason": "upstream reports the account suspended"
            }
        }])
    );
}

#[test]
fn concurrent_decisions_of_two_instances_merge_the_same_way_on_both() {
    let here = four();
    let there = four();
    // `there` decides a quota state; a moment later `here`, not having heard of it,
    // publishes "a" for a transient failure (its state still active).
    fail(
        &there,
        "a",
        Outcome::QuotaExhausted {
            reset_at_ms: Some(T0 + 86_400_000),
        },
        T0,
    );
    here.report("a", Outcome::Transient, T0 + 5);
    let from_here = here.shared_state("a").unwrap();
    let from_there = there.shared_state("a").unwrap();
    there.apply_remote(&from_here, T0 + 10);
    here.apply_remote(&from_there, T0 + 10);
    for pool in [&here, &there] {
        assert_eq!(state_of(pool, "a", T0 + 10), StateKind::QuotaExhausted);
    }
    // An admin reset made after it wins everywhere.
    here.reset("a", T0 + 15).unwrap();
    there.apply_remote(&here.shared_state("a").unwrap(), T0 + 20);
    assert_eq!(state_of(&there, "a", T0 + 20), StateKind::Active);
}

#[test]
fn a_state_restored_at_startup_yields_to_a_reset_made_while_the_instance_was_down() {
    let up = four();
    fail(&up, "a", Outcome::Suspended, T0);
    let saved = up.export_persistent();
    // Another instance resets "a" while this one is down...
    up.reset("a", T0 + 30_000).unwrap();
    let reset = up.shared_state("a").unwrap();
    // ...and this one comes back with the suspension from its state file.
    let restarted = four();
    restarted.import_persistent(saved, T0 + 60_000);
    assert_eq!(state_of(&restarted, "a", T0 + 60_000), StateKind::Suspended);
    restarted.apply_remote(&reset, T0 + 60_000);
    assert_eq!(state_of(&restarted, "a", T0 + 60_000), StateKind::Active);
    // A record that never changed the state does not lift the restored one.
    let other = four();
    let untouched = other.shared_state("b").unwrap();
    restarted.import_persistent(
        vec![PersistedState {
            account: "b".parse().unwrap(),
            admin_enabled: None,
            state: Some(AccountState::Suspended {
                since_ms: T0,
                reason: "saved".into(),
            }),
        }],
        T0 + 60_000,
    );
    restarted.apply_remote(&untouched, T0 + 60_000);
    assert_eq!(state_of(&restarted, "b", T0 + 60_000), StateKind::Suspended);
}
