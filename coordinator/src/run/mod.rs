//! Executing one run: wait for agents (the barrier), run each scenario through its kind's module, then grade,
//! render and store the report. A [`guard::LoadGuard`] stops the agents' load on every way out, panics included.

pub mod context;
pub mod coverage;
pub mod events;
pub mod guard;
pub mod intake;
pub mod outbound;
pub mod part;
pub mod preflight;
pub mod probe;
pub mod shards;

use crate::clock::now_rfc3339;
use crate::report::render;
use crate::report::{self, RunOutcome};
use crate::scenario;
use crate::server::registry::{AgentInfo, Reservation, RunInput};
use crate::store::StoreError;
use context::{RunContext, RunDeps, RunSignals};
use guard::LoadGuard;
use loadgrade_common::plan::{Plan, PreflightMode};
use loadgrade_common::preflight::{CheckRow, CheckStatus};
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
    deps.registry.enqueue(&id, &plan.agents);
    let reserved = wait_for_agents(&ctx, &plan, route_tx).await;
    deps.registry.leave_queue(&id);
    if let Some(reserved) = reserved {
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
        ctx.event(
            RunState::Running,
            "preflight: checking agents and targets (no load)",
        );
        // A cancel (or the coordinator stopping) does not wait for agents' probes.
        let rows = tokio::select! {
            rows = preflight::check(&deps.registry, &deps.store, &plan, &ctx.agents, 0, &id) => rows,
            () = ctx.cancel.cancelled() => Vec::new(),
        };
        let enforce = plan.preflight == PreflightMode::Enforce;
        let failed: Vec<&CheckRow> = rows
            .iter()
            .filter(|r| r.status == CheckStatus::Fail && enforce)
            .collect();
        for row in rows.iter().filter(|r| {
            r.status == CheckStatus::Warn || (r.status == CheckStatus::Fail && !enforce)
        }) {
            ctx.event(RunState::Running, format!("warning: {}", describe(row)));
        }
        for row in &failed {
            ctx.find(FindingKind::PreflightFailed, describe(row));
        }
        if !failed.is_empty() {
            ctx.event(
                RunState::Running,
                format!(
                    "preflight failed ({} check(s)): no load was sent",
                    failed.len()
                ),
            );
        }
        let go = failed.is_empty();
        ctx.preflight = rows;
        for s in &plan.scenarios {
            if !go {
                results.push(None);
                continue;
            }
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
        // Idle agents this plan could have used (its labels; probe agents never run load).
        let have = deps
            .registry
            .agents()
            .iter()
            .filter(|a| a.run.is_none() && a.selected_by(&plan.agents))
            .count();
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
    events::publish(
        &events,
        RunEvent {
            run_id: id,
            state,
            message: format!("verdict {}, grade {}", report.verdict, report.grade),
            verdict: Some(report.verdict),
            progress: false,
        },
    );
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

/// A preflight row as one line, as other findings read: `scenario "s": preflight CHECK on agent A: value — hint`.
fn describe(row: &CheckRow) -> String {
    let scenario = if row.scenario.is_empty() {
        String::new()
    } else {
        format!("scenario {:?}: ", row.scenario)
    };
    let agent = if row.agent.is_empty() {
        String::new()
    } else {
        format!(" on agent {}", row.agent)
    };
    let hint = if row.hint.is_empty() {
        String::new()
    } else {
        format!(" — {}", row.hint)
    };
    format!(
        "{scenario}preflight {}{agent}: {}{hint}",
        row.check, row.value
    )
}

/// The barrier: reserves the idle agents the plan selects once at least `min_agents` of them are idle and no run
/// submitted earlier may want them (QUEUED until then, without a deadline); then waits at most `ready_timeout`
/// for enough of them to connect (WAITING). `None` on timeout or cancel.
async fn wait_for_agents(
    ctx: &RunContext,
    plan: &Plan,
    route: mpsc::UnboundedSender<RunInput>,
) -> Option<Vec<AgentInfo>> {
    let registry = &ctx.deps.registry;
    let mut deadline = Instant::now() + plan.ready_timeout;
    let min = usize::try_from(plan.min_agents).unwrap_or(usize::MAX);
    loop {
        let changed = registry.changed.notified();
        match registry.reserve(&ctx.id, &plan.agents, min, route.clone()) {
            Reservation::Reserved(agents) => return Some(agents),
            Reservation::Queued { ahead, busy } => {
                // Its wait for agents starts when it is next and they are free.
                deadline = Instant::now() + plan.ready_timeout;
                let why = match (ahead, busy) {
                    (0, busy) => format!("{busy} agent(s) it needs are busy with another run"),
                    (ahead, _) => format!("{ahead} run(s) submitted earlier go first"),
                };
                ctx.event(RunState::Queued, format!("queued: {why}"));
            }
            Reservation::Waiting { have } => {
                if Instant::now() >= deadline {
                    return None;
                }
                ctx.event(
                    RunState::Waiting,
                    format!("waiting for agents: {have} of {} ready", plan.min_agents),
                );
            }
        }
        tokio::select! {
            () = changed => {}
            () = sleep_until(deadline) => {}
            () = ctx.cancel.cancelled() => return None,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
