//! The intake's checks against forged and implausible intervals.

use super::*;
use loadgrade_common::histogram::{encode, new_histogram};

fn interval(ok: u64, recorded: u64) -> IntervalReport {
    let mut h = new_histogram();
    for i in 0..recorded {
        h.record(100 + i).expect("record");
    }
    let mut report = IntervalReport {
        hdr_corrected: encode(&h).expect("encode"),
        duration_ms: 1000,
        ..IntervalReport::default()
    };
    report.counters.requests = ok;
    report.counters.ok = ok;
    report
}

/// Regression (issue 9): counters of u64::MAX wrapped the run's totals, and a histogram whose count had
/// nothing to do with the counters made the report's percentiles up.
#[test]
fn forged_counters_and_histograms_are_refused() {
    assert!(check(&interval(10, 10)).is_ok());
    let mut wrapped = interval(10, 10);
    wrapped.counters.requests = u64::MAX;
    assert!(matches!(
        check(&wrapped),
        Err(IntakeError::Counter {
            name: "requests",
            ..
        })
    ));
    assert!(matches!(
        check(&interval(10, 3)),
        Err(IntakeError::Inconsistent { .. })
    ));
    let mut garbage = interval(0, 0);
    garbage.hdr_corrected = vec![0x1c, 0x84, 0x93, 0x14, 0xff, 0xff, 0xff, 0xff];
    assert!(matches!(
        check(&garbage),
        Err(IntakeError::Histogram { .. })
    ));
    let mut long = interval(1, 1);
    long.duration_ms = u32::MAX;
    assert!(matches!(check(&long), Err(IntakeError::Duration(_))));
    let mut bytes = interval(1, 1);
    bytes.counters.bytes_received = u64::MAX;
    assert!(matches!(check(&bytes), Err(IntakeError::Bytes(_))));
    let mut instant = interval(1, 1);
    instant.duration_ms = 0;
    instant.counters.errors.connect = 1 << 29;
    instant.counters.requests += 1 << 29;
    assert!(matches!(
        check(&instant),
        Err(IntakeError::Rate {
            name: "requests",
            ..
        })
    ));
    let mut unaccounted = interval(10, 10);
    unaccounted.counters.requests = 1_000;
    assert!(matches!(
        check(&unaccounted),
        Err(IntakeError::Outcomes {
            requests: 1_000,
            outcomes: 10
        })
    ));
}

fn at(
    start: i64,
    offset: i64,
    duration_ms: u32,
    responses: u64,
    latency_us: u64,
) -> (IntervalReport, Decoded) {
    let mut h = new_histogram();
    if responses > 0 {
        h.record_n(latency_us, responses).expect("record");
    }
    let mut r = IntervalReport {
        start_unix_ms: start + offset,
        duration_ms,
        hdr_corrected: encode(&h).expect("encode"),
        ..IntervalReport::default()
    };
    r.counters.requests = responses;
    r.counters.ok = responses;
    let decoded = check(&r).expect("valid on its own");
    (r, decoded)
}

/// Regression (issue 9): an agent sent 23,540 one-second intervals for a 2 s shard (25 trillion requests),
/// 3,000 zero-length ones, intervals for 22 s of a 2 s shard, and the same seq again under other epochs.
#[test]
fn an_agent_cannot_claim_more_than_its_shard_can_have_done() {
    let start = 1_000_000;
    let shard = ShardBounds {
        start_unix_ms: start,
        bound_ms: 3_000,
        connections: 2,
    };
    let now = start + 2_500;
    let mut ledger = Ledger::default();
    // Two honest seconds: 2 connections at 1 ms a request complete at most ~2000 a second.
    for offset in [0, 1000] {
        let (r, d) = at(start, offset, 1000, 1900, 1000);
        check_plausible(&r, &d, &shard, now, &mut ledger).expect("honest");
    }
    // The same seconds again (another epoch), or zero-length intervals, soon run out of room.
    let mut accepted = 0;
    for _ in 0..50 {
        let (r, d) = at(start, 0, 0, 1, 1000);
        if check_plausible(&r, &d, &shard, now, &mut ledger).is_ok() {
            accepted += 1;
        }
    }
    assert!(accepted <= 5, "{accepted} zero-length intervals accepted");
    let mut fresh = Ledger::default();
    // Faster than its connections can go.
    let (r, d) = at(start, 0, 1000, 1_000_000, 1000);
    assert!(matches!(
        check_plausible(&r, &d, &shard, now, &mut fresh),
        Err(IntakeError::FasterThanConnections { .. })
    ));
    // Past the shard's bound, however long the agent holds its end back.
    let (r, d) = at(start, 20_000, 1000, 10, 1000);
    assert!(matches!(
        check_plausible(&r, &d, &shard, start + 30_000, &mut fresh),
        Err(IntakeError::OutsideThePart { .. })
    ));
    let (r, d) = at(start, -3_600_000, 1000, 10, 1000);
    assert!(matches!(
        check_plausible(&r, &d, &shard, now, &mut fresh),
        Err(IntakeError::OutsideThePart { .. })
    ));
    let (mut r, d) = at(start, 0, 1000, 10, 1000);
    r.start_unix_ms = i64::MIN;
    r.duration_ms = u32::MAX;
    assert!(check_plausible(&r, &d, &shard, now, &mut fresh).is_err());
}
