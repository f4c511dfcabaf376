//! End to end with real processes: a coordinator, three `loadgrade-agent` processes dialing in over loopback gRPC,
//! the testbed as target. Every request is accounted for: the testbed's own count == the sum of the agents'
//! counts == the merged histogram's total.

mod support;

use loadgrade_common::grade::Verdict;
use loadgrade_common::histogram::decode_base64;
use loadgrade_common::report::HttpMetrics;
use loadgrade_coordinator::store::Store;
use loadgrade_coordinator::{Coordinator, spawn_server};
use loadgrade_testbed::{Testbed, TestbedConfig};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// A home of the test's own, so the agents' spools (under ~/.local/state) are this test's.
fn spool_home() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgrade-multi-process-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn agent_process(coordinator: &str, name: &str) -> Child {
    Command::new(support::agent_binary())
        .args([
            "--coordinator",
            coordinator,
            "--name",
            name,
            "--allow-loopback",
        ])
        .env("HOME", spool_home())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("agent binary starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agent_processes_account_for_every_request() {
    let testbed = testbed().await;
    let (coordinator, url, shutdown, server) = start_coordinator().await;
    let mut agents: Vec<Child> = (1..=3)
        .map(|i| agent_process(&url, &format!("proc-{i}")))
        .collect();

    let plan = format!(
        r#"
name = "three-processes"
min_agents = 3
ready_timeout = "30s"
[[scenario]]
name = "items"
kind = "http"
url = "{}"
model = "closed"
connections = 6
requests = 3000
thresholds = ["success_rate == 1"]

[[scenario]]
name = "timed"
kind = "http"
url = "{}"
model = "closed"
connections = 3
duration = "2s"
"#,
        testbed.url("/api/items?limit=5"),
        testbed.url("/delay?ms=2")
    );
    let started = coordinator
        .start_run("three.toml", &plan)
        .await
        .expect("plan accepted");
    let finished = finish(started).await;
    let report = &finished.report;

    let value: serde_json::Value = serde_json::from_str(&finished.json).expect("json");
    let violations = loadgrade_common::schema::report_violations(&value);
    assert!(violations.is_empty(), "schema: {violations:?}");

    assert_eq!(
        report.verdict,
        Verdict::Pass,
        "{:?}",
        report.verdict_reasons
    );
    assert_eq!(report.agents.len(), 3);
    let agent_sum: u64 = report.agents.iter().map(|a| a.requests).sum();
    for a in &report.agents {
        assert!(a.requests > 0, "agent {} took part", a.name);
        assert!(!a.lost);
    }
    let m: HttpMetrics = support::http_metrics(report, &report.scenarios[0].name);
    let merged = decode_base64(&m.hdr).expect("merged histogram");
    assert_eq!(m.errors, 0);
    assert_eq!(m.requests, 3000, "the request budget is spent exactly");
    assert_eq!(merged.len(), m.requests);
    // Duration-bound: requests in flight at the end are waited for and counted, none lost.
    let timed: HttpMetrics = support::http_metrics(report, &report.scenarios[1].name);
    assert!(
        timed.requests > 100,
        "2 s over 3 connections of a 2 ms endpoint: {}",
        timed.requests
    );
    assert_eq!(timed.errors, 0);
    assert_eq!(
        decode_base64(&timed.hdr).expect("histogram").len(),
        timed.requests
    );
    assert_eq!(
        agent_sum,
        m.requests + timed.requests,
        "agents' totals == scenarios' totals"
    );
    assert_eq!(
        testbed.requests(),
        agent_sum,
        "the testbed saw exactly what the agents counted"
    );
    let stored = coordinator
        .store
        .interval_count(&report.run_id)
        .await
        .expect("count");
    assert_eq!(
        stored as u64,
        report.agents.iter().map(|a| a.intervals).sum::<u64>(),
        "every interval is stored"
    );

    for agent in &mut agents {
        let _ = agent.kill().await;
    }
    stop_coordinator(shutdown, server).await;
    testbed.shutdown().await;
}

async fn testbed() -> Testbed {
    Testbed::start(TestbedConfig::plain(([127, 0, 0, 1], 0).into()))
        .await
        .expect("testbed")
}

/// Waits (at most a minute) for a run's report.
async fn finish(
    started: loadgrade_coordinator::StartedRun,
) -> loadgrade_coordinator::run::FinishedRun {
    tokio::time::timeout(Duration::from_secs(60), started.finished)
        .await
        .expect("run ends in time")
        .expect("run task")
        .expect("run")
}

/// Stops the server started by [`start_coordinator`] (its agents must be gone or killed first).
async fn stop_coordinator(shutdown: CancellationToken, server: tokio::task::JoinHandle<()>) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops")
        .expect("server task");
}

