//! Concurrency caps, RPM limits (also under thread races) and the `NoAccount` answers.

use crate::*;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

fn capped(name: &str, max_concurrency: Option<u32>, rpm_limit: Option<u32>) -> AccountSettings {
    AccountSettings {
        max_concurrency,
        rpm_limit,
        ..account(name)
    }
}

#[test]
fn concurrency_cap_holds_slots_until_leases_drop() {
    let pool = pool(Strategy::LeastUsed, vec![capped("a", Some(2), None)]);
    let first = select(&pool, T0).unwrap();
    let second = select(&pool, T0).unwrap();
    assert_eq!(select(&pool, T0).unwrap_err(), NoAccount::AllBusy);
    assert_eq!(pool.status("a", T0).unwrap().in_flight, 2);
    pool.report(first, Outcome::Success { ttfe_ms: 10 }, T0);
    let third = select(&pool, T0).unwrap();
    drop((second, third));
    assert_eq!(pool.status("a", T0).unwrap().in_flight, 0);
}

#[test]
fn rpm_limit_slides_and_refusals_do_not_spend_it() {
    let pool = pool(Strategy::RoundRobin, vec![capped("a", Some(1), Some(2))]);
    let held = select(&pool, T0).unwrap();
    // refused by the concurrency cap: must not count against the RPM budget
    for _ in 0..5 {
        assert_eq!(select(&pool, T0 + 1).unwrap_err(), NoAccount::AllBusy);
    }
    drop(held);
    drop(select(&pool, T0 + 10).unwrap());
    assert_eq!(select(&pool, T0 + 20).unwrap_err(), NoAccount::AllBusy);
    assert_eq!(pool.status("a", T0 + 20).unwrap().rpm_used, Some(2));
    // the first request leaves the window a minute after it started
    assert_eq!(select(&pool, T0 + 59_999).unwrap_err(), NoAccount::AllBusy);
    drop(select(&pool, T0 + 60_000).unwrap());
    assert_eq!(pool.status("a", T0 + 60_000).unwrap().request_count, 3);
}

#[test]
fn rpm_full_accounts_spill_to_others() {
    let pool = pool(
        Strategy::RoundRobin,
        vec![capped("a", None, Some(1)), account("b")],
    );
    assert_eq!(serve_n(&pool, 4, T0), ["a", "b", "b", "b"]);
}

#[test]
fn two_threads_never_both_get_the_last_slot() {
    let pool = pool(Strategy::RoundRobin, vec![capped("a", Some(1), None)]);
    let barrier = Barrier::new(2);
    let wins = AtomicUsize::new(0);
    let rounds = 200;
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for round in 0..rounds {
                    barrier.wait();
                    let got = select(&pool, T0 + round).ok();
                    if got.is_some() {
                        wins.fetch_add(1, Ordering::SeqCst);
                    }
                    // both have tried before either lets go
                    barrier.wait();
                    drop(got);
                    barrier.wait();
                }
            });
        }
    });
    assert_eq!(wins.load(Ordering::SeqCst), rounds as usize);
}

#[test]
fn many_threads_never_exceed_the_cap() {
    let pool = pool(Strategy::LeastUsed, vec![capped("a", Some(3), None)]);
    let holding = AtomicU32::new(0);
    let peak = AtomicU32::new(0);
    let served = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..500 {
                    if let Ok(lease) = select(&pool, T0) {
                        let now_holding = holding.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now_holding, Ordering::SeqCst);
                        std::thread::yield_now();
                        holding.fetch_sub(1, Ordering::SeqCst);
                        served.fetch_add(1, Ordering::SeqCst);
                        pool.report(lease, Outcome::Success { ttfe_ms: 1 }, T0);
                    }
                }
            });
        }
    });
    assert!(
        peak.load(Ordering::SeqCst) <= 3,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
    let status = pool.status("a", T0).unwrap();
    assert_eq!(status.in_flight, 0);
    assert_eq!(status.request_count, served.load(Ordering::SeqCst) as u64);
    assert_eq!(status.success_count, status.request_count);
}

#[test]
fn racing_threads_spend_exactly_the_rpm_budget() {
    let pool = pool(Strategy::Random, vec![capped("a", None, Some(50))]);
    let served = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..100 {
                    if select(&pool, T0).is_ok() {
                        served.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    assert_eq!(served.load(Ordering::SeqCst), 50);
    assert_eq!(pool.status("a", T0).unwrap().rpm_used, Some(50));
}

#[test]
fn no_account_says_why_with_the_right_hint() {
    let empty = Pool::new(cfg(Strategy::RoundRobin), vec![]).unwrap();
    assert_eq!(select(&empty, T0).unwrap_err(), NoAccount::Empty);

    let pool = pool(
        Strategy::RoundRobin,
        vec![capped("a", Some(1), None), account("b"), account("c")],
    );
    // b: breaker open for 300 s; c: throttled for 40 s
    for _ in 0..5 {
        fail(&pool, "b", Outcome::Transient, T0);
    }
    fail(
        &pool,
        "c",
        Outcome::Throttled {
            retry_after_ms: Some(40_000),
        },
        T0,
    );
    let held = select(&pool, T0).unwrap();
    assert_eq!(held.account(), "a");
    // a is only busy: worth waiting for
    assert_eq!(select(&pool, T0 + 1).unwrap_err(), NoAccount::AllBusy);
    drop(held);
    pool.disable("a").unwrap();
    // mixed reasons: the soonest recovery of any kind
    assert_eq!(
        select(&pool, T0 + 10_000).unwrap_err(),
        NoAccount::Unavailable {
            retry_after_ms: Some(30_000)
        }
    );
    // with only throttled candidates left it is a 429 with their soonest end
    let not_b = SelectRequest {
        exclude: &[id("b")],
        ..req()
    };
    assert_eq!(
        pool.select(&not_b, T0 + 10_000).unwrap_err(),
        NoAccount::Unavailable {
            retry_after_ms: Some(30_000)
        },
        "a is disabled, so not every candidate is throttled"
    );
    let only_c = SelectRequest {
        exclude: &[id("a"), id("b")],
        ..req()
    };
    assert_eq!(
        pool.select(&only_c, T0 + 10_000).unwrap_err(),
        NoAccount::AllThrottled {
            retry_after_ms: 30_000
        }
    );
    let only_b = SelectRequest {
        exclude: &[id("a"), id("c")],
        ..req()
    };
    assert_eq!(
        pool.select(&only_b, T0 + 10_000).unwrap_err(),
        NoAccount::Unavailable {
            retry_after_ms: Some(290_000)
        }
    );
    let none = [id("a"), id("b"), id("c")];
    assert_eq!(
        pool.select(
            &SelectRequest {
                exclude: &none,
                ..req()
            },
            T0
        )
        .unwrap_err(),
        NoAccount::AllExcluded
    );
}
