//! Synthetic series on /metrics (`--metrics-series N`): the shape of a real service's exporter, request-duration
//! histograms per route and status, so a scrape scenario has a known, realistic number of series to measure. Their
//! values follow the testbed's real request count (counters only grow), so a scraper sees samples change as on a
//! live service. What the testbed exports in all is on /metrics itself: `loadgrade_testbed_exposed_series`.

use std::fmt::Write as _;

/// Histogram bucket bounds, seconds (Prometheus client defaults).
const BUCKETS: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
];
/// Series of one histogram label set: a bucket per bound, `+Inf`, `_sum` and `_count`.
pub const SERIES_PER_HISTOGRAM: u64 = BUCKETS.len() as u64 + 3;
/// The most synthetic series (about 20 MB of text).
pub const MAX_SERIES: u64 = 200_000;
/// Statuses each route is split by.
const STATUSES: [&str; 4] = ["200", "201", "404", "500"];
const FAMILY: &str = "loadgrade_testbed_synthetic_request_duration_seconds";

/// A number of histograms, each one label set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Synthetic {
    histograms: u64,
}

impl Synthetic {
    /// Whole histograms for at least `series` series (none for 0), at most [`MAX_SERIES`].
    pub fn with_series(series: u64) -> Synthetic {
        Synthetic {
            histograms: series.min(MAX_SERIES).div_ceil(SERIES_PER_HISTOGRAM),
        }
    }

    /// The series it writes.
    pub fn series(self) -> u64 {
        self.histograms * SERIES_PER_HISTOGRAM
    }

    /// Appends the family to `out`; `requests` (the testbed's real count) is spread over the label sets.
    pub fn render(self, out: &mut String, requests: u64) {
        if self.histograms == 0 {
            return;
        }
        let _ = write!(
            out,
            "# HELP {FAMILY} Synthetic request durations (--metrics-series), spread from the real request count.\n\
             # TYPE {FAMILY} histogram\n"
        );
        for i in 0..self.histograms {
            let route = i / STATUSES.len() as u64;
            let status = STATUSES[(i % STATUSES.len() as u64) as usize];
            let labels = format!("route=\"/api/r{route}\",status=\"{status}\"");
            let count = requests / self.histograms + u64::from(i < requests % self.histograms);
            for (b, bound) in BUCKETS.iter().enumerate() {
                let cumulative = count * (b as u64 + 1) / BUCKETS.len() as u64;
                let _ = writeln!(
                    out,
                    "{FAMILY}_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(out, "{FAMILY}_bucket{{{labels},le=\"+Inf\"}} {count}");
            let _ = writeln!(out, "{FAMILY}_sum{{{labels}}} {}", count as f64 * 0.042);
            let _ = writeln!(out, "{FAMILY}_count{{{labels}}} {count}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_writes_whole_histograms_and_counts_them() {
        for asked in [0, 1, 13, 14, 1000] {
            let synthetic = Synthetic::with_series(asked);
            let mut out = String::new();
            synthetic.render(&mut out, 12_345);
            let lines = out.lines().filter(|l| !l.starts_with('#')).count() as u64;
            assert_eq!(lines, synthetic.series(), "{asked}");
            assert!(
                synthetic.series() >= asked && synthetic.series() < asked + SERIES_PER_HISTOGRAM
            );
        }
        assert_eq!(
            Synthetic::with_series(u64::MAX).series(),
            MAX_SERIES.div_ceil(SERIES_PER_HISTOGRAM) * 13
        );
    }
}
