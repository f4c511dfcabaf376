//! Commands that run a coordinator in this process: `run` and `demo` (with in-process agents over loopback gRPC)
//! and `serve`.

use super::output::{deliver, report_dir};
use super::{Failure, open_store, read_plan};
use anyhow::Context as _;
use loadgrade_agent::signal::terminated;
use loadgrade_common::plan::Plan;
use loadgrade_coordinator::demo;
use loadgrade_coordinator::embedded::Embedded;
use loadgrade_coordinator::{Coordinator, ServerSecurity, StartError};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// The most agents `run` starts in its own process (they share its cores; more adds nothing but threads).
pub(super) const MAX_EMBEDDED_AGENTS: u32 = 64;

pub(super) async fn run(
    path: &Path,
    agents: Option<u32>,
    out: Option<PathBuf>,
    database: &str,
) -> Result<i32, Failure> {
    let (file, text) = read_plan(path)?;
    let plan = Plan::parse(&file, &text).map_err(|e| Failure::Usage(e.to_string()))?;
    let agents = agents.unwrap_or(plan.min_agents).max(1);
    if agents > MAX_EMBEDDED_AGENTS {
        return Err(Failure::Usage(format!(
            "{agents} in-process agents asked (the plan's min_agents or --agents); `run` starts at most \
             {MAX_EMBEDDED_AGENTS}: use `serve` with agent processes for more"
        )));
    }
    run_embedded(&file, &text, agents, out, database).await
}

pub(super) async fn demo(out: Option<PathBuf>, database: &str) -> Result<i32, Failure> {
    let testbed = TestbedProcess::start().await?;
    note!(
        "loadgrade demo: testbed on http://{} (process {}), 2 agents in this process",
        testbed.addr,
        testbed.pid
    );
    let plan = demo::plan_for(testbed.addr, testbed.pid);
    let code = run_embedded("examples/demo.toml", &plan, 2, out, database).await;
    testbed.stop().await;
    code
}

/// Series on the demo testbed's /metrics: a small service's worth, for the scrape scenario.
const DEMO_METRICS_SERIES: u64 = 5_000;

/// The demo's target: this same executable running `testbed-process`, so the target is a process of its own.
struct TestbedProcess {
    child: tokio::process::Child,
    addr: std::net::SocketAddr,
    pid: u32,
}

impl TestbedProcess {
    async fn start() -> Result<Self, Failure> {
        use tokio::io::AsyncBufReadExt as _;
        let exe = std::env::current_exe().context("locating this executable to run the testbed")?;
        let mut child = tokio::process::Command::new(exe)
            .args([
                "testbed-process",
                "--listen",
                "127.0.0.1:0",
                "--metrics-series",
            ])
            .arg(DEMO_METRICS_SERIES.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the testbed process")?;
        let pid = child.id().context("the testbed process has no id")?;
        let stdout = child.stdout.take().context("the testbed's output")?;
        let mut line = String::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tokio::io::BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .context("the testbed did not start within 10 s")?
        .context("reading the testbed's address")?;
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("the testbed printed {line:?}, not its address"))?;
        Ok(TestbedProcess { child, addr, pid })
    }

