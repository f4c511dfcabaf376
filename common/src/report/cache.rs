//! Figures of a `cache` scenario: the client's view (hits and misses by their own latency histograms, merged
//! exactly across agents) beside the cache server's own counters and memory.

use super::{ErrorCounts, LatencyStats};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How hits and misses were told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    /// Cache-aside against Redis: GET, on a miss the origin and SET.
    Redis,
    /// An application's cache, by a response header.
    Http,
}

/// Metrics of a `cache` scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheMetrics {
    pub mode: CacheMode,
    /// Lookups completed or failed in the measured phase.
    pub requests: u64,
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
    pub errors_by_class: ErrorCounts,
    /// hits / (hits + misses), the client's view; null when nothing was looked up.
    pub hit_rate: Option<f64>,
    /// The cache server's own hit rate over the run (Redis INFO keyspace_hits and keyspace_misses, after minus
    /// before); null in http mode or when INFO could not be read (see `not_measured`).
    pub server_hit_rate: Option<f64>,
    /// End to end: a hit's lookup.
    pub hit_latency_ms: Option<LatencyStats>,
    /// End to end: a miss's lookup, origin fetch and store.
    pub miss_latency_ms: Option<LatencyStats>,
    /// Redis mode: the GET round trip alone, hits and misses together.
    pub lookup_latency_ms: Option<LatencyStats>,
    /// Mean miss latency / mean hit latency.
    pub speedup: Option<f64>,
    /// Median miss latency / median hit latency.
    pub speedup_p50: Option<f64>,
    /// Lookups completed in the measured window per second of it, all agents.
    pub throughput_rps: Option<f64>,
    /// Successful lookups (hit or miss, no error) per second of the window.
    pub success_rps: Option<f64>,
    /// Length of the measured window, seconds (longest agent).
    pub duration_s: f64,
    /// Redis `used_memory` after the run, bytes.
    pub cache_memory_bytes: Option<u64>,
    /// Redis `maxmemory`, bytes; null when the server has no limit (0).
    pub cache_memory_limit_bytes: Option<u64>,
    /// cache_memory_bytes / cache_memory_limit_bytes.
    pub memory_utilization: Option<f64>,
    /// Keys the server evicted during the run (INFO evicted_keys, after minus before).
    pub evictions: Option<u64>,
    /// Keys of this run left in the cache at the end and deleted (unless keep_keys).
    pub keys_deleted: Option<u64>,
    /// The key sampler's seed: the same seed and key space give the same key sequence.
    pub seed: u64,
    pub key_space: u64,
    pub zipf: f64,
    /// Base64 of the merged hit and miss histograms, HDR V2 + deflate, microseconds.
    pub hdr_hit: String,
    pub hdr_miss: String,
    /// Figures above that are null, with the reason.
    #[serde(default)]
    pub not_measured: BTreeMap<String, String>,
}

/// Plain figures a threshold may name.
const FIGURES: [&str; 16] = [
    "requests",
    "hits",
    "misses",
    "errors",
    "hit_rate",
    "server_hit_rate",
    "speedup",
    "speedup_p50",
    "throughput_rps",
    "success_rps",
    "cache_memory_bytes",
    "cache_memory_limit_bytes",
    "memory_utilization",
    "evictions",
    "keys_deleted",
    "duration_s",
];

pub fn metric_paths() -> Vec<String> {
    let mut paths: Vec<String> = FIGURES.iter().map(|s| (*s).to_owned()).collect();
    paths.extend(
        ErrorCounts::FIELDS
            .iter()
            .map(|f| format!("errors_by_class.{f}")),
    );
    for group in ["hit_latency_ms", "miss_latency_ms", "lookup_latency_ms"] {
        paths.extend(LatencyStats::FIELDS.iter().map(|f| format!("{group}.{f}")));
    }
    paths
}

impl CacheMetrics {
    /// The figure at a threshold path.
    pub fn figure(&self, path: &str) -> Option<f64> {
        if let Some((group, field)) = path.split_once('.') {
            return match group {
                "errors_by_class" => self.errors_by_class.get(field).map(|v| v as f64),
                "hit_latency_ms" => self.hit_latency_ms?.get(field),
                "miss_latency_ms" => self.miss_latency_ms?.get(field),
                "lookup_latency_ms" => self.lookup_latency_ms?.get(field),
                _ => None,
            };
        }
        let count = |v: u64| Some(v as f64);
        match path {
            "requests" => count(self.requests),
            "hits" => count(self.hits),
            "misses" => count(self.misses),
            "errors" => count(self.errors),
            "hit_rate" => self.hit_rate,
            "server_hit_rate" => self.server_hit_rate,
            "speedup" => self.speedup,
            "speedup_p50" => self.speedup_p50,
            "throughput_rps" => self.throughput_rps,
            "success_rps" => self.success_rps,
            "cache_memory_bytes" => self.cache_memory_bytes.map(|v| v as f64),
            "cache_memory_limit_bytes" => self.cache_memory_limit_bytes.map(|v| v as f64),
            "memory_utilization" => self.memory_utilization,
            "evictions" => self.evictions.map(|v| v as f64),
            "keys_deleted" => self.keys_deleted.map(|v| v as f64),
            "duration_s" => Some(self.duration_s),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Metrics with every figure set, for path tests.
    pub(crate) fn sample() -> CacheMetrics {
        let latency = LatencyStats {
            min: 0.1,
            mean: 0.4,
            p50: 0.3,
            p90: 0.6,
            p95: 0.7,
            p99: 0.9,
            p999: 1.1,
            max: 1.2,
        };
        CacheMetrics {
            mode: CacheMode::Redis,
            requests: 100,
            hits: 80,
            misses: 18,
            errors: 2,
            errors_by_class: ErrorCounts {
                connect: 1,
                timeout: 1,
                status_4xx: 0,
                status_5xx: 0,
                other: 0,
                response_too_large: 0,
            },
            hit_rate: Some(0.8163),
            server_hit_rate: Some(0.81),
            hit_latency_ms: Some(latency),
            miss_latency_ms: Some(latency),
            lookup_latency_ms: Some(latency),
            speedup: Some(50.0),
            speedup_p50: Some(60.0),
            throughput_rps: Some(1000.0),
            success_rps: Some(980.0),
            duration_s: 2.0,
            cache_memory_bytes: Some(1 << 20),
            cache_memory_limit_bytes: Some(1 << 28),
            memory_utilization: Some(0.004),
            evictions: Some(3),
            keys_deleted: Some(18),
            seed: 7,
            key_space: 100,
            zipf: 1.1,
            hdr_hit: String::new(),
            hdr_miss: String::new(),
            not_measured: BTreeMap::new(),
        }
    }
}
