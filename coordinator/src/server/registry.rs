//! Connected agents: who is here, who is busy with which run, and where their messages go. Speaks domain types;
//! the agent service converts at the wire.

use loadgrade_common::interval::IntervalReport;
use loadgrade_common::protocol::{
    ClockEstimate, Hello, PreflightReply, ProbeReply, ShardDone, ShardRefused, ToAgent,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

/// Messages for a running run from its agents' sessions.
#[derive(Debug)]
pub enum RunInput {
    Interval(Box<IntervalReport>),
    Done {
        agent: String,
        done: ShardDone,
    },
    Refused {
        agent: String,
        refused: ShardRefused,
    },
    /// The agent's session ended.
    Gone {
        agent: String,
    },
}

/// Where a session's outgoing messages go.
pub type AgentSender = mpsc::Sender<ToAgent>;

/// A connected agent as others see it.
#[derive(Debug, Clone)]
pub struct AgentInfo {
    pub name: String,
    pub version: String,
    pub cores: u32,
    pub epoch: u64,
    /// The agent's latest clock estimate (from its heartbeats); `None` before the first.
    pub clock: Option<ClockEstimate>,
    /// Run this agent is reserved for.
    pub run: Option<String>,
    /// A probe agent: answers probe requests, never runs load.
    pub probe_only: bool,
    /// The operator's labels (`--label zone=a`).
    pub labels: BTreeMap<String, String>,
}

impl AgentInfo {
    /// A load agent carrying every label of `selector`.
    pub fn selected_by(&self, selector: &BTreeMap<String, String>) -> bool {
        !self.probe_only
            && selector
                .iter()
                .all(|(k, v)| self.labels.get(k).is_some_and(|have| have == v))
    }
}

/// Whether a run can have its agents now.
#[derive(Debug)]
pub enum Reservation {
    /// Reserved: these agents are the run's until it releases them.
    Reserved(Vec<AgentInfo>),
    /// Runs submitted earlier that may want the same agents go first (`ahead`), or the agents it selects are busy
    /// with other runs (`busy`).
    Queued { ahead: usize, busy: usize },
    /// Too few selected agents are connected.
    Waiting { have: usize },
}

/// Two selectors some agent could both satisfy (no label asked with two values): their runs queue one after the
/// other.
fn compatible(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
    a.iter().all(|(k, v)| b.get(k).is_none_or(|w| w == v))
}

/// Most sharding weight (cores) one agent may claim.
pub const MAX_CORES: u32 = 256;

/// An agent of this name is connected already.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an agent named {0:?} is connected already: give each agent its own --name")]
pub struct DuplicateName(pub String);

/// Why a probe agent gave no reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentProbeError {
    #[error("no probe agent named {0:?} is connected (loadgrade-agent --probe-only)")]
    NotConnected(String),
    #[error("agent {0:?} is not connected")]
    AgentNotConnected(String),
    #[error("agent {agent:?} did not answer the preflight within {timeout:?}")]
    PreflightSilent { agent: String, timeout: Duration },
    #[error("probe agent {agent:?} did not answer within {timeout:?}")]
    Silent { agent: String, timeout: Duration },
    #[error("probe agent {agent:?}: {why}")]
    Failed { agent: String, why: String },
}

struct Entry {
    info: AgentInfo,
    /// This session's id (the registry's own counter): a later session under the same name never answers to it.
    session: u64,
    tx: AgentSender,
}

/// Where a run's messages go, and which agents belong to it.
struct RunRoute {
    tx: mpsc::UnboundedSender<RunInput>,
    /// The agents reserved for the run when it started: only their messages reach it (a reconnected session of one
    /// of them too, so its spooled intervals arrive).
    agents: std::collections::BTreeSet<String>,
}

#[derive(Default)]
struct Inner {
    agents: BTreeMap<String, Entry>,
    routes: HashMap<String, RunRoute>,
    /// Probe requests waiting for their reply.
    probes: HashMap<u64, oneshot::Sender<ProbeReply>>,
    /// Preflight requests waiting for their reply.
    preflights: HashMap<u64, oneshot::Sender<PreflightReply>>,
    /// Runs waiting for agents, in the order they were submitted, with their selectors.
    queue: Vec<(String, BTreeMap<String, String>)>,
}

