//! Figures of a `pagination` scenario: per page depth, the OFFSET query's and the keyset (cursor) query's latency
//! from histograms merged exactly across agents, and their ratio.

use super::{ErrorCounts, LatencyStats};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Metrics of a `pagination` scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaginationMetrics {
    /// `postgres`, `mysql` or `sqlite`.
    pub backend: String,
    /// What the server says it is (`SHOW server_version`, `SELECT VERSION()`, `sqlite_version()`).
    pub server_version: Option<String>,
    /// The database URL without its password.
    pub database: String,
    pub table: String,
    pub key: String,
    /// Rows the pages run over (those matching `where`), counted before timing.
    pub rows: Option<u64>,
    /// The table was seeded by loadgrade (created and filled now, or reused with exactly `seed_rows` rows).
    pub seeded: bool,
    pub page_size: u64,
    /// Timed runs of each query at each depth, per agent and connection share (after one untimed warm run).
    pub iterations: u64,
    /// Connections per agent.
    pub concurrency: u64,
    /// Agents whose queries were merged.
    pub agents: u64,
    /// Timed queries, both kinds, every depth, all agents.
    pub queries: u64,
    pub errors: u64,
    pub errors_by_class: ErrorCounts,
    /// One entry per page number of the plan, shallowest first.
    pub depths: Vec<DepthMetrics>,
    /// OFFSET median / keyset median at the deepest page.
    pub speedup_at_deepest: Option<f64>,
    pub offset_at_deepest_ms: Option<LatencyStats>,
    pub cursor_at_deepest_ms: Option<LatencyStats>,
    /// The database's plan of the deepest OFFSET and keyset query, when the plan asked (`explain = true`).
    pub explain: Option<Explain>,
    /// The two statements timed, as sent (placeholders for the page's values).
    pub offset_statement: String,
    pub cursor_statement: String,
    /// Figures above that are null, with the reason.
    #[serde(default)]
    pub not_measured: BTreeMap<String, String>,
}

/// One page depth.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DepthMetrics {
    /// The page number, from 1.
    pub page: u64,
    /// Its first row, from 0: the OFFSET.
    pub offset: u64,
    /// `ORDER BY key LIMIT page_size OFFSET offset`, client-observed, round trip and rows included.
    pub offset_ms: Option<LatencyStats>,
    /// `WHERE key > last ORDER BY key LIMIT page_size`.
    pub cursor_ms: Option<LatencyStats>,
    /// OFFSET median / keyset median.
    pub speedup: Option<f64>,
    pub offset_queries: u64,
    pub cursor_queries: u64,
    /// Rows a page returned (both queries returned the same keys in the same order: checked).
    pub rows_per_page: u64,
    /// Base64 of the merged histograms, HDR V2 + deflate, microseconds.
    pub hdr_offset: String,
    pub hdr_cursor: String,
}

/// A database's own account of how it ran the deepest queries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Explain {
    /// The statement used: `EXPLAIN ANALYZE`, `ANALYZE FORMAT=JSON`, `EXPLAIN QUERY PLAN`.
    pub method: String,
    pub offset: String,
    pub cursor: String,
}

/// Plain figures a threshold may name.
const FIGURES: [&str; 5] = [
    "speedup_at_deepest",
    "rows",
    "page_size",
    "queries",
    "errors",
];

pub fn metric_paths() -> Vec<String> {
    let mut paths: Vec<String> = FIGURES.iter().map(|s| (*s).to_owned()).collect();
    paths.extend(
        ErrorCounts::FIELDS
            .iter()
            .map(|f| format!("errors_by_class.{f}")),
    );
    for group in ["offset_at_deepest_ms", "cursor_at_deepest_ms"] {
        paths.extend(LatencyStats::FIELDS.iter().map(|f| format!("{group}.{f}")));
    }
    paths
}

impl PaginationMetrics {
    /// The figure at a threshold path.
    pub fn figure(&self, path: &str) -> Option<f64> {
        if let Some((group, field)) = path.split_once('.') {
            return match group {
                "errors_by_class" => self.errors_by_class.get(field).map(|v| v as f64),
                "offset_at_deepest_ms" => self.offset_at_deepest_ms?.get(field),
                "cursor_at_deepest_ms" => self.cursor_at_deepest_ms?.get(field),
                _ => None,
            };
        }
        match path {
            "speedup_at_deepest" => self.speedup_at_deepest,
            "rows" => self.rows.map(|v| v as f64),
            "page_size" => Some(self.page_size as f64),
            "queries" => Some(self.queries as f64),
            "errors" => Some(self.errors as f64),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Metrics with every figure set, for path tests.
    pub(crate) fn sample() -> PaginationMetrics {
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
        PaginationMetrics {
            backend: "postgres".into(),
            server_version: Some("15.4".into()),
            database: "postgres://postgres@127.0.0.1:5432/test".into(),
            table: "items".into(),
            key: "id".into(),
            rows: Some(200_000),
            seeded: true,
            page_size: 20,
            iterations: 10,
            concurrency: 1,
            agents: 1,
            queries: 40,
            errors: 1,
            errors_by_class: ErrorCounts {
                connect: 0,
                timeout: 1,
                status_4xx: 0,
                status_5xx: 0,
                other: 0,
                response_too_large: 0,
            },
            depths: vec![DepthMetrics {
                page: 1000,
                offset: 19_980,
                offset_ms: Some(latency),
                cursor_ms: Some(latency),
                speedup: Some(30.0),
                offset_queries: 10,
                cursor_queries: 10,
                rows_per_page: 20,
                hdr_offset: String::new(),
                hdr_cursor: String::new(),
            }],
            speedup_at_deepest: Some(30.0),
            offset_at_deepest_ms: Some(latency),
            cursor_at_deepest_ms: Some(latency),
            explain: None,
            offset_statement: String::new(),
            cursor_statement: String::new(),
            not_measured: BTreeMap::new(),
        }
    }
}
