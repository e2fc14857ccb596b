//! `least_used`'s index: a winner tree over a tier's members, keyed by load (in flight,
//! then requests so far) with the configured order breaking ties. The arg-min is at the
//! root, so a pick costs O(1) when the least-used account fits and O(k log n) when the k
//! ahead of it do not, instead of a scan of the whole tier.
//!
//! **Kept in step by the accounts, lazily.** Each member's runtime holds a subscription
//! (`AccountRuntime::watch`) to the index's `Changes`: one bit per member. Every change
//! of a member's load — a reservation counted, a slot released — only sets its bit, with
//! no lock. The next pick, under the tree's lock, takes the set bits and re-reads those
//! members' counters into their leaves. A leaf is never adjusted by a delta: it is
//! overwritten with the counters as they are when the pick reads them, so a member that
//! changed twice between picks costs one refresh, and a runtime shared by an old and a
//! rebuilt pool (a reload) marks both until the old one is dropped. `Changes` holds no
//! reference back to the index or the runtimes, so the runtimes hold it strongly; the
//! index marks it dead when dropped, and those subscriptions are pruned at the
//! account's next change.
//!
//! **Nothing is missed.** A change writes its counter, then sets the member's bit, then
//! sets its group's bit in the summary word unless it is already set; a pick swaps the
//! summary to zero, then each marked group's words to zero, then reads the counters. All
//! of these are `SeqCst`, so a change whose marking finished before a pick began is read
//! by that pick: either the pick's summary swap sees the group bit, or the change saw the
//! group bit still set, from a mark that the next summary swap takes together with its
//! word.
//!
//! **Locks.** The tree's mutex is held for a pick, which judges accounts (`Ctx::fit`,
//! which may take an account's core lock) while holding it. Nothing takes the tree's
//! lock while holding an account's core lock, so the order is always tree, then core.

use crate::runtime::AccountRuntime;
use crate::select::Fit;
use parking_lot::Mutex;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

/// (in flight, requests so far): lower is less used.
type Load = (u32, u64);

/// Leaves judged before a pick gives up on the tree and scans the tier instead: with
/// most of the tier unusable, a scan (O(n)) beats popping leaves (O(log n) each).
const MAX_JUDGED: usize = 32;

pub(crate) struct LoadIndex {
    tree: Mutex<Tree>,
    changes: Arc<Changes>,
    runtimes: Box<[Arc<AccountRuntime>]>,
}

/// What a pick found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// The least-used member that fits, by position; preferring members not backed off.
    Member(usize),
    /// No member fits.
    Nothing,
    /// Too many members ahead did not fit: the caller should scan.
    GaveUp,
}

impl LoadIndex {
    /// Builds the tree and subscribes every member's runtime to it.
    pub fn new(runtimes: Box<[Arc<AccountRuntime>]>) -> Arc<LoadIndex> {
        let index = Arc::new(LoadIndex {
            tree: Mutex::new(Tree::new(runtimes.len())),
            changes: Arc::new(Changes::new(runtimes.len())),
            runtimes,
        });
        for (pos, rt) in index.runtimes.iter().enumerate() {
            rt.watch(index.changes.clone(), pos);
        }
        // Read the counters only after subscribing: a change before this is read here,
        // a change after it marks the member for the next pick.
        {
            let mut tree = index.tree.lock();
            for (pos, rt) in index.runtimes.iter().enumerate() {
                tree.set(pos, rt.load_for_index());
            }
        }
        index
    }

    /// The least-used member for which `fit` says yes, skipping `skip`; one not backed off
    /// if there is any.
    pub fn pick(&self, skip: &[usize], mut fit: impl FnMut(usize) -> Option<Fit>) -> Found {
        let mut tree = self.tree.lock();
        self.changes
            .take(|pos| tree.set(pos, self.runtimes[pos].load_for_index()));
        tree.best_first(|pos| if skip.contains(&pos) { None } else { fit(pos) })
    }
}

impl Drop for LoadIndex {
    fn drop(&mut self) {
        self.changes.alive.store(false, SeqCst);
    }
}

/// Which members' loads changed since the last pick: a bit per member, and a summary bit
/// per group of words so that a pick reads only the words that have a bit set.
#[derive(Debug)]
pub(crate) struct Changes {
    words: Box<[AtomicU64]>,
    summary: AtomicU64,
    /// Words per summary bit: 1 up to 4 096 members.
    group: usize,
    /// The index still exists: a runtime drops its subscription when this is false.
    alive: AtomicBool,
}

impl Changes {
    fn new(n: usize) -> Changes {
        let words = n.div_ceil(64).max(1);
        Changes {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
            summary: AtomicU64::new(0),
            group: words.div_ceil(64),
            alive: AtomicBool::new(true),
        }
    }

