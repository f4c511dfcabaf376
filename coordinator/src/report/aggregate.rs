//! Merging the interval reports of an HTTP load (an `http` scenario or one ramp step): an exact HDR merge of every
//! agent's measured intervals, and their counters. Warm-up intervals are stored but never merged here.
//!
//! Rates are over the measured window only: requests completed in it, divided by its length. Intervals after the
//! window (requests in flight at its end completing while the load winds down) are counted and merged into the
//! latency histograms, and reported apart (`completed_after_window`), never stretching the window.

mod seconds;

use crate::run::intake::Decoded;
use loadgrade_common::histogram::{
    CodecError, LatencyHistogram, encode_base64, merge, new_histogram, us_to_ms,
};
use loadgrade_common::interval::{Counters, IntervalReport};
use loadgrade_common::plan::{HttpSpec, LoadModel};
use loadgrade_common::report::{HttpMetrics, LatencyStats, SendLate};
use seconds::Seconds;
use std::collections::BTreeMap;

/// One HTTP load's merged figures.
pub struct HttpAggregate {
    spec: HttpSpec,
    corrected: LatencyHistogram,
    raw: LatencyHistogram,
    send_late: LatencyHistogram,
    /// Every measured interval's counters (window and after it).
    counters: Counters,
    /// The window's intervals only.
    in_window: Counters,
    /// Window milliseconds per agent (sum of its in-window intervals' lengths).
    window_ms: BTreeMap<String, u64>,
    /// Requests completed during warm-up (not in any figure, but counted, so the target's count reconciles).
    warmup_requests: u64,
    /// A cache load's hits and misses (measured intervals).
    cache: CacheSums,
    /// A pagination shard's queries by depth.
    pagination: PaginationSums,
    /// A scrape shard's series, samples and Prometheus figures.
    scrape: ScrapeSums,
    /// The load over time.
    seconds: Seconds,
}

/// A scrape part's series and samples (window), and what its Prometheus measured.
#[derive(Default)]
pub struct ScrapeSums {
    /// At the last good scrape.
    pub target_series: Option<u64>,
    pub series: Option<u64>,
    /// Samples served in the window, every good scrape.
    pub samples: u64,
    pub prometheus: Option<loadgrade_common::interval::PrometheusFigures>,
    /// Why the Prometheus side was not measured, as the agent said.
    pub prometheus_not_measured: Option<String>,
    /// The window as the agent measured it, ms (0: not said).
    pub window_ms: u64,
}

impl ScrapeSums {
    /// What any interval (warm-up included) says of the Prometheus side.
    fn note(&mut self, f: &loadgrade_common::interval::ScrapeFigures) {
        if let Some(p) = &f.prometheus {
            self.prometheus = Some(p.clone());
        }
        if !f.prometheus_not_measured.is_empty() {
            self.prometheus_not_measured = Some(f.prometheus_not_measured.clone());
        }
        self.window_ms = self.window_ms.max(f.window_ms);
    }
}

/// A pagination scenario's merged queries by depth, and what the agents learned of the table.
#[derive(Default)]
pub struct PaginationSums {
    /// Per page: OFFSET and keyset histograms, rows a page returned.
    pub depths: BTreeMap<u64, (LatencyHistogram, LatencyHistogram, u64)>,
    /// Most rows any agent reported seeded.
    pub seeded_rows: u64,
    /// The latest facts any agent sent.
    pub table: Option<loadgrade_common::interval::TableFacts>,
}

/// A cache load's merged hits and misses.
pub struct CacheSums {
    pub hits: u64,
    pub misses: u64,
    pub hit: LatencyHistogram,
    pub miss: LatencyHistogram,
    pub lookup: LatencyHistogram,
}

impl HttpAggregate {
    pub fn new(spec: HttpSpec) -> Self {
        HttpAggregate {
            spec,
            corrected: new_histogram(),
            raw: new_histogram(),
            send_late: new_histogram(),
            counters: Counters::default(),
            in_window: Counters::default(),
            window_ms: BTreeMap::new(),
            warmup_requests: 0,
            cache: CacheSums {
                hits: 0,
                misses: 0,
                hit: new_histogram(),
                miss: new_histogram(),
                lookup: new_histogram(),
            },
            pagination: PaginationSums::default(),
            scrape: ScrapeSums::default(),
            seconds: Seconds::new(),
        }
    }

    /// Counts a warm-up interval's requests (its figures are excluded).
    pub fn add_warmup(&mut self, report: &IntervalReport) {
        self.warmup_requests = self
            .warmup_requests
            .saturating_add(report.counters.requests);
        if let Some(f) = &report.scrape {
            self.scrape.note(f);
        }
    }

    /// Merges one measured interval (its histograms decoded by intake).
    pub fn add(&mut self, report: &IntervalReport, decoded: &Decoded) -> Result<(), CodecError> {
        merge(&mut self.corrected, &decoded.corrected)?;
        // A closed model's raw and send-late histograms are empty: merging one still walks all its buckets.
        if !decoded.raw.is_empty() {
            merge(&mut self.raw, &decoded.raw)?;
        }
        if !decoded.send_late.is_empty() {
            merge(&mut self.send_late, &decoded.send_late)?;
        }
        if let Some(c) = &decoded.cache {
            merge(&mut self.cache.hit, &c.hit)?;
            merge(&mut self.cache.miss, &c.miss)?;
            merge(&mut self.cache.lookup, &c.lookup)?;
            self.cache.hits = self.cache.hits.saturating_add(c.hits);
            self.cache.misses = self.cache.misses.saturating_add(c.misses);
        }
        if let Some(p) = &decoded.pagination {
            for (page, offset, cursor, rows) in &p.depths {
                let depth = self
                    .pagination
                    .depths
                    .entry(*page)
                    .or_insert_with(|| (new_histogram(), new_histogram(), 0));
                merge(&mut depth.0, offset)?;
                merge(&mut depth.1, cursor)?;
                depth.2 = depth.2.max(*rows);
            }
            self.pagination.seeded_rows = self.pagination.seeded_rows.max(p.seeded_rows);
            if let Some(t) = &p.table {
                self.pagination.table = Some(t.clone());
            }
        }
        if let Some(f) = &report.scrape {
            self.scrape.note(f);
            if f.series > 0 {
                self.scrape.series = Some(f.series);
                self.scrape.target_series = Some(f.target_series);
            }
            self.scrape.samples = self.scrape.samples.saturating_add(f.samples);
        }
        self.seconds.add(report, &decoded.corrected);
        self.counters.add(&report.counters);
        if !report.after_window {
            self.in_window.add(&report.counters);
            *self.window_ms.entry(report.agent.clone()).or_default() +=
                u64::from(report.duration_ms);
        }
        Ok(())
    }

