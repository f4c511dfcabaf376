//! The HTTP executor: runs one shard of an `http` scenario (closed or open model, constant or staged) on one
//! current-thread runtime per load thread, and reports one interval a second until the shard ends by itself
//! (profile length or request budget) or is stopped.

mod closed;
mod exchange;
pub(crate) mod h1;
mod h2_budget;
mod limits;
mod open;
mod precise;
mod prepare;
mod probe;
mod share;
mod target;
pub mod transport;

pub use prepare::Refusal;
pub use share::ThreadShare;
pub use target::{HttpTarget, TargetError};
pub use transport::TlsError;

use crate::cpu::LoadThreads;
use crate::recorder::{IntervalCutter, Recorder};
use crate::shard_io::{HttpShardSpec, INTERVAL, ShardOutput, ThreadCache};
use limits::Limits;
use loadgrade_common::plan::LoadModel;
use loadgrade_common::shares::split_by_weight;
use share::Slot;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

/// Period of the event-loop lag probe on every load thread.
const LAG_PROBE_PERIOD: Duration = Duration::from_millis(5);
/// Open model: fewest connections a load thread's pool gets. Arrivals wait for a free connection of their own
/// thread, so many small pools queue (and drop) more than one large pool at the same load: pools this large keep
/// the result nearly independent of the agent's core count, and one thread sends far beyond 100,000 requests/s.
const MIN_OPEN_POOL: u64 = 16;

/// Why a shard that started ended with incomplete figures.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("cannot start a load thread: {0}")]
    ThreadStart(std::io::Error),
    #[error("{ended} of {of} load threads ended abnormally; this shard's figures are incomplete")]
    ThreadsEnded { ended: usize, of: usize },
    #[error("{0}; this shard's figures are incomplete")]
    Task(&'static str),
}

/// What one load thread needs.
pub struct ThreadContext {
    /// Set when a task failed in a way that makes the shard's figures incomplete.
    pub failure: Arc<std::sync::Mutex<Option<&'static str>>>,
    pub spec: Arc<HttpShardSpec>,
    pub recorder: Recorder,
    pub limits: Arc<Limits>,
    pub share: ThreadShare,
    pub start: Instant,
    pub warmup_end: Instant,
    /// Open model: this thread's connection cap.
    pub connections: u64,
    /// Open model: this thread's backlog.
    pub backlog: u64,
    /// A cache shard: this thread's key stream and Redis connection.
    pub cache: Option<ThreadCache>,
}

impl ThreadContext {
    /// Notes a failure; the shard then ends with an error and the run is graded INVALID.
    pub fn failed(&self, why: &'static str) {
        let mut failure = self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failure.get_or_insert(why);
    }

    fn slot_now(&self) -> Slot {
        self.share
            .slot_at(self.start, self.warmup_end, Instant::now().max(self.start))
    }
}

/// Runs the shard from `start`. Returns the number of reports sent, or why the load threads could not start.
pub async fn run(
    spec: Arc<HttpShardSpec>,
    start: Instant,
    output: ShardOutput,
    stop: CancellationToken,
) -> Result<u64, Failure> {
    let recorders: Vec<Recorder> = (0..spec.threads)
        .map(|_| Recorder::new(spec.model == LoadModel::Open))
        .collect();
    let load_threads = LoadThreads::default();
    let mut cutter = IntervalCutter::new(
        recorders.clone(),
        output.shard,
        output.seq,
        start,
        output.start_unix_ms,
        load_threads.clone(),
    );
    tokio::select! {
        () = sleep_until(start) => {}
        () = stop.cancelled() => return Ok(0),
    }
    // Durations are bounded (a week at most) where the shard is read, so these never saturate; if they did, the
    // load would end early rather than never.
    let warmup_end = start.checked_add(spec.warmup).unwrap_or(start);
    // The planned end, and never past the agent's own --max-duration (a request budget alone is stopped there).
    let planned_end = spec
        .profile
        .profile
        .length
        .map(|d| warmup_end.checked_add(d).unwrap_or(warmup_end));
    let capped_end = spec
        .max_duration
        .map(|d| start.checked_add(d).unwrap_or(start));
    let deadline = match (planned_end, capped_end) {
        (Some(p), Some(c)) => Some(p.min(c)),
        (p, c) => p.or(c),
    };
    let limits = Arc::new(Limits::new(
        warmup_end,
        deadline,
        spec.max_requests,
        stop.clone(),
    ));
    // Open model: each thread's connections are its weight, and its backlog follows them.
    let connections = spec.thread_weights.clone();
    let backlogs = split_by_weight(spec.max_backlog, &spec.thread_weights);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(spec.threads);
    let failure = Arc::new(std::sync::Mutex::new(None));
    for (t, recorder) in recorders.into_iter().enumerate() {
        let ctx = Arc::new(ThreadContext {
            failure: failure.clone(),
            spec: spec.clone(),
            recorder,
            limits: limits.clone(),
            share: spec.thread_share(t),
            start,
            warmup_end,
            connections: connections[t],
            backlog: backlogs[t].max(1),
            cache: spec
                .cache
                .clone()
                .map(|lookup| ThreadCache::new(lookup, t as u64)),
        });
        let done = done_tx.clone();
        let load_threads = load_threads.clone();
        std::thread::Builder::new()
            .name(format!("loadgrade-load-{t}"))
            .spawn(move || {
                if !load_threads.register_current() {
                    tracing::warn!("cannot read this load thread's id: its CPU is not measured");
                }
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(load_thread(ctx)),
                    Err(e) => tracing::error!("load thread runtime: {e}"),
                }
                load_threads.finish_current();
                let _ = done.try_send(());
            })
            .map_err(|e| {
                stop.cancel();
                Failure::ThreadStart(e)
            })?;
    }
    drop(done_tx);
    let mut finished_threads = 0;
    let boundaries = Boundaries {
        start,
        warmup_end,
        deadline,
    };
    let mut last_cut = start;
    let mut next_cut = boundaries.next(start);
    loop {
        tokio::select! {
            () = sleep_until(next_cut) => {
                let report = cutter.cut(next_cut, boundaries.in_warmup(next_cut), boundaries.after_window(last_cut));
                if output.reports.send(report).await.is_err() {
                    stop.cancel();
                }
                last_cut = next_cut;
                next_cut = boundaries.next(next_cut);
            }
            done = done_rx.recv() => match done {
                Some(()) => {
                    finished_threads += 1;
                    if finished_threads == spec.threads {
                        break;
                    }
                }
                // Every thread is gone; those that did not say so ended abnormally.
                None => break,
            },
        }
    }
    let now = Instant::now();
    let report = cutter.cut(
        now,
        boundaries.in_warmup(now),
        boundaries.after_window(last_cut),
    );
    let _ = output.reports.send(report).await;
    if finished_threads < spec.threads {
        return Err(Failure::ThreadsEnded {
            ended: spec.threads - finished_threads,
            of: spec.threads,
        });
    }
    if let Some(why) = failure
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    {
        return Err(Failure::Task(why));
    }
    Ok(cutter.cut_count())
}

