//! Named shared state that outlives config swaps: metric series, backend health, balancing
//! cursors. Each compile asks for the entries its table needs (creating missing ones); after a
//! swap, entries the new table does not use are dropped, so a removed route's series disappear
//! and a renamed backend starts fresh, while everything still in use keeps its state.
//!
//! Copy-on-write: readers (metrics rendering) never block writers (the config thread), and
//! requests never touch the map at all (they hold `Arc`s to entries through the table).

use arc_swap::ArcSwap;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub struct Registry<T> {
    entries: ArcSwap<HashMap<Arc<str>, Arc<T>>>,
}

impl<T: Default> Default for Registry<T> {
    fn default() -> Self {
        Registry { entries: ArcSwap::from_pointee(HashMap::new()) }
    }
}

impl<T: Default> Registry<T> {
    /// The entry for `name`, created on first use. Called while compiling, never per request.
    pub fn get(&self, name: &str) -> Arc<T> {
        if let Some(existing) = self.entries.load().get(name) {
            return existing.clone();
        }
        let mut created = None;
        self.entries.rcu(|map| {
            let mut map = HashMap::clone(map);
            created = Some(map.entry(Arc::from(name)).or_insert_with(Arc::default).clone());
            map
        });
        created.unwrap_or_default()
    }

    /// Drops every entry whose name is not in `keep`.
    pub fn retain(&self, keep: &HashSet<&str>) {
        self.entries.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.retain(|name, _| keep.contains(&**name));
            map
        });
    }

    /// Every entry, sorted by name.
    pub fn sorted(&self) -> Vec<(Arc<str>, Arc<T>)> {
        let mut all: Vec<_> = self.entries.load().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::Registry;
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    #[test]
    fn entries_survive_until_no_longer_used() {
        let registry = Registry::<AtomicU64>::default();
        registry.get("a").fetch_add(3, Relaxed);
        let b = registry.get("b");
        assert!(Arc::ptr_eq(&b, &registry.get("b")));
        registry.retain(&HashSet::from(["a"]));
        assert_eq!(registry.get("a").load(Relaxed), 3, "kept entries keep their state");
        assert!(!Arc::ptr_eq(&b, &registry.get("b")), "a dropped entry starts fresh");
        assert_eq!(registry.sorted().len(), 2);
    }
}
