//! Merging the interval reports of an HTTP load (an `http` scenario or one ramp step): an exact HDR merge of every
//! agent's measured intervals, and their counters. Warm-up intervals are stored but never merged here.
//!
//! Rates are over the measured window only: requests completed in it, divided by its length. Intervals after the
//! window (requests in flight at its end completing while the load winds down) are counted and merged into the
//! latency histograms, and reported apart (`completed_after_window`), never stretching the window.

use crate::run::intake::Decoded;
use loadgrade_common::histogram::{
    CodecError, LatencyHistogram, encode, encode_base64, merge, merge_encoded, new_histogram,
    us_to_ms,
};
use loadgrade_common::interval::{Counters, IntervalReport};
use loadgrade_common::plan::{HttpSpec, LoadModel};
use loadgrade_common::report::series::SeriesPoint;
use loadgrade_common::report::{HttpMetrics, LatencyStats, SendLate};
use std::collections::{BTreeMap, HashMap};

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

/// The most points a load's series keeps: past it, points are merged two by two (each twice as wide).
const MAX_POINTS: usize = 3_600;
/// Encoded histograms a point keeps before they are merged into one.
const MAX_HDRS_PER_POINT: usize = 16;
/// Points this many widths older than the newest (or newer) are live: the histograms of their intervals are merged
/// into one decoded histogram as they arrive (intake decoded them already), instead of being kept encoded and
/// decoded again every 16 to compact them, which cost a fifth of the coordinator's CPU at 2,000 agents (issue 14).
const LIVE_POINTS: i64 = 3;

/// The measured intervals by the Unix second they started in (each agent cuts its intervals at the same
/// seconds from the common start), `width` seconds a point.
struct Seconds {
    width: i64,
    points: BTreeMap<i64, Point>,
    /// Agents by name, numbered in order of arrival: points key their milliseconds by number, so a name is held
    /// once per load rather than once per point.
    agents: HashMap<String, u32>,
    /// The newest point's key.
    newest: Option<i64>,
}

#[derive(Default)]
struct Point {
    /// Milliseconds each agent's intervals in it last, by agent number.
    agent_ms: BTreeMap<u32, u64>,
    counters: Counters,
    arrivals: u64,
    /// Corrected histograms as the agents sent them (merged only when the series is read).
    hdrs: Vec<Vec<u8>>,
    /// A live point's corrected histograms, merged as they arrive.
    live: Option<LatencyHistogram>,
    in_window: bool,
}

impl Point {
    /// Its live histogram goes beside the encoded ones: the point is no longer among the newest.
    fn retire(&mut self) {
        if let Some(live) = self.live.take() {
            if !live.is_empty()
                && let Ok(bytes) = encode(&live)
            {
                self.hdrs.push(bytes);
            }
            if self.hdrs.len() > MAX_HDRS_PER_POINT {
                self.compact();
            }
        }
    }

    /// Every histogram of the point, merged.
    fn merged(&self) -> LatencyHistogram {
        let mut merged = self.live.clone().unwrap_or_else(new_histogram);
        for bytes in &self.hdrs {
            let _ = merge_encoded(&mut merged, bytes);
        }
        merged
    }

    /// Its histograms merged into one encoded histogram.
    fn compact(&mut self) {
        if self.hdrs.len() <= 1 {
            return;
        }
        let mut merged = new_histogram();
        for bytes in &self.hdrs {
            let _ = merge_encoded(&mut merged, bytes);
        }
        self.hdrs = encode(&merged).map(|b| vec![b]).unwrap_or_default();
    }

    fn absorb(&mut self, other: Point) {
        self.counters.add(&other.counters);
        for (agent, ms) in other.agent_ms {
            *self.agent_ms.entry(agent).or_default() += ms;
        }
        self.arrivals = self.arrivals.saturating_add(other.arrivals);
        self.hdrs.extend(other.hdrs);
        match (&mut self.live, other.live) {
            (Some(mine), Some(theirs)) => {
                let _ = merge(mine, &theirs);
            }
            (mine @ None, Some(theirs)) => *mine = Some(theirs),
            (_, None) => {}
        }
        self.in_window |= other.in_window;
        self.compact();
    }
}

