//! Figures of an `http` scenario.

use super::{ErrorCounts, LatencyStats};
use crate::plan::LoadModel;
use serde::{Deserialize, Serialize};

/// Metrics of an `http` scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpMetrics {
    /// "open" or "closed".
    pub model: LoadModel,
    /// Requests completed or failed in the measured phase (dropped arrivals not included).
    pub requests: u64,
    pub errors: u64,
    pub errors_by_class: ErrorCounts,
    /// Open model: arrivals dropped because every connection was busy and the backlog was full.
    pub dropped: u64,
    /// (requests - errors) / (requests + dropped); null when nothing was attempted.
    pub success_rate: Option<f64>,
    /// Requests per second over the measured phase, all agents.
    pub throughput_rps: Option<f64>,
    /// Length of the measured phase, seconds (longest agent).
    pub duration_s: f64,
    pub bytes_received: u64,
    /// Latency of answered requests; open model: from the intended send time (corrected for coordinated omission).
    pub latency_ms: Option<LatencyStats>,
    /// Open model only: latency from the actual send time (what a closed-loop tool would report).
    pub latency_raw_ms: Option<LatencyStats>,
    /// Base64 of the merged `latency_ms` histogram, HDR V2 + deflate, microseconds.
    pub hdr: String,
    /// Open model only: base64 of the merged raw histogram.
    pub hdr_raw: Option<String>,
}

/// Plain figures (not grouped) a threshold may name.
const FIGURES: [&str; 7] = [
    "requests",
    "errors",
    "dropped",
    "success_rate",
    "throughput_rps",
    "duration_s",
    "bytes_received",
];

/// Every metric path of the kind.
pub fn metric_paths() -> Vec<String> {
    let mut paths: Vec<String> = FIGURES.iter().map(|s| (*s).to_owned()).collect();
    paths.extend(
        ErrorCounts::FIELDS
            .iter()
            .map(|f| format!("errors_by_class.{f}")),
    );
    for group in ["latency_ms", "latency_raw_ms"] {
        paths.extend(LatencyStats::FIELDS.iter().map(|f| format!("{group}.{f}")));
    }
    paths
}

impl HttpMetrics {
    /// The figure at a threshold path.
    pub fn figure(&self, path: &str) -> Option<f64> {
        if let Some((group, field)) = path.split_once('.') {
            return match group {
                "errors_by_class" => self.errors_by_class.get(field).map(|v| v as f64),
                "latency_ms" => self.latency_ms?.get(field),
                "latency_raw_ms" => self.latency_raw_ms?.get(field),
                _ => None,
            };
        }
        match path {
            "requests" => Some(self.requests as f64),
            "errors" => Some(self.errors as f64),
            "dropped" => Some(self.dropped as f64),
            "success_rate" => self.success_rate,
            "throughput_rps" => self.throughput_rps,
            "duration_s" => Some(self.duration_s),
            "bytes_received" => Some(self.bytes_received as f64),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Metrics with every figure measured and each distinct.
    pub(crate) fn sample() -> HttpMetrics {
        let stats = |base: f64| LatencyStats {
            min: base,
            mean: base + 1.0,
            p50: base + 2.0,
            p90: base + 3.0,
            p95: base + 4.0,
            p99: base + 5.0,
            p999: base + 6.0,
            max: base + 7.0,
        };
        HttpMetrics {
            model: LoadModel::Open,
            requests: 1000,
            errors: 15,
            errors_by_class: ErrorCounts {
                connect: 1,
                timeout: 2,
                status_4xx: 3,
                status_5xx: 4,
                other: 5,
            },
            dropped: 7,
            success_rate: Some(0.978),
            throughput_rps: Some(250.5),
            duration_s: 4.0,
            bytes_received: 123_456,
            latency_ms: Some(stats(10.0)),
            latency_raw_ms: Some(stats(20.0)),
            hdr: String::new(),
            hdr_raw: Some(String::new()),
        }
    }
}
