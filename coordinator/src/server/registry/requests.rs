//! Questions the coordinator asks one agent outside any run, each answered on the agent's session or given up at
//! its timeout: a preflight of a plan's shares (no load), and a probe agent's reading of a process or cgroup.

use super::{AgentProbeError, Registry};
use loadgrade_common::plan::LocalTarget;
use loadgrade_common::preflight::CheckRow;
use loadgrade_common::protocol::{
    Preflight, PreflightReply, ProbeOutcome, ProbeReading, ProbeReply, ProbeRequest, ToAgent,
};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::oneshot;

impl Registry {
    /// Asks `agent` to check `items` without load; its rows, or why there are none.
    pub async fn preflight(
        &self,
        agent: &str,
        items: Vec<loadgrade_common::shard::Assignment>,
        timeout: Duration,
    ) -> Result<Vec<CheckRow>, AgentProbeError> {
        let id = self.next_probe.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let sender = {
            let mut inner = self.lock();
            let sender = inner
                .agents
                .get(agent)
                .map(|e| e.tx.clone())
                .ok_or_else(|| AgentProbeError::AgentNotConnected(agent.to_owned()))?;
            inner.preflights.insert(id, tx);
            sender
        };
        let request = ToAgent::Preflight(Preflight {
            request_id: id,
            items,
        });
        let reply = if sender.try_send(request).is_ok() {
            tokio::time::timeout(timeout, rx)
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            None
        };
        self.lock().preflights.remove(&id);
        reply
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
        let id = self.next_probe.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let sender = {
            let mut inner = self.lock();
            let sender = inner
                .agents
                .get(agent)
                .filter(|e| e.info.probe_only)
                .map(|e| e.tx.clone())
                .ok_or_else(|| AgentProbeError::NotConnected(agent.to_owned()))?;
            inner.probes.insert(id, tx);
            sender
        };
        let request = ToAgent::Probe(ProbeRequest {
            request_id: id,
            target: target.clone(),
        });
        let reply = if sender.try_send(request).is_ok() {
            tokio::time::timeout(timeout, rx)
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            None
        };
        self.lock().probes.remove(&id);
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