impl Seconds {
    /// Adds a measured interval; `corrected` is its `hdr_corrected`, decoded.
    fn add(&mut self, report: &IntervalReport, corrected: &LatencyHistogram) {
        let key = report.start_unix_ms.div_euclid(1000).div_euclid(self.width) * self.width;
        if self.newest.is_none_or(|newest| key > newest) {
            self.newest = Some(key);
            let oldest_live = key.saturating_sub(LIVE_POINTS.saturating_mul(self.width));
            for point in self.points.range_mut(..oldest_live).map(|(_, p)| p) {
                point.retire();
            }
        }
        let live = self.newest.is_some_and(|newest| {
            key >= newest.saturating_sub(LIVE_POINTS.saturating_mul(self.width))
        });
        let agent = match self.agents.get(&report.agent) {
            Some(&number) => number,
            None => {
                let number = u32::try_from(self.agents.len()).unwrap_or(u32::MAX);
                self.agents.insert(report.agent.clone(), number);
                number
            }
        };
        let point = self.points.entry(key).or_default();
        *point.agent_ms.entry(agent).or_default() += u64::from(report.duration_ms);
        point.counters.add(&report.counters);
        point.arrivals = point.arrivals.saturating_add(report.health.arrivals);
        point.in_window |= !report.after_window;
        if live {
            // Histograms of one precision, auto-resizing: the merge cannot fail.
            let _ = merge(point.live.get_or_insert_with(new_histogram), corrected);
        } else if !report.hdr_corrected.is_empty() {
            point.hdrs.push(report.hdr_corrected.clone());
            if point.hdrs.len() > MAX_HDRS_PER_POINT {
                point.compact();
            }
        }
        if self.points.len() > MAX_POINTS {
            self.width *= 2;
            let width = self.width;
            self.newest = self.newest.map(|newest| newest.div_euclid(width) * width);
            let old = std::mem::take(&mut self.points);
            for (key, point) in old {
                let wider = key.div_euclid(width) * width;
                match self.points.entry(wider) {
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert(point);
                    }
                    std::collections::btree_map::Entry::Occupied(mut e) => {
                        e.get_mut().absorb(point)
                    }
                }
            }
        }
    }

    /// The last point every agent has reported on (the one before the newest): requests per second and p95.
    fn last_complete(&self) -> Option<(f64, Option<f64>)> {
        let mut newest = self.points.values().rev();
        let point = newest.nth(1).or_else(|| self.points.values().next_back())?;
        let merged = point.merged();
        let ms = point.agent_ms.values().copied().max().unwrap_or(0).max(1);
        Some((
            point.counters.requests as f64 * 1000.0 / ms as f64,
            (!merged.is_empty()).then(|| us_to_ms(merged.value_at_quantile(0.95))),
        ))
    }

    fn series(&self) -> Vec<SeriesPoint> {
        let Some(first) = self.points.keys().next().copied() else {
            return Vec::new();
        };
        self.points
            .iter()
            .map(|(key, point)| {
                let merged = point.merged();
                let at =
                    |q: f64| (!merged.is_empty()).then(|| us_to_ms(merged.value_at_quantile(q)));
                SeriesPoint {
                    t_s: (key - first) as f64,
                    width_s: self.width as f64,
                    duration_s: point.agent_ms.values().copied().max().unwrap_or(0) as f64 / 1000.0,
                    requests: point.counters.requests,
                    ok: point.counters.ok,
                    errors: point.counters.errors,
                    p50_ms: at(0.5),
                    p95_ms: at(0.95),
                    p99_ms: at(0.99),
                    arrivals: point.arrivals,
                    dropped: point.counters.dropped,
                    in_window: point.in_window,
                }
            })
            .collect()
    }
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
            seconds: Seconds {
                width: 1,
                points: BTreeMap::new(),
                agents: HashMap::new(),
                newest: None,
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(agent: &str, second: i64, values: &[u64]) -> (IntervalReport, LatencyHistogram) {
        let mut h = new_histogram();
        for &v in values {
            h.record(v).expect("record");
        }
        let mut report = IntervalReport {
            agent: agent.to_owned(),
            start_unix_ms: 1_000_000 + second * 1000,
            duration_ms: 1000,
            hdr_corrected: encode(&h).expect("encode"),
            ..IntervalReport::default()
        };
        report.counters.requests = values.len() as u64;
        report.counters.ok = values.len() as u64;
        (report, h)
    }

    /// Regression (issue 14): points merge their newest intervals decoded and older ones encoded; either way a
    /// point's histogram is exactly the merge of its intervals, late ones included.
    #[test]
    fn live_and_encoded_points_merge_exactly() {
        let mut seconds = Seconds {
            width: 1,
            points: BTreeMap::new(),
            agents: HashMap::new(),
            newest: None,
        };
        let mut expected: BTreeMap<i64, LatencyHistogram> = BTreeMap::new();
        let mut add = |seconds: &mut Seconds, agent: &str, second: i64, values: &[u64]| {
            let (report, h) = interval(agent, second, values);
            seconds.add(&report, &h);
            merge(expected.entry(second).or_insert_with(new_histogram), &h).expect("merge");
        };
        for second in 0..12 {
            for (i, agent) in ["a", "b", "c"].iter().enumerate() {
                let v = 100 + (second as u64) * 10 + i as u64;
                add(&mut seconds, agent, second, &[v, v * 2, v * 7]);
            }
        }
        // Late intervals of points no longer live, and of a live one.
        add(&mut seconds, "d", 1, &[5_000, 6_000]);
        add(&mut seconds, "d", 10, &[7_000]);
        for (second, want) in &expected {
            let point = &seconds.points[&(1_000 + second)];
            let got = point.merged();
            assert_eq!(got.len(), want.len(), "second {second}");
            for q in [0.0, 0.5, 0.95, 1.0] {
                assert_eq!(
                    got.value_at_quantile(q),
                    want.value_at_quantile(q),
                    "second {second} q {q}"
                );
            }
        }
        assert!(
            seconds.points[&1_001].live.is_none(),
            "old points are encoded"
        );
        assert!(seconds.points[&1_011].live.is_some(), "the newest are live");
        let series = seconds.series();
        assert_eq!(series.len(), 12);
        assert_eq!(series[1].requests, 11);
    }
}