    /// A cache load's hits and misses.
    pub fn cache(&self) -> &CacheSums {
        &self.cache
    }

    /// A pagination scenario's queries by depth.
    pub fn pagination(&self) -> &PaginationSums {
        &self.pagination
    }

    /// A scrape part's series, samples and Prometheus figures.
    pub fn scrape(&self) -> &ScrapeSums {
        &self.scrape
    }

    /// The measured counters (window and after it).
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// What has been done so far, for a progress line.
    /// The last complete second: completed requests/s and p95 (ms).
    pub fn last_second(&self) -> Option<(f64, Option<f64>)> {
        self.seconds.last_complete()
    }

    pub fn progress(&self) -> String {
        let p = &self.pagination;
        if p.table.is_some() || p.seeded_rows > 0 || !p.depths.is_empty() {
            let depths = p.depths.keys().map(u64::to_string).collect::<Vec<_>>();
            format!(
                "{} rows seeded, {} queries ({} errors){}",
                p.seeded_rows,
                self.requests(),
                self.errors(),
                if depths.is_empty() {
                    String::new()
                } else {
                    format!(", pages {} timed", depths.join(", "))
                }
            )
        } else {
            let last = self
                .seconds
                .last_complete()
                .map_or_else(String::new, |(rate, p95)| {
                    format!(
                        ", last second {rate:.0} req/s, p95 {}",
                        p95.map_or_else(|| "-".to_owned(), |p| format!("{p:.1} ms"))
                    )
                });
            format!(
                "{} requests, {} errors{last}",
                self.requests(),
                self.errors()
            )
        }
    }

    pub fn requests(&self) -> u64 {
        self.counters.requests
    }

    pub fn errors(&self) -> u64 {
        self.counters.errors.total()
    }

    /// The report's `metrics` for this load.
    pub fn metrics(&self) -> HttpMetrics {
        let open = self.spec.model == LoadModel::Open;
        let c = &self.counters;
        let errors = c.errors;
        let attempted = c.requests.saturating_add(c.dropped);
        let duration_s = self.window_ms.values().copied().max().unwrap_or(0) as f64 / 1000.0;
        let per_second = |n: u64| (duration_s > 0.0).then(|| n as f64 / duration_s);
        let b64 = |h: &LatencyHistogram| encode_base64(h).unwrap_or_default();
        let mut not_measured = BTreeMap::new();
        let mut why = |figure: &str, reason: &str| {
            not_measured.insert(figure.to_owned(), reason.to_owned());
        };
        let no_response =
            "no response arrived and no request timed out, so no latency was recorded";
        if self.corrected.is_empty() {
            why("latency_ms", no_response);
        }
        if !open {
            why(
                "latency_raw_ms",
                "closed model: latency_ms is measured from the send",
            );
            why(
                "send_late_ms",
                "closed model: requests are sent when the previous one answers",
            );
            why("hdr_raw", "closed model");
        } else {
            if self.raw.is_empty() {
                why("latency_raw_ms", no_response);
            }
            if self.send_late.is_empty() {
                why("send_late_ms", "no arrival found a connection free");
            }
        }
        if attempted == 0 {
            why("success_rate", "nothing was attempted");
        }
        if duration_s <= 0.0 {
            why(
                "throughput_rps",
                "no interval of the measured window arrived",
            );
            why("success_rps", "no interval of the measured window arrived");
        }
        HttpMetrics {
            model: self.spec.model,
            requests: c.requests,
            errors: errors.total(),
            errors_by_class: errors,
            dropped: c.dropped,
            success_rate: (attempted > 0)
                .then(|| c.requests.saturating_sub(errors.total()) as f64 / attempted as f64),
            throughput_rps: per_second(self.in_window.requests),
            success_rps: per_second(self.in_window.ok),
            completed_after_window: c.requests.saturating_sub(self.in_window.requests),
            resent: c.resent,
            warmup_requests: self.warmup_requests,
            discarded_at_stop: c.discarded_at_stop,
            duration_s,
            bytes_received: c.bytes_received,
            latency_ms: LatencyStats::from_histogram(&self.corrected),
            latency_raw_ms: if open {
                LatencyStats::from_histogram(&self.raw)
            } else {
                None
            },
            send_late_ms: (open && !self.send_late.is_empty()).then(|| SendLate {
                p50: us_to_ms(self.send_late.value_at_quantile(0.5)),
                p99: us_to_ms(self.send_late.value_at_quantile(0.99)),
            }),
            hdr: b64(&self.corrected),
            hdr_raw: open.then(|| b64(&self.raw)),
            series: self.seconds.series(),
            not_measured,
        }
    }

    /// The merged corrected histogram (tests compare its count with the agents' counters).
    pub fn histogram(&self) -> &LatencyHistogram {
        &self.corrected
    }
}
