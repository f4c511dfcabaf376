//! The report model: what `report.json` holds (see DESIGN.md; field names are a contract: add, never rename).
//!
//! A scenario's figures are one [`ScenarioMetrics`] variant per kind ([`http`], [`ramp`]); thresholds and
//! `compare` read figures through [`ScenarioMetrics::figure`], renderers match on the variant. Nothing outside
//! this module turns metrics into or out of JSON.

pub mod cache;
mod findings;
pub mod http;
pub mod pagination;
pub mod ramp;
pub mod scrape;
pub mod series;

pub use findings::{Finding, FindingKind, Severity};
pub use http::{HttpMetrics, SendLate};
pub use ramp::{RampMetrics, RampStep, StepLatency, UslFit};

use crate::grade::{Grade, Verdict};
use crate::histogram::{LatencyHistogram, us_to_ms};
use crate::kind::ScenarioKind;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
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
    /// Why the verdict is what it is, one line each (empty for a plain PASS): the findings' messages, then the
    /// grade's reason for a FAIL.
    pub verdict_reasons: Vec<String>,
    /// What the run found wrong with its own measurement, typed (each also in `verdict_reasons`).
    #[serde(default)]
    pub findings: Vec<Finding>,
    pub agents: Vec<AgentReport>,
    pub scenarios: Vec<ScenarioReport>,
    /// The loadgrade that ran it (the coordinator's version).
    #[serde(default)]
    pub tool_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentReport {
    pub name: String,
    /// Requests this agent completed or failed in measured (non-warm-up) intervals.
    pub requests: u64,
    pub errors: u64,
    /// The agent was assigned work and its session ended or it never reported.
    pub lost: bool,
    /// Agent clock minus coordinator clock, milliseconds: the agent's estimate from the midpoint of its last
    /// heartbeat round trip before the report (error at most half of `clock_rtt_ms`); 0 when no round trip was
    /// measured (see `not_measured` of the generator).
    pub clock_offset_ms: f64,
    /// Round trip of the heartbeat the offset comes from, milliseconds; null when none was measured.
    #[serde(default)]
    pub clock_rtt_ms: Option<f64>,
    /// Interval reports received.
    pub intervals: u64,
    /// The agent's sharding weight as it registered (its logical cores by default; 1 to 256): its share of every
    /// part's load is in this proportion. `None` in reports written before it was recorded.
    #[serde(default)]
    pub cores: Option<u32>,
    pub generator: GeneratorReport,
}

/// The agent's view of its own health: whether its figures can be trusted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GeneratorReport {
    /// Mean CPU of the agent's load threads over every interval it reported (warm-up included), percent of one
    /// core (summed over the threads; the session and, in `run`/`demo`, the coordinator and target are not counted).
    pub cpu_percent: Option<f64>,
    /// p99 of event-loop lag (how late a 5 ms timer fired), milliseconds.
    pub lag_ms_p99: Option<f64>,
    /// Open model: p99 of time arrivals waited for a free connection, milliseconds.
    pub connection_wait_ms_p99: Option<f64>,
    /// p99 of connection setup (TCP connect), milliseconds.
    pub connect_ms_p99: Option<f64>,
    /// Open model: arrivals dropped because the backlog was full, warm-up included (as `arrivals`: the scenario's
    /// `dropped` is the measured phase's).
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

/// One scenario's outcome: its kind, thresholds and figures (`metrics` null when it did not run).
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    pub name: String,
    pub kind: ScenarioKind,
    /// Every threshold passed (and the scenario ran).
    pub passed: bool,
    pub thresholds: Vec<ThresholdResult>,
    pub metrics: Option<ScenarioMetrics>,
    /// What the plan asked of it (target without query, model, rate or profile, connections, length), as text
    /// by name, for people and for comparing runs.
    pub setup: BTreeMap<String, String>,
}

/// A scenario's figures: one variant per [`ScenarioKind`]. In JSON, the variant's own object (the kind is beside
/// it in `kind`).
#[derive(Debug, Clone)]
pub enum ScenarioMetrics {
    Http(HttpMetrics),
    Ramp(RampMetrics),
    Cache(cache::CacheMetrics),
    Pagination(pagination::PaginationMetrics),
    Scrape(scrape::ScrapeMetrics),
}

impl ScenarioMetrics {
    pub fn kind(&self) -> ScenarioKind {
        match self {
            ScenarioMetrics::Http(_) => ScenarioKind::Http,
            ScenarioMetrics::Ramp(_) => ScenarioKind::Ramp,
            ScenarioMetrics::Cache(_) => ScenarioKind::Cache,
            ScenarioMetrics::Pagination(_) => ScenarioKind::Pagination,
            ScenarioMetrics::Scrape(_) => ScenarioKind::Scrape,
        }
    }

