//! The gRPC service agents dial into: one bidirectional session per agent process. Wire messages are converted to
//! domain messages here, on the way in and on the way out.

use super::registry::{Registry, RunInput};
use super::status::ServiceError;
use super::tls::{IdentityError, agent_identity};
use loadgrade_common::clock::unix_ms;
use loadgrade_common::protocol::{
    FromAgent, HeartbeatAck, Hello, MAX_AGENT_VERSION, ToAgent, Welcome, check_agent_name,
};
use loadgrade_proto::v1;
use loadgrade_proto::v1::agent_service_server::AgentService;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status, Streaming};

/// Heartbeat period asked of agents.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// A session silent this long (five heartbeats) is taken as gone, even if its stream never ends (a link cut
/// without a reset): its run learns the agent is lost, and its name is free again.
pub const SESSION_SILENCE: Duration = Duration::from_secs(5);

pub struct AgentSessions {
    registry: Arc<Registry>,
    /// Mutual TLS is on: an agent's name must be one its client certificate is for.
    require_identity: bool,
    /// The server is stopping: a session opened now (an agent dialing again on its open connection) would hold
    /// the graceful shutdown open, so it is refused.
    closing: tokio_util::sync::CancellationToken,
}

impl AgentSessions {
    pub fn new(
        registry: Arc<Registry>,
        require_identity: bool,
        closing: tokio_util::sync::CancellationToken,
    ) -> Self {
        AgentSessions {
            registry,
            require_identity,
            closing,
        }
    }
}

/// How long a new session may take to say hello.
const HELLO_WITHIN: Duration = Duration::from_secs(10);

/// The first message must be a hello in this coordinator's protocol, from a named agent, within [`HELLO_WITHIN`].
async fn hello(inbound: &mut Streaming<v1::AgentMessage>) -> Result<Hello, ServiceError> {
    let first = tokio::time::timeout(HELLO_WITHIN, inbound.message())
        .await
        .map_err(|_| ServiceError::NoHello(HELLO_WITHIN))?
        .map_err(|_| ServiceError::Closed)?;
    let hello = match first.map(FromAgent::try_from) {
        Some(Ok(FromAgent::Hello(hello))) => hello,
        _ => return Err(ServiceError::NotHello),
    };
    if hello.protocol != loadgrade_proto::PROTOCOL_VERSION {
        return Err(ServiceError::Protocol {
            agent: hello.protocol,
            ours: loadgrade_proto::PROTOCOL_VERSION,
        });
    }
    check_agent_name(&hello.name).map_err(|e| ServiceError::BadName(e.to_string()))?;
    if hello.version.len() > MAX_AGENT_VERSION
        || !hello.version.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(ServiceError::BadVersion(MAX_AGENT_VERSION));
    }
    if hello.labels.len() > loadgrade_common::protocol::MAX_LABELS {
        return Err(ServiceError::BadName(format!(
            "an agent carries at most {} labels",
            loadgrade_common::protocol::MAX_LABELS
        )));
    }
    for (key, value) in &hello.labels {
        // The refusal says what is wrong, not the (possibly huge or unprintable) label itself.
        loadgrade_common::protocol::check_label(key, value).map_err(|_| {
            ServiceError::BadName(
                "a label's key and value must each be 1 to 63 lower-case letters, digits, '-', '_' or '.'".to_owned(),
            )
        })?;
    }
    Ok(hello)
}

type Outbound = Pin<Box<dyn Stream<Item = Result<v1::CoordinatorMessage, Status>> + Send>>;

#[tonic::async_trait]
impl AgentService for AgentSessions {
    type SessionStream = Outbound;

    async fn session(
        &self,
        request: Request<Streaming<v1::AgentMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        if self.closing.is_cancelled() {
            return Err(ServiceError::Closed.into());
        }
        let peer_certs = request.peer_certs();
        if self.require_identity && peer_certs.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(ServiceError::Identity(IdentityError::NoCertificate).into());
        }
        let mut inbound = request.into_inner();
        let hello = hello(&mut inbound).await?;
        let identity = if self.require_identity {
            agent_identity(peer_certs.as_deref().map(Vec::as_slice), &hello.name)
        } else {
            Ok(())
        };
        if let Err(e) = identity {
            tracing::warn!(claimed = ?hello.name, "agent refused: {e}");
            return Err(ServiceError::Identity(e).into());
        }
        let (tx, rx) = mpsc::channel::<ToAgent>(1024);
        let welcome = ToAgent::Welcome(Welcome {
            server_time_unix_ms: unix_ms(),
            heartbeat_interval_ms: u32::try_from(HEARTBEAT_INTERVAL.as_millis())
                .unwrap_or(u32::MAX),
            protocol: loadgrade_proto::PROTOCOL_VERSION,
        });
        tx.send(welcome).await.map_err(|_| ServiceError::Closed)?;
        if self.closing.is_cancelled() {
            return Err(ServiceError::Closed.into());
        }
        let session = self
            .registry
            .register(&hello, tx.clone())
            .map_err(ServiceError::from)?;
        tracing::info!(
            agent = %hello.name, cores = hello.cores, version = %hello.version, probe_only = hello.probe_only,
            "agent connected"
        );
        tokio::spawn(receive(
            self.registry.clone(),
            hello.name,
            session,
            inbound,
            tx,
            self.closing.clone(),
        ));
        let outbound = ReceiverStream::new(rx).map(|m| Ok(v1::CoordinatorMessage::from(m)));
        Ok(Response::new(Box::pin(outbound)))
    }
}

