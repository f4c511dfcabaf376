//! The gRPC service CI and `loadgrade submit` use: start, watch, cancel and list runs; fetch reports; list agents.
//! Errors become `tonic::Status` here and nowhere else.

use crate::{Coordinator, RunState, StartError};
use loadgrade_proto::v1::run_service_server::RunService;
use loadgrade_proto::v1::{
    AgentSummary, CancelRunRequest, CancelRunResponse, GetReportRequest, GetReportResponse,
    ListAgentsRequest, ListAgentsResponse, ListRunsRequest, ListRunsResponse, RunEvent, RunSummary,
    StartRunRequest, StartRunResponse, WatchRunRequest,
};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

pub struct Runs {
    coordinator: Arc<Coordinator>,
}

impl Runs {
    pub fn new(coordinator: Arc<Coordinator>) -> Self {
        Runs { coordinator }
    }
}

fn to_status(e: StartError) -> Status {
    match e {
        StartError::Plan(p) => Status::invalid_argument(p.to_string()),
        StartError::Store(s) => Status::internal(s.to_string()),
    }
}

#[tonic::async_trait]
impl RunService for Runs {
    async fn start_run(
        &self,
        request: Request<StartRunRequest>,
    ) -> Result<Response<StartRunResponse>, Status> {
        let r = request.into_inner();
        let file = if r.plan_file.is_empty() {
            "plan.toml".to_owned()
        } else {
            r.plan_file
        };
        let started = self
            .coordinator
            .start_run(&file, &r.plan_toml)
            .await
            .map_err(to_status)?;
        Ok(Response::new(StartRunResponse { run_id: started.id }))
    }

    type WatchRunStream = ReceiverStream<Result<RunEvent, Status>>;

    async fn watch_run(
        &self,
        request: Request<WatchRunRequest>,
    ) -> Result<Response<Self::WatchRunStream>, Status> {
        let run_id = request.into_inner().run_id;
        let (tx, rx) = mpsc::channel(16);
        match self.coordinator.run_control(&run_id) {
            Some(control) => {
                let mut events = control.events;
                tokio::spawn(async move {
                    loop {
                        let event = events.borrow_and_update().clone();
                        let done = event.state == RunState::Finished;
                        let wire = RunEvent {
                            run_id: run_id.clone(),
                            state: event.state.as_str().to_owned(),
                            message: event.message,
                            verdict: event.verdict.map(|v| v.to_string()).unwrap_or_default(),
                        };
                        if tx.send(Ok(wire)).await.is_err()
                            || done
                            || events.changed().await.is_err()
                        {
                            break;
                        }
                    }
                });
            }
            None => {
                // Not running in this process: finished earlier (or unknown).
                let stored = self
                    .coordinator
                    .store
                    .report(&run_id)
                    .await
                    .map_err(|e| Status::internal(e.to_string()))?;
                let Some(stored) = stored else {
                    return Err(Status::not_found(format!("no run {run_id:?}")));
                };
                let _ = tx
                    .send(Ok(RunEvent {
                        run_id,
                        state: "finished".into(),
                        message: String::new(),
                        verdict: stored.verdict,
                    }))
                    .await;
            }
        }
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn get_report(
        &self,
        request: Request<GetReportRequest>,
    ) -> Result<Response<GetReportResponse>, Status> {
        let run_id = request.into_inner().run_id;
        let stored = self
            .coordinator
            .store
            .report(&run_id)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let stored = stored.ok_or_else(|| {
            Status::not_found(format!(
                "run {run_id:?} has no report (unknown or not finished)"
            ))
        })?;
        Ok(Response::new(GetReportResponse {
            report_json: stored.json,
            report_md: stored.markdown,
            verdict: stored.verdict,
        }))
    }

    async fn cancel_run(
        &self,
        request: Request<CancelRunRequest>,
    ) -> Result<Response<CancelRunResponse>, Status> {
        let run_id = request.into_inner().run_id;
        let cancelled = self.coordinator.run_control(&run_id).is_some_and(|c| {
            c.cancel.cancel();
            true
        });
        Ok(Response::new(CancelRunResponse { cancelled }))
    }

    async fn list_runs(
        &self,
        request: Request<ListRunsRequest>,
    ) -> Result<Response<ListRunsResponse>, Status> {
        let limit = match request.into_inner().limit {
            0 => 50,
            n => n.min(1000),
        };
        let rows = self
            .coordinator
            .store
            .runs(limit)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(ListRunsResponse {
            runs: rows
                .into_iter()
                .map(|r| RunSummary {
                    run_id: r.id,
                    plan_name: r.plan_name,
                    state: r.state,
                    verdict: r.verdict.unwrap_or_default(),
                    started_at: r.started_at,
                })
                .collect(),
        }))
    }

    async fn list_agents(
        &self,
        _request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        let agents = self
            .coordinator
            .registry
            .agents()
            .into_iter()
            .map(|a| AgentSummary {
                name: a.name,
                version: a.version,
                cores: a.cores,
                epoch: a.epoch,
                busy: a.run.is_some(),
            })
            .collect();
        Ok(Response::new(ListAgentsResponse { agents }))
    }
}
