//! The coordinator's gRPC server: the agent service (sessions), the run service (CI and the command line), the
//! registry of connected agents, and the one mapping of errors to statuses.

mod accept;
pub mod agent_service;
pub mod auth;
pub mod connections;
pub mod registry;
pub mod run_service;
pub mod status;
pub mod tls;

use crate::Coordinator;
use loadgrade_proto::v1::agent_service_server::AgentServiceServer;
use loadgrade_proto::v1::run_service_server::RunServiceServer;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Longest any handler may take to answer (a check waits up to 30 s for its agents; StartRun, lists and reports
/// take milliseconds). Streams (an agent's session, WatchRun) are bounded by their own heartbeats, not by this.
pub const HANDLER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Largest message an agent may send (an interval holds at most two histograms of 1 MiB encoded each).
pub const MAX_AGENT_MESSAGE: usize = 8 << 20;
/// Largest run-service request: a plan of up to [`loadgrade_common::plan::MAX_PLAN_BYTES`] and its file name.
pub const MAX_RUN_REQUEST: usize = loadgrade_common::plan::MAX_PLAN_BYTES + (64 << 10);

/// Who may talk to the coordinator: TLS with agent certificates, and tokens for the run service.
#[derive(Debug, Clone, Default)]
pub struct ServerSecurity {
    /// Mutual TLS: agents must present a certificate for their name. `None`: plain HTTP/2, agents are taken at
    /// their word (loopback, or `--insecure`).
    pub tls: Option<tls::ServerTls>,
    /// Tokens for the run service; none configured leaves it open.
    pub tokens: auth::Tokens,
}

/// What the server offers beside its services, and how it bounds its connections.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeOptions {
    /// grpc.reflection.v1 and v1alpha (for grpcurl): off unless asked (`--reflection`); it lists the services and
    /// their messages to anyone who can connect, tokens or not.
    pub reflection: bool,
    /// Caps on connections, and the time a new one has to start a call.
    pub connections: connections::ConnectionLimits,
}

/// Why the server stopped (or never started).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("TLS setup: {0}")]
    Tls(tonic::transport::Error),
    #[error("the gRPC server stopped: {0}")]
    Transport(tonic::transport::Error),
    #[error("the accept thread cannot start: {0}")]
    Accept(std::io::Error),
}

/// Serves the agent and run services (and grpc.health.v1, open to all) on `listener` until `shutdown` fires.
/// Health says NOT_SERVING from the moment the coordinator starts draining ([`Coordinator::drain`]).
pub async fn serve(
    coordinator: Arc<Coordinator>,
    listener: TcpListener,
    security: ServerSecurity,
    options: ServeOptions,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let registry = coordinator.registry.clone();
    let gate = connections::Gate::new(options.connections, coordinator.metrics.connections.clone());
    let agents_closing = shutdown.clone();
    // Graceful shutdown waits for open streams: end the agents' sessions so it can finish (and refuse new ones).
    let closing = async move {
        shutdown.cancelled().await;
        registry.close_all();
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<RunServiceServer<run_service::Runs>>()
        .await;
    health
        .set_serving::<AgentServiceServer<agent_service::AgentSessions>>()
        .await;
    let draining = coordinator.draining.clone();
    tokio::spawn(async move {
        draining.cancelled().await;
        for service in [
            "",
            <RunServiceServer<run_service::Runs> as tonic::server::NamedService>::NAME,
            <AgentServiceServer<agent_service::AgentSessions> as tonic::server::NamedService>::NAME,
        ] {
            health
                .set_service_status(service, tonic_health::ServingStatus::NotServing)
                .await;
        }
    });
    let reflection = if options.reflection {
        let v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(loadgrade_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1();
        let v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(loadgrade_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha();
        match (v1, v1alpha) {
            (Ok(v1), Ok(v1alpha)) => Some((v1, v1alpha)),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!("gRPC reflection is off: the descriptor set does not load: {e}");
                None
            }
        }
    } else {
        None
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &security.tls {
        builder = builder.tls_config(tls.config()).map_err(ServeError::Tls)?;
    }
    let agents = agent_service::AgentSessions::new(
        coordinator.registry.clone(),
        security.tls.is_some(),
        agents_closing,
    );
    let runs = run_service::Runs::new(coordinator, security.tokens);
    builder
        .timeout(HANDLER_DEADLINE)
        // Dead peers (a link cut without a reset) are found by HTTP/2 pings, not only by their silence.
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(5)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(5)))
        // Every call marks its connection as in use, so the first-call deadline spares it.
        .layer(tonic::service::InterceptorLayer::new(
            connections::CallSeen(gate.clone()),
        ))
        .add_service(health_service)
        .add_service(AgentServiceServer::new(agents).max_decoding_message_size(MAX_AGENT_MESSAGE))
        .add_service(RunServiceServer::new(runs).max_decoding_message_size(MAX_RUN_REQUEST))
        .add_optional_service(reflection.as_ref().map(|(v1, _)| v1.clone()))
        .add_optional_service(reflection.map(|(_, v1alpha)| v1alpha))
        .serve_with_incoming_shutdown(
            accept::Incoming::new(listener, gate).map_err(ServeError::Accept)?,
            closing,
        )
        .await
        .map_err(ServeError::Transport)
}

/// Binds `addr` and serves in the background without TLS or tokens (loopback: tests, `run`, `demo`); returns the
/// bound address.
pub async fn spawn_server(
    coordinator: Arc<Coordinator>,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    spawn_secure_server(coordinator, addr, ServerSecurity::default(), shutdown).await
}

/// Binds `addr` and serves in the background with `security`; returns the bound address.
pub async fn spawn_secure_server(
    coordinator: Arc<Coordinator>,
    addr: SocketAddr,
    security: ServerSecurity,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let (bound, server) = spawn_service(
        coordinator,
        addr,
        security,
        ServeOptions::default(),
        shutdown,
    )
    .await?;
    let handle = tokio::spawn(async move {
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("coordinator server stopped: {e}"),
            Err(e) => tracing::error!("coordinator server task ended: {e}"),
        }
    });
    Ok((bound, handle))
}

/// Binds `addr` and serves in the background with `security` and `options`; returns the bound address and the
/// server's task, which ends with why the server stopped (`Ok` after `shutdown`).
pub async fn spawn_service(
    coordinator: Arc<Coordinator>,
    addr: SocketAddr,
    security: ServerSecurity,
    options: ServeOptions,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, JoinHandle<Result<(), ServeError>>)> {
    let listener = connections::listen(addr)?;
    let bound = listener.local_addr()?;
    let handle = tokio::spawn(serve(coordinator, listener, security, options, shutdown));
    Ok((bound, handle))
}