/// Routes an agent's messages until its session ends, then unregisters it.
async fn receive(
    registry: Arc<Registry>,
    name: String,
    session: u64,
    mut inbound: Streaming<v1::AgentMessage>,
    tx: mpsc::Sender<ToAgent>,
    closing: tokio_util::sync::CancellationToken,
) {
    // Intervals dropped because their run is not in progress with this agent: logged once per session, counted.
    let mut dropped = 0u64;
    loop {
        let next = tokio::select! {
            // The server is stopping: this session ends (its agent dials again later), so the shutdown can finish.
            () = closing.cancelled() => break,
            next = tokio::time::timeout(SESSION_SILENCE, inbound.message()) => next,
        };
        let wire = match next {
            Ok(Ok(Some(wire))) => wire,
            Ok(Ok(None)) => break,
            Ok(Err(status)) => {
                tracing::warn!(agent = %name, %status, "agent session broken");
                break;
            }
            Err(_) => {
                tracing::warn!(agent = %name, "agent silent for {SESSION_SILENCE:?}: session closed");
                break;
            }
        };
        let message = match FromAgent::try_from(wire) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(agent = %name, "ignoring a message that does not convert: {e}");
                continue;
            }
        };
        match message {
            FromAgent::Heartbeat(hb) => {
                registry.heartbeat(&name, session, hb.clock);
                let _ = tx.try_send(ToAgent::HeartbeatAck(HeartbeatAck {
                    agent_sent_at_unix_ms: hb.sent_at_unix_ms,
                    server_time_unix_ms: unix_ms(),
                }));
            }
            FromAgent::Interval(mut report) => {
                // Who measured it is the session's agent, whatever the message says; only a run's own agents
                // reach it.
                if report.agent != name {
                    tracing::warn!(agent = %name, claimed = ?report.agent, "interval claims another agent; taken as its sender's");
                    report.agent = name.clone();
                }
                match registry.route_for(&report.run_id, &name) {
                    Some(route) => {
                        let _ = route.send(RunInput::Interval(report));
                    }
                    None => {
                        // Not a run in progress with this agent (it ended, was interrupted by a restart, or never
                        // had it): acknowledged so the agent's spool lets it go, and not stored.
                        if dropped == 0 {
                            tracing::warn!(
                                agent = %name, run = ?report.run_id, seq = report.seq,
                                "interval for a run this agent is not in progress in, dropped (said once a session)"
                            );
                        }
                        dropped += 1;
                        let _ = tx.try_send(ToAgent::Ack {
                            run_id: report.run_id,
                            epoch: report.epoch,
                            seq: report.seq,
                        });
                    }
                }
            }
            FromAgent::ShardDone(done) => {
                if let Some(route) = registry.route_for(&done.run_id, &name) {
                    let _ = route.send(RunInput::Done {
                        agent: name.clone(),
                        done,
                    });
                }
            }
            FromAgent::ShardRefused(refused) => {
                if let Some(route) = registry.route_for(&refused.run_id, &name) {
                    let _ = route.send(RunInput::Refused {
                        agent: name.clone(),
                        refused,
                    });
                }
            }
            FromAgent::ProbeReply(reply) => registry.probe_replied(reply),
            FromAgent::PreflightReply(reply) => registry.preflight_replied(reply),
            FromAgent::Hello(_) => tracing::warn!(agent = %name, "ignoring a second hello"),
        }
    }
    if dropped > 1 {
        tracing::warn!(agent = %name, dropped, "intervals for runs not in progress, dropped in this session");
    }
    tracing::info!(agent = %name, "agent disconnected");
    registry.unregister(&name, session);
}
