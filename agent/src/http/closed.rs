//! Closed model on one load thread: up to this thread's share of connections, each sending its next request when
//! the last answers. With stages, a controller raises or lowers the number of active connections each second.
//! Latency runs from handing the request to the connection (connection setup is recorded separately).

use super::ThreadContext;
use super::exchange::{open, send};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until};

/// Pause after a failed connect before the same connection tries again, so an unreachable target is counted,
/// not hammered.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

pub async fn run(ctx: Arc<ThreadContext>) {
    let (active_tx, active_rx) = watch::channel(ctx.slot_now().value);
    let controller = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            loop {
                let slot = ctx.slot_now();
                active_tx.send_if_modified(|v| std::mem::replace(v, slot.value) != slot.value);
                if ctx.limits.deadline().is_some_and(|d| slot.end >= d)
                    || slot.end <= slot.begin
                    || ctx.limits.budget_spent()
                {
                    break;
                }
                tokio::select! {
                    () = sleep_until(slot.end) => {}
                    () = ctx.limits.stop.cancelled() => break,
                }
            }
            // Dropping the sender wakes idle connections so they can end.
        })
    };
    let workers: Vec<_> = (0..ctx.share.max())
        .map(|i| tokio::spawn(connection(ctx.clone(), i, active_rx.clone())))
        .collect();
    drop(active_rx);
    for w in workers {
        if w.await.is_err() {
            ctx.failed("a connection task of the closed model panicked");
        }
    }
    controller.abort();
}

async fn connection(ctx: Arc<ThreadContext>, index: u64, mut active: watch::Receiver<u64>) {
    let timer = sleep(ctx.spec.timeout);
    tokio::pin!(timer);
    let mut conn = None;
    loop {
        if index >= *active.borrow_and_update() {
            conn = None;
            tokio::select! {
                changed = active.changed() => if changed.is_err() { break },
                () = ctx.limits.stop.cancelled() => break,
            }
            continue;
        }
        if !ctx.limits.take(Instant::now()) {
            break;
        }
        let mut c = match conn.take() {
            Some(c) => c,
            None => match open(&ctx.spec, &ctx.recorder, &mut timer).await {
                Some(c) => c,
                None => {
                    let pause = ctx.limits.deadline().map_or(RECONNECT_PAUSE, |d| {
                        RECONNECT_PAUSE.min(d.saturating_duration_since(Instant::now()))
                    });
                    tokio::select! {
                        () = sleep(pause) => {}
                        () = ctx.limits.stop.cancelled() => {}
                    }
                    continue;
                }
            },
        };
        if send(
            &ctx.spec,
            ctx.cache.as_ref(),
            &ctx.recorder,
            &mut c,
            &mut timer,
            None,
        )
        .await
        {
            conn = Some(c);
        }
    }
}
