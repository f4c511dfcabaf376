//! The `scrape` kind: one part per interval, one after another, each on one agent (the target probed during it
//! when the plan has a probe). An interval's figures come from that part alone: scrape latency from its merged
//! histogram, series and samples from the agent's counts, the Prometheus side from the agent's reads of its own
//! Prometheus. Savings compare the first interval with the last; projections extend measured rates, marked so.

use crate::report::aggregate::HttpAggregate;
use crate::run::context::RunContext;
use crate::run::part::{Part, run_part_as};
use crate::run::probe::{Sampler, StepProbe};
use loadgrade_common::histogram::encode_base64;
use loadgrade_common::interval::IntervalReport;
use loadgrade_common::plan::scrape::ScrapeSpec;
use loadgrade_common::plan::{Arrivals, HttpRequest, HttpSpec, LoadModel, Scenario};
use loadgrade_common::report::LatencyStats;
use loadgrade_common::report::scrape::{
    Basis, IntervalMetrics, Projection, ScrapeMetrics, savings,
};
use loadgrade_common::run::RunState;
use loadgrade_common::shard::{PartId, ScrapeShard, Work};
use std::collections::BTreeMap;
use std::time::Duration;

/// Bytes a sample takes on disk, the upper end of the 1–2 bytes Prometheus's storage documentation gives
/// (prometheus.io/docs/prometheus/latest/storage, "Operational aspects").
const DISK_BYTES_PER_SAMPLE: f64 = 2.0;
const SECONDS_PER_DAY: f64 = 86_400.0;

pub async fn run(
    ctx: &mut RunContext,
    scenario: &Scenario,
    spec: &ScrapeSpec,
) -> Option<ScrapeMetrics> {
    let mut intervals = Vec::with_capacity(spec.intervals.len());
    let mut version = None;
    for (index, &interval) in spec.intervals.iter().enumerate() {
        if ctx.cancel.is_cancelled() {
            break;
        }
        let part = Part {
            id: PartId {
                scenario: scenario.name.clone(),
                stage: u32::try_from(index).unwrap_or(u32::MAX),
            },
            label: format!("{:?} at {interval:?}", scenario.name),
            max_agents: Some(1),
            what: Some(format!(
                "scraping {} every {interval:?} for {:?}{}",
                shown(&spec.target),
                spec.duration,
                match &spec.prometheus {
                    Some(_) => " with a Prometheus (after settling)",
                    None => "",
                }
            )),
            timed: true,
        };
        let shard = ScrapeShard {
            spec: spec.clone(),
            interval: index,
        };
        let work = move |_: loadgrade_common::shard::HttpShard| Work::Scrape(shard.clone());
        let registry = ctx.deps.registry.clone();
        let sampler = spec
            .probe
            .clone()
            .map(|p| Sampler::start(p, registry, ctx.deps.outbound.clone()));
        let aggregate = run_part_as(ctx, &part, &load(spec, interval), &work).await;
        let probe = match sampler {
            Some(s) => Some(s.finish().await),
            None => None,
        };
        let figures = interval_metrics(spec, interval, aggregate.as_ref(), probe.as_ref());
        ctx.event(RunState::Running, progress(&part.label, &figures));
        intervals.push(figures);
        version = version.or_else(|| aggregate.as_ref().and_then(prometheus_version));
    }
    (!intervals.is_empty()).then(|| metrics(spec, intervals, version))
}

/// The scenario's metrics from stored intervals alone (the coordinator restarted mid-run; probe samples are not
/// stored).
pub fn replay(
    scenario: &Scenario,
    spec: &ScrapeSpec,
    intervals: &[IntervalReport],
) -> Option<ScrapeMetrics> {
    let mut measured = Vec::new();
    let mut version = None;
    for (index, &interval) in spec.intervals.iter().enumerate() {
        let stage = u32::try_from(index).unwrap_or(u32::MAX);
        let of_part: Vec<&IntervalReport> = intervals
            .iter()
            .filter(|i| i.part.scenario == scenario.name && i.part.stage == stage)
            .collect();
        if of_part.is_empty() {
            break;
        }
        let aggregate = super::replayed(load(spec, interval), of_part);
        measured.push(interval_metrics(spec, interval, Some(&aggregate), None));
        version = version.or_else(|| prometheus_version(&aggregate));
    }
    (!measured.is_empty()).then(|| metrics(spec, measured, version))
}

