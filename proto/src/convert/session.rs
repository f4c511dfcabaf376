//! The agent session's messages: hello, welcome, heartbeats, shard outcomes, probes, and the two envelopes.

use super::{ConvertError, agent_text, known};
use crate::v1;
use crate::v1::agent_message::Kind as FromAgentKind;
use crate::v1::coordinator_message::Kind as ToAgentKind;
use loadgrade_common::plan::LocalTarget;
use loadgrade_common::protocol::{
    ClockEstimate, FromAgent, Heartbeat, HeartbeatAck, Hello, Preflight, PreflightReply,
    ProbeOutcome, ProbeReading, ProbeReply, ProbeRequest, ShardDone, ShardOutcome, ShardRefused,
    ToAgent, Welcome,
};
use loadgrade_common::shard::PartId;

mirror!(
    Hello,
    v1::Hello {
        name,
        version,
        cores,
        epoch,
        protocol,
        probe_only,
        labels
    }
);
mirror!(
    Welcome,
    v1::Welcome {
        server_time_unix_ms,
        heartbeat_interval_ms,
        protocol
    }
);
mirror!(
    HeartbeatAck,
    v1::HeartbeatAck {
        agent_sent_at_unix_ms,
        server_time_unix_ms
    }
);

// === impl ToAgent ===

impl From<ToAgent> for v1::CoordinatorMessage {
    fn from(m: ToAgent) -> Self {
        let kind = match m {
            ToAgent::Welcome(w) => ToAgentKind::Welcome(w.into()),
            ToAgent::Assign(a) => ToAgentKind::Assign((*a).into()),
            ToAgent::Stop { run_id, reason } => ToAgentKind::Stop(v1::Stop { run_id, reason }),
            ToAgent::Ack { run_id, epoch, seq } => ToAgentKind::Ack(v1::Ack { run_id, seq, epoch }),
            ToAgent::Probe(p) => ToAgentKind::Probe(v1::ProbeRequest {
                request_id: p.request_id,
                target: Some(match p.target {
                    LocalTarget::Pid(pid) => v1::probe_request::Target::Pid(pid),
                    LocalTarget::Name(name) => v1::probe_request::Target::ProcessName(name),
                    LocalTarget::Cgroup(path) => v1::probe_request::Target::Cgroup(path),
                }),
            }),
            ToAgent::HeartbeatAck(a) => ToAgentKind::HeartbeatAck(a.into()),
            ToAgent::Preflight(p) => ToAgentKind::Preflight(v1::Preflight {
                request_id: p.request_id,
                items: p.items.into_iter().map(Into::into).collect(),
            }),
        };
        v1::CoordinatorMessage { kind: Some(kind) }
    }
}

impl TryFrom<v1::CoordinatorMessage> for ToAgent {
    type Error = ConvertError;

    fn try_from(m: v1::CoordinatorMessage) -> Result<Self, ConvertError> {
        Ok(
            match m
                .kind
                .ok_or(ConvertError::Missing("CoordinatorMessage.kind"))?
            {
                ToAgentKind::Welcome(w) => ToAgent::Welcome(Welcome {
                    server_time_unix_ms: w.server_time_unix_ms,
                    heartbeat_interval_ms: w.heartbeat_interval_ms,
                    protocol: w.protocol,
                }),
                ToAgentKind::Assign(a) => ToAgent::Assign(Box::new(a.try_into()?)),
                ToAgentKind::Stop(s) => ToAgent::Stop {
                    run_id: s.run_id,
                    reason: s.reason,
                },
                ToAgentKind::Ack(a) => ToAgent::Ack {
                    run_id: a.run_id,
                    epoch: a.epoch,
                    seq: a.seq,
                },
                ToAgentKind::Probe(p) => ToAgent::Probe(ProbeRequest {
                    request_id: p.request_id,
                    target: match p
                        .target
                        .ok_or(ConvertError::Missing("ProbeRequest.target"))?
                    {
                        v1::probe_request::Target::Pid(pid) => LocalTarget::Pid(pid),
                        v1::probe_request::Target::ProcessName(name) => LocalTarget::Name(name),
                        v1::probe_request::Target::Cgroup(path) => LocalTarget::Cgroup(path),
                    },
                }),
                ToAgentKind::HeartbeatAck(a) => ToAgent::HeartbeatAck(HeartbeatAck {
                    agent_sent_at_unix_ms: a.agent_sent_at_unix_ms,
                    server_time_unix_ms: a.server_time_unix_ms,
                }),
                ToAgentKind::Preflight(p) => ToAgent::Preflight(Preflight {
                    request_id: p.request_id,
                    items: p
                        .items
                        .into_iter()
                        .map(TryInto::try_into)
                        .collect::<Result<_, _>>()?,
                }),
            },
        )
    }
}

