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
    /// How much of it was measured: the longest any agent's intervals in it last (a step or a window that ends
    /// inside a second measures part of it). Rates are per this, not per `width_s`.
    #[serde(default)]
    pub duration_s: f64,
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
    /// `n` a second of the point's measured time (0 when none was measured).
    pub fn per_s(&self, n: u64) -> f64 {
        let seconds = if self.duration_s > 0.0 {
            self.duration_s
        } else {
            self.width_s
        };
        if seconds > 0.0 {
            n as f64 / seconds
        } else {
            0.0
        }
    }
}
