//! A cache with a fixed memory budget, for what clients can create at will
//! (STS sessions): a flood of new entries evicts old ones instead of growing
//! the process.
//!
//! Two generations: new entries go into the current one; when its cost
//! passes half the budget it becomes the previous one (the older previous
//! generation is dropped). A hit in the previous generation moves the entry
//! back to the current one, so entries in use survive (an approximation of
//! least-recently-used at the cost of one map lookup). At most `budget`
//! cost units are held, plus one entry.

use parking_lot::Mutex;

/// A string-keyed cache that holds at most about `budget` cost units (see the module docs).
pub struct BoundedCache<V> {
    budget: usize,
    inner: Mutex<Generations<V>>,
}

struct Generations<V> {
    current: foldhash::HashMap<String, (usize, V)>,
    current_cost: usize,
    previous: foldhash::HashMap<String, (usize, V)>,
}

impl<V: Clone> BoundedCache<V> {
    /// A cache holding entries of total `cost` (caller-defined units,
    /// normally estimated bytes) up to about `budget`.
    pub fn new(budget: usize) -> BoundedCache<V> {
        BoundedCache {
            budget,
            inner: Mutex::new(Generations {
                current: foldhash::HashMap::default(),
                current_cost: 0,
                previous: foldhash::HashMap::default(),
            }),
        }
    }

    /// The entry for `key`, moving it into the current generation if it was in the previous one.
    pub fn get(&self, key: &str) -> Option<V> {
        let mut g = self.inner.lock();
        if let Some((_, v)) = g.current.get(key) {
            return Some(v.clone());
        }
        let (cost, v) = g.previous.remove(key)?;
        let out = v.clone();
        self.put(&mut g, key.to_string(), cost, v);
        Some(out)
    }

    /// Caches `value` under `key`; an entry costing more than half the
    /// budget is not cached at all.
    pub fn insert(&self, key: String, cost: usize, value: V) {
        if cost > self.budget / 2 {
            return;
        }
        let mut g = self.inner.lock();
        g.previous.remove(&key);
        self.put(&mut g, key, cost, value);
    }

    fn put(&self, g: &mut Generations<V>, key: String, cost: usize, value: V) {
        if let Some((old, _)) = g.current.insert(key, (cost, value)) {
            g.current_cost -= old;
        }
        g.current_cost += cost;
        if g.current_cost > self.budget / 2 {
            g.previous = std::mem::take(&mut g.current);
            g.current_cost = 0;
        }
    }

    /// The number of entries held (both generations).
    pub fn len(&self) -> usize {
        let g = self.inner.lock();
        g.current.len() + g.previous.len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_new_entries_never_holds_more_than_the_budget() {
        let c = BoundedCache::new(1000);
        for i in 0..100_000 {
            c.insert(format!("k{i}"), 10, i);
            assert!(c.len() <= 101, "{}", c.len());
        }
        // The newest are there, the oldest gone.
        assert_eq!(c.get("k99999"), Some(99_999));
        assert_eq!(c.get("k0"), None);
    }

    #[test]
    fn an_entry_in_use_survives_a_flood() {
        let c = BoundedCache::new(1000);
        c.insert("hot".into(), 10, 0);
        for i in 0..10_000 {
            c.insert(format!("k{i}"), 10, i);
            assert_eq!(c.get("hot"), Some(0), "after {i}");
        }
    }

    #[test]
    fn entries_larger_than_half_the_budget_are_not_cached_and_replacing_keeps_the_count() {
        let c = BoundedCache::new(100);
        c.insert("big".into(), 51, 1);
        assert_eq!(c.get("big"), None);
        for _ in 0..1000 {
            c.insert("same".into(), 10, 2);
        }
        assert_eq!(c.len(), 1);
        assert_eq!(c.get("same"), Some(2));
    }
}
