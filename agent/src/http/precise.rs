//! Waiting for an instant to within tens of microseconds. tokio's timer wheel ticks every millisecond and fires at
//! the first tick at or after the deadline, so an open model waiting on it sends every arrival 0-1 ms late: on a
//! target answering in 0.1 ms most of the corrected latency would be the generator's own timer. This waits on
//! tokio's timer for all but the last [`COARSE_SLACK`], then on a Linux timerfd registered with tokio's reactor
//! (a one-shot, nanosecond-resolution timer; no spinning, so the CPU per arrival stays a couple of system calls).

use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};
use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// What is left to the timerfd after tokio's timer: more than its 1 ms tick.
const COARSE_SLACK: Duration = Duration::from_millis(2);
/// Closer than this to the deadline, waiting costs more than it gains.
const MIN_WAIT: Duration = Duration::from_micros(20);

pub struct PreciseTimer {
    /// `None` where no timerfd could be made: then tokio's timer alone (millisecond timing).
    fd: Option<AsyncFd<OwnedFd>>,
}

impl PreciseTimer {
    pub fn new() -> Self {
        // `AsyncFd::new` is deprecated because a `T` that does not own its descriptor could close it under the
        // reactor; an `OwnedFd` owns it, so this use is sound (the replacement, `register`, is `unsafe`, which this
        // crate forbids).
        #[allow(deprecated)]
        let fd = rustix::time::timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .map_err(io::Error::from)
        .and_then(AsyncFd::new);
        if let Err(e) = &fd {
            tracing::warn!(
                "no timerfd ({e}): open-model arrivals are timed to the millisecond only"
            );
        }
        PreciseTimer { fd: fd.ok() }
    }

    /// Resolves at `at`, late by the kernel's wake-up (tens of microseconds), or up to [`MIN_WAIT`] early when
    /// the coarse wait ends that close to it (waiting again would cost more than it gains).
    pub async fn sleep_until(&mut self, at: Instant) {
        let now = Instant::now();
        if at <= now + MIN_WAIT {
            return;
        }
        let Some(fd) = &self.fd else {
            return tokio::time::sleep_until(at).await;
        };
        if at > now + COARSE_SLACK {
            tokio::time::sleep_until(at - COARSE_SLACK).await;
        }
        let left = at.saturating_duration_since(Instant::now());
        if left < MIN_WAIT {
            return;
        }
        if wait(fd, left).await.is_err() {
            // The timerfd failed: finish on tokio's timer rather than not at all.
            tokio::time::sleep_until(at).await;
        }
    }
}

/// Arms the one-shot timer for `left` and waits for it to expire.
async fn wait(fd: &AsyncFd<OwnedFd>, left: Duration) -> io::Result<()> {
    let spec = Itimerspec {
        it_interval: Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        },
    };
    // Re-arming replaces any earlier expiry (one cut short by a stop) and resets the expiration count.
    rustix::time::timerfd_settime(fd.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
    loop {
        let mut ready = fd.readable().await?;
        let mut expirations = [0u8; 8];
        match ready.try_io(|inner| {
            rustix::io::read(inner.get_ref(), &mut expirations).map_err(io::Error::from)
        }) {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Ok(Err(e)) => return Err(e),
            // Readiness was stale (cleared by try_io): wait again.
            Err(_would_block) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_until_the_instant_and_not_a_tick_more() {
        let mut timer = PreciseTimer::new();
        assert!(timer.fd.is_some(), "linux has timerfd");
        let mut late = Vec::new();
        for _ in 0..20 {
            let at = Instant::now() + Duration::from_micros(2_300);
            timer.sleep_until(at).await;
            let now = Instant::now();
            // Never early by more than MIN_WAIT (a coarse wait that ends that close returns at once).
            assert!(now + MIN_WAIT >= at, "early by {:?}", at - now);
            late.push(now - at);
        }
        late.sort();
        // The median is what matters; a shared machine may delay a few wake-ups.
        assert!(
            late[10] < Duration::from_millis(1),
            "median lateness {:?}",
            late[10]
        );
    }
}
