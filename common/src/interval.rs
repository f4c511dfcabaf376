//! One agent's figures for one interval (normally a second) of one part of a run: histograms as HDR V2 + deflate
//! bytes (merged by the receiver), request counters and the generator's health.

use crate::report::ErrorCounts;
use crate::shard::PartId;

/// An interval report. (run_id, agent, epoch, seq) identifies it; storing it twice is a no-op.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntervalReport {
    pub run_id: String,
    pub agent: String,
    /// The agent's session epoch.
    pub epoch: u64,
    /// Per (run, agent, epoch), from 0, gap-free.
    pub seq: u64,
    pub part: PartId,
    /// Start, coordinator wall clock, Unix epoch milliseconds.
    pub start_unix_ms: i64,
    pub duration_ms: u32,
    /// Inside warm-up: stored, excluded from results.
    pub warmup: bool,
    /// After the measured window (the shard winding down: requests in flight completing): counted, but not part of
    /// the window's throughput.
    pub after_window: bool,
    /// Microseconds, HDR V2 + deflate. Open model: from the intended send time.
    pub hdr_corrected: Vec<u8>,
    /// Open model only: from the actual send time.
    pub hdr_raw: Vec<u8>,
    pub counters: Counters,
    pub health: Health,
    /// A cache shard's lookups by outcome; `None` for other kinds.
    pub cache: Option<CacheFigures>,
    /// A pagination shard's queries by depth; `None` for other kinds.
    pub pagination: Option<PaginationFigures>,
    /// A scrape shard's series, samples and Prometheus figures; `None` for other kinds.
    pub scrape: Option<ScrapeFigures>,
}

/// A scrape shard's figures in one interval (each scrape of the target is also one request in `counters` and one
/// value in `hdr_corrected`, its response bytes in `bytes_received`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScrapeFigures {
    /// Series the target exposed at the last good scrape of this interval (0: none).
    pub target_series: u64,
    /// Series served per scrape (the target's times the replicas), at the same scrape.
    pub series: u64,
    /// Samples served, every good scrape of this interval.
    pub samples: u64,
    /// Sent once, in the last interval: what the Prometheus run at this interval measured.
    pub prometheus: Option<PrometheusFigures>,
    /// Sent once when the Prometheus side was not measured: why.
    pub prometheus_not_measured: String,
    /// Sent once the window has ended: its length as measured on the agent, ms (0: not yet, or no window).
    pub window_ms: u64,
}

/// A Prometheus's own figures over the measured window, read from its /metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrometheusFigures {
    /// First line of its `--version`.
    pub version: String,
    pub window_ms: u64,
    pub head_series: u64,
    pub samples_appended_per_s: f64,
    pub rss_bytes: u64,
    pub cpu_seconds: f64,
    pub heap_inuse_bytes: u64,
}

/// A pagination shard's figures in one interval: per depth the timed OFFSET and keyset queries (all of them are
/// also in `hdr_corrected`), the seeding's progress, and once what the shard learned of the table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaginationFigures {
    pub depths: Vec<DepthFigures>,
    /// Rows this shard has inserted so far while seeding (cumulative).
    pub seeded_rows: u64,
    /// Sent in the first interval after the checks, and again when EXPLAIN is done.
    pub table: Option<TableFacts>,
}

/// One depth's queries in one interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DepthFigures {
    pub page: u64,
    /// Microseconds, HDR V2 + deflate.
    pub hdr_offset: Vec<u8>,
    pub hdr_cursor: Vec<u8>,
    /// Rows a page returned (the warm run's, both queries agreeing).
    pub rows_per_page: u64,
}

/// What an agent found out about the database and the table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableFacts {
    pub server_version: String,
    /// Rows matching the plan's `where`.
    pub rows: u64,
    /// Seeded by loadgrade (now, or earlier with exactly `seed_rows`).
    pub seeded: bool,
    /// `EXPLAIN` method, deepest OFFSET plan, deepest keyset plan; empty when not asked or not done.
    pub explain_method: String,
    pub explain_offset: String,
    pub explain_cursor: String,
}

/// A cache shard's lookups in one interval: hits and misses, each with its own latency histogram (their sum is
/// in `hdr_corrected`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheFigures {
    pub hits: u64,
    pub misses: u64,
    /// End to end, microseconds, HDR V2 + deflate.
    pub hdr_hit: Vec<u8>,
    pub hdr_miss: Vec<u8>,
    /// Redis mode: the GET round trip alone.
    pub hdr_lookup: Vec<u8>,
}

/// Request outcome counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests that got a response (any status) or failed; excludes dropped arrivals.
    pub requests: u64,
    /// Responses with status 1xx-3xx.
    pub ok: u64,
    /// Failures by class.
    pub errors: ErrorCounts,
    /// Open model: arrivals dropped because the backlog was full.
    pub dropped: u64,
    pub bytes_received: u64,
    /// Requests sent a second time after a kept-alive connection failed before any response byte: requests +
    /// resent is what the target can have received.
    pub resent: u64,
    /// Open model: arrivals still queued when the shard was stopped, never sent.
    pub discarded_at_stop: u64,
}

impl Counters {
    /// Adds every counter of `other` (merging intervals, or load threads, is a plain sum; it saturates).
    pub fn add(&mut self, other: &Counters) {
        for (mine, theirs) in [
            (&mut self.requests, other.requests),
            (&mut self.ok, other.ok),
            (&mut self.dropped, other.dropped),
            (&mut self.bytes_received, other.bytes_received),
            (&mut self.resent, other.resent),
            (&mut self.discarded_at_stop, other.discarded_at_stop),
        ] {
            *mine = mine.saturating_add(theirs);
        }
        self.errors.add(&other.errors);
    }
}

/// The generator's self-diagnosis for one interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// Process CPU over the interval, percent of one core; `None` when it could not be read.
    pub cpu_percent: Option<f64>,
    /// Open model: deepest backlog seen.
    pub backlog_max: u64,
    /// Event-loop lag: how late a periodic timer fired, microseconds, HDR V2 + deflate.
    pub hdr_lag: Vec<u8>,
    /// Open model: time an arrival waited for a free connection, microseconds, HDR V2 + deflate.
    pub hdr_connection_wait: Vec<u8>,
    /// Connection setup, microseconds, HDR V2 + deflate.
    pub hdr_connect: Vec<u8>,
    /// Open model: how late arrivals were released against their intended instant, microseconds, HDR V2 + deflate.
    pub hdr_send_late: Vec<u8>,
    /// Connects that failed with EMFILE/ENFILE.
    pub emfile: u64,
    /// Connects that failed with EADDRNOTAVAIL.
    pub eaddrnotavail: u64,
    /// Open model: arrivals due in this interval (sent, queued or dropped).
    pub arrivals: u64,
    /// Load threads the shard ran on.
    pub threads: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_and_saturate() {
        let mut a = Counters {
            requests: u64::MAX - 1,
            errors: ErrorCounts {
                timeout: 2,
                ..ErrorCounts::default()
            },
            ..Counters::default()
        };
        a.add(&Counters {
            requests: 5,
            errors: ErrorCounts {
                other: 3,
                ..ErrorCounts::default()
            },
            ..Counters::default()
        });
        assert_eq!(a.requests, u64::MAX);
        assert_eq!(a.errors.total(), 5);
    }
}
