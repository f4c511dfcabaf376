//! The coordinator's state: connected agents, the store, and the runs in progress in this process. Starting a run
//! validates its plan, stores it and spawns its task; the task's end (normal, error or panic) is always recorded.

mod ended;
mod late;

pub use ended::Recovered;
pub use late::{LATE_GRACE, LATE_QUIET};

use crate::clock;
use crate::run::context::{RunDeps, RunSignals};
use crate::run::{self, FinishedRun, RunError};
use crate::server::registry::Registry;
use crate::store::{Store, StoreError};
use loadgrade_common::grade::Verdict;
use loadgrade_common::plan::redact::redact_plan_text;
use loadgrade_common::plan::{Plan, PlanError};
use loadgrade_common::report::{Finding, FindingKind};
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
    pub events: crate::run::events::EventReceiver,
    pub cancel: CancellationToken,
    /// Agents still running a shard of the run's current part.
    pub shards_running: watch::Receiver<usize>,
}

/// What a cancel achieved within its wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// No run of that id is in progress here.
    NotRunning,
    /// Every agent ended its shard: load stopped, requests in flight done.
    Stopped,
    /// Told to stop; these many agents were still finishing requests in flight when the wait ended.
    Stopping { agents: usize },
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the idempotency key must be 1 to {MAX_KEY} printable ASCII characters")]
    BadKey,
    #[error(
        "idempotency key {key:?} started run {run} with another plan: a key names one submission; use a new key for a \
         new plan"
    )]
    KeyReused { key: String, run: String },
    #[error(
        "{0} runs are queued or in progress on this coordinator already: wait for some to end (ListRuns) or cancel \
         some"
    )]
    QueueFull(usize),
    #[error("the coordinator is shutting down: submit the run again when it is back")]
    Draining,
    #[error("{MAX_CHECKS} checks are in progress already: try again when one has ended")]
    ChecksBusy,
    #[error(transparent)]
    Outbound(#[from] crate::run::outbound::PlanTargetError),
}

/// Checks at once: each makes every agent probe every target once, so their number is bounded.
pub const MAX_CHECKS: usize = 2;

/// The longest idempotency key.
pub const MAX_KEY: usize = 128;
/// Runs queued or in progress at once; a StartRun beyond is refused (RESOURCE_EXHAUSTED).
pub const MAX_RUNS_IN_PROGRESS: usize = 100;

/// A StartRun's answer: the run, and whether its idempotency key had started it before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub id: String,
    pub existing: bool,
}

/// A run that has started; `finished` resolves with its report.
pub struct StartedRun {
    pub id: String,
    pub finished: JoinHandle<Result<FinishedRun, RunError>>,
}

pub struct Coordinator {
    pub registry: Arc<Registry>,
    pub store: Store,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Fired when the coordinator starts shutting down: health says NOT_SERVING and no run starts.
    pub draining: CancellationToken,
    checks: tokio::sync::Semaphore,
    runs: Mutex<HashMap<String, RunControl>>,
    /// Where the coordinator itself may connect for a plan (probes, a cache's Redis): loopback and `--allow`.
    pub outbound: Arc<crate::run::outbound::Outbound>,
    #[cfg(feature = "fault-injection")]
    pub faults: Arc<crate::faults::Faults>,
}

impl Coordinator {
    /// A coordinator whose own connections stay on loopback.
    pub fn new(store: Store) -> Arc<Coordinator> {
        Self::with_outbound(store, crate::run::outbound::Outbound::default())
    }

    /// A coordinator that may connect, for a plan's probes and Redis, where `outbound` allows.
    pub fn with_outbound(
        store: Store,
        outbound: crate::run::outbound::Outbound,
    ) -> Arc<Coordinator> {
        Arc::new(Coordinator {
            outbound: Arc::new(outbound),
            registry: Arc::new(Registry::default()),
            store,
            metrics: Arc::default(),
            draining: CancellationToken::new(),
            checks: tokio::sync::Semaphore::new(MAX_CHECKS),
            runs: Mutex::new(HashMap::new()),
            #[cfg(feature = "fault-injection")]
            faults: Arc::default(),
        })
    }