    /// The figure a threshold path names (`latency_ms.p95`, `max_concurrency`); `None` when it was not measured or
    /// the kind has no such figure.
    pub fn figure(&self, path: &str) -> Option<f64> {
        match self {
            ScenarioMetrics::Http(m) => m.figure(path),
            ScenarioMetrics::Ramp(m) => m.figure(path),
            ScenarioMetrics::Cache(m) => m.figure(path),
            ScenarioMetrics::Pagination(m) => m.figure(path),
            ScenarioMetrics::Scrape(m) => m.figure(path),
        }
        .filter(|v| v.is_finite())
    }

    /// Whether a missing figure at `path` is missing because of what was measured (a threshold on it fails, and
    /// that is all) rather than because the measurement failed (which makes the run INVALID).
    pub fn absent_by_result(&self, path: &str) -> bool {
        match self {
            ScenarioMetrics::Http(_)
            | ScenarioMetrics::Cache(_)
            | ScenarioMetrics::Pagination(_)
            | ScenarioMetrics::Scrape(_) => false,
            ScenarioMetrics::Ramp(m) => m.absent_by_result(path),
        }
    }

    fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        match self {
            ScenarioMetrics::Http(m) => serde_json::to_value(m),
            ScenarioMetrics::Ramp(m) => serde_json::to_value(m),
            ScenarioMetrics::Cache(m) => serde_json::to_value(m),
            ScenarioMetrics::Pagination(m) => serde_json::to_value(m),
            ScenarioMetrics::Scrape(m) => serde_json::to_value(m),
        }
    }

    fn from_json(kind: ScenarioKind, value: serde_json::Value) -> Result<Self, serde_json::Error> {
        Ok(match kind {
            ScenarioKind::Http => ScenarioMetrics::Http(serde_json::from_value(value)?),
            ScenarioKind::Ramp => ScenarioMetrics::Ramp(serde_json::from_value(value)?),
            ScenarioKind::Cache => ScenarioMetrics::Cache(serde_json::from_value(value)?),
            ScenarioKind::Pagination => ScenarioMetrics::Pagination(serde_json::from_value(value)?),
            ScenarioKind::Scrape => ScenarioMetrics::Scrape(serde_json::from_value(value)?),
        })
    }
}

// === impl ScenarioReport (serde) ===

/// How a scenario looks in report.json: the metrics object is read by `kind`.
#[derive(Serialize, Deserialize)]
struct ScenarioJson {
    name: String,
    kind: ScenarioKind,
    passed: bool,
    thresholds: Vec<ThresholdResult>,
    metrics: Option<serde_json::Value>,
    #[serde(default)]
    setup: BTreeMap<String, String>,
}

impl Serialize for ScenarioReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let metrics = self
            .metrics
            .as_ref()
            .map(ScenarioMetrics::to_json)
            .transpose()
            .map_err(serde::ser::Error::custom)?;
        ScenarioJson {
            name: self.name.clone(),
            kind: self.kind,
            passed: self.passed,
            thresholds: self.thresholds.clone(),
            metrics,
            setup: self.setup.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ScenarioReport {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = ScenarioJson::deserialize(deserializer)?;
        let metrics = match raw.metrics {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => Some(ScenarioMetrics::from_json(raw.kind, value).map_err(|e| {
                serde::de::Error::custom(format!(
                    "scenario {:?}: {} metrics: {e}",
                    raw.name, raw.kind
                ))
            })?),
        };
        Ok(ScenarioReport {
            name: raw.name,
            kind: raw.kind,
            passed: raw.passed,
            thresholds: raw.thresholds,
            metrics,
            setup: raw.setup,
        })
    }
}

