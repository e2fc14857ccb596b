//! The five strategies, priority tiers, exclusion and the overload preference.

use crate::*;
use std::collections::HashMap;

fn counts(picks: &[String]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for p in picks {
        *counts.entry(p.clone()).or_default() += 1;
    }
    counts
}

#[test]
fn smooth_weighted_round_robin_is_nginx_exact() {
    let pool = pool(
        Strategy::WeightedRoundRobin,
        vec![weighted("a", 5), weighted("b", 1), weighted("c", 1)],
    );
    let picks = serve_n(&pool, 14, T0);
    assert_eq!(
        picks,
        [
            "a", "a", "b", "a", "c", "a", "a", "a", "a", "b", "a", "c", "a", "a"
        ]
    );
}

#[test]
fn weighted_round_robin_shares_are_exact_over_a_period() {
    let pool = pool(
        Strategy::WeightedRoundRobin,
        vec![
            weighted("primary", 10),
            weighted("backup", 5),
            weighted("fallback", 3),
        ],
    );
    let c = counts(&serve_n(&pool, 180, T0));
    assert_eq!((c["primary"], c["backup"], c["fallback"]), (100, 50, 30));
}

#[test]
fn weighted_shares_hold_among_the_accounts_that_remain() {
    let pool = pool(
        Strategy::WeightedRoundRobin,
        vec![weighted("a", 10), weighted("b", 5), weighted("c", 3)],
    );
    pool.disable("a").unwrap();
    let c = counts(&serve_n(&pool, 80, T0));
    assert_eq!((c.get("a"), c["b"], c["c"]), (None, 50, 30));
}

#[test]
fn weight_zero_is_only_a_fallback() {
    let pool = pool(
        Strategy::WeightedRoundRobin,
        vec![weighted("spare", 0), weighted("a", 3), weighted("b", 1)],
    );
    assert!(!serve_n(&pool, 40, T0).contains(&"spare".to_owned()));
    pool.disable("a").unwrap();
    pool.disable("b").unwrap();
    assert_eq!(serve(&pool, T0), "spare");
}

#[test]
fn round_robin_keeps_turns_when_an_account_leaves_and_returns() {
    let pool = pool(Strategy::RoundRobin, names(&["a", "b", "c", "d"]));
    assert_eq!(serve_n(&pool, 2, T0), ["a", "b"]);
    pool.disable("b").unwrap();
    assert_eq!(serve_n(&pool, 3, T0), ["c", "d", "a"]);
    pool.enable("b").unwrap();
    // b is back in its own slot; nobody else's turn moved
    assert_eq!(serve_n(&pool, 5, T0), ["b", "c", "d", "a", "b"]);
}

#[test]
fn least_used_prefers_fewest_in_flight_then_fewest_requests_then_order() {
    let pool = pool(Strategy::LeastUsed, names(&["a", "b", "c"]));
    let l1 = select(&pool, T0).unwrap();
    let l2 = select(&pool, T0).unwrap();
    let l3 = select(&pool, T0).unwrap();
    let l4 = select(&pool, T0).unwrap();
    let held: Vec<&str> = [&l1, &l2, &l3, &l4]
        .iter()
        .map(|l| l.account().as_str())
        .collect();
    assert_eq!(held, ["a", "b", "c", "a"]);
    drop((l1, l2, l3, l4));
    // all idle now; a has served 2, b and c 1 each: b wins the tie on requests by order
    assert_eq!(serve(&pool, T0), "b");
    assert_eq!(serve(&pool, T0), "c");
    assert_eq!(serve(&pool, T0), "a");
}

fn requests_of(pool: &Pool, who: &str) -> u64 {
    pool.status(who, T0).unwrap().request_count
}

/// `n` accounts named in configured order: more than `least_used` scans, so it keeps an
/// index.
fn many(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("acct-{i:03}")).collect()
}

fn as_strs(names: &[String]) -> Vec<&str> {
    names.iter().map(String::as_str).collect()
}

#[test]
fn least_used_follows_leases_released_after_a_reload_replaced_the_pool() {
    for n in [2, 100] {
        let all = many(n);
        let old = pool(Strategy::LeastUsed, names(&as_strs(&all)));
        // every account busy once, through the old pool
        let mut held: Vec<Lease> = (0..n).map(|_| select(&old, T0).unwrap()).collect();
        let new = old
            .rebuild(cfg(Strategy::LeastUsed), names(&as_strs(&all)))
            .unwrap();
        drop(old);
        // the old pool is gone, but a lease of it released now still reaches the new one:
        // the account it held is the only idle one
        let freed = held.remove(n / 2);
        let who = freed.account().to_string();
        drop(freed);
        assert_eq!(serve(&new, T0), who, "n={n}");
        assert_eq!(serve(&new, T0), who, "n={n}");
        drop(held);
        // all idle: the others have served one request, `who` three
        assert_eq!(serve(&new, T0), all[usize::from(who == all[0])], "n={n}");
    }
}

