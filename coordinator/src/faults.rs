//! Fault injection for tests (feature `fault-injection`, which only the coordinator's own tests enable): makes a run
//! task fail at a chosen point so tests can show that the load still stops.

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
pub struct Faults {
    panic_after_assign: AtomicBool,
}

impl Faults {
    /// The next run task panics right after it assigns a part's shards.
    pub fn arm_panic_after_assign(&self) {
        self.panic_after_assign.store(true, Ordering::SeqCst);
    }

    /// Whether to panic now (once per arming).
    pub fn panic_after_assign(&self) -> bool {
        self.panic_after_assign.swap(false, Ordering::SeqCst)
    }
}
