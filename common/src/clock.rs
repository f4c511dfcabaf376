//! Wall-clock time as the protocol carries it: Unix epoch milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// This host's wall clock, Unix epoch milliseconds.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
