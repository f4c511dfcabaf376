//! A coordinator and N agents in one process, connected over real gRPC on loopback: what `loadgrade run` and
//! `loadgrade demo` use.

use crate::store::Store;
use crate::{Coordinator, spawn_server};
use loadgrade_agent::AgentConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("cannot listen on loopback: {0}")]
    Listen(std::io::Error),
    #[error("embedded agents did not connect within 10 s")]
    AgentsSilent,
}

pub struct Embedded {
    pub coordinator: Arc<Coordinator>,
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Embedded {
    /// Starts the coordinator on 127.0.0.1 (free port) and `agents` in-process agents named `agent-1`..,
    /// and waits until they are connected.
    pub async fn start(store: Store, agents: u32) -> Result<Embedded, EmbeddedError> {
        Self::start_with(store, agents, |_| {}).await
    }

    /// As [`Embedded::start`], with every agent's configuration adjusted by `configure` first.
    pub async fn start_with(
        store: Store,
        agents: u32,
        configure: impl Fn(&mut AgentConfig),
    ) -> Result<Embedded, EmbeddedError> {
        let coordinator = Coordinator::new(store);
        let shutdown = CancellationToken::new();
        let (addr, server) = spawn_server(
            coordinator.clone(),
            ([127, 0, 0, 1], 0).into(),
            shutdown.clone(),
        )
        .await
        .map_err(EmbeddedError::Listen)?;
        let mut tasks = vec![server];
        for i in 1..=agents {
            let mut config = AgentConfig::new(format!("http://{addr}"), format!("agent-{i}"));
            // In-process agents load this machine's services: loopback is theirs to load.
            config.allowlist = loadgrade_agent::Allowlist::loopback();
            // In-process agents run for the person at this machine: the Prometheus on their PATH, if trusted.
            config.prometheus = loadgrade_agent::scrape::prometheus_on_path();
            configure(&mut config);
            let shutdown = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = loadgrade_agent::run(config, shutdown).await {
                    tracing::error!("embedded agent stopped: {e}");
                }
            }));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while coordinator.registry.agents().len() < agents as usize {
            if tokio::time::Instant::now() > deadline {
                return Err(EmbeddedError::AgentsSilent);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Embedded {
            coordinator,
            addr,
            shutdown,
            tasks,
        })
    }

    /// Stops agents and server and waits for them.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}
