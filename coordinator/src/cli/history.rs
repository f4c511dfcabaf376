//! Commands on the results store: `runs`, `report RUN_ID` and `compare BASE HEAD`.

use super::output::deliver;
use super::{Failure, open_store};
use anyhow::Context as _;
use loadgrade_common::report::Report;
use loadgrade_common::run::StoredReport;
use loadgrade_coordinator::report::compare::compare;
use loadgrade_coordinator::store::Store;
use std::path::PathBuf;

pub(super) async fn runs(limit: u32, database: &str) -> Result<i32, Failure> {
    let store = open_store(database).await?;
    let rows = store.runs(limit).await.context("listing runs")?;
    if rows.is_empty() {
        out!("no runs in {database}");
        return Ok(0);
    }
    print_runs(rows)
}

/// `runs --coordinator URL`: the coordinator's own list (ListRuns), with a read or submit token.
pub(super) async fn remote_runs(
    limit: u32,
    remote: &super::security::Remote,
) -> Result<i32, Failure> {
    let mut client = remote.connect().await?;
    let wire = client
        .list_runs(loadgrade_proto::v1::ListRunsRequest { limit })
        .await
        .map_err(|s| {
            Failure::Runtime(anyhow::anyhow!(
                "coordinator {} refused to list runs: {}",
                remote.coordinator,
                loadgrade_common::text::escaped(s.message())
            ))
        })?
        .into_inner();
    let rows = wire
        .runs
        .into_iter()
        .map(loadgrade_common::run::RunSummary::try_from)
        .collect::<Result<Vec<_>, _>>()
        .context("the coordinator sent a run that does not convert")?;
    if rows.is_empty() {
        out!("no runs on {}", remote.coordinator);
        return Ok(0);
    }
    print_runs(rows)
}

fn print_runs(rows: Vec<loadgrade_common::run::RunSummary>) -> Result<i32, Failure> {
    let escaped = loadgrade_common::text::escaped;
    out!(
        "{:<24} {:<11} {:<9} {:<32} plan",
        "run",
        "state",
        "verdict",
        "started"
    );
    for r in rows {
        out!(
            "{:<24} {:<11} {:<9} {:<32} {}",
            escaped(&r.id),
            r.state.as_str(),
            r.verdict.map_or_else(|| "-".to_owned(), |v| v.to_string()),
            escaped(&r.started_at),
            escaped(&r.plan_name)
        );
    }
    Ok(0)
}

pub(super) async fn stored_report(
    run_id: &str,
    out: Option<PathBuf>,
    database: &str,
) -> Result<i32, Failure> {
    let store = open_store(database).await?;
    let (report, stored) = load_report(&store, run_id, database).await?;
    let dir = match out {
        Some(out) => out,
        None if loadgrade_common::run::is_run_id(run_id) => {
            PathBuf::from("loadgrade-report").join(run_id)
        }
        None => {
            return Err(Failure::Usage(format!(
                "loadgrade: {:?} is not a run id (see `loadgrade runs`)",
                loadgrade_common::text::escaped(run_id)
            )));
        }
    };
    deliver(&dir, &report, &stored.json, &stored.markdown)
}

/// A finished run's report from the store, parsed and as stored; an unknown run is a usage error.
async fn load_report(
    store: &Store,
    run_id: &str,
    database: &str,
) -> Result<(Report, StoredReport), Failure> {
    let stored = store
        .report(run_id)
        .await
        .context("reading the run")?
        .ok_or_else(|| {
            Failure::Usage(format!(
                "loadgrade: no finished run {run_id:?} in {database}"
            ))
        })?;
    let report = serde_json::from_str(&stored.json).context("the stored report does not parse")?;
    Ok((report, stored))
}

pub(super) async fn compare_runs(
    base: &str,
    head: &str,
    tolerance: f64,
    database: &str,
) -> Result<i32, Failure> {
    if !(tolerance >= 0.0 && tolerance.is_finite()) {
        return Err(Failure::Usage(format!(
            "loadgrade: --tolerance must be a share >= 0, got {tolerance}"
        )));
    }
    let store = open_store(database).await?;
    let (base_report, head_report) = (
        load_report(&store, base, database).await?.0,
        load_report(&store, head, database).await?.0,
    );
    let (verdict, rows, notes) = compare(&base_report, &head_report, tolerance);
    super::output::decided(verdict.exit_code());
    out!(
        "{:<20} {:<24} {:>14} {:>14} {:>9}",
        "scenario",
        "metric",
        "base",
        "head",
        "change"
    );
    for r in &rows {
        let fmt =
            |v: Option<f64>| v.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.3}"));
        out!(
            "{:<20} {:<24} {:>14} {:>14} {:>9}{}",
            r.scenario,
            r.metric,
            fmt(r.base),
            fmt(r.head),
            r.change
                .map_or_else(|| "-".to_owned(), |c| format!("{:+.1} %", c * 100.0)),
            if r.regressed { "  REGRESSION" } else { "" }
        );
    }
    for n in &notes {
        out!("  - {n}");
    }
    out!(
        "compare verdict: {verdict} (tolerance {:.0} %)",
        tolerance * 100.0
    );
    Ok(verdict.exit_code())
}
