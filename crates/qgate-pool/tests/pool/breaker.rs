//! The per-account circuit breaker as seen through selection and reports.

use crate::*;
use qgate_pool::{BreakerConfig, BreakerPhase, PoolConfig};

const RECOVERY: u64 = 300_000;

fn one(strategy: Strategy) -> Pool {
    pool(strategy, names(&["a"]))
}

/// Five transient failures at `now`: the breaker opens until `now + RECOVERY`.
fn trip(pool: &Pool, who: &str, now: u64) -> Vec<Transition> {
    let mut all = Vec::new();
    for _ in 0..5 {
        all.extend(fail(pool, who, Outcome::Transient, now));
    }
    all
}

fn phase(pool: &Pool, who: &str, now: u64) -> BreakerPhase {
    pool.status(who, now).unwrap().breaker.phase
}

#[test]
fn opens_after_five_consecutive_account_failures() {
    let pool = one(Strategy::RoundRobin);
    for outcome in [
        Outcome::Transient,
        Outcome::Token,
        Outcome::RefreshFailed,
        Outcome::Transient,
    ] {
        assert!(fail(&pool, "a", outcome, T0).is_empty());
    }
    assert_eq!(phase(&pool, "a", T0), BreakerPhase::Closed);
    let t = fail(&pool, "a", Outcome::Transient, T0);
    assert_eq!(
        kinds(&t),
        [(StateKind::BreakerClosed, StateKind::BreakerOpen)]
    );
    assert!(t[0].is_breaker_opened());
    assert_eq!(t[0].until_ms, Some(T0 + RECOVERY));
    assert!(
        t[0].reason.contains("5 consecutive failures"),
        "{}",
        t[0].reason
    );
    assert_eq!(
        select(&pool, T0 + 1).unwrap_err(),
        NoAccount::Unavailable {
            retry_after_ms: Some(RECOVERY - 1)
        }
    );
    let status = pool.status("a", T0).unwrap();
    assert_eq!(status.breaker.opened_total, 1);
    assert!(!status.available);
}

#[test]
fn a_success_resets_the_failure_run() {
    let pool = one(Strategy::RoundRobin);
    for _ in 0..4 {
        fail(&pool, "a", Outcome::Transient, T0);
    }
    serve(&pool, T0);
    for _ in 0..4 {
        fail(&pool, "a", Outcome::Transient, T0);
    }
    assert_eq!(phase(&pool, "a", T0), BreakerPhase::Closed);
    assert_eq!(
        pool.status("a", T0).unwrap().breaker.consecutive_failures,
        4
    );
}

#[test]
fn failures_that_are_not_the_accounts_fault_never_trip_it() {
    let pool = one(Strategy::RoundRobin);
    for _ in 0..20 {
        fail(&pool, "a", Outcome::ClientError, T0);
        fail(&pool, "a", Outcome::Cancelled, T0);
        fail(
            &pool,
            "a",
            Outcome::Overloaded {
                model: MODEL.into(),
            },
            T0,
        );
    }
    let status = pool.status("a", T0).unwrap();
    assert_eq!(status.breaker.phase, BreakerPhase::Closed);
    assert_eq!(status.breaker.consecutive_failures, 0);
    assert_eq!(status.state.kind(), StateKind::Active);
    assert!(status.available);
    // they still count as requests (and client errors / overloads as failed attempts)
    assert_eq!(status.request_count, 60);
    assert_eq!(status.error_count, 40);
    assert_eq!(status.cancelled_count, 20);
}

#[test]
fn half_open_hands_out_exactly_one_probe() {
    let pool = pool(Strategy::RoundRobin, names(&["a", "b"]));
    trip(&pool, "a", T0);
    let later = T0 + RECOVERY;
    // reads at the elapsed time report half-open but change nothing
    assert_eq!(phase(&pool, "a", later), BreakerPhase::HalfOpen);
    assert!(pool.status("a", later).unwrap().available);
    assert!(!pool.status("a", later).unwrap().breaker.probe_in_flight);

    let probe = pool
        .select(
            &SelectRequest {
                exclude: &[id("b")],
                ..req()
            },
            later,
        )
        .unwrap();
    assert!(probe.is_probe());
    assert_eq!(probe.account(), "a");
    // a second concurrent request does not get a: it goes to b, or nowhere
    for _ in 0..3 {
        assert_eq!(serve(&pool, later), "b");
    }
    assert_eq!(
        pool.select(
            &SelectRequest {
                exclude: &[id("b")],
                ..req()
            },
            later
        )
        .unwrap_err(),
        NoAccount::Unavailable {
            retry_after_ms: None
        }
    );
    assert!(pool.status("a", later).unwrap().breaker.probe_in_flight);

    let t = pool.report(probe, Outcome::Success { ttfe_ms: 90 }, later);
    assert_eq!(
        kinds(&t),
        [(StateKind::BreakerHalfOpen, StateKind::BreakerClosed)]
    );
    assert_eq!(phase(&pool, "a", later), BreakerPhase::Closed);
    assert!(!select(&pool, later).unwrap().is_probe());
}

