//! `/api/complete?key=K`: a slow origin behind an in-process LRU cache, for the `cache` scenario's http mode. A miss
//! waits `ms` (the origin), stores the answer and says `X-Cache: MISS`; a hit answers at once with `X-Cache: HIT`.
//! One cache per `capacity` (entries) value, so a plan picks its cache's size; hits, misses, evictions and bytes
//! held are on /metrics.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

/// Default and largest entries of a cache, and default and largest answer size.
pub(crate) const CAPACITY_DEFAULT: u64 = 1000;
pub(crate) const CAPACITY_MAX: u64 = 1_000_000;
pub(crate) const SIZE_DEFAULT: u64 = 256;
pub(crate) const SIZE_MAX: u64 = 64 << 10;

/// One cache: answers by key, the least recently used pushed out when full.
type Cache = Arc<Mutex<lru::LruCache<String, Bytes>>>;

/// Every cache of the testbed, by capacity, and their counters.
#[derive(Debug, Default)]
pub(crate) struct Caches {
    by_capacity: Mutex<HashMap<u64, Cache>>,
    counters: Mutex<Counters>,
}

/// What /metrics shows.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub bytes: u64,
}

impl Caches {
    fn cache(&self, capacity: u64) -> Cache {
        let entries =
            NonZeroUsize::new(usize::try_from(capacity.clamp(1, CAPACITY_MAX)).unwrap_or(1))
                .unwrap_or(NonZeroUsize::MIN);
        self.by_capacity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(capacity)
            .or_insert_with(|| Arc::new(Mutex::new(lru::LruCache::new(entries))))
            .clone()
    }

    fn count(&self, update: impl FnOnce(&mut Counters)) {
        update(&mut self.counters.lock().unwrap_or_else(PoisonError::into_inner));
    }

    pub(crate) fn counters(&self) -> Counters {
        *self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer for `key` and whether it was a hit; a miss waits `origin_ms` first.
    pub(crate) async fn complete(
        &self,
        key: &str,
        capacity: u64,
        size: u64,
        origin_ms: u64,
    ) -> (Bytes, bool) {
        let cache = self.cache(capacity);
        let cached = cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned();
        if let Some(answer) = cached {
            self.count(|c| c.hits += 1);
            return (answer, true);
        }
        tokio::time::sleep(std::time::Duration::from_millis(origin_ms)).await;
        let answer = answer_for(key, size);
        let len = answer.len() as u64;
        let evicted = cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(key.to_owned(), answer.clone());
        self.count(|c| {
            c.misses += 1;
            c.bytes += len;
            match evicted {
                // Replaced its own earlier copy (two misses for one key at once): no eviction.
                Some((old_key, old)) if old_key == key => {
                    c.bytes = c.bytes.saturating_sub(old.len() as u64)
                }
                Some((_, old)) => {
                    c.evictions += 1;
                    c.bytes = c.bytes.saturating_sub(old.len() as u64);
                }
                None => {}
            }
        });
        (answer, false)
    }
}

/// A deterministic answer of `size` bytes for `key`.
fn answer_for(key: &str, size: u64) -> Bytes {
    let size = usize::try_from(size.min(SIZE_MAX)).unwrap_or(0);
    let mut text = format!("{{\"key\":\"{}\",\"completion\":\"", key.escape_default());
    while text.len() + 2 < size {
        text.push('x');
    }
    text.push_str("\"}");
    Bytes::from(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn misses_then_hits_and_evictions_beyond_capacity() {
        let caches = Caches::default();
        let (_, hit) = caches.complete("a", 2, 64, 1).await;
        assert!(!hit);
        let (answer, hit) = caches.complete("a", 2, 64, 1).await;
        assert!(hit);
        assert_eq!(answer.len(), 64);
        caches.complete("b", 2, 64, 1).await;
        caches.complete("c", 2, 64, 1).await; // evicts "a"
        let (_, hit) = caches.complete("a", 2, 64, 1).await;
        assert!(!hit);
        let c = caches.counters();
        assert_eq!((c.hits, c.misses, c.evictions), (1, 4, 2));
        assert_eq!(c.bytes, 128, "two entries of 64 bytes held");
    }
}
