//! A coordinator killed with SIGKILL mid-run, then started again on the same store: its agent stops the load by
//! itself, the restarted coordinator ends the run INTERRUPTED with a report of the intervals stored before the
//! crash, and nothing is run again.

mod support;

use loadgrade_common::grade::Verdict;
use loadgrade_common::report::{FindingKind, Report};
use loadgrade_common::run::{RunState, RunSummary};
use loadgrade_proto::v1;
use loadgrade_proto::v1::run_service_client::RunServiceClient;
use loadgrade_testbed::{Testbed, TestbedConfig};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};

/// A loopback port free at the time of asking (the restarted coordinator must listen where the agent dials).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `loadgrade serve` on `port` over the SQLite file `db`, once it says it listens.
async fn serve(port: u16, db: &std::path::Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgrade"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            &format!("sqlite://{}", db.display()),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("loadgrade serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("serve says it listens in time")
        .expect("stdout readable")
        .expect("a line");
    assert!(first.contains("listening"), "{first}");
    child
}

fn agent(coordinator: &str, home: &std::path::Path) -> Child {
    Command::new(support::agent_binary())
        .args([
            "--coordinator",
            coordinator,
            "--name",
            "crash-1",
            "--allow-loopback",
        ])
        .env("HOME", home)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("agent starts")
}

async fn client(url: &str) -> RunServiceClient<tonic::transport::Channel> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match RunServiceClient::connect(url.to_owned()).await {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("coordinator at {url} unreachable: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn summary(
    client: &mut RunServiceClient<tonic::transport::Channel>,
    run_id: &str,
) -> RunSummary {
    let runs = client
        .list_runs(v1::ListRunsRequest { limit: 10 })
        .await
        .expect("list runs")
        .into_inner()
        .runs;
    let wire = runs
        .into_iter()
        .find(|r| r.run_id == run_id)
        .expect("the run is listed");
    RunSummary::try_from(wire).expect("summary converts")
}

/// Waits until the testbed's count stops moving for `quiet`; returns how long that took from the call.
async fn load_stops(testbed: &Testbed, quiet: Duration, within: Duration) -> Duration {
    let start = Instant::now();
    let mut last = testbed.requests();
    let mut still_since = Instant::now();
    while start.elapsed() < within {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = testbed.requests();
        if now != last {
            last = now;
            still_since = Instant::now();
        } else if still_since.elapsed() >= quiet {
            return still_since.duration_since(start);
        }
    }
    panic!("the load did not stop within {within:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_mid_run_leaves_an_interrupted_report_and_no_load() {
    let dir = std::env::temp_dir().join(format!("loadgrade-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("store.db");
    let testbed = Testbed::start(TestbedConfig::plain(([127, 0, 0, 1], 0).into()))
        .await
        .expect("testbed");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut coordinator = serve(port, &db).await;
    let mut agent = agent(&url, &dir);
    let mut runs = client(&url).await;
    let plan = format!(
        "name = \"crash\"\nready_timeout = \"30s\"\norphan_timeout = \"2s\"\n[[scenario]]\nname = \"long\"\n\
         kind = \"http\"\nurl = \"{}\"\nconnections = 2\nduration = \"60s\"\n",
        testbed.url("/delay?ms=2")
    );
    let run_id = runs
        .start_run(v1::StartRunRequest {
            plan_toml: plan,
            plan_file: "crash.toml".into(),
            idempotency_key: String::new(),
        })
        .await
        .expect("run starts")
        .into_inner()
        .run_id;

    // Let a few one-second intervals be stored, then kill the coordinator without warning.
    let deadline = Instant::now() + Duration::from_secs(30);
    while testbed.requests() == 0 {
        assert!(Instant::now() < deadline, "the load never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(3500)).await;
    coordinator.kill().await.expect("SIGKILL the coordinator");
    let served_at_kill = testbed.requests();

    // The agent stops its load by itself (within orphan_timeout at the latest).
    let stopped_after = load_stops(
        &testbed,
        Duration::from_millis(1500),
        Duration::from_secs(10),
    )
    .await;
    assert!(
        stopped_after <= Duration::from_secs(3),
        "load went on {stopped_after:?} after the coordinator died (orphan_timeout 2 s)"
    );
    let served_before_restart = testbed.requests();

    // Restarted on the same store: the run is ended INTERRUPTED, with what was stored.
    let mut coordinator = serve(port, &db).await;
    let mut runs = client(&url).await;
    let s = summary(&mut runs, &run_id).await;
    assert_eq!(s.state, RunState::Interrupted);
    assert_eq!(s.verdict, Some(Verdict::Invalid));
    let stored = runs
        .get_report(v1::GetReportRequest {
            run_id: run_id.clone(),
        })
        .await
        .expect("the interrupted run has a report")
        .into_inner();
    let report: Report = serde_json::from_str(&stored.report_json).expect("report parses");
    support::assert_schema_valid(&stored.report_json);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::Interrupted),
        "{:?}",
        report.findings
    );
    let m = support::http_metrics(&report, "long");
    assert!(
        m.requests > 0 && m.requests <= served_at_kill,
        "the report holds the stored intervals' requests ({}), no more than were served by the kill ({served_at_kill})",
        m.requests
    );

    // The agent dials the new coordinator; no load starts again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        testbed.requests(),
        served_before_restart,
        "nothing was run again after the restart"
    );

    let _ = agent.kill().await;
    let _ = coordinator.kill().await;
    testbed.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
