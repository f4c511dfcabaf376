//! loadgrade's coordinator: takes plans, shards them over agents connected by gRPC, merges their histograms,
//! grades the result and writes the reports. Also the `loadgrade` command line (see [`cli`]).

pub mod agent_service;
pub mod aggregate;
pub mod analysis;
pub mod cli;
pub mod clock;
pub mod compare;
pub mod embedded;
pub mod grading;
pub mod probe;
pub mod ramp;
pub mod registry;
pub mod render;
pub mod run_service;
pub mod runner;
pub mod store;

use loadgrade_common::grade::Verdict;
use loadgrade_common::plan::{Plan, PlanError};
use loadgrade_proto::v1::agent_service_server::AgentServiceServer;
use loadgrade_proto::v1::run_service_server::RunServiceServer;
use registry::Registry;
use runner::FinishedRun;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use store::{Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Waiting,
    Running,
    Finished,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Waiting => "waiting",
            RunState::Running => "running",
            RunState::Finished => "finished",
        }
    }
}

/// The latest news of a run.
#[derive(Debug, Clone)]
pub struct RunEvent {
    pub state: RunState,
    pub message: String,
    /// Set when finished.
    pub verdict: Option<Verdict>,
}

/// Handles on a run in progress.
#[derive(Clone)]
pub struct RunControl {
    pub events: watch::Receiver<RunEvent>,
    pub cancel: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A run that has started; `finished` resolves with its report.
pub struct StartedRun {
    pub id: String,
    pub finished: JoinHandle<anyhow::Result<FinishedRun>>,
}

/// The coordinator's state: connected agents, the store, runs in progress.
pub struct Coordinator {
    pub registry: Arc<Registry>,
    pub store: Store,
    runs: Mutex<HashMap<String, RunControl>>,
}

impl Coordinator {
    pub fn new(store: Store) -> Arc<Coordinator> {
        Arc::new(Coordinator {
            registry: Arc::new(Registry::default()),
            store,
            runs: Mutex::new(HashMap::new()),
        })
    }

    /// Validates the plan, stores the run and starts it in the background.
    pub async fn start_run(
        self: &Arc<Self>,
        file: &str,
        text: &str,
    ) -> Result<StartedRun, StartError> {
        let plan = Plan::parse(file, text)?;
        let id = clock::new_run_id();
        self.store
            .insert_run(&id, &plan.name, file, text, &clock::now_rfc3339())
            .await?;
        let (events, receiver) = watch::channel(RunEvent {
            state: RunState::Waiting,
            message: format!("run {id} of plan {:?} accepted", plan.name),
            verdict: None,
        });
        let cancel = CancellationToken::new();
        self.lock_runs().insert(
            id.clone(),
            RunControl {
                events: receiver,
                cancel: cancel.clone(),
            },
        );
        let coordinator = self.clone();
        let run_id = id.clone();
        let finished = tokio::spawn(async move {
            let result =
                runner::execute(coordinator.clone(), run_id.clone(), plan, events, cancel).await;
            coordinator.lock_runs().remove(&run_id);
            if let Err(e) = &result {
                tracing::error!(run = %run_id, "run failed: {e:#}");
                let _ = coordinator.store.set_state(&run_id, "error").await;
            }
            result
        });
        Ok(StartedRun { id, finished })
    }

    /// Controls of a run in progress in this process.
    pub fn run_control(&self, id: &str) -> Option<RunControl> {
        self.lock_runs().get(id).cloned()
    }

    /// Cancels every run in progress and waits (at most `grace`) until each has written its report.
    pub async fn cancel_all(&self, grace: std::time::Duration) {
        for control in self.lock_runs().values() {
            control.cancel.cancel();
        }
        let deadline = tokio::time::Instant::now() + grace;
        while !self.lock_runs().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    fn lock_runs(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunControl>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

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
