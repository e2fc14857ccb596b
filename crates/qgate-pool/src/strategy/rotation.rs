//! Rotations: a fixed order of turns over a tier's members, walked by one shared atomic
//! cursor. Round robin's order is the configured order; weighted round robin's is the
//! nginx smooth weighted round-robin sequence (each turn: every weight is added to its
//! account's `current`, the largest `current` wins — first in order on ties — and the
//! total is subtracted from the winner), which for weights 5,1,1 is `a a b a c a a`.
//!
//! The sequence is periodic (period = Σw / gcd(w)), so it is computed once per pool and a
//! turn costs one atomic add instead of a pass over every account. Turns that land on an
//! account that cannot take the request are skipped (and consumed), so accounts that
//! leave and come back keep their positions instead of shifting everyone else's (the
//! seed indexed a filtered list, so every availability change reshuffled the rotation).
//! Schedules too long to precompute fall back to running the same algorithm live, one
//! O(n) step per turn under a mutex.

use crate::lease::Lease;
use crate::select::{Ctx, Fit};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Longest precomputed schedule (entries).
const MAX_SCHEDULE: u64 = 1 << 16;
/// Most work (turns × accounts) spent precomputing one schedule.
const MAX_BUILD_STEPS: u64 = 1 << 24;

pub(crate) struct Rotation {
    order: Order,
    /// Every member position that has turns, for the exhaustive sweep.
    positions: Box<[usize]>,
    cursor: AtomicU64,
}

enum Order {
    Fixed(Box<[u32]>),
    Live(Mutex<SmoothWeighted>),
}

/// nginx's smooth weighted round robin, one turn at a time.
#[derive(Debug, Clone)]
pub(crate) struct SmoothWeighted {
    positions: Box<[usize]>,
    weights: Box<[i64]>,
    current: Box<[i64]>,
    total: i64,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl SmoothWeighted {
    /// `None` when no weight is positive.
    pub fn new(weights: &[u32]) -> Option<SmoothWeighted> {
        let entries: Vec<(usize, u64)> = weights
            .iter()
            .enumerate()
            .filter(|&(_, &w)| w > 0)
            .map(|(pos, &w)| (pos, u64::from(w)))
            .collect();
        // Dividing by the gcd scales every `current` alike, so the sequence is the same
        // and the period becomes as short as it can be.
        let divisor = entries.iter().fold(0, |g, &(_, w)| gcd(g, w));
        if divisor == 0 {
            return None;
        }
        let weights: Box<[i64]> = entries
            .iter()
            .map(|&(_, w)| i64::try_from(w / divisor).unwrap_or(i64::MAX))
            .collect();
        Some(SmoothWeighted {
            positions: entries.iter().map(|&(pos, _)| pos).collect(),
            total: weights.iter().sum(),
            current: vec![0; weights.len()].into_boxed_slice(),
            weights,
        })
    }

    /// Turns before the sequence repeats.
    pub fn period(&self) -> u64 {
        self.total.unsigned_abs()
    }

    pub fn step(&mut self) -> usize {
        let mut best = 0;
        for i in 0..self.weights.len() {
            self.current[i] += self.weights[i];
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= self.total;
        self.positions[best]
    }
}

impl Rotation {
    pub fn round_robin(positions: Vec<usize>) -> Rotation {
        let schedule = positions.iter().map(|&p| p as u32).collect();
        Rotation {
            order: Order::Fixed(schedule),
            positions: positions.into_boxed_slice(),
            cursor: AtomicU64::new(0),
        }
    }

    /// Smooth weighted round robin over the positive weights; `None` if there are none.
    pub fn smooth_weighted(weights: &[u32]) -> Option<Rotation> {
        let mut wrr = SmoothWeighted::new(weights)?;
        let positions = wrr.positions.clone();
        let period = wrr.period();
        let build_steps = period.saturating_mul(positions.len() as u64);
        let order = if period <= MAX_SCHEDULE && build_steps <= MAX_BUILD_STEPS {
            Order::Fixed((0..period).map(|_| wrr.step() as u32).collect())
        } else {
            Order::Live(Mutex::new(wrr))
        };
        Some(Rotation {
            order,
            positions,
            cursor: AtomicU64::new(0),
        })
    }

    #[cfg(test)]
    fn live(weights: &[u32]) -> Option<Rotation> {
        let wrr = SmoothWeighted::new(weights)?;
        Some(Rotation {
            positions: wrr.positions.clone(),
            order: Order::Live(Mutex::new(wrr)),
            cursor: AtomicU64::new(0),
        })
    }

    /// Turns worth trying before sweeping every member: a full round robin, or enough
    /// of a long weighted schedule to meet most accounts.
    fn turns(&self, period: u64) -> u64 {
        period.min(2 * self.positions.len() as u64).max(1)
    }

    pub fn pick(&self, ctx: &Ctx<'_, '_>, members: &[usize]) -> Option<Lease> {
        let found = match &self.order {
            Order::Fixed(schedule) => self.pick_fixed(schedule, ctx, members),
            Order::Live(wrr) => self.pick_live(wrr, ctx, members),
        };
        found.or_else(|| self.sweep(ctx, members))
    }

    fn pick_fixed(&self, schedule: &[u32], ctx: &Ctx<'_, '_>, members: &[usize]) -> Option<Lease> {
        let len = schedule.len() as u64;
        if len == 0 {
            return None;
        }
        let start = self.cursor.fetch_add(1, Relaxed);
        let member_at = |k: u64| members[schedule[(start.wrapping_add(k) % len) as usize] as usize];
        let mut fallback = None;
        for k in 0..self.turns(len) {
            let idx = member_at(k);
            match ctx.fit(idx) {
                Some(Fit { backed_off: false }) => {
                    if let Some(lease) = ctx.take(idx) {
                        // The turns looked past are used up, as if taken in order.
                        self.cursor.fetch_add(k, Relaxed);
                        return Some(lease);
                    }
                }
                Some(Fit { backed_off: true }) => {
                    fallback = fallback.or(Some((k, idx)));
                }
                None => {}
            }
        }
        let (k, idx) = fallback?;
        let lease = ctx.take(idx)?;
        self.cursor.fetch_add(k, Relaxed);
        Some(lease)
    }

    fn pick_live(
        &self,
        wrr: &Mutex<SmoothWeighted>,
        ctx: &Ctx<'_, '_>,
        members: &[usize],
    ) -> Option<Lease> {
        let turns = self.turns(wrr.lock().period());
        let mut fallback = None;
        for _ in 0..turns {
            let idx = members[wrr.lock().step()];
            match ctx.fit(idx) {
                Some(Fit { backed_off: false }) => {
                    if let Some(lease) = ctx.take(idx) {
                        return Some(lease);
                    }
                }
                Some(Fit { backed_off: true }) => fallback = fallback.or(Some(idx)),
                None => {}
            }
        }
        ctx.take(fallback?)
    }

    /// Every member once, in configured order: fit and not backed off first.
    fn sweep(&self, ctx: &Ctx<'_, '_>, members: &[usize]) -> Option<Lease> {
        let mut backed_off = Vec::new();
        for &pos in self.positions.iter() {
            let idx = members[pos];
            match ctx.fit(idx) {
                Some(Fit { backed_off: false }) => {
                    if let Some(lease) = ctx.take(idx) {
                        return Some(lease);
                    }
                }
                Some(Fit { backed_off: true }) => backed_off.push(idx),
                None => {}
            }
        }
        backed_off.into_iter().find_map(|idx| ctx.take(idx))
    }
}

#[cfg(test)]
mod tests;
