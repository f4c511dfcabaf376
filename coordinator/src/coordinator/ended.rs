//! Runs that ended without their task finishing them: the report stored for a run whose task failed or panicked
//! (INVALID), and at start the runs a stopped coordinator left in progress, ended as INTERRUPTED with a report of
//! every interval stored until then.

use super::Coordinator;
use crate::report::RunOutcome;
use crate::report::render;
use crate::store::StoreError;
use loadgrade_common::plan::Plan;
use loadgrade_common::report::{Finding, FindingKind};
use loadgrade_common::run::RunState;

impl Coordinator {
    /// Ends every run the store holds as in progress though no task of this process runs it (the coordinator
    /// stopped mid-run: a restart or a crash): each becomes INTERRUPTED, with a report of every interval stored
    /// until then. Nothing is started again. Returns the runs ended.
    pub async fn recover_unfinished(&self) -> Result<Vec<String>, StoreError> {
        let mut ended = Vec::new();
        for run in self.store.unfinished_runs().await? {
            if self.lock_runs().contains_key(&run.id) {
                continue;
            }
            let intervals = self.store.intervals_of(&run.id).await?;
            let finding = Finding::new(
                FindingKind::Interrupted,
                format!(
                    "the coordinator stopped while this run was in progress (a restart or a crash): the report \
                     holds the {} intervals stored until then (any still on their way or in an agent's spool at \
                     the stop are not in it), and nothing was run again",
                    intervals.len()
                ),
            );
            match Plan::parse(&run.plan_file, &run.plan_toml) {
                Ok(plan) => {
                    self.store_ended_run(
                        &run.id,
                        &plan,
                        run.started_at,
                        vec![finding],
                        &intervals,
                        RunState::Interrupted,
                    )
                    .await?;
                }
                Err(e) => {
                    tracing::error!(run = %run.id, "an interrupted run's plan no longer parses ({e}); marked interrupted without a report");
                    self.store.set_state(&run.id, RunState::Interrupted).await?;
                }
            }
            tracing::warn!(run = %run.id, "interrupted by a coordinator restart: its report holds what was stored");
            ended.push(run.id);
        }
        Ok(ended)
    }

    /// Stores the report of a run that ended without its task finishing it: the figures rebuilt from `intervals`.
    pub(super) async fn store_ended_run(
        &self,
        id: &str,
        plan: &Plan,
        started_at: String,
        findings: Vec<Finding>,
        intervals: &[loadgrade_common::interval::IntervalReport],
        state: RunState,
    ) -> Result<(), StoreError> {
        let outcome = RunOutcome {
            run_id: id.to_owned(),
            started_at,
            scenarios: plan
                .scenarios
                .iter()
                .map(|s| (s, crate::scenario::replay(s, plan, intervals)))
                .collect(),
            findings,
            agents: Vec::new(),
        };
        let report = crate::report::assemble(plan, outcome);
        let json = render::json(&report).unwrap_or_default();
        let markdown = render::markdown(&report);
        self.store
            .finish_run(
                id,
                state,
                report.verdict,
                &report.finished_at,
                &json,
                &markdown,
            )
            .await
    }
}
