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
pub const TIME_SLACK_MS: i64 = 2_000;
/// Most requests one agent does in a millisecond (ten million a second).
pub const MAX_REQUESTS_PER_MS: u64 = 10_000;
/// Most bytes one agent receives in a millisecond (100 GiB a second).
pub const MAX_BYTES_PER_MS: u64 = 100 << 20;

/// An interval's histograms, decoded.
pub struct Decoded {
    pub corrected: LatencyHistogram,
    pub raw: LatencyHistogram,
    pub send_late: LatencyHistogram,
    pub lag: LatencyHistogram,
    pub connection_wait: LatencyHistogram,
    pub connect: LatencyHistogram,
    /// A cache shard's hits and misses.
    pub cache: Option<DecodedCache>,
    /// A pagination shard's queries by depth.
    pub pagination: Option<DecodedPagination>,
}

/// A pagination interval's figures, decoded and checked.
pub struct DecodedPagination {
    /// Per page: the OFFSET and keyset histograms and the rows a page returned.
    pub depths: Vec<(u64, LatencyHistogram, LatencyHistogram, u64)>,
    pub seeded_rows: u64,
    pub table: Option<loadgrade_common::interval::TableFacts>,
}

/// Most depths in one interval (a plan has at most 64).
const MAX_DEPTHS: usize = 64;

/// A cache interval's figures, decoded and checked.
pub struct DecodedCache {
    pub hits: u64,
    pub misses: u64,
    pub hit: LatencyHistogram,
    pub miss: LatencyHistogram,
    pub lookup: LatencyHistogram,
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
    #[error("{name} is {value} in {duration_ms} ms: faster than any agent")]
    Rate {
        name: &'static str,
        value: u64,
        duration_ms: u32,
    },
    #[error(
        "{hits} hits and {misses} misses, but {ok} successful lookups and histograms of {hit_values} and \
         {miss_values} values: every successful lookup is one hit or one miss"
    )]
    CacheCounts {
        hits: u64,
        misses: u64,
        ok: u64,
        hit_values: u64,
        miss_values: u64,
    },
    #[error(
        "pagination figures: {depths} depths (at most {MAX_DEPTHS}, each page once) holding {values} values, but          {counted} timed queries; or a page, a row count or the seeded rows beyond any plan"
    )]
    PaginationCounts {
        depths: usize,
        values: u64,
        counted: u64,
    },
    #[error(
        "scrape figures beyond any scrape: {series} series ({target_series} at the target), {samples} samples in \
         {ok} good scrapes, or a Prometheus figure that is negative, not a number or over a day's window"
    )]
    ScrapeFigures {
        series: u64,
        target_series: u64,
        samples: u64,
        ok: u64,
    },
    #[error("the agent was not assigned this part")]
    NotAssigned,
    #[error(
        "the agent sent more intervals for this part than it has run seconds ({allowed} at most so far)"
    )]
    TooManyIntervals { allowed: u64 },
    #[error(
        "{responses} responses in the interval, but {connections} connections taking at least {fastest_us} µs each \
         complete at most {most}"
    )]
    FasterThanConnections {
        responses: u64,
        most: u64,
        connections: u64,
        fastest_us: u64,
    },
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
        ("errors_response_too_large", e.response_too_large),
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
    // However short the interval, no agent does more than ten million requests or 100 GiB a second.
    let ms = u64::from(report.duration_ms) + 1;
    for (name, value, per_ms) in [
        ("requests", c.requests, MAX_REQUESTS_PER_MS),
        ("bytes_received", c.bytes_received, MAX_BYTES_PER_MS),
    ] {
        if value > ms.saturating_mul(per_ms) {
            return Err(IntakeError::Rate {
                name,
                value,
                duration_ms: report.duration_ms,
            });
        }
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
        cache: match &report.cache {
            None => None,
            Some(cache) => {
                let decoded = DecodedCache {
                    hits: cache.hits,
                    misses: cache.misses,
                    hit: decode("cache hit", &cache.hdr_hit)?,
                    miss: decode("cache miss", &cache.hdr_miss)?,
                    lookup: decode("cache lookup", &cache.hdr_lookup)?,
                };
                // Every successful lookup (a response below 400) is one hit or one miss, each one value.
                let consistent = cache.hits <= MAX_PER_INTERVAL
                    && cache.misses <= MAX_PER_INTERVAL
                    && cache.hits + cache.misses == c.ok
                    && decoded.hit.len() == cache.hits
                    && decoded.miss.len() == cache.misses;
                if !consistent {
                    return Err(IntakeError::CacheCounts {
                        hits: cache.hits,
                        misses: cache.misses,
                        ok: c.ok,
                        hit_values: decoded.hit.len(),
                        miss_values: decoded.miss.len(),
                    });
                }
                Some(decoded)
            }
        },
        pagination: match &report.pagination {
            None => None,
            Some(p) => Some(check_pagination(p, c.ok + e.timeout, &decode)?),
        },
    };
    if let Some(f) = &report.scrape {
        check_scrape(f, c.ok)?;
    }
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

