//! The coordinator's state: connected agents, the store, and the runs in progress in this process. Starting a run
//! validates its plan, stores it and spawns its task; the task's end (normal, error or panic) is always recorded.

use crate::clock;
use crate::report::RunOutcome;
use crate::report::render;
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
    pub events: watch::Receiver<RunEvent>,
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
            .insert_run(
                &id,
                &plan.name,
                file,
                &redact_plan_text(text),
                &clock::now_rfc3339(),
            )
            .await?;
        let (events, receiver) = watch::channel(RunEvent {
            run_id: id.clone(),
            state: RunState::Waiting,
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
                Err(e) if e.is_panic() => Err(RunError::Panicked(panic_text(e.into_panic()))),
                Err(_) => Err(RunError::Aborted),
            };
            coordinator.lock_runs().remove(&run_id);
            if let Err(e) = &result {
                tracing::error!(run = %run_id, "run failed: {e}");
                // The run still ends with a report: INVALID, saying why (its agents were stopped by its guard).
                let finding = Finding::new(
                    FindingKind::RunFailed,
                    format!("the run failed and its load was stopped: {e}"),
                );
                let stored = coordinator
                    .store_ended_run(
                        &run_id,
                        &failed_plan,
                        started_at,
                        vec![finding],
                        &[],
                        RunState::Error,
                    )
                    .await;
                if let Err(store_error) = stored {
                    tracing::error!(run = %run_id, "the failed run's report could not be stored: {store_error}");
                    let _ = coordinator.store.set_state(&run_id, RunState::Error).await;
                }
                let _ = events.send(RunEvent {
                    run_id: run_id.clone(),
                    state: RunState::Error,
                    message: e.to_string(),
                    verdict: Some(Verdict::Invalid),
                    progress: false,
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

    /// Ends every run the store holds as in progress though no task of this process runs it (the coordinator
    /// stopped mid-run: a restart or a crash): each becomes INTERRUPTED, with a report of every interval stored
    /// until then. Nothing is started again. Returns the runs ended.
    pub async fn recover_unfinished(&self) -> Result<Vec<String>, StoreError> {
        let mut ended = Vec::new();
        for run in self.store.unfinished_runs().await? {
            if self.lock_runs().contains_key(&run.id) {
                continue;
            }
            let intervals = self.store.intervals_of(&run.id).await?;
            let finding = Finding::new(
                FindingKind::Interrupted,
                format!(
                    "the coordinator stopped while this run was in progress (a restart or a crash): the report \
                     holds the {} intervals stored until then (any still on their way or in an agent's spool at \
                     the stop are not in it), and nothing was run again",
                    intervals.len()
                ),
            );
            match Plan::parse(&run.plan_file, &run.plan_toml) {
                Ok(plan) => {
                    self.store_ended_run(
                        &run.id,
                        &plan,
                        run.started_at,
                        vec![finding],
                        &intervals,
                        RunState::Interrupted,
                    )
                    .await?;
                }
                Err(e) => {
                    tracing::error!(run = %run.id, "an interrupted run's plan no longer parses ({e}); marked interrupted without a report");
                    self.store.set_state(&run.id, RunState::Interrupted).await?;
                }
            }
            tracing::warn!(run = %run.id, "interrupted by a coordinator restart: its report holds what was stored");
            ended.push(run.id);
        }
        Ok(ended)
    }

    /// Stores the report of a run that ended without its task finishing it: the figures rebuilt from `intervals`.
    async fn store_ended_run(
        &self,
        id: &str,
        plan: &Plan,
        started_at: String,
        findings: Vec<Finding>,
        intervals: &[loadgrade_common::interval::IntervalReport],
        state: RunState,
    ) -> Result<(), StoreError> {
        let outcome = RunOutcome {
            run_id: id.to_owned(),
            started_at,
            scenarios: plan
                .scenarios
                .iter()
                .map(|s| (s, crate::scenario::replay(s, plan, intervals)))
                .collect(),
            findings,
            agents: Vec::new(),
        };
        let report = crate::report::assemble(plan, outcome);
        let json = render::json(&report).unwrap_or_default();
        let markdown = render::markdown(&report);
        self.store
            .finish_run(
                id,
                state,
                report.verdict,
                &report.finished_at,
                &json,
                &markdown,
            )
            .await
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
