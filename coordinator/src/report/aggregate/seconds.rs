//! An HTTP load's series over time: its measured intervals by the second they started in, each point's counters
//! and histograms (the newest merged decoded as they arrive, older ones kept encoded and merged when read), points
//! widened two by two past [`MAX_POINTS`].

use loadgrade_common::histogram::{
    LatencyHistogram, encode, merge, merge_encoded, new_histogram, us_to_ms,
};
use loadgrade_common::interval::{Counters, IntervalReport};
use loadgrade_common::report::series::SeriesPoint;
use std::collections::{BTreeMap, HashMap};

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
pub(super) struct Seconds {
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
    pub(super) fn new() -> Self {
        Seconds {
            width: 1,
            points: BTreeMap::new(),
            agents: HashMap::new(),
            newest: None,
        }
    }

    /// Adds a measured interval; `corrected` is its `hdr_corrected`, decoded.
    pub(super) fn add(&mut self, report: &IntervalReport, corrected: &LatencyHistogram) {
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
    pub(super) fn last_complete(&self) -> Option<(f64, Option<f64>)> {
        let mut newest = self.points.values().rev();
        let point = newest.nth(1).or_else(|| self.points.values().next_back())?;
        let merged = point.merged();
        let ms = point.agent_ms.values().copied().max().unwrap_or(0).max(1);
        Some((
            point.counters.requests as f64 * 1000.0 / ms as f64,
            (!merged.is_empty()).then(|| us_to_ms(merged.value_at_quantile(0.95))),
        ))
    }

    /// The series, one point per `width` seconds. A point measured for less than half its width (a step or a
    /// window that ends a few milliseconds into a second) is not a rate of its own: its counts and histograms are
    /// added to the point before it (to the one after it, for a first point), whose rate then covers both, so no
    /// sliver is drawn as a spike and nothing is left out.
    pub(super) fn series(&self) -> Vec<SeriesPoint> {
        let Some(first) = self.points.keys().next().copied() else {
            return Vec::new();
        };
        let full_ms = u64::try_from(self.width).unwrap_or(1).saturating_mul(1000);
        let mut folded: Vec<Folded> = Vec::with_capacity(self.points.len());
        let mut leading: Option<Folded> = None;
        for (key, point) in &self.points {
            let mut this = Folded {
                key: *key,
                ms: point.agent_ms.values().copied().max().unwrap_or(0),
                counters: point.counters,
                arrivals: point.arrivals,
                histogram: point.merged(),
                in_window: point.in_window,
            };
            if let Some(head) = leading.take() {
                this.key = head.key;
                this.absorb(head);
            }
            if this.ms.saturating_mul(2) < full_ms {
                match folded.last_mut() {
                    Some(previous) => previous.absorb(this),
                    None => leading = Some(this),
                }
                continue;
            }
            folded.push(this);
        }
        // A load that is one sliver alone is still shown.
        folded.extend(leading);
        folded
            .into_iter()
            .map(|f| {
                let at = |q: f64| {
                    (!f.histogram.is_empty()).then(|| us_to_ms(f.histogram.value_at_quantile(q)))
                };
                SeriesPoint {
                    t_s: (f.key - first) as f64,
                    width_s: self.width as f64,
                    duration_s: f.ms as f64 / 1000.0,
                    requests: f.counters.requests,
                    ok: f.counters.ok,
                    errors: f.counters.errors,
                    p50_ms: at(0.5),
                    p95_ms: at(0.95),
                    p99_ms: at(0.99),
                    arrivals: f.arrivals,
                    dropped: f.counters.dropped,
                    in_window: f.in_window,
                }
            })
            .collect()
    }
}

/// A point of the series as it is drawn, slivers folded in.
struct Folded {
    key: i64,
    /// Measured milliseconds (the longest agent's), the folded sliver's added.
    ms: u64,
    counters: Counters,
    arrivals: u64,
    histogram: LatencyHistogram,
    in_window: bool,
}

impl Folded {
    fn absorb(&mut self, other: Folded) {
        self.ms = self.ms.saturating_add(other.ms);
        self.counters.add(&other.counters);
        self.arrivals = self.arrivals.saturating_add(other.arrivals);
        // One precision, auto-resizing: the merge cannot fail.
        let _ = merge(&mut self.histogram, &other.histogram);
        self.in_window |= other.in_window;
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

    /// Regression (issue 21): a ramp step's 7 ms tail (2 requests) was drawn as a point of 285 req/s where the step
    /// ran at 352 req/s. A sliver is folded into the second before it: no point above the true rate, nothing lost.
    #[test]
    fn a_sliver_of_a_second_is_no_spike() {
        let mut seconds = Seconds::new();
        let mut total = 0;
        for second in 0..4 {
            let (report, h) = interval("a", second, &vec![1_000; 352]);
            seconds.add(&report, &h);
            total += 352;
        }
        for (start_ms, duration_ms, n) in [(4_000, 7, 2u64), (4_007, 6, 4)] {
            let (mut report, h) = interval("a", 0, &vec![900; n as usize]);
            report.start_unix_ms = 1_000_000 + start_ms;
            report.duration_ms = duration_ms;
            seconds.add(&report, &h);
            total += n;
        }
        let series = seconds.series();
        assert_eq!(
            series.len(),
            4,
            "the tail is folded, not a point of its own"
        );
        assert_eq!(
            series.iter().map(|p| p.requests).sum::<u64>(),
            total,
            "nothing lost"
        );
        // The tail alone would have been drawn at 6 / 0.013 s = 462 req/s; folded, every point is within 1 % of the
        // step's rate.
        let true_rate = total as f64 / 4.013;
        for p in &series {
            let rate = p.per_s(p.ok);
            assert!(
                (rate / true_rate - 1.0).abs() < 0.01,
                "a point at {rate} req/s, the step ran at {true_rate}"
            );
        }
        assert!(
            (series[3].duration_s - 1.013).abs() < 1e-9,
            "{}",
            series[3].duration_s
        );
        // A sliver that opens a load goes into the point after it.
        let mut opening = Seconds::new();
        let (mut head, h) = interval("a", 0, &[500]);
        head.duration_ms = 5;
        opening.add(&head, &h);
        let (report, h) = interval("a", 1, &vec![500; 100]);
        opening.add(&report, &h);
        let series = opening.series();
        assert_eq!(series.len(), 1);
        assert_eq!((series[0].t_s, series[0].requests), (0.0, 101));
    }
}
