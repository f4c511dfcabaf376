//! Executes one run: waits for agents (barrier), runs each scenario by sharding it over the agents with one start
//! instant, persists and merges their interval reports, watches for lost agents, then grades and stores the report.

use crate::aggregate::{AgentAggregate, ScenarioAggregate};
use crate::clock::{now_rfc3339, unix_ms};
use crate::grading::{Trouble, grade_run, judge_scenario};
use crate::registry::{AgentInfo, RunInput};
use crate::render;
use crate::{Coordinator, RunEvent, RunState};
use loadgrade_common::plan::{Arrivals, HttpSpec, LoadModel, Plan, Scenario, ScenarioSpec};
use loadgrade_common::report::{AgentReport, Report, SCHEMA_VERSION, ScenarioReport};
use loadgrade_common::shares::split_by_weight;
use loadgrade_proto::v1::coordinator_message::Kind as Out;
use loadgrade_proto::v1::{
    Ack, AssignShard, CoordinatorMessage, Header, HttpShard, Profile, Stage, Stop, assign_shard,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

/// Time between sending assignments and the common start instant.
const START_DELAY: Duration = Duration::from_millis(1000);
/// Extra time after a scenario's planned end before agents are told to stop.
const FINISH_GRACE: Duration = Duration::from_secs(10);
/// Time agents get to wind down after a stop, beyond the request timeout (requests in flight are waited for),
/// before they count as lost.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A finished run: the report and its renderings.
#[derive(Debug, Clone)]
pub struct FinishedRun {
    pub report: Report,
    pub json: String,
    pub markdown: String,
}

pub(crate) struct RunContext {
    pub(crate) coordinator: Arc<Coordinator>,
    id: String,
    events: watch::Sender<RunEvent>,
    pub(crate) cancel: CancellationToken,
    trouble: Trouble,
    agents: BTreeMap<String, AgentAggregate>,
    lost: BTreeSet<String>,
    open_model_agents: BTreeSet<String>,
}

impl RunContext {
    pub(crate) fn event(&self, state: RunState, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(run = %self.id, "{message}");
        let _ = self.events.send(RunEvent {
            state,
            message,
            verdict: None,
        });
    }
}

pub async fn execute(
    coordinator: Arc<Coordinator>,
    id: String,
    plan: Plan,
    events: watch::Sender<RunEvent>,
    cancel: CancellationToken,
) -> anyhow::Result<FinishedRun> {
    let started_at = now_rfc3339();
    let mut ctx = RunContext {
        coordinator: coordinator.clone(),
        id: id.clone(),
        events,
        cancel,
        trouble: Trouble::default(),
        agents: BTreeMap::new(),
        lost: BTreeSet::new(),
        open_model_agents: BTreeSet::new(),
    };

    let mut results: Vec<(Scenario, Option<serde_json::Value>)> = Vec::new();
    let mut agents: Vec<AgentInfo> = Vec::new();
    let (route_tx, mut route_rx) = mpsc::unbounded_channel();
    if let Some(reserved) = wait_for_agents(&ctx, &plan, route_tx).await {
        agents = reserved;
        for a in &agents {
            ctx.agents.insert(a.name.clone(), AgentAggregate::default());
        }
        // The agents are reserved: a store hiccup here must not leave them reserved forever.
        if let Err(e) = coordinator.store.set_state(&id, "running").await {
            tracing::warn!(run = %id, "cannot mark the run running: {e}");
        }
        for scenario in &plan.scenarios {
            if ctx.cancel.is_cancelled() {
                results.push((scenario.clone(), None));
                continue;
            }
            let metrics = match &scenario.spec {
                ScenarioSpec::Http(spec) => {
                    let part = Part {
                        scenario: &scenario.name,
                        stage: 0,
                        label: format!("{:?}", scenario.name),
                    };
                    run_shards(&mut ctx, &agents, &part, spec, &mut route_rx)
                        .await
                        .map(|a| serde_json::to_value(a.metrics()).unwrap_or_default())
                }
                ScenarioSpec::Ramp(ramp) => {
                    let metrics = crate::ramp::run(
                        &mut ctx,
                        &agents,
                        scenario,
                        ramp,
                        plan.memory_budget,
                        &mut route_rx,
                    )
                    .await;
                    Some(serde_json::to_value(metrics).unwrap_or_default())
                }
            };
            results.push((scenario.clone(), metrics));
        }
        coordinator.registry.release(&id);
    } else {
        results.extend(plan.scenarios.iter().map(|s| (s.clone(), None)));
        let have = coordinator.registry.idle_count();
        ctx.trouble.invalid.push(format!(
            "only {have} of the {} agents the plan needs were ready within {:?}; no load was sent",
            plan.min_agents, plan.ready_timeout
        ));
    }
    if ctx.cancel.is_cancelled() {
        ctx.trouble
            .invalid
            .push("the run was cancelled before it finished".to_owned());
    }

    let scenarios: Vec<ScenarioReport> = results
        .into_iter()
        .map(|(scenario, metrics)| judge_scenario(&scenario, metrics, &mut ctx.trouble))
        .collect();
    let (grade, grade_reason, verdict, verdict_reasons) =
        grade_run(&plan, &scenarios, &ctx.trouble);
    let agent_reports = agents
        .iter()
        .map(|info| {
            let agg = ctx.agents.remove(&info.name).unwrap_or_default();
            AgentReport {
                name: info.name.clone(),
                requests: agg.requests,
                errors: agg.errors,
                lost: ctx.lost.contains(&info.name),
                clock_offset_ms: current_offset(&coordinator, &info.name)
                    .unwrap_or(info.clock_offset_ms),
                intervals: agg.intervals,
                generator: agg.generator(ctx.open_model_agents.contains(&info.name)),
            }
        })
        .collect();
    let report = Report {
        schema_version: SCHEMA_VERSION,
        run_id: id.clone(),
        plan_name: plan.name.clone(),
        started_at,
        finished_at: now_rfc3339(),
        verdict,
        grade,
        grade_reason,
        verdict_reasons,
        agents: agent_reports,
        scenarios,
    };
    let json = render::json(&report)?;
    let markdown = render::markdown(&report);
    let state = if ctx.cancel.is_cancelled() {
        "cancelled"
    } else {
        "finished"
    };
    coordinator
        .store
        .finish_run(
            &id,
            state,
            &verdict.to_string(),
            &report.finished_at,
            &json,
            &markdown,
        )
        .await?;
    let _ = ctx.events.send(RunEvent {
        state: RunState::Finished,
        message: format!("verdict {verdict}, grade {grade}"),
        verdict: Some(verdict),
    });
    Ok(FinishedRun {
        report,
        json,
        markdown,
    })
}

fn current_offset(coordinator: &Coordinator, name: &str) -> Option<f64> {
    coordinator
        .registry
        .agents()
        .into_iter()
        .find(|a| a.name == name)
        .map(|a| a.clock_offset_ms)
}

/// The barrier: reserves the idle load agents once at least `min_agents` are connected; `None` on timeout or
/// cancel.
async fn wait_for_agents(
    ctx: &RunContext,
    plan: &Plan,
    route: mpsc::UnboundedSender<RunInput>,
) -> Option<Vec<AgentInfo>> {
    let registry = &ctx.coordinator.registry;
    let deadline = Instant::now() + plan.ready_timeout;
    let min = plan.min_agents as usize;
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

/// One agent's part of a scenario.
struct Share {
    agent: String,
    shard: HttpShard,
}

fn shard_scenario(spec: &HttpSpec, agents: &[&AgentInfo]) -> Vec<Share> {
    let profile = spec.profile();
    // Agents that would get no connection (or no part of the request budget) get no work; the others share
    // the profile, the backlog and the budget by weight.
    let mut active: Vec<usize> = (0..agents.len()).collect();
    loop {
        let weights: Vec<u64> = active.iter().map(|&i| u64::from(agents[i].cores)).collect();
        // Open: an agent needs a connection and some rate; closed: some connections.
        let connections = match spec.model {
            LoadModel::Open => split_by_weight(spec.connections, &weights)
                .into_iter()
                .zip(split_by_weight(profile.max_total(), &weights))
                .map(|(c, r)| if r == 0 { 0 } else { c })
                .collect(),
            LoadModel::Closed => split_by_weight(profile.max_total(), &weights),
        };
        let budgets = spec.requests.map(|r| split_by_weight(r, &weights));
        let keep: Vec<usize> = active
            .iter()
            .enumerate()
            .filter(|&(k, _)| connections[k] > 0 && budgets.as_ref().is_none_or(|b| b[k] > 0))
            .map(|(_, &i)| i)
            .collect();
        if keep.len() == active.len() || keep.is_empty() {
            break;
        }
        active = keep;
    }
    let weights: Vec<u64> = active.iter().map(|&i| u64::from(agents[i].cores)).collect();
    let connections = split_by_weight(spec.connections, &weights);
    let budgets = spec.requests.map(|r| split_by_weight(r, &weights));
    let backlogs = split_by_weight(spec.max_backlog, &weights);
    let stages: Vec<Stage> = profile
        .stages
        .iter()
        .map(|s| Stage {
            target: s.target,
            duration_ms: s.duration.as_millis() as u64,
        })
        .collect();
    active
        .iter()
        .enumerate()
        .map(|(k, &i)| Share {
            agent: agents[i].name.clone(),
            shard: HttpShard {
                url: spec.url.clone(),
                method: spec.method.clone(),
                headers: spec
                    .headers
                    .iter()
                    .map(|(n, v)| Header {
                        name: n.clone(),
                        value: v.clone(),
                    })
                    .collect(),
                body: spec.body.clone(),
                model: match spec.model {
                    LoadModel::Open => loadgrade_proto::v1::LoadModel::Open,
                    LoadModel::Closed => loadgrade_proto::v1::LoadModel::Closed,
                } as i32,
                profile: Some(Profile {
                    start: profile.start,
                    stages: stages.clone(),
                    weights: weights.clone(),
                    index: k as u32,
                }),
                connections: connections[k],
                duration_ms: spec.duration.map_or(0, |d| d.as_millis() as u64),
                warmup_ms: spec.warmup.as_millis() as u64,
                max_backlog: backlogs[k].max(1),
                request_timeout_ms: spec.timeout.as_millis() as u64,
                max_requests: budgets.as_ref().map_or(0, |b| b[k]),
                http_version: if spec.http2 { 2 } else { 1 },
                ca_pem: spec.ca_pem.clone(),
                arrivals: match spec.arrivals {
                    Arrivals::Even => loadgrade_proto::v1::Arrivals::Even,
                    Arrivals::Poisson => loadgrade_proto::v1::Arrivals::Poisson,
                } as i32,
            },
        })
        .collect()
}

/// The longest a scenario can legitimately take from its start instant.
fn scenario_bound(spec: &HttpSpec) -> Duration {
    let load = match (spec.duration, spec.requests) {
        (Some(d), _) => d,
        // A request budget alone. Closed: worst case every request on every connection takes the full timeout.
        // Open: the arrivals alone take requests / rate seconds, then the last ones may take the timeout.
        (None, Some(r)) => match spec.model {
            LoadModel::Closed => {
                spec.timeout * u32::try_from(r.div_ceil(spec.connections)).unwrap_or(u32::MAX)
            }
            LoadModel::Open => Duration::from_secs(r.div_ceil(spec.rate.max(1))),
        },
        (None, None) => Duration::ZERO,
    };
    spec.warmup + load + spec.timeout + FINISH_GRACE
}

/// Which part of the plan a set of shards runs: a scenario, or one step (stage) of a ramp.
pub(crate) struct Part<'a> {
    pub scenario: &'a str,
    pub stage: u32,
    /// How messages name it.
    pub label: String,
}

/// Runs one part of a scenario on every live agent and merges what they report.
pub(crate) async fn run_shards(
    ctx: &mut RunContext,
    agents: &[AgentInfo],
    part: &Part<'_>,
    spec: &HttpSpec,
    route: &mut mpsc::UnboundedReceiver<RunInput>,
) -> Option<ScenarioAggregate> {
    let registry = ctx.coordinator.registry.clone();
    let live: Vec<&AgentInfo> = agents
        .iter()
        .filter(|a| !ctx.lost.contains(&a.name))
        .collect();
    if live.is_empty() {
        ctx.trouble.invalid.push(format!(
            "scenario {} did not run: no agent left",
            part.label
        ));
        return None;
    }
    let shares = shard_scenario(spec, &live);
    let start_at = unix_ms() + START_DELAY.as_millis() as i64;
    let mut pending: BTreeSet<String> = BTreeSet::new();
    for share in shares {
        let assign = CoordinatorMessage {
            kind: Some(Out::Assign(AssignShard {
                run_id: ctx.id.clone(),
                scenario: part.scenario.to_owned(),
                stage: part.stage,
                start_at_unix_ms: start_at,
                work: Some(assign_shard::Work::Http(share.shard)),
            })),
        };
        if registry.send(&share.agent, assign) {
            if spec.model == LoadModel::Open {
                ctx.open_model_agents.insert(share.agent.clone());
            }
            pending.insert(share.agent);
        } else {
            ctx.lost.insert(share.agent.clone());
            ctx.trouble.invalid.push(format!(
                "agent {:?} was gone before scenario {} started",
                share.agent, part.label
            ));
        }
    }
    ctx.event(
        RunState::Running,
        format!(
            "scenario {}: {} on {} agents",
            part.label,
            describe(spec),
            pending.len()
        ),
    );
    let assigned = pending.clone();
    let mut reported: BTreeMap<String, u64> = BTreeMap::new();
    // Generator health of this part alone: a fault in one scenario is not diluted by the others.
    let mut part_health: BTreeMap<String, AgentAggregate> = BTreeMap::new();
    let mut aggregate = ScenarioAggregate::new(spec.clone());
    let mut deadline = Instant::now() + START_DELAY + scenario_bound(spec);
    let mut stopping = false;
    let mut last_progress = Instant::now();

    while !pending.is_empty() {
        tokio::select! {
            input = route.recv() => {
                let Some(input) = input else { break };
                match input {
                    RunInput::Interval(report) => {
                        match ctx.coordinator.store.insert_interval(&report).await {
                            Ok(false) => continue, // already stored and merged
                            Ok(true) => {}
                            Err(e) => {
                                ctx.trouble.invalid.push(format!("an interval of agent {:?} could not be stored: {e}", report.agent));
                                continue;
                            }
                        }
                        registry.send(&report.agent, CoordinatorMessage {
                            kind: Some(Out::Ack(Ack { run_id: report.run_id.clone(), seq: report.seq })),
                        });
                        if report.scenario != part.scenario || report.stage != part.stage {
                            continue;
                        }
                        *reported.entry(report.agent.clone()).or_default() += 1;
                        let merged = part_health.entry(report.agent.clone()).or_default().add(&report)
                            .and_then(|()| if report.warmup { Ok(()) } else { aggregate.add(&report) });
                        if let Err(e) = merged {
                            ctx.trouble.invalid.push(format!("an interval of agent {:?} did not decode: {e}", report.agent));
                        }
                        if last_progress.elapsed() >= Duration::from_secs(1) {
                            last_progress = Instant::now();
                            ctx.event(RunState::Running, format!(
                                "scenario {}: {} requests, {} errors so far", part.label, aggregate.requests(), aggregate.errors()));
                        }
                    }
                    RunInput::Done { agent, done } if done.scenario == part.scenario && done.stage == part.stage => {
                        if !done.error.is_empty() && done.error != "stopped" {
                            ctx.trouble.invalid.push(format!("agent {agent:?} failed scenario {}: {}", part.label, done.error));
                        }
                        pending.remove(&agent);
                    }
                    RunInput::Done { .. } => {}
                    RunInput::Refused { agent, refused } => {
                        ctx.trouble.invalid.push(format!("agent {agent:?} refused scenario {}: {}", refused.scenario, refused.reason));
                        pending.remove(&agent);
                    }
                    RunInput::Gone { agent } => {
                        if assigned.contains(&agent) || agents.iter().any(|a| a.name == agent) {
                            ctx.lost.insert(agent.clone());
                        }
                        pending.remove(&agent);
                    }
                }
            }
            () = sleep_until(deadline) => {
                if stopping {
                    for agent in std::mem::take(&mut pending) {
                        ctx.lost.insert(agent.clone());
                        ctx.trouble.invalid.push(format!("agent {agent:?} did not finish scenario {} after being stopped", part.label));
                    }
                } else {
                    ctx.trouble.degraded.push(format!("scenario {} overran its time bound and was stopped", part.label));
                    stop_agents(ctx, &pending, "scenario overran its time bound");
                    stopping = true;
                    deadline = Instant::now() + spec.timeout + STOP_GRACE;
                }
            }
            () = ctx.cancel.cancelled(), if !stopping => {
                stop_agents(ctx, &pending, "run cancelled");
                stopping = true;
                deadline = Instant::now() + spec.timeout + STOP_GRACE;
            }
        }
    }

    // The run-wide view of each agent is the sum of its parts.
    for (agent, health) in &part_health {
        if let Err(e) = ctx.agents.entry(agent.clone()).or_default().absorb(health) {
            ctx.trouble.invalid.push(format!(
                "agent {agent:?}: health figures did not merge: {e}"
            ));
        }
    }
    for (agent, health) in &part_health {
        let cores = agents
            .iter()
            .find(|a| &a.name == agent)
            .map_or(1, |a| a.cores);
        for fault in health.faults(agent, cores) {
            ctx.trouble
                .invalid
                .push(format!("scenario {}: {fault}", part.label));
        }
    }
    for agent in &assigned {
        let count = reported.get(agent).copied().unwrap_or(0);
        if count == 0
            && !ctx
                .trouble
                .invalid
                .iter()
                .any(|r| r.contains(&format!("agent {agent:?} refused")))
        {
            ctx.trouble.invalid.push(format!(
                "agent {agent:?} never reported for scenario {}",
                part.label
            ));
        } else if ctx.lost.contains(agent) {
            ctx.trouble.degraded.push(format!(
                "agent {agent:?} was lost during scenario {}; its {count} intervals up to then are included",
                part.label
            ));
        }
    }
    if aggregate.histogram().is_empty() {
        let m = aggregate.metrics();
        let e = m.errors_by_class;
        ctx.trouble.invalid.push(format!(
            "scenario {}: no response arrived from the target ({} requests: {} connect errors, {} timeouts, {} other; {} dropped), so nothing about it was measured",
            part.label, m.requests, e.connect, e.timeout, e.other, m.dropped
        ));
    }
    Some(aggregate)
}

fn stop_agents(ctx: &RunContext, agents: &BTreeSet<String>, reason: &str) {
    for agent in agents {
        ctx.coordinator.registry.send(
            agent,
            CoordinatorMessage {
                kind: Some(Out::Stop(Stop {
                    run_id: ctx.id.clone(),
                    reason: reason.to_owned(),
                })),
            },
        );
    }
}

fn describe(spec: &HttpSpec) -> String {
    let load = match spec.model {
        LoadModel::Open => format!(
            "open model, {} req/s over at most {} connections",
            spec.rate, spec.connections
        ),
        LoadModel::Closed => format!("closed model, {} connections", spec.connections),
    };
    let end = match (spec.duration, spec.requests) {
        (Some(d), Some(r)) => format!("for {d:?} or {r} requests"),
        (Some(d), None) => format!("for {d:?}"),
        (None, Some(r)) => format!("for {r} requests"),
        (None, None) => String::new(),
    };
    format!("{load} {end}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str, cores: u32) -> AgentInfo {
        AgentInfo {
            name: name.into(),
            version: "0".into(),
            cores,
            epoch: 1,
            clock_offset_ms: 0.0,
            run: None,
            probe_only: false,
        }
    }

    fn spec(text: &str) -> HttpSpec {
        let plan = Plan::parse("t.toml", &format!("name = \"t\"\n[[scenario]]\nname = \"s\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\n{text}")).expect("plan");
        match plan.scenarios[0].spec.clone() {
            ScenarioSpec::Http(spec) => spec,
            ScenarioSpec::Ramp(_) => unreachable!("an http plan"),
        }
    }

    #[test]
    fn shards_sum_to_the_plan_totals() {
        let agents = [agent("a", 2), agent("b", 1), agent("c", 1)];
        let refs: Vec<&AgentInfo> = agents.iter().collect();
        let shares = shard_scenario(
            &spec("rate = 1001\nconnections = 7\nduration = \"1s\""),
            &refs,
        );
        let rate_parts: u64 = shares
            .iter()
            .map(|s| {
                let p = s.shard.profile.as_ref().expect("profile");
                loadgrade_common::profile::part(p.start, &p.weights, p.index as usize)
            })
            .sum();
        assert_eq!(rate_parts, 1001);
        assert_eq!(shares.iter().map(|s| s.shard.connections).sum::<u64>(), 7);
        assert_eq!(
            shares.iter().map(|s| s.shard.max_backlog).sum::<u64>(),
            5005
        );
        let closed = shard_scenario(&spec("connections = 2\nrequests = 11"), &refs);
        assert_eq!(
            closed.len(),
            2,
            "an agent without a connection gets no work"
        );
        assert_eq!(closed.iter().map(|s| s.shard.max_requests).sum::<u64>(), 11);
    }
}