/// `value`, recording in `not_measured` why `figure` is missing when it is `None`.
pub fn or_not_measured<T>(
    not_measured: &mut BTreeMap<String, String>,
    figure: &str,
    value: Option<T>,
    why: impl FnOnce() -> String,
) -> Option<T> {
    if value.is_none() {
        not_measured.insert(figure.to_owned(), why());
    }
    value
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub expr: String,
    /// The measured figure; null when it was not measured (then the threshold does not pass).
    pub actual: Option<f64>,
    pub passed: bool,
    /// The figure was not measured (the scenario did not run, or its measurement failed): the threshold neither
    /// passed nor failed on the target's account. Absent in reports made before it existed.
    #[serde(default)]
    pub not_measured: bool,
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
    /// The figures' names, as threshold paths name them after the group (`latency_ms.p95`).
    pub const FIELDS: [&'static str; 8] =
        ["min", "mean", "p50", "p90", "p95", "p99", "p999", "max"];

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

    /// One figure by its name in [`Self::FIELDS`].
    pub fn get(&self, field: &str) -> Option<f64> {
        Some(match field {
            "min" => self.min,
            "mean" => self.mean,
            "p50" => self.p50,
            "p90" => self.p90,
            "p95" => self.p95,
            "p99" => self.p99,
            "p999" => self.p999,
            "max" => self.max,
            _ => return None,
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
    /// Responses whose head (status line and headers, or a chunked body's trailers or chunk-size line) was over the
    /// plan's `max_response_header_bytes` or 256 header lines: not read further, the connection closed. Absent in
    /// reports made before it existed (read as 0).
    #[serde(default)]
    pub response_too_large: u64,
}

impl ErrorCounts {
    pub const FIELDS: [&'static str; 6] = [
        "connect",
        "timeout",
        "status_4xx",
        "status_5xx",
        "other",
        "response_too_large",
    ];

    /// Adds every class of `other` (saturating).
    pub fn add(&mut self, other: &ErrorCounts) {
        for (mine, theirs) in [
            (&mut self.connect, other.connect),
            (&mut self.timeout, other.timeout),
            (&mut self.status_4xx, other.status_4xx),
            (&mut self.status_5xx, other.status_5xx),
            (&mut self.other, other.other),
            (&mut self.response_too_large, other.response_too_large),
        ] {
            *mine = mine.saturating_add(theirs);
        }
    }

    pub fn total(&self) -> u64 {
        self.connect
            .saturating_add(self.timeout)
            .saturating_add(self.status_4xx)
            .saturating_add(self.status_5xx)
            .saturating_add(self.other)
            .saturating_add(self.response_too_large)
    }

    /// One class by its name in [`Self::FIELDS`].
    pub fn get(&self, field: &str) -> Option<u64> {
        Some(match field {
            "connect" => self.connect,
            "timeout" => self.timeout,
            "status_4xx" => self.status_4xx,
            "status_5xx" => self.status_5xx,
            "other" => self.other,
            "response_too_large" => self.response_too_large,
            _ => return None,
        })
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
        let paths = ScenarioKind::Http.metric_paths();
        assert!(paths.contains(&"latency_ms.p95".to_owned()));
        assert!(paths.contains(&"success_rate".to_owned()));
        assert!(!paths.contains(&"latency_ms.p96".to_owned()));
    }

    /// Every threshold path of every kind resolves, through the typed value, to the number at that path in the
    /// JSON: the path contract ("a field of that scenario's metrics in report.json") holds by construction.
    #[test]
    fn typed_figures_agree_with_the_json_at_every_path() {
        for metrics in [
            ScenarioMetrics::Http(http::tests::sample()),
            ScenarioMetrics::Ramp(ramp::tests::sample()),
            ScenarioMetrics::Cache(cache::tests::sample()),
            ScenarioMetrics::Pagination(pagination::tests::sample()),
            ScenarioMetrics::Scrape(scrape::tests::sample()),
        ] {
            let json = metrics.to_json().expect("json");
            for path in metrics.kind().metric_paths() {
                let in_json = path
                    .split('.')
                    .try_fold(&json, |v, key| match key.parse::<usize>() {
                        Ok(index) => v.get(index),
                        Err(_) => v.get(key),
                    })
                    .and_then(serde_json::Value::as_f64);
                assert!(
                    in_json.is_some(),
                    "{path} is not a number in the sample's JSON"
                );
                assert_eq!(metrics.figure(&path), in_json, "{path}");
            }
            assert_eq!(metrics.figure("no_such_figure"), None);
        }
    }

    #[test]
    fn a_scenario_round_trips_through_json_by_kind() {
        let report = ScenarioReport {
            name: "cap".into(),
            kind: ScenarioKind::Ramp,
            passed: true,
            thresholds: Vec::new(),
            metrics: Some(ScenarioMetrics::Ramp(ramp::tests::sample())),
            setup: BTreeMap::new(),
        };
        let json = serde_json::to_string(&report).expect("serialize");
        let back: ScenarioReport = serde_json::from_str(&json).expect("deserialize");
        assert!(matches!(back.metrics, Some(ScenarioMetrics::Ramp(_))));
        let not_run = r#"{"name":"a","kind":"http","passed":false,"thresholds":[],"metrics":null}"#;
        let back: ScenarioReport = serde_json::from_str(not_run).expect("not run");
        assert!(back.metrics.is_none());
        let wrong = r#"{"name":"a","kind":"ramp","passed":true,"thresholds":[],"metrics":{"model":"open"}}"#;
        let e =
            serde_json::from_str::<ScenarioReport>(wrong).expect_err("ramp metrics are checked");
        assert!(e.to_string().contains("ramp metrics"), "{e}");
    }
}
