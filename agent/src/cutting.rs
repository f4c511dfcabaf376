//! Running a shard's work while cutting what it measured into one interval report a second: the loop the
//! pagination and scrape executors share. The work ends by itself, at its bound, or when stopped; whatever was
//! measured is sent in a last report however it ended.

use crate::recorder::ShardId;
use loadgrade_common::interval::IntervalReport;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

/// Numbers a shard's interval reports and dates each from the common start: the envelope every cut shares.
pub struct Stamp {
    shard: ShardId,
    seq: Arc<AtomicU64>,
    started: Instant,
    /// Coordinator wall clock (Unix ms) at `started`.
    started_unix_ms: i64,
    last_cut: Instant,
}

impl Stamp {
    pub fn new(
        shard: ShardId,
        seq: Arc<AtomicU64>,
        started: Instant,
        started_unix_ms: i64,
    ) -> Stamp {
        Stamp {
            shard,
            seq,
            started,
            started_unix_ms,
            last_cut: started,
        }
    }

    /// A report for the time from the last cut to `now`: its identity, place and length; figures empty.
    pub fn next(&mut self, now: Instant) -> IntervalReport {
        let begin = self.last_cut;
        self.last_cut = now;
        let offset_ms =
            i64::try_from(begin.duration_since(self.started).as_millis()).unwrap_or(i64::MAX);
        IntervalReport {
            run_id: self.shard.run_id.clone(),
            agent: self.shard.agent.clone(),
            epoch: self.shard.epoch,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            part: self.shard.part.clone(),
            start_unix_ms: self.started_unix_ms.saturating_add(offset_ms),
            duration_ms: u32::try_from(now.duration_since(begin).as_millis()).unwrap_or(u32::MAX),
            ..IntervalReport::default()
        }
    }
}

/// How a driven shard ended.
pub enum Ended<E> {
    /// The work returned.
    Done(Result<(), E>),
    /// Its bound passed first.
    TooLong,
    /// It was stopped.
    Stopped,
}

/// Waits for `start`, then runs `work`, sending `cut(now)` every second after `start` and once more at the end;
/// `before_last` runs just before the last cut. Returns how it ended and the reports sent (none when stopped
/// before the start).
pub async fn drive<E>(
    work: impl Future<Output = Result<(), E>>,
    start: Instant,
    bound: Duration,
    reports: &tokio::sync::mpsc::Sender<IntervalReport>,
    stop: &CancellationToken,
    mut cut: impl FnMut(Instant) -> IntervalReport,
    before_last: impl FnOnce(),
) -> (Ended<E>, u64) {
    tokio::select! {
        () = sleep_until(start) => {}
        () = stop.cancelled() => return (Ended::Stopped, 0),
    }
    tokio::pin!(work);
    let mut ticker =
        tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut sent = 0u64;
    let deadline = sleep_until(start + bound);
    tokio::pin!(deadline);
    let ended = loop {
        tokio::select! {
            result = &mut work => break Ended::Done(result),
            _ = ticker.tick() => {
                if reports.send(cut(Instant::now())).await.is_ok() {
                    sent += 1;
                }
            }
            () = &mut deadline => break Ended::TooLong,
            () = stop.cancelled() => break Ended::Stopped,
        }
    };
    before_last();
    // Whatever was measured is sent, however the shard ended.
    if reports.send(cut(Instant::now())).await.is_ok() {
        sent += 1;
    }
    (ended, sent)
}
