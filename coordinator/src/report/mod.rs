//! From a run's outcome to its report: merged figures ([`aggregate`], [`agent_health`]), thresholds, grade and
//! verdict ([`grading`]), the report itself ([`assemble`]), its renderings ([`render`]) and the regression verdict
//! between two reports ([`compare`]).

pub mod agent_health;
pub mod aggregate;
pub mod compare;
pub mod grading;
pub mod render;
pub mod setup;

use crate::clock::now_rfc3339;
use agent_health::AgentHealth;
use loadgrade_common::plan::{Plan, Scenario};
use loadgrade_common::protocol::ClockEstimate;
use loadgrade_common::report::{AgentReport, Finding, Report, SCHEMA_VERSION, ScenarioMetrics};

/// What a run measured and found, ready to be judged.
pub struct RunOutcome<'a> {
    pub run_id: String,
    /// RFC 3339.
    pub started_at: String,
    /// Every scenario of the plan with its figures (`None`: it did not run).
    pub scenarios: Vec<(&'a Scenario, Option<ScenarioMetrics>)>,
    pub findings: Vec<Finding>,
    pub agents: Vec<AgentOutcome>,
}

/// What the run saw of one reserved agent.
pub struct AgentOutcome {
    pub name: String,
    pub health: AgentHealth,
    pub lost: bool,
    pub clock: Option<ClockEstimate>,
    pub open_model: bool,
    /// Its sharding weight; `None` when it is not known (a report rebuilt after a restart).
    pub cores: Option<u32>,
}

/// Judges the outcome against the plan and builds the report.
pub fn assemble(plan: &Plan, outcome: RunOutcome<'_>) -> Report {
    let mut findings = outcome.findings;
    let scenarios: Vec<_> = outcome
        .scenarios
        .into_iter()
        .map(|(scenario, metrics)| grading::judge_scenario(scenario, metrics, &mut findings))
        .collect();
    let judged = grading::grade_run(plan, &scenarios, &findings);
    let agents = outcome
        .agents
        .into_iter()
        .map(|a| {
            let mut generator = a.health.generator(a.open_model);
            if a.clock.is_none() {
                generator.not_measured.insert(
                    "clock_offset_ms".to_owned(),
                    "no heartbeat round trip was measured".to_owned(),
                );
            }
            AgentReport {
                requests: a.health.requests,
                errors: a.health.errors,
                lost: a.lost,
                clock_offset_ms: a.clock.map_or(0.0, |c| c.offset_ms),
                clock_rtt_ms: a.clock.map(|c| c.rtt_ms),
                intervals: a.health.intervals,
                cores: a.cores,
                generator,
                name: a.name,
            }
        })
        .collect();
    Report {
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version: SCHEMA_VERSION,
        run_id: outcome.run_id,
        plan_name: plan.name.clone(),
        started_at: outcome.started_at,
        finished_at: now_rfc3339(),
        verdict: judged.verdict,
        grade: judged.grade,
        grade_reason: judged.grade_reason,
        verdict_reasons: judged.verdict_reasons,
        findings,
        agents,
        scenarios,
    }
}
