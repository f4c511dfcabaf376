//! What a scrape shard measured since the last interval: each scrape of the target (latency, bytes, outcome),
//! the series and samples it served, and once the Prometheus side; cut into one `IntervalReport` a second.

use loadgrade_common::histogram::{LatencyHistogram, MAX_VALUE, encode, new_histogram};
use loadgrade_common::interval::{
    Counters, Health, IntervalReport, PrometheusFigures, ScrapeFigures,
};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// How a scrape ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An exposition: its series and samples as served (the target's times the replicas).
    Good {
        target_series: u64,
        series: u64,
        samples: u64,
    },
    /// A response with this status (400 and above).
    Status(u16),
    /// A 2xx response that is not an exposition.
    NotExposition,
    Timeout,
    Connect,
    Failed,
}

struct Since {
    latency: LatencyHistogram,
    counters: Counters,
    figures: ScrapeFigures,
}

impl Since {
    fn new() -> Self {
        Since {
            latency: new_histogram(),
            counters: Counters::default(),
            figures: ScrapeFigures::default(),
        }
    }
}

/// The phase a shard is in, for its interval reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Before the window (Prometheus starting and settling): intervals are warm-up.
    Before = 0,
    Window = 1,
    After = 2,
}

/// Shared by the scraper and the cutter.
pub struct Figures {
    since: Mutex<Since>,
    phase: AtomicU8,
    /// When the window began and ended.
    window: Mutex<(Option<Instant>, Option<Instant>)>,
}

impl Default for Figures {
    fn default() -> Self {
        Figures {
            since: Mutex::new(Since::new()),
            phase: AtomicU8::new(Phase::Before as u8),
            window: Mutex::new((None, None)),
        }
    }
}

impl Figures {
    fn with<T>(&self, f: impl FnOnce(&mut Since) -> T) -> T {
        f(&mut self.since.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn set_phase(&self, phase: Phase) {
        let before = self.phase.swap(phase as u8, Ordering::SeqCst);
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        match phase {
            Phase::Window if window.0.is_none() => window.0 = Some(Instant::now()),
            Phase::After if before == Phase::Window as u8 => {
                window.1 = Some(Instant::now());
                // Sent with the next interval.
                if let (Some(begin), Some(end)) = *window {
                    let ms =
                        u64::try_from(end.duration_since(begin).as_millis()).unwrap_or(u64::MAX);
                    self.with(|s| s.figures.window_ms = ms.max(1));
                }
            }
            _ => {}
        }
    }

    /// Ends the window without a length: what it holds covers an unknown part of it (a Prometheus that
    /// failed midway), so no rate is taken from it.
    pub fn abort_window(&self) {
        self.phase.store(Phase::After as u8, Ordering::SeqCst);
    }

    /// Scrapes count only inside the window.
    pub fn recording(&self) -> bool {
        self.phase.load(Ordering::SeqCst) == Phase::Window as u8
    }

    /// One scrape of the target that took `took` and returned `bytes`.
    pub fn record(&self, outcome: Outcome, took: Duration, bytes: u64) {
        if !self.recording() {
            return;
        }
        self.with(|s| {
            let c = &mut s.counters;
            c.requests += 1;
            c.bytes_received = c.bytes_received.saturating_add(bytes);
            let timed = match outcome {
                Outcome::Good {
                    target_series,
                    series,
                    samples,
                } => {
                    c.ok += 1;
                    s.figures.target_series = target_series;
                    s.figures.series = series;
                    s.figures.samples = s.figures.samples.saturating_add(samples);
                    true
                }
                Outcome::Status(status) if status < 500 => {
                    c.errors.status_4xx += 1;
                    true
                }
                Outcome::Status(_) => {
                    c.errors.status_5xx += 1;
                    true
                }
                Outcome::Timeout => {
                    c.errors.timeout += 1;
                    true
                }
                Outcome::Connect => {
                    c.errors.connect += 1;
                    false
                }
                Outcome::NotExposition | Outcome::Failed => {
                    c.errors.other += 1;
                    false
                }
            };
            if timed {
                let us = u64::try_from(took.as_micros())
                    .unwrap_or(u64::MAX)
                    .clamp(1, MAX_VALUE);
                let _ = s.latency.record(us);
            }
        });
    }

    /// What the Prometheus run measured: sent with the next interval.
    pub fn prometheus(&self, figures: PrometheusFigures) {
        self.with(|s| s.figures.prometheus = Some(figures));
    }

    /// Why the Prometheus side is not measured: sent with the next interval.
    pub fn prometheus_not_measured(&self, why: String) {
        self.with(|s| s.figures.prometheus_not_measured = why);
    }
}

/// Cuts the shard's figures into interval reports.
pub struct Cutter {
    pub figures: Arc<Figures>,
    pub stamp: crate::cutting::Stamp,
}

impl Cutter {
    pub fn cut(&mut self, now: Instant) -> IntervalReport {
        let phase = self.figures.phase.load(Ordering::SeqCst);
        let since = self.figures.with(|s| std::mem::replace(s, Since::new()));
        IntervalReport {
            // A scrape straddling a cut is counted where it ended; only intervals with nothing of the window in
            // them are marked before or after it.
            warmup: phase == Phase::Before as u8 && since.counters.requests == 0,
            after_window: phase == Phase::After as u8 && since.counters.requests == 0,
            hdr_corrected: encode(&since.latency).unwrap_or_default(),
            counters: since.counters,
            health: Health {
                threads: 1,
                ..Health::default()
            },
            scrape: Some(since.figures),
            ..self.stamp.next(now)
        }
    }
}
