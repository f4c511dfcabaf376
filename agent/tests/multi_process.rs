//! End to end with real processes: a coordinator, three `loadgrade-agent` processes dialing in over loopback gRPC,
//! the testbed as target. Every request is accounted for: the testbed's own count == the sum of the agents'
//! counts == the merged histogram's total.

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

fn agent_process(coordinator: &str, name: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_loadgrade-agent"))
        .args(["--coordinator", coordinator, "--name", name])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("agent binary starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agent_processes_account_for_every_request() {
    let testbed = Testbed::start(TestbedConfig {
        listen: ([127, 0, 0, 1], 0).into(),
    })
    .await
    .expect("testbed");
    let coordinator = Coordinator::new(Store::in_memory().await.expect("store"));
    let shutdown = CancellationToken::new();
    let (addr, server) = spawn_server(
        coordinator.clone(),
        ([127, 0, 0, 1], 0).into(),
        shutdown.clone(),
    )
    .await
    .expect("server");
    let url = format!("http://{addr}");
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
"#,
        testbed.url("/api/items?limit=5")
    );
    let started = coordinator
        .start_run("three.toml", &plan)
        .await
        .expect("plan accepted");
    let finished = tokio::time::timeout(Duration::from_secs(120), started.finished)
        .await
        .expect("run ends in time")
        .expect("run task")
        .expect("run");
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
    let m: HttpMetrics =
        serde_json::from_value(report.scenarios[0].metrics.clone()).expect("metrics");
    let merged = decode_base64(&m.hdr).expect("merged histogram");
    assert_eq!(m.errors, 0);
    assert_eq!(m.requests, 3000, "the request budget is spent exactly");
    assert_eq!(agent_sum, m.requests);
    assert_eq!(merged.len(), m.requests);
    assert_eq!(
        testbed.requests(),
        m.requests,
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
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops")
        .expect("server task");
    testbed.shutdown().await;
}
