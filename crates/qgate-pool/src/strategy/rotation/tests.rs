#![allow(clippy::unwrap_used)]

use super::*;
use crate::config::{AccountSettings, PoolConfig};
use crate::id::AccountId;
use crate::pool::Pool;
use crate::select::SelectRequest;

fn sequence(weights: &[u32], turns: usize) -> Vec<usize> {
    let mut wrr = SmoothWeighted::new(weights).unwrap();
    (0..turns).map(|_| wrr.step()).collect()
}

#[test]
fn nginx_sequence_for_5_1_1() {
    assert_eq!(
        sequence(&[5, 1, 1], 14),
        [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]
    );
}

#[test]
fn common_factors_do_not_change_the_sequence() {
    assert_eq!(sequence(&[10, 2, 2], 21), sequence(&[5, 1, 1], 21));
    assert_eq!(SmoothWeighted::new(&[10, 2, 2]).unwrap().period(), 7);
}

#[test]
fn counts_over_a_period_equal_the_weights() {
    let seq = sequence(&[10, 5, 3], 180);
    let count = |p| seq.iter().filter(|&&x| x == p).count();
    assert_eq!((count(0), count(1), count(2)), (100, 50, 30));
    // smooth: the heaviest never gets more than two turns in a row here
    assert!(
        seq.windows(3)
            .all(|w| !(w[0] == 0 && w[1] == 0 && w[2] == 0))
    );
}

#[test]
fn zero_weights_get_no_turns() {
    assert_eq!(sequence(&[0, 2, 0, 1], 6), [1, 3, 1, 1, 3, 1]);
    assert!(SmoothWeighted::new(&[0, 0]).is_none());
    assert!(Rotation::smooth_weighted(&[0]).is_none());
}

#[test]
fn long_schedules_run_live_instead_of_precomputing() {
    let small = Rotation::smooth_weighted(&[5, 1, 1]).unwrap();
    assert!(matches!(&small.order, Order::Fixed(s) if s.len() == 7));
    let huge = Rotation::smooth_weighted(&[1 << 20, 1]).unwrap();
    assert!(matches!(huge.order, Order::Live(_)));
}

fn pool(n: usize) -> Pool {
    let accounts = (0..n)
        .map(|i| AccountSettings::new(AccountId::new(&format!("a{i}")).unwrap()))
        .collect();
    Pool::new(PoolConfig::default(), accounts).unwrap()
}

fn picks(rotation: &Rotation, pool: &Pool, turns: usize) -> Vec<String> {
    let req = SelectRequest::new("m");
    let ctx = Ctx::new(pool, &req, 1_000);
    let members: Vec<usize> = (0..pool.len()).collect();
    (0..turns)
        .map(|_| {
            let lease = rotation.pick(&ctx, &members).unwrap();
            lease.account().to_string()
        })
        .collect()
}

#[test]
fn live_and_precomputed_orders_hand_out_the_same_turns() {
    let pool = pool(3);
    let fixed = Rotation::smooth_weighted(&[5, 1, 1]).unwrap();
    let live = Rotation::live(&[5, 1, 1]).unwrap();
    let expected = ["a0", "a0", "a1", "a0", "a2", "a0", "a0"];
    assert_eq!(picks(&fixed, &pool, 7), expected);
    assert_eq!(picks(&live, &pool, 7), expected);
}

#[test]
fn round_robin_rotation_follows_configured_positions() {
    let pool = pool(4);
    let rr = Rotation::round_robin(vec![0, 1, 2, 3]);
    assert_eq!(picks(&rr, &pool, 6), ["a0", "a1", "a2", "a3", "a0", "a1"]);
}
