//! A least-recently-used cache bounded by bytes, for the parsed frames the store keeps
//! and the simulator's converted bars: a service that runs for weeks over a large store
//! holds at most its budget, however many series it has been asked for.

use std::borrow::Borrow;
use std::hash::Hash;

use lru::LruCache;

/// What every entry costs beyond the size its caller names (key, list node, frame or
/// vector header): with it, entries of empty series are bounded by the budget too.
pub(crate) const ENTRY_OVERHEAD: usize = 256;

/// Entries with their sizes; the sum stays within `budget`, the least recently used
/// leaving first.
#[derive(Debug)]
pub(crate) struct ByteLru<K: Hash + Eq, V> {
    // Unbounded in count: the byte budget (with the per-entry overhead) is the bound.
    entries: LruCache<K, (V, usize)>,
    bytes: usize,
    budget: usize,
}

impl<K: Hash + Eq, V> ByteLru<K, V> {
    /// An empty cache holding at most `budget` bytes (0 caches nothing).
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            entries: LruCache::unbounded(),
            bytes: 0,
            budget,
        }
    }

    /// The entry of `key`, now the most recently used.
    pub(crate) fn get<Q>(&mut self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get(key).map(|(value, _)| value)
    }

    /// Keeps `value` (of `size` bytes) under `key`, evicting the least recently used
    /// entries until the total fits. A value larger than the whole budget is not kept
    /// (and an older entry under `key` goes, since it is being replaced): it would
    /// evict everything else and then itself. Returns whether the value was kept.
    pub(crate) fn insert(&mut self, key: K, value: V, size: usize) -> bool {
        let cost = size.saturating_add(ENTRY_OVERHEAD);
        if cost > self.budget {
            self.remove(&key);
            return false;
        }
        // `push` hands back the entry it replaced under the same key.
        if let Some((_, (_, old))) = self.entries.push(key, (value, cost)) {
            self.bytes -= old;
        }
        self.bytes += cost;
        while self.bytes > self.budget {
            // The new entry is the most recently used and fits alone, so the loop
            // stops before reaching it.
            let Some((_, (_, evicted))) = self.entries.pop_lru() else {
                break;
            };
            self.bytes -= evicted;
        }
        true
    }

    /// Forgets `key`.
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (value, cost) = self.entries.pop(key)?;
        self.bytes -= cost;
        Some(value)
    }

    /// The bytes the entries are charged (sizes plus [`ENTRY_OVERHEAD`] each).
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_leave_first_and_the_total_stays_within_budget() {
        let entry = 1000;
        let cost = entry + ENTRY_OVERHEAD;
        let mut cache = ByteLru::new(3 * cost);
        for key in 1..=3 {
            assert!(cache.insert(key, key, entry));
        }
        assert_eq!(cache.bytes(), 3 * cost);
        // Using 1 makes 2 the oldest: the fourth entry evicts 2, not 1.
        assert_eq!(cache.get(&1).copied(), Some(1));
        assert!(cache.insert(4, 4, entry));
        assert_eq!(cache.get(&2).copied(), None);
        assert_eq!(
            (
                cache.get(&1).copied(),
                cache.get(&3).copied(),
                cache.get(&4).copied()
            ),
            (Some(1), Some(3), Some(4))
        );
        // A double-size entry evicts the two oldest.
        assert!(cache.insert(5, 5, 2 * entry + ENTRY_OVERHEAD));
        assert_eq!(
            (cache.len(), cache.get(&1).copied(), cache.get(&3).copied()),
            (2, None, None)
        );
        assert!(cache.bytes() <= 3 * cost);
        // Replacing an entry charges only the new size.
        assert!(cache.insert(4, 40, 10));
        assert_eq!(cache.get(&4).copied(), Some(40));
        assert_eq!(cache.bytes(), 3 * cost - entry + 10);
    }

    #[test]
    fn a_value_larger_than_the_budget_is_not_kept() {
        let mut cache = ByteLru::new(10_000);
        assert!(cache.insert("a", 1, 100));
        assert!(cache.insert("b", 2, 100));
        assert!(!cache.insert("c", 3, 10_000));
        assert_eq!(
            (
                cache.get("a").copied(),
                cache.get("b").copied(),
                cache.get("c").copied()
            ),
            (Some(1), Some(2), None)
        );
        // Too large under a key already held: the old value goes, being stale.
        assert!(!cache.insert("a", 10, 20_000));
        assert_eq!((cache.get("a").copied(), cache.len()), (None, 1));
        assert_eq!(cache.bytes(), 100 + ENTRY_OVERHEAD);
        assert_eq!(cache.remove("b"), Some(2));
        assert_eq!(cache.bytes(), 0);
        // A zero budget caches nothing.
        assert!(!ByteLru::new(0).insert("a", 1, 0));
    }
}
