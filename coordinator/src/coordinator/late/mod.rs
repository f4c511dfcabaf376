//! After a coordinator restart, an interrupted run stays open for what its agents still hold: the intervals in their
//! spools when the coordinator stopped, sent again by their next session. Each is judged against the shard recorded
//! at assignment (its time, its length, its connections), stored marked late and acknowledged; a second copy of one
//! stored before the stop is only acknowledged. The run closes when every agent of it is back and quiet, at the
//! latest `orphan_timeout` + [`LATE_GRACE`] after the restart, and its report is rebuilt from everything stored.

mod judge;

use super::{Coordinator, RunControl};
use crate::server::registry::RunInput;
use crate::store::{StoreError, StoredShard, UnfinishedRun};
use judge::{Judge, span};
use loadgrade_common::interval::IntervalReport;
use loadgrade_common::plan::Plan;
use loadgrade_common::protocol::ToAgent;
use loadgrade_common::report::{Finding, FindingKind};
use loadgrade_common::run::{RunEvent, RunState};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long after the restart, beyond the plan's `orphan_timeout`, an interrupted run waits for its agents: an agent
/// dials again within 10 s (its longest pause between tries) and sends its spool at once.
pub const LATE_GRACE: Duration = Duration::from_secs(30);
/// An agent counts as done sending once it is back and nothing late of the run has come for this long.
pub const LATE_QUIET: Duration = Duration::from_secs(3);
/// Refused late intervals named one by one in the report; more are counted.
const NAMED_REFUSALS: usize = 20;

/// An interrupted run waiting for its agents' late intervals.
pub(super) struct LateRun {
    pub run: UnfinishedRun,
    pub plan: Plan,
    pub shards: Vec<StoredShard>,
    pub stored: Vec<IntervalReport>,
}

/// What the wait brought.
#[derive(Default)]
struct Collected {
    /// Agents of the run seen connected since the restart, and when first.
    back: BTreeMap<String, Instant>,
    last_late: Option<Instant>,
    refusals: Vec<String>,
    refused: usize,
}

impl Coordinator {
    /// Opens `late` for its agents' spooled intervals: routed here, the run listed as running, its report written
    /// when the wait ends. Returns the longest the wait may last.
    pub(super) fn collect_late(self: &Arc<Self>, late: LateRun) -> Duration {
        let limit = late.plan.orphan_timeout + LATE_GRACE;
        let agents: BTreeSet<String> = late.shards.iter().map(|s| s.agent.clone()).collect();
        let (events, receiver) = crate::run::events::channel(RunEvent {
            run_id: late.run.id.clone(),
            state: RunState::Running,
            message: waiting_message(&agents, limit),
            verdict: None,
            progress: true,
        });
        let (_shards_running, shards_receiver) = watch::channel(0);
        let cancel = CancellationToken::new();
        self.lock_runs().insert(
            late.run.id.clone(),
            RunControl {
                events: receiver,
                cancel: cancel.clone(),
                shards_running: shards_receiver,
            },
        );
        let (tx, rx) = mpsc::unbounded_channel();
        self.registry.route_late(&late.run.id, agents.clone(), tx);
        let coordinator = self.clone();
        tokio::spawn(async move {
            let id = late.run.id.clone();
            let collected = coordinator
                .wait_for_late(&late, &agents, limit, rx, &cancel)
                .await;
            coordinator.registry.release(&id);
            let state = match coordinator.end_late(late, &agents, collected).await {
                Ok(verdict) => {
                    crate::run::events::publish(
                        &events,
                        RunEvent {
                            run_id: id.clone(),
                            state: RunState::Interrupted,
                            message: "interrupted: the report holds every interval stored"
                                .to_owned(),
                            verdict: Some(verdict),
                            progress: false,
                        },
                    );
                    RunState::Interrupted
                }
                Err(e) => {
                    tracing::error!(run = %id, "the interrupted run's report could not be stored: {e}");
                    let _ = coordinator
                        .store
                        .set_state(&id, RunState::Interrupted)
                        .await;
                    RunState::Interrupted
                }
            };
            coordinator.lock_runs().remove(&id);
            coordinator.metrics.run_ended(state);
        });
        limit
    }

