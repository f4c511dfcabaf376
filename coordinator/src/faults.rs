//! Fault injection for tests (feature `fault-injection`, which only the coordinator's own tests enable): makes a run
//! task fail at a chosen point so tests can show that the load still stops.

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
pub struct Faults {
    panic_under_load: AtomicBool,
}

impl Faults {
    /// The next run task panics once a part's shards are assigned and measured load has been reported.
    pub fn arm_panic_under_load(&self) {
        self.panic_under_load.store(true, Ordering::SeqCst);
    }

    /// Whether to panic now (once per arming).
    pub fn panic_under_load(&self) -> bool {
        self.panic_under_load.swap(false, Ordering::SeqCst)
    }
}