async fn start_coordinator() -> (
    std::sync::Arc<Coordinator>,
    String,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let coordinator = Coordinator::new(Store::in_memory().await.expect("store"));
    let shutdown = CancellationToken::new();
    let (addr, server) = spawn_server(
        coordinator.clone(),
        ([127, 0, 0, 1], 0).into(),
        shutdown.clone(),
    )
    .await
    .expect("server");
    (coordinator, format!("http://{addr}"), shutdown, server)
}

/// An agent killed mid-run: the run still ends, the agent is marked lost, the verdict is DEGRADED (not PASS), and
/// the figures it sent before dying are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_lost_mid_run_degrades_the_verdict() {
    let testbed = testbed().await;
    let (coordinator, url, shutdown, server) = start_coordinator().await;
    let mut survivor = agent_process(&url, "survivor");
    let mut victim = agent_process(&url, "victim");
    let plan = format!(
        "name = \"loss\"\nmin_agents = 2\n[[scenario]]\nname = \"items\"\nkind = \"http\"\nurl = \"{}\"\nconnections = 2\nduration = \"4s\"\n",
        testbed.url("/api/items?limit=5")
    );
    let started = coordinator
        .start_run("loss.toml", &plan)
        .await
        .expect("plan accepted");
    // Kill the victim about 2 s into the load (after the run's preflight, once the target sees requests).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while testbed.requests() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the load did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    victim.kill().await.expect("kill victim");
    let finished = finish(started).await;
    let report = &finished.report;
    assert_eq!(
        report.verdict,
        Verdict::Degraded,
        "{:?}",
        report.verdict_reasons
    );
    let victim_report = report
        .agents
        .iter()
        .find(|a| a.name == "victim")
        .expect("victim listed");
    assert!(victim_report.lost);
    assert!(
        victim_report.requests > 0,
        "its figures up to the loss are kept"
    );
    assert!(
        !report
            .agents
            .iter()
            .find(|a| a.name == "survivor")
            .expect("survivor")
            .lost
    );
    assert!(
        report
            .verdict_reasons
            .iter()
            .any(|r| r.contains("\"victim\" was lost")),
        "{:?}",
        report.verdict_reasons
    );

    let _ = survivor.kill().await;
    stop_coordinator(shutdown, server).await;
    testbed.shutdown().await;
}

/// A target outside the agent's allowlist is refused before any request; the run is INVALID and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_outside_the_allowlist_is_refused() {
    let (coordinator, url, shutdown, server) = start_coordinator().await;
    let mut agent = agent_process(&url, "careful");
    // A literal documentation address (TEST-NET-3): refused by the allowlist check, no packet is ever sent to it.
    let plan = "name = \"refused\"\n[[scenario]]\nname = \"far\"\nkind = \"http\"\nurl = \"http://203.0.113.7/\"\nrequests = 10\n";
    let started = coordinator
        .start_run("refused.toml", plan)
        .await
        .expect("plan accepted");
    let finished = finish(started).await;
    let report = &finished.report;
    assert_eq!(report.verdict, Verdict::Invalid);
    assert!(
        report
            .verdict_reasons
            .iter()
            // Found by the run's preflight, before any assignment.
            .any(|r| r.contains("preflight allowlist")
                && r.contains("outside this agent's allowlist")),
        "{:?}",
        report.verdict_reasons
    );
    assert_eq!(report.agents[0].requests, 0);
    let _ = agent.kill().await;
    stop_coordinator(shutdown, server).await;
}

