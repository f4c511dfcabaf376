//! Running one part of a scenario (a whole `http` scenario, or one ramp step) on the run's live agents: assign the
//! shards with one start instant, store and merge what comes back, stop agents that overrun or on cancel, and note
//! what went wrong with the measurement.

mod agents;
mod finish;
mod intervals;

use super::context::RunContext;
use super::intake;
use super::shards::shard_http;
use crate::report::aggregate::HttpAggregate;
use crate::server::registry::AgentInfo;
use crate::store::StoredShard;
use agents::{AgentShard, ShardState};
use loadgrade_common::clock::unix_ms;
use loadgrade_common::plan::{HttpSpec, LoadModel};
use loadgrade_common::protocol::ToAgent;
use loadgrade_common::report::FindingKind;
use loadgrade_common::run::RunState;
use loadgrade_common::shard::{Assignment, HttpShard, PartId, Work};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::time::{Instant, sleep_until};

/// Time between sending assignments and the common start instant.
const START_DELAY: Duration = Duration::from_millis(1000);
/// Extra time after a part's planned end before agents are told to stop.
const FINISH_GRACE: Duration = Duration::from_secs(10);
/// Most inputs taken off a run's queue at once (their intervals stored in one transaction). Each admitted interval
/// holds its decoded histograms until the batch is merged, so a batch is kept small.
const MAX_BATCH: usize = 64;
/// Time agents get to wind down after a stop, beyond the request timeout (requests in flight are waited for),
/// before they count as lost.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Which part of the plan a set of shards runs, and how messages name it.
pub struct Part {
    pub id: PartId,
    pub label: String,
    /// At most this many of the live agents run it; `None`: all.
    pub max_agents: Option<usize>,
    /// What the part does, for the progress line; `None`: the load's model, connections and length.
    pub what: Option<String>,
    /// It times something: a part that ends with nothing timed is a finding. False for a part that only
    /// prepares (a pagination table's seeding).
    pub timed: bool,
}

impl Part {
    /// A part that times a load on every live agent.
    pub fn new(id: PartId, label: String) -> Part {
        Part {
            id,
            label,
            max_agents: None,
            what: None,
            timed: true,
        }
    }
}

/// One part in flight: who was assigned, who is still running, what arrived.
struct PartRun<'a> {
    part: &'a Part,
    spec: &'a HttpSpec,
    /// What each agent's share becomes: an http shard, or a cache shard around it.
    work: &'a (dyn Fn(HttpShard) -> Work + Sync),
    /// Every agent its shard was sent to, with where that shard is and what arrived from it.
    agents: BTreeMap<String, AgentShard>,
    aggregate: HttpAggregate,
    /// The common start instant, coordinator clock, Unix ms.
    start_at_unix_ms: i64,
}

/// Runs `part` with the load of `spec` on every live agent and merges what they report. `None` when no agent was
/// left to run it.
pub async fn run_part(ctx: &mut RunContext, part: &Part, spec: &HttpSpec) -> Option<HttpAggregate> {
    run_part_as(ctx, part, spec, &Work::Http).await
}

