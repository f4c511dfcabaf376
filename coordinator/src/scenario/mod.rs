//! The coordinator's part of each scenario kind: how a kind is run over the agents (in one part or several) and
//! how its merged figures become its metrics. One module per kind; [`run`] is the one match that ties them in.

pub mod cache;
pub mod http;
pub mod pagination;
pub mod ramp;
pub mod scrape;

use crate::run::context::RunContext;
use loadgrade_common::interval::IntervalReport;
use loadgrade_common::plan::{Plan, Scenario, ScenarioSpec};
use loadgrade_common::report::ScenarioMetrics;

/// The scenario's metrics from its stored intervals alone (the coordinator restarted mid-run); `None` when none
/// was stored.
pub fn replay(
    scenario: &Scenario,
    plan: &Plan,
    intervals: &[IntervalReport],
) -> Option<ScenarioMetrics> {
    match &scenario.spec {
        ScenarioSpec::Http(spec) => {
            http::replay(scenario, spec, intervals).map(ScenarioMetrics::Http)
        }
        ScenarioSpec::Cache(spec) => {
            cache::replay(scenario, spec, intervals).map(ScenarioMetrics::Cache)
        }
        ScenarioSpec::Pagination(spec) => {
            pagination::replay(scenario, spec, intervals).map(ScenarioMetrics::Pagination)
        }
        ScenarioSpec::Scrape(spec) => {
            scrape::replay(scenario, spec, intervals).map(ScenarioMetrics::Scrape)
        }
        ScenarioSpec::Ramp(spec) => {
            let any = intervals.iter().any(|i| i.part.scenario == scenario.name);
            any.then(|| {
                ScenarioMetrics::Ramp(ramp::replay(scenario, spec, plan.memory_budget, intervals))
            })
        }
    }
}

/// Runs `scenario`; `None` when it could not run at all.
pub async fn run(
    ctx: &mut RunContext,
    scenario: &Scenario,
    plan: &Plan,
) -> Option<ScenarioMetrics> {
    match &scenario.spec {
        ScenarioSpec::Http(spec) => http::run(ctx, scenario, spec)
            .await
            .map(ScenarioMetrics::Http),
        ScenarioSpec::Ramp(spec) => Some(ScenarioMetrics::Ramp(
            ramp::run(ctx, scenario, spec, plan.memory_budget).await,
        )),
        ScenarioSpec::Cache(spec) => cache::run(ctx, scenario, spec)
            .await
            .map(ScenarioMetrics::Cache),
        ScenarioSpec::Pagination(spec) => pagination::run(ctx, scenario, spec)
            .await
            .map(ScenarioMetrics::Pagination),
        ScenarioSpec::Scrape(spec) => scrape::run(ctx, scenario, spec)
            .await
            .map(ScenarioMetrics::Scrape),
    }
}

/// Stored intervals of one load merged again, through the same intake checks as live ones (warm-up ones counted
/// apart). A stored interval passed intake when it arrived, so one that no longer decodes or merges means a damaged
/// store: it is left out and said in the log with its agent and sequence, never dropped silently.
pub fn replayed<'a>(
    spec: loadgrade_common::plan::HttpSpec,
    intervals: impl IntoIterator<Item = &'a IntervalReport>,
) -> crate::report::aggregate::HttpAggregate {
    let mut aggregate = crate::report::aggregate::HttpAggregate::new(spec);
    for report in intervals {
        if report.warmup {
            aggregate.add_warmup(report);
            continue;
        }
        let merged = crate::run::intake::check(report)
            .map_err(|e| e.to_string())
            .and_then(|decoded| aggregate.add(report, &decoded).map_err(|e| e.to_string()));
        if let Err(why) = merged {
            tracing::warn!(
                run = %report.run_id, agent = %report.agent, seq = report.seq,
                "a stored interval was left out of the rebuilt figures: {why}"
            );
        }
    }
    aggregate
}