    /// Whether the index is still there to read marks.
    pub(crate) fn alive(&self) -> bool {
        self.alive.load(SeqCst)
    }

    /// Member `pos`'s load changed; called after the counter's change.
    pub(crate) fn mark(&self, pos: usize) {
        let word = pos / 64;
        self.words[word].fetch_or(1 << (pos % 64), SeqCst);
        let group = 1 << (word / self.group);
        if self.summary.load(SeqCst) & group == 0 {
            self.summary.fetch_or(group, SeqCst);
        }
    }

    /// Calls `f` once for each member marked since the last call, and clears the marks.
    fn take(&self, mut f: impl FnMut(usize)) {
        if self.summary.load(SeqCst) == 0 {
            return;
        }
        let mut groups = self.summary.swap(0, SeqCst);
        while groups != 0 {
            let g = groups.trailing_zeros() as usize;
            groups &= groups - 1;
            let first = g * self.group;
            let last = (first + self.group).min(self.words.len());
            for w in first..last {
                if self.words[w].load(SeqCst) == 0 {
                    continue;
                }
                let mut bits = self.words[w].swap(0, SeqCst);
                while bits != 0 {
                    f(w * 64 + bits.trailing_zeros() as usize);
                    bits &= bits - 1;
                }
            }
        }
    }
}

/// A winner tree of packed keys — in flight, requests so far, position, from the most
/// significant bits down — so a node is simply the smaller of its children and a key
/// names its member. Leaves are `key[cap + pos]`, the root is `key[1]`; padding leaves
/// hold `EMPTY`, which no member's key reaches (its position bits are all ones).
struct Tree {
    key: Box<[u128]>,
    cap: usize,
}

const EMPTY: u128 = u128::MAX;

fn pack((in_flight, requests): Load, pos: usize) -> u128 {
    (u128::from(in_flight) << 96) | (u128::from(requests) << 32) | pos as u128
}

fn position(key: u128) -> usize {
    (key & 0xffff_ffff) as usize
}

impl Tree {
    fn new(n: usize) -> Tree {
        // Positions fit in 32 bits with room for `EMPTY`: a tier of 2^32 - 1 accounts
        // is far beyond what the pool accepts.
        let cap = n.next_power_of_two().max(1);
        let mut key = vec![EMPTY; 2 * cap].into_boxed_slice();
        for pos in 0..n {
            key[cap + pos] = pack((0, 0), pos);
        }
        for node in (1..cap).rev() {
            key[node] = key[2 * node].min(key[2 * node + 1]);
        }
        Tree { key, cap }
    }

    fn set(&mut self, pos: usize, load: Load) {
        let mut node = self.cap + pos;
        let new = pack(load, pos);
        if self.key[node] == new {
            return;
        }
        self.key[node] = new;
        while node > 1 {
            node /= 2;
            let min = self.key[2 * node].min(self.key[2 * node + 1]);
            // A node whose minimum is unchanged changes nothing above it. (Had the
            // minimum been this member, it changed: the member's key did.)
            if self.key[node] == min {
                break;
            }
            self.key[node] = min;
        }
    }

    /// Visits members in increasing load (ties by position) until one fits and is not
    /// backed off; the first backed-off one that fits is the fallback.
    fn best_first(&self, mut fit: impl FnMut(usize) -> Option<Fit>) -> Found {
        if self.key[1] == EMPTY {
            return Found::Nothing;
        }
        // Subtrees not yet visited, by their minimum; together they hold every member not
        // judged yet. Nothing is allocated when the least-used member fits.
        let mut open: BinaryHeap<Reverse<(u128, usize)>> = BinaryHeap::new();
        let mut fallback = None;
        let mut node = 1;
        for _ in 0..MAX_JUDGED {
            let w = position(self.key[node]);
            match fit(w) {
                Some(Fit { backed_off: false }) => return Found::Member(w),
                Some(Fit { backed_off: true }) => {
                    fallback.get_or_insert(w);
                }
                None => {}
            }
            self.open_beside(&mut open, node);
            match open.pop() {
                Some(Reverse((_, next))) => node = next,
                None => return fallback.map_or(Found::Nothing, Found::Member),
            }
        }
        Found::GaveUp
    }