/// [`run_part`], each agent's share of the load made into its work by `work` (a cache shard around it).
pub async fn run_part_as(
    ctx: &mut RunContext,
    part: &Part,
    spec: &HttpSpec,
    work: &(dyn Fn(HttpShard) -> Work + Sync),
) -> Option<HttpAggregate> {
    let live: Vec<AgentInfo> = ctx
        .agents
        .iter()
        .filter(|a| !ctx.lost.contains(&a.name))
        .take(part.max_agents.unwrap_or(usize::MAX))
        .cloned()
        .collect();
    if live.is_empty() {
        ctx.find(
            FindingKind::NoAgentLeft,
            format!("scenario {} did not run: no agent left", part.label),
        );
        return None;
    }
    let mut run = PartRun {
        part,
        spec,
        work,
        agents: BTreeMap::new(),
        aggregate: HttpAggregate::new(spec.clone()),
        start_at_unix_ms: 0,
    };
    run.assign(ctx, &live).await;
    ctx.shards_running.send_replace(run.running().len());
    // Agents are told to stop at `deadline` if they have not finished; whatever happens, the part ends at `bound`
    // (the stop's own grace included), never later.
    let began = Instant::now();
    let stop_at = began + START_DELAY + spec.load_bound() + FINISH_GRACE;
    let bound = stop_at + spec.request.timeout + STOP_GRACE;
    let mut phase = Phase::Running { stop_at };
    let mut progress = tokio::time::interval(Duration::from_secs(1));
    progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !run.running().is_empty() {
        tokio::select! {
            input = ctx.route.recv() => match input {
                Some(input) => {
                    // Whatever else is waiting goes with it: at thousands of agents, one transaction per interval
                    // cannot keep up.
                    let mut inputs = vec![input];
                    while inputs.len() < MAX_BATCH {
                        match ctx.route.try_recv() {
                            Ok(more) => inputs.push(more),
                            Err(_) => break,
                        }
                    }
                    run.handle_all(ctx, inputs).await;
                    ctx.shards_running.send_replace(run.running().len());
                    #[cfg(feature = "fault-injection")]
                    if run.aggregate.requests() > 0 && ctx.deps.faults.panic_under_load() {
                        panic!("injected fault: the run task panics under load");
                    }
                }
                None => break,
            },
            () = sleep_until(phase.wakes_at()) => {
                if let Phase::Stopping { .. } = phase {
                    for agent in run.running() {
                        run.end(&agent, ShardState::Gone);
                        ctx.lost.insert(agent.clone());
                        ctx.find(FindingKind::AgentUnresponsive, format!(
                            "agent {agent:?} did not finish scenario {} after being stopped", part.label));
                    }
                } else {
                    ctx.find(FindingKind::Overran, format!(
                        "scenario {} overran its time bound ({:.0} s: {:.0} s planned, one request timeout and {} s \
                         grace) and was stopped; its agents got {:.0} s more to end",
                        part.label,
                        (stop_at - began - START_DELAY).as_secs_f64(),
                        spec.planned_length().unwrap_or_default().as_secs_f64(),
                        FINISH_GRACE.as_secs(),
                        (bound - stop_at).as_secs_f64()));
                    stop_agents(ctx, &run.running(), "scenario overran its time bound");
                    phase = Phase::Stopping { give_up_at: bound };
                }
            }
            // Watchers hear every second, whether or not an interval just arrived.
            _ = progress.tick() => run.progress(ctx, bound - began - START_DELAY),
            () = ctx.cancel.cancelled(), if matches!(phase, Phase::Running { .. }) => {
                stop_agents(ctx, &run.running(), "run cancelled");
                phase = Phase::Stopping {
                    give_up_at: (Instant::now() + spec.request.timeout + STOP_GRACE).min(bound),
                };
            }
        }
    }
    ctx.shards_running.send_replace(0);
    run.finish(ctx);
    Some(run.aggregate)
}

/// Where a part's loop is: its agents running until they are told to stop at `stop_at` (the part overran), or told
/// to stop and given until `give_up_at` to end before they count as lost.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Running { stop_at: Instant },
    Stopping { give_up_at: Instant },
}

impl Phase {
    fn wakes_at(self) -> Instant {
        match self {
            Phase::Running { stop_at } => stop_at,
            Phase::Stopping { give_up_at } => give_up_at,
        }
    }
}

fn stop_agents(ctx: &RunContext, agents: &BTreeSet<String>, reason: &str) {
    for agent in agents {
        ctx.deps.registry.send(
            agent,
            ToAgent::Stop {
                run_id: ctx.id.clone(),
                reason: reason.to_owned(),
            },
        );
    }
}

