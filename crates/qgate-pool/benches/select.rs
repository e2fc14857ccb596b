//! Cost of the pool on the request path: one `select` plus one `report(Success)` per
//! iteration, for 3 to 1 000 accounts under each strategy. The target is that the
//! per-request cost does not grow with the pool. (`least_used` scans tiers of up to 64
//! accounts and keeps an index for larger ones: 16 and 32 show the scan's growth, 100 and
//! 1 000 the index.) `select+report 2 threads` runs the same on two threads at once.
//!
//! `cargo bench -p qgate-pool --bench select`

#![allow(clippy::unwrap_used)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use qgate_pool::{AccountId, AccountSettings, Outcome, Pool, PoolConfig, SelectRequest, Strategy};
use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};

const SIZES: [usize; 5] = [3, 16, 32, 100, 1_000];
const START_MS: u64 = 1_700_000_000_000;

fn pool(strategy: Strategy, n: usize, sticky: bool) -> Pool {
    let accounts = (0..n)
        .map(|i| {
            let mut s = AccountSettings::new(AccountId::new(&format!("acct-{i}")).unwrap());
            s.weight = [10, 5, 3][i % 3];
            s
        })
        .collect();
    let cfg = PoolConfig {
        strategy,
        sticky_ttl_ms: sticky.then_some(3_600_000),
        ..PoolConfig::default()
    };
    Pool::new(cfg, accounts).unwrap()
}

fn select_and_report(c: &mut Criterion) {
    let mut group = c.benchmark_group("select+report");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for strategy in Strategy::ALL {
        for n in SIZES {
            let pool = pool(strategy, n, false);
            let mut now = START_MS;
            group.bench_with_input(BenchmarkId::new(strategy.as_str(), n), &n, |b, _| {
                b.iter(|| {
                    now += 1;
                    let req = SelectRequest::new("claude-sonnet-4");
                    let lease = pool.select(black_box(&req), now).unwrap();
                    let ttfe_ms = 50 + lease.account().as_str().len() as u64;
                    black_box(pool.report(lease, Outcome::Success { ttfe_ms }, now));
                })
            });
        }
    }
    group.finish();
}

fn sticky_sessions(c: &mut Criterion) {
    let mut group = c.benchmark_group("select+report sticky");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let sessions: Vec<String> = (0..10_000).map(|i| format!("session-{i}")).collect();
    for n in SIZES {
        let pool = pool(Strategy::WeightedRoundRobin, n, true);
        let mut now = START_MS;
        let mut i = 0;
        group.bench_with_input(BenchmarkId::new("weighted_round_robin", n), &n, |b, _| {
            b.iter(|| {
                now += 1;
                i = (i + 1) % sessions.len();
                let req = SelectRequest {
                    model: "claude-sonnet-4",
                    session: Some(&sessions[i]),
                    exclude: &[],
                };
                let lease = pool.select(black_box(&req), now).unwrap();
                black_box(pool.report(lease, Outcome::Success { ttfe_ms: 80 }, now));
            })
        });
    }
    group.finish();
}

/// The same on two threads at once, as the gateway's two workers do, each holding up to 8
/// leases so that loads rise and fall: what contention on shared counters and on
/// `least_used`'s index costs. Time per request, both threads together.
fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("select+report 2 threads");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for strategy in [Strategy::RoundRobin, Strategy::LeastUsed] {
        for n in SIZES {
            let pool = pool(strategy, n, false);
            group.bench_with_input(BenchmarkId::new(strategy.as_str(), n), &n, |b, _| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for _ in 0..2 {
                            s.spawn(|| held_leases(&pool, iters.div_ceil(2)));
                        }
                    });
                    start.elapsed()
                })
            });
        }
    }
    group.finish();
}

fn held_leases(pool: &Pool, requests: u64) {
    let mut now = START_MS;
    let mut held = VecDeque::with_capacity(9);
    for _ in 0..requests {
        now += 1;
        let req = SelectRequest::new("claude-sonnet-4");
        held.push_back(pool.select(black_box(&req), now).unwrap());
        if held.len() > 8 {
            let lease = held.pop_front().unwrap();
            black_box(pool.report(lease, Outcome::Success { ttfe_ms: 80 }, now));
        }
    }
}

/// Building (or rebuilding on reload) a pool: dominated by precomputing the smooth
/// weighted round-robin schedule.
fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    for n in SIZES {
        group.bench_with_input(BenchmarkId::new("weighted_round_robin", n), &n, |b, &n| {
            b.iter(|| black_box(pool(Strategy::WeightedRoundRobin, n, true)))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    select_and_report,
    two_threads,
    sticky_sessions,
    build
);
criterion_main!(benches);
