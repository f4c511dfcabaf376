//! Figures of an `http` scenario.

use super::{ErrorCounts, LatencyStats};
use crate::plan::LoadModel;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// Requests completed in the measured window (answered or failed) per second of the window, all agents.
    /// Requests still in flight at the window's end complete afterwards: counted in `requests` and
    /// `completed_after_window`, not here.
    pub throughput_rps: Option<f64>,
    /// Goodput: successful responses (1xx-3xx) completed in the window per second of the window.
    #[serde(default)]
    pub success_rps: Option<f64>,
    /// Requests that completed after the measured window (while the load wound down).
    #[serde(default)]
    pub completed_after_window: u64,
    /// Requests sent a second time after a kept-alive connection failed before any response byte (idempotent
    /// requests only): requests + resent is what the target can have received.
    #[serde(default)]
    pub resent: u64,
    /// Requests completed during warm-up: excluded from every figure, counted so the target's own count
    /// reconciles (requests + warmup_requests + resent is what it can have received).
    #[serde(default)]
    pub warmup_requests: u64,
    /// Open model: arrivals still queued when the load was stopped (cancel, overrun), never sent.
    #[serde(default)]
    pub discarded_at_stop: u64,
    /// Length of the measured window, seconds (longest agent).
    pub duration_s: f64,
    pub bytes_received: u64,
    /// Latency of answered requests; open model: from the intended send time (corrected for coordinated omission).
    pub latency_ms: Option<LatencyStats>,
    /// Open model only: latency from the actual send time (what a closed-loop tool would report).
    pub latency_raw_ms: Option<LatencyStats>,
    /// Open model only: how late arrivals that found a connection free were sent against their intended instant
    /// (the generator's own timing, apart from waiting for a connection).
    #[serde(default)]
    pub send_late_ms: Option<SendLate>,
    /// Base64 of the merged `latency_ms` histogram, HDR V2 + deflate, microseconds.
    pub hdr: String,
    /// Open model only: base64 of the merged raw histogram.
    pub hdr_raw: Option<String>,
    /// The load second by second (wider points on a long run), warm-up excluded; the points' requests add up to
    /// `requests`.
    #[serde(default)]
    pub series: Vec<super::series::SeriesPoint>,
    /// Figures above that are null, with the reason.
    #[serde(default)]
    pub not_measured: BTreeMap<String, String>,
}

/// Send lateness of the open model, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SendLate {
    pub p50: f64,
    pub p99: f64,
}

/// Plain figures (not grouped) a threshold may name.
const FIGURES: [&str; 12] = [
    "requests",
    "errors",
    "dropped",
    "success_rate",
    "throughput_rps",
    "success_rps",
    "completed_after_window",
    "resent",
    "warmup_requests",
    "discarded_at_stop",
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
    paths.extend(["send_late_ms.p50".to_owned(), "send_late_ms.p99".to_owned()]);
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
                "send_late_ms" => match field {
                    "p50" => Some(self.send_late_ms?.p50),
                    "p99" => Some(self.send_late_ms?.p99),
                    _ => None,
                },
                _ => None,
            };
        }
        match path {
            "requests" => Some(self.requests as f64),
            "errors" => Some(self.errors as f64),
            "dropped" => Some(self.dropped as f64),
            "success_rate" => self.success_rate,
            "throughput_rps" => self.throughput_rps,
            "success_rps" => self.success_rps,
            "completed_after_window" => Some(self.completed_after_window as f64),
            "resent" => Some(self.resent as f64),
            "warmup_requests" => Some(self.warmup_requests as f64),
            "discarded_at_stop" => Some(self.discarded_at_stop as f64),
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
                response_too_large: 6,
            },
            dropped: 7,
            success_rate: Some(0.978),
            throughput_rps: Some(250.5),
            success_rps: Some(245.0),
            completed_after_window: 3,
            resent: 2,
            warmup_requests: 9,
            discarded_at_stop: 1,
            duration_s: 4.0,
            bytes_received: 123_456,
            latency_ms: Some(stats(10.0)),
            latency_raw_ms: Some(stats(20.0)),
            send_late_ms: Some(SendLate {
                p50: 0.05,
                p99: 0.2,
            }),
            hdr: String::new(),
            hdr_raw: Some(String::new()),
            series: Vec::new(),
            not_measured: BTreeMap::new(),
        }
    }
}
