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
    #[cfg(feature = "fault-injection")]
    pub faults: Arc<crate::faults::Faults>,
}

/// What watchers of a run see: its events, and how many agents are still running a shard of it.
#[derive(Clone)]
pub struct RunSignals {
    pub events: Arc<watch::Sender<RunEvent>>,
    pub shards_running: Arc<watch::Sender<usize>>,
}

pub struct RunContext {
    pub deps: RunDeps,
    pub id: String,
    events: Arc<watch::Sender<RunEvent>>,
    /// Agents still running a shard of the current part.
    pub shards_running: Arc<watch::Sender<usize>>,
    pub cancel: CancellationToken,
    /// The agents reserved for this run.
    pub agents: Vec<AgentInfo>,
    /// Messages from the reserved agents' sessions.
    pub route: mpsc::UnboundedReceiver<RunInput>,
    pub findings: Vec<Finding>,
    /// Each agent's health over the run: the sum of its parts.
    pub health: BTreeMap<String, AgentHealth>,
    /// Agents whose session ended while they had work.
    pub lost: BTreeSet<String>,
    /// Agents that ran an open-model part (their connection wait is a figure).
    pub open_model_agents: BTreeSet<String>,
    /// The plan's orphan_timeout, sent with every assignment.
    pub orphan_timeout: std::time::Duration,
}

impl RunContext {
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
            health: BTreeMap::new(),
            lost: BTreeSet::new(),
            open_model_agents: BTreeSet::new(),
            orphan_timeout: std::time::Duration::from_secs(10),
        }
    }

    /// Tells watchers (and the log) how the run is doing.
    pub fn event(&self, state: RunState, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(run = %self.id, "{message}");
        let _ = self.events.send(RunEvent {
            run_id: self.id.clone(),
            state,
            message,
            verdict: None,
        });
    }

    /// Notes something wrong with the measurement.
    pub fn find(&mut self, kind: FindingKind, message: impl Into<String>) {
        self.findings.push(Finding::new(kind, message));
    }
}
