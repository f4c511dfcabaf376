//! Merging interval reports: per scenario (exact HDR merge of every agent's intervals) and per agent (totals and
//! generator health). Warm-up intervals are stored but never merged here.

use loadgrade_common::histogram::{
    CodecError, LatencyHistogram, encode_base64, merge_encoded, new_histogram, us_to_ms,
};
use loadgrade_common::plan::{HttpSpec, LoadModel};
use loadgrade_common::report::{ErrorCounts, GeneratorReport, HttpMetrics, LatencyStats};
use loadgrade_proto::v1::{Counters, IntervalReport};
use std::collections::BTreeMap;

fn add_counters(total: &mut Counters, part: &Counters) {
    total.requests += part.requests;
    total.ok += part.ok;
    total.errors_connect += part.errors_connect;
    total.errors_timeout += part.errors_timeout;
    total.errors_status_4xx += part.errors_status_4xx;
    total.errors_status_5xx += part.errors_status_5xx;
    total.errors_other += part.errors_other;
    total.dropped += part.dropped;
    total.bytes_received += part.bytes_received;
}

pub fn error_counts(c: &Counters) -> ErrorCounts {
    ErrorCounts {
        connect: c.errors_connect,
        timeout: c.errors_timeout,
        status_4xx: c.errors_status_4xx,
        status_5xx: c.errors_status_5xx,
        other: c.errors_other,
    }
}

/// One scenario's merged figures.
pub struct ScenarioAggregate {
    spec: HttpSpec,
    corrected: LatencyHistogram,
    raw: LatencyHistogram,
    counters: Counters,
    /// Measured milliseconds per agent (sum of its intervals' lengths).
    measured_ms: BTreeMap<String, u64>,
}

impl ScenarioAggregate {
    pub fn new(spec: HttpSpec) -> Self {
        ScenarioAggregate {
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
        add_counters(&mut self.counters, &report.counters.unwrap_or_default());
        *self.measured_ms.entry(report.agent.clone()).or_default() += u64::from(report.duration_ms);
        Ok(())
    }

    pub fn requests(&self) -> u64 {
        self.counters.requests
    }

    pub fn errors(&self) -> u64 {
        error_counts(&self.counters).total()
    }

    /// The report's `metrics` for this scenario.
    pub fn metrics(&self) -> HttpMetrics {
        let open = self.spec.model == LoadModel::Open;
        let c = &self.counters;
        let errors = error_counts(c);
        let attempted = c.requests + c.dropped;
        let duration_s = self.measured_ms.values().copied().max().unwrap_or(0) as f64 / 1000.0;
        let b64 = |h: &LatencyHistogram| encode_base64(h).unwrap_or_default();
        HttpMetrics {
            model: self.spec.model.as_str().to_owned(),
            requests: c.requests,
            errors: errors.total(),
            errors_by_class: errors,
            dropped: c.dropped,
            success_rate: (attempted > 0)
                .then(|| (c.requests - errors.total().min(c.requests)) as f64 / attempted as f64),
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

/// One agent's totals over the run.
pub struct AgentAggregate {
    pub requests: u64,
    pub errors: u64,
    pub dropped: u64,
    pub backlog_max: u64,
    pub intervals: u64,
    cpu_sum: f64,
    cpu_samples: u64,
    lag: LatencyHistogram,
    connection_wait: LatencyHistogram,
}

impl Default for AgentAggregate {
    fn default() -> Self {
        AgentAggregate {
            requests: 0,
            errors: 0,
            dropped: 0,
            backlog_max: 0,
            intervals: 0,
            cpu_sum: 0.0,
            cpu_samples: 0,
            lag: new_histogram(),
            connection_wait: new_histogram(),
        }
    }
}

impl AgentAggregate {
    /// Counts any interval (warm-up included) for health; requests only from measured ones.
    pub fn add(&mut self, report: &IntervalReport) -> Result<(), CodecError> {
        self.intervals += 1;
        let health = report.health.clone().unwrap_or_default();
        if health.cpu_percent >= 0.0 {
            self.cpu_sum += health.cpu_percent;
            self.cpu_samples += 1;
        }
        merge_encoded(&mut self.lag, &health.hdr_lag)?;
        merge_encoded(&mut self.connection_wait, &health.hdr_connection_wait)?;
        self.backlog_max = self.backlog_max.max(health.backlog_max);
        if !report.warmup {
            let c = report.counters.unwrap_or_default();
            self.requests += c.requests;
            self.errors += error_counts(&c).total();
            self.dropped += c.dropped;
        }
        Ok(())
    }

    pub fn generator(&self, open_model_used: bool) -> GeneratorReport {
        let mut not_measured = BTreeMap::new();
        let cpu_percent = if self.cpu_samples > 0 {
            Some(self.cpu_sum / self.cpu_samples as f64)
        } else {
            not_measured.insert(
                "cpu_percent".to_owned(),
                "the agent could not read /proc/self/stat".to_owned(),
            );
            None
        };
        let lag_ms_p99 = if self.lag.is_empty() {
            not_measured.insert(
                "lag_ms_p99".to_owned(),
                "no lag samples arrived from this agent".to_owned(),
            );
            None
        } else {
            Some(us_to_ms(self.lag.value_at_quantile(0.99)))
        };
        let connection_wait_ms_p99 = if !open_model_used {
            not_measured.insert(
                "connection_wait_ms_p99".to_owned(),
                "closed model only: requests never wait for a connection".to_owned(),
            );
            None
        } else if self.connection_wait.is_empty() {
            not_measured.insert(
                "connection_wait_ms_p99".to_owned(),
                "no open-model arrivals were sent".to_owned(),
            );
            None
        } else {
            Some(us_to_ms(self.connection_wait.value_at_quantile(0.99)))
        };
        GeneratorReport {
            cpu_percent,
            lag_ms_p99,
            connection_wait_ms_p99,
            dropped: self.dropped,
            backlog_max: self.backlog_max,
            not_measured,
        }
    }
}
