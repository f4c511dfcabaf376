//! The `loadgrade` command line: run, demo, serve, submit, validate. Exit codes: 0 PASS, 1 runtime error,
//! 2 usage error or invalid plan, 3 FAIL, 4 DEGRADED or INVALID.

use crate::embedded::Embedded;
use crate::render::write_reports;
use crate::runner::FinishedRun;
use crate::store::{DEFAULT_DATABASE_URL, Store};
use crate::{Coordinator, StartError, spawn_server};
use anyhow::Context;
use clap::{Parser, Subcommand};
use loadgrade_common::grade::Verdict;
use loadgrade_common::plan::Plan;
use loadgrade_proto::v1::run_service_client::RunServiceClient;
use loadgrade_proto::v1::{GetReportRequest, StartRunRequest, WatchRunRequest};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// The demo plan, built in so `loadgrade demo` works from any directory.
pub const DEMO_PLAN: &str = include_str!("../../examples/demo.toml");
/// The address demo.toml names; the demo points it at the testbed it starts.
pub const DEMO_TARGET: &str = "http://127.0.0.1:8080";
/// The probe demo.toml names (the standalone testbed); the demo points it at its own process.
pub const DEMO_PROBE: &str = "probe = { kind = \"process\", name = \"loadgrade-testbed\" }";

pub const EXIT_RUNTIME: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// loadgrade: distributed load generation with a graded verdict.
#[derive(Debug, Parser)]
#[command(name = "loadgrade", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a plan with a coordinator and N agents in this process (real gRPC on loopback).
    Run {
        /// Plan file (TOML).
        plan: PathBuf,
        /// In-process agents. Default: the plan's min_agents.
        #[arg(long)]
        agents: Option<u32>,
        /// Report directory. Default: loadgrade-report/<run-id>/ (and loadgrade-report/latest).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Results store.
        #[arg(long, default_value = DEFAULT_DATABASE_URL)]
        database: String,
    },
    /// Start the testbed and 2 agents, run examples/demo.toml against it, write the report.
    Demo {
        /// Report directory. Default: loadgrade-report/<run-id>/ (and loadgrade-report/latest).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Results store.
        #[arg(long, default_value = DEFAULT_DATABASE_URL)]
        database: String,
    },
    /// The coordinator server: agents and CI connect here.
    Serve {
        /// Address to listen on; use 0.0.0.0:7700 to accept agents from other hosts.
        #[arg(long, default_value = "127.0.0.1:7700")]
        listen: SocketAddr,
        /// Results store (sqlite://PATH).
        #[arg(long, default_value = DEFAULT_DATABASE_URL)]
        database: String,
    },
    /// Start a run on a coordinator server, show progress, download the reports, exit with the verdict's code.
    Submit {
        /// Plan file (TOML).
        plan: PathBuf,
        /// Coordinator URL, e.g. http://10.0.0.5:7700
        #[arg(long)]
        coordinator: String,
        /// Report directory. Default: loadgrade-report/<run-id>/ (and loadgrade-report/latest).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a plan without running it.
    Validate {
        /// Plan file (TOML).
        plan: PathBuf,
    },
    /// List runs from the results store, newest first.
    Runs {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Results store.
        #[arg(long, default_value = DEFAULT_DATABASE_URL)]
        database: String,
    },
    /// Regression verdict between two stored runs.
    ///
    /// Exit 0 when no headline figure of HEAD is worse than BASE beyond the tolerance, 3 when one is, 4 when either
    /// run was DEGRADED or INVALID.
    Compare {
        /// The base run id.
        base: String,
        /// The run to judge against it.
        head: String,
        /// Relative change allowed before a figure counts as a regression.
        #[arg(long, default_value_t = 0.10)]
        tolerance: f64,
        /// Results store.
        #[arg(long, default_value = DEFAULT_DATABASE_URL)]
        database: String,
    },
    /// Write a stored run's reports again; exits with its verdict's code.
    Report {
        /// The run id (see `loadgrade runs`).
        run_id: String,
        /// Report directory. Default: loadgrade-report/<run-id>/.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Results store.
        #[arg(long, default_value = DEFAULT_DATABASE_URL)]
        database: String,
    },
}

/// Runs a command; returns the process exit code.
pub async fn execute(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Run {
            plan,
            agents,
            out,
            database,
        } => run(&plan, agents, out, &database).await,
        Command::Demo { out, database } => demo(out, &database).await,
        Command::Serve { listen, database } => serve(listen, &database).await,
        Command::Submit {
            plan,
            coordinator,
            out,
        } => submit(&plan, &coordinator, out).await,
        Command::Validate { plan } => validate(&plan),
        Command::Runs { limit, database } => runs(limit, &database).await,
        Command::Compare {
            base,
            head,
            tolerance,
            database,
        } => compare_runs(&base, &head, tolerance, &database).await,
        Command::Report {
            run_id,
            out,
            database,
        } => stored_report(&run_id, out, &database).await,
    };
    match result {
        Ok(code) => code,
        Err(Failure::Usage(message)) => {
            eprintln!("{message}");
            EXIT_USAGE
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("loadgrade: error: {e:#}");
            EXIT_RUNTIME
        }
    }
}