    /// From `node` down to its minimum's leaf, opens each sibling subtree: the members
    /// below `node` other than its minimum.
    fn open_beside(&self, open: &mut BinaryHeap<Reverse<(u128, usize)>>, mut node: usize) {
        let min = self.key[node];
        while node < self.cap {
            let (left, right) = (2 * node, 2 * node + 1);
            let (on_path, beside) = if self.key[left] == min {
                (left, right)
            } else {
                (right, left)
            };
            if self.key[beside] != EMPTY {
                open.push(Reverse((self.key[beside], beside)));
            }
            node = on_path;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// The answer a scan gives: least load, then position; not backed off first.
    fn scan(loads: &[Load], fit: &[Option<Fit>]) -> Found {
        let best = (0..loads.len())
            .filter_map(|p| fit[p].map(|f| ((f.backed_off, loads[p], p), p)))
            .min();
        best.map_or(Found::Nothing, |(_, p)| Found::Member(p))
    }

    #[test]
    fn the_tree_agrees_with_a_scan_through_random_changes() {
        let mut rng = StdRng::seed_from_u64(7);
        for n in [1, 2, 3, 5, 8, 13, 100] {
            let mut tree = Tree::new(n);
            let mut loads = vec![(0u32, 0u64); n];
            for round in 0..2_000 {
                let pos = rng.random_range(0..n);
                loads[pos] = (rng.random_range(0..4), rng.random_range(0..6));
                tree.set(pos, loads[pos]);
                // Mostly fit, sometimes not, sometimes backed off: within the judging
                // budget the tree must give exactly the scan's answer.
                let fit: Vec<Option<Fit>> = (0..n)
                    .map(|_| match rng.random_range(0..10) {
                        0 | 1 => None,
                        2 => Some(Fit { backed_off: true }),
                        _ => Some(Fit { backed_off: false }),
                    })
                    .collect();
                let mut judged = Vec::new();
                let found = tree.best_first(|p| {
                    judged.push(p);
                    fit[p]
                });
                assert!(
                    judged
                        .iter()
                        .all(|p| judged.iter().filter(|q| *q == p).count() == 1),
                    "n={n} round={round}: a member judged twice: {judged:?}"
                );
                if found == Found::GaveUp {
                    assert_eq!(judged.len(), MAX_JUDGED);
                    continue;
                }
                assert_eq!(found, scan(&loads, &fit), "n={n} round={round} {loads:?}");
            }
        }
    }

    fn taken(changes: &Changes) -> Vec<usize> {
        let mut got = Vec::new();
        changes.take(|pos| got.push(pos));
        got
    }

    #[test]
    fn a_pick_takes_each_marked_member_once_at_every_size() {
        let mut rng = StdRng::seed_from_u64(11);
        // one word, a word's edge, more words than summary bits (groups of two and more)
        for n in [1, 63, 64, 65, 4_096, 4_097, 10_000] {
            let changes = Changes::new(n);
            assert_eq!(taken(&changes), Vec::<usize>::new(), "n={n}");
            for _ in 0..20 {
                let mut marked: Vec<usize> = (0..rng.random_range(1..50))
                    .map(|_| rng.random_range(0..n))
                    .collect();
                for &pos in &marked {
                    changes.mark(pos);
                }
                marked.sort_unstable();
                marked.dedup();
                let mut got = taken(&changes);
                got.sort_unstable();
                assert_eq!(got, marked, "n={n}");
                assert_eq!(taken(&changes), Vec::<usize>::new(), "n={n}: taken twice");
            }
        }
    }

    #[test]
    fn marks_made_while_picks_take_them_are_all_taken() {
        let n = 5_000;
        let changes = Changes::new(n);
        let mut seen = vec![false; n];
        std::thread::scope(|s| {
            let markers: Vec<_> = (0..3)
                .map(|t| {
                    let changes = &changes;
                    s.spawn(move || {
                        for pos in (t..n).step_by(3) {
                            changes.mark(pos);
                        }
                    })
                })
                .collect();
            while !markers.iter().all(|m| m.is_finished()) {
                changes.take(|pos| seen[pos] = true);
            }
        });
        changes.take(|pos| seen[pos] = true);
        assert!(seen.iter().all(|&s| s), "some marks were lost");
    }

    #[test]
    fn members_are_judged_in_order_of_load_and_the_search_gives_up_in_time() {
        let n = 100;
        let mut tree = Tree::new(n);
        for pos in 0..n {
            // loads fall with position: the last member is the least used
            tree.set(pos, (0, (n - pos) as u64));
        }
        let mut judged = Vec::new();
        let found = tree.best_first(|p| {
            judged.push(p);
            None
        });
        assert_eq!(found, Found::GaveUp);
        let expected: Vec<usize> = (0..MAX_JUDGED).map(|i| n - 1 - i).collect();
        assert_eq!(judged, expected);
        // with every member unfit in a small tier, the answer is "nothing", not a scan
        let small = Tree::new(3);
        assert_eq!(small.best_first(|_| None), Found::Nothing);
        assert_eq!(
            small.best_first(|p| (p == 2).then_some(Fit { backed_off: true })),
            Found::Member(2)
        );
    }
}
