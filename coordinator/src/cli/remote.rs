//! `submit`: the CI client. Starts a run on a coordinator server (or attaches to one in progress), follows its
//! progress through dropped connections, downloads the reports and exits with the verdict's code.

use super::output::{deliver, report_dir};
use super::security::{Remote, RunClient};
use super::{Failure, read_plan};
use anyhow::Context as _;
use loadgrade_common::report::Report;
use loadgrade_common::run::{RunEvent, RunState, StoredReport};
use loadgrade_common::text::escaped;
use loadgrade_proto::v1;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long `submit` keeps trying to reach the coordinator again after losing it before it gives up.
const RECONNECT_FOR: Duration = Duration::from_secs(60);
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// What to follow: a new run of a plan file, or a run already started.
pub(super) enum Target<'a> {
    /// A plan file, and the idempotency key to submit it with.
    Plan(&'a Path, Option<&'a str>),
    Attach(&'a str),
}

pub(super) async fn submit(
    target: Target<'_>,
    remote: &Remote,
    out: Option<PathBuf>,
) -> Result<i32, Failure> {
    let coordinator = remote.coordinator.as_str();
    let mut client = remote.connect().await?;
    let run_id = match target {
        Target::Plan(path, key) => start(&mut client, path, key).await?,
        Target::Attach(id) => id.to_owned(),
    };
    // The id names the report folder and is printed: only the coordinator's own form is taken from the wire.
    if !loadgrade_common::run::is_run_id(&run_id) {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "coordinator {coordinator} gave run id {:?}, which is not of the form a coordinator gives (e.g. \
             20261127T001530Z-3f9a): not following it",
            loadgrade_common::text::escaped(&run_id)
        )));
    }
    note!("run {run_id} on {coordinator}");
    let last = follow(&mut client, remote, &run_id).await?;
    if matches!(last.state, RunState::Interrupted) {
        note!(
            "run {run_id} was interrupted: its coordinator stopped mid-run; the report holds what was stored"
        );
    }
    let wire = client
        .get_report(v1::GetReportRequest {
            run_id: run_id.clone(),
        })
        .await
        .with_context(|| format!("fetching the report of run {run_id}"))?
        .into_inner();
    let stored = StoredReport::try_from(wire)
        .context("the coordinator sent a report that does not convert")?;
    // Parsed before any folder is made or `latest` moved: a report that does not parse leaves nothing behind.
    let parsed: Report = serde_json::from_str(&stored.json)
        .context("the coordinator sent a report that does not parse")?;
    let dir = report_dir(out, &run_id)?;
    // Markdown rendered here from the parsed report: a coordinator's own text could carry what no report holds.
    let markdown = loadgrade_coordinator::report::render::markdown(&parsed);
    deliver(&dir, &parsed, &stored.json, &markdown)
}

async fn start(client: &mut RunClient, path: &Path, key: Option<&str>) -> Result<String, Failure> {
    let (file, text) = read_plan(path)?;
    match client
        .start_run(v1::StartRunRequest {
            plan_toml: text,
            plan_file: file,
            idempotency_key: key.unwrap_or_default().to_owned(),
        })
        .await
    {
        Ok(r) => {
            let r = r.into_inner();
            if r.existing {
                note!(
                    "idempotency key {:?} started run {} before: following it (no new run)",
                    key.unwrap_or_default(),
                    escaped(&r.run_id)
                );
            }
            Ok(r.run_id)
        }
        // An invalid plan or key, or a key already used with another plan: the submission needs fixing.
        Err(s)
            if matches!(
                s.code(),
                tonic::Code::InvalidArgument | tonic::Code::AlreadyExists
            ) =>
        {
            Err(Failure::Usage(escaped(s.message())))
        }
        Err(s) => Err(Failure::Runtime(anyhow::anyhow!(
            "coordinator refused the run: {}",
            escaped(s.message())
        ))),
    }
}

/// Prints the run's events until its final one. A dropped stream or coordinator is reached again (the run goes on
/// without this client) for up to [`RECONNECT_FOR`] since the last contact.
async fn follow(
    client: &mut RunClient,
    remote: &Remote,
    run_id: &str,
) -> Result<RunEvent, Failure> {
    let coordinator = remote.coordinator.as_str();
    let mut last_contact = Instant::now();
    let progress = super::progress::Progress::new();
    loop {
        let lost = match watch_once(client, run_id, &mut last_contact, &progress).await {
            Ok(Some(last)) => {
                progress.finish();
                return Ok(last);
            }
            Ok(None) => "the coordinator closed the event stream before the run ended".to_owned(),
            Err(status) if status.code() == tonic::Code::NotFound => {
                return Err(Failure::Runtime(anyhow::anyhow!(
                    "coordinator {coordinator} does not know run {run_id}: {}",
                    escaped(status.message())
                )));
            }
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                ) =>
            {
                return Err(Failure::Runtime(anyhow::anyhow!(
                    "coordinator {coordinator} refused to show run {run_id}: {}",
                    escaped(status.message())
                )));
            }
            Err(status) => escaped(status.message()),
        };
        if last_contact.elapsed() > RECONNECT_FOR {
            return Err(Failure::Runtime(anyhow::anyhow!(
                "lost coordinator {coordinator} for over {}s ({}); run {run_id} may still be going: follow it again \
                 with `loadgrade submit --attach {run_id} --coordinator {coordinator}`",
                RECONNECT_FOR.as_secs(),
                lost
            )));
        }
        note!("  lost the coordinator ({lost}); trying again");
        tokio::time::sleep(RECONNECT_EVERY).await;
        if let Ok(fresh) = remote.connect().await {
            *client = fresh;
        }
    }
}

/// One watch stream: `Some(final event)` when the run ended, `None` when the stream ended before that.
async fn watch_once(
    client: &mut RunClient,
    run_id: &str,
    last_contact: &mut Instant,
    progress: &super::progress::Progress,
) -> Result<Option<RunEvent>, tonic::Status> {
    let mut events = client
        .watch_run(v1::WatchRunRequest {
            run_id: run_id.to_owned(),
        })
        .await?
        .into_inner();
    while let Some(wire) = events.message().await? {
        *last_contact = Instant::now();
        let event = RunEvent::try_from(wire).map_err(|e| {
            tonic::Status::internal(format!(
                "the coordinator sent an event that does not convert: {e}"
            ))
        })?;
        progress.event(&event);
        if event.state.is_final() {
            return Ok(Some(event));
        }
    }
    Ok(None)
}
