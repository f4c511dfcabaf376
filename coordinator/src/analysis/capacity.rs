//! The capacity figures of a ramp from its measured steps: cliff, capacity (max concurrency), saturation,
//! autoscale point, memory at 90 % of capacity against the budget, and the USL fit. A pure function of the steps.

use super::{StepFigures, find_cliff, fit_usl, interpolate, saturation};
use loadgrade_common::plan::RampSpec;
use loadgrade_common::report::{RampMetrics, RampStep, or_not_measured};
use std::collections::BTreeMap;

/// Share of max_concurrency at which memory is read for the headroom.
const MEMORY_POINT: f64 = 0.9;

/// The capacity figures from the measured steps. Capacity is judged on goodput and on the steps that held (those
/// before the cliff). A figure missing because of what was measured (no cliff up to `stop`, goodput still growing,
/// nothing held) goes to `absent`; one missing because a measurement failed (the probe) to `not_measured`.
pub fn analyse(
    mut steps: Vec<RampStep>,
    figures: &[StepFigures],
    ramp: &RampSpec,
    memory_budget: Option<u64>,
    probe_errors: Vec<String>,
) -> RampMetrics {
    let mut not_measured = BTreeMap::new();
    let mut absent = BTreeMap::new();
    let cliff = find_cliff(figures, &ramp.cliff);
    if let Some((i, _)) = &cliff {
        steps[*i].past_cliff = true;
    }
    // The steps that held: every step before the first one past the cliff.
    let held = cliff.as_ref().map_or(steps.len(), |(i, _)| *i);
    let held_figures = &figures[..held.min(figures.len())];
    let last = steps.last().map(|s| s.concurrency);
    let max_concurrency = or_not_measured(
        &mut not_measured,
        "max_concurrency",
        last.map(|_| held.checked_sub(1).map_or(0, |i| steps[i].concurrency)),
        || "no step ran".to_owned(),
    );
    let cliff_concurrency = cliff.as_ref().map(|(i, _)| steps[*i].concurrency);
    let cliff_reason = match (&cliff, last) {
        (Some((_, reason)), _) => Some(reason.clone()),
        (None, Some(last)) => Some(format!(
            "no step broke a cliff rule up to {last} connections"
        )),
        (None, None) => None,
    };
    if cliff.is_none()
        && let Some(reason) = &cliff_reason
    {
        absent.insert("cliff_concurrency".to_owned(), reason.clone());
    }
    let nothing_held = || "no step held: the first was already past the cliff".to_owned();
    let peak_throughput_rps = held_figures
        .iter()
        .filter_map(|f| f.goodput)
        .reduce(f64::max);
    if peak_throughput_rps.is_none() && held == 0 && last.is_some() {
        absent.insert("peak_throughput_rps".to_owned(), nothing_held());
    }
    let saturation_concurrency = saturation(held_figures);
    if saturation_concurrency.is_none() && last.is_some() {
        absent.insert(
            "saturation_concurrency".to_owned(),
            if held == 0 {
                nothing_held()
            } else {
                "goodput was still growing by more than 5 % at the last step that held".to_owned()
            },
        );
    }
    let usl_points: Vec<(f64, f64)> = held_figures
        .iter()
        .filter_map(|f| Some((f.concurrency as f64, f.goodput?)))
        .collect();
    let usl = fit_usl(&usl_points);
    if usl.is_none() && last.is_some() {
        absent.insert(
            "usl".to_owned(),
            format!(
                "fewer than 3 steps held with a measured goodput ({})",
                usl_points.len()
            ),
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
    if let Some(reason) = &memory_reason {
        not_measured.insert("target_memory_bytes".to_owned(), reason.clone());
        not_measured.insert("memory_at_90pct_bytes".to_owned(), reason.clone());
    }
    let memory_at_90pct_bytes = match (&memory_reason, max_concurrency) {
        (None, Some(0)) => {
            absent.insert("memory_at_90pct_bytes".to_owned(), nothing_held());
            None
        }
        (None, Some(max)) => {
            interpolate(&memory_points, MEMORY_POINT * max as f64).map(|m| m as u64)
        }
        _ => None,
    };
    let memory_headroom = match (memory_at_90pct_bytes, memory_budget) {
        (Some(m), Some(budget)) if budget > 0 => Some(1.0 - m as f64 / budget as f64),
        _ if absent.contains_key("memory_at_90pct_bytes") => {
            absent.insert("memory_headroom".to_owned(), nothing_held());
            None
        }
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
    RampMetrics {
        requests: steps.iter().map(|s| s.requests).sum(),
        errors: steps.iter().map(|s| s.errors).sum(),
        settle_s: ramp.settle.as_secs_f64(),
        cliff_found: cliff.is_some(),
        cliff_concurrency,
        cliff_reason,
        max_concurrency,
        saturation_concurrency,
        peak_throughput_rps,
        autoscale_trigger: max_concurrency.map(|m| ramp.autoscale_at * m as f64),
        memory_at_90pct_bytes,
        memory_budget_bytes: memory_budget,
        memory_headroom,
        usl,
        not_measured,
        absent,
        steps,
    }
}
