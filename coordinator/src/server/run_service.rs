//! The gRPC service CI and `loadgrade submit` use: start, watch, cancel and list runs; fetch reports; list agents.
//! Handlers work in domain types and [`ServiceError`]; the wire and `Status` are reached through `From` only.

use super::auth::{Role, Tokens};
use super::status::ServiceError;
use crate::{CancelOutcome, Coordinator};
use loadgrade_common::run::{AgentSummary, RunEvent};
use loadgrade_proto::v1;
use loadgrade_proto::v1::run_service_server::RunService;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// How long CancelRun waits for the load to stop before answering.
pub const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

pub struct Runs {
    coordinator: Arc<Coordinator>,
    tokens: Tokens,
}

impl Runs {
    pub fn new(coordinator: Arc<Coordinator>, tokens: Tokens) -> Self {
        Runs {
            coordinator,
            tokens,
        }
    }

    /// Events of a run: live while it is in progress in this process, else its stored final state.
    async fn watch(&self, run_id: String) -> Result<mpsc::Receiver<RunEvent>, ServiceError> {
        let (tx, rx) = mpsc::channel(16);
        if let Some(control) = self.coordinator.run_control(&run_id) {
            let mut watcher = crate::run::events::Watcher::new(control.events);
            tokio::spawn(async move {
                while let Some(event) = watcher.next().await {
                    if tx.send(event).await.is_err() {
                        break;
                    }
                }
            });
            return Ok(rx);
        }
        let summary = self
            .coordinator
            .store
            .run(&run_id)
            .await?
            .ok_or_else(|| ServiceError::UnknownRun(run_id.clone()))?;
        let _ = tx
            .send(RunEvent {
                run_id,
                state: summary.state,
                message: String::new(),
                verdict: summary.verdict,
                progress: false,
            })
            .await;
        Ok(rx)
    }
}

/// The name a plan's errors are located in: the caller's, or `plan.toml`.
fn plan_file_name(given: String) -> String {
    if given.is_empty() {
        "plan.toml".to_owned()
    } else {
        given
    }
}

#[tonic::async_trait]
impl RunService for Runs {
    async fn start_run(
        &self,
        request: Request<v1::StartRunRequest>,
    ) -> Result<Response<v1::StartRunResponse>, Status> {
        self.tokens.authorize(&request, Role::Submit)?;
        let r = request.into_inner();
        let file = plan_file_name(r.plan_file);
        let key = (!r.idempotency_key.is_empty()).then_some(r.idempotency_key.as_str());
        let submitted = self
            .coordinator
            .submit(&file, &r.plan_toml, key)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(v1::StartRunResponse {
            run_id: submitted.id,
            existing: submitted.existing,
        }))
    }

    type WatchRunStream = ReceiverStream<Result<v1::RunEvent, Status>>;

    async fn watch_run(
        &self,
        request: Request<v1::WatchRunRequest>,
    ) -> Result<Response<Self::WatchRunStream>, Status> {
        self.tokens.authorize(&request, Role::Read)?;
        let mut events = self.watch(request.into_inner().run_id).await?;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if tx.send(Ok(v1::RunEvent::from(event))).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn get_report(
        &self,
        request: Request<v1::GetReportRequest>,
    ) -> Result<Response<v1::GetReportResponse>, Status> {
        self.tokens.authorize(&request, Role::Read)?;
        let run_id = request.into_inner().run_id;
        let stored = self
            .coordinator
            .store
            .report(&run_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or(ServiceError::NoReport(run_id))?;
        Ok(Response::new(stored.into()))
    }

    async fn cancel_run(
        &self,
        request: Request<v1::CancelRunRequest>,
    ) -> Result<Response<v1::CancelRunResponse>, Status> {
        self.tokens.authorize(&request, Role::Submit)?;
        let run_id = request.into_inner().run_id;
        let outcome = self.coordinator.cancel_run(&run_id, CANCEL_WAIT).await;
        let (cancelled, stopped, detail) = match outcome {
            CancelOutcome::NotRunning => (
                false,
                false,
                format!("run {run_id:?} is not in progress here"),
            ),
            CancelOutcome::Stopped => (true, true, String::new()),
            CancelOutcome::Stopping { agents } => (
                true,
                false,
                format!(
                    "told to stop; {agents} agent(s) still finishing requests in flight (up to their timeout) after \
                     {CANCEL_WAIT:?}"
                ),
            ),
        };
        Ok(Response::new(v1::CancelRunResponse {
            cancelled,
            stopped,
            detail,
        }))
    }

    async fn list_runs(
        &self,
        request: Request<v1::ListRunsRequest>,
    ) -> Result<Response<v1::ListRunsResponse>, Status> {
        self.tokens.authorize(&request, Role::Read)?;
        let limit = match request.into_inner().limit {
            0 => 50,
            n => n.min(1000),
        };
        let runs = self
            .coordinator
            .store
            .runs(limit)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(v1::ListRunsResponse {
            runs: runs.into_iter().map(v1::RunSummary::from).collect(),
        }))
    }

    async fn list_agents(
        &self,
        request: Request<v1::ListAgentsRequest>,
    ) -> Result<Response<v1::ListAgentsResponse>, Status> {
        self.tokens.authorize(&request, Role::Read)?;
        let agents = self
            .coordinator
            .registry
            .agents()
            .into_iter()
            .map(|a| {
                v1::AgentSummary::from(AgentSummary {
                    busy: a.run.is_some(),
                    labels: a.labels,
                    probe_only: a.probe_only,
                    name: a.name,
                    version: a.version,
                    cores: a.cores,
                    epoch: a.epoch,
                })
            })
            .collect();
        Ok(Response::new(v1::ListAgentsResponse { agents }))
    }

    async fn check_plan(
        &self,
        request: Request<v1::CheckPlanRequest>,
    ) -> Result<Response<v1::CheckPlanResponse>, Status> {
        // Probes reach the plan's targets from the agents: as much as starting a run may.
        self.tokens.authorize(&request, Role::Submit)?;
        let r = request.into_inner();
        let file = plan_file_name(r.plan_file);
        let rows = self
            .coordinator
            .check_plan(&file, &r.plan_toml)
            .await
            .map_err(ServiceError::Start)?;
        Ok(Response::new(v1::CheckPlanResponse {
            rows: rows.into_iter().map(v1::CheckRow::from).collect(),
        }))
    }
}
