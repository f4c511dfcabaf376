//! The `scrape` kind in a plan: what does monitoring cost at scrape interval A vs B? For each interval an agent
//! scrapes the target's metrics endpoint for `duration` (latency, bytes, series and samples), and, when a
//! `prometheus` binary is named or found on the agent, runs a real Prometheus at that interval and reads its own
//! figures (head series, samples appended, memory, CPU).

use super::ScenarioInput;
use super::errors::Issues;
use super::fields::{self, Field};
use super::ramp::{ProbeSpec, probe};
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// The most intervals a scenario compares.
pub const MAX_INTERVALS: usize = 8;
const MIN_INTERVAL: Duration = Duration::from_millis(100);
const MAX_INTERVAL: Duration = Duration::from_secs(600);
/// The longest a scenario measures at one interval.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_DURATION: Duration = Duration::from_secs(60);
/// The most copies of the target's series the relay serves.
pub const MAX_REPLICAS: u64 = 1_000;
/// Prometheus's own default scrape timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The file name a `prometheus` binary must have: the agent runs nothing else.
pub const PROMETHEUS_FILE_NAME: &str = "prometheus";

#[derive(Debug, Deserialize)]
pub(crate) struct RawScrape {
    pub target: Field<String>,
    pub intervals: Option<Spanned<Vec<Spanned<String>>>>,
    pub duration: Field<String>,
    pub settle: Field<String>,
    pub timeout: Field<String>,
    pub prometheus: Field<String>,
    pub replicas: Field<i64>,
    pub probe: Field<toml::Value>,
}

/// A `scrape` scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeSpec {
    /// The metrics endpoint, `http://HOST[:PORT]/PATH`.
    pub target: String,
    /// The scrape intervals compared, in the plan's order (the first is the baseline of `savings`).
    pub intervals: Vec<Duration>,
    /// How long each interval is measured.
    pub duration: Duration,
    /// With Prometheus: time between its first scrape and the measured window (the head fills, memory settles).
    /// Default: three times the interval, at least 5 s.
    pub settle: Option<Duration>,
    /// A scrape taking longer is given up (an error). Default: 10 s, and never above the interval.
    pub timeout: Option<Duration>,
    /// `prometheus` (looked up on the agent's PATH) or an absolute path to a file named `prometheus`; `None`: the
    /// Prometheus-side figures are not measured.
    pub prometheus: Option<String>,
    /// The target's series are served this many times (each copy with a `loadgrade_replica` label): scaled.
    pub replicas: u64,
    /// Reads the target's memory and CPU while it is scraped.
    pub probe: Option<ProbeSpec>,
}

impl ScrapeSpec {
    /// The scrape timeout at `interval`.
    pub fn timeout_at(&self, interval: Duration) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT).min(interval)
    }

    /// The settle time at `interval`.
    pub fn settle_at(&self, interval: Duration) -> Duration {
        self.settle
            .unwrap_or_else(|| (interval * 3).max(Duration::from_secs(5)))
    }

    /// The longest one interval's part may last on an agent: Prometheus's start (at most a minute) and first
    /// scrape (at most 30 s), settling, the window, the scrapes its two reads wait for, and a last scrape's
    /// timeout.
    pub fn part_bound(&self, interval: Duration) -> Duration {
        let timeout = self.timeout_at(interval);
        let scraping = self.duration + timeout + Duration::from_secs(5);
        if self.prometheus.is_none() {
            return scraping;
        }
        scraping
            + Duration::from_secs(90)
            + self.settle_at(interval)
            + interval.saturating_mul(5)
            + timeout.saturating_mul(2)
    }

    /// How long the plan says the scenario measures (settling and Prometheus's start-up come on top).
    pub fn planned_length(&self) -> Option<Duration> {
        self.duration
            .checked_mul(u32::try_from(self.intervals.len()).ok()?)
    }

    /// Checks again what validation checked, for a spec that came over the wire.
    pub fn check(&self) -> Result<(), super::Problem> {
        check_target(&self.target)?;
        if self.intervals.is_empty() || self.intervals.len() > MAX_INTERVALS {
            return Err(super::Problem::from(format!(
                "intervals must hold 1 to {MAX_INTERVALS} durations"
            )));
        }
        if let Some(bad) = self
            .intervals
            .iter()
            .find(|i| !(MIN_INTERVAL..=MAX_INTERVAL).contains(i))
        {
            return Err(super::Problem::from(format!(
                "interval {bad:?} is not within 100ms to 10m"
            )));
        }
        if !(1..=MAX_REPLICAS).contains(&self.replicas) {
            return Err(super::Problem::from(format!(
                "replicas must be 1 to {MAX_REPLICAS}"
            )));
        }
        if self.duration > MAX_DURATION || self.settle.is_some_and(|s| s > MAX_DURATION) {
            return Err(super::Problem::from(
                "duration and settle are at most 24h".to_owned(),
            ));
        }
        if let Some(p) = &self.prometheus {
            prometheus_problem(p).map_or(Ok(()), Err)?;
        }
        Ok(())
    }
}

