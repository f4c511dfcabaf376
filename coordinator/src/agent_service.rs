//! The gRPC service agents dial into: one bidirectional session per agent process.

use crate::clock::unix_ms;
use crate::registry::{Registry, RunInput};
use loadgrade_proto::v1::agent_message::Kind as In;
use loadgrade_proto::v1::agent_service_server::AgentService;
use loadgrade_proto::v1::coordinator_message::Kind as Out;
use loadgrade_proto::v1::{AgentMessage, CoordinatorMessage, Welcome};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// Heartbeat period asked of agents.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

pub struct AgentSessions {
    registry: Arc<Registry>,
}

impl AgentSessions {
    pub fn new(registry: Arc<Registry>) -> Self {
        AgentSessions { registry }
    }
}

#[tonic::async_trait]
impl AgentService for AgentSessions {
    type SessionStream = ReceiverStream<Result<CoordinatorMessage, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let mut inbound = request.into_inner();
        let hello = match inbound.message().await? {
            Some(AgentMessage {
                kind: Some(In::Hello(hello)),
            }) => hello,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message of a session must be hello",
                ));
            }
        };
        if hello.protocol != loadgrade_proto::PROTOCOL_VERSION {
            return Err(Status::failed_precondition(format!(
                "agent speaks protocol {}, this coordinator speaks {}",
                hello.protocol,
                loadgrade_proto::PROTOCOL_VERSION
            )));
        }
        if hello.name.trim().is_empty() {
            return Err(Status::invalid_argument("agent name is empty"));
        }
        let (tx, rx) = mpsc::channel(1024);
        let welcome = CoordinatorMessage {
            kind: Some(Out::Welcome(Welcome {
                server_time_unix_ms: unix_ms(),
                heartbeat_interval_ms: HEARTBEAT_INTERVAL.as_millis() as u32,
                protocol: loadgrade_proto::PROTOCOL_VERSION,
            })),
        };
        tx.send(Ok(welcome))
            .await
            .map_err(|_| Status::unavailable("session closed"))?;
        self.registry.register(&hello, tx);
        tracing::info!(
            agent = %hello.name, cores = hello.cores, version = %hello.version, probe_only = hello.probe_only,
            "agent connected"
        );

        let registry = self.registry.clone();
        tokio::spawn(async move {
            let (name, epoch) = (hello.name, hello.epoch);
            loop {
                let kind = match inbound.message().await {
                    Ok(Some(AgentMessage { kind: Some(kind) })) => kind,
                    Ok(Some(AgentMessage { kind: None })) => continue,
                    Ok(None) => break,
                    Err(status) => {
                        tracing::warn!(agent = %name, %status, "agent session broken");
                        break;
                    }
                };
                match kind {
                    In::Heartbeat(hb) => {
                        registry.heartbeat(&name, epoch, (hb.sent_at_unix_ms - unix_ms()) as f64)
                    }
                    In::Interval(report) => {
                        if let Some(route) = registry.route(&report.run_id) {
                            let _ = route.send(RunInput::Interval(Box::new(report)));
                        }
                    }
                    In::ShardDone(done) => {
                        if let Some(route) = registry.route(&done.run_id) {
                            let _ = route.send(RunInput::Done {
                                agent: name.clone(),
                                done,
                            });
                        }
                    }
                    In::ShardRefused(refused) => {
                        if let Some(route) = registry.route(&refused.run_id) {
                            let _ = route.send(RunInput::Refused {
                                agent: name.clone(),
                                refused,
                            });
                        }
                    }
                    In::ProbeReply(reply) => registry.probe_replied(reply),
                    In::Hello(_) => tracing::warn!(agent = %name, "ignoring a second hello"),
                }
            }
            tracing::info!(agent = %name, "agent disconnected");
            registry.unregister(&name, epoch);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
