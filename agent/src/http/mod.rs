//! The HTTP executor: runs one shard of an `http` scenario (closed or open model, constant or staged) on one
//! current-thread runtime per load thread, and reports one interval a second until the shard ends by itself
//! (profile length or request budget) or is stopped.

mod closed;
mod exchange;
mod h1;
mod limits;
mod open;
mod share;
mod target;
mod transport;

pub use share::ThreadShare;
pub use target::HttpTarget;

use crate::recorder::{IntervalCutter, Recorder, ShardId};
use limits::Limits;
use loadgrade_common::profile::{Profile, Stage};
use loadgrade_proto::v1::{Arrivals, HttpShard, IntervalReport, LoadModel};
use share::Slot;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

/// Length of one interval report.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Period of the event-loop lag probe on every load thread.
const LAG_PROBE_PERIOD: Duration = Duration::from_millis(5);
/// File descriptors kept free beyond the shard's connections (logs, the coordinator session, DNS).
const SPARE_FILES: u64 = 64;

/// A shard checked and ready to run.
#[derive(Debug)]
pub struct HttpShardSpec {
    pub target: HttpTarget,
    pub transport: transport::Transport,
    pub open_model: bool,
    pub poisson: bool,
    pub profile: Profile,
    pub agent_weights: Vec<u64>,
    pub agent_index: usize,
    /// Open model: this agent's connection cap.
    pub connections: u64,
    pub warmup: Duration,
    /// Open model: this agent's backlog.
    pub max_backlog: u64,
    pub timeout: Duration,
    pub max_requests: Option<u64>,
    /// Load threads (each its own current-thread runtime).
    pub threads: usize,
}

impl HttpShardSpec {
    /// Validates a wire shard, resolves its target and checks this agent can hold its connections.
    /// Errors are messages for `ShardRefused`.
    pub async fn from_proto(
        shard: &HttpShard,
        allowlist: &crate::Allowlist,
        cores: u32,
    ) -> Result<Self, String> {
        let target =
            HttpTarget::resolve(&shard.url, &shard.method, &shard.headers, &shard.body).await?;
        allowlist.check(&target.addrs)?;
        let version = match shard.http_version {
            0 | 1 => transport::Version::Http1,
            2 => transport::Version::Http2,
            other => return Err(format!("unknown HTTP version {other}")),
        };
        let transport =
            transport::Transport::new(target.https, &target.host, version, &shard.ca_pem)?;
        let open_model = match LoadModel::try_from(shard.model) {
            Ok(LoadModel::Open) => true,
            Ok(LoadModel::Closed) => false,
            _ => return Err(format!("unknown load model {}", shard.model)),
        };
        let wire = shard.profile.clone().unwrap_or_default();
        let agent_index = wire.index as usize;
        if wire.weights.is_empty() || agent_index >= wire.weights.len() {
            return Err("the shard's profile has no weight for this agent".into());
        }
        let stages: Vec<Stage> = wire
            .stages
            .iter()
            .map(|s| Stage {
                target: s.target,
                duration: Duration::from_millis(s.duration_ms),
            })
            .collect();
        let profile = if stages.is_empty() {
            let length = (shard.duration_ms > 0).then(|| Duration::from_millis(shard.duration_ms));
            Profile::constant(wire.start, length)
        } else {
            Profile::ramp(wire.start, stages)
        };
        if profile.length.is_none() && shard.max_requests == 0 {
            return Err("a shard needs a duration or a request budget to end by itself".into());
        }
        let agent_share = ThreadShare {
            profile: profile.clone(),
            agent_weights: wire.weights.clone(),
            agent_index,
            threads: 1,
            thread_index: 0,
        };
        let (connections, work) = if open_model {
            if shard.connections == 0 || shard.max_backlog == 0 {
                return Err(
                    "an open-model shard needs a connection cap and a backlog of at least 1".into(),
                );
            }
            (shard.connections, shard.connections)
        } else {
            let most = agent_share.max();
            (most, most)
        };
        check_open_files(connections)?;
        let threads = usize::try_from(u64::from(cores.max(1)).min(work.max(1))).unwrap_or(1);
        Ok(HttpShardSpec {
            target,
            transport,
            open_model,
            poisson: shard.arrivals == Arrivals::Poisson as i32,
            profile,
            agent_weights: wire.weights,
            agent_index,
            connections,
            warmup: Duration::from_millis(shard.warmup_ms),
            max_backlog: shard.max_backlog,
            timeout: Duration::from_millis(shard.request_timeout_ms.max(1)),
            max_requests: (shard.max_requests > 0).then_some(shard.max_requests),
            threads,
        })
    }

    fn thread_share(&self, thread_index: usize) -> ThreadShare {
        ThreadShare {
            profile: self.profile.clone(),
            agent_weights: self.agent_weights.clone(),
            agent_index: self.agent_index,
            threads: self.threads,
            thread_index,
        }
    }
}