enum Failure {
    Usage(String),
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

fn read_plan(path: &Path) -> Result<(String, String), Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::Usage(format!(
            "loadgrade: cannot read plan {}: {e}",
            path.display()
        ))
    })?;
    Ok((path.display().to_string(), text))
}

fn validate(path: &Path) -> Result<i32, Failure> {
    let (file, text) = read_plan(path)?;
    let plan = Plan::parse(&file, &text).map_err(|e| Failure::Usage(e.to_string()))?;
    println!(
        "{file}: valid plan {:?} with {} scenario(s)",
        plan.name,
        plan.scenarios.len()
    );
    Ok(0)
}

async fn run(
    path: &Path,
    agents: Option<u32>,
    out: Option<PathBuf>,
    database: &str,
) -> Result<i32, Failure> {
    let (file, text) = read_plan(path)?;
    let plan = Plan::parse(&file, &text).map_err(|e| Failure::Usage(e.to_string()))?;
    let agents = agents.unwrap_or(plan.min_agents).max(1);
    run_embedded(&file, &text, agents, out, database).await
}

async fn demo(out: Option<PathBuf>, database: &str) -> Result<i32, Failure> {
    let testbed = loadgrade_testbed::Testbed::start(loadgrade_testbed::TestbedConfig::plain(
        ([127, 0, 0, 1], 0).into(),
    ))
    .await
    .context("starting the testbed")?;
    let target = format!("http://{}", testbed.addr());
    eprintln!("loadgrade demo: testbed on {target}, 2 agents in this process");
    // The testbed runs in this process: probe this process for the target's memory.
    let plan = DEMO_PLAN.replace(DEMO_TARGET, &target).replace(
        DEMO_PROBE,
        &format!(
            "probe = {{ kind = \"process\", pid = {} }}",
            std::process::id()
        ),
    );
    let code = run_embedded("examples/demo.toml", &plan, 2, out, database).await;
    testbed.shutdown().await;
    code
}

async fn run_embedded(
    file: &str,
    text: &str,
    agents: u32,
    out: Option<PathBuf>,
    database: &str,
) -> Result<i32, Failure> {
    let store = Store::open(database)
        .await
        .context("opening the results store")?;
    let embedded = Embedded::start(store, agents).await?;
    let started = match embedded.coordinator.start_run(file, text).await {
        Ok(s) => s,
        Err(StartError::Plan(e)) => return Err(Failure::Usage(e.to_string())),
        Err(e) => return Err(Failure::Runtime(e.into())),
    };
    eprintln!(
        "run {} started with {agents} agent(s) on {}",
        started.id, embedded.addr
    );
    if let Some(control) = embedded.coordinator.run_control(&started.id) {
        let mut events = control.events;
        tokio::spawn(async move {
            while events.changed().await.is_ok() {
                eprintln!("  {}", events.borrow_and_update().message);
            }
        });
        // Ctrl-C stops the load and still writes the report (INVALID: cancelled), with what was measured.
        let cancel = control.cancel;
        tokio::spawn(async move {
            if interrupted().await.is_ok() {
                eprintln!("loadgrade: interrupted: stopping the load and writing the report");
                cancel.cancel();
            }
        });
    }
    let finished: FinishedRun = started.finished.await.context("run task")??;
    embedded.stop().await;
    let dir = report_dir(out, &finished.report.run_id)?;
    write_reports(&dir, &finished.report, &finished.json, &finished.markdown)
        .context("writing reports")?;
    Ok(announce(
        finished.report.verdict,
        &finished.report.grade_reason,
        &finished.report.verdict_reasons,
        &dir,
    ))
}

fn announce(verdict: Verdict, grade_reason: &str, reasons: &[String], dir: &Path) -> i32 {
    println!("verdict: {verdict} ({grade_reason})");
    for r in reasons {
        println!("  - {r}");
    }
    println!("report: {}", dir.join("report.md").display());
    println!("        {}", dir.join("report.html").display());
    println!("        {}", dir.join("report.json").display());
    println!("        {}", dir.join("junit.xml").display());
    verdict.exit_code()
}

/// The report directory: `out`, or loadgrade-report/<run-id>/ with loadgrade-report/latest pointing at it.
fn report_dir(out: Option<PathBuf>, run_id: &str) -> anyhow::Result<PathBuf> {
    if let Some(out) = out {
        return Ok(out);
    }
    let base = PathBuf::from("loadgrade-report");
    let dir = base.join(run_id);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let latest = base.join("latest");
    let _ = std::fs::remove_file(&latest);
    #[cfg(unix)]
    std::os::unix::fs::symlink(run_id, &latest)
        .with_context(|| format!("linking {}", latest.display()))?;
    Ok(dir)
}