    fn deps(&self) -> RunDeps {
        RunDeps {
            registry: self.registry.clone(),
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            outbound: self.outbound.clone(),
            #[cfg(feature = "fault-injection")]
            faults: self.faults.clone(),
        }
    }

    /// [`Self::start_run`] for the run service: with an idempotency key, a second submission returns the run the
    /// first one started (when its plan is the same) and starts nothing.
    pub async fn submit(
        self: &Arc<Self>,
        file: &str,
        text: &str,
        key: Option<&str>,
    ) -> Result<Submitted, StartError> {
        let Some(key) = key else {
            let started = self.start(file, text, None).await?;
            return Ok(Submitted {
                id: started.id,
                existing: false,
            });
        };
        if key.is_empty() || key.len() > MAX_KEY || !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(StartError::BadKey);
        }
        let earlier = |run: crate::store::KeyedRun| {
            if run.plan_toml == redact_plan_text(text) {
                Ok(Submitted {
                    id: run.id,
                    existing: true,
                })
            } else {
                Err(StartError::KeyReused {
                    key: key.to_owned(),
                    run: run.id,
                })
            }
        };
        if let Some(run) = self.store.run_by_key(key).await? {
            return earlier(run);
        }
        match self.start(file, text, Some(key)).await {
            Ok(started) => Ok(Submitted {
                id: started.id,
                existing: false,
            }),
            // Two submissions with one key at once: the store's unique index let one in; the other gets its run.
            Err(StartError::Store(e)) => match self.store.run_by_key(key).await? {
                Some(run) => earlier(run),
                None => Err(StartError::Store(e)),
            },
            Err(e) => Err(e),
        }
    }

    /// Validates the plan, stores the run and starts it in the background.
    pub async fn start_run(
        self: &Arc<Self>,
        file: &str,
        text: &str,
    ) -> Result<StartedRun, StartError> {
        self.start(file, text, None).await
    }

    async fn start(
        self: &Arc<Self>,
        file: &str,
        text: &str,
        key: Option<&str>,
    ) -> Result<StartedRun, StartError> {
        let plan = Plan::parse(file, text)?;
        self.outbound.check_plan(&plan).await?;
        if self.draining.is_cancelled() {
            return Err(StartError::Draining);
        }
        let in_progress = self.lock_runs().len();
        if in_progress >= MAX_RUNS_IN_PROGRESS {
            return Err(StartError::QueueFull(in_progress));
        }
        let id = clock::new_run_id();
        self.store
            .insert_run(
                &id,
                &plan.name,
                file,
                &redact_plan_text(text),
                &clock::now_rfc3339(),
                key,
            )
            .await?;
        let (events, receiver) = crate::run::events::channel(RunEvent {
            run_id: id.clone(),
            state: RunState::Queued,
            message: format!("run {id} of plan {:?} accepted", plan.name),
            verdict: None,
            progress: false,
        });
        let events = Arc::new(events);
        let (shards_running, shards_receiver) = watch::channel(0);
        let signals = RunSignals {
            events: events.clone(),
            shards_running: Arc::new(shards_running),
        };
        let cancel = CancellationToken::new();
        self.lock_runs().insert(
            id.clone(),
            RunControl {
                events: receiver,
                cancel: cancel.clone(),
                shards_running: shards_receiver,
            },
        );
        let failed_plan = plan.clone();
        let started_at = clock::now_rfc3339();
        let coordinator = self.clone();
        let run_id = id.clone();
        let finished = tokio::spawn(async move {
            // The run in a task of its own: a panic there unwinds through its load guard (stopping the agents) and
            // is seen here as a failed run, never a silently vanished one.
            let task = tokio::spawn(run::execute(
                coordinator.deps(),
                run_id.clone(),
                plan,
                signals,
                cancel,
            ));
            let result = match task.await {
                Ok(result) => result,
                Err(e) if e.is_panic() => {
                    Err(RunError::Panicked(ended::panic_text(e.into_panic())))
                }
                Err(_) => Err(RunError::Aborted),
            };
            coordinator.lock_runs().remove(&run_id);
            coordinator.registry.leave_queue(&run_id);
            if let Err(e) = &result {
                tracing::error!(run = %run_id, "run failed: {e}");
                // The run still ends with a report: INVALID, saying why (its agents were stopped by its guard).
                let finding = Finding::new(
                    FindingKind::RunFailed,
                    format!("the run failed and its load was stopped: {e}"),
                );
                // Its figures are what was stored before it failed.
                let intervals = coordinator
                    .store
                    .intervals_of(&run_id)
                    .await
                    .unwrap_or_default();
                let none = std::collections::BTreeSet::new();
                let ending = ended::Ending {
                    state: RunState::Error,
                    findings: vec![finding],
                    agents: ended::RunAgents {
                        assigned: &none,
                        lost: &none,
                    },
                };
                let stored = coordinator
                    .store_ended_run(&run_id, &failed_plan, started_at, &intervals, ending)
                    .await;
                if let Err(store_error) = stored {
                    tracing::error!(run = %run_id, "the failed run's report could not be stored: {store_error}");
                    let _ = coordinator.store.set_state(&run_id, RunState::Error).await;
                }
                crate::run::events::publish(
                    &events,
                    RunEvent {
                        run_id: run_id.clone(),
                        state: RunState::Error,
                        message: e.to_string(),
                        verdict: Some(Verdict::Invalid),
                        progress: false,
                    },
                );
            }
            coordinator
                .metrics
                .run_ended(events.borrow().latest().state);
            result
        });
        Ok(StartedRun { id, finished })
    }

    /// Preflight for `plan` on the agents it selects now (busy ones included: the run would queue behind them),
    /// without reserving them and without load. `loadgrade check` and the CheckPlan RPC.
    pub async fn check_plan(
        &self,
        file: &str,
        text: &str,
    ) -> Result<Vec<loadgrade_common::preflight::CheckRow>, StartError> {
        let plan = Plan::parse(file, text)?;
        self.outbound.check_plan(&plan).await?;
        let _permit = self
            .checks
            .try_acquire()
            .map_err(|_| StartError::ChecksBusy)?;
        let agents: Vec<_> = self
            .registry
            .agents()
            .into_iter()
            .filter(|a| a.selected_by(&plan.agents))
            .collect();
        let busy = agents.iter().filter(|a| a.run.is_some()).count();
        let id = format!("check-{}", clock::new_run_id());
        Ok(
            crate::run::preflight::check(&self.registry, &self.store, &plan, &agents, busy, &id)
                .await,
        )
    }

    /// The state of every run in progress in this process.
    pub fn states_in_progress(&self) -> Vec<RunState> {
        self.lock_runs()
            .values()
            .map(|c| c.events.borrow().latest().state)
            .collect()
    }

    /// Controls of a run in progress in this process.
    pub fn run_control(&self, id: &str) -> Option<RunControl> {
        self.lock_runs().get(id).cloned()
    }

    /// Cancels a run in progress and waits up to `wait` for its agents to end their shards.
    pub async fn cancel_run(&self, id: &str, wait: Duration) -> CancelOutcome {
        let Some(mut control) = self.run_control(id) else {
            return CancelOutcome::NotRunning;
        };
        control.cancel.cancel();
        let stopped = tokio::time::timeout(wait, control.shards_running.wait_for(|n| *n == 0))
            .await
            .is_ok();
        if stopped {
            CancelOutcome::Stopped
        } else {
            CancelOutcome::Stopping {
                agents: *control.shards_running.borrow(),
            }
        }
    }

    /// Starts shutting down: health turns NOT_SERVING and StartRun is refused (UNAVAILABLE); runs in progress go
    /// on until [`Self::cancel_all`].
    pub fn drain(&self) {
        self.draining.cancel();
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
