//! The five ways of picking an account within a priority tier. Each prefers accounts not
//! in overload backoff and falls back to backed-off ones only when nothing else fits.
//!
//! Cost per request, with most accounts usable:
//! - `round_robin`, `weighted_round_robin`: one atomic cursor step (O(1)); each unusable
//!   account met on the way costs one more lock-free check.
//! - `random`, `latency`: O(1) expected by rejection sampling, with an exact scan as the
//!   fallback when most of the tier is unusable (so the choice stays uniform).
//! - `least_used`: an exact arg-min. Tiers of up to `SCAN_UP_TO` accounts are scanned
//!   (lock-free loads); larger ones keep a winner tree in step with the accounts
//!   (`load_index`): O(1) when the least-used account fits, O(k log n) when the k ahead of
//!   it do not, and a scan when more than a few dozen ahead do not.

use crate::config::Strategy;
use crate::lease::Lease;
use crate::pool::Tier;
use crate::select::{Ctx, Fit};
use rand::Rng;

mod load_index;
mod rotation;

use load_index::Found;
pub(crate) use load_index::{Changes, LoadIndex};
pub(crate) use rotation::Rotation;
use std::sync::Arc;

/// Random probes before falling back to an exact scan.
const SAMPLES: usize = 8;
/// `least_used` scans tiers up to this size: measured, a scan of 32 costs less than
/// keeping an index in step (`cargo bench -p qgate-pool --bench select`).
const SCAN_UP_TO: usize = 64;
/// Reservations attempted by `least_used` before the tier counts as busy.
const TAKE_ATTEMPTS: usize = 4;

pub(crate) enum Picker {
    RoundRobin(Rotation),
    Weighted {
        /// Smooth WRR over the positive weights, if any.
        weighted: Option<Rotation>,
        /// Plain rotation over weight-0 accounts: used only when no weighted one fits.
        unweighted: Option<Rotation>,
    },
    /// With the index for tiers larger than `SCAN_UP_TO`, which are scanned.
    LeastUsed(Option<Arc<LoadIndex>>),
    Random,
    Latency,
}

impl Picker {
    /// `weights[i]` and `runtimes[i]` belong to the tier's i-th member.
    pub fn new(
        strategy: Strategy,
        weights: &[u32],
        runtimes: &[Arc<crate::runtime::AccountRuntime>],
    ) -> Picker {
        match strategy {
            Strategy::RoundRobin => {
                Picker::RoundRobin(Rotation::round_robin((0..weights.len()).collect()))
            }
            Strategy::WeightedRoundRobin => {
                let zero: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] == 0).collect();
                Picker::Weighted {
                    weighted: Rotation::smooth_weighted(weights),
                    unweighted: (!zero.is_empty()).then(|| Rotation::round_robin(zero)),
                }
            }
            Strategy::LeastUsed => Picker::LeastUsed(
                (runtimes.len() > SCAN_UP_TO).then(|| LoadIndex::new(runtimes.into())),
            ),
            Strategy::Random => Picker::Random,
            Strategy::Latency => Picker::Latency,
        }
    }

    pub fn pick(&self, ctx: &Ctx<'_, '_>, tier: &Tier) -> Option<Lease> {
        let members = &tier.members[..];
        match self {
            Picker::RoundRobin(rotation) => rotation.pick(ctx, members),
            Picker::Weighted {
                weighted,
                unweighted,
            } => weighted
                .as_ref()
                .and_then(|r| r.pick(ctx, members))
                .or_else(|| unweighted.as_ref().and_then(|r| r.pick(ctx, members))),
            Picker::LeastUsed(Some(index)) => least_used(ctx, tier, index),
            Picker::LeastUsed(None) => least_used_scan(ctx, tier),
            Picker::Random => random(ctx, members),
            Picker::Latency => latency(ctx, members),
        }
    }
}

/// Fewest in flight, then fewest requests so far, then configured order.
fn least_used(ctx: &Ctx<'_, '_>, tier: &Tier, index: &LoadIndex) -> Option<Lease> {
    let members = &tier.members;
    // Positions in the tier whose reservation was lost to a concurrent request.
    let mut lost: Vec<usize> = Vec::new();
    for _ in 0..TAKE_ATTEMPTS {
        let pos = match index.pick(&lost, |pos| ctx.fit(members[pos])) {
            Found::Member(pos) => pos,
            Found::Nothing => return None,
            Found::GaveUp => return least_used_scan(ctx, tier),
        };
        if let Some(lease) = ctx.take(members[pos]) {
            return Some(lease);
        }
        lost.push(pos);
    }
    None
}