/// Refuses a shard whose connections would not fit under this process's open-file limit.
fn check_open_files(connections: u64) -> Result<(), String> {
    let (soft, _hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map_err(|e| format!("cannot read the open-file limit: {e}"))?;
    let open_now = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    let needed = connections + open_now + SPARE_FILES;
    if needed > soft {
        return Err(format!(
            "this agent's open-file limit is {soft}, but the shard needs {connections} connections plus \
             {open_now} files already open and {SPARE_FILES} spare ({needed}); raise it (ulimit -n, or \
             LimitNOFILE= in the systemd unit) or spread the load over more agents"
        ));
    }
    Ok(())
}

/// What one load thread needs.
pub struct ThreadContext {
    /// Set when a task failed in a way that makes the shard's figures incomplete.
    pub failure: Arc<std::sync::Mutex<Option<String>>>,
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
}

impl ThreadContext {
    /// Notes a failure; the shard then ends with an error and the run is graded INVALID.
    pub fn failed(&self, why: &str) {
        let mut failure = self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failure.get_or_insert_with(|| why.to_owned());
    }

    fn slot_now(&self) -> Slot {
        self.share
            .slot_at(self.start, self.warmup_end, Instant::now().max(self.start))
    }
}

/// Where a shard's reports go and who it is.
pub struct ShardOutput {
    pub shard: ShardId,
    pub seq: Arc<AtomicU64>,
    /// Coordinator wall clock (Unix ms) of the start instant.
    pub start_unix_ms: i64,
    pub reports: mpsc::Sender<IntervalReport>,
}

/// Runs the shard from `start`. Returns the number of reports sent, or why the load threads could not start.
pub async fn run(
    spec: Arc<HttpShardSpec>,
    start: Instant,
    output: ShardOutput,
    stop: CancellationToken,
) -> Result<u64, String> {
    let recorders: Vec<Recorder> = (0..spec.threads)
        .map(|_| Recorder::new(spec.open_model))
        .collect();
    let mut cutter = IntervalCutter::new(
        recorders.clone(),
        output.shard,
        output.seq,
        start,
        output.start_unix_ms,
    );
    tokio::select! {
        () = sleep_until(start) => {}
        () = stop.cancelled() => return Ok(0),
    }
    let warmup_end = start + spec.warmup;
    let limits = Arc::new(Limits::new(
        warmup_end,
        spec.profile.length.map(|d| warmup_end + d),
        spec.max_requests,
        stop.clone(),
    ));
    let connections =
        loadgrade_common::shares::split_by_weight(spec.connections, &vec![1; spec.threads]);
    let backlogs =
        loadgrade_common::shares::split_by_weight(spec.max_backlog, &vec![1; spec.threads]);
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
        });
        let done = done_tx.clone();
        std::thread::Builder::new()
            .name(format!("loadgrade-load-{t}"))
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(load_thread(ctx)),
                    Err(e) => tracing::error!("load thread runtime: {e}"),
                }
                let _ = done.try_send(());
            })
            .map_err(|e| {
                stop.cancel();
                format!("cannot start a load thread: {e}")
            })?;
    }
    drop(done_tx);
    let mut finished_threads = 0;
    let mut next_cut = next_boundary(start, warmup_end, start);
    loop {
        tokio::select! {
            () = sleep_until(next_cut) => {
                let report = cutter.cut(next_cut, next_cut <= warmup_end && !spec.warmup.is_zero());
                if output.reports.send(report).await.is_err() {
                    stop.cancel();
                }
                next_cut = next_boundary(start, warmup_end, next_cut);
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
    let report = cutter.cut(now, now <= warmup_end && !spec.warmup.is_zero());
    let _ = output.reports.send(report).await;
    if finished_threads < spec.threads {
        return Err(format!(
            "{} of {} load threads ended abnormally; this shard's figures are incomplete",
            spec.threads - finished_threads,
            spec.threads
        ));
    }
    if let Some(why) = failure
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    {
        return Err(format!("{why}; this shard's figures are incomplete"));
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
                    () = sleep_until(due) => recorder.lag(Instant::now().saturating_duration_since(due)),
                    () = done.cancelled() => break,
                }
            }
        })
    };
    if ctx.spec.open_model {
        open::run(ctx).await;
    } else {
        closed::run(ctx).await;
    }
    probe_done.cancel();
    let _ = probe.await;
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

    #[test]
    fn too_many_connections_for_the_open_file_limit_are_refused() {
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("limit");
        let e = check_open_files(soft).expect_err("cannot fit");
        assert!(e.contains("open-file limit"), "{e}");
        assert!(check_open_files(1).is_ok());
    }
}
