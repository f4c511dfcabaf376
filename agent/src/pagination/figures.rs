//! What a pagination shard measured since the last interval: per depth the OFFSET and keyset histograms, query
//! counters, the seeding's progress, and the table's facts once known; cut into one `IntervalReport` a second.

use loadgrade_common::histogram::{LatencyHistogram, encode, new_histogram};
use loadgrade_common::interval::{
    Counters, DepthFigures, Health, IntervalReport, PaginationFigures, TableFacts,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Which of the two queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    Offset,
    Cursor,
}

/// How a timed query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Rows(Duration),
    /// Given up at the query timeout: an error, and recorded at the time given up (leaving it out would flatter
    /// exactly the slowest queries).
    Timeout(Duration),
    Failed,
}

#[derive(Default)]
struct Depth {
    offset: Option<LatencyHistogram>,
    cursor: Option<LatencyHistogram>,
    rows_per_page: u64,
}

struct Since {
    all: LatencyHistogram,
    depths: BTreeMap<u64, Depth>,
    counters: Counters,
    table: Option<TableFacts>,
}

impl Since {
    fn new() -> Self {
        Since {
            all: new_histogram(),
            depths: BTreeMap::new(),
            counters: Counters::default(),
            table: None,
        }
    }
}

/// Shared by the shard's connections.
pub struct Figures {
    since: Mutex<Since>,
    seeded_rows: AtomicU64,
}

impl Default for Figures {
    fn default() -> Self {
        Figures {
            since: Mutex::new(Since::new()),
            seeded_rows: AtomicU64::new(0),
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

impl Figures {
    fn with<T>(&self, f: impl FnOnce(&mut Since) -> T) -> T {
        f(&mut self.since.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// One timed query at `page`.
    pub fn record(&self, page: u64, query: Query, ended: Ended) {
        self.with(|s| {
            s.counters.requests += 1;
            let took = match ended {
                Ended::Rows(took) => {
                    s.counters.ok += 1;
                    took
                }
                Ended::Timeout(took) => {
                    s.counters.errors.timeout += 1;
                    took
                }
                Ended::Failed => {
                    s.counters.errors.other += 1;
                    return;
                }
            };
            // Auto-resizing histograms grow to any value up to MAX_VALUE; a value beyond it (100 days) is dropped
            // from the histogram, as in the HTTP recorder, and still counted.
            let us = micros(took).min(loadgrade_common::histogram::MAX_VALUE);
            let _ = s.all.record(us);
            let depth = s.depths.entry(page).or_default();
            let h = match query {
                Query::Offset => &mut depth.offset,
                Query::Cursor => &mut depth.cursor,
            };
            let _ = h.get_or_insert_with(new_histogram).record(us);
        });
    }

    /// The rows a page at `page` returned (both queries agreeing).
    pub fn rows_per_page(&self, page: u64, rows: u64) {
        self.with(|s| s.depths.entry(page).or_default().rows_per_page = rows);
    }

    /// Rows inserted so far while seeding.
    pub fn seeded(&self, rows: u64) {
        self.seeded_rows.store(rows, Ordering::Relaxed);
    }

    /// What was learned of the table: sent with the next interval.
    pub fn table(&self, facts: TableFacts) {
        self.with(|s| s.table = Some(facts));
    }
}

/// Cuts the shard's figures into interval reports.
pub struct Cutter {
    pub figures: Arc<Figures>,
    pub stamp: crate::cutting::Stamp,
    pub threads: u32,
}

impl Cutter {
    pub fn cut(&mut self, now: Instant) -> IntervalReport {
        let since = self.figures.with(|s| std::mem::replace(s, Since::new()));
        let encode_or_empty = |h: &Option<LatencyHistogram>| {
            h.as_ref().and_then(|h| encode(h).ok()).unwrap_or_default()
        };
        IntervalReport {
            hdr_corrected: encode(&since.all).unwrap_or_default(),
            counters: since.counters,
            health: Health {
                threads: self.threads,
                ..Health::default()
            },
            pagination: Some(PaginationFigures {
                depths: since
                    .depths
                    .iter()
                    .map(|(page, d)| DepthFigures {
                        page: *page,
                        hdr_offset: encode_or_empty(&d.offset),
                        hdr_cursor: encode_or_empty(&d.cursor),
                        rows_per_page: d.rows_per_page,
                    })
                    .collect(),
                seeded_rows: self.figures.seeded_rows.load(Ordering::Relaxed),
                table: since.table,
            }),
            ..self.stamp.next(now)
        }
    }
}
