//! The `ramp` kind: one closed-model step after another across the agents (a part each), the target probed during
//! each, then the capacity analysis (in [`crate::analysis::capacity`]).

use crate::analysis::capacity::analyse;
use crate::analysis::{StepFigures, find_cliff};
use crate::run::context::RunContext;
use crate::run::part::{Part, run_part};
use crate::run::probe::{Sampler, StepProbe};
use loadgrade_common::interval::IntervalReport;
use loadgrade_common::plan::{RampSpec, Scenario};
use loadgrade_common::report::{HttpMetrics, RampMetrics, RampStep, StepLatency};
use loadgrade_common::run::RunState;
use loadgrade_common::shard::PartId;

pub async fn run(
    ctx: &mut RunContext,
    scenario: &Scenario,
    ramp: &RampSpec,
    memory_budget: Option<u64>,
) -> RampMetrics {
    let mut steps: Vec<RampStep> = Vec::new();
    let mut figures: Vec<StepFigures> = Vec::new();
    let mut probe_errors: Vec<String> = Vec::new();
    for (index, &concurrency) in ramp.steps.iter().enumerate() {
        if ctx.cancel.is_cancelled() {
            break;
        }
        let part = Part::new(
            PartId {
                scenario: scenario.name.clone(),
                stage: u32::try_from(index).unwrap_or(u32::MAX),
            },
            format!(
                "{:?} step {} of {} ({concurrency} connections)",
                scenario.name,
                index + 1,
                ramp.steps.len()
            ),
        );
        let registry = ctx.deps.registry.clone();
        let sampler = ramp
            .probe
            .clone()
            .map(|p| Sampler::start(p, registry, ctx.deps.outbound.clone()));
        let aggregate = run_part(ctx, &part, &ramp.step(index)).await;
        let probe = match sampler {
            Some(s) => s.finish().await,
            None => StepProbe::default(),
        };
        if let Some(e) = &probe.error {
            probe_errors.push(format!("step {concurrency}: {e}"));
        }
        let (step, figure) = step(concurrency, aggregate.map(|a| a.metrics()).as_ref(), &probe);
        let (latency, errors) = (step.latency_ms, step.errors);
        figures.push(figure);
        ctx.event(
            RunState::Running,
            format!(
                "{}: {} successful req/s, p95 {} ms, errors {}",
                part.label,
                step.success_rps.map_or("-".into(), |x| format!("{x:.0}")),
                latency.map_or("-".into(), |l| format!("{:.1}", l.p95)),
                errors
            ),
        );
        steps.push(step);
        if ramp.stop_at_cliff && find_cliff(&figures, &ramp.cliff).is_some() {
            ctx.event(
                RunState::Running,
                format!(
                    "{:?}: past the cliff, stopping the ramp (stop_at_cliff)",
                    scenario.name
                ),
            );
            break;
        }
    }
    analyse(steps, &figures, ramp, memory_budget, probe_errors)
}

/// A step's figures from its merged load and its probe samples.
fn step(
    concurrency: u64,
    metrics: Option<&HttpMetrics>,
    probe: &StepProbe,
) -> (RampStep, StepFigures) {
    let latency = metrics.and_then(|m| m.latency_ms).map(|l| StepLatency {
        p50: l.p50,
        p95: l.p95,
        p99: l.p99,
    });
    let (requests, errors) = metrics.map_or((0, 0), |m| (m.requests, m.errors));
    // A step whose probe failed even once is not measured: a partial max would understate it.
    let probed = probe.error.is_none();
    let step = RampStep {
        concurrency,
        requests,
        errors,
        throughput_rps: metrics.and_then(|m| m.throughput_rps),
        success_rps: metrics.and_then(|m| m.success_rps),
        completed_after_window: metrics.map_or(0, |m| m.completed_after_window),
        settle_requests: metrics.map_or(0, |m| m.warmup_requests),
        latency_ms: latency,
        error_rate: (requests > 0).then(|| errors as f64 / requests as f64),
        target_memory_bytes: probe.memory_max().filter(|_| probed),
        target_memory_mean_bytes: probe.memory_mean().filter(|_| probed),
        target_cpu_percent: probe.cpu_percent().filter(|_| probed),
        probe_samples: probe.samples.len() as u64,
        past_cliff: false,
        series: metrics.map(|m| m.series.clone()).unwrap_or_default(),
    };
    let figure = StepFigures {
        concurrency,
        goodput: step.success_rps,
        p95_ms: latency.map(|l| l.p95),
        error_rate: step.error_rate,
    };
    (step, figure)
}

/// The ramp's metrics from stored intervals alone (the coordinator restarted mid-run): each stage's merged load,
/// with no probe samples (they are not stored).
pub fn replay(
    scenario: &Scenario,
    ramp: &RampSpec,
    memory_budget: Option<u64>,
    intervals: &[IntervalReport],
) -> RampMetrics {
    let mut steps = Vec::new();
    let mut figures = Vec::new();
    for (index, &concurrency) in ramp.steps.iter().enumerate() {
        let stage = u32::try_from(index).unwrap_or(u32::MAX);
        let of_step: Vec<&IntervalReport> = intervals
            .iter()
            .filter(|i| i.part.scenario == scenario.name && i.part.stage == stage)
            .collect();
        if of_step.is_empty() {
            break;
        }
        let metrics = super::http::merge_stored(&ramp.step(index), &of_step);
        let (step, figure) = step(concurrency, Some(&metrics), &StepProbe::default());
        steps.push(step);
        figures.push(figure);
    }
    let no_samples =
        vec!["probe samples are not stored, and the coordinator restarted mid-run".to_owned()];
    let probe_errors = if ramp.probe.is_some() {
        no_samples
    } else {
        Vec::new()
    };
    analyse(steps, &figures, ramp, memory_budget, probe_errors)
}
