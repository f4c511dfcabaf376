//! Commands that run a coordinator in this process: `run` and `demo` (with in-process agents over loopback gRPC)
//! and `serve`.

use super::output::{deliver, report_dir};
use super::{Failure, open_store, read_plan};
use anyhow::Context as _;
use loadgrade_agent::signal::terminated;
use loadgrade_common::plan::Plan;
use loadgrade_coordinator::embedded::Embedded;
use loadgrade_coordinator::{Coordinator, StartError, spawn_server};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// The demo plan, built in so `loadgrade demo` works from any directory.
pub const DEMO_PLAN: &str = include_str!("../../../examples/demo.toml");
/// The address demo.toml names; the demo points it at the testbed it starts.
pub const DEMO_TARGET: &str = "http://127.0.0.1:8080";
/// The probe demo.toml names (the standalone testbed); the demo points it at its own process.
pub const DEMO_PROBE: &str = "probe = { kind = \"process\", name = \"loadgrade-testbed\" }";

pub(super) async fn run(
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

pub(super) async fn demo(out: Option<PathBuf>, database: &str) -> Result<i32, Failure> {
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
    let store = open_store(database).await?;
    let embedded = Embedded::start(store, agents)
        .await
        .context("starting the agents")?;
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
        // Ctrl-C or SIGTERM stops the load and still writes the report (INVALID: cancelled), with what was measured.
        let cancel = control.cancel;
        tokio::spawn(async move {
            if terminated().await.is_ok() {
                eprintln!("loadgrade: interrupted: stopping the load and writing the report");
                cancel.cancel();
            }
        });
    }
    let finished = started
        .finished
        .await
        .context("run task")?
        .context("the run failed")?;
    embedded.stop().await;
    let dir = report_dir(out, &finished.report.run_id)?;
    deliver(&dir, &finished.report, &finished.json, &finished.markdown)
}

pub(super) async fn serve(listen: SocketAddr, database: &str) -> Result<i32, Failure> {
    let store = open_store(database).await?;
    let coordinator = Coordinator::new(store);
    let shutdown = CancellationToken::new();
    let (addr, server) = spawn_server(coordinator.clone(), listen, shutdown.clone())
        .await
        .with_context(|| format!("listening on {listen}"))?;
    out!("loadgrade coordinator listening on http://{addr} (store {database})");
    terminated()
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
