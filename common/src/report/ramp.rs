//! Figures of a `ramp` scenario: the steps and the capacity analysis over them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Latency percentiles of one ramp step, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepLatency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

/// One concurrency step of a ramp.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RampStep {
    pub concurrency: u64,
    pub requests: u64,
    pub errors: u64,
    /// Requests completed in the step's measured window (after its settle time) per second of it.
    pub throughput_rps: Option<f64>,
    /// Goodput: successful responses completed in the window per second of it.
    #[serde(default)]
    pub success_rps: Option<f64>,
    /// Requests in flight at the window's end that completed afterwards (counted, not in the rates).
    #[serde(default)]
    pub completed_after_window: u64,
    /// Requests completed while the step settled (excluded from its figures).
    #[serde(default)]
    pub settle_requests: u64,
    pub latency_ms: Option<StepLatency>,
    pub error_rate: Option<f64>,
    /// Largest target memory sampled during the step (bytes); null when not measured.
    pub target_memory_bytes: Option<u64>,
    pub target_memory_mean_bytes: Option<u64>,
    /// Target CPU over the step, percent of one core; null when not measured.
    pub target_cpu_percent: Option<f64>,
    /// Probe samples taken during the step.
    pub probe_samples: u64,
    /// This step broke a cliff rule.
    pub past_cliff: bool,
    /// The step second by second (settle excluded), as an http load's `series`.
    #[serde(default)]
    pub series: Vec<super::series::SeriesPoint>,
}

/// A Universal Scalability Law fit X(N) = lambda N / (1 + sigma (N - 1) + kappa N (N - 1)) over the steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UslFit {
    pub sigma: f64,
    pub kappa: f64,
    /// Throughput of one connection, requests/s.
    pub lambda: f64,
    /// sqrt((1 - sigma) / kappa); null when kappa is 0 (no retrograde term).
    pub peak_concurrency: Option<f64>,
    /// Goodness of fit over the steps' goodput; null when undefined (every step's goodput equal, and the fit
    /// still off).
    pub r_squared: Option<f64>,
}

/// Metrics of a `ramp` scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RampMetrics {
    pub steps: Vec<RampStep>,
    pub requests: u64,
    pub errors: u64,
    /// Each step's settle time, excluded from its figures (seconds).
    #[serde(default)]
    pub settle_s: f64,
    /// A step broke a cliff rule.
    #[serde(default)]
    pub cliff_found: bool,
    /// First step past the cliff; null when no step was.
    pub cliff_concurrency: Option<u64>,
    /// Which rule the cliff step broke, or why there is no cliff.
    pub cliff_reason: Option<String>,
    /// Last step before the cliff (the last step when there is none); 0 when the first step is already past it.
    pub max_concurrency: Option<u64>,
    /// Lowest concurrency before the cliff after which no step raised goodput by more than 5 %.
    pub saturation_concurrency: Option<u64>,
    /// Best goodput (successful responses/s) of the steps before the cliff.
    pub peak_throughput_rps: Option<f64>,
    /// autoscale_at x max_concurrency.
    pub autoscale_trigger: Option<f64>,
    /// Target memory interpolated at 90 % of max_concurrency, from the steps' largest samples.
    pub memory_at_90pct_bytes: Option<u64>,
    pub memory_budget_bytes: Option<u64>,
    /// 1 - memory_at_90pct_bytes / memory_budget_bytes.
    pub memory_headroom: Option<f64>,
    pub usl: Option<UslFit>,
    /// Figures above that are null because the measurement failed (a probe, no step measured), with the reason:
    /// a threshold on one makes the run INVALID.
    pub not_measured: BTreeMap<String, String>,
    /// Figures above that are null because of what was measured (no cliff up to `stop`, goodput still growing),
    /// with the reason: a threshold on one fails (FAIL), the measurement is sound.
    #[serde(default)]
    pub absent: BTreeMap<String, String>,
}

/// Plain figures a threshold may name.
const FIGURES: [&str; 10] = [
    "requests",
    "errors",
    "cliff_concurrency",
    "max_concurrency",
    "saturation_concurrency",
    "peak_throughput_rps",
    "autoscale_trigger",
    "memory_at_90pct_bytes",
    "memory_budget_bytes",
    "memory_headroom",
];

/// Figures of the USL fit, under `usl.`.
const USL: [&str; 5] = ["sigma", "kappa", "lambda", "peak_concurrency", "r_squared"];

/// Every metric path of the kind.
pub fn metric_paths() -> Vec<String> {
    FIGURES
        .iter()
        .map(|s| (*s).to_owned())
        .chain(USL.iter().map(|f| format!("usl.{f}")))
        .collect()
}

impl RampMetrics {
    /// Whether the figure at `path` is missing because of what was measured rather than a failed measurement.
    pub fn absent_by_result(&self, path: &str) -> bool {
        let figure = path.split('.').next().unwrap_or(path);
        self.absent.contains_key(figure)
    }

    /// The figure at a threshold path.
    pub fn figure(&self, path: &str) -> Option<f64> {
        if let Some(field) = path.strip_prefix("usl.") {
            let usl = self.usl?;
            return match field {
                "sigma" => Some(usl.sigma),
                "kappa" => Some(usl.kappa),
                "lambda" => Some(usl.lambda),
                "peak_concurrency" => usl.peak_concurrency,
                "r_squared" => usl.r_squared,
                _ => None,
            };
        }
        let count = |v: Option<u64>| v.map(|v| v as f64);
        match path {
            "requests" => Some(self.requests as f64),
            "errors" => Some(self.errors as f64),
            "cliff_concurrency" => count(self.cliff_concurrency),
            "max_concurrency" => count(self.max_concurrency),
            "saturation_concurrency" => count(self.saturation_concurrency),
            "peak_throughput_rps" => self.peak_throughput_rps,
            "autoscale_trigger" => self.autoscale_trigger,
            "memory_at_90pct_bytes" => count(self.memory_at_90pct_bytes),
            "memory_budget_bytes" => count(self.memory_budget_bytes),
            "memory_headroom" => self.memory_headroom,
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Metrics with every figure measured and each distinct.
    pub(crate) fn sample() -> RampMetrics {
        RampMetrics {
            steps: Vec::new(),
            requests: 5000,
            errors: 12,
            settle_s: 1.0,
            cliff_found: true,
            cliff_concurrency: Some(24),
            cliff_reason: Some("p95".into()),
            max_concurrency: Some(20),
            saturation_concurrency: Some(16),
            peak_throughput_rps: Some(812.5),
            autoscale_trigger: Some(15.0),
            memory_at_90pct_bytes: Some(3_000_000),
            memory_budget_bytes: Some(4_000_000),
            memory_headroom: Some(0.25),
            usl: Some(UslFit {
                sigma: 0.01,
                kappa: 0.001,
                lambda: 101.0,
                peak_concurrency: Some(31.0),
                r_squared: Some(0.98),
            }),
            not_measured: BTreeMap::new(),
            absent: BTreeMap::new(),
        }
    }
}