    async fn stop(mut self) {
        // Closing its stdin ends it (and would if this process died); the kill is for a stuck one.
        drop(self.child.stdin.take());
        if tokio::time::timeout(std::time::Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Ends the runs a coordinator on this store left in progress (it stopped mid-run), saying which.
async fn recover(coordinator: &std::sync::Arc<Coordinator>) -> Result<(), Failure> {
    let ended = coordinator
        .recover_unfinished()
        .await
        .context("ending the runs a stopped coordinator left in progress")?;
    for run in ended {
        match run.waiting {
            Some(limit) => note!(
                "loadgrade: run {} was in progress when its coordinator stopped: waiting at most {} s for its agents' \
                 spooled intervals, then it ends INTERRUPTED with a report of everything stored",
                run.id,
                limit.as_secs()
            ),
            None => note!(
                "loadgrade: run {} was in progress when its coordinator stopped: ended INTERRUPTED, its report holds \
                 what was stored",
                run.id
            ),
        }
    }
    Ok(())
}

/// `testbed-process` (hidden): the testbed in this process until stdin closes, its address on the first line.
pub(super) async fn testbed_process(
    listen: SocketAddr,
    metrics_series: u64,
) -> Result<i32, Failure> {
    use tokio::io::AsyncReadExt as _;
    let config = loadgrade_testbed::TestbedConfig {
        metrics_series,
        ..loadgrade_testbed::TestbedConfig::plain(listen)
    };
    let testbed = loadgrade_testbed::Testbed::start(config)
        .await
        .context("starting the testbed")?;
    out!("loadgrade-testbed listening on http://{}", testbed.addr());
    // The parent holds the other end: EOF (or an error) means it is done or gone.
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    testbed.shutdown().await;
    Ok(0)
}

async fn run_embedded(
    file: &str,
    text: &str,
    agents: u32,
    out: Option<PathBuf>,
    database: &str,
) -> Result<i32, Failure> {
    let store = open_store(database).await?;
    // In-process agents carry the labels the plan selects, so a plan written for a labelled pool runs here too.
    let selector = Plan::parse(file, text)
        .map(|p| p.agents)
        .unwrap_or_default();
    let embedded = Embedded::start_with(store, agents, |config| {
        config.labels = selector.clone();
    })
    .await
    .context("starting the agents")?;
    let started = match embedded.coordinator.start_run(file, text).await {
        Ok(s) => s,
        Err(StartError::Plan(e)) => return Err(Failure::Usage(e.to_string())),
        // A probe or Redis off loopback: `run` keeps the coordinator's own connections on this machine.
        Err(StartError::Outbound(e)) => return Err(Failure::Usage(e.to_string())),
        Err(e) => return Err(Failure::Runtime(e.into())),
    };
    note!(
        "run {} started with {agents} agent(s) on {}",
        started.id,
        embedded.addr
    );
    let progress = std::sync::Arc::new(super::progress::Progress::new());
    if let Some(control) = embedded.coordinator.run_control(&started.id) {
        let mut watcher = loadgrade_coordinator::run::events::Watcher::new(control.events);
        let shown = progress.clone();
        tokio::spawn(async move {
            // The first event is the run's acceptance, said above already.
            let _ = watcher.next().await;
            while let Some(event) = watcher.next().await {
                shown.event(&event);
            }
        });
        // Ctrl-C or SIGTERM stops the load and still writes the report (INVALID: cancelled), with what was measured.
        let cancel = control.cancel;
        tokio::spawn(async move {
            if terminated().await.is_ok() {
                note!("loadgrade: interrupted: stopping the load and writing the report");
                cancel.cancel();
            }
        });
    }
    let finished = started
        .finished
        .await
        .context("run task")?
        .context("the run failed")?;
    progress.finish();
    embedded.stop().await;
    let dir = report_dir(out, &finished.report.run_id)?;
    deliver(&dir, &finished.report, &finished.json, &finished.markdown)
}

/// What `serve` was asked for.
pub(super) struct Serving<'a> {
    pub listen: SocketAddr,
    pub database: &'a str,
    pub security: ServerSecurity,
    pub options: loadgrade_coordinator::ServeOptions,
    pub metrics_listen: Option<SocketAddr>,
    /// Where the coordinator itself may connect for plans.
    pub outbound: loadgrade_coordinator::run::outbound::Outbound,
}

pub(super) async fn serve(serving: Serving<'_>) -> Result<i32, Failure> {
    let Serving {
        listen,
        database,
        security,
        options,
        metrics_listen,
        outbound,
    } = serving;
    let (connections, lowered) = options.connections.fitted_to_open_files();
    if let Some(warning) = lowered {
        note!("loadgrade serve: WARNING: {warning}");
    }
    let options = loadgrade_coordinator::ServeOptions {
        connections,
        ..options
    };
    let store = open_store(database).await?;
    let coordinator = Coordinator::with_outbound(store, outbound);
    recover(&coordinator).await?;
    let shutdown = CancellationToken::new();
    let scheme = if security.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let tokens = if security.tokens.is_empty() {
        "no tokens"
    } else {
        "tokens required"
    };
    let (addr, mut server) = loadgrade_coordinator::spawn_service(
        coordinator.clone(),
        listen,
        security,
        options,
        shutdown.clone(),
    )
    .await
    .with_context(|| format!("listening on {listen}"))?;
    let reflection = if options.reflection {
        ", gRPC reflection on"
    } else {
        ""
    };
    out!(
        "loadgrade coordinator listening on {scheme}://{addr} (store {}, {tokens}{reflection})",
        loadgrade_common::plan::pagination::redacted_database_url(database)
    );
    if let Some(metrics) = metrics_listen {
        let bound = loadgrade_coordinator::metrics::spawn(&coordinator, metrics, shutdown.clone())
            .await
            .with_context(|| format!("listening for /metrics on {metrics}"))?;
        out!("metrics on http://{bound}/metrics");
    }
    // The listener ending by itself (its task failed) ends the process with the reason: a coordinator never
    // lingers without its port.
    tokio::select! {
        signal = terminated() => signal.context("waiting for ctrl-c or SIGTERM")?,
        ended = &mut server => {
            let why = match ended {
                Ok(Ok(())) => "it stopped".to_owned(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => format!("its task ended: {e}"),
            };
            coordinator.drain();
            coordinator.cancel_all(std::time::Duration::from_secs(30)).await;
            return Err(Failure::Runtime(anyhow::anyhow!(
                "the coordinator's listener on {addr} failed: {why}"
            )));
        }
    }
    // Health turns NOT_SERVING at once and new runs are refused while the runs in progress wind down.
    let in_progress = coordinator.states_in_progress().len();
    note!(
        "loadgrade serve: stopping (ctrl-c or SIGTERM): new runs refused; {in_progress} runs in progress stop their load and \
         write their reports (at most 30 s)"
    );
    coordinator.drain();
    // Runs in progress stop their load and store their reports (INVALID: cancelled) before the server goes.
    coordinator
        .cancel_all(std::time::Duration::from_secs(30))
        .await;
    shutdown.cancel();
    // Open streams get a bounded time to end; a peer that holds one open does not keep the process alive.
    if tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .is_err()
    {
        note!("loadgrade serve: connections still open 10 s after shutdown; exiting anyway");
    }
    note!("loadgrade serve: stopped");
    Ok(0)
}
