//! Executing one run: wait for agents (the barrier), run each scenario through its kind's module, then grade,
//! render and store the report. A [`guard::LoadGuard`] stops the agents' load on every way out, panics included.

pub mod context;
pub mod coverage;
pub mod guard;
pub mod intake;
pub mod part;
pub mod probe;
pub mod shards;

use crate::clock::now_rfc3339;
use crate::report::render;
use crate::report::{self, RunOutcome};
use crate::scenario;
use crate::server::registry::{AgentInfo, RunInput};
use crate::store::StoreError;
use context::{RunContext, RunDeps, RunSignals};
use guard::LoadGuard;
use loadgrade_common::plan::Plan;
use loadgrade_common::report::{FindingKind, Report, ScenarioMetrics};
use loadgrade_common::run::{RunEvent, RunState};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

/// A finished run: the report and its renderings.
#[derive(Debug, Clone)]
pub struct FinishedRun {
    pub report: Report,
    pub json: String,
    pub markdown: String,
}

/// Why a run produced no report.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the report does not serialize: {0}")]
    Render(#[from] serde_json::Error),
    #[error("the report could not be stored: {0}")]
    Store(#[from] StoreError),
    #[error("the run task panicked: {0}")]
    Panicked(String),
    #[error("the run task was aborted")]
    Aborted,
}

pub async fn execute(
    deps: RunDeps,
    id: String,
    plan: Plan,
    signals: RunSignals,
    cancel: CancellationToken,
) -> Result<FinishedRun, RunError> {
    let started_at = now_rfc3339();
    let events = signals.events.clone();
    let (route_tx, route_rx) = mpsc::unbounded_channel();
    let mut ctx = RunContext::new(deps.clone(), &id, signals, cancel, route_rx);
    ctx.orphan_timeout = plan.orphan_timeout;
    let mut results: Vec<Option<ScenarioMetrics>> = Vec::new();
    if let Some(reserved) = wait_for_agents(&ctx, &plan, route_tx).await {
        let guard = LoadGuard::new(
            deps.registry.clone(),
            &id,
            reserved.iter().map(|a| a.name.clone()).collect(),
        );
        ctx.agents = reserved;
        // The agents are reserved: a store hiccup here must not leave them reserved (the guard frees them).
        if let Err(e) = deps.store.set_state(&id, RunState::Running).await {
            tracing::warn!(run = %id, "cannot mark the run running: {e}");
        }
        for s in &plan.scenarios {
            let metrics = if ctx.cancel.is_cancelled() {
                None
            } else {
                scenario::run(&mut ctx, s, &plan).await
            };
            results.push(metrics);
        }
        drop(guard);
    } else {
        results.resize(plan.scenarios.len(), None);
        let have = deps.registry.idle_count();
        ctx.find(
            FindingKind::NoAgents,
            format!(
                "only {have} of the {} agents the plan needs were ready within {:?}; no load was sent",
                plan.min_agents, plan.ready_timeout
            ),
        );
    }
    if ctx.cancel.is_cancelled() {
        ctx.find(
            FindingKind::Cancelled,
            "the run was cancelled before it finished",
        );
    }
    let outcome = RunOutcome {
        run_id: id.clone(),
        started_at,
        scenarios: plan.scenarios.iter().zip(results).collect(),
        findings: ctx.take_findings(),
        agents: agent_outcomes(&ctx),
    };
    let report = report::assemble(&plan, outcome);
    let json = render::json(&report)?;
    let markdown = render::markdown(&report);
    let state = if ctx.cancel.is_cancelled() {
        RunState::Cancelled
    } else {
        RunState::Finished
    };
    deps.store
        .finish_run(
            &id,
            state,
            report.verdict,
            &report.finished_at,
            &json,
            &markdown,
        )
        .await?;
    let _ = events.send(RunEvent {
        run_id: id,
        state,
        message: format!("verdict {}, grade {}", report.verdict, report.grade),
        verdict: Some(report.verdict),
        progress: false,
    });
    Ok(FinishedRun {
        report,
        json,
        markdown,
    })
}

/// Each reserved agent with what the run saw of it.
fn agent_outcomes(ctx: &RunContext) -> Vec<report::AgentOutcome> {
    ctx.agents
        .iter()
        .map(|info| report::AgentOutcome {
            name: info.name.clone(),
            health: ctx.health.get(&info.name).cloned().unwrap_or_default(),
            lost: ctx.lost.contains(&info.name),
            clock: ctx
                .deps
                .registry
                .agent(&info.name)
                .and_then(|a| a.clock)
                .or(info.clock),
            open_model: ctx.open_model_agents.contains(&info.name),
            cores: Some(info.cores),
        })
        .collect()
}

/// The barrier: reserves the idle load agents once at least `min_agents` are connected; `None` on timeout or
/// cancel.
async fn wait_for_agents(
    ctx: &RunContext,
    plan: &Plan,
    route: mpsc::UnboundedSender<RunInput>,
) -> Option<Vec<AgentInfo>> {
    let registry = &ctx.deps.registry;
    let deadline = Instant::now() + plan.ready_timeout;
    let min = usize::try_from(plan.min_agents).unwrap_or(usize::MAX);
    loop {
        let changed = registry.changed.notified();
        if let Some(agents) = registry.reserve_idle(&ctx.id, min, route.clone()) {
            return Some(agents);
        }
        let have = registry.idle_count();
        ctx.event(
            RunState::Waiting,
            format!("waiting for agents: {have} of {} ready", plan.min_agents),
        );
        tokio::select! {
            () = changed => {}
            () = sleep_until(deadline) => return registry.reserve_idle(&ctx.id, min, route),
            () = ctx.cancel.cancelled() => return None,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
