//! The coordinator's gRPC server: the agent service (sessions), the run service (CI and the command line), the
//! registry of connected agents, and the one mapping of errors to statuses.

pub mod agent_service;
pub mod registry;
pub mod run_service;
pub mod status;

use crate::Coordinator;
use loadgrade_proto::v1::agent_service_server::AgentServiceServer;
use loadgrade_proto::v1::run_service_server::RunServiceServer;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

/// Serves the agent and run services on `listener` until `shutdown` fires.
pub async fn serve(
    coordinator: Arc<Coordinator>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let registry = coordinator.registry.clone();
    // Graceful shutdown waits for open streams: end the agents' sessions so it can finish.
    let closing = async move {
        shutdown.cancelled().await;
        registry.close_all();
    };
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        // Dead peers (a link cut without a reset) are found by HTTP/2 pings, not only by their silence.
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(5)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(5)))
        .add_service(AgentServiceServer::new(agent_service::AgentSessions::new(
            coordinator.registry.clone(),
        )))
        .add_service(RunServiceServer::new(run_service::Runs::new(coordinator)))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), closing)
        .await
}

/// Binds `addr` and serves in the background; returns the bound address.
pub async fn spawn_server(
    coordinator: Arc<Coordinator>,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        if let Err(e) = serve(coordinator, listener, shutdown).await {
            tracing::error!("coordinator server stopped: {e}");
        }
    });
    Ok((bound, handle))
}
