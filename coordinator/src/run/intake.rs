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
}
