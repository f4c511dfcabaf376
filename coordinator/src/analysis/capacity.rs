//! The capacity figures of a ramp from its measured steps: cliff, capacity (max concurrency), saturation,
//! autoscale point, memory at 90 % of capacity against the budget, and the USL fit. A pure function of the steps.

use super::{StepFigures, find_cliff, fit_usl, interpolate, saturation};
use loadgrade_common::plan::RampSpec;
use loadgrade_common::report::{RampMetrics, RampStep, or_not_measured};
use std::collections::BTreeMap;

/// Share of max_concurrency at which memory is read for the headroom.
const MEMORY_POINT: f64 = 0.9;

/// The capacity figures from the measured steps.
pub fn analyse(
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
    let max_concurrency = or_not_measured(
        &mut not_measured,
        "max_concurrency",
        max_concurrency,
        || "the first step was already past the cliff".to_owned(),
    );
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
        _ => or_not_measured(
            &mut not_measured,
            "memory_headroom",
            None,
            || match memory_budget {
                None => "no [budget] memory in the plan".to_owned(),
                Some(_) => memory_reason
                    .clone()
                    .unwrap_or_else(|| "no memory at 90 % of capacity".to_owned()),
            },
        ),
    };
    let saturation_concurrency = or_not_measured(
        &mut not_measured,
        "saturation_concurrency",
        saturation(figures),
        || "throughput was still growing by more than 5 % at the last step".to_owned(),
    );
    let usl_points: Vec<(f64, f64)> = steps
        .iter()
        .filter_map(|s| Some((s.concurrency as f64, s.throughput_rps?)))
        .collect();
    let usl = or_not_measured(&mut not_measured, "usl", fit_usl(&usl_points), || {
        "fewer than 3 steps with a measured throughput".to_owned()
    });
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
