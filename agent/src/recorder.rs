//! Per-interval recording: latency histograms and counters that executors write into, and the ticker that cuts
//! them into one `IntervalReport` per second.

use crate::cpu::{CpuClock, LoadThreads};
use loadgrade_common::histogram::{LatencyHistogram, encode, new_histogram};
use loadgrade_common::interval::{CacheFigures, Counters, Health, IntervalReport};
use loadgrade_common::shard::PartId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response arrived; its status code.
    Status(u16),
    Connect,
    Timeout,
    Other,
    /// A reused keep-alive connection failed before any byte of the response. An idempotent request is sent
    /// again on a new connection (counted in `resent`); any other is recorded as Other.
    Stale,
    /// The response's head (or trailers, or a chunk-size line) was over its bound; the connection is closed.
    TooLarge,
}

/// What one interval accumulates.
struct Interval {
    corrected: LatencyHistogram,
    raw: LatencyHistogram,
    lag: LatencyHistogram,
    connection_wait: LatencyHistogram,
    connect: LatencyHistogram,
    send_late: LatencyHistogram,
    counters: Counters,
    backlog_max: u64,
    emfile: u64,
    eaddrnotavail: u64,
    arrivals: u64,
    /// A cache shard's lookups by outcome.
    cache: Option<CacheInterval>,
}

/// A cache shard's lookups in one interval.
struct CacheInterval {
    hits: u64,
    misses: u64,
    hit: LatencyHistogram,
    miss: LatencyHistogram,
    lookup: LatencyHistogram,
}

impl CacheInterval {
    fn new() -> Self {
        CacheInterval {
            hits: 0,
            misses: 0,
            hit: new_histogram(),
            miss: new_histogram(),
            lookup: new_histogram(),
        }
    }
}

impl Interval {
    fn new() -> Self {
        Interval {
            corrected: new_histogram(),
            raw: new_histogram(),
            lag: new_histogram(),
            connection_wait: new_histogram(),
            connect: new_histogram(),
            send_late: new_histogram(),
            counters: Counters::default(),
            backlog_max: 0,
            emfile: 0,
            eaddrnotavail: 0,
            arrivals: 0,
            cache: None,
        }
    }

    /// Adds another thread's interval into this one (exact: histogram counts add).
    fn absorb(&mut self, other: &Interval) {
        for (mine, theirs) in [
            (&mut self.corrected, &other.corrected),
            (&mut self.raw, &other.raw),
            (&mut self.lag, &other.lag),
            (&mut self.connection_wait, &other.connection_wait),
            (&mut self.connect, &other.connect),
            (&mut self.send_late, &other.send_late),
        ] {
            add_counts(mine, theirs);
        }
        self.counters.add(&other.counters);
        self.backlog_max = self.backlog_max.max(other.backlog_max);
        self.emfile += other.emfile;
        self.eaddrnotavail += other.eaddrnotavail;
        self.arrivals += other.arrivals;
        if let Some(theirs) = &other.cache {
            let mine = self.cache.get_or_insert_with(CacheInterval::new);
            mine.hits += theirs.hits;
            mine.misses += theirs.misses;
            add_counts(&mut mine.hit, &theirs.hit);
            add_counts(&mut mine.miss, &theirs.miss);
            add_counts(&mut mine.lookup, &theirs.lookup);
        }
    }
}

/// Adds one thread's histogram into another. Auto-resizing histograms of one precision always add; a failure (a count
/// past u64) would lose figures, so it is logged, never dropped silently.
fn add_counts(mine: &mut LatencyHistogram, theirs: &LatencyHistogram) {
    if let Err(e) = mine.add(theirs) {
        tracing::error!("a thread's latency histogram did not merge into the interval: {e:?}");
    }
}

