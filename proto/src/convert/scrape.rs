//! A scrape shard on the wire and back, and a scrape interval's figures.

use super::ConvertError;
use super::shard::{bounded_millis, millis};
use crate::v1;
use loadgrade_common::interval::{PrometheusFigures, ScrapeFigures};
use loadgrade_common::plan::scrape::ScrapeSpec;
use loadgrade_common::shard::ScrapeShard;
use std::time::Duration;

impl From<ScrapeShard> for v1::ScrapeShard {
    fn from(s: ScrapeShard) -> Self {
        let spec = s.spec;
        v1::ScrapeShard {
            target: spec.target,
            intervals_ms: spec.intervals.iter().map(|i| millis(*i)).collect(),
            interval_index: u32::try_from(s.interval).unwrap_or(u32::MAX),
            duration_ms: millis(spec.duration),
            settle_ms: spec.settle.map_or(0, millis),
            timeout_ms: spec.timeout.map_or(0, millis),
            prometheus: spec.prometheus.unwrap_or_default(),
            replicas: spec.replicas,
        }
    }
}

impl TryFrom<v1::ScrapeShard> for ScrapeShard {
    type Error = ConvertError;

    fn try_from(s: v1::ScrapeShard) -> Result<Self, ConvertError> {
        let invalid = |why: String| ConvertError::Invalid {
            field: "ScrapeShard",
            why,
        };
        let optional = |field: &'static str, ms: u64| -> Result<Option<Duration>, ConvertError> {
            (ms > 0).then(|| bounded_millis(field, ms)).transpose()
        };
        let intervals = s
            .intervals_ms
            .iter()
            .take(loadgrade_common::plan::scrape::MAX_INTERVALS + 1)
            .map(|ms| bounded_millis("ScrapeShard.intervals_ms", *ms))
            .collect::<Result<Vec<_>, _>>()?;
        let spec = ScrapeSpec {
            target: s.target,
            intervals,
            duration: bounded_millis("ScrapeShard.duration_ms", s.duration_ms)?,
            settle: optional("ScrapeShard.settle_ms", s.settle_ms)?,
            timeout: optional("ScrapeShard.timeout_ms", s.timeout_ms)?,
            prometheus: Some(s.prometheus).filter(|p| !p.is_empty()),
            replicas: s.replicas,
            // The target is probed by the coordinator, never by the scraping agent.
            probe: None,
        };
        spec.check().map_err(|p| invalid(p.to_string()))?;
        let interval = usize::try_from(s.interval_index).unwrap_or(usize::MAX);
        if interval >= spec.intervals.len() {
            return Err(invalid(format!(
                "interval {interval} of {} intervals",
                spec.intervals.len()
            )));
        }
        if spec.duration.is_zero() {
            return Err(invalid("a duration of 0".to_owned()));
        }
        Ok(ScrapeShard { spec, interval })
    }
}

impl From<ScrapeFigures> for v1::ScrapeFigures {
    fn from(f: ScrapeFigures) -> Self {
        v1::ScrapeFigures {
            target_series: f.target_series,
            series: f.series,
            samples: f.samples,
            prometheus: f.prometheus.map(|p| v1::PrometheusFigures {
                version: p.version,
                window_ms: p.window_ms,
                head_series: p.head_series,
                samples_appended_per_s: p.samples_appended_per_s,
                rss_bytes: p.rss_bytes,
                cpu_seconds: p.cpu_seconds,
                heap_inuse_bytes: p.heap_inuse_bytes,
            }),
            prometheus_not_measured: f.prometheus_not_measured,
            window_ms: f.window_ms,
        }
    }
}

impl From<v1::ScrapeFigures> for ScrapeFigures {
    fn from(f: v1::ScrapeFigures) -> Self {
        // Free text from the agent: bounded and made safe to print.
        ScrapeFigures {
            target_series: f.target_series,
            series: f.series,
            samples: f.samples,
            prometheus: f.prometheus.map(|p| PrometheusFigures {
                version: super::agent_text(p.version),
                window_ms: p.window_ms,
                head_series: p.head_series,
                samples_appended_per_s: p.samples_appended_per_s,
                rss_bytes: p.rss_bytes,
                cpu_seconds: p.cpu_seconds,
                heap_inuse_bytes: p.heap_inuse_bytes,
            }),
            prometheus_not_measured: super::agent_text(f.prometheus_not_measured),
            window_ms: f.window_ms,
        }
    }
}