/// One load thread: its model's loop, plus the event-loop lag probe.
async fn load_thread(ctx: Arc<ThreadContext>) {
    let probe_done = CancellationToken::new();
    let probe = {
        let (recorder, done) = (ctx.recorder.clone(), probe_done.clone());
        tokio::spawn(async move {
            loop {
                let due = Instant::now() + LAG_PROBE_PERIOD;
                tokio::select! {
                    () = sleep_until(due) => recorder.lag(Instant::now().saturating_duration_since(due), LAG_PROBE_PERIOD),
                    () = done.cancelled() => break,
                }
            }
        })
    };
    #[cfg(feature = "fault-injection")]
    let blocker = ctx.spec.block.map(|(every, block)| {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                // On purpose: a synchronous sleep stalls this thread's whole event loop.
                std::thread::sleep(block);
            }
        })
    });
    match ctx.spec.model {
        LoadModel::Open => open::run(ctx).await,
        LoadModel::Closed => closed::run(ctx).await,
    }
    #[cfg(feature = "fault-injection")]
    if let Some(blocker) = blocker {
        blocker.abort();
    }
    probe_done.cancel();
    let _ = probe.await;
}

/// Where intervals are cut: whole seconds from `start` during warm-up, the end of warm-up, whole seconds from the
/// end of warm-up, the end of the measured window (`deadline`), then whole seconds after it (the wind-down, while
/// requests in flight complete).
struct Boundaries {
    start: Instant,
    warmup_end: Instant,
    deadline: Option<Instant>,
}

impl Boundaries {
    /// The first boundary after `after`.
    fn next(&self, after: Instant) -> Instant {
        let whole_seconds_after = |origin: Instant| {
            let elapsed = after.saturating_duration_since(origin).as_secs();
            origin + INTERVAL * (u32::try_from(elapsed).unwrap_or(u32::MAX - 1) + 1)
        };
        if after < self.warmup_end {
            return whole_seconds_after(self.start).min(self.warmup_end);
        }
        match self.deadline {
            Some(deadline) if after < deadline => {
                whole_seconds_after(self.warmup_end).min(deadline)
            }
            Some(deadline) => whole_seconds_after(deadline),
            None => whole_seconds_after(self.warmup_end),
        }
    }

    /// An interval ending at `end` lies in warm-up.
    fn in_warmup(&self, end: Instant) -> bool {
        end <= self.warmup_end && self.warmup_end > self.start
    }

    /// An interval beginning at `begin` lies after the measured window.
    fn after_window(&self, begin: Instant) -> bool {
        self.deadline.is_some_and(|d| begin >= d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_cut_at_the_end_of_warmup_and_of_the_window() {
        let s = Instant::now();
        let w = s + Duration::from_millis(2500);
        let d = w + Duration::from_millis(1500);
        let b = Boundaries {
            start: s,
            warmup_end: w,
            deadline: Some(d),
        };
        assert_eq!(b.next(s), s + Duration::from_secs(1));
        assert_eq!(b.next(s + Duration::from_secs(2)), w);
        assert_eq!(b.next(w), w + Duration::from_secs(1));
        assert_eq!(
            b.next(w + Duration::from_secs(1)),
            d,
            "the window's end is a boundary"
        );
        assert_eq!(b.next(d), d + Duration::from_secs(1));
        assert!(b.in_warmup(w) && !b.in_warmup(w + Duration::from_millis(1)));
        assert!(!b.after_window(w + Duration::from_secs(1)) && b.after_window(d));
        let no_warmup = Boundaries {
            start: s,
            warmup_end: s,
            deadline: None,
        };
        assert_eq!(no_warmup.next(s), s + Duration::from_secs(1));
        assert!(!no_warmup.in_warmup(s) && !no_warmup.after_window(s + Duration::from_secs(100)));
    }
}
