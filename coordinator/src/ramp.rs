//! Runs a `ramp` scenario: one closed-model step after another across the agents, the target probed during each,
//! then the capacity analysis (cliff, saturation, autoscale point, memory at 90 % of capacity, USL fit).

use crate::RunState;
use crate::analysis::{StepFigures, find_cliff, fit_usl, interpolate, saturation};
use crate::probe::{Sampler, StepProbe};
use crate::registry::{AgentInfo, RunInput};
use crate::runner::{Part, RunContext, run_shards};
use loadgrade_common::plan::{RampSpec, Scenario};
use loadgrade_common::report::{RampMetrics, RampStep, StepLatency};
use std::collections::BTreeMap;
use tokio::sync::mpsc;

/// Share of max_concurrency at which memory is read for the headroom.
const MEMORY_POINT: f64 = 0.9;

pub(crate) async fn run(
    ctx: &mut RunContext,
    agents: &[AgentInfo],
    scenario: &Scenario,
    ramp: &RampSpec,
    memory_budget: Option<u64>,
    route: &mut mpsc::UnboundedReceiver<RunInput>,
) -> RampMetrics {
    let mut steps: Vec<RampStep> = Vec::new();
    let mut figures: Vec<StepFigures> = Vec::new();
    let mut probe_errors: Vec<String> = Vec::new();
    for (index, &concurrency) in ramp.steps.iter().enumerate() {
        if ctx.cancel.is_cancelled() {
            break;
        }
        let part = Part {
            scenario: &scenario.name,
            stage: index as u32,
            label: format!(
                "{:?} step {} of {} ({concurrency} connections)",
                scenario.name,
                index + 1,
                ramp.steps.len()
            ),
        };
        let registry = ctx.coordinator.registry.clone();
        let sampler = ramp.probe.clone().map(|p| Sampler::start(p, registry));
        let aggregate = run_shards(ctx, agents, &part, &ramp.step(index), route).await;
        let probe = match sampler {
            Some(s) => s.finish().await,
            None => StepProbe::default(),
        };
        if let Some(e) = &probe.error {
            probe_errors.push(format!("step {concurrency}: {e}"));
        }
        let metrics = aggregate.map(|a| a.metrics());
        let latency = metrics
            .as_ref()
            .and_then(|m| m.latency_ms)
            .map(|l| StepLatency {
                p50: l.p50,
                p95: l.p95,
                p99: l.p99,
            });
        let (requests, errors) = metrics.as_ref().map_or((0, 0), |m| (m.requests, m.errors));
        let step = RampStep {
            concurrency,
            requests,
            errors,
            throughput_rps: metrics.as_ref().and_then(|m| m.throughput_rps),
            latency_ms: latency,
            error_rate: (requests > 0).then(|| errors as f64 / requests as f64),
            // A step whose probe failed even once is not measured: a partial max would understate it.
            target_memory_bytes: if probe.error.is_none() {
                probe.memory_max()
            } else {
                None
            },
            target_memory_mean_bytes: if probe.error.is_none() {
                probe.memory_mean()
            } else {
                None
            },
            target_cpu_percent: if probe.error.is_none() {
                probe.cpu_percent()
            } else {
                None
            },
            probe_samples: probe.samples.len() as u64,
            past_cliff: false,
        };
        figures.push(StepFigures {
            concurrency,
            throughput: step.throughput_rps,
            p95_ms: latency.map(|l| l.p95),
            error_rate: step.error_rate,
        });
        ctx.event(
            RunState::Running,
            format!(
                "{}: {} req/s, p95 {} ms, errors {}",
                part.label,
                step.throughput_rps
                    .map_or("-".into(), |x| format!("{x:.0}")),
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

/// The capacity figures from the measured steps.
fn analyse(
    mut steps: Vec<RampStep>,
    figures: &[StepFigures],
    ramp: &RampSpec,
    memory_budget: Option<u64>,
    probe_errors: Vec<String>,
) -> RampMetrics {
    let mut not_measured = BTreeMap::new();
    let cliff = find_cliff(figures, &ramp.cliff);
    if let Some((i, _)) = &cliff {
        steps[*i].past_cliff = true;
    }
    let max_concurrency = match &cliff {
        Some((0, _)) => None,
        Some((i, _)) => Some(steps[i - 1].concurrency),
        None => steps.last().map(|s| s.concurrency),
    };
    if max_concurrency.is_none() {
        not_measured.insert(
            "max_concurrency".to_owned(),
            "the first step was already past the cliff".to_owned(),
        );
    }
    let memory_points: Vec<(u64, f64)> = steps
        .iter()
        .filter_map(|s| Some((s.concurrency, s.target_memory_bytes? as f64)))
        .collect();
    let memory_reason = match (&ramp.probe, probe_errors.first()) {
        (None, _) => Some("no probe in the plan".to_owned()),
        (Some(_), Some(e)) => Some(format!("the probe failed: {e}")),
        (Some(_), None) if memory_points.is_empty() => Some("the probe took no sample".to_owned()),
        _ => None,
    };
    let memory_at_90pct_bytes = match (&memory_reason, max_concurrency) {
        (None, Some(max)) => {
            interpolate(&memory_points, MEMORY_POINT * max as f64).map(|m| m as u64)
        }
        _ => None,
    };
    if let Some(reason) = &memory_reason {
        not_measured.insert("target_memory_bytes".to_owned(), reason.clone());
        not_measured.insert("memory_at_90pct_bytes".to_owned(), reason.clone());
    }
    let memory_headroom = match (memory_at_90pct_bytes, memory_budget) {
        (Some(m), Some(budget)) if budget > 0 => Some(1.0 - m as f64 / budget as f64),
        (_, None) => {
            not_measured.insert(
                "memory_headroom".to_owned(),
                "no [budget] memory in the plan".to_owned(),
            );
            None
        }
        _ => {
            not_measured.insert(
                "memory_headroom".to_owned(),
                memory_reason
                    .clone()
                    .unwrap_or_else(|| "no memory at 90 % of capacity".to_owned()),
            );
            None
        }
    };
    let saturation_concurrency = saturation(figures);
    if saturation_concurrency.is_none() {
        not_measured.insert(
            "saturation_concurrency".to_owned(),
            "throughput was still growing by more than 5 % at the last step".to_owned(),
        );
    }
    let usl_points: Vec<(f64, f64)> = steps
        .iter()
        .filter_map(|s| Some((s.concurrency as f64, s.throughput_rps?)))
        .collect();
    let usl = fit_usl(&usl_points);
    if usl.is_none() {
        not_measured.insert(
            "usl".to_owned(),
            "fewer than 3 steps with a measured throughput".to_owned(),
        );
    }
    RampMetrics {
        requests: steps.iter().map(|s| s.requests).sum(),
        errors: steps.iter().map(|s| s.errors).sum(),
        cliff_concurrency: cliff.as_ref().map(|(i, _)| steps[*i].concurrency),
        cliff_reason: cliff.map(|(_, reason)| reason),
        max_concurrency,
        saturation_concurrency,
        peak_throughput_rps: steps
            .iter()
            .filter_map(|s| s.throughput_rps)
            .reduce(f64::max),
        autoscale_trigger: max_concurrency.map(|m| ramp.autoscale_at * m as f64),
        memory_at_90pct_bytes,
        memory_budget_bytes: memory_budget,
        memory_headroom,
        usl,
        not_measured,
        steps,
    }
}