/// An agent whose open-file limit cannot hold the shard's connections refuses it before any load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_beyond_the_open_file_limit_is_refused_before_any_load() {
    let testbed = testbed().await;
    let (coordinator, url, shutdown, server) = start_coordinator().await;
    // `ulimit -n` lowers soft and hard limits, so the agent cannot raise them again.
    let mut agent = Command::new("bash")
        .args([
            "-c",
            &format!(
                "ulimit -n 256 && exec {} --coordinator {url} --name small --allow-loopback",
                support::agent_binary().display()
            ),
        ])
        .env("HOME", spool_home())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("agent starts");
    let plan = format!(
        "name = \"fds\"\n[[scenario]]\nname = \"wide\"\nkind = \"http\"\nurl = \"{}\"\nconnections = 1000\nduration = \"2s\"\n",
        testbed.url("/health")
    );
    let started = coordinator
        .start_run("fds.toml", &plan)
        .await
        .expect("plan accepted");
    let finished = finish(started).await;
    let report = &finished.report;
    assert_eq!(report.verdict, Verdict::Invalid);
    assert!(
        report
            .verdict_reasons
            .iter()
            // Found by the run's preflight, with the numbers.
            .any(|r| r.contains("preflight open files") && r.contains("limit 256")),
        "{:?}",
        report.verdict_reasons
    );
    assert_eq!(testbed.requests(), 0, "no load was sent");
    let _ = agent.kill().await;
    stop_coordinator(shutdown, server).await;
    testbed.shutdown().await;
}

/// A ramp whose target memory comes from a probe agent (`loadgrade-agent --probe-only`) on the target host: the
/// probe agent answers every sample and runs no load; the load agent runs the steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_agent_reports_the_targets_memory() {
    let testbed = testbed().await;
    let (coordinator, url, shutdown, server) = start_coordinator().await;
    let mut load = agent_process(&url, "load-box");
    let mut probe = Command::new(support::agent_binary())
        .args([
            "--coordinator",
            &url,
            "--name",
            "target-box",
            "--probe-only",
        ])
        .env("RUST_LOG", "warn")
        .env("HOME", spool_home())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("probe agent starts");
    // Both must be connected before the run: the barrier counts load agents only.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while coordinator.registry.agents().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "agents did not connect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The testbed runs in this test process: the probe agent reads this PID on the shared host.
    let plan = format!(
        "name = \"probed\"\n[budget]\nmemory = \"8GiB\"\n[[scenario]]\nname = \"cap\"\nkind = \"ramp\"\nurl = \"{}\"\nstart = 2\nstop = 6\nstep = 2\nhold = \"1s\"\nprobe = {{ kind = \"agent\", agent = \"target-box\", pid = {} }}\nthresholds = [\"memory_headroom >= 0.5\"]\n",
        testbed.url("/work?ms=5&slots=4"),
        std::process::id()
    );
    let started = coordinator
        .start_run("probed.toml", &plan)
        .await
        .expect("plan accepted");
    let finished = finish(started).await;
    let report = &finished.report;
    assert_eq!(
        report.verdict,
        Verdict::Pass,
        "{:?}",
        report.verdict_reasons
    );
    assert_eq!(report.agents.len(), 1, "the probe agent runs no load");
    assert_eq!(report.agents[0].name, "load-box");
    let m = support::ramp_metrics(report, &report.scenarios[0].name);
    assert_eq!(m.steps.len(), 3);
    for step in &m.steps {
        assert!(step.probe_samples >= 1, "{step:?}");
        assert!(
            step.target_memory_bytes.is_some_and(|b| b > 1 << 20),
            "{step:?}"
        );
    }
    assert!(m.memory_headroom.is_some());
    let _ = load.kill().await;
    let _ = probe.kill().await;
    stop_coordinator(shutdown, server).await;
    testbed.shutdown().await;
}
