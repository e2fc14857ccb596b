//! Sticky sessions: binding, renewal, rebinding and the bounded map.

use crate::*;

const TTL: u64 = 3_600_000;

fn sticky_pool(capacity: usize) -> Pool {
    let cfg = PoolConfig {
        sticky_ttl_ms: Some(TTL),
        sticky_max_sessions: capacity,
        ..cfg(Strategy::RoundRobin)
    };
    Pool::new(cfg, names(&["a", "b", "c"])).unwrap()
}

fn in_session(pool: &Pool, session: &str, now: u64) -> String {
    let request = SelectRequest {
        session: Some(session),
        ..req()
    };
    let lease = pool.select(&request, now).unwrap();
    let who = lease.account().to_string();
    pool.report(lease, Outcome::Success { ttfe_ms: 50 }, now);
    who
}

#[test]
fn a_session_stays_on_its_account() {
    let pool = sticky_pool(100);
    let first = in_session(&pool, "conv-1", T0);
    for i in 1..20 {
        assert_eq!(in_session(&pool, "conv-1", T0 + i), first);
    }
    // other traffic keeps rotating meanwhile
    let others: Vec<String> = (0..3)
        .map(|i| in_session(&pool, &format!("other-{i}"), T0))
        .collect();
    assert!(others.iter().any(|o| *o != first), "{others:?}");
    assert_eq!(pool.sticky_binding("conv-1", T0), Some(id(&first)));
}

#[test]
fn use_renews_the_binding_and_idleness_ends_it() {
    let pool = sticky_pool(100);
    let first = in_session(&pool, "conv", T0);
    // used just before expiry: renewed for another TTL
    assert_eq!(in_session(&pool, "conv", T0 + TTL - 1), first);
    assert_eq!(
        pool.sticky_binding("conv", T0 + 2 * TTL - 2),
        Some(id(&first))
    );
    // idle for a whole TTL: forgotten
    assert_eq!(pool.sticky_binding("conv", T0 + 2 * TTL - 1), None);
}

#[test]
fn rebinds_when_the_account_cannot_serve() {
    let pool = sticky_pool(100);
    let first = in_session(&pool, "conv", T0);
    pool.report(
        first.as_str(),
        Outcome::Throttled {
            retry_after_ms: Some(60_000),
        },
        T0,
    );
    let second = in_session(&pool, "conv", T0 + 1);
    assert_ne!(second, first);
    // the new binding holds even after the old account recovers
    assert_eq!(in_session(&pool, "conv", T0 + 120_000), second);

    // a retry that excludes the bound account also rebinds
    let request = SelectRequest {
        session: Some("conv"),
        exclude: &[id(&second)],
        ..req()
    };
    let third = pool.select(&request, T0 + 120_001).unwrap();
    assert_ne!(third.account(), second.as_str());
    assert_eq!(
        pool.sticky_binding("conv", T0 + 120_001).as_ref(),
        Some(third.account())
    );
}

#[test]
fn the_map_is_bounded_and_forgets_the_least_recently_used() {
    let pool = sticky_pool(2);
    in_session(&pool, "s1", T0);
    in_session(&pool, "s2", T0 + 1);
    in_session(&pool, "s1", T0 + 2);
    in_session(&pool, "s3", T0 + 3);
    assert_eq!(pool.sticky_sessions(), 2);
    assert!(pool.sticky_binding("s2", T0 + 4).is_none());
    assert!(pool.sticky_binding("s1", T0 + 4).is_some());
    assert!(pool.sticky_binding("s3", T0 + 4).is_some());
    for i in 0..1_000 {
        in_session(&pool, &format!("flood-{i}"), T0 + 5);
    }
    assert_eq!(pool.sticky_sessions(), 2);
}

#[test]
fn sticky_off_ignores_sessions() {
    let pool = pool(Strategy::RoundRobin, names(&["a", "b"]));
    let picks: Vec<String> = (0..4).map(|_| in_session(&pool, "conv", T0)).collect();
    assert_eq!(picks, ["a", "b", "a", "b"]);
    assert_eq!(pool.sticky_binding("conv", T0), None);
}

#[test]
fn bindings_survive_a_config_reload() {
    let pool = sticky_pool(100);
    let first = in_session(&pool, "conv", T0);
    let cfg = PoolConfig {
        sticky_ttl_ms: Some(TTL),
        sticky_max_sessions: 100,
        ..cfg(Strategy::LeastUsed)
    };
    let reloaded = pool.rebuild(cfg, names(&["c", "b", "a"])).unwrap();
    assert_eq!(in_session(&reloaded, "conv", T0 + 1), first);
}
