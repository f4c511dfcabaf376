//! When a shard's load ends: stop requested, deadline passed, or the request budget spent.

use std::sync::atomic::{AtomicU64, Ordering};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub struct Limits {
    warmup_end: Instant,
    deadline: Option<Instant>,
    /// Requests left in the measured phase; `None`: no budget.
    budget: Option<AtomicU64>,
    pub stop: CancellationToken,
}

impl Limits {
    pub fn new(
        warmup_end: Instant,
        deadline: Option<Instant>,
        budget: Option<u64>,
        stop: CancellationToken,
    ) -> Self {
        Limits {
            warmup_end,
            deadline,
            budget: budget.map(AtomicU64::new),
            stop,
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the request budget (if any) is used up.
    pub fn budget_spent(&self) -> bool {
        self.budget
            .as_ref()
            .is_some_and(|left| left.load(Ordering::Acquire) == 0)
    }

    /// Whether a request due at `at` may start; takes one from the budget when it is measured.
    pub fn take(&self, at: Instant) -> bool {
        if self.stop.is_cancelled() || self.deadline.is_some_and(|d| at >= d) {
            return false;
        }
        if at < self.warmup_end {
            return true;
        }
        match &self.budget {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}
