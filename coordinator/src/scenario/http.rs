//! The `http` kind: one part on every live agent; its metrics are the merged load's.

use crate::run::context::RunContext;
use crate::run::part::{Part, run_part};
use loadgrade_common::interval::IntervalReport;
use loadgrade_common::plan::{HttpSpec, Scenario};
use loadgrade_common::report::HttpMetrics;
use loadgrade_common::shard::PartId;

pub async fn run(
    ctx: &mut RunContext,
    scenario: &Scenario,
    spec: &HttpSpec,
) -> Option<HttpMetrics> {
    let part = Part::new(
        PartId {
            scenario: scenario.name.clone(),
            stage: 0,
        },
        format!("{:?}", scenario.name),
    );
    let metrics = run_part(ctx, &part, spec)
        .await
        .map(|aggregate| aggregate.metrics())?;
    only_timeouts(ctx, &part.label, &metrics);
    Some(metrics)
}

/// A load that got no response at all, every request given up at its timeout, measured nothing of the target: a
/// finding (INVALID), as a load that never connected is (the part finds that one: its histogram is empty, while
/// timeouts are in it). Attack round 2 on issue 20: 16 timeouts of 16 requests were graded PASS.
pub fn only_timeouts(ctx: &mut RunContext, label: &str, m: &HttpMetrics) {
    let e = &m.errors_by_class;
    let responses = m
        .requests
        .saturating_sub(e.total().saturating_sub(e.status_4xx + e.status_5xx));
    if responses == 0 && e.timeout > 0 {
        ctx.find(
            loadgrade_common::report::FindingKind::NoResponse,
            format!(
                "scenario {label}: no response arrived from the target: all {} requests were given up at their \
                 timeout ({} timeouts, {} connect errors, {} responses too large, {} other), so nothing about it \
                 was measured",
                m.requests, e.timeout, e.connect, e.response_too_large, e.other
            ),
        );
    }
}

/// The scenario's metrics from stored intervals alone (the coordinator restarted mid-run).
pub fn replay(
    scenario: &Scenario,
    spec: &HttpSpec,
    intervals: &[IntervalReport],
) -> Option<HttpMetrics> {
    let of_scenario: Vec<&IntervalReport> = intervals
        .iter()
        .filter(|i| i.part.scenario == scenario.name && i.part.stage == 0)
        .collect();
    (!of_scenario.is_empty()).then(|| merge_stored(spec, &of_scenario))
}

/// Merges stored intervals of one load, through the same intake checks as live ones.
pub fn merge_stored(spec: &HttpSpec, intervals: &[&IntervalReport]) -> HttpMetrics {
    super::replayed(spec.clone(), intervals.iter().copied()).metrics()
}
