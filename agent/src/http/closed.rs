//! Closed model: a fixed number of keep-alive connections, each sending its next request when the last answers.
//! Latency runs from the moment the request is handed to the connection (connection setup excluded).

use super::HttpShardSpec;
use super::conn::Conn;
use super::limits::Limits;
use crate::recorder::{Outcome, Recorder};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Pause after a failed connect before the same connection tries again, so an unreachable target is counted,
/// not hammered.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

pub async fn run(spec: Arc<HttpShardSpec>, recorder: Recorder, limits: Arc<Limits>) {
    let workers: Vec<_> = (0..spec.connections)
        .map(|_| tokio::spawn(worker(spec.clone(), recorder.clone(), limits.clone())))
        .collect();
    for w in workers {
        let _ = w.await;
    }
}

async fn worker(spec: Arc<HttpShardSpec>, recorder: Recorder, limits: Arc<Limits>) {
    let mut conn: Option<Conn> = None;
    while limits.take(Instant::now()) {
        let usable = match conn.take() {
            Some(c) if c.is_open() => c,
            _ => match Conn::open(&spec.target, spec.timeout).await {
                Ok(c) => c,
                Err(outcome) => {
                    recorder.request(outcome, Duration::ZERO, Duration::ZERO, 0);
                    let pause = limits.deadline().map_or(RECONNECT_PAUSE, |d| {
                        RECONNECT_PAUSE.min(d.saturating_duration_since(Instant::now()))
                    });
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = limits.stop.cancelled() => {}
                    }
                    continue;
                }
            },
        };
        let mut c = usable;
        let sent = Instant::now();
        match tokio::time::timeout(spec.timeout, c.send(&spec.target)).await {
            Ok(Ok((status, bytes))) => {
                let latency = sent.elapsed();
                recorder.request(Outcome::Status(status), latency, latency, bytes);
                conn = Some(c);
            }
            Ok(Err(outcome)) => recorder.request(outcome, Duration::ZERO, Duration::ZERO, 0),
            Err(_) => recorder.request(Outcome::Timeout, Duration::ZERO, Duration::ZERO, 0),
        }
    }
}
