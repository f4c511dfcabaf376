//! One lookup: a key from the thread's stream, then cache-aside against Redis or a request to the application,
//! recorded as a request (status, latency, bytes) and as a hit or a miss. Latency runs from the intended send time
//! in the open model, from the lookup's start otherwise; a lookup given up at the timeout is recorded at the time
//! given up, as any request.

use crate::http::transport::Conn;
use crate::recorder::{Outcome, Recorder};
use crate::shard_io::{HttpShardSpec, Mode, ThreadCache};
use redis::AsyncCommands as _;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Runs one lookup on `conn` (the origin's connection in redis mode, the application's in http mode). Returns
/// whether `conn` may be used again.
pub async fn lookup(
    spec: &HttpShardSpec,
    thread: &ThreadCache,
    recorder: &Recorder,
    conn: &mut Conn,
    timer: &mut Pin<&mut Sleep>,
    intended: Option<Instant>,
) -> bool {
    let key = thread.next_key();
    let began = Instant::now();
    timer.as_mut().reset(began + spec.timeout);
    let since = |t: Instant| {
        let now = Instant::now();
        (
            intended.map_or(now.saturating_duration_since(t), |i| {
                now.saturating_duration_since(i)
            }),
            now.saturating_duration_since(t),
        )
    };
    let result = tokio::select! {
        // The timer first (see http::exchange::send): an endless reply cannot starve it.
        biased;
        () = timer.as_mut() => None,
        r = run(spec, thread, conn, &key, began) => Some(r),
    };
    match result {
        Some(Ok(done)) => {
            let (corrected, raw) = since(began);
            recorder.request(Outcome::Status(done.status), corrected, raw, done.bytes);
            if done.status < 400 {
                recorder.lookup(done.hit, corrected, done.round_trip);
            }
            done.reusable
        }
        Some(Err(failure)) => {
            // A Redis connection that failed was dropped with the lookup.
            recorder.request(failure.outcome, Duration::ZERO, Duration::ZERO, 0);
            false
        }
        None => {
            // The lookup (and its Redis connection, which may hold an unanswered command) is dropped.
            let (corrected, raw) = since(began);
            recorder.request(Outcome::Timeout, corrected, raw, 0);
            false
        }
    }
}

struct Done {
    status: u16,
    bytes: u64,
    hit: bool,
    /// Redis mode: the GET round trip.
    round_trip: Option<Duration>,
    reusable: bool,
}

struct Failed {
    outcome: Outcome,
}

impl Failed {
    fn redis(outcome: Outcome) -> Self {
        Failed { outcome }
    }

    fn http(outcome: Outcome) -> Self {
        Failed {
            outcome: match outcome {
                // No resend for lookups: a stale connection is an error like any other.
                Outcome::Stale => Outcome::Other,
                o => o,
            },
        }
    }
}

async fn run(
    spec: &HttpShardSpec,
    thread: &ThreadCache,
    conn: &mut Conn,
    key: &str,
    began: Instant,
) -> Result<Done, Failed> {
    let lookup = &thread.lookup;
    match &lookup.mode {
        Mode::Http { watch } => {
            let got = conn
                .exchange_bytes(&lookup.request(key), Some(watch), false)
                .await
                .map_err(Failed::http)?;
            Ok(Done {
                status: got.status,
                bytes: got.bytes,
                hit: got.watched,
                round_trip: None,
                reusable: conn.is_reusable(),
            })
        }
        Mode::Redis { client, ttl_s } => {
            let mut redis = thread
                .take_redis(client, spec.timeout)
                .await
                .map_err(|()| Failed::redis(Outcome::Connect))?;
            let cached: Option<Vec<u8>> = redis
                .get(key)
                .await
                .map_err(|_| Failed::redis(Outcome::Other))?;
            let round_trip = Some(began.elapsed());
            if let Some(value) = cached {
                thread.give_back(redis);
                return Ok(Done {
                    status: 200,
                    bytes: value.len() as u64,
                    hit: true,
                    round_trip,
                    reusable: true,
                });
            }
            let got = match conn.exchange_bytes(&lookup.request(key), None, true).await {
                Ok(got) => got,
                Err(outcome) => {
                    // The origin failed; the Redis connection is fine.
                    thread.give_back(redis);
                    return Err(Failed::http(outcome));
                }
            };
            if got.status < 400 {
                let value = got.body.unwrap_or_default();
                let () = redis
                    .set_ex(key, value, *ttl_s)
                    .await
                    .map_err(|_| Failed::redis(Outcome::Other))?;
            }
            thread.give_back(redis);
            Ok(Done {
                status: got.status,
                bytes: got.bytes,
                hit: false,
                round_trip,
                reusable: conn.is_reusable(),
            })
        }
    }
}
