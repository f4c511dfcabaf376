//! Runs that ended without their task finishing them: the report stored for a run whose task failed or panicked
//! (INVALID), and at start the runs a stopped coordinator left in progress: each waits for its agents' spooled
//! intervals ([`super::late`]) when it had assigned shards, and ends INTERRUPTED with a report of every interval
//! stored.

use super::Coordinator;
use super::late::LateRun;
use crate::report::agent_health::AgentHealth;
use crate::report::render;
use crate::report::{AgentOutcome, RunOutcome};
use crate::store::StoreError;
use loadgrade_common::grade::Verdict;
use loadgrade_common::interval::IntervalReport;
use loadgrade_common::plan::{LoadModel, Plan, ScenarioSpec};
use loadgrade_common::report::{Finding, FindingKind};
use loadgrade_common::run::RunState;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// A run a stopped coordinator left in progress, as this start found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub id: String,
    /// `Some`: it waits at most this long for its agents' spooled intervals before it ends; `None`: it ended now.
    pub waiting: Option<Duration>,
}

/// The agents a rebuilt report lists: those assigned a shard, and those of them that did not come back.
pub(super) struct RunAgents<'a> {
    pub assigned: &'a BTreeSet<String>,
    pub lost: &'a BTreeSet<String>,
}

/// How a run ended without its task finishing it: its state, what was found, and its agents.
pub(super) struct Ending<'a> {
    pub state: RunState,
    pub findings: Vec<Finding>,
    pub agents: RunAgents<'a>,
}

impl Coordinator {
    /// Ends every run the store holds as in progress though no task of this process runs it (the coordinator
    /// stopped mid-run: a restart or a crash). A run that had assigned shards first waits for its agents' spooled
    /// intervals; every one becomes INTERRUPTED, with a report of every interval stored. Nothing is run again.
    pub async fn recover_unfinished(self: &Arc<Self>) -> Result<Vec<Recovered>, StoreError> {
        let mut recovered = Vec::new();
        for run in self.store.unfinished_runs().await? {
            if self.lock_runs().contains_key(&run.id) {
                continue;
            }
            let plan = match loadgrade_common::plan::Plan::parse(&run.plan_file, &run.plan_toml) {
                Ok(plan) => plan,
                Err(e) => {
                    tracing::error!(run = %run.id, "an interrupted run's plan no longer parses ({e}); marked interrupted without a report");
                    self.store.set_state(&run.id, RunState::Interrupted).await?;
                    recovered.push(Recovered {
                        id: run.id,
                        waiting: None,
                    });
                    continue;
                }
            };
            let shards = self.store.shards_of(&run.id).await?;
            let stored = self.store.intervals_of(&run.id).await?;
            if shards.is_empty() {
                // No shard was assigned: no agent holds anything of it.
                let finding = Finding::new(
                    FindingKind::Interrupted,
                    "the coordinator stopped while this run was in progress (a restart or a crash), before any \
                     load was assigned; nothing was run again",
                );
                let none = BTreeSet::new();
                let ending = Ending {
                    state: RunState::Interrupted,
                    findings: vec![finding],
                    agents: RunAgents {
                        assigned: &none,
                        lost: &none,
                    },
                };
                self.store_ended_run(&run.id, &plan, run.started_at.clone(), &stored, ending)
                    .await?;
                tracing::warn!(run = %run.id, "interrupted by a coordinator restart before any load: ended");
                recovered.push(Recovered {
                    id: run.id,
                    waiting: None,
                });
                continue;
            }
            let id = run.id.clone();
            let waiting = self.collect_late(LateRun {
                run,
                plan,
                shards,
                stored,
            });
            tracing::warn!(run = %id, "interrupted by a coordinator restart: waiting at most {waiting:?} for its agents' spooled intervals");
            recovered.push(Recovered {
                id,
                waiting: Some(waiting),
            });
        }
        Ok(recovered)
    }

    /// Stores the report of a run that ended without its task finishing it: the figures rebuilt from `intervals`,
    /// the agents table from each agent's intervals. Returns its verdict.
    pub(super) async fn store_ended_run(
        &self,
        id: &str,
        plan: &Plan,
        started_at: String,
        intervals: &[IntervalReport],
        ending: Ending<'_>,
    ) -> Result<Verdict, StoreError> {
        let outcome = RunOutcome {
            run_id: id.to_owned(),
            started_at,
            scenarios: plan
                .scenarios
                .iter()
                .map(|s| (s, crate::scenario::replay(s, plan, intervals)))
                .collect(),
            findings: ending.findings,
            agents: self.rebuilt_agents(plan, intervals, &ending.agents),
        };
        let report = crate::report::assemble(plan, outcome);
        let json = render::json(&report).unwrap_or_default();
        let markdown = render::markdown(&report);
        self.store
            .finish_run(
                id,
                ending.state,
                report.verdict,
                &report.finished_at,
                &json,
                &markdown,
            )
            .await?;
        Ok(report.verdict)
    }

    /// Each agent assigned a shard or with stored intervals, its totals and health from its intervals; its weight
    /// and clock as it is connected now, when it is.
    fn rebuilt_agents(
        &self,
        plan: &Plan,
        intervals: &[IntervalReport],
        agents: &RunAgents<'_>,
    ) -> Vec<AgentOutcome> {
        let mut names: BTreeSet<&str> = agents.assigned.iter().map(String::as_str).collect();
        names.extend(intervals.iter().map(|i| i.agent.as_str()));
        names
            .into_iter()
            .map(|name| {
                let mut health = AgentHealth::default();
                let mut open_model = false;
                for report in intervals.iter().filter(|i| i.agent == name) {
                    let added = crate::run::intake::check(report)
                        .map_err(|e| e.to_string())
                        .and_then(|decoded| health.add(report, &decoded).map_err(|e| e.to_string()));
                    if let Err(why) = added {
                        tracing::warn!(run = %report.run_id, agent = %name, seq = report.seq, "a stored interval was left out of the agent's rebuilt health: {why}");
                    }
                    open_model |= plan.scenarios.iter().any(|s| {
                        s.name == report.part.scenario
                            && matches!(&s.spec, ScenarioSpec::Http(h) if h.model == LoadModel::Open)
                    });
                }
                let connected = self.registry.agent(name);
                AgentOutcome {
                    name: name.to_owned(),
                    health,
                    lost: agents.lost.contains(name),
                    clock: connected.as_ref().and_then(|a| a.clock),
                    open_model,
                    cores: connected.map(|a| a.cores),
                }
            })
            .collect()
    }
}

/// The message of a panic payload.
pub(super) fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}
