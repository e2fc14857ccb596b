//! Behaviour of the account pool through its public API, with explicit time: one test
//! binary, helpers that make the tests read like the rules they check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod breaker;
mod limits;
mod persistence;
mod recovery;
mod states;
mod sticky;
mod strategies;

use qgate_pool::{
    AccountId, AccountSettings, Lease, NoAccount, Outcome, Pool, PoolConfig, SelectRequest,
    StateKind, Strategy, Transition,
};

/// 2023-11-14T22:13:20Z: an arbitrary "now" far from any month boundary.
pub const T0: u64 = 1_700_000_000_000;
pub const MODEL: &str = "claude-sonnet-4";

pub fn id(s: &str) -> AccountId {
    AccountId::new(s).unwrap()
}

pub fn account(name: &str) -> AccountSettings {
    AccountSettings::new(id(name))
}

pub fn weighted(name: &str, weight: u32) -> AccountSettings {
    AccountSettings {
        weight,
        ..account(name)
    }
}

/// Defaults, but without sticky sessions so strategies are observable.
pub fn cfg(strategy: Strategy) -> PoolConfig {
    PoolConfig {
        strategy,
        sticky_ttl_ms: None,
        ..PoolConfig::default()
    }
}

pub fn pool(strategy: Strategy, accounts: Vec<AccountSettings>) -> Pool {
    Pool::new(cfg(strategy), accounts).unwrap()
}

pub fn names(names: &[&str]) -> Vec<AccountSettings> {
    names.iter().map(|n| account(n)).collect()
}

pub fn req() -> SelectRequest<'static> {
    SelectRequest::new(MODEL)
}

pub fn select(pool: &Pool, now: u64) -> Result<Lease, NoAccount> {
    pool.select(&req(), now)
}

/// Select, report success, return who served.
pub fn serve(pool: &Pool, now: u64) -> String {
    let lease = select(pool, now).unwrap();
    let who = lease.account().to_string();
    pool.report(lease, Outcome::Success { ttfe_ms: 100 }, now);
    who
}

pub fn serve_n(pool: &Pool, n: usize, now: u64) -> Vec<String> {
    (0..n).map(|_| serve(pool, now)).collect()
}

/// Report `outcome` on a fresh lease of `who` (selected with everyone else excluded).
pub fn fail(pool: &Pool, who: &str, outcome: Outcome, now: u64) -> Vec<Transition> {
    let others: Vec<AccountId> = pool.account_ids().filter(|a| *a != who).cloned().collect();
    let request = SelectRequest {
        model: MODEL,
        session: None,
        exclude: &others,
    };
    let lease = pool.select(&request, now).unwrap();
    assert_eq!(lease.account(), who);
    pool.report(lease, outcome, now)
}

pub fn state_of(pool: &Pool, who: &str, now: u64) -> StateKind {
    pool.status(who, now).unwrap().state.kind()
}

pub fn kinds(transitions: &[Transition]) -> Vec<(StateKind, StateKind)> {
    transitions.iter().map(|t| (t.from, t.to)).collect()
}

#[test]
fn pool_is_shareable_and_leases_can_move_into_tasks() {
    fn shareable<T: Send + Sync + 'static>() {}
    fn movable<T: Send + 'static>() {}
    shareable::<Pool>();
    movable::<Lease>();
}