#[test]
fn failed_probes_double_the_open_period_up_to_the_cap() {
    let cfg = PoolConfig {
        breaker: BreakerConfig {
            max_recovery_timeout_ms: 1_000_000,
            ..BreakerConfig::default()
        },
        ..cfg(Strategy::RoundRobin)
    };
    let pool = Pool::new(cfg, names(&["a"])).unwrap();
    trip(&pool, "a", T0);
    let mut now = T0 + RECOVERY;
    let mut periods = Vec::new();
    for _ in 0..4 {
        let probe = select(&pool, now).unwrap();
        assert!(probe.is_probe());
        let t = pool.report(probe, Outcome::Transient, now);
        assert_eq!(
            kinds(&t),
            [(StateKind::BreakerHalfOpen, StateKind::BreakerOpen)]
        );
        assert!(t[0].is_breaker_opened());
        let until = t[0].until_ms.unwrap();
        periods.push(until - now);
        assert_eq!(
            pool.status("a", now).unwrap().breaker.timeout_ms,
            until - now
        );
        assert!(select(&pool, until - 1).is_err());
        now = until;
    }
    assert_eq!(periods, [600_000, 1_000_000, 1_000_000, 1_000_000]);
    assert_eq!(pool.status("a", now).unwrap().breaker.opened_total, 5);

    // a successful probe closes it and the next opening starts from the base again
    let probe = select(&pool, now).unwrap();
    pool.report(probe, Outcome::Success { ttfe_ms: 1 }, now);
    assert_eq!(pool.status("a", now).unwrap().breaker.timeout_ms, RECOVERY);
    let t = trip(&pool, "a", now);
    assert_eq!(t.last().unwrap().until_ms, Some(now + RECOVERY));
}

#[test]
fn a_probe_without_verdict_is_given_back() {
    let pool = one(Strategy::RoundRobin);
    trip(&pool, "a", T0);
    let now = T0 + RECOVERY + 5;
    // dropped unreported (e.g. the client went away before the upstream answered)
    drop(select(&pool, now).unwrap());
    let probe = select(&pool, now).unwrap();
    assert!(probe.is_probe());
    // a client error says nothing about the account either
    pool.report(probe, Outcome::ClientError, now);
    let probe = select(&pool, now).unwrap();
    assert!(probe.is_probe());
    pool.report(probe, Outcome::Success { ttfe_ms: 5 }, now);
    assert_eq!(phase(&pool, "a", now), BreakerPhase::Closed);
}

#[test]
fn late_failures_of_requests_started_before_the_opening_do_not_extend_it() {
    let pool = one(Strategy::RoundRobin);
    let stragglers: Vec<Lease> = (0..3).map(|_| select(&pool, T0).unwrap()).collect();
    trip(&pool, "a", T0);
    for lease in stragglers {
        assert!(
            pool.report(lease, Outcome::Transient, T0 + 100_000)
                .is_empty()
        );
    }
    let status = pool.status("a", T0).unwrap();
    assert_eq!(status.breaker.open_until_ms, Some(T0 + RECOVERY));
    assert!(select(&pool, T0 + RECOVERY).unwrap().is_probe());
}

#[test]
fn admin_reset_closes_it_and_restores_the_base_timeout() {
    let pool = one(Strategy::RoundRobin);
    trip(&pool, "a", T0);
    let probe = select(&pool, T0 + RECOVERY).unwrap();
    pool.report(probe, Outcome::Token, T0 + RECOVERY);
    assert_eq!(
        pool.status("a", T0).unwrap().breaker.timeout_ms,
        2 * RECOVERY
    );

    let t = pool.reset("a", T0 + RECOVERY + 1).unwrap();
    assert_eq!(
        kinds(&t),
        [(StateKind::BreakerOpen, StateKind::BreakerClosed)]
    );
    let status = pool.status("a", T0 + RECOVERY + 1).unwrap();
    assert_eq!(status.breaker.phase, BreakerPhase::Closed);
    assert_eq!(status.breaker.timeout_ms, RECOVERY);
    assert_eq!(status.breaker.consecutive_failures, 0);
    assert_eq!(status.breaker.opened_total, 2, "history is kept");
    assert!(!select(&pool, T0 + RECOVERY + 1).unwrap().is_probe());
}

#[test]
fn reading_state_never_changes_it() {
    let pool = pool(Strategy::RoundRobin, names(&["a", "b"]));
    trip(&pool, "a", T0);
    fail(
        &pool,
        "b",
        Outcome::Throttled {
            retry_after_ms: Some(10),
        },
        T0,
    );
    let far = T0 + 10 * RECOVERY;
    let first = (pool.snapshot(far), pool.health(far), pool.status("a", far));
    let again = (pool.snapshot(far), pool.health(far), pool.status("a", far));
    assert_eq!(first, again);
    // earlier reads are unaffected by the later ones
    assert_eq!(phase(&pool, "a", T0 + 1), BreakerPhase::Open);
    assert_eq!(state_of(&pool, "b", T0 + 1), StateKind::Throttled);
    assert_eq!(state_of(&pool, "b", far), StateKind::Active);
}

#[test]
fn disabled_breaker_never_blocks() {
    let cfg = PoolConfig {
        breaker: BreakerConfig {
            enabled: false,
            ..BreakerConfig::default()
        },
        ..cfg(Strategy::RoundRobin)
    };
    let pool = Pool::new(cfg, names(&["a"])).unwrap();
    assert!(trip(&pool, "a", T0).is_empty());
    trip(&pool, "a", T0);
    assert_eq!(serve(&pool, T0), "a");
    assert_eq!(phase(&pool, "a", T0), BreakerPhase::Closed);
}

#[test]
fn concurrent_selects_share_a_single_probe() {
    let pool = one(Strategy::LeastUsed);
    trip(&pool, "a", T0);
    let now = T0 + RECOVERY;
    let granted: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| select(&pool, now).ok()))
            .collect();
        let leases: Vec<Option<Lease>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        leases
            .iter()
            .map(|l| l.as_ref().is_some_and(Lease::is_probe))
            .collect()
    });
    assert_eq!(granted.iter().filter(|&&g| g).count(), 1, "{granted:?}");
}
