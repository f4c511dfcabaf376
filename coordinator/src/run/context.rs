//! What a run carries while it executes: its reserved agents and their messages, what it found wrong, each agent's
//! health so far, and how it reports progress.

use crate::report::agent_health::AgentHealth;
use crate::server::registry::{AgentInfo, Registry, RunInput};
use crate::store::Store;
use loadgrade_common::report::{Finding, FindingKind};
use loadgrade_common::run::{RunEvent, RunState};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// What a run needs from the coordinator: the agents and the store, nothing more.
#[derive(Clone)]
pub struct RunDeps {
    pub registry: Arc<Registry>,
    pub store: Store,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Where the coordinator itself may connect (probes, a cache's Redis).
    pub outbound: Arc<crate::run::outbound::Outbound>,
    #[cfg(feature = "fault-injection")]
    pub faults: Arc<crate::faults::Faults>,
}

/// What watchers of a run see: its events, and how many agents are still running a shard of it.
#[derive(Clone)]
pub struct RunSignals {
    pub events: Arc<super::events::EventSender>,
    pub shards_running: Arc<watch::Sender<usize>>,
}

/// The most findings of one kind a run lists; more are counted in one finding.
pub const MAX_FINDINGS_PER_KIND: usize = 20;

pub struct RunContext {
    pub deps: RunDeps,
    pub id: String,
    events: Arc<super::events::EventSender>,
    /// Agents still running a shard of the current part.
    pub shards_running: Arc<watch::Sender<usize>>,
    pub cancel: CancellationToken,
    /// The agents reserved for this run.
    pub agents: Vec<AgentInfo>,
    /// Messages from the reserved agents' sessions.
    pub route: mpsc::UnboundedReceiver<RunInput>,
    findings: Vec<Finding>,
    /// Findings beyond [`MAX_FINDINGS_PER_KIND`] of their kind: counted, not kept.
    unlisted: Vec<(FindingKind, u64)>,
    /// Each agent's health over the run: the sum of its parts.
    pub health: BTreeMap<String, AgentHealth>,
    /// Agents whose session ended while they had work.
    pub lost: BTreeSet<String>,
    /// Agents that ran an open-model part (their connection wait is a figure).
    pub open_model_agents: BTreeSet<String>,
    /// The plan's orphan_timeout, sent with every assignment.
    pub orphan_timeout: std::time::Duration,
    /// The run's preflight rows (its agents' checks of each scenario's targets).
    pub preflight: Vec<loadgrade_common::preflight::CheckRow>,
}

impl RunContext {
    /// Every agent the run's preflight asked about `scenario` accepted its target (allowlist, caps, credentials,
    /// and for Redis a PING): the coordinator touches a target itself (a cache's FLUSHDB and INFO) only then,
    /// since it has no allowlist of its own and must not reach what the agents' operators did not allow.
    pub fn agents_accepted(&self, scenario: &str) -> bool {
        use loadgrade_common::preflight::{CheckKind, CheckStatus};
        let rows: Vec<_> = self
            .preflight
            .iter()
            .filter(|r| r.scenario == scenario)
            .collect();
        let accepted = rows
            .iter()
            .any(|r| r.check == CheckKind::Accepted && r.status == CheckStatus::Ok);
        let refused = rows
            .iter()
            .any(|r| r.status == CheckStatus::Fail && r.check.refuses_target());
        accepted && !refused
    }

    pub fn new(
        deps: RunDeps,
        id: &str,
        signals: RunSignals,
        cancel: CancellationToken,
        route: mpsc::UnboundedReceiver<RunInput>,
    ) -> Self {
        RunContext {
            deps,
            id: id.to_owned(),
            events: signals.events,
            shards_running: signals.shards_running,
            cancel,
            agents: Vec::new(),
            route,
            findings: Vec::new(),
            unlisted: Vec::new(),
            health: BTreeMap::new(),
            lost: BTreeSet::new(),
            open_model_agents: BTreeSet::new(),
            orphan_timeout: std::time::Duration::from_secs(10),
            preflight: Vec::new(),
        }
    }

    /// Tells watchers (and the log) how the run is doing.
    pub fn event(&self, state: RunState, message: impl Into<String>) {
        self.send(state, message.into(), false);
    }

    /// A progress line the next one supersedes (requests so far, the last second's rate and p95).
    pub fn progress(&self, message: impl Into<String>) {
        self.send(RunState::Running, message.into(), true);
    }

    fn send(&self, state: RunState, message: String, progress: bool) {
        tracing::info!(run = %self.id, "{message}");
        super::events::publish(
            &self.events,
            RunEvent {
                run_id: self.id.clone(),
                state,
                message,
                verdict: None,
                progress,
            },
        );
    }

    /// Notes something wrong with the measurement. The first [`MAX_FINDINGS_PER_KIND`] of a kind are kept word for
    /// word, the others counted: an agent sending a flood of bad intervals cannot grow the report without bound.
    pub fn find(&mut self, kind: FindingKind, message: impl Into<String>) {
        if self.findings.iter().filter(|f| f.kind == kind).count() < MAX_FINDINGS_PER_KIND {
            self.findings.push(Finding::new(kind, message));
            return;
        }
        match self.unlisted.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.unlisted.push((kind, 1)),
        }
    }

    /// The run's findings, with one more per kind that had too many to list, saying how many were left out.
    pub fn take_findings(&mut self) -> Vec<Finding> {
        let mut findings = std::mem::take(&mut self.findings);
        for (kind, n) in std::mem::take(&mut self.unlisted) {
            findings.push(Finding::new(
                kind,
                format!("and {n} more findings of this kind, not listed (the first {MAX_FINDINGS_PER_KIND} are)"),
            ));
        }
        findings
    }
}
