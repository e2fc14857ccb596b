//! Sticky sessions: session → account bindings, so one conversation keeps hitting the
//! account whose upstream prompt cache is warm.
//!
//! Bounded: past `capacity` the least recently used binding is evicted, so a flood of
//! distinct session ids cannot grow memory. Sessions are stored as 64-bit keyed hashes,
//! never as the client's string. Large maps are sharded so concurrent requests rarely
//! wait on each other; small ones use a single shard, which keeps "oldest" exact.

use crate::id::AccountId;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};

const SHARDS_WHEN_LARGE: usize = 16;
const LARGE: usize = 4_096;

/// A session's hash and shard.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionKey {
    hash: u64,
    shard: usize,
}

#[derive(Debug)]
struct Binding {
    account: AccountId,
    last_used_ms: u64,
    seq: u64,
}

#[derive(Debug, Default)]
struct Shard {
    bindings: HashMap<u64, Binding>,
    /// Use order: sequence number → session key; the first entry is the oldest.
    by_use: BTreeMap<u64, u64>,
    next_seq: u64,
}

#[derive(Debug)]
pub(crate) struct StickyMap {
    shards: Box<[Mutex<Shard>]>,
    shard_capacity: usize,
    capacity: usize,
    keys: RandomState,
}

impl StickyMap {
    pub fn new(capacity: usize) -> StickyMap {
        let shard_count = if capacity >= LARGE {
            SHARDS_WHEN_LARGE
        } else {
            1
        };
        StickyMap {
            shards: (0..shard_count).map(|_| Mutex::default()).collect(),
            shard_capacity: capacity.div_ceil(shard_count).max(1),
            capacity,
            keys: RandomState::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Hash a session once per request; lookups and binds then reuse it.
    pub fn key(&self, session: &str) -> SessionKey {
        let hash = self.keys.hash_one(session);
        SessionKey {
            hash,
            shard: (hash >> 32) as usize % self.shards.len(),
        }
    }

    /// The account `session` is bound to, if the binding has not expired. Read-only.
    pub fn lookup(&self, session: &str, ttl_ms: u64, now_ms: u64) -> Option<AccountId> {
        self.lookup_key(self.key(session), ttl_ms, now_ms)
    }

    pub fn lookup_key(&self, key: SessionKey, ttl_ms: u64, now_ms: u64) -> Option<AccountId> {
        let shard = self.shards[key.shard].lock();
        shard
            .bindings
            .get(&key.hash)
            .filter(|b| now_ms < b.last_used_ms.saturating_add(ttl_ms))
            .map(|b| b.account.clone())
    }

    /// Bind (or renew) `session` → `account` as of `now_ms`.
    #[cfg(test)]
    pub fn bind(&self, session: &str, account: &AccountId, now_ms: u64) {
        self.bind_key(self.key(session), account, now_ms);
    }

    pub fn bind_key(&self, key: SessionKey, account: &AccountId, now_ms: u64) {
        let mut shard = self.shards[key.shard].lock();
        let seq = shard.next_seq;
        shard.next_seq += 1;
        let previous = shard.bindings.insert(
            key.hash,
            Binding {
                account: account.clone(),
                last_used_ms: now_ms,
                seq,
            },
        );
        if let Some(previous) = previous {
            shard.by_use.remove(&previous.seq);
        }
        shard.by_use.insert(seq, key.hash);
        while shard.bindings.len() > self.shard_capacity {
            let Some((_, oldest)) = shard.by_use.pop_first() else {
                break;
            };
            shard.bindings.remove(&oldest);
        }
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().bindings.len()).sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn id(s: &str) -> AccountId {
        AccountId::new(s).unwrap()
    }

    #[test]
    fn binding_expires_after_ttl_unless_renewed() {
        let map = StickyMap::new(10);
        map.bind("s", &id("a"), 1_000);
        assert_eq!(map.lookup("s", 500, 1_499), Some(id("a")));
        assert_eq!(map.lookup("s", 500, 1_500), None);
        map.bind("s", &id("a"), 1_400);
        assert_eq!(map.lookup("s", 500, 1_899), Some(id("a")));
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn evicts_least_recently_used_beyond_capacity() {
        let map = StickyMap::new(2);
        map.bind("s1", &id("a"), 0);
        map.bind("s2", &id("b"), 1);
        map.bind("s1", &id("a"), 2); // s1 used again: s2 is now the oldest
        map.bind("s3", &id("c"), 3);
        assert_eq!(map.len(), 2);
        assert_eq!(map.lookup("s2", 100, 4), None);
        assert_eq!(map.lookup("s1", 100, 4), Some(id("a")));
        assert_eq!(map.lookup("s3", 100, 4), Some(id("c")));
    }

    #[test]
    fn large_maps_stay_bounded_across_shards() {
        let map = StickyMap::new(LARGE);
        for i in 0..(3 * LARGE) {
            map.bind(&format!("session-{i}"), &id("a"), i as u64);
        }
        assert!(map.len() <= LARGE + SHARDS_WHEN_LARGE, "{}", map.len());
        assert!(map.len() >= LARGE / 2, "{}", map.len());
    }
}