#[test]
fn least_used_finds_the_least_used_account_behind_many_that_cannot_serve() {
    let all = many(200);
    let refs = as_strs(&all);
    // More unusable accounts ahead than the index judges before it scans the tier.
    let pool = pool(Strategy::LeastUsed, names(&refs));
    for who in &refs[..150] {
        pool.disable(who).unwrap();
    }
    assert_eq!(serve_n(&pool, 3, T0), ["acct-150", "acct-151", "acct-152"]);
    // Only a few ahead: the index answers by itself.
    let pool = self::pool(Strategy::LeastUsed, names(&refs));
    for who in &refs[..5] {
        pool.disable(who).unwrap();
    }
    assert_eq!(serve(&pool, T0), "acct-005");
    pool.enable("acct-002").unwrap();
    assert_eq!(serve(&pool, T0), "acct-002");
    // Fewest in flight first, then fewest requests, then order.
    for who in ["acct-000", "acct-001", "acct-003", "acct-004"] {
        pool.enable(who).unwrap();
    }
    let held = select(&pool, T0).unwrap();
    assert_eq!(held.account().as_str(), "acct-000");
    assert_eq!(serve(&pool, T0), "acct-001");
    assert_eq!(serve(&pool, T0), "acct-003");
}

#[test]
fn least_used_stays_exact_after_concurrent_selections() {
    for n in [7, 80] {
        let all = many(n);
        let pool = pool(Strategy::LeastUsed, names(&as_strs(&all)));
        std::thread::scope(|s| {
            for t in 0..4 {
                let pool = &pool;
                s.spawn(move || {
                    let mut kept = Vec::new();
                    for i in 0..500 {
                        let lease = select(pool, T0).unwrap();
                        match (i + t) % 4 {
                            0 => {
                                pool.report(lease, Outcome::Success { ttfe_ms: 10 }, T0);
                            }
                            1 => kept.push(lease),
                            _ => drop(lease),
                        }
                        if kept.len() > 3 {
                            kept.clear();
                        }
                    }
                });
            }
        });
        // Whatever order the threads ran in, every account is idle again, and each new
        // lease goes to the account with the fewest requests, first in configured order.
        let mut held = Vec::new();
        for _ in 0..n {
            assert!(all.iter().all(|a| pool.status(a, T0).unwrap().in_flight
                <= u32::from(held.iter().any(|l: &Lease| l.account().as_str() == a))));
            let idle: Vec<(u64, &String)> = all
                .iter()
                .filter(|a| {
                    !held
                        .iter()
                        .any(|l: &Lease| l.account().as_str() == a.as_str())
                })
                .map(|a| (requests_of(&pool, a), a))
                .collect();
            let expected = idle.iter().min().unwrap().1;
            let lease = select(&pool, T0).unwrap();
            assert_eq!(lease.account().as_str(), expected.as_str(), "n={n}");
            held.push(lease);
        }
    }
}

#[test]
fn random_is_uniform_over_the_accounts_that_fit() {
    let pool = pool(Strategy::Random, names(&["a", "b", "c", "off"]));
    pool.disable("off").unwrap();
    let c = counts(&serve_n(&pool, 3_000, T0));
    assert_eq!(c.get("off"), None);
    for who in ["a", "b", "c"] {
        // binomial(3000, 1/3): sd ≈ 26, so ±200 is ~7.7 sd
        assert!((800..=1_200).contains(&c[who]), "{c:?}");
    }
}

#[test]
fn latency_prefers_faster_accounts_and_tries_unmeasured_ones() {
    let pool = pool(Strategy::Latency, names(&["slow", "fast", "new"]));
    fail(&pool, "slow", Outcome::Success { ttfe_ms: 900 }, T0);
    fail(&pool, "fast", Outcome::Success { ttfe_ms: 100 }, T0);
    let mut picks = Vec::new();
    for _ in 0..300 {
        let lease = select(&pool, T0).unwrap();
        picks.push(lease.account().to_string());
        // cancellations keep the latencies as they are
        pool.report(lease, Outcome::Cancelled, T0);
    }
    let c = counts(&picks);
    assert_eq!(
        c.get("slow"),
        None,
        "the slowest of any pair never wins: {c:?}"
    );
    assert!(c["new"] > c["fast"] && c["fast"] > 0, "{c:?}");
    assert_eq!(
        pool.status("fast", T0).unwrap().latency_ewma_ms,
        Some(100.0)
    );
    assert_eq!(pool.status("new", T0).unwrap().latency_ewma_ms, None);
}

