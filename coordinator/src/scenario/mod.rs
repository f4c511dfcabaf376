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
