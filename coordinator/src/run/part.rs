//! Running one part of a scenario (a whole `http` scenario, or one ramp step) on the run's live agents: assign the
//! shards with one start instant, store and merge what comes back, stop agents that overrun or on cancel, and note
//! what went wrong with the measurement.

use super::context::RunContext;
use super::coverage::Coverage;
use super::intake;
use super::shards::shard_http;
use crate::report::agent_health::AgentHealth;
use crate::report::aggregate::HttpAggregate;
use crate::server::registry::{AgentInfo, RunInput};
use loadgrade_common::clock::unix_ms;
use loadgrade_common::interval::IntervalReport;
use loadgrade_common::plan::{HttpSpec, LoadModel};
use loadgrade_common::protocol::{ShardOutcome, ToAgent};
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
    assigned: BTreeSet<String>,
    pending: BTreeSet<String>,
    refused: BTreeSet<String>,
    reported: BTreeMap<String, u64>,
    /// Generator health of this part alone: a fault in one scenario is not diluted by the others.
    health: BTreeMap<String, AgentHealth>,
    aggregate: HttpAggregate,
    /// The common start instant, coordinator clock, Unix ms.
    start_at_unix_ms: i64,
    /// Per agent: how far into the part its intervals reach, and how many arrived after it was taken as lost.
    coverage: BTreeMap<String, Coverage>,
    /// Per agent: what its shard can have done, and what its accepted intervals add up to.
    bounds: BTreeMap<String, (intake::ShardBounds, intake::Ledger)>,
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
        assigned: BTreeSet::new(),
        pending: BTreeSet::new(),
        refused: BTreeSet::new(),
        reported: BTreeMap::new(),
        health: BTreeMap::new(),
        aggregate: HttpAggregate::new(spec.clone()),
        start_at_unix_ms: 0,
        coverage: BTreeMap::new(),
        bounds: BTreeMap::new(),
    };
    run.assign(ctx, &live);
    ctx.shards_running.send_replace(run.pending.len());
    let mut deadline = Instant::now() + START_DELAY + spec.load_bound() + FINISH_GRACE;
    let mut progress = tokio::time::interval(Duration::from_secs(1));
    progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stopping = false;
    while !run.pending.is_empty() {
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
                    ctx.shards_running.send_replace(run.pending.len());
                    #[cfg(feature = "fault-injection")]
                    if run.aggregate.requests() > 0 && ctx.deps.faults.panic_under_load() {
                        panic!("injected fault: the run task panics under load");
                    }
                }
                None => break,
            },
            () = sleep_until(deadline) => {
                if stopping {
                    for agent in std::mem::take(&mut run.pending) {
                        ctx.lost.insert(agent.clone());
                        ctx.find(FindingKind::AgentUnresponsive, format!(
                            "agent {agent:?} did not finish scenario {} after being stopped", part.label));
                    }
                } else {
                    ctx.find(FindingKind::Overran, format!(
                        "scenario {} overran its time bound and was stopped", part.label));
                    stop_agents(ctx, &run.pending, "scenario overran its time bound");
                    stopping = true;
                    deadline = Instant::now() + spec.request.timeout + STOP_GRACE;
                }
            }
            // Watchers hear every second, whether or not an interval just arrived.
            _ = progress.tick() => run.progress(ctx),
            () = ctx.cancel.cancelled(), if !stopping => {
                stop_agents(ctx, &run.pending, "run cancelled");
                stopping = true;
                deadline = Instant::now() + spec.request.timeout + STOP_GRACE;
            }
        }
    }
    ctx.shards_running.send_replace(0);
    run.finish(ctx);
    Some(run.aggregate)
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
    /// Sends every live agent its shard, all with one start instant.
    fn assign(&mut self, ctx: &mut RunContext, live: &[AgentInfo]) {
        let refs: Vec<&AgentInfo> = live.iter().collect();
        let start_at =
            unix_ms().saturating_add(i64::try_from(START_DELAY.as_millis()).unwrap_or(i64::MAX));
        self.start_at_unix_ms = start_at;
        for share in shard_http(self.spec, &refs) {
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
                let bounds = intake::ShardBounds {
                    start_unix_ms: start_at,
                    bound_ms: i64::try_from(self.spec.load_bound().as_millis()).unwrap_or(i64::MAX),
                    // The whole part's connections bound any one agent's (its share is never more).
                    connections: self.spec.max_connections(),
                };
                self.bounds
                    .insert(share.agent.clone(), (bounds, intake::Ledger::default()));
                self.pending.insert(share.agent);
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
        self.assigned = self.pending.clone();
        ctx.event(
            RunState::Running,
            format!(
                "scenario {}: {} on {} agents",
                self.part.label,
                self.part
                    .what
                    .clone()
                    .unwrap_or_else(|| describe(self.spec)),
                self.pending.len()
            ),
        );
    }

    /// Handles inputs in their order; consecutive intervals are stored together (one transaction).
    async fn handle_all(&mut self, ctx: &mut RunContext, inputs: Vec<RunInput>) {
        let mut intervals = Vec::new();
        for input in inputs {
            match input {
                RunInput::Interval(report) => intervals.push(report),
                other => {
                    if !intervals.is_empty() {
                        self.intervals(ctx, std::mem::take(&mut intervals)).await;
                    }
                    self.handle(ctx, other);
                }
            }
        }
        if !intervals.is_empty() {
            self.intervals(ctx, intervals).await;
        }
    }

    fn handle(&mut self, ctx: &mut RunContext, input: RunInput) {
        match input {
            RunInput::Interval(_) => {}
            RunInput::Done { agent, done } if done.part == self.part.id => {
                if let ShardOutcome::Failed(why) = &done.outcome {
                    ctx.find(
                        FindingKind::AgentFailed,
                        format!("agent {agent:?} failed scenario {}: {why}", self.part.label),
                    );
                }
                self.pending.remove(&agent);
            }
            RunInput::Done { .. } => {}
            RunInput::Refused { agent, refused } => {
                ctx.find(
                    FindingKind::AgentRefused,
                    format!(
                        "agent {agent:?} refused scenario {}: {}",
                        refused.part.scenario, refused.reason
                    ),
                );
                self.refused.insert(agent.clone());
                self.pending.remove(&agent);
            }
            RunInput::Gone { agent } => {
                if self.assigned.contains(&agent) || ctx.agents.iter().any(|a| a.name == agent) {
                    ctx.lost.insert(agent.clone());
                }
                self.pending.remove(&agent);
            }
        }
    }

    /// Checks a batch of intervals, stores the admitted ones in one transaction, acknowledges and merges them. Only
    /// agents assigned this part are heard; an interval of another part (a late one of an earlier part) is
    /// acknowledged and let go.
    // The reports arrive boxed (a RunInput each) and stay where they are.
    #[allow(clippy::vec_box)]
    async fn intervals(&mut self, ctx: &mut RunContext, reports: Vec<Box<IntervalReport>>) {
        let mut admitted = Vec::with_capacity(reports.len());
        for report in reports {
            ctx.deps.metrics.intervals_received.inc();
            if let Some(decoded) = self.admit(ctx, &report) {
                admitted.push((report, decoded));
            }
        }
        if admitted.is_empty() {
            return;
        }
        let refs: Vec<&IntervalReport> = admitted.iter().map(|(r, _)| r.as_ref()).collect();
        let writing = std::time::Instant::now();
        let stored = ctx.deps.store.insert_intervals(&refs).await;
        ctx.deps
            .metrics
            .store_write
            .observe(writing.elapsed().as_secs_f64());
        let stored = match stored {
            Ok(stored) => stored,
            Err(e) => {
                // Not acknowledged: each agent sends them again (its spool keeps them).
                for (report, _) in &admitted {
                    ctx.find(
                        FindingKind::BadInterval,
                        format!(
                            "an interval of agent {:?} could not be stored: {e}",
                            report.agent
                        ),
                    );
                }
                return;
            }
        };
        for ((report, decoded), new) in admitted.iter().zip(stored) {
            if new {
                ctx.deps.metrics.intervals_stored.inc();
                self.merge(ctx, report, decoded);
            } else {
                // Already stored and merged: its first acknowledgement was lost, so say it again.
                self.acknowledge(ctx, report);
            }
        }
    }

    /// An interval's checks before it is stored; `None` when it is let go (acknowledged or refused for good).
    fn admit(&mut self, ctx: &mut RunContext, report: &IntervalReport) -> Option<intake::Decoded> {
        if report.part != self.part.id || !self.assigned.contains(&report.agent) {
            tracing::warn!(
                run = %ctx.id, agent = ?report.agent, part = ?report.part,
                "interval not of the part in progress or of an agent not assigned it: not stored"
            );
            self.acknowledge(ctx, report);
            return None;
        }
        let checked =
            intake::check(report).and_then(|decoded| match self.bounds.get_mut(&report.agent) {
                Some((shard, ledger)) => {
                    intake::check_plausible(report, &decoded, shard, unix_ms(), ledger)
                        .map(|()| decoded)
                }
                None => Err(intake::IntakeError::NotAssigned),
            });
        match checked {
            Ok(decoded) => Some(decoded),
            Err(e) => {
                ctx.find(
                    FindingKind::BadInterval,
                    format!("an interval of agent {:?} was refused: {e}", report.agent),
                );
                // Refused for good: sending it again would not change that, so the agent may let it go.
                self.acknowledge(ctx, report);
                None
            }
        }
    }

    /// A newly stored interval: acknowledged, counted and merged.
    fn merge(&mut self, ctx: &mut RunContext, report: &IntervalReport, decoded: &intake::Decoded) {
        self.acknowledge(ctx, report);
        *self.reported.entry(report.agent.clone()).or_default() += 1;
        self.coverage
            .entry(report.agent.clone())
            .or_default()
            .add(report, ctx.lost.contains(&report.agent));
        let merged = self
            .health
            .entry(report.agent.clone())
            .or_default()
            .add(report, decoded)
            .and_then(|()| {
                if report.warmup {
                    self.aggregate.add_warmup(report);
                    Ok(())
                } else {
                    self.aggregate.add(report, decoded)
                }
            });
        if let Err(e) = merged {
            ctx.find(
                FindingKind::BadInterval,
                format!(
                    "an interval of agent {:?} did not decode: {e}",
                    report.agent
                ),
            );
        }
    }

    /// The part's progress so far, for watchers (every second) and the coordinator's /metrics.
    fn progress(&mut self, ctx: &RunContext) {
        if let Some((rate, p95)) = self.aggregate.last_second() {
            ctx.deps.metrics.live(rate, p95);
        }
        ctx.progress(format!(
            "scenario {}: {} so far ({:.0} of at most {:.0} s, {} of {} agents running)",
            self.part.label,
            self.aggregate.progress(),
            (unix_ms() - self.start_at_unix_ms).max(0) as f64 / 1000.0,
            self.spec.load_bound().as_secs_f64(),
            self.pending.len(),
            self.assigned.len()
        ));
    }

    /// Tells the agent its interval was taken (stored, or refused for good): its spool lets it go.
    fn acknowledge(&self, ctx: &RunContext, report: &IntervalReport) {
        ctx.deps.registry.send(
            &report.agent,
            ToAgent::Ack {
                run_id: report.run_id.clone(),
                epoch: report.epoch,
                seq: report.seq,
            },
        );
    }

    /// Adds this part's health to the run's, and notes faults, silent agents and a target that never answered.
    fn finish(&self, ctx: &mut RunContext) {
        for (agent, health) in &self.health {
            if let Err(e) = ctx.health.entry(agent.clone()).or_default().absorb(health) {
                ctx.find(
                    FindingKind::BadInterval,
                    format!("agent {agent:?}: health figures did not merge: {e}"),
                );
            }
            let cores = ctx
                .agents
                .iter()
                .find(|a| &a.name == agent)
                .map_or(1, |a| a.cores);
            for fault in health.faults(agent, cores) {
                ctx.find(
                    FindingKind::GeneratorFault,
                    format!("scenario {}: {fault}", self.part.label),
                );
            }
        }
        for agent in &self.assigned {
            let count = self.reported.get(agent).copied().unwrap_or(0);
            if count == 0 && !self.refused.contains(agent) {
                ctx.find(
                    FindingKind::AgentNeverReported,
                    format!(
                        "agent {agent:?} never reported for scenario {}",
                        self.part.label
                    ),
                );
            } else if ctx.lost.contains(agent) {
                let coverage = self.coverage.get(agent).copied().unwrap_or_default();
                let message = coverage.lost_message(
                    agent,
                    &self.part.label,
                    count,
                    self.start_at_unix_ms,
                    self.spec.planned_length(),
                );
                ctx.find(FindingKind::AgentLost, message);
            }
        }
        if self.part.timed && self.aggregate.histogram().is_empty() {
            let m = self.aggregate.metrics();
            let e = m.errors_by_class;
            ctx.find(
                FindingKind::NoResponse,
                format!(
                    "scenario {}: no response arrived from the target ({} requests: {} connect errors, {} timeouts, \
                     {} other; {} dropped), so nothing about it was measured",
                    self.part.label, m.requests, e.connect, e.timeout, e.other, m.dropped
                ),
            );
        }
    }
}