// === impl FromAgent ===

impl From<FromAgent> for v1::AgentMessage {
    fn from(m: FromAgent) -> Self {
        let kind = match m {
            FromAgent::Hello(h) => FromAgentKind::Hello(h.into()),
            FromAgent::Heartbeat(h) => FromAgentKind::Heartbeat(v1::Heartbeat {
                sent_at_unix_ms: h.sent_at_unix_ms,
                clock_offset_ms: h.clock.map(|c| c.offset_ms),
                clock_rtt_ms: h.clock.map(|c| c.rtt_ms),
            }),
            FromAgent::Interval(r) => FromAgentKind::Interval((*r).into()),
            FromAgent::ShardDone(d) => {
                let (outcome, error) = match d.outcome {
                    ShardOutcome::Completed => (v1::ShardOutcome::Completed, String::new()),
                    ShardOutcome::Stopped => (v1::ShardOutcome::Stopped, String::new()),
                    ShardOutcome::Failed(why) => (v1::ShardOutcome::Failed, why),
                };
                FromAgentKind::ShardDone(v1::ShardDone {
                    run_id: d.run_id,
                    scenario: d.part.scenario,
                    stage: d.part.stage,
                    intervals: d.intervals,
                    error,
                    outcome: outcome as i32,
                })
            }
            FromAgent::ShardRefused(r) => FromAgentKind::ShardRefused(v1::ShardRefused {
                run_id: r.run_id,
                scenario: r.part.scenario,
                stage: r.part.stage,
                reason: r.reason,
            }),
            FromAgent::ProbeReply(r) => FromAgentKind::ProbeReply(match r.outcome {
                ProbeOutcome::Reading(reading) => v1::ProbeReply {
                    request_id: r.request_id,
                    memory_bytes: reading.memory_bytes,
                    cpu_seconds: reading.cpu_seconds.unwrap_or(0.0),
                    has_cpu: reading.cpu_seconds.is_some(),
                    error: String::new(),
                },
                ProbeOutcome::Failed(error) => v1::ProbeReply {
                    request_id: r.request_id,
                    error,
                    ..Default::default()
                },
            }),
            FromAgent::PreflightReply(r) => FromAgentKind::PreflightReply(v1::PreflightReply {
                request_id: r.request_id,
                rows: r.rows.into_iter().map(Into::into).collect(),
            }),
        };
        v1::AgentMessage { kind: Some(kind) }
    }
}

impl TryFrom<v1::AgentMessage> for FromAgent {
    type Error = ConvertError;

