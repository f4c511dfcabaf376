//! What the coordinator takes in from an agent: every interval is checked before it is stored or merged, and its
//! histograms are decoded once, within bounds. An interval that fails a check is refused (a finding), never merged:
//! counters beyond any real rate, histograms that do not decode or claim more than they carry, and a latency
//! histogram whose count disagrees with the counters (every response and every timeout is one value).

use loadgrade_common::histogram::{CodecError, LatencyHistogram, decode};
use loadgrade_common::interval::IntervalReport;

mod plausible;
#[cfg(test)]
mod tests;

pub use plausible::{Ledger, ShardBounds, check_plausible};

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
