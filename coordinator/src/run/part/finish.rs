//! What a part says while it runs and when it ends: progress every second, then its health added to the run's and
//! findings for generator faults, silent and lost agents, and a target that never answered.

use super::PartRun;
use super::agents::ShardState;
use crate::run::context::RunContext;
use loadgrade_common::clock::unix_ms;
use loadgrade_common::report::FindingKind;
use std::time::Duration;

impl PartRun<'_> {
    /// The part's progress so far, for watchers (every second) and the coordinator's /metrics. `bound`: the most
    /// the part may last from its start, the stop's grace included.
    pub(super) fn progress(&mut self, ctx: &RunContext, bound: Duration) {
        // Before the first second of load has ended there is nothing to say beyond the part's own start line.
        if unix_ms() < self.start_at_unix_ms.saturating_add(1000) {
            return;
        }
        if let Some((rate, p95)) = self.aggregate.last_second() {
            ctx.deps.metrics.live(rate, p95);
        }
        let planned = self.spec.planned_length().map_or_else(String::new, |p| {
            format!("{:.0} s planned, ", p.as_secs_f64())
        });
        ctx.progress(format!(
            "scenario {}: {} so far ({:.0} s; {planned}at most {:.0} s; {} of {} agents running)",
            self.part.label,
            self.aggregate.progress(),
            (unix_ms() - self.start_at_unix_ms).max(0) as f64 / 1000.0,
            bound.as_secs_f64(),
            self.running().len(),
            self.agents.len()
        ));
    }

    /// Adds this part's health to the run's, and notes faults, silent agents and a target that never answered.
    pub(super) fn finish(&self, ctx: &mut RunContext) {
        let healths = self
            .agents
            .iter()
            .filter_map(|(agent, a)| a.health.as_ref().map(|h| (agent, h)));
        for (agent, health) in healths {
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
        for (agent, a) in &self.agents {
            let count = a.reported;
            if count == 0 && a.state != ShardState::Refused {
                ctx.find(
                    FindingKind::AgentNeverReported,
                    format!(
                        "agent {agent:?} never reported for scenario {}",
                        self.part.label
                    ),
                );
            } else if ctx.lost.contains(agent) {
                let coverage = a.coverage;
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
