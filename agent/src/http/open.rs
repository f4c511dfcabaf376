//! Open model: arrivals at a constant rate over at most `connections` connections.
//!
//! An arrival that finds every connection busy waits in a bounded backlog (`max_backlog`, by default 5 s of
//! arrivals) and is sent as soon as one frees; beyond it, the arrival is dropped and counted. Latency is recorded
//! twice: from the intended send time (corrected for coordinated omission) and from the actual send time (raw).

use super::HttpShardSpec;
use super::conn::Conn;
use super::limits::Limits;
use crate::recorder::{Outcome, Recorder};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};
use tokio::time::{Instant, sleep_until};

pub async fn run(
    spec: Arc<HttpShardSpec>,
    recorder: Recorder,
    limits: Arc<Limits>,
    start: Instant,
) {
    let capacity = usize::try_from(spec.max_backlog)
        .unwrap_or(usize::MAX)
        .clamp(1, 1 << 24);
    let (backlog, arrivals) = mpsc::channel::<Instant>(capacity);
    let arrivals = Arc::new(Mutex::new(arrivals));
    let workers: Vec<_> = (0..spec.connections)
        .map(|_| tokio::spawn(worker(spec.clone(), recorder.clone(), arrivals.clone())))
        .collect();

    let period_ns = 1_000_000_000u128 / u128::from(spec.rate.max(1));
    let remainder_ns = 1_000_000_000u128 % u128::from(spec.rate.max(1));
    for k in 0u128.. {
        // Exact spacing without drift: k / rate seconds after start.
        let offset_ns = k * period_ns + k * remainder_ns / u128::from(spec.rate.max(1));
        let intended = start + Duration::from_nanos(u64::try_from(offset_ns).unwrap_or(u64::MAX));
        if !limits.take(intended) {
            break;
        }
        tokio::select! {
            () = sleep_until(intended) => {}
            () = limits.stop.cancelled() => break,
        }
        match backlog.try_send(intended) {
            Ok(()) => recorder.backlog_depth((capacity - backlog.capacity()) as u64),
            Err(mpsc::error::TrySendError::Full(_)) => recorder.dropped(),
            Err(mpsc::error::TrySendError::Closed(_)) => break,
        }
    }
    drop(backlog);
    for w in workers {
        let _ = w.await;
    }
}

async fn worker(
    spec: Arc<HttpShardSpec>,
    recorder: Recorder,
    arrivals: Arc<Mutex<mpsc::Receiver<Instant>>>,
) {
    let mut conn: Option<Conn> = None;
    loop {
        let next = arrivals.lock().await.recv().await;
        let Some(intended) = next else { break };
        let sent = Instant::now();
        recorder.connection_wait(sent.saturating_duration_since(intended));
        let mut c = match conn.take() {
            Some(c) if c.is_open() => c,
            _ => match Conn::open(&spec.target, spec.timeout).await {
                Ok(c) => c,
                Err(outcome) => {
                    recorder.request(outcome, Duration::ZERO, Duration::ZERO, 0);
                    continue;
                }
            },
        };
        match tokio::time::timeout(spec.timeout, c.send(&spec.target)).await {
            Ok(Ok((status, bytes))) => {
                let done = Instant::now();
                recorder.request(
                    Outcome::Status(status),
                    done.saturating_duration_since(intended),
                    done.saturating_duration_since(sent),
                    bytes,
                );
                conn = Some(c);
            }
            Ok(Err(outcome)) => recorder.request(outcome, Duration::ZERO, Duration::ZERO, 0),
            Err(_) => recorder.request(Outcome::Timeout, Duration::ZERO, Duration::ZERO, 0),
        }
    }
}