#[test]
fn latency_average_is_exponentially_weighted() {
    let pool = pool(Strategy::Latency, names(&["a"]));
    for ttfe_ms in [100, 200, 200] {
        fail(&pool, "a", Outcome::Success { ttfe_ms }, T0);
    }
    // alpha 0.2: 100 -> 120 -> 136
    let ewma = pool.status("a", T0).unwrap().latency_ewma_ms.unwrap();
    assert!((ewma - 136.0).abs() < 1e-9, "{ewma}");
}

#[test]
fn lower_priority_tiers_serve_only_when_higher_ones_cannot() {
    let mut accounts = names(&["a", "b", "c"]);
    accounts[2].priority = 1;
    accounts[0].max_concurrency = Some(1);
    accounts[1].max_concurrency = Some(1);
    let pool = pool(Strategy::RoundRobin, accounts);
    assert_eq!(serve_n(&pool, 4, T0), ["a", "b", "a", "b"]);

    // tier 0 busy: spill over
    let held = (select(&pool, T0).unwrap(), select(&pool, T0).unwrap());
    assert_eq!(serve(&pool, T0), "c");
    drop(held);
    assert_ne!(serve(&pool, T0), "c");

    // tier 0 throttled: spill over until it recovers
    fail(
        &pool,
        "a",
        Outcome::Throttled {
            retry_after_ms: Some(1_000),
        },
        T0,
    );
    fail(
        &pool,
        "b",
        Outcome::Throttled {
            retry_after_ms: Some(2_000),
        },
        T0,
    );
    assert_eq!(serve_n(&pool, 2, T0 + 10), ["c", "c"]);
    assert_eq!(serve(&pool, T0 + 1_000), "a");
}

#[test]
fn overloaded_accounts_are_de_preferred_but_still_used() {
    let pool = pool(Strategy::RoundRobin, names(&["a", "b", "c"]));
    fail(
        &pool,
        "a",
        Outcome::Overloaded {
            model: MODEL.into(),
        },
        T0,
    );
    let until = pool.status("a", T0).unwrap().overload_backoff_until_ms;
    assert_eq!(until, Some(T0 + 5_000));
    assert!(!serve_n(&pool, 10, T0 + 1).contains(&"a".to_owned()));
    // nothing else fits: a still serves
    let only_a = [id("b"), id("c")];
    let lease = pool
        .select(
            &SelectRequest {
                exclude: &only_a,
                ..req()
            },
            T0 + 1,
        )
        .unwrap();
    assert_eq!(lease.account(), "a");
    drop(lease);
    // a second overload during the backoff does not escalate it
    fail(
        &pool,
        "a",
        Outcome::Overloaded {
            model: MODEL.into(),
        },
        T0 + 2,
    );
    assert_eq!(
        pool.status("a", T0).unwrap().overload_backoff_until_ms,
        Some(T0 + 5_000)
    );
    // after it, the next overload (no success in between) backs off longer
    fail(
        &pool,
        "a",
        Outcome::Overloaded {
            model: MODEL.into(),
        },
        T0 + 5_000,
    );
    let a = pool.status("a", T0 + 5_000).unwrap();
    assert_eq!(a.overload_backoff_until_ms, Some(T0 + 15_000));
    // once it serves successfully again, the escalation starts over
    assert!(serve_n(&pool, 3, T0 + 15_000).contains(&"a".to_owned()));
    fail(
        &pool,
        "a",
        Outcome::Overloaded {
            model: MODEL.into(),
        },
        T0 + 15_000,
    );
    let a = pool.status("a", T0 + 15_000).unwrap();
    assert_eq!(a.overload_backoff_until_ms, Some(T0 + 20_000));
    assert_eq!(a.state.kind(), StateKind::Active);
    assert_eq!(a.breaker.consecutive_failures, 0);
}

#[test]
fn every_strategy_respects_exclusion_and_availability() {
    for strategy in Strategy::ALL {
        let pool = pool(strategy, names(&["a", "b", "c", "d"]));
        pool.disable("d").unwrap();
        let tried = [id("a"), id("b")];
        for _ in 0..50 {
            let lease = pool
                .select(
                    &SelectRequest {
                        exclude: &tried,
                        ..req()
                    },
                    T0,
                )
                .unwrap();
            assert_eq!(lease.account(), "c", "{strategy}");
        }
        let all = [id("a"), id("b"), id("c"), id("d")];
        assert_eq!(
            pool.select(
                &SelectRequest {
                    exclude: &all,
                    ..req()
                },
                T0
            )
            .unwrap_err(),
            NoAccount::AllExcluded,
            "{strategy}"
        );
        let picks = serve_n(&pool, 30, T0);
        assert!(!picks.contains(&"d".to_owned()), "{strategy}: {picks:?}");
    }
}
