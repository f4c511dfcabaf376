//! Merging the interval reports of an HTTP load (an `http` scenario or one ramp step): an exact HDR merge of every
//! agent's measured intervals, and their counters. Warm-up intervals are stored but never merged here.

use loadgrade_common::histogram::{
    CodecError, LatencyHistogram, encode_base64, merge_encoded, new_histogram,
};
use loadgrade_common::interval::{Counters, IntervalReport};
use loadgrade_common::plan::{HttpSpec, LoadModel};
use loadgrade_common::report::{HttpMetrics, LatencyStats};
use std::collections::BTreeMap;

/// One HTTP load's merged figures.
pub struct HttpAggregate {
    spec: HttpSpec,
    corrected: LatencyHistogram,
    raw: LatencyHistogram,
    counters: Counters,
    /// Measured milliseconds per agent (sum of its intervals' lengths).
    measured_ms: BTreeMap<String, u64>,
}

impl HttpAggregate {
    pub fn new(spec: HttpSpec) -> Self {
        HttpAggregate {
            spec,
            corrected: new_histogram(),
            raw: new_histogram(),
            counters: Counters::default(),
            measured_ms: BTreeMap::new(),
        }
    }

    /// Merges one measured interval.
    pub fn add(&mut self, report: &IntervalReport) -> Result<(), CodecError> {
        merge_encoded(&mut self.corrected, &report.hdr_corrected)?;
        merge_encoded(&mut self.raw, &report.hdr_raw)?;
        self.counters.add(&report.counters);
        *self.measured_ms.entry(report.agent.clone()).or_default() += u64::from(report.duration_ms);
        Ok(())
    }

    pub fn requests(&self) -> u64 {
        self.counters.requests
    }

    pub fn errors(&self) -> u64 {
        self.counters.errors.total()
    }

    /// The report's `metrics` for this scenario.
    pub fn metrics(&self) -> HttpMetrics {
        let open = self.spec.model == LoadModel::Open;
        let c = &self.counters;
        let errors = c.errors;
        let attempted = c.requests.saturating_add(c.dropped);
        let duration_s = self.measured_ms.values().copied().max().unwrap_or(0) as f64 / 1000.0;
        let b64 = |h: &LatencyHistogram| encode_base64(h).unwrap_or_default();
        HttpMetrics {
            model: self.spec.model,
            requests: c.requests,
            errors: errors.total(),
            errors_by_class: errors,
            dropped: c.dropped,
            success_rate: (attempted > 0)
                .then(|| c.requests.saturating_sub(errors.total()) as f64 / attempted as f64),
            throughput_rps: (duration_s > 0.0).then(|| c.requests as f64 / duration_s),
            duration_s,
            bytes_received: c.bytes_received,
            latency_ms: LatencyStats::from_histogram(&self.corrected),
            latency_raw_ms: if open {
                LatencyStats::from_histogram(&self.raw)
            } else {
                None
            },
            hdr: b64(&self.corrected),
            hdr_raw: open.then(|| b64(&self.raw)),
        }
    }

    /// The merged corrected histogram (tests compare its count with the agents' counters).
    pub fn histogram(&self) -> &LatencyHistogram {
        &self.corrected
    }
}
