//! What every load thread does per connection: open it (timed, failures classified) and send one request on it
//! under a timeout, recording the outcome. The timeout timer is one per connection, reset per request.

use super::h1::ConnectFailure;
use super::transport::Conn;
use crate::recorder::{Outcome, Recorder};
use crate::shard_io::{HttpShardSpec, ThreadCache};
use std::pin::Pin;
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Opens a connection within the request timeout, recording its setup time, or the failure as a request error.
pub async fn open(
    spec: &HttpShardSpec,
    recorder: &Recorder,
    timer: &mut Pin<&mut Sleep>,
) -> Option<Conn> {
    let began = Instant::now();
    // Every connection is checked against the allowlist as it is made, not only the shard once.
    if !spec.allowed.allows(spec.target.addr().ip()) {
        recorder.request(Outcome::Connect, Duration::ZERO, Duration::ZERO, 0);
        return None;
    }
    timer.as_mut().reset(began + spec.timeout);
    let result = tokio::select! {
        // The timer first: a handshake that keeps the task busy (a TLS peer trickling records) cannot starve it.
        biased;
        () = timer.as_mut() => Err(ConnectFailure::Connect),
        r = spec.transport.connect(spec.target.addr()) => r,
    };
    match result {
        Ok(conn) => {
            recorder.connected(began.elapsed());
            Some(conn)
        }
        Err(failure) => {
            match failure {
                ConnectFailure::OutOfFiles => recorder.out_of_files(),
                ConnectFailure::OutOfPorts => recorder.out_of_ports(),
                ConnectFailure::Connect => {}
            }
            recorder.request(Outcome::Connect, Duration::ZERO, Duration::ZERO, 0);
            None
        }
    }
}

/// Sends the shard's request on `conn`. Returns whether the connection may be reused; the outcome is recorded with
/// latency from `intended` (corrected) and from the send (raw); a request given up at its timeout is recorded at
/// the time given up. A kept-alive connection that failed before any byte of a response may mean the target read the
/// request and closed (shedding, a crash) or closed while idle: an idempotent request is sent again once on a new
/// connection and counted in `resent` (requests + resent is what the target can have received); any other is an
/// error.
pub async fn send(
    spec: &HttpShardSpec,
    cache: Option<&ThreadCache>,
    recorder: &Recorder,
    conn: &mut Conn,
    timer: &mut Pin<&mut Sleep>,
    intended: Option<Instant>,
) -> bool {
    if let Some(thread) = cache {
        return crate::cache::lookup(spec, thread, recorder, conn, timer, intended).await;
    }
    let mut resent = false;
    loop {
        let sent = Instant::now();
        timer.as_mut().reset(sent + spec.timeout);
        let result = tokio::select! {
            // The timer first: a response that streams without end keeps the exchange busy on every poll (it
            // spends the task's budget, and a timer polled after it could never fire), yet ends at its timeout.
            biased;
            () = timer.as_mut() => None,
            r = conn.exchange(&spec.target) => Some(r),
        };
        match result {
            Some(Ok((status, bytes))) => {
                let done = Instant::now();
                let raw = done.saturating_duration_since(sent);
                let corrected = intended.map_or(raw, |i| done.saturating_duration_since(i));
                recorder.request(Outcome::Status(status), corrected, raw, bytes);
                return conn.is_reusable();
            }
            Some(Err(Outcome::Stale)) if !resent && spec.idempotent => {
                resent = true;
                recorder.resent();
                match open(spec, recorder, timer).await {
                    Some(fresh) => *conn = fresh,
                    None => return false,
                }
            }
            Some(Err(outcome)) => {
                recorder.request(outcome, Duration::ZERO, Duration::ZERO, 0);
                return false;
            }
            None => {
                let given_up = Instant::now();
                let raw = given_up.saturating_duration_since(sent);
                let corrected = intended.map_or(raw, |i| given_up.saturating_duration_since(i));
                recorder.request(Outcome::Timeout, corrected, raw, 0);
                return false;
            }
        }
    }
}
