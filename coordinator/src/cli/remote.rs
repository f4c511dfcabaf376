//! `submit`: the CI client. Starts a run on a coordinator server, shows its progress, downloads the reports and
//! exits with the verdict's code.

use super::output::{deliver, report_dir};
use super::{Failure, read_plan};
use anyhow::Context as _;
use loadgrade_common::report::Report;
use loadgrade_common::run::{RunEvent, StoredReport};
use loadgrade_proto::v1;
use loadgrade_proto::v1::run_service_client::RunServiceClient;
use std::path::{Path, PathBuf};

pub(super) async fn submit(
    path: &Path,
    coordinator: &str,
    out: Option<PathBuf>,
) -> Result<i32, Failure> {
    let (file, text) = read_plan(path)?;
    let mut client = RunServiceClient::connect(coordinator.to_owned())
        .await
        .with_context(|| format!("cannot reach coordinator {coordinator}"))?;
    let run_id = match client
        .start_run(v1::StartRunRequest {
            plan_toml: text,
            plan_file: file,
        })
        .await
    {
        Ok(r) => r.into_inner().run_id,
        Err(s) if s.code() == tonic::Code::InvalidArgument => {
            return Err(Failure::Usage(s.message().to_owned()));
        }
        Err(s) => {
            return Err(Failure::Runtime(anyhow::anyhow!(
                "coordinator refused the run: {}",
                s.message()
            )));
        }
    };
    eprintln!("run {run_id} started on {coordinator}");
    let mut events = client
        .watch_run(v1::WatchRunRequest {
            run_id: run_id.clone(),
        })
        .await
        .context("watching the run")?
        .into_inner();
    while let Some(wire) = events.message().await.context("watching the run")? {
        let event = RunEvent::try_from(wire)
            .context("the coordinator sent an event that does not convert")?;
        if !event.message.is_empty() {
            eprintln!("  {}", event.message);
        }
        if event.state.is_final() {
            break;
        }
    }
    let wire = client
        .get_report(v1::GetReportRequest {
            run_id: run_id.clone(),
        })
        .await
        .context("fetching the report")?
        .into_inner();
    let stored = StoredReport::try_from(wire)
        .context("the coordinator sent a report that does not convert")?;
    let dir = report_dir(out, &run_id)?;
    let parsed: Report = serde_json::from_str(&stored.json)
        .context("the coordinator sent a report that does not parse")?;
    deliver(&dir, &parsed, &stored.json, &stored.markdown)
}