fn describe(spec: &HttpSpec) -> String {
    // A staged load says where it goes, not only where it starts.
    let staged = |start: u64, unit: &str| {
        let mut targets = vec![start.to_string()];
        targets.extend(spec.stages.iter().map(|s| s.target.to_string()));
        targets.dedup();
        format!("{} {unit}", targets.join(" → "))
    };
    let load = match spec.model {
        LoadModel::Open => format!(
            "open model, {} over at most {} connections",
            staged(spec.rate, "req/s"),
            spec.connections
        ),
        LoadModel::Closed => format!("closed model, {}", staged(spec.connections, "connections")),
    };
    let end = match (spec.duration, spec.requests) {
        (Some(d), Some(r)) => format!("for {d:?} or {r} requests"),
        (Some(d), None) => format!("for {d:?}"),
        (None, Some(r)) => format!("for {r} requests"),
        (None, None) => String::new(),
    };
    format!("{load} {end}")
}

// === impl PartRun ===

impl PartRun<'_> {
    /// The agents whose shard still runs.
    fn running(&self) -> BTreeSet<String> {
        self.agents
            .iter()
            .filter(|(_, a)| a.state == ShardState::Running)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Ends `agent`'s shard as `state` (see [`AgentShard::end`]).
    fn end(&mut self, agent: &str, state: ShardState) {
        if let Some(a) = self.agents.get_mut(agent) {
            a.end(state);
        }
    }

    /// Sends every live agent its shard, all with one start instant, each recorded in the store first (a restarted
    /// coordinator judges late intervals by it).
    async fn assign(&mut self, ctx: &mut RunContext, live: &[AgentInfo]) {
        let refs: Vec<&AgentInfo> = live.iter().collect();
        let start_at =
            unix_ms().saturating_add(i64::try_from(START_DELAY.as_millis()).unwrap_or(i64::MAX));
        self.start_at_unix_ms = start_at;
        let bounds = intake::ShardBounds {
            start_unix_ms: start_at,
            bound_ms: i64::try_from(self.spec.load_bound().as_millis()).unwrap_or(i64::MAX),
            // The whole part's connections bound any one agent's (its share is never more).
            connections: self.spec.max_connections(),
        };
        let shares = shard_http(self.spec, &refs);
        let recorded: Vec<StoredShard> = shares
            .iter()
            .map(|share| StoredShard {
                agent: share.agent.clone(),
                part: self.part.id.clone(),
                start_unix_ms: bounds.start_unix_ms,
                bound_ms: bounds.bound_ms,
                // The part's connections, as the live intake judges: a pagination or scrape part describes its load
                // as a total that its agents' weights do not split the way they run it.
                connections: bounds.connections,
                epoch: live
                    .iter()
                    .find(|a| a.name == share.agent)
                    .map_or(0, |a| a.epoch),
            })
            .collect();
        if let Err(e) = ctx.deps.store.insert_shards(&ctx.id, &recorded).await {
            tracing::warn!(run = %ctx.id, "the part's shards could not be recorded ({e}): after a coordinator restart its late intervals would be refused");
        }
        for share in shares {
            let assignment = Assignment {
                run_id: ctx.id.clone(),
                part: self.part.id.clone(),
                start_at_unix_ms: start_at,
                orphan_timeout: ctx.orphan_timeout,
                work: (self.work)(share.shard),
            };
            if ctx.deps.registry.send_for_run(
                &share.agent,
                &ctx.id,
                ToAgent::Assign(Box::new(assignment)),
            ) {
                if self.spec.model == LoadModel::Open {
                    ctx.open_model_agents.insert(share.agent.clone());
                }
                self.agents.insert(share.agent, AgentShard::new(bounds));
            } else {
                ctx.lost.insert(share.agent.clone());
                ctx.find(
                    FindingKind::AgentGone,
                    format!(
                        "agent {:?} was gone before scenario {} started",
                        share.agent, self.part.label
                    ),
                );
            }
        }
        ctx.event(
            RunState::Running,
            format!(
                "scenario {}: {} on {} agents",
                self.part.label,
                self.part
                    .what
                    .clone()
                    .unwrap_or_else(|| describe(self.spec)),
                self.agents.len()
            ),
        );
    }
}
