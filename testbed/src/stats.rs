//! Lock-free request counters shared by every connection of a testbed.

use std::sync::atomic::{AtomicU64, Ordering};

/// Request counters, updated with atomics only (no locks on the hot path).
///
/// Only *counted* requests touch these: everything except the control and
/// observation endpoints (`/_testbed/...` and `/metrics`).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    requests: AtomicU64,
    in_flight: AtomicU64,
    /// Preflight probes (requests marked `x-loadgrade-preflight`): seen, not counted as load.
    probes: AtomicU64,
}

impl Stats {
    /// Counts a request the moment it is received and marks it in flight until
    /// the returned guard is dropped.
    pub(crate) fn begin(&self) -> InFlight<'_> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight { stats: self }
    }

    /// A preflight probe arrived.
    pub(crate) fn probe(&self) {
        self.probes.fetch_add(1, Ordering::Relaxed);
    }

    /// Preflight probes since start.
    pub(crate) fn probes(&self) -> u64 {
        self.probes.load(Ordering::Relaxed)
    }

    /// Total counted requests since start or the last [`Stats::reset`].
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Counted requests currently being handled.
    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Zeroes the request total. The in-flight gauge reflects live requests
    /// and is left alone.
    pub(crate) fn reset(&self) {
        self.requests.store(0, Ordering::Relaxed);
    }
}

/// Marks one counted request as in flight; decrements the gauge on drop, so a
/// request whose connection goes away mid-delay is still accounted for.
pub(crate) struct InFlight<'a> {
    stats: &'a Stats,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_counts_and_guard_tracks_in_flight() {
        let stats = Stats::default();
        let a = stats.begin();
        let b = stats.begin();
        assert_eq!(stats.requests(), 2);
        assert_eq!(stats.in_flight(), 2);
        drop(a);
        assert_eq!(stats.in_flight(), 1);
        stats.reset();
        assert_eq!(stats.requests(), 0);
        assert_eq!(stats.in_flight(), 1);
        drop(b);
        assert_eq!(stats.in_flight(), 0);
    }
}
