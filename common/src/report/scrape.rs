//! Figures of a `scrape` scenario: per scrape interval what the target did (scrape latency from merged
//! histograms, bytes, series and samples, its memory and CPU when probed) and what a real Prometheus did (head
//! series, samples appended per second, memory, CPU, read from its own /metrics), then the savings between the
//! first and the last interval (measured) and projections from the measured rates (marked as such, with their
//! formula).

use super::LatencyStats;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Metrics of a `scrape` scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScrapeMetrics {
    /// The metrics URL, without its query.
    pub target: String,
    /// How the intervals ran: `sequential` (one after another, a fresh Prometheus each).
    pub mode: String,
    /// Copies of the target's series served to Prometheus (1: the target as it is).
    pub replicas: u64,
    /// The figures are for `replicas` copies of the target's series, not for the target alone.
    pub scaled: bool,
    /// The Prometheus that ran (its `--version` first line); `None` when none ran.
    pub prometheus: Option<String>,
    /// One entry per interval, in the plan's order.
    pub intervals: Vec<IntervalMetrics>,
    /// From the first interval to the last, per figure measured at both.
    pub savings: BTreeMap<String, Saving>,
    /// Figures projected from the measured rates, never measured themselves.
    pub projections: Vec<Projection>,
    /// Figures of the scenario that are null, with the reason.
    #[serde(default)]
    pub not_measured: BTreeMap<String, String>,
}

/// One scrape interval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntervalMetrics {
    pub interval_s: f64,
    /// The measured window, seconds.
    pub window_s: f64,
    /// Scrapes in the window, and those that failed.
    pub scrapes: u64,
    pub errors: u64,
    /// Series served per scrape (the target's times `replicas`), at the last good scrape.
    pub series: Option<u64>,
    /// Series the target itself exposes.
    pub target_series: Option<u64>,
    /// Samples served per second of the window (every good scrape's samples / window).
    pub samples_per_s: Option<f64>,
    /// Scrape of the target, request to last byte.
    pub scrape_ms: Option<LatencyStats>,
    /// Mean response bytes of a scrape of the target.
    pub scrape_bytes: Option<u64>,
    /// Target's CPU while scraped, percent of one core (with a probe).
    pub target_cpu_percent: Option<f64>,
    /// Target's largest memory reading while scraped (with a probe).
    pub target_memory_bytes: Option<u64>,
    /// `prometheus_tsdb_head_series` at the end of the window.
    pub prometheus_head_series: Option<u64>,
    /// `prometheus_tsdb_head_samples_appended_total`, its rate over the window.
    pub prometheus_samples_per_s: Option<f64>,
    /// `process_resident_memory_bytes` at the end of the window.
    pub prometheus_rss_bytes: Option<u64>,
    /// `process_cpu_seconds_total` over the window.
    pub prometheus_cpu_seconds: Option<f64>,
    /// The same, percent of one core.
    pub prometheus_cpu_percent: Option<f64>,
    /// `go_memstats_heap_inuse_bytes` at the end of the window.
    pub prometheus_heap_inuse_bytes: Option<u64>,
    /// Base64 of the merged scrape-latency histogram, HDR V2 + deflate, microseconds.
    pub hdr: String,
    /// Figures of this interval that are null, with the reason.
    #[serde(default)]
    pub not_measured: BTreeMap<String, String>,
}

/// A figure at the first and at the last interval, and the share saved going from one to the other.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Saving {
    pub from: f64,
    pub to: f64,
    /// (from − to) / from: 0.5 is half saved, negative is a cost.
    pub saved: f64,
    /// `measured`: both figures were measured in this run.
    pub basis: Basis,
}

/// Whether a figure was measured or projected from measured ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    Measured,
    Projected,
}

/// A figure projected from a measured rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Projection {
    pub interval_s: f64,
    /// What is projected, e.g. `samples_per_day`.
    pub figure: String,
    pub value: f64,
    /// How, in words and numbers, from which measured figure.
    pub formula: String,
    pub basis: Basis,
}

/// The per-interval figures a threshold may name (`intervals.N.FIGURE`), and those `savings` holds.
pub const INTERVAL_FIGURES: [&str; 13] = [
    "scrapes",
    "errors",
    "series",
    "target_series",
    "samples_per_s",
    "scrape_bytes",
    "target_cpu_percent",
    "target_memory_bytes",
    "prometheus_head_series",
    "prometheus_samples_per_s",
    "prometheus_rss_bytes",
    "prometheus_cpu_percent",
    "prometheus_heap_inuse_bytes",
];

/// Figures compared in `savings`.
pub const SAVING_FIGURES: [&str; 9] = [
    "samples_per_s",
    "scrape_bytes_per_s",
    "target_cpu_percent",
    "target_memory_bytes",
    "prometheus_head_series",
    "prometheus_samples_per_s",
    "prometheus_rss_bytes",
    "prometheus_cpu_percent",
    "prometheus_heap_inuse_bytes",
];

pub fn metric_paths() -> Vec<String> {
    let mut paths = Vec::new();
    for i in 0..crate::plan::scrape::MAX_INTERVALS {
        paths.extend(
            INTERVAL_FIGURES
                .iter()
                .map(|f| format!("intervals.{i}.{f}")),
        );
        paths.extend(
            LatencyStats::FIELDS
                .iter()
                .map(|f| format!("intervals.{i}.scrape_ms.{f}")),
        );
    }
    paths.extend(SAVING_FIGURES.iter().map(|f| format!("savings.{f}.saved")));
    paths
}

