//! A coordinator killed with SIGKILL mid-run, then started again on the same store: its agents stop the load by
//! themselves, the restarted coordinator takes the intervals they still held in their spools (marked late), ends the
//! run INTERRUPTED with a report whose requests are the target's own count, to the request, and nothing is run
//! again.

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

fn agent(coordinator: &str, home: &std::path::Path, name: &str) -> Child {
    Command::new(support::agent_binary())
        .args([
            "--coordinator",
            coordinator,
            "--name",
            name,
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
async fn a_coordinator_killed_mid_run_loses_no_interval_and_runs_nothing_again() {
    let dir = std::env::temp_dir().join(format!("loadgrade-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("store.db");
    let testbed = Testbed::start(TestbedConfig::plain(([127, 0, 0, 1], 0).into()))
        .await
        .expect("testbed");
    let port = support::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut coordinator = serve(port, &db).await;
    let mut agents = [
        agent(&url, &dir.join("a"), "crash-1"),
        agent(&url, &dir.join("b"), "crash-2"),
    ];
    let mut runs = client(&url).await;
    // Both agents connected before the run asks for two.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listed = runs
            .list_agents(v1::ListAgentsRequest {})
            .await
            .expect("list agents")
            .into_inner()
            .agents
            .len();
        if listed == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "two agents never connected ({listed})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let plan = format!(
        "name = \"crash\"\nready_timeout = \"30s\"\norphan_timeout = \"2s\"\nmin_agents = 2\n[[scenario]]\n\
         name = \"long\"\nkind = \"http\"\nurl = \"{}\"\nconnections = 4\nduration = \"60s\"\n",
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

    // The agents stop their load by themselves (within orphan_timeout at the latest).
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
    let served = testbed.requests();

    // Restarted on the same store: the run waits for the agents' spools, then ends INTERRUPTED.
    let mut coordinator = serve(port, &db).await;
    let mut runs = client(&url).await;
    let waiting = summary(&mut runs, &run_id).await;
    assert_eq!(
        waiting.state,
        RunState::Running,
        "the run waits for its agents' spooled intervals"
    );
    let deadline = Instant::now() + Duration::from_secs(45);
    let s = loop {
        let s = summary(&mut runs, &run_id).await;
        if s.state.is_final() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the run still waits after orphan_timeout + 30 s + 13 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
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
    let m = support::http_metrics(&report, "long");
    assert_eq!(
        m.requests, served,
        "the report's requests are the target's count, to the request (findings: {:?})",
        report.findings
    );
    let interrupted = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Interrupted)
        .unwrap_or_else(|| panic!("no interrupted finding: {:?}", report.findings));
    assert!(
        interrupted.message.contains("late (")
            && !interrupted.message.contains("none arrived late")
            && interrupted
                .message
                .contains("every agent of the run reconnected"),
        "{}",
        interrupted.message
    );
    let names: Vec<&str> = report.agents.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["crash-1", "crash-2"], "the agents table is filled");
    assert_eq!(
        report.agents.iter().map(|a| a.requests).sum::<u64>(),
        served,
        "the agents' requests add up to the target's count"
    );
    assert!(report.agents.iter().all(|a| !a.lost && a.intervals > 0));

    // Nothing was run again after the restart.
    assert_eq!(
        testbed.requests(),
        served,
        "nothing was run again after the restart"
    );

    for agent in &mut agents {
        let _ = agent.kill().await;
    }
    let _ = coordinator.kill().await;
    testbed.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