/// Why `binary` may not be run as Prometheus, if it may not.
pub fn prometheus_problem(binary: &str) -> Option<String> {
    let named = binary == PROMETHEUS_FILE_NAME
        || (binary.starts_with('/')
            && std::path::Path::new(binary)
                .file_name()
                .is_some_and(|n| n == PROMETHEUS_FILE_NAME)
            && !binary.split('/').any(|part| part == ".."));
    (!named).then(|| {
        format!(
            "prometheus must be \"{PROMETHEUS_FILE_NAME}\" (found on the agent's PATH) or an absolute path to a file \
             named {PROMETHEUS_FILE_NAME}: an agent runs no other program"
        )
    })
}

/// The target URL: http:// with a host (scrapes over TLS are not supported yet).
fn check_target(url: &str) -> Result<(), super::Problem> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(super::Problem::from(
            "target must be a URL without spaces or control characters".to_owned(),
        ));
    }
    fields::check_url(url)?;
    if !url.starts_with("http://") {
        return Err(super::Problem::from(
            "target must be an http:// URL: scraping over https is not supported yet".to_owned(),
        ));
    }
    Ok(())
}

/// Why this scenario can never produce the figure at `metric`, if it cannot.
pub(crate) fn never_produced(spec: &ScrapeSpec, metric: &str) -> Option<String> {
    if let Some(rest) = metric.strip_prefix("intervals.") {
        let index: usize = rest.split('.').next()?.parse().ok()?;
        if index >= spec.intervals.len() {
            return Some(format!(
                "the scenario has {} interval(s): intervals.{index} does not exist (they count from 0)",
                spec.intervals.len()
            ));
        }
        if spec.probe.is_none() && rest.contains(".target_") && !rest.contains(".target_series") {
            return Some(
                "no probe in the scenario measures the target's memory and CPU".to_owned(),
            );
        }
        if spec.prometheus.is_none() && rest.contains(".prometheus_") {
            return Some("the scenario runs no Prometheus (`prometheus` is not set)".to_owned());
        }
    }
    if metric.starts_with("savings.") && spec.intervals.len() < 2 {
        return Some("savings compare two intervals and the scenario has one".to_owned());
    }
    if metric.starts_with("savings.prometheus_") && spec.prometheus.is_none() {
        return Some("the scenario runs no Prometheus (`prometheus` is not set)".to_owned());
    }
    None
}