/// Decodes one named histogram of an interval.
type Decode<'a> = dyn Fn(&'static str, &[u8]) -> Result<LatencyHistogram, IntakeError> + 'a;

/// A pagination interval: each page once, its histograms decoded, and their values exactly the timed queries
/// (each success and each timeout is one value at its depth).
fn check_pagination(
    p: &loadgrade_common::interval::PaginationFigures,
    counted: u64,
    decode: &Decode<'_>,
) -> Result<DecodedPagination, IntakeError> {
    use loadgrade_common::plan::pagination::MAX_SEED_ROWS;
    let mut depths = Vec::with_capacity(p.depths.len());
    let mut values = 0u64;
    let mut pages = std::collections::BTreeSet::new();
    let mut plausible = p.depths.len() <= MAX_DEPTHS && p.seeded_rows <= MAX_SEED_ROWS;
    for d in &p.depths {
        let offset = decode("pagination offset", &d.hdr_offset)?;
        let cursor = decode("pagination cursor", &d.hdr_cursor)?;
        values = values
            .saturating_add(offset.len())
            .saturating_add(cursor.len());
        plausible &= pages.insert(d.page) && d.page >= 1 && d.rows_per_page <= 10_000;
        depths.push((d.page, offset, cursor, d.rows_per_page));
    }
    if !plausible || values != counted {
        return Err(IntakeError::PaginationCounts {
            depths: p.depths.len(),
            values,
            counted,
        });
    }
    Ok(DecodedPagination {
        depths,
        seeded_rows: p.seeded_rows,
        table: p.table.clone(),
    })
}

/// The most series one scrape may serve: a thousand copies of a million-series target.
const MAX_SCRAPE_SERIES: u64 = 1_000_000_000;

/// A scrape interval: series within bounds (the target's no more than served), samples no more than `ok` good
/// scrapes can hold, and Prometheus figures that are real quantities.
fn check_scrape(f: &loadgrade_common::interval::ScrapeFigures, ok: u64) -> Result<(), IntakeError> {
    let prometheus_ok = f.prometheus.as_ref().is_none_or(|p| {
        p.window_ms <= 86_400_000
            && p.head_series <= MAX_SCRAPE_SERIES.saturating_mul(2)
            && [p.samples_appended_per_s, p.cpu_seconds]
                .iter()
                .all(|v| v.is_finite() && *v >= 0.0 && *v < 1e12)
    });
    let plausible = f.window_ms <= 86_400_000
        && f.series <= MAX_SCRAPE_SERIES
        && f.target_series <= f.series
        && f.samples <= ok.saturating_mul(MAX_SCRAPE_SERIES)
        && (ok > 0 || f.samples == 0)
        && prometheus_ok;
    if !plausible {
        return Err(IntakeError::ScrapeFigures {
            series: f.series,
            target_series: f.target_series,
            samples: f.samples,
            ok,
        });
    }
    Ok(())
}

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
}
