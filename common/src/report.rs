//! The report model: what `report.json` holds (see DESIGN.md; field names are a contract: add, never rename).

use crate::grade::{Grade, Verdict};
use crate::histogram::{LatencyHistogram, us_to_ms};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the report.json layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub run_id: String,
    pub plan_name: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    pub verdict: Verdict,
    pub grade: Grade,
    pub grade_reason: String,
    /// Why the verdict is what it is, one line each (empty for a plain PASS).
    pub verdict_reasons: Vec<String>,
    pub agents: Vec<AgentReport>,
    pub scenarios: Vec<ScenarioReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentReport {
    pub name: String,
    /// Requests this agent completed or failed in measured (non-warm-up) intervals.
    pub requests: u64,
    pub errors: u64,
    /// The agent was assigned work and its session ended or it never reported.
    pub lost: bool,
    /// Agent clock minus coordinator clock at welcome, milliseconds (one-way delay included).
    pub clock_offset_ms: f64,
    /// Interval reports received.
    pub intervals: u64,
    pub generator: GeneratorReport,
}

/// The agent's view of its own health: whether its figures can be trusted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GeneratorReport {
    /// Mean process CPU over measured intervals, percent of one core.
    pub cpu_percent: Option<f64>,
    /// p99 of event-loop lag (how late a 5 ms timer fired), milliseconds.
    pub lag_ms_p99: Option<f64>,
    /// Open model: p99 of time arrivals waited for a free connection, milliseconds.
    pub connection_wait_ms_p99: Option<f64>,
    /// p99 of connection setup (TCP connect), milliseconds.
    pub connect_ms_p99: Option<f64>,
    /// Open model: arrivals dropped because the backlog was full (measured phase).
    pub dropped: u64,
    /// Open model: arrivals that fell due (warm-up included).
    pub arrivals: u64,
    /// Deepest open-model backlog seen.
    pub backlog_max: u64,
    /// Connects that failed for want of file descriptors (EMFILE/ENFILE).
    pub emfile: u64,
    /// Connects that failed for want of local ports (EADDRNOTAVAIL).
    pub eaddrnotavail: u64,
    /// Load threads the agent ran on.
    pub threads: u32,
    /// Figures above that are null, with the reason.
    pub not_measured: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioReport {
    pub name: String,
    pub kind: String,
    /// Every threshold passed.
    pub passed: bool,
    pub thresholds: Vec<ThresholdResult>,
    /// Figures by kind (for `http` see [`HttpMetrics`]).
    pub metrics: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub expr: String,
    /// The measured figure; null when it was not measured (then the threshold fails).
    pub actual: Option<f64>,
    pub passed: bool,
}

/// Latency summary in milliseconds, from one (merged) histogram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl LatencyStats {
    /// Summary of a histogram in microseconds; `None` when it holds no values.
    pub fn from_histogram(h: &LatencyHistogram) -> Option<LatencyStats> {
        if h.is_empty() {
            return None;
        }
        let q = |q: f64| us_to_ms(h.value_at_quantile(q));
        Some(LatencyStats {
            min: us_to_ms(h.min()),
            mean: h.mean() / 1000.0,
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
            max: us_to_ms(h.max()),
        })
    }
}

/// Request failures by class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    pub connect: u64,
    pub timeout: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    pub other: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.status_4xx + self.status_5xx + self.other
    }
}

/// Metrics of an `http` scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpMetrics {
    /// "open" or "closed".
    pub model: String,
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
    pub throughput_rps: Option<f64>,
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
    /// Goodness of fit over the steps' throughput.
    pub r_squared: f64,
}

/// Metrics of a `ramp` scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RampMetrics {
    pub steps: Vec<RampStep>,
    pub requests: u64,
    pub errors: u64,
    /// First step past the cliff; null when no step was.
    pub cliff_concurrency: Option<u64>,
    /// Which rule the cliff step broke.
    pub cliff_reason: Option<String>,
    /// Last step before the cliff (the last step when there is none); null when the first step is past it.
    pub max_concurrency: Option<u64>,
    /// Lowest concurrency after which no step raised throughput by more than 5 %.
    pub saturation_concurrency: Option<u64>,
    pub peak_throughput_rps: Option<f64>,
    /// autoscale_at x max_concurrency.
    pub autoscale_trigger: Option<f64>,
    /// Target memory interpolated at 90 % of max_concurrency, from the steps' largest samples.
    pub memory_at_90pct_bytes: Option<u64>,
    pub memory_budget_bytes: Option<u64>,
    /// 1 - memory_at_90pct_bytes / memory_budget_bytes.
    pub memory_headroom: Option<f64>,
    pub usl: Option<UslFit>,
    /// Figures above that are null, with the reason.
    pub not_measured: BTreeMap<String, String>,
}

/// Metric paths a threshold may name for each kind. Anything else is a plan error.
pub fn metric_paths(kind: &str) -> Vec<String> {
    const LATENCY: [&str; 8] = ["min", "mean", "p50", "p90", "p95", "p99", "p999", "max"];
    match kind {
        "http" => {
            let mut paths: Vec<String> = [
                "requests",
                "errors",
                "dropped",
                "success_rate",
                "throughput_rps",
                "duration_s",
                "bytes_received",
                "errors_by_class.connect",
                "errors_by_class.timeout",
                "errors_by_class.status_4xx",
                "errors_by_class.status_5xx",
                "errors_by_class.other",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            for group in ["latency_ms", "latency_raw_ms"] {
                paths.extend(LATENCY.iter().map(|s| format!("{group}.{s}")));
            }
            paths
        }
        "ramp" => [
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
            "usl.sigma",
            "usl.kappa",
            "usl.lambda",
            "usl.peak_concurrency",
            "usl.r_squared",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::new_histogram;

    #[test]
    fn latency_stats_come_from_the_histogram() {
        let mut h = new_histogram();
        for us in 1..=1000u64 {
            h.record(us * 1000).expect("record");
        }
        let s = LatencyStats::from_histogram(&h).expect("non-empty");
        assert!((s.p50 - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99 - 990.0).abs() < 1.0, "{s:?}");
        assert!(LatencyStats::from_histogram(&new_histogram()).is_none());
    }

    #[test]
    fn http_paths_include_percentiles() {
        let paths = metric_paths("http");
        assert!(paths.contains(&"latency_ms.p95".to_owned()));
        assert!(paths.contains(&"success_rate".to_owned()));
        assert!(!paths.contains(&"latency_ms.p96".to_owned()));
    }
}
