//! Preflight: before any load, and for `loadgrade check`. The coordinator checks what it knows (agents selected
//! vs `min_agents`, their versions and clock offsets, free disk for its store); each agent that would run a
//! scenario checks, for the exact share it would get, its allowlist and caps, the target answering one probe, its
//! open-file limit and ephemeral ports, and its spool's disk (agent/src/preflight.rs). A probe, never load.

use crate::scenario::cache::shard_target;
use crate::server::registry::{AgentInfo, Registry};
use crate::store::Store;
use loadgrade_common::plan::{Plan, ScenarioSpec};
use loadgrade_common::preflight::{CheckKind, CheckRow};
use loadgrade_common::shard::{
    Assignment, CacheShard, PaginationPhase, PaginationShard, PartId, ScrapeShard, Work,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long an agent may take for its probes (each bounded by its own timeout, 10 s at most).
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(30);
/// A clock offset above this is a warning: the agent corrects its start instant by its estimate, but figures
/// dated by two clocks (the timeline) are this far apart.
const CLOCK_WARN_MS: f64 = 100.0;
/// Longest a check waits for a newly connected agent's first clock estimate.
const CLOCK_WAIT: Duration = Duration::from_secs(3);
/// Free disk for the store below which a run's intervals may not fit.
const STORE_FAIL_BYTES: u64 = 64 << 20;
const STORE_WARN_BYTES: u64 = 1 << 30;

/// The work each agent would get for each scenario of `plan` over `agents` (as the scenario modules split it;
/// a ramp at its largest step; a cache with its key prefix; pagination and scrape on the agents they run on).
pub fn work_by_agent(
    plan: &Plan,
    agents: &[AgentInfo],
    run_id: &str,
) -> BTreeMap<String, Vec<Assignment>> {
    let refs: Vec<&AgentInfo> = agents.iter().collect();
    let mut by_agent: BTreeMap<String, Vec<Assignment>> = BTreeMap::new();
    for scenario in &plan.scenarios {
        let shares: Vec<(String, Work)> = match &scenario.spec {
            ScenarioSpec::Http(spec) => crate::run::shards::shard_http(spec, &refs)
                .into_iter()
                .map(|s| (s.agent, Work::Http(s.shard)))
                .collect(),
            ScenarioSpec::Ramp(ramp) => {
                let largest = ramp
                    .steps
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, c)| **c)
                    .map_or(0, |(i, _)| i);
                crate::run::shards::shard_http(&ramp.step(largest), &refs)
                    .into_iter()
                    .map(|s| (s.agent, Work::Http(s.shard)))
                    .collect()
            }
            ScenarioSpec::Cache(spec) => crate::run::shards::shard_http(&spec.load, &refs)
                .into_iter()
                .map(|s| {
                    let work = Work::Cache(CacheShard {
                        load: s.shard,
                        target: shard_target(spec),
                        key_space: spec.key_space,
                        zipf: spec.zipf,
                        seed: spec.seed.unwrap_or(0),
                        key_prefix: format!("loadgrade:{run_id}:"),
                    });
                    (s.agent, work)
                })
                .collect(),
            ScenarioSpec::Pagination(spec) => agents
                .iter()
                .take(usize::try_from(spec.agents).unwrap_or(usize::MAX).max(1))
                .map(|a| {
                    let work = Work::Pagination(PaginationShard {
                        spec: spec.clone(),
                        phase: PaginationPhase::Measure,
                    });
                    (a.name.clone(), work)
                })
                .collect(),
            ScenarioSpec::Scrape(spec) => agents
                .iter()
                .take(1)
                .map(|a| {
                    let work = Work::Scrape(ScrapeShard {
                        spec: spec.clone(),
                        interval: 0,
                    });
                    (a.name.clone(), work)
                })
                .collect(),
        };
        for (agent, work) in shares {
            by_agent.entry(agent).or_default().push(Assignment {
                run_id: run_id.to_owned(),
                part: PartId {
                    scenario: scenario.name.clone(),
                    stage: 0,
                },
                start_at_unix_ms: 0,
                orphan_timeout: plan.orphan_timeout,
                work,
            });
        }
    }
    by_agent
}