impl IntervalMetrics {
    /// A plain figure by name.
    pub fn figure(&self, name: &str) -> Option<f64> {
        let u = |v: Option<u64>| v.map(|v| v as f64);
        match name {
            "scrapes" => Some(self.scrapes as f64),
            "errors" => Some(self.errors as f64),
            "series" => u(self.series),
            "target_series" => u(self.target_series),
            "samples_per_s" => self.samples_per_s,
            "scrape_bytes" => u(self.scrape_bytes),
            "scrape_bytes_per_s" => {
                u(self.scrape_bytes).map(|bytes| bytes / self.interval_s.max(f64::MIN_POSITIVE))
            }
            "target_cpu_percent" => self.target_cpu_percent,
            "target_memory_bytes" => u(self.target_memory_bytes),
            "prometheus_head_series" => u(self.prometheus_head_series),
            "prometheus_samples_per_s" => self.prometheus_samples_per_s,
            "prometheus_rss_bytes" => u(self.prometheus_rss_bytes),
            "prometheus_cpu_percent" => self.prometheus_cpu_percent,
            "prometheus_heap_inuse_bytes" => u(self.prometheus_heap_inuse_bytes),
            _ => None,
        }
    }
}

impl ScrapeMetrics {
    /// The figure at a threshold path.
    pub fn figure(&self, path: &str) -> Option<f64> {
        let mut parts = path.split('.');
        match (parts.next()?, parts.next()?, parts.next(), parts.next()) {
            ("intervals", index, Some("scrape_ms"), Some(stat)) => self
                .intervals
                .get(index.parse::<usize>().ok()?)?
                .scrape_ms?
                .get(stat),
            ("intervals", index, Some(name), None) => self
                .intervals
                .get(index.parse::<usize>().ok()?)?
                .figure(name),
            ("savings", name, Some("saved"), None) => self.savings.get(name).map(|s| s.saved),
            _ => None,
        }
    }
}

/// The savings from `first` to `last`: each figure measured at both, and not zero at the first.
pub fn savings(first: &IntervalMetrics, last: &IntervalMetrics) -> BTreeMap<String, Saving> {
    SAVING_FIGURES
        .iter()
        .filter_map(|&name| {
            let (from, to) = (first.figure(name)?, last.figure(name)?);
            (from != 0.0 && from.is_finite() && to.is_finite()).then(|| {
                (
                    name.to_owned(),
                    Saving {
                        from,
                        to,
                        saved: (from - to) / from,
                        basis: Basis::Measured,
                    },
                )
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Metrics with every figure set, for path tests.
    pub(crate) fn sample() -> ScrapeMetrics {
        let latency = LatencyStats {
            min: 0.5,
            mean: 1.0,
            p50: 0.9,
            p90: 1.4,
            p95: 1.6,
            p99: 2.0,
            p999: 2.5,
            max: 3.0,
        };
        let interval = |interval_s: f64, samples: f64, rss: u64| IntervalMetrics {
            interval_s,
            window_s: 60.0,
            scrapes: 60,
            errors: 1,
            series: Some(1_000),
            target_series: Some(1_000),
            samples_per_s: Some(samples),
            scrape_ms: Some(latency),
            scrape_bytes: Some(120_000),
            target_cpu_percent: Some(3.0),
            target_memory_bytes: Some(50 << 20),
            prometheus_head_series: Some(1_005),
            prometheus_samples_per_s: Some(samples + 5.0),
            prometheus_rss_bytes: Some(rss),
            prometheus_cpu_seconds: Some(0.6),
            prometheus_cpu_percent: Some(1.0),
            prometheus_heap_inuse_bytes: Some(20 << 20),
            hdr: String::new(),
            not_measured: BTreeMap::new(),
        };
        let intervals: Vec<IntervalMetrics> = (0..crate::plan::scrape::MAX_INTERVALS)
            .map(|i| interval(1.0 + i as f64, 1000.0 / (1.0 + i as f64), 80 << 20))
            .collect();
        ScrapeMetrics {
            target: "http://127.0.0.1:8080/metrics".into(),
            mode: "sequential".into(),
            replicas: 1,
            scaled: false,
            prometheus: Some("prometheus, version 2.42.0".into()),
            savings: savings(&intervals[0], &intervals[intervals.len() - 1]),
            intervals,
            projections: Vec::new(),
            not_measured: BTreeMap::new(),
        }
    }

    #[test]
    fn savings_compare_first_and_last() {
        let m = sample();
        let s = m.savings["samples_per_s"];
        assert!((s.saved - (1.0 - 1.0 / 8.0)).abs() < 1e-9, "{s:?}");
        assert_eq!(m.savings["prometheus_rss_bytes"].saved, 0.0);
        assert_eq!(m.figure("savings.samples_per_s.saved"), Some(s.saved));
        assert_eq!(m.figure("intervals.8.series"), None);
        assert_eq!(m.figure("intervals.1.scrape_ms.p95"), Some(1.6));
    }
}
