//! What the coordinator takes in from an agent: every interval is checked before it is stored or merged, and its
//! histograms are decoded once, within bounds. An interval that fails a check is refused (a finding), never merged:
//! counters beyond any real rate, histograms that do not decode or claim more than they carry, and a latency
//! histogram whose count disagrees with the counters (every response and every timeout is one value).

use loadgrade_common::histogram::{CodecError, LatencyHistogram, decode};
use loadgrade_common::interval::IntervalReport;

/// Most of any one counter in one interval of one agent: far beyond any real rate (a billion requests a second).
pub const MAX_PER_INTERVAL: u64 = 1 << 30;
/// Longest interval accepted, milliseconds (intervals are a second; the last one of a shard waits for requests in
/// flight, up to their timeout).
pub const MAX_INTERVAL_MS: u32 = 3_600_000;

/// Most bytes received in one interval of one agent (a terabyte a second).
pub const MAX_BYTES_PER_INTERVAL: u64 = 1 << 40;
/// How far an interval may lie outside its part's time (clock offset error, a final interval's wait), ms.
pub const TIME_SLACK_MS: i64 = 10_000;

/// An interval's histograms, decoded.
pub struct Decoded {
    pub corrected: LatencyHistogram,
    pub raw: LatencyHistogram,
    pub send_late: LatencyHistogram,
    pub lag: LatencyHistogram,
    pub connection_wait: LatencyHistogram,
    pub connect: LatencyHistogram,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("counter {name} is {value}, beyond any real interval ({MAX_PER_INTERVAL} at most)")]
    Counter { name: &'static str, value: u64 },
    #[error("the interval lasts {0} ms ({MAX_INTERVAL_MS} at most)")]
    Duration(u32),
    #[error(
        "{requests} requests but {outcomes} outcomes (successes plus errors by class): every request has one"
    )]
    Outcomes { requests: u64, outcomes: u64 },
    #[error("{0} bytes received, beyond any real interval ({MAX_BYTES_PER_INTERVAL} at most)")]
    Bytes(u64),
    #[error(
        "the interval lies outside its part's time (it starts {start_ms} ms after the part, {now_ms} ms have passed)"
    )]
    OutsideThePart { start_ms: i64, now_ms: i64 },
    #[error(
        "the agent's intervals add up to {claimed_ms} ms of the part, more than the {elapsed_ms} ms that have passed"
    )]
    MoreTimeThanPassed { claimed_ms: u64, elapsed_ms: i64 },
    #[error("histogram {which}: {source}")]
    Histogram {
        which: &'static str,
        source: CodecError,
    },
    #[error(
        "the {which} latency histogram holds {histogram} values but the counters say {counted} responses and \
         timeouts"
    )]
    Inconsistent {
        which: &'static str,
        histogram: u64,
        counted: u64,
    },
}

/// Checks `report` and decodes its histograms.
pub fn check(report: &IntervalReport) -> Result<Decoded, IntakeError> {
    let c = &report.counters;
    let e = &c.errors;
    for (name, value) in [
        ("requests", c.requests),
        ("ok", c.ok),
        ("errors_connect", e.connect),
        ("errors_timeout", e.timeout),
        ("errors_status_4xx", e.status_4xx),
        ("errors_status_5xx", e.status_5xx),
        ("errors_other", e.other),
        ("dropped", c.dropped),
        ("resent", c.resent),
        ("discarded_at_stop", c.discarded_at_stop),
        ("arrivals", report.health.arrivals),
        ("backlog_max", report.health.backlog_max),
        ("emfile", report.health.emfile),
        ("eaddrnotavail", report.health.eaddrnotavail),
    ] {
        if value > MAX_PER_INTERVAL {
            return Err(IntakeError::Counter { name, value });
        }
    }
    if report.duration_ms > MAX_INTERVAL_MS {
        return Err(IntakeError::Duration(report.duration_ms));
    }
    if c.bytes_received > MAX_BYTES_PER_INTERVAL {
        return Err(IntakeError::Bytes(c.bytes_received));
    }
    // Each below 2^30, so no sum here can wrap.
    let outcomes = c.ok + e.total();
    if outcomes != c.requests {
        return Err(IntakeError::Outcomes {
            requests: c.requests,
            outcomes,
        });
    }
    let decode = |which: &'static str, bytes: &[u8]| {
        decode(bytes).map_err(|source| IntakeError::Histogram { which, source })
    };
    let h = &report.health;
    let decoded = Decoded {
        corrected: decode("corrected", &report.hdr_corrected)?,
        raw: decode("raw", &report.hdr_raw)?,
        send_late: decode("send_late", &h.hdr_send_late)?,
        lag: decode("lag", &h.hdr_lag)?,
        connection_wait: decode("connection_wait", &h.hdr_connection_wait)?,
        connect: decode("connect", &h.hdr_connect)?,
    };
    // Every response (whatever its status) and every timeout is one latency value; nothing else is.
    let counted = c.ok + e.status_4xx + e.status_5xx + e.timeout;
    if decoded.corrected.len() != counted {
        return Err(IntakeError::Inconsistent {
            which: "corrected",
            histogram: decoded.corrected.len(),
            counted,
        });
    }
    if !decoded.raw.is_empty() && decoded.raw.len() != counted {
        return Err(IntakeError::Inconsistent {
            which: "raw",
            histogram: decoded.raw.len(),
            counted,
        });
    }
    Ok(decoded)
}

