//! A part's intake: inputs from its agents handled in order, intervals checked, stored in one transaction,
//! acknowledged and merged; shard ends, refusals and lost agents noted.

use super::PartRun;
use super::agents::ShardState;
use crate::report::agent_health::AgentHealth;
use crate::run::context::RunContext;
use crate::run::intake;
use crate::server::registry::RunInput;
use loadgrade_common::clock::unix_ms;
use loadgrade_common::interval::IntervalReport;
use loadgrade_common::protocol::{ShardOutcome, ToAgent};
use loadgrade_common::report::FindingKind;

impl PartRun<'_> {
    /// Handles inputs in their order; consecutive intervals are stored together (one transaction).
    pub(super) async fn handle_all(&mut self, ctx: &mut RunContext, inputs: Vec<RunInput>) {
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
                self.end(&agent, ShardState::Ended);
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
                self.end(&agent, ShardState::Refused);
            }
            RunInput::Gone { agent } => {
                if self.agents.contains_key(&agent) || ctx.agents.iter().any(|a| a.name == agent) {
                    ctx.lost.insert(agent.clone());
                }
                self.end(&agent, ShardState::Gone);
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
        if report.part != self.part.id || !self.agents.contains_key(&report.agent) {
            tracing::warn!(
                run = %ctx.id, agent = ?report.agent, part = ?report.part,
                "interval not of the part in progress or of an agent not assigned it: not stored"
            );
            self.acknowledge(ctx, report);
            return None;
        }
        let checked =
            intake::check(report).and_then(|decoded| match self.agents.get_mut(&report.agent) {
                Some(a) => {
                    intake::check_plausible(report, &decoded, &a.bounds, unix_ms(), &mut a.ledger)
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
        // Only an assigned agent's intervals get here (admit).
        let Some(agent) = self.agents.get_mut(&report.agent) else {
            return;
        };
        agent.reported += 1;
        agent.coverage.add(report, ctx.lost.contains(&report.agent));
        let merged = agent
            .health
            .get_or_insert_with(AgentHealth::default)
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
}
