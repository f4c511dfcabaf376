//! Questions the coordinator asks one agent outside any run, each answered on the agent's session or given up at
//! its timeout: a preflight of a plan's shares (no load), and a probe agent's reading of a process or cgroup.

use super::{AgentProbeError, Entry, Inner, Registry};
use loadgrade_common::plan::LocalTarget;
use loadgrade_common::preflight::CheckRow;
use loadgrade_common::protocol::{
    Preflight, PreflightReply, ProbeOutcome, ProbeReading, ProbeReply, ProbeRequest, ToAgent,
};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::oneshot;

impl Registry {
    /// One question to `agent`'s session: a waiter registered in the map `pending` picks, `request` of its id sent,
    /// the answer awaited at most `timeout`, and the waiter removed whatever happens. `None` when the agent is not
    /// connected (or `admit` refuses it); `Some(None)` when it did not answer in time.
    async fn ask<R>(
        &self,
        agent: &str,
        admit: impl Fn(&Entry) -> bool,
        pending: fn(&mut Inner) -> &mut HashMap<u64, oneshot::Sender<R>>,
        request: impl FnOnce(u64) -> ToAgent,
        timeout: Duration,
    ) -> Option<Option<R>> {
        let id = self.next_probe.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let sender = {
            let mut inner = self.lock();
            let sender = inner
                .agents
                .get(agent)
                .filter(|e| admit(e))
                .map(|e| e.tx.clone())?;
            pending(&mut inner).insert(id, tx);
            sender
        };
        let reply = if sender.try_send(request(id)).is_ok() {
            tokio::time::timeout(timeout, rx)
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            None
        };
        pending(&mut self.lock()).remove(&id);
        Some(reply)
    }

    /// Asks `agent` to check `items` without load; its rows, or why there are none.
    pub async fn preflight(
        &self,
        agent: &str,
        items: Vec<loadgrade_common::shard::Assignment>,
        timeout: Duration,
    ) -> Result<Vec<CheckRow>, AgentProbeError> {
        let request = |request_id| ToAgent::Preflight(Preflight { request_id, items });
        self.ask(agent, |_| true, |i| &mut i.preflights, request, timeout)
            .await
            .ok_or_else(|| AgentProbeError::AgentNotConnected(agent.to_owned()))?
            .map(|r| r.rows)
            .ok_or_else(|| AgentProbeError::PreflightSilent {
                agent: agent.to_owned(),
                timeout,
            })
    }

    /// An agent's preflight answer arrived.
    pub fn preflight_replied(&self, reply: PreflightReply) {
        if let Some(waiting) = self.lock().preflights.remove(&reply.request_id) {
            let _ = waiting.send(reply);
        }
    }

    /// Asks probe agent `agent` to read `target` on its host.
    pub async fn probe(
        &self,
        agent: &str,
        target: &LocalTarget,
        timeout: Duration,
    ) -> Result<ProbeReading, AgentProbeError> {
        let request = |request_id| {
            ToAgent::Probe(ProbeRequest {
                request_id,
                target: target.clone(),
            })
        };
        let reply = self
            .ask(
                agent,
                |e| e.info.probe_only,
                |i| &mut i.probes,
                request,
                timeout,
            )
            .await
            .ok_or_else(|| AgentProbeError::NotConnected(agent.to_owned()))?;
        match reply.map(|r| r.outcome) {
            Some(ProbeOutcome::Reading(reading)) => Ok(reading),
            Some(ProbeOutcome::Failed(why)) => Err(AgentProbeError::Failed {
                agent: agent.to_owned(),
                why,
            }),
            None => Err(AgentProbeError::Silent {
                agent: agent.to_owned(),
                timeout,
            }),
        }
    }

    /// A probe agent's answer arrived.
    pub fn probe_replied(&self, reply: ProbeReply) {
        if let Some(waiting) = self.lock().probes.remove(&reply.request_id) {
            let _ = waiting.send(reply);
        }
    }
}