/// The run machinery's view of an interval's part: one connection, scrapes given up at the timeout, bounded by
/// what the agent itself stops at.
fn load(spec: &ScrapeSpec, interval: Duration) -> HttpSpec {
    HttpSpec {
        request: HttpRequest {
            url: shown(&spec.target),
            method: "GET".to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            http2: false,
            ca_file: None,
            timeout: spec.timeout_at(interval),
            idempotent: true,
            max_response_header_bytes:
                loadgrade_common::plan::request::DEFAULT_RESPONSE_HEADER_BYTES,
        },
        model: LoadModel::Closed,
        rate: 0,
        connections: 1,
        duration: Some(spec.part_bound(interval)),
        stages: Vec::new(),
        arrivals: Arrivals::Even,
        requests: None,
        warmup: Duration::ZERO,
        max_backlog: 0,
    }
}

/// The version of the Prometheus a part ran, when it ran one.
fn prometheus_version(aggregate: &HttpAggregate) -> Option<String> {
    aggregate
        .scrape()
        .prometheus
        .as_ref()
        .map(|p| p.version.clone())
}

/// The target without its query.
fn shown(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or_default().to_owned()
}

/// One interval's figures from its part (`None`: it did not run) and its probe.
fn interval_metrics(
    spec: &ScrapeSpec,
    interval: Duration,
    aggregate: Option<&HttpAggregate>,
    probe: Option<&StepProbe>,
) -> IntervalMetrics {
    let mut not_measured = BTreeMap::new();
    let sums = aggregate.map(HttpAggregate::scrape);
    let counters = aggregate.map(|a| *a.counters()).unwrap_or_default();
    let mut prometheus = sums.and_then(|s| s.prometheus.clone());
    // Prometheus drew a sample from every good scrape only: one failed in the window, and its rate and head
    // are short by an unknown amount.
    let failed = counters.errors.total();
    if prometheus.is_some() && failed > 0 {
        prometheus = None;
        not_measured.insert(
            "prometheus".to_owned(),
            format!(
                "{failed} of {} scrapes in the window failed, so Prometheus missed their samples (see the errors)",
                counters.requests
            ),
        );
    }
    // Prometheus drove the scrapes and failed inside the window: how long they ran is unknown.
    let aborted = spec.prometheus.is_some()
        && prometheus.is_none()
        && sums.is_some_and(|s| s.window_ms == 0)
        && counters.requests > 0;
    // Without Prometheus the agent scrapes for `duration`; an interval with no scrape at all has no window.
    let window_s = match (&prometheus, sums.map_or(0, |s| s.window_ms)) {
        _ if aborted => 0.0,
        (Some(p), _) => p.window_ms as f64 / 1000.0,
        // The agent's own account of the window (a Prometheus that failed midway ends it early).
        (None, ms) if ms > 0 => ms as f64 / 1000.0,
        (None, _) if counters.requests > 0 => spec.duration.as_secs_f64(),
        (None, _) => 0.0,
    };
    let good = counters.ok > 0;
    let series = sums.and_then(|s| s.series).filter(|_| good);
    if series.is_none() {
        not_measured.insert(
            "series".to_owned(),
            "no scrape of the target succeeded in the window (see the findings)".to_owned(),
        );
    }
    if aborted {
        not_measured.insert(
            "samples_per_s".to_owned(),
            "Prometheus failed inside the window: the scrapes it drove give no rate".to_owned(),
        );
    }
    if prometheus.is_none() && !not_measured.contains_key("prometheus") {
        let why = sums
            .and_then(|s| s.prometheus_not_measured.clone())
            .filter(|_| spec.prometheus.is_some())
            .or_else(|| {
                spec.prometheus
                    .is_none()
                    .then(|| "the plan names no prometheus binary".to_owned())
            })
            .unwrap_or_else(|| {
                if aggregate.is_none() {
                    "the interval did not run".to_owned()
                } else {
                    "the agent sent no Prometheus figures (see the findings)".to_owned()
                }
            });
        not_measured.insert("prometheus".to_owned(), why);
    }
    let probed = probe.filter(|p| p.error.is_none() && !p.samples.is_empty());
    match probe {
        None => {
            not_measured.insert(
                "target".to_owned(),
                "no probe in the scenario measures the target's memory and CPU".to_owned(),
            );
        }
        Some(p) if probed.is_none() => {
            not_measured.insert(
                "target".to_owned(),
                p.error
                    .clone()
                    .unwrap_or_else(|| "the probe took no sample".to_owned()),
            );
        }
        Some(_) => {}
    }
    let histogram = aggregate.map(HttpAggregate::histogram);
    IntervalMetrics {
        interval_s: interval.as_secs_f64(),
        window_s,
        scrapes: counters.requests,
        errors: counters.errors.total(),
        series,
        target_series: sums.and_then(|s| s.target_series).filter(|_| good),
        samples_per_s: sums
            .filter(|_| good && window_s > 0.0 && !aborted)
            .map(|s| s.samples as f64 / window_s),
        scrape_ms: histogram.and_then(LatencyStats::from_histogram),
        scrape_bytes: good.then(|| counters.bytes_received / counters.ok),
        target_cpu_percent: probed.and_then(StepProbe::cpu_percent),
        target_memory_bytes: probed.and_then(StepProbe::memory_max),
        prometheus_head_series: prometheus.as_ref().map(|p| p.head_series),
        prometheus_samples_per_s: prometheus.as_ref().map(|p| p.samples_appended_per_s),
        prometheus_rss_bytes: prometheus.as_ref().map(|p| p.rss_bytes),
        prometheus_cpu_seconds: prometheus.as_ref().map(|p| p.cpu_seconds),
        prometheus_cpu_percent: prometheus
            .as_ref()
            .filter(|p| p.window_ms > 0)
            .map(|p| 100.0 * p.cpu_seconds / (p.window_ms as f64 / 1000.0)),
        prometheus_heap_inuse_bytes: prometheus.as_ref().map(|p| p.heap_inuse_bytes),
        hdr: histogram
            .and_then(|h| encode_base64(h).ok())
            .unwrap_or_default(),
        not_measured,
    }
}

