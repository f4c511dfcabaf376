//! Open model on one load thread: arrivals at this thread's share of the profile's rate, over at most its share of
//! the connection cap.
//!
//! An arrival that finds every connection busy waits in a bounded backlog and is sent as soon as one frees; beyond
//! it, the arrival is dropped and counted. Latency is recorded twice: from the intended send time (corrected for
//! coordinated omission) and from the actual send time (raw). Arrivals are evenly spaced within each second
//! (threads offset from each other), or a Poisson process, and released on a sub-millisecond timer
//! ([`super::precise`]). An arrival released while a connection was free records how late it was sent
//! (`send_late`: the generator's own timing); one that had to wait records that wait (`connection_wait`).

use super::ThreadContext;
use super::exchange::{open, send};
use super::precise::PreciseTimer;
use loadgrade_common::plan::Arrivals;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};
use tokio::time::{Instant, sleep, sleep_until};

/// An arrival handed to the connections.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    intended: Instant,
    /// A connection was waiting for work when the arrival was released.
    connection_free: bool,
}

/// Connections waiting for an arrival right now.
type Idle = Arc<AtomicUsize>;

pub async fn run(ctx: Arc<ThreadContext>) {
    // Each waiting arrival is memory: never more than a plan may ask for in all (MAX_BACKLOG), whatever arrives.
    let capacity = usize::try_from(ctx.backlog)
        .unwrap_or(usize::MAX)
        .clamp(1, loadgrade_common::plan::http::MAX_BACKLOG as usize);
    let (backlog, arrivals) = mpsc::channel::<Arrival>(capacity);
    let arrivals = Arc::new(Mutex::new(arrivals));
    let idle: Idle = Arc::default();
    let workers: Vec<_> = (0..ctx.connections.max(1))
        .map(|_| tokio::spawn(connection(ctx.clone(), arrivals.clone(), idle.clone())))
        .collect();
    schedule(&ctx, &backlog, capacity, &idle).await;
    drop(backlog);
    for w in workers {
        if w.await.is_err() {
            ctx.failed("a connection task of the open model panicked");
        }
    }
    // Arrivals still queued when the shard was stopped were never sent: counted apart from backlog overflows.
    let mut queue = arrivals.lock().await;
    while queue.try_recv().is_ok() {
        ctx.recorder.discarded_at_stop();
    }
}

/// Emits arrivals slot by slot until the profile ends, the budget is spent or the shard is stopped.
async fn schedule(
    ctx: &ThreadContext,
    backlog: &mpsc::Sender<Arrival>,
    capacity: usize,
    idle: &Idle,
) {
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let mut timer = PreciseTimer::new();
    let threads = ctx.share.thread_weights.len() as u128;
    let thread = ctx.share.thread_index as u128;
    let mut at = ctx.start;
    loop {
        let slot = ctx.share.slot_at(ctx.start, ctx.warmup_end, at);
        if slot.end <= slot.begin || ctx.limits.deadline().is_some_and(|d| slot.begin >= d) {
            return;
        }
        let rate = u128::from(slot.value);
        let span = slot.end.duration_since(slot.begin);
        if rate == 0 {
            // Nothing due in this slot (a ramp at 0, or this thread's part rounded to 0): wait for the next one,
            // unless the budget is already spent by the other threads and agents.
            if ctx.limits.budget_spent() {
                return;
            }
            tokio::select! {
                () = sleep_until(slot.end) => {}
                () = ctx.limits.stop.cancelled() => return,
            }
        } else {
            let mut j: u128 = 0;
            let mut poisson_at = slot.begin;
            loop {
                let intended = if ctx.spec.arrivals == Arrivals::Poisson {
                    let gap = -(1.0 - rng.random::<f64>()).ln() / slot.value as f64;
                    poisson_at += Duration::from_secs_f64(gap);
                    poisson_at
                } else {
                    // Evenly spaced; thread t of n is offset by t/n of its own gap from the others.
                    let offset_ns = (j * threads + thread) * 1_000_000_000 / (threads * rate);
                    j += 1;
                    slot.begin + Duration::from_nanos(u64::try_from(offset_ns).unwrap_or(u64::MAX))
                };
                if intended.duration_since(slot.begin) >= span {
                    break;
                }
                if !ctx.limits.take(intended) {
                    return;
                }
                if intended > Instant::now() {
                    tokio::select! {
                        () = timer.sleep_until(intended) => {}
                        () = ctx.limits.stop.cancelled() => return,
                    }
                } else {
                    // Behind schedule (more arrivals due than this thread can release): arrivals are released at
                    // once, but the connections on this thread's runtime still get their turn, so requests go out
                    // and the excess is dropped at the backlog instead of starving the senders.
                    tokio::task::coop::consume_budget().await;
                }
                ctx.recorder.arrival();
                let arrival = Arrival {
                    intended,
                    connection_free: idle.load(Ordering::Relaxed) > 0,
                };
                match backlog.try_send(arrival) {
                    Ok(()) => ctx
                        .recorder
                        .backlog_depth((capacity - backlog.capacity()) as u64),
                    Err(mpsc::error::TrySendError::Full(_)) => ctx.recorder.dropped(),
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
        }
        at = slot.end;
    }
}

async fn connection(
    ctx: Arc<ThreadContext>,
    arrivals: Arc<Mutex<mpsc::Receiver<Arrival>>>,
    idle: Idle,
) {
    let timer = sleep(ctx.spec.timeout);
    tokio::pin!(timer);
    let mut conn = None;
    loop {
        idle.fetch_add(1, Ordering::Relaxed);
        let next = tokio::select! {
            next = async { arrivals.lock().await.recv().await } => next,
            // On a stop, queued arrivals are not sent (they are counted by the scheduler's owner).
            () = ctx.limits.stop.cancelled() => None,
        };
        idle.fetch_sub(1, Ordering::Relaxed);
        let Some(arrival) = next else { break };
        // Arrivals of the window still waiting when it ends are sent (their corrected latency is the wait the
        // window's users had), but for one request timeout at most: a 1 s plan at an impossible rate drained a
        // million queued arrivals for 13 s after it (issue 20). Past that, this one and the rest are counted as
        // discarded at the stop.
        if ctx
            .limits
            .deadline()
            .is_some_and(|d| Instant::now() >= d + ctx.spec.timeout)
        {
            ctx.recorder.discarded_at_stop();
            break;
        }
        let late = Instant::now().saturating_duration_since(arrival.intended);
        if arrival.connection_free {
            ctx.recorder.send_late(late);
        } else {
            ctx.recorder.connection_wait(late);
        }
        let mut c = match conn.take() {
            Some(c) => c,
            None => match open(&ctx.spec, &ctx.recorder, &mut timer).await {
                Some(c) => c,
                None => continue,
            },
        };
        if send(
            &ctx.spec,
            ctx.cache.as_ref(),
            &ctx.recorder,
            &mut c,
            &mut timer,
            Some(arrival.intended),
        )
        .await
        {
            conn = Some(c);
        }
    }
}