async fn serve(listen: SocketAddr, database: &str) -> Result<i32, Failure> {
    let store = Store::open(database)
        .await
        .context("opening the results store")?;
    let coordinator = Coordinator::new(store);
    let shutdown = CancellationToken::new();
    let (addr, server) = spawn_server(coordinator.clone(), listen, shutdown.clone())
        .await
        .with_context(|| format!("listening on {listen}"))?;
    println!("loadgrade coordinator listening on http://{addr} (store {database})");
    interrupted()
        .await
        .context("waiting for ctrl-c or SIGTERM")?;
    // Runs in progress stop their load and store their reports (INVALID: cancelled) before the server goes.
    coordinator
        .cancel_all(std::time::Duration::from_secs(30))
        .await;
    shutdown.cancel();
    let _ = server.await;
    Ok(0)
}

async fn submit(path: &Path, coordinator: &str, out: Option<PathBuf>) -> Result<i32, Failure> {
    let (file, text) = read_plan(path)?;
    let mut client = RunServiceClient::connect(coordinator.to_owned())
        .await
        .with_context(|| format!("cannot reach coordinator {coordinator}"))?;
    let run_id = match client
        .start_run(StartRunRequest {
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
        .watch_run(WatchRunRequest {
            run_id: run_id.clone(),
        })
        .await
        .context("watching the run")?
        .into_inner();
    while let Some(event) = events.message().await.context("watching the run")? {
        if !event.message.is_empty() {
            eprintln!("  {}", event.message);
        }
        if event.state == "finished" {
            break;
        }
    }
    let report = client
        .get_report(GetReportRequest {
            run_id: run_id.clone(),
        })
        .await
        .context("fetching the report")?
        .into_inner();
    let dir = report_dir(out, &run_id)?;
    let parsed: loadgrade_common::report::Report = serde_json::from_str(&report.report_json)
        .context("the coordinator sent a report that does not parse")?;
    write_reports(&dir, &parsed, &report.report_json, &report.report_md)
        .context("writing reports")?;
    Ok(announce(
        parsed.verdict,
        &parsed.grade_reason,
        &parsed.verdict_reasons,
        &dir,
    ))
}

async fn runs(limit: u32, database: &str) -> Result<i32, Failure> {
    let store = Store::open(database)
        .await
        .context("opening the results store")?;
    let rows = store.runs(limit).await.context("listing runs")?;
    if rows.is_empty() {
        println!("no runs in {database}");
        return Ok(0);
    }
    println!(
        "{:<24} {:<10} {:<9} {:<32} plan",
        "run", "state", "verdict", "started"
    );
    for r in rows {
        println!(
            "{:<24} {:<10} {:<9} {:<32} {}",
            r.id,
            r.state,
            r.verdict.as_deref().unwrap_or("-"),
            r.started_at,
            r.plan_name
        );
    }
    Ok(0)
}

async fn stored_report(run_id: &str, out: Option<PathBuf>, database: &str) -> Result<i32, Failure> {
    let store = Store::open(database)
        .await
        .context("opening the results store")?;
    let (report, stored) = load_report(&store, run_id, database).await?;
    let dir = match out {
        Some(dir) => dir,
        None => PathBuf::from("loadgrade-report").join(run_id),
    };
    write_reports(&dir, &report, &stored.json, &stored.markdown).context("writing reports")?;
    Ok(announce(
        report.verdict,
        &report.grade_reason,
        &report.verdict_reasons,
        &dir,
    ))
}

/// A finished run's report from the store, parsed and as stored; an unknown run is a usage error.
async fn load_report(
    store: &Store,
    run_id: &str,
    database: &str,
) -> Result<(loadgrade_common::report::Report, crate::store::StoredReport), Failure> {
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

async fn compare_runs(
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
    let store = Store::open(database)
        .await
        .context("opening the results store")?;
    let (base_report, head_report) = (
        load_report(&store, base, database).await?.0,
        load_report(&store, head, database).await?.0,
    );
    let (verdict, rows, notes) = crate::compare::compare(&base_report, &head_report, tolerance);
    println!(
        "{:<20} {:<24} {:>14} {:>14} {:>9}",
        "scenario", "metric", "base", "head", "change"
    );
    for r in &rows {
        let fmt =
            |v: Option<f64>| v.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.3}"));
        println!(
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
        println!("  - {n}");
    }
    println!(
        "compare verdict: {verdict} (tolerance {:.0} %)",
        tolerance * 100.0
    );
    Ok(verdict.exit_code())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (systemd, container runtimes, kill).
async fn interrupted() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
