//! The coordinator's part of each scenario kind: how a kind is run over the agents (in one part or several) and
//! how its merged figures become its metrics. One module per kind; [`run`] is the one match that ties them in.

pub mod http;
pub mod ramp;

use crate::run::context::RunContext;
use loadgrade_common::plan::{Plan, Scenario, ScenarioSpec};
use loadgrade_common::report::ScenarioMetrics;

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
    }
}