    async fn wait_for_late(
        &self,
        late: &LateRun,
        agents: &BTreeSet<String>,
        limit: Duration,
        mut inputs: mpsc::UnboundedReceiver<RunInput>,
        cancel: &CancellationToken,
    ) -> Collected {
        let mut judge = Judge::new(&late.shards, &late.stored);
        let mut collected = Collected::default();
        let started = Instant::now();
        let deadline = started + limit;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                input = inputs.recv() => match input {
                    Some(RunInput::Interval(report)) => self.take_late(&late.run.id, &mut judge, &mut collected, &report).await,
                    Some(_) => {}
                    None => break,
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    for agent in agents {
                        if !collected.back.contains_key(agent) && self.registry.agent(agent).is_some() {
                            collected.back.insert(agent.clone(), now);
                        }
                    }
                    let quiet_since = collected.back.values().copied().chain(collected.last_late).max();
                    let done = collected.back.len() == agents.len()
                        && quiet_since.is_some_and(|t| now.duration_since(t) >= LATE_QUIET);
                    if done || now >= deadline {
                        break;
                    }
                }
                () = cancel.cancelled() => break,
            }
        }
        collected
    }

    /// One late interval: judged, stored marked late and acknowledged; a copy of one stored before only acknowledged.
    async fn take_late(
        &self,
        run: &str,
        judge: &mut Judge,
        collected: &mut Collected,
        report: &IntervalReport,
    ) {
        collected.last_late = Some(Instant::now());
        let ack = || {
            self.registry.send(
                &report.agent,
                ToAgent::Ack {
                    run_id: report.run_id.clone(),
                    epoch: report.epoch,
                    seq: report.seq,
                },
            );
        };
        let key = (report.agent.clone(), report.epoch, report.seq);
        if judge.stored.contains(&key) {
            ack();
            return;
        }
        match judge.check(report) {
            Ok(()) => match self.store.insert_intervals_marked(&[report], true).await {
                Ok(_) => {
                    judge.stored.insert(key);
                    ack();
                }
                // Not acknowledged: the agent's spool keeps it for its next session.
                Err(e) => {
                    tracing::warn!(%run, agent = %report.agent, "a late interval could not be stored: {e}")
                }
            },
            Err(e) => {
                collected.refused += 1;
                if collected.refusals.len() < NAMED_REFUSALS {
                    collected.refusals.push(format!(
                        "a late interval of agent {:?} was refused: {e}",
                        report.agent
                    ));
                }
                // Refused for good: the agent may let it go.
                ack();
            }
        }
    }

    /// Rebuilds and stores the report of a run whose wait ended; returns its verdict.
    async fn end_late(
        &self,
        late: LateRun,
        agents: &BTreeSet<String>,
        collected: Collected,
    ) -> Result<loadgrade_common::grade::Verdict, StoreError> {
        let intervals = self.store.intervals_of(&late.run.id).await?;
        let per_agent = self.store.late_intervals(&late.run.id).await?;
        let missing: Vec<&String> = agents
            .iter()
            .filter(|a| !collected.back.contains_key(*a))
            .collect();
        let late_text = if per_agent.is_empty() {
            "none arrived late".to_owned()
        } else {
            per_agent
                .iter()
                .map(|l| {
                    format!(
                        "{} sent {} late ({} requests)",
                        l.agent, l.count, l.requests
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let back_text = if missing.is_empty() {
            // A session under the name is all the coordinator sees: an agent restarted without a spool on disk since
            // the stop, or (without TLS) another process under its name, sends nothing of the run.
            "every agent of the run reconnected; how far each one's intervals reach says whether its spool held all \
             it measured"
                .to_owned()
        } else {
            format!(
                "{} did not come back in time: what their spools still hold is not in it",
                missing
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let reach = reach_text(&late.shards, &intervals);
        let mut findings = vec![Finding::new(
            FindingKind::Interrupted,
            format!(
                "the coordinator stopped while this run was in progress (a restart or a crash); after the restart it \
                 waited for the agents' spooled intervals: the report holds {} intervals, {} of them late from the \
                 agents' spools ({late_text}); {back_text} ({reach}); nothing was run again",
                intervals.len(),
                per_agent.iter().map(|l| l.count).sum::<u64>(),
            ),
        )];
        findings.extend(
            collected
                .refusals
                .into_iter()
                .map(|m| Finding::new(FindingKind::BadInterval, m)),
        );
        if collected.refused > NAMED_REFUSALS {
            findings.push(Finding::new(
                FindingKind::BadInterval,
                format!(
                    "{} more late intervals were refused",
                    collected.refused - NAMED_REFUSALS
                ),
            ));
        }
        let lost: BTreeSet<String> = missing.into_iter().cloned().collect();
        let ending = super::ended::Ending {
            state: RunState::Interrupted,
            findings,
            agents: super::ended::RunAgents {
                assigned: agents,
                lost: &lost,
            },
        };
        self.store_ended_run(
            &late.run.id,
            &late.plan,
            late.run.started_at,
            &intervals,
            ending,
        )
        .await
    }
}

/// Per agent: how far into its last assigned part its stored intervals reach.
fn reach_text(shards: &[StoredShard], intervals: &[IntervalReport]) -> String {
    let mut last: BTreeMap<&str, &StoredShard> = BTreeMap::new();
    for s in shards {
        let later = last
            .get(s.agent.as_str())
            .is_none_or(|l| s.start_unix_ms >= l.start_unix_ms);
        if later {
            last.insert(&s.agent, s);
        }
    }
    last.iter()
        .map(|(agent, s)| {
            let end = intervals
                .iter()
                .filter(|i| i.agent == *agent && i.part == s.part)
                .map(|i| span(i).1)
                .max();
            match end {
                Some(end) => format!(
                    "{agent}'s intervals reach {:.1} s into {:?} stage {}",
                    (end - s.start_unix_ms) as f64 / 1000.0,
                    s.part.scenario,
                    s.part.stage
                ),
                None => format!(
                    "{agent} has no interval of {:?} stage {}",
                    s.part.scenario, s.part.stage
                ),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn waiting_message(agents: &BTreeSet<String>, limit: Duration) -> String {
    format!(
        "the coordinator restarted mid-run: waiting for the spooled intervals of its {} agents (at most {} s), then \
         the run ends INTERRUPTED with everything stored",
        agents.len(),
        limit.as_secs()
    )
}
