//! A load over time: one point per second (or per few seconds on a long run) of what every agent measured in it,
//! its percentiles from that second's histograms merged exactly (never averaged).

use super::ErrorCounts;
use serde::{Deserialize, Serialize};

/// One second (or `width_s` seconds) of a load, all agents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Start, seconds from the first point.
    pub t_s: f64,
    pub width_s: f64,
    /// Requests completed or failed in it.
    pub requests: u64,
    /// Responses 1xx–3xx.
    pub ok: u64,
    pub errors: ErrorCounts,
    /// From the point's merged corrected histogram; null when nothing was timed in it.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Open model: arrivals due in it (sent, queued or dropped), and those dropped.
    pub arrivals: u64,
    pub dropped: u64,
    /// Inside the measured window (false: requests completing after it).
    pub in_window: bool,
}

impl SeriesPoint {
    /// Requests per second in the point.
    pub fn requests_per_s(&self) -> f64 {
        self.requests as f64 / self.width_s.max(f64::MIN_POSITIVE)
    }
}