/// Shared by the executors of one shard; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    current: Arc<Mutex<Interval>>,
    open_model: bool,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Recorder {
    pub fn new(open_model: bool) -> Self {
        Recorder {
            current: Arc::new(Mutex::new(Interval::new())),
            open_model,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Interval) -> R) -> R {
        // A panic while holding the lock leaves plain counters behind, still meaningful.
        let mut guard = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Records one request. `corrected` is measured from the intended send time (open model) or the send time
    /// (closed model); `raw` from the actual send time, recorded for the open model only. Latency is recorded for
    /// requests that got a response, whatever its status, and for requests given up at their timeout (at the time
    /// given up: leaving them out would drop exactly the worst requests).
    pub fn request(&self, outcome: Outcome, corrected: Duration, raw: Duration, bytes: u64) {
        let open = self.open_model;
        self.with(|i| {
            let c = &mut i.counters;
            c.requests += 1;
            c.bytes_received += bytes;
            match outcome {
                Outcome::Status(s) => {
                    match s {
                        400..=499 => c.errors.status_4xx += 1,
                        500..=599 => c.errors.status_5xx += 1,
                        _ => c.ok += 1,
                    }
                    // Auto-resizing histograms accept any value; an error here is impossible.
                    let _ = i.corrected.record(micros(corrected));
                    if open {
                        let _ = i.raw.record(micros(raw));
                    }
                }
                Outcome::Connect => c.errors.connect += 1,
                Outcome::Timeout => {
                    c.errors.timeout += 1;
                    let _ = i.corrected.record(micros(corrected));
                    if open {
                        let _ = i.raw.record(micros(raw));
                    }
                }
                Outcome::Other | Outcome::Stale => c.errors.other += 1,
                Outcome::TooLarge => c.errors.response_too_large += 1,
            }
        });
    }

    /// An open-model arrival found the backlog full.
    /// Records a cache lookup's outcome beside the request itself ([`Self::request`]): a hit or a miss with its end
    /// to end latency (corrected, as the request's), and the cache round trip alone where there is one.
    pub fn lookup(&self, hit: bool, end_to_end: Duration, round_trip: Option<Duration>) {
        self.with(|i| {
            let c = i.cache.get_or_insert_with(CacheInterval::new);
            let us = micros(end_to_end).max(1);
            if hit {
                c.hits += 1;
                let _ = c.hit.record(us);
            } else {
                c.misses += 1;
                let _ = c.miss.record(us);
            }
            if let Some(rtt) = round_trip {
                let _ = c.lookup.record(micros(rtt).max(1));
            }
        });
    }

    pub fn dropped(&self) {
        self.with(|i| i.counters.dropped += 1);
    }

    /// An open-model arrival was still queued when the shard was stopped.
    pub fn discarded_at_stop(&self) {
        self.with(|i| i.counters.discarded_at_stop += 1);
    }

    /// A request was sent again after a kept-alive connection failed before any response byte.
    pub fn resent(&self) {
        self.with(|i| i.counters.resent += 1);
    }

    /// An open-model arrival that found a connection free was sent this late against its intended instant: the
    /// generator's own timing.
    pub fn send_late(&self, late: Duration) {
        self.with(|i| {
            let _ = i.send_late.record(micros(late));
        });
    }

    /// An open-model arrival that found every connection busy waited this long (from its intended instant) until
    /// one was free.
    pub fn connection_wait(&self, wait: Duration) {
        self.with(|i| {
            let _ = i.connection_wait.record(micros(wait));
        });
    }

    /// A connection was set up in `took`.
    pub fn connected(&self, took: Duration) {
        self.with(|i| {
            let _ = i.connect.record(micros(took));
        });
    }

    /// A connect failed because the agent ran out of file descriptors (EMFILE/ENFILE).
    pub fn out_of_files(&self) {
        self.with(|i| i.emfile += 1);
    }

    /// A connect failed because the agent ran out of ephemeral ports (EADDRNOTAVAIL).
    pub fn out_of_ports(&self) {
        self.with(|i| i.eaddrnotavail += 1);
    }

    /// An open-model arrival fell due.
    pub fn arrival(&self) {
        self.with(|i| i.arrivals += 1);
    }

    pub fn backlog_depth(&self, depth: u64) {
        self.with(|i| i.backlog_max = i.backlog_max.max(depth));
    }

    /// How late the event loop's periodic timer (period `period`) fired. Recorded with HDR's expected-interval
    /// correction: a thread blocked for 200 ms missed 40 samples of a 5 ms probe, and those are filled in, so the
    /// lag percentiles describe time, not wake-ups (one sample per wake-up would hide a stall in the p99).
    pub fn lag(&self, late: Duration, period: Duration) {
        self.with(|i| {
            let _ = i.lag.record_correct(micros(late), micros(period));
        });
    }

    fn take(&self) -> Interval {
        self.with(|i| std::mem::replace(i, Interval::new()))
    }
}

/// Identity of the shard that intervals belong to.
#[derive(Debug, Clone)]
pub struct ShardId {
    pub run_id: String,
    pub agent: String,
    pub epoch: u64,
    pub part: PartId,
}

/// Cuts the recorders (one per load thread) into interval reports. Sequence numbers come from `seq`, shared by every shard of one run on
/// this agent, so they are gap-free per (run, agent, epoch).
pub struct IntervalCutter {
    recorders: Vec<Recorder>,
    open_model: bool,
    threads: u32,
    shard: ShardId,
    seq: Arc<AtomicU64>,
    cut_count: u64,
    cpu: CpuClock,
    /// Coordinator wall clock (Unix ms) at `started`.
    started_unix_ms: i64,
    started: Instant,
    last_cut: Instant,
}

impl IntervalCutter {
    pub fn new(
        recorders: Vec<Recorder>,
        shard: ShardId,
        seq: Arc<AtomicU64>,
        started: Instant,
        started_unix_ms: i64,
        threads: LoadThreads,
    ) -> Self {
        IntervalCutter {
            open_model: recorders.first().is_some_and(|r| r.open_model),
            threads: u32::try_from(recorders.len()).unwrap_or(u32::MAX),
            recorders,
            shard,
            seq,
            cut_count: 0,
            cpu: CpuClock::start(threads),
            started_unix_ms,
            started,
            last_cut: started,
        }
    }

    /// Reports cut so far.
    pub fn cut_count(&self) -> u64 {
        self.cut_count
    }

    /// Everything recorded since the last cut, as a report ending now. `warmup`: the interval lies in warm-up;
    /// `after_window`: after the measured window.
    pub fn cut(&mut self, now: Instant, warmup: bool, after_window: bool) -> IntervalReport {
        let mut interval = Interval::new();
        for recorder in &self.recorders {
            interval.absorb(&recorder.take());
        }
        let begin = self.last_cut;
        self.last_cut = now;
        let offset_ms =
            i64::try_from(begin.duration_since(self.started).as_millis()).unwrap_or(i64::MAX);
        let duration_ms = u32::try_from(now.duration_since(begin).as_millis()).unwrap_or(u32::MAX);
        let encode_or_empty = |h: &LatencyHistogram| encode(h).unwrap_or_default();
        let report = IntervalReport {
            run_id: self.shard.run_id.clone(),
            agent: self.shard.agent.clone(),
            epoch: self.shard.epoch,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            part: self.shard.part.clone(),
            start_unix_ms: self.started_unix_ms.saturating_add(offset_ms),
            duration_ms,
            warmup,
            after_window,
            hdr_corrected: encode_or_empty(&interval.corrected),
            hdr_raw: if self.open_model {
                encode_or_empty(&interval.raw)
            } else {
                Vec::new()
            },
            counters: interval.counters,
            health: Health {
                cpu_percent: self.cpu.percent_since_last(),
                backlog_max: interval.backlog_max,
                hdr_lag: encode_or_empty(&interval.lag),
                hdr_connection_wait: if self.open_model {
                    encode_or_empty(&interval.connection_wait)
                } else {
                    Vec::new()
                },
                hdr_connect: encode_or_empty(&interval.connect),
                hdr_send_late: if self.open_model {
                    encode_or_empty(&interval.send_late)
                } else {
                    Vec::new()
                },
                emfile: interval.emfile,
                eaddrnotavail: interval.eaddrnotavail,
                arrivals: interval.arrivals,
                threads: self.threads,
            },
            cache: interval.cache.as_ref().map(|c| CacheFigures {
                hits: c.hits,
                misses: c.misses,
                hdr_hit: encode_or_empty(&c.hit),
                hdr_miss: encode_or_empty(&c.miss),
                hdr_lookup: encode_or_empty(&c.lookup),
            }),
            pagination: None,
            scrape: None,
        };
        self.cut_count += 1;
        report
    }
}
