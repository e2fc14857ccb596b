//! A few recently used entries, bounded in number and in bytes; when a new entry does not
//! fit, the least recently used go first. The per-thread caches of repeated `tools`
//! arrays (here, and the converted lists in `qgate-translate`) are built on it: small
//! enough that a linear scan finds an entry, and lookups by any predicate (exact bytes,
//! list identity).

/// Entries of type `K` → `V`, at most `max_entries` of them and `max_bytes` together.
#[derive(Debug)]
pub struct Recent<K, V> {
    entries: Vec<Slot<K, V>>,
    clock: u64,
    max_entries: usize,
    max_bytes: usize,
}

#[derive(Debug)]
struct Slot<K, V> {
    key: K,
    value: V,
    bytes: usize,
    last_used: u64,
}

impl<K, V> Recent<K, V> {
    pub const fn new(max_entries: usize, max_bytes: usize) -> Self {
        Recent {
            entries: Vec::new(),
            clock: 0,
            max_entries,
            max_bytes,
        }
    }

    /// The value of the first entry whose key `matches`, marked as just used.
    pub fn get(&mut self, matches: impl Fn(&K) -> bool) -> Option<&V> {
        self.clock += 1;
        let clock = self.clock;
        let slot = self.entries.iter_mut().find(|s| matches(&s.key))?;
        slot.last_used = clock;
        Some(&slot.value)
    }

    /// Adds an entry counted as `bytes`, first dropping the least recently used entries
    /// until it fits. An entry larger than the whole bound empties the cache and is kept
    /// alone; callers keep such entries out.
    pub fn insert(&mut self, key: K, value: V, bytes: usize) {
        self.clock += 1;
        while self.entries.len() >= self.max_entries || self.bytes() + bytes > self.max_bytes {
            let Some(oldest) = (0..self.entries.len()).min_by_key(|&i| self.entries[i].last_used)
            else {
                break;
            };
            self.entries.swap_remove(oldest);
        }
        self.entries.push(Slot {
            key,
            value,
            bytes,
            last_used: self.clock,
        });
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of the entries kept, as counted when they were added.
    pub fn bytes(&self) -> usize {
        self.entries.iter().map(|s| s.bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_go_first_within_both_bounds() {
        let mut recent = Recent::new(3, 100);
        recent.insert("a", 1, 10);
        recent.insert("b", 2, 10);
        recent.insert("c", 3, 10);
        assert_eq!(recent.get(|k| *k == "a"), Some(&1));
        // Count bound: `b` is the least recently used.
        recent.insert("d", 4, 10);
        assert_eq!(recent.get(|k| *k == "b"), None);
        assert_eq!(recent.len(), 3);
        // Then the count bound takes `c`, and the byte bound (20 kept + 85 > 100) takes
        // `a`, the older of the two left.
        recent.insert("e", 5, 85);
        assert_eq!(recent.len(), 2);
        assert!(recent.bytes() <= 100);
        assert_eq!(recent.get(|k| *k == "a"), None);
        assert_eq!(recent.get(|k| *k == "d"), Some(&4));
        assert_eq!(recent.get(|k| *k == "e"), Some(&5));
    }
}