/// The progress line after an interval.
fn progress(label: &str, m: &IntervalMetrics) -> String {
    let mut line = format!(
        "{label}: {} scrapes ({} errors), {} series, p95 {} ms",
        m.scrapes,
        m.errors,
        m.series.map_or("-".into(), |s| s.to_string()),
        m.scrape_ms.map_or("-".into(), |l| format!("{:.1}", l.p95)),
    );
    match (m.prometheus_rss_bytes, m.prometheus_samples_per_s) {
        (Some(rss), Some(rate)) => line.push_str(&format!(
            "; Prometheus {:.1} MiB RSS, {rate:.0} samples/s",
            rss as f64 / 1_048_576.0
        )),
        _ => line.push_str("; Prometheus not measured"),
    }
    line
}

/// The scenario's metrics from its intervals' figures.
fn metrics(
    spec: &ScrapeSpec,
    intervals: Vec<IntervalMetrics>,
    prometheus: Option<String>,
) -> ScrapeMetrics {
    let mut not_measured = BTreeMap::new();
    let savings = match (intervals.first(), intervals.last()) {
        (Some(first), Some(last)) if intervals.len() > 1 => {
            let mut found = savings(first, last);
            // CPU time ticks in 10 ms: under a tenth of a second at either end, the comparison is noise.
            let coarse = |i: &IntervalMetrics| i.prometheus_cpu_seconds.is_some_and(|s| s < 0.1);
            if (coarse(first) || coarse(last)) && found.remove("prometheus_cpu_percent").is_some() {
                not_measured.insert(
                    "savings.prometheus_cpu_percent".to_owned(),
                    "Prometheus used under 0.1 CPU-second in a window, and CPU time is counted in 10 ms ticks: \
                     run longer windows to compare it"
                        .to_owned(),
                );
            }
            if found.is_empty() {
                not_measured.insert(
                    "savings".to_owned(),
                    "no figure was measured at both the first and the last interval".to_owned(),
                );
            }
            found
        }
        _ => {
            not_measured.insert(
                "savings".to_owned(),
                if spec.intervals.len() < 2 {
                    "one interval: nothing to compare".to_owned()
                } else {
                    "not every interval ran".to_owned()
                },
            );
            BTreeMap::new()
        }
    };
    ScrapeMetrics {
        target: shown(&spec.target),
        mode: "sequential".to_owned(),
        replicas: spec.replicas,
        scaled: spec.replicas > 1,
        prometheus,
        projections: projections(&intervals),
        intervals,
        savings,
        not_measured,
    }
}

/// Per interval: samples a day and the disk they need, from the measured rate (Prometheus's when measured, else
/// the samples served), never presented as measured.
fn projections(intervals: &[IntervalMetrics]) -> Vec<Projection> {
    let mut out = Vec::new();
    for i in intervals {
        let (rate, source) = match (i.prometheus_samples_per_s, i.samples_per_s) {
            (Some(r), _) => (r, "prometheus_samples_per_s"),
            (None, Some(r)) => (r, "samples_per_s (served at the target)"),
            (None, None) => continue,
        };
        let per_day = rate * SECONDS_PER_DAY;
        out.push(Projection {
            interval_s: i.interval_s,
            figure: "samples_per_day".to_owned(),
            value: per_day,
            formula: format!("{source} {rate:.1} × 86,400 s"),
            basis: Basis::Projected,
        });
        out.push(Projection {
            interval_s: i.interval_s,
            figure: "disk_bytes_per_day".to_owned(),
            value: per_day * DISK_BYTES_PER_SAMPLE,
            formula: format!(
                "samples_per_day {per_day:.0} × {DISK_BYTES_PER_SAMPLE} bytes a sample (the upper end of the 1–2 \
                 bytes Prometheus's storage documentation gives; not measured here)"
            ),
            basis: Basis::Projected,
        });
    }
    out
}
