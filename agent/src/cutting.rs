//! Running a shard's work while cutting what it measured into one interval report a second: the loop the
//! pagination and scrape executors share. The work ends by itself, at its bound, or when stopped; whatever was
//! measured is sent in a last report however it ended.

use loadgrade_common::interval::IntervalReport;
use std::future::Future;
use std::time::Duration;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

/// How a driven shard ended.
pub enum Ended<E> {
    /// The work returned.
    Done(Result<(), E>),
    /// Its bound passed first.
    TooLong,
    /// It was stopped.
    Stopped,
}

/// Runs `work` from now (the caller has waited for the start instant `start`), sending `cut(now)` every second
/// after `start` and once more at the end; `before_last` runs just before the last cut. Returns how it ended and
/// the reports sent.
pub async fn drive<E>(
    work: impl Future<Output = Result<(), E>>,
    start: Instant,
    bound: Duration,
    reports: &tokio::sync::mpsc::Sender<IntervalReport>,
    stop: &CancellationToken,
    mut cut: impl FnMut(Instant) -> IntervalReport,
    before_last: impl FnOnce(),
) -> (Ended<E>, u64) {
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
