//! The `http` kind: one part on every live agent; its metrics are the merged load's.

use crate::run::context::RunContext;
use crate::run::part::{Part, run_part};
use loadgrade_common::plan::{HttpSpec, Scenario};
use loadgrade_common::report::HttpMetrics;
use loadgrade_common::shard::PartId;

pub async fn run(
    ctx: &mut RunContext,
    scenario: &Scenario,
    spec: &HttpSpec,
) -> Option<HttpMetrics> {
    let part = Part {
        id: PartId {
            scenario: scenario.name.clone(),
            stage: 0,
        },
        label: format!("{:?}", scenario.name),
    };
    run_part(ctx, &part, spec)
        .await
        .map(|aggregate| aggregate.metrics())
}
