//! An interval judged against what its shard can have done: within the shard's time, no more time or intervals
//! than it ran, no more responses than its connections can have completed.

use super::{Decoded, IntakeError, TIME_SLACK_MS};
use loadgrade_common::interval::IntervalReport;

/// What the coordinator knows of one agent's shard, to judge its intervals by.
#[derive(Debug, Clone, Copy)]
pub struct ShardBounds {
    /// The common start instant, coordinator clock, Unix ms.
    pub start_unix_ms: i64,
    /// The longest the shard may legitimately last from its start (warm-up, measured phase, a last timeout), ms.
    pub bound_ms: i64,
    /// Its connections: none completes requests faster than their own latency.
    pub connections: u64,
}

/// What an agent's accepted intervals of one part add up to.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ledger {
    claimed_ms: u64,
    intervals: u64,
}

impl Ledger {
    /// Books an interval accepted before (one read back from the store after a restart) without judging it.
    pub fn book(&mut self, report: &IntervalReport) {
        self.claimed_ms = self
            .claimed_ms
            .saturating_add(u64::from(report.duration_ms));
        self.intervals += 1;
    }
}

/// Checks an interval against what its shard can have done, and books it in `ledger` when it passes:
/// - it lies between the shard's start and now, and not past the shard's bound (within [`TIME_SLACK_MS`]);
/// - with it, the agent's intervals add up to no more time, and no more intervals (one a second, a few cuts more),
///   than the shard has run: the same figures cannot count twice under another sequence number or epoch;
/// - its latency histogram holds no more values than the shard's connections can have completed in it, each
///   taking at least the fastest latency recorded (plus one request per connection begun before the interval).
pub fn check_plausible(
    report: &IntervalReport,
    decoded: &Decoded,
    shard: &ShardBounds,
    now_unix_ms: i64,
    ledger: &mut Ledger,
) -> Result<(), IntakeError> {
    let start_ms = report.start_unix_ms.saturating_sub(shard.start_unix_ms);
    let end_ms = start_ms.saturating_add(i64::from(report.duration_ms));
    let now_ms = now_unix_ms.saturating_sub(shard.start_unix_ms);
    let ran_ms = now_ms
        .min(shard.bound_ms)
        .saturating_add(TIME_SLACK_MS)
        .max(0);
    if start_ms < -TIME_SLACK_MS || end_ms > ran_ms {
        return Err(IntakeError::OutsideThePart { start_ms, now_ms });
    }
    let claimed = ledger
        .claimed_ms
        .saturating_add(u64::from(report.duration_ms));
    if claimed > ran_ms.unsigned_abs() {
        return Err(IntakeError::MoreTimeThanPassed {
            claimed_ms: claimed,
            elapsed_ms: now_ms,
        });
    }
    let allowed_intervals = ran_ms.unsigned_abs() / 1000 + 3;
    if ledger.intervals + 1 > allowed_intervals {
        return Err(IntakeError::TooManyIntervals {
            allowed: allowed_intervals,
        });
    }
    // The service time is the raw latency where there is one (open model); the corrected one adds queueing.
    let timed = if decoded.raw.is_empty() {
        &decoded.corrected
    } else {
        &decoded.raw
    };
    if !timed.is_empty() {
        let fastest_us = timed.min().max(1);
        let per_connection = u64::from(report.duration_ms).saturating_mul(1000) / fastest_us + 1;
        let most = shard.connections.max(1).saturating_mul(per_connection);
        if decoded.corrected.len() > most {
            return Err(IntakeError::FasterThanConnections {
                responses: decoded.corrected.len(),
                most,
                connections: shard.connections,
                fastest_us,
            });
        }
    }
    ledger.claimed_ms = claimed;
    ledger.intervals += 1;
    Ok(())
}