/// Validates a `scrape` scenario.
pub(crate) fn validate(
    input: &ScenarioInput<'_, '_>,
    issues: &mut Issues<'_>,
) -> Option<ScrapeSpec> {
    let raw: RawScrape = input.table.part(issues)?;
    let (name, kind_span) = (input.name, &input.kind_span);
    let target = match &raw.target {
        None => {
            issues.at(
                kind_span.clone(),
                format!("scenario {name:?}: `target` (the metrics URL, http://HOST:PORT/metrics) is required"),
            );
            None
        }
        Some(t) => match check_target(t.get_ref()) {
            Ok(()) => Some(t.get_ref().clone()),
            Err(e) => {
                issues.at(t.span(), e);
                None
            }
        },
    };
    let intervals = match &raw.intervals {
        None => {
            issues.at(
                kind_span.clone(),
                format!("scenario {name:?}: `intervals` (the scrape intervals to compare, e.g. [\"15s\", \"30s\"]) is required"),
            );
            None
        }
        Some(list) => intervals(issues, list),
    };
    let duration = fields::duration(issues, raw.duration.as_ref()).unwrap_or(DEFAULT_DURATION);
    let settle = fields::duration(issues, raw.settle.as_ref());
    let timeout = fields::duration(issues, raw.timeout.as_ref());
    if duration > MAX_DURATION {
        issues.at(
            fields::span_or(raw.duration.as_ref(), kind_span),
            "duration (per interval) is at most 24h",
        );
    }
    if settle.is_some_and(|s| s > MAX_DURATION) {
        issues.at(
            fields::span_or(raw.settle.as_ref(), kind_span),
            "settle is at most 24h",
        );
    }
    if timeout.is_some_and(|t| t < Duration::from_millis(10)) {
        issues.at(
            fields::span_or(raw.timeout.as_ref(), kind_span),
            "timeout must be at least 10ms",
        );
    }
    if let Some(longest) = intervals.as_ref().and_then(|i| i.iter().max())
        && duration < longest.saturating_mul(3)
    {
        issues.at(
            fields::span_or(raw.duration.as_ref(), kind_span),
            format!(
                "duration ({duration:?}) must hold at least three scrapes at the longest interval ({longest:?}): at least {:?}",
                longest.saturating_mul(3),
            ),
        );
    }
    let prometheus = raw.prometheus.as_ref().and_then(|p| {
        let problem = prometheus_problem(p.get_ref());
        if let Some(problem) = &problem {
            issues.at(p.span(), problem.clone());
        }
        problem.is_none().then(|| p.get_ref().clone())
    });
    if raw.settle.is_some() && prometheus.is_none() && raw.prometheus.is_none() {
        issues.at(
            fields::span_or(raw.settle.as_ref(), kind_span),
            "settle is the time a Prometheus runs before it is measured: it needs `prometheus`",
        );
    }
    let replicas = match &raw.replicas {
        None => Some(1),
        Some(r) => match u64::try_from(*r.get_ref()) {
            Ok(v) if (1..=MAX_REPLICAS).contains(&v) => Some(v),
            _ => {
                issues.at(r.span(), format!("replicas must be 1 to {MAX_REPLICAS}"));
                None
            }
        },
    };
    let probe = raw.probe.as_ref().and_then(|p| probe(p, issues));
    Some(ScrapeSpec {
        target: target?,
        intervals: intervals?,
        duration,
        settle,
        timeout,
        prometheus,
        replicas: replicas?,
        probe,
    })
}

/// The intervals: 1 to [`MAX_INTERVALS`] distinct durations within 100ms to 10m.
fn intervals(
    issues: &mut Issues<'_>,
    list: &Spanned<Vec<Spanned<String>>>,
) -> Option<Vec<Duration>> {
    let values = list.get_ref();
    if values.is_empty() || values.len() > MAX_INTERVALS {
        issues.at(
            list.span(),
            format!("intervals must hold 1 to {MAX_INTERVALS} durations"),
        );
        return None;
    }
    let mut out = Vec::with_capacity(values.len());
    let mut ok = true;
    for v in values {
        match fields::duration_text(issues, v.get_ref(), v.span()) {
            Some(d) if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&d) => {
                issues.at(v.span(), "a scrape interval must be within 100ms to 10m");
                ok = false;
            }
            Some(d) if out.contains(&d) => {
                issues.at(v.span(), "each interval once");
                ok = false;
            }
            Some(d) => out.push(d),
            None => ok = false,
        }
    }
    ok.then_some(out)
}
