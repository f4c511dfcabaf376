//! A cache shard's state that the HTTP executor carries for it: how its lookups go (one per shard), and each load
//! thread's key stream and idle Redis connections. The lookups themselves are `crate::cache`'s.

use crate::cache::KeySampler;
use std::sync::Arc;
use std::time::Duration;

/// How a shard's lookups go.
#[derive(Debug)]
pub struct CacheLookup {
    /// The request's bytes before and after its key.
    pub request_prefix: Vec<u8>,
    pub request_suffix: Vec<u8>,
    pub key_prefix: String,
    pub key_space: u64,
    pub zipf: f64,
    pub seed: u64,
    pub agent_index: u64,
    pub mode: Mode,
}

#[derive(Debug)]
pub enum Mode {
    Redis {
        /// Reached at the address the allowlist admitted, every reply bounded.
        client: crate::redis_conn::BoundedRedis,
        ttl_s: u64,
    },
    /// A response with this header (lower-case name, value) is a hit.
    Http { watch: (Vec<u8>, Vec<u8>) },
}

impl CacheLookup {
    /// The request bytes of a lookup of `key`.
    pub fn request(&self, key: &str) -> Vec<u8> {
        let mut r =
            Vec::with_capacity(self.request_prefix.len() + key.len() + self.request_suffix.len());
        r.extend_from_slice(&self.request_prefix);
        r.extend_from_slice(key.as_bytes());
        r.extend_from_slice(&self.request_suffix);
        r
    }

    /// This run's name of key number `n`.
    pub fn key(&self, n: u64) -> String {
        format!("{}{n}", self.key_prefix)
    }
}

/// What one load thread keeps for its lookups: its key stream and its idle Redis connections. A lookup takes one
/// for itself and gives it back, so each connection carries one command at a time (no pipelining), and a thread
/// holds as many as it has lookups in flight: the plan's connections, as for HTTP.
#[derive(Debug)]
pub struct ThreadCache {
    pub lookup: Arc<CacheLookup>,
    pub sampler: std::sync::Mutex<KeySampler>,
    idle: std::sync::Mutex<Vec<redis::aio::MultiplexedConnection>>,
}

impl ThreadCache {
    pub fn new(lookup: Arc<CacheLookup>, thread: u64) -> Self {
        let sampler = KeySampler::new(
            lookup.seed,
            lookup.agent_index,
            thread,
            lookup.key_space,
            lookup.zipf,
        );
        ThreadCache {
            lookup,
            sampler: std::sync::Mutex::new(sampler),
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The next key of this thread's stream.
    pub fn next_key(&self) -> String {
        let n = self
            .sampler
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .next_key();
        self.lookup.key(n)
    }

    /// An idle Redis connection of this thread for one lookup, or a new one (within `timeout`). Give it back with
    /// [`Self::give_back`] when the lookup went well; a failed one is dropped.
    pub async fn take_redis(
        &self,
        client: &crate::redis_conn::BoundedRedis,
        timeout: Duration,
    ) -> Result<redis::aio::MultiplexedConnection, ()> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        if let Some(conn) = idle {
            return Ok(conn);
        }
        client
            .connect(timeout)
            .await
            .map_err(|e| tracing::debug!("redis connection failed: {e}"))
    }

    pub fn give_back(&self, conn: redis::aio::MultiplexedConnection) {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(conn);
    }
}