/// Every check for `plan` on `agents` (the agents it selects: reserved for a run, or connected for `check`).
/// `busy`: selected agents busy with other runs now (the run would queue behind them).
pub async fn check(
    registry: &std::sync::Arc<Registry>,
    store: &Store,
    plan: &Plan,
    agents: &[AgentInfo],
    busy: usize,
    run_id: &str,
) -> Vec<CheckRow> {
    // An agent that just connected has no clock estimate until its first heartbeat's answer (about a second).
    let deadline = tokio::time::Instant::now() + CLOCK_WAIT;
    let mut latest: Vec<AgentInfo> = agents.to_vec();
    while latest.iter().any(|a| a.clock.is_none()) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for agent in &mut latest {
            if let Some(now) = registry.agent(&agent.name) {
                agent.clock = now.clock;
            }
        }
    }
    let mut rows = coordinator_rows(store, plan, &latest, busy);
    let mut asks = tokio::task::JoinSet::new();
    for (agent, items) in work_by_agent(plan, agents, run_id) {
        let registry = registry.clone();
        asks.spawn(async move {
            let answer = registry.preflight(&agent, items, AGENT_TIMEOUT).await;
            (agent, answer)
        });
    }
    let mut answered = Vec::new();
    while let Some(joined) = asks.join_next().await {
        match joined {
            Ok((_, Ok(agent_rows))) => answered.extend(agent_rows),
            Ok((agent, Err(why))) => answered.push(
                CheckRow::fail(
                    CheckKind::AgentAnswer,
                    why.to_string(),
                    "check the agent is running and connected (loadgrade-agent logs), then check again",
                )
                .on_agent(&agent),
            ),
            Err(e) => answered.push(CheckRow::fail(
                CheckKind::AgentAnswer,
                format!("the preflight task failed: {e}"),
                "check again",
            )),
        }
    }
    // One order whatever the answers' order: by agent, then scenario as the agent sent them.
    answered.sort_by(|a, b| a.agent.cmp(&b.agent));
    rows.extend(answered);
    rows
}

/// What the coordinator knows itself.
fn coordinator_rows(
    store: &Store,
    plan: &Plan,
    agents: &[AgentInfo],
    busy: usize,
) -> Vec<CheckRow> {
    let mut rows = Vec::new();
    rows.push(CheckRow::ok(
        CheckKind::Plan,
        format!(
            "{:?}: {} scenario(s), valid",
            plan.name,
            plan.scenarios.len()
        ),
    ));
    let selector = if plan.agents.is_empty() {
        String::new()
    } else {
        let labels: Vec<String> = plan
            .agents
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(" with labels {}", labels.join(","))
    };
    let have = agents.len();
    let min = usize::try_from(plan.min_agents).unwrap_or(usize::MAX);
    let value = format!(
        "{have} connected{selector} (min_agents {}){}",
        plan.min_agents,
        if busy > 0 {
            format!(", {busy} of them busy with another run: this one would queue")
        } else {
            String::new()
        }
    );
    rows.push(if have < min {
        CheckRow::fail(
            CheckKind::Agents,
            value,
            "start more agents (loadgrade-agent --coordinator URL), give them the plan's labels (--label), or lower \
             min_agents",
        )
    } else if busy > 0 {
        CheckRow::warn(CheckKind::Agents, value, "the run starts when the busy agents' runs end")
    } else {
        CheckRow::ok(CheckKind::Agents, value)
    });
    let ours = env!("CARGO_PKG_VERSION");
    for agent in agents {
        let value = format!("version {}, {} core(s)", agent.version, agent.cores);
        rows.push(
            if agent.version == ours {
                CheckRow::ok(CheckKind::AgentVersion, value)
            } else {
                CheckRow::warn(
                    CheckKind::AgentVersion,
                    format!("{value}; the coordinator is {ours}"),
                    "install the same loadgrade version on agents and coordinator",
                )
            }
            .on_agent(&agent.name),
        );
        rows.push(clock_row(agent).on_agent(&agent.name));
    }
    rows.push(store_row(store));
    rows
}

fn clock_row(agent: &AgentInfo) -> CheckRow {
    match agent.clock {
        None => CheckRow::warn(
            CheckKind::ClockOffset,
            "not measured yet: no heartbeat round trip from this agent",
            "wait a second after the agent connects, then check again",
        ),
        Some(c) => {
            let value = format!("{:+.1} ms (± {:.1} ms)", c.offset_ms, c.rtt_ms / 2.0);
            if c.offset_ms.abs() > CLOCK_WARN_MS {
                CheckRow::warn(
                    CheckKind::ClockOffset,
                    value,
                    "synchronise the clocks (chrony or systemd-timesyncd on agents and coordinator)",
                )
            } else {
                CheckRow::ok(CheckKind::ClockOffset, value)
            }
        }
    }
}

fn store_row(store: &Store) -> CheckRow {
    match store.free_disk() {
        None => CheckRow::ok(
            CheckKind::StoreDisk,
            "not measured: the store is not a file here (PostgreSQL or in memory)",
        ),
        Some(Err(e)) => CheckRow::warn(
            CheckKind::StoreDisk,
            format!("not measured: {e}"),
            "check the store's folder",
        ),
        Some(Ok((file, free))) => {
            let value = format!("{} MiB free at {}", free >> 20, file.display());
            let hint = "free disk space for the store, or move it (--database)";
            if free < STORE_FAIL_BYTES {
                CheckRow::fail(CheckKind::StoreDisk, value, hint)
            } else if free < STORE_WARN_BYTES {
                CheckRow::warn(CheckKind::StoreDisk, value, hint)
            } else {
                CheckRow::ok(CheckKind::StoreDisk, value)
            }
        }
    }
}
