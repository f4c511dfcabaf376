//! The coordinator's state: connected agents, the store, and the runs in progress in this process. Starting a run
//! validates its plan, stores it and spawns its task; the task's end (normal, error or panic) is always recorded.

use crate::clock;
use crate::run::context::RunDeps;
use crate::run::{self, FinishedRun, RunError};
use crate::server::registry::Registry;
use crate::store::{Store, StoreError};
use loadgrade_common::plan::{Plan, PlanError};
use loadgrade_common::run::{RunEvent, RunState};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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
    pub finished: JoinHandle<Result<FinishedRun, RunError>>,
}

pub struct Coordinator {
    pub registry: Arc<Registry>,
    pub store: Store,
    runs: Mutex<HashMap<String, RunControl>>,
    #[cfg(feature = "fault-injection")]
    pub faults: Arc<crate::faults::Faults>,
}

impl Coordinator {
    pub fn new(store: Store) -> Arc<Coordinator> {
        Arc::new(Coordinator {
            registry: Arc::new(Registry::default()),
            store,
            runs: Mutex::new(HashMap::new()),
            #[cfg(feature = "fault-injection")]
            faults: Arc::default(),
        })
    }

    fn deps(&self) -> RunDeps {
        RunDeps {
            registry: self.registry.clone(),
            store: self.store.clone(),
            #[cfg(feature = "fault-injection")]
            faults: self.faults.clone(),
        }
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
            run_id: id.clone(),
            state: RunState::Waiting,
            message: format!("run {id} of plan {:?} accepted", plan.name),
            verdict: None,
        });
        let events = Arc::new(events);
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
            // The run in a task of its own: a panic there unwinds through its load guard (stopping the agents) and
            // is seen here as a failed run, never a silently vanished one.
            let task = tokio::spawn(run::execute(
                coordinator.deps(),
                run_id.clone(),
                plan,
                events.clone(),
                cancel,
            ));
            let result = match task.await {
                Ok(result) => result,
                Err(e) if e.is_panic() => Err(RunError::Panicked(panic_text(e.into_panic()))),
                Err(_) => Err(RunError::Aborted),
            };
            coordinator.lock_runs().remove(&run_id);
            if let Err(e) = &result {
                tracing::error!(run = %run_id, "run failed: {e}");
                let _ = coordinator.store.set_state(&run_id, RunState::Error).await;
                let _ = events.send(RunEvent {
                    run_id: run_id.clone(),
                    state: RunState::Error,
                    message: e.to_string(),
                    verdict: None,
                });
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
    pub async fn cancel_all(&self, grace: Duration) {
        for control in self.lock_runs().values() {
            control.cancel.cancel();
        }
        let deadline = tokio::time::Instant::now() + grace;
        while !self.lock_runs().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn lock_runs(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunControl>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The message of a panic payload.
fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}