#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
    /// Fires whenever an agent arrives or leaves, or agents are released.
    pub changed: Notify,
    next_probe: AtomicU64,
    next_session: AtomicU64,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an agent and returns its session id. A name already connected is refused: two agents sharing one would
    /// knock each other off (the old session ends within the heartbeat timeout when its agent is really gone).
    pub fn register(&self, hello: &Hello, tx: AgentSender) -> Result<u64, DuplicateName> {
        let session = self.next_session.fetch_add(1, Ordering::Relaxed);
        let replaced = {
            let mut inner = self.lock();
            if inner.agents.contains_key(&hello.name) {
                return Err(DuplicateName(hello.name.clone()));
            }
            let info = AgentInfo {
                name: hello.name.clone(),
                version: hello.version.clone(),
                // The sharding weight an agent may claim is capped: a forged `cores = 1000` takes no more.
                cores: hello.cores.clamp(1, MAX_CORES),
                epoch: hello.epoch,
                clock: None,
                run: None,
                probe_only: hello.probe_only,
                labels: hello.labels.clone(),
            };
            let old = inner
                .agents
                .insert(hello.name.clone(), Entry { info, session, tx });
            old.and_then(|e| {
                e.info
                    .run
                    .and_then(|run| inner.routes.get(&run).map(|r| r.tx.clone()))
            })
        };
        if let Some(route) = replaced {
            let _ = route.send(RunInput::Gone {
                agent: hello.name.clone(),
            });
        }
        self.changed.notify_waiters();
        Ok(session)
    }

    /// Removes the agent if `session` is still its current one (a late end of a replaced session removes
    /// nothing), telling its run.
    pub fn unregister(&self, name: &str, session: u64) {
        let route = {
            let mut inner = self.lock();
            match inner.agents.get(name) {
                Some(e) if e.session == session => {
                    let run = inner.agents.remove(name).and_then(|e| e.info.run);
                    run.and_then(|r| inner.routes.get(&r).map(|r| r.tx.clone()))
                }
                _ => None,
            }
        };
        if let Some(route) = route {
            let _ = route.send(RunInput::Gone {
                agent: name.to_owned(),
            });
        }
        self.changed.notify_waiters();
    }

    /// Ends every agent session (the coordinator is shutting down). Agents see their stream end and dial again.
    pub fn close_all(&self) {
        self.lock().agents.clear();
        self.changed.notify_waiters();
    }

    /// The agent's latest clock estimate.
    pub fn heartbeat(&self, name: &str, session: u64, clock: Option<ClockEstimate>) {
        if let Some(e) = self
            .lock()
            .agents
            .get_mut(name)
            .filter(|e| e.session == session)
            && clock.is_some()
        {
            e.info.clock = clock;
        }
    }

    pub fn agents(&self) -> Vec<AgentInfo> {
        self.lock()
            .agents
            .values()
            .map(|e| e.info.clone())
            .collect()
    }

    /// Agents connected.
    pub fn count(&self) -> usize {
        self.lock().agents.len()
    }

    /// One agent, if connected.
    pub fn agent(&self, name: &str) -> Option<AgentInfo> {
        self.lock().agents.get(name).map(|e| e.info.clone())
    }

    /// [`Self::reserve`] for a run that selects any agent and is not queued.
    pub fn reserve_idle(
        &self,
        run: &str,
        min: usize,
        route: mpsc::UnboundedSender<RunInput>,
    ) -> Option<Vec<AgentInfo>> {
        match self.reserve(run, &BTreeMap::new(), min, route) {
            Reservation::Reserved(agents) => Some(agents),
            _ => None,
        }
    }

    /// Puts `run` in the queue (submission order): a run submitted later that may want the same agents waits
    /// until this one has its agents or leaves.
    pub fn enqueue(&self, run: &str, selector: &BTreeMap<String, String>) {
        self.lock().queue.push((run.to_owned(), selector.clone()));
    }

    /// Takes `run` out of the queue (it gave up waiting); the runs behind it move up.
    pub fn leave_queue(&self, run: &str) {
        self.lock().queue.retain(|(r, _)| r != run);
        self.changed.notify_waiters();
    }

    /// Runs in the queue now.
    pub fn queued(&self) -> usize {
        self.lock().queue.len()
    }

    /// Reserves every idle agent `selector` selects for `run` at once, if there are at least `min` of them and no
    /// run ahead of it in the queue may want them (probe agents never count), and routes their messages to
    /// `route`. Otherwise reserves nothing and says why.
    pub fn reserve(
        &self,
        run: &str,
        selector: &BTreeMap<String, String>,
        min: usize,
        route: mpsc::UnboundedSender<RunInput>,
    ) -> Reservation {
        let mut inner = self.lock();
        let ahead = inner
            .queue
            .iter()
            .take_while(|(r, _)| r != run)
            .filter(|(_, s)| compatible(s, selector))
            .count();
        let (idle, busy) = inner
            .agents
            .values()
            .filter(|e| e.info.selected_by(selector))
            .fold((0, 0), |(idle, busy), e| {
                if e.info.run.is_none() {
                    (idle + 1, busy)
                } else {
                    (idle, busy + 1)
                }
            });
        if ahead > 0 {
            return Reservation::Queued { ahead, busy };
        }
        if idle < min.max(1) {
            return if busy > 0 && idle + busy >= min.max(1) {
                Reservation::Queued { ahead, busy }
            } else {
                Reservation::Waiting { have: idle }
            };
        }
        inner.queue.retain(|(r, _)| r != run);
        let reserved: Vec<AgentInfo> = inner
            .agents
            .values_mut()
            .filter(|e| e.info.run.is_none() && e.info.selected_by(selector))
            .map(|e| {
                e.info.run = Some(run.to_owned());
                e.info.clone()
            })
            .collect();
        inner.routes.insert(
            run.to_owned(),
            RunRoute {
                tx: route,
                agents: reserved.iter().map(|a| a.name.clone()).collect(),
            },
        );
        drop(inner);
        self.changed.notify_waiters();
        Reservation::Reserved(reserved)
    }

    /// Routes the late messages of an interrupted run's `agents` (their spooled intervals, after a coordinator
    /// restart) to `route`, reserving none of them: they are free for new runs meanwhile.
    pub fn route_late(
        &self,
        run: &str,
        agents: std::collections::BTreeSet<String>,
        route: mpsc::UnboundedSender<RunInput>,
    ) {
        let route = RunRoute { tx: route, agents };
        self.lock().routes.insert(run.to_owned(), route);
    }

    /// Frees the run's agents and drops its route.
    pub fn release(&self, run: &str) {
        let mut inner = self.lock();
        inner.routes.remove(run);
        for e in inner.agents.values_mut() {
            if e.info.run.as_deref() == Some(run) {
                e.info.run = None;
            }
        }
        drop(inner);
        self.changed.notify_waiters();
    }

    pub fn idle_count(&self) -> usize {
        self.lock()
            .agents
            .values()
            .filter(|e| e.info.run.is_none() && !e.info.probe_only)
            .count()
    }

    /// Route for a run's messages from `agent`, if the run is in progress and the agent is one of its own.
    pub fn route_for(&self, run: &str, agent: &str) -> Option<mpsc::UnboundedSender<RunInput>> {
        self.lock()
            .routes
            .get(run)
            .filter(|r| r.agents.contains(agent))
            .map(|r| r.tx.clone())
    }

    /// Sends to an agent's session; false when it is gone.
    pub fn send(&self, name: &str, message: ToAgent) -> bool {
        let tx = self.lock().agents.get(name).map(|e| e.tx.clone());
        tx.is_some_and(|tx| tx.try_send(message).is_ok())
    }

    /// Sends to an agent's session only while it is reserved for `run`; false otherwise. A session that replaced
    /// a run's agent (a reconnect) is not that run's agent: it gets no part of the run.
    pub fn send_for_run(&self, name: &str, run: &str, message: ToAgent) -> bool {
        let tx = self
            .lock()
            .agents
            .get(name)
            .filter(|e| e.info.run.as_deref() == Some(run))
            .map(|e| e.tx.clone());
        tx.is_some_and(|tx| tx.try_send(message).is_ok())
    }
}

mod requests;
#[cfg(test)]
mod tests;