/// `least_used` by a scan of the tier: for small tiers, and for a large one whose
/// least-used members mostly cannot take the request.
fn least_used_scan(ctx: &Ctx<'_, '_>, tier: &Tier) -> Option<Lease> {
    let mut lost: Vec<usize> = Vec::new();
    for _ in 0..TAKE_ATTEMPTS {
        let mut best: Option<((bool, u32, u64), usize)> = None;
        for (&idx, rt) in tier.members.iter().zip(tier.runtimes.iter()) {
            // Load the cheap ordering key first and skip the full check for accounts
            // that could not win anyway; ties keep the earlier (configured) one.
            let load = (rt.in_flight(), rt.requests());
            if let Some(((false, f, r), _)) = best
                && load >= (f, r)
            {
                continue;
            }
            if lost.contains(&idx) {
                continue;
            }
            let Some(Fit { backed_off }) = ctx.fit(idx) else {
                continue;
            };
            let key = (backed_off, load.0, load.1);
            if best.is_none_or(|(k, _)| key < k) {
                best = Some((key, idx));
            }
        }
        let (_, idx) = best?;
        if let Some(lease) = ctx.take(idx) {
            return Some(lease);
        }
        lost.push(idx);
    }
    None
}

/// Fit members split by backoff, each list in configured order.
fn fit_members(ctx: &Ctx<'_, '_>, members: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut fresh = Vec::new();
    let mut backed_off = Vec::new();
    for &idx in members {
        match ctx.fit(idx) {
            Some(Fit { backed_off: false }) => fresh.push(idx),
            Some(Fit { backed_off: true }) => backed_off.push(idx),
            None => {}
        }
    }
    (fresh, backed_off)
}

/// A uniformly random member (its position and index) that fits and is not backed off,
/// by rejection sampling; never the member at position `except`.
fn sample_fresh(
    ctx: &Ctx<'_, '_>,
    members: &[usize],
    except: Option<usize>,
    rng: &mut impl Rng,
) -> Option<(usize, usize)> {
    let choices = members.len() - usize::from(except.is_some());
    if choices == 0 {
        return None;
    }
    (0..SAMPLES)
        .map(|_| {
            let pos = rng.random_range(0..choices);
            // skip over the excluded position so the rest stay equally likely
            match except {
                Some(skip) if pos >= skip => pos + 1,
                Some(_) | None => pos,
            }
        })
        .map(|pos| (pos, members[pos]))
        .find(|&(_, idx)| ctx.fit(idx) == Some(Fit { backed_off: false }))
}

/// Uniform over the fit members (preferring those not backed off).
fn random(ctx: &Ctx<'_, '_>, members: &[usize]) -> Option<Lease> {
    if members.is_empty() {
        return None;
    }
    let mut rng = rand::rng();
    // Rejection sampling is uniform over the accepted set, and so is the exact fallback,
    // so the mixture is uniform too.
    if let Some((_, idx)) = sample_fresh(ctx, members, None, &mut rng)
        && let Some(lease) = ctx.take(idx)
    {
        return Some(lease);
    }
    let (fresh, backed_off) = fit_members(ctx, members);
    for mut group in [fresh, backed_off] {
        while !group.is_empty() {
            let idx = group.swap_remove(rng.random_range(0..group.len()));
            if let Some(lease) = ctx.take(idx) {
                return Some(lease);
            }
        }
    }
    None
}

/// Lower is better: smoothed time to first event (unknown counts as best, so new
/// accounts get measured), then fewer in flight.
fn latency_key(ctx: &Ctx<'_, '_>, idx: usize) -> (u64, u32) {
    let rt = &ctx.slot(idx).runtime;
    (rt.latency_us().unwrap_or(0), rt.in_flight())
}

/// Power of two (distinct) choices over the latency average.
fn latency(ctx: &Ctx<'_, '_>, members: &[usize]) -> Option<Lease> {
    if members.is_empty() {
        return None;
    }
    let mut rng = rand::rng();
    if let Some((first_pos, first)) = sample_fresh(ctx, members, None, &mut rng) {
        let second =
            sample_fresh(ctx, members, Some(first_pos), &mut rng).map_or(first, |(_, idx)| idx);
        let (better, worse) = if latency_key(ctx, second) < latency_key(ctx, first) {
            (second, first)
        } else {
            (first, second)
        };
        if let Some(lease) = ctx.take(better) {
            return Some(lease);
        }
        if worse != better
            && let Some(lease) = ctx.take(worse)
        {
            return Some(lease);
        }
    }
    let (mut fresh, mut backed_off) = fit_members(ctx, members);
    fresh.sort_by_key(|&idx| latency_key(ctx, idx));
    backed_off.sort_by_key(|&idx| latency_key(ctx, idx));
    fresh
        .into_iter()
        .chain(backed_off)
        .find_map(|idx| ctx.take(idx))
}