/// Checks an interval against its part's time: it lies between the part's start and now (within
/// [`TIME_SLACK_MS`]), and with it the agent's intervals in this part add up to no more time than has passed. An agent
/// cannot send the same figures twice under another epoch, or a second's figures many times. Adds the interval's
/// length to `claimed_ms` when it passes.
pub fn check_time(
    report: &IntervalReport,
    part_start_unix_ms: i64,
    now_unix_ms: i64,
    claimed_ms: &mut u64,
) -> Result<(), IntakeError> {
    let start_ms = report.start_unix_ms.saturating_sub(part_start_unix_ms);
    let end_ms = start_ms.saturating_add(i64::from(report.duration_ms));
    let now_ms = now_unix_ms.saturating_sub(part_start_unix_ms);
    if start_ms < -TIME_SLACK_MS || end_ms > now_ms.saturating_add(TIME_SLACK_MS) {
        return Err(IntakeError::OutsideThePart { start_ms, now_ms });
    }
    let claimed = claimed_ms.saturating_add(u64::from(report.duration_ms));
    let allowed = now_ms.saturating_add(TIME_SLACK_MS).max(0);
    if claimed > allowed.unsigned_abs() {
        return Err(IntakeError::MoreTimeThanPassed {
            claimed_ms: claimed,
            elapsed_ms: now_ms,
        });
    }
    *claimed_ms = claimed;
    Ok(())
}

#[cfg(test)]
mod tests {
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

    /// Regression (issue 9): an agent sent 23,540 one-second intervals for a 2 s shard (25 trillion requests), and the
    /// same seq again under other epochs.
    #[test]
    fn an_agent_cannot_claim_more_time_than_has_passed() {
        let start = 1_000_000;
        let mut claimed = 0;
        let at = |offset: i64| IntervalReport {
            start_unix_ms: start + offset,
            duration_ms: 1000,
            ..IntervalReport::default()
        };
        // Two honest seconds, 2.5 s after the start.
        for offset in [0, 1000] {
            check_time(&at(offset), start, start + 2500, &mut claimed).expect("honest");
        }
        // The same two seconds again (another epoch) fit the slack; beyond it they are refused.
        let mut refused = 0;
        for _ in 0..20 {
            if check_time(&at(0), start, start + 2500, &mut claimed).is_err() {
                refused += 1;
            }
        }
        assert!(claimed <= 12_500, "{claimed}");
        assert!(refused >= 10);
        let mut fresh = 0;
        assert!(matches!(
            check_time(&at(-3_600_000), start, start + 2500, &mut fresh),
            Err(IntakeError::OutsideThePart { .. })
        ));
        assert!(matches!(
            check_time(&at(60_000), start, start + 2500, &mut fresh),
            Err(IntakeError::OutsideThePart { .. })
        ));
        let absurd = IntervalReport {
            start_unix_ms: i64::MIN,
            duration_ms: u32::MAX,
            ..IntervalReport::default()
        };
        assert!(check_time(&absurd, start, start + 2500, &mut fresh).is_err());
    }
}
