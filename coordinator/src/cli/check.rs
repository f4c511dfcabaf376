//! `loadgrade check PLAN [--coordinator URL]`: the preflight without a run. On a coordinator server, from the agents
//! the plan selects there; without one, from in-process agents on loopback as `run` would start them. Prints one
//! row per check (and agent): ok / warn / fail, the measured value and what to do; `--format json` for CI. Exit 0
//! when nothing failed, 2 when a check failed (or the plan is invalid).

use super::security::Remote;
use super::{EXIT_USAGE, Failure, read_plan};
use anyhow::Context as _;
use loadgrade_common::plan::Plan;
use loadgrade_common::preflight::{CheckRow, CheckStatus, worst};
use loadgrade_coordinator::embedded::Embedded;
use loadgrade_coordinator::store::Store;
use loadgrade_proto::v1;
use std::path::Path;

/// How the rows are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

pub(super) async fn check(
    path: &Path,
    remote: Option<&Remote>,
    agents: Option<u32>,
    format: Format,
) -> Result<i32, Failure> {
    let (file, text) = read_plan(path)?;
    let plan = Plan::parse(&file, &text).map_err(|e| Failure::Usage(e.to_string()))?;
    let rows = match remote {
        Some(remote) => {
            let mut client = remote.connect().await?;
            let reply = client
                .check_plan(v1::CheckPlanRequest {
                    plan_toml: text,
                    plan_file: file,
                })
                .await;
            let wire = match reply {
                Ok(r) => r.into_inner(),
                Err(s) if s.code() == tonic::Code::InvalidArgument => {
                    return Err(Failure::Usage(s.message().to_owned()));
                }
                Err(s) => {
                    return Err(Failure::Runtime(anyhow::anyhow!(
                        "the coordinator refused the check: {}",
                        s.message()
                    )));
                }
            };
            wire.rows
                .into_iter()
                .map(CheckRow::try_from)
                .collect::<Result<Vec<_>, _>>()
                .context("the coordinator sent a row that does not convert")?
        }
        None => {
            let agents = agents.unwrap_or(plan.min_agents).max(1);
            let store = Store::in_memory().await.context("opening a store")?;
            let selector = plan.agents.clone();
            let embedded = Embedded::start_with(store, agents, |config| {
                config.labels = selector.clone();
            })
            .await
            .context("starting the agents")?;
            let rows = embedded.coordinator.check_plan(&file, &text).await;
            embedded.stop().await;
            rows.map_err(|e| Failure::Usage(e.to_string()))?
        }
    };
    let code = super::output::decided(if worst(&rows) == CheckStatus::Fail {
        EXIT_USAGE
    } else {
        0
    });
    match format {
        Format::Json => {
            let json: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "check": r.check.as_str(),
                        "agent": r.agent,
                        "scenario": r.scenario,
                        "status": r.status.as_str(),
                        "value": r.value,
                        "hint": r.hint,
                    })
                })
                .collect();
            let text = serde_json::to_string_pretty(&serde_json::json!({
                "status": worst(&rows).as_str(),
                "checks": json,
            }))
            .context("rendering the checks")?;
            out!("{text}");
        }
        Format::Table => print_table(&rows)?,
    }
    Ok(code)
}

fn print_table(rows: &[CheckRow]) -> Result<(), Failure> {
    // Rows may come from a coordinator on another host: their words are shown with control characters escaped.
    let escaped = loadgrade_common::text::escaped;
    let rows: Vec<CheckRow> = rows
        .iter()
        .map(|r| CheckRow {
            agent: escaped(&r.agent),
            scenario: escaped(&r.scenario),
            value: escaped(&r.value),
            hint: escaped(&r.hint),
            ..r.clone()
        })
        .collect();
    let rows = rows.as_slice();
    let where_of = |r: &CheckRow| match (r.agent.is_empty(), r.scenario.is_empty()) {
        (true, true) => "coordinator".to_owned(),
        (true, false) => r.scenario.clone(),
        (false, true) => r.agent.clone(),
        (false, false) => format!("{} / {}", r.agent, r.scenario),
    };
    let width = |f: &dyn Fn(&CheckRow) -> usize, title: usize| {
        rows.iter().map(f).max().unwrap_or(0).max(title)
    };
    let w_status = 6;
    let w_check = width(&|r| r.check.as_str().len(), 5);
    let w_where = width(&|r| where_of(r).len(), 5);
    out!(
        "{:<w_status$}  {:<w_check$}  {:<w_where$}  value",
        "status",
        "check",
        "where"
    );
    for r in rows {
        out!(
            "{:<w_status$}  {:<w_check$}  {:<w_where$}  {}",
            r.status.as_str().to_uppercase(),
            r.check,
            where_of(r),
            r.value
        );
        if !r.hint.is_empty() && r.status != CheckStatus::Ok {
            out!(
                "{:<w_status$}  {:<w_check$}  {:<w_where$}  -> {}",
                "",
                "",
                "",
                r.hint
            );
        }
    }
    let count = |s: CheckStatus| rows.iter().filter(|r| r.status == s).count();
    out!(
        "{} ok, {} warn, {} fail",
        count(CheckStatus::Ok),
        count(CheckStatus::Warn),
        count(CheckStatus::Fail)
    );
    Ok(())
}
