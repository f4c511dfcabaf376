//! The HTTP executor: runs one shard of an `http` scenario (closed or open model) and reports one interval a
//! second until it ends by itself (duration or request budget) or is stopped.

mod closed;
mod conn;
mod limits;
mod open;
mod target;

pub use target::HttpTarget;

use crate::recorder::{IntervalCutter, Recorder};
use limits::Limits;
use loadgrade_proto::v1::{HttpShard, IntervalReport, LoadModel};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;

/// Length of one interval report.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Period of the event-loop lag probe.
const LAG_PROBE_PERIOD: Duration = Duration::from_millis(5);

/// A shard checked and ready to run.
#[derive(Debug)]
pub struct HttpShardSpec {
    pub target: HttpTarget,
    pub open_model: bool,
    pub rate: u64,
    pub connections: u64,
    pub duration: Option<Duration>,
    pub warmup: Duration,
    pub max_backlog: u64,
    pub timeout: Duration,
    pub max_requests: Option<u64>,
}

impl HttpShardSpec {
    /// Validates a wire shard and resolves its target. Errors are messages for `ShardRefused`.
    pub async fn from_proto(
        shard: &HttpShard,
        allowlist: &crate::Allowlist,
    ) -> Result<Self, String> {
        let target =
            HttpTarget::resolve(&shard.url, &shard.method, &shard.headers, &shard.body).await?;
        allowlist.check(&target.addrs)?;
        let open_model = match LoadModel::try_from(shard.model) {
            Ok(LoadModel::Open) => true,
            Ok(LoadModel::Closed) => false,
            _ => return Err(format!("unknown load model {}", shard.model)),
        };
        if shard.connections == 0 {
            return Err("a shard needs at least one connection".into());
        }
        if open_model && (shard.rate == 0 || shard.max_backlog == 0) {
            return Err("an open-model shard needs a rate and a backlog of at least 1".into());
        }
        if shard.duration_ms == 0 && shard.max_requests == 0 {
            return Err("a shard needs a duration or a request budget to end by itself".into());
        }
        Ok(HttpShardSpec {
            target,
            open_model,
            rate: shard.rate,
            connections: shard.connections,
            duration: (shard.duration_ms > 0).then(|| Duration::from_millis(shard.duration_ms)),
            warmup: Duration::from_millis(shard.warmup_ms),
            max_backlog: shard.max_backlog,
            timeout: Duration::from_millis(shard.request_timeout_ms.max(1)),
            max_requests: (shard.max_requests > 0).then_some(shard.max_requests),
        })
    }
}

/// Runs the shard from `start`, sending interval reports to `out`. Returns the number of reports sent.
pub async fn run(
    spec: Arc<HttpShardSpec>,
    start: Instant,
    mut cutter: IntervalCutter,
    recorder: Recorder,
    out: mpsc::Sender<IntervalReport>,
    stop: CancellationToken,
) -> u64 {
    tokio::select! {
        () = sleep_until(start) => {}
        () = stop.cancelled() => return 0,
    }
    let warmup_end = start + spec.warmup;
    let limits = Arc::new(Limits::new(
        warmup_end,
        spec.duration.map(|d| warmup_end + d),
        spec.max_requests,
        stop.clone(),
    ));

    let load_done = CancellationToken::new();
    let load = {
        let (spec, recorder, limits, load_done) = (
            spec.clone(),
            recorder.clone(),
            limits.clone(),
            load_done.clone(),
        );
        tokio::spawn(async move {
            if spec.open_model {
                open::run(spec, recorder, limits, start).await;
            } else {
                closed::run(spec, recorder, limits).await;
            }
            load_done.cancel();
        })
    };
    let lag_probe = {
        let (recorder, load_done) = (recorder.clone(), load_done.clone());
        tokio::spawn(async move {
            loop {
                let due = Instant::now() + LAG_PROBE_PERIOD;
                tokio::select! {
                    () = sleep_until(due) => recorder.lag(Instant::now().saturating_duration_since(due)),
                    () = load_done.cancelled() => break,
                }
            }
        })
    };

    let mut next_cut = next_boundary(start, warmup_end, start);
    loop {
        tokio::select! {
            () = sleep_until(next_cut) => {
                let report = cutter.cut(next_cut, next_cut <= warmup_end && !spec.warmup.is_zero());
                if out.send(report).await.is_err() {
                    stop.cancel();
                }
                next_cut = next_boundary(start, warmup_end, next_cut);
            }
            () = load_done.cancelled() => break,
        }
    }
    let _ = load.await;
    let _ = lag_probe.await;
    let now = Instant::now();
    let report = cutter.cut(now, now <= warmup_end && !spec.warmup.is_zero());
    let _ = out.send(report).await;
    // Give reports already queued a moment to leave before the caller announces the shard done.
    sleep(Duration::from_millis(1)).await;
    cutter.cut_count()
}

/// The next interval boundary after `after`: whole seconds from `start` during warm-up, the end of warm-up itself,
/// then whole seconds from the end of warm-up.
fn next_boundary(start: Instant, warmup_end: Instant, after: Instant) -> Instant {
    if after < warmup_end {
        let elapsed = after.duration_since(start);
        let next =
            start + INTERVAL * (u32::try_from(elapsed.as_secs()).unwrap_or(u32::MAX - 1) + 1);
        next.min(warmup_end)
    } else {
        let elapsed = after.duration_since(warmup_end);
        warmup_end + INTERVAL * (u32::try_from(elapsed.as_secs()).unwrap_or(u32::MAX - 1) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_cut_at_the_end_of_warmup() {
        let s = Instant::now();
        let w = s + Duration::from_millis(2500);
        let b1 = next_boundary(s, w, s);
        assert_eq!(b1, s + Duration::from_secs(1));
        let b3 = next_boundary(s, w, s + Duration::from_secs(2));
        assert_eq!(b3, w);
        assert_eq!(next_boundary(s, w, w), w + Duration::from_secs(1));
        assert_eq!(next_boundary(s, s, s), s + Duration::from_secs(1));
    }
}
