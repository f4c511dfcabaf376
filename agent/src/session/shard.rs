//! One shard on this agent: prepared (or refused), started at the coordinator's instant, its interval reports
//! through the spool, and its end reported after them.

use super::MAX_START_AHEAD_MS;
use crate::AgentConfig;
use crate::executor::{self, Refusal};
use crate::recorder::ShardId;
use crate::shard_io::ShardOutput;
use crate::spool::Spool;
use loadgrade_common::clock::unix_ms;
use loadgrade_common::protocol::{FromAgent, ShardDone, ShardOutcome, ShardRefused};
use loadgrade_common::shard::{Assignment, PartId};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(super) async fn refuse(
    tx: &mpsc::Sender<FromAgent>,
    run_id: String,
    part: PartId,
    why: &Refusal,
) {
    tracing::warn!(run = %run_id, scenario = %part.scenario, reason = %why, "shard refused");
    let _ = tx
        .send(FromAgent::ShardRefused(ShardRefused {
            run_id,
            part,
            reason: why.to_string(),
        }))
        .await;
}

pub(super) struct ShardContext {
    pub(super) config: AgentConfig,
    pub(super) epoch: u64,
    pub(super) clock_offset_ms: i64,
    pub(super) seq: Arc<AtomicU64>,
    /// The run's count of running shards (this one is in it until it ends).
    pub(super) active: Arc<AtomicUsize>,
    pub(super) tx: mpsc::Sender<FromAgent>,
    pub(super) spool: Arc<Spool>,
    pub(super) stop: CancellationToken,
}

pub(super) async fn run_shard(ctx: ShardContext, assignment: Assignment) {
    let active = ctx.active.clone();
    run_shard_to_end(ctx, assignment).await;
    active.fetch_sub(1, Ordering::Relaxed);
}

async fn run_shard_to_end(ctx: ShardContext, assignment: Assignment) {
    let Assignment {
        run_id,
        part,
        start_at_unix_ms,
        work,
        ..
    } = assignment;
    let local_start_ms = start_at_unix_ms.saturating_add(ctx.clock_offset_ms);
    let ahead_ms = local_start_ms.saturating_sub(unix_ms());
    let prepared = if ahead_ms > MAX_START_AHEAD_MS {
        Err(Refusal::StartTooFar {
            ahead_ms,
            max_ms: MAX_START_AHEAD_MS,
        })
    } else {
        executor::prepare(work, &ctx.config).await
    };
    let prepared = match prepared {
        Ok(p) => p,
        Err(why) => return refuse(&ctx.tx, run_id, part, &why).await,
    };
    let delay =
        Duration::from_millis(u64::try_from(local_start_ms.saturating_sub(unix_ms())).unwrap_or(0));
    let start = tokio::time::Instant::now() + delay;
    tracing::info!(run = %run_id, scenario = %part.scenario, target = %prepared.target(), ?delay, "shard accepted");

    let (reports, mut report_rx) = mpsc::channel(64);
    // Reports go to the spool, never straight to the session: a stalled link cannot block the shard, and what
    // the coordinator has not acknowledged is sent again by the next session.
    let forward = {
        let spool = ctx.spool.clone();
        tokio::spawn(async move {
            while let Some(report) = report_rx.recv().await {
                spool.push(report);
            }
        })
    };
    let output = ShardOutput {
        shard: ShardId {
            run_id: run_id.clone(),
            agent: ctx.config.name.clone(),
            epoch: ctx.epoch,
            part: part.clone(),
        },
        seq: ctx.seq.clone(),
        start_unix_ms: start_at_unix_ms,
        reports,
    };
    let result = prepared.run(start, output, ctx.stop.clone()).await;
    let _ = forward.await;
    let (intervals, outcome) = match result {
        Ok(n) if ctx.stop.is_cancelled() => (n, ShardOutcome::Stopped),
        Ok(n) => (n, ShardOutcome::Completed),
        Err(e) => (0, ShardOutcome::Failed(e.to_string())),
    };
    // Through the spool, so it follows the shard's last intervals.
    ctx.spool.pass(FromAgent::ShardDone(ShardDone {
        run_id,
        part,
        intervals,
        outcome,
    }));
}