    fn try_from(m: v1::AgentMessage) -> Result<Self, ConvertError> {
        Ok(
            match m.kind.ok_or(ConvertError::Missing("AgentMessage.kind"))? {
                FromAgentKind::Hello(h) => FromAgent::Hello(Hello {
                    name: h.name,
                    version: h.version,
                    cores: h.cores,
                    epoch: h.epoch,
                    protocol: h.protocol,
                    probe_only: h.probe_only,
                    labels: h.labels,
                }),
                FromAgentKind::Heartbeat(h) => FromAgent::Heartbeat(Heartbeat {
                    sent_at_unix_ms: h.sent_at_unix_ms,
                    clock: match (h.clock_offset_ms, h.clock_rtt_ms) {
                        (Some(offset_ms), Some(rtt_ms))
                            if offset_ms.is_finite() && rtt_ms.is_finite() =>
                        {
                            Some(ClockEstimate { offset_ms, rtt_ms })
                        }
                        _ => None,
                    },
                }),
                FromAgentKind::Interval(r) => FromAgent::Interval(Box::new(r.into())),
                FromAgentKind::ShardDone(d) => {
                    let outcome = match known::<v1::ShardOutcome>("ShardDone.outcome", d.outcome)? {
                        v1::ShardOutcome::Completed => ShardOutcome::Completed,
                        v1::ShardOutcome::Stopped => ShardOutcome::Stopped,
                        v1::ShardOutcome::Failed => ShardOutcome::Failed(agent_text(d.error)),
                        v1::ShardOutcome::Unspecified => {
                            return Err(ConvertError::UnknownEnum {
                                field: "ShardDone.outcome",
                                value: d.outcome,
                            });
                        }
                    };
                    FromAgent::ShardDone(ShardDone {
                        run_id: d.run_id,
                        part: PartId {
                            scenario: d.scenario,
                            stage: d.stage,
                        },
                        intervals: d.intervals,
                        outcome,
                    })
                }
                FromAgentKind::ShardRefused(r) => FromAgent::ShardRefused(ShardRefused {
                    run_id: r.run_id,
                    part: PartId {
                        scenario: r.scenario,
                        stage: r.stage,
                    },
                    reason: agent_text(r.reason),
                }),
                FromAgentKind::ProbeReply(r) => FromAgent::ProbeReply(ProbeReply {
                    request_id: r.request_id,
                    outcome: if r.error.is_empty() {
                        ProbeOutcome::Reading(ProbeReading {
                            memory_bytes: r.memory_bytes,
                            cpu_seconds: r.has_cpu.then_some(r.cpu_seconds),
                        })
                    } else {
                        ProbeOutcome::Failed(agent_text(r.error))
                    },
                }),
                FromAgentKind::PreflightReply(r) => FromAgent::PreflightReply(PreflightReply {
                    request_id: r.request_id,
                    rows: r
                        .rows
                        .into_iter()
                        .map(TryInto::try_into)
                        .collect::<Result<_, _>>()?,
                }),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_messages_survive_the_wire() {
        let from_agent = [
            FromAgent::Heartbeat(Heartbeat {
                sent_at_unix_ms: 5,
                clock: Some(ClockEstimate {
                    offset_ms: -3.5,
                    rtt_ms: 1.0,
                }),
            }),
            FromAgent::ShardDone(ShardDone {
                run_id: "r".into(),
                part: PartId {
                    scenario: "s".into(),
                    stage: 2,
                },
                intervals: 4,
                outcome: ShardOutcome::Failed("boom".into()),
            }),
            FromAgent::ProbeReply(ProbeReply {
                request_id: 9,
                outcome: ProbeOutcome::Reading(ProbeReading {
                    memory_bytes: 10,
                    cpu_seconds: None,
                }),
            }),
        ];
        for m in from_agent {
            assert_eq!(
                FromAgent::try_from(v1::AgentMessage::from(m.clone())),
                Ok(m)
            );
        }
        let to_agent = [
            ToAgent::Probe(ProbeRequest {
                request_id: 1,
                target: LocalTarget::Name("nginx".into()),
            }),
            ToAgent::Stop {
                run_id: "r".into(),
                reason: "why".into(),
            },
        ];
        for m in to_agent {
            assert_eq!(
                ToAgent::try_from(v1::CoordinatorMessage::from(m.clone())),
                Ok(m)
            );
        }
    }

    #[test]
    fn an_empty_envelope_or_outcome_is_refused() {
        assert!(FromAgent::try_from(v1::AgentMessage { kind: None }).is_err());
        let done = v1::AgentMessage {
            kind: Some(FromAgentKind::ShardDone(v1::ShardDone::default())),
        };
        assert!(
            FromAgent::try_from(done).is_err(),
            "an unspecified outcome is not a guess"
        );
    }
}
