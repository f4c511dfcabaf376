//! Shared by the coordinator's integration tests: the testbed as target, a coordinator with in-process agents
//! over real loopback gRPC, and report checks.

#![allow(dead_code)]

pub mod postgres;

use loadgrade_common::report::{HttpMetrics, RampMetrics, Report, ScenarioMetrics};
use loadgrade_coordinator::embedded::Embedded;
use loadgrade_coordinator::run::FinishedRun;
use loadgrade_coordinator::store::Store;
use loadgrade_testbed::{Testbed, TestbedConfig};

pub async fn testbed() -> Testbed {
    Testbed::start(TestbedConfig::plain(([127, 0, 0, 1], 0).into()))
        .await
        .expect("testbed starts")
}

pub async fn embedded(agents: u32) -> Embedded {
    Embedded::start(Store::in_memory().await.expect("store"), agents)
        .await
        .expect("embedded coordinator")
}

/// Runs `plan` to its end on `embedded`.
pub async fn run_plan(embedded: &Embedded, plan: &str) -> FinishedRun {
    let started = embedded
        .coordinator
        .start_run("test.toml", plan)
        .await
        .expect("plan accepted");
    started
        .finished
        .await
        .expect("run task")
        .expect("run finishes")
}

/// The report conforms to the checked-in JSON Schema.
pub fn assert_schema_valid(json: &str) {
    let value: serde_json::Value = serde_json::from_str(json).expect("report.json parses");
    let violations = loadgrade_common::schema::report_violations(&value);
    assert!(
        violations.is_empty(),
        "report.json violates the schema:\n{}",
        violations.join("\n")
    );
}

pub fn http_metrics(report: &Report, scenario: &str) -> HttpMetrics {
    match metrics(report, scenario) {
        ScenarioMetrics::Http(m) => m,
        other => panic!("{scenario}: not http metrics: {other:?}"),
    }
}

pub fn ramp_metrics(report: &Report, scenario: &str) -> RampMetrics {
    match metrics(report, scenario) {
        ScenarioMetrics::Ramp(m) => m,
        other => panic!("{scenario}: not ramp metrics: {other:?}"),
    }
}

pub fn cache_metrics(
    report: &Report,
    scenario: &str,
) -> loadgrade_common::report::cache::CacheMetrics {
    match metrics(report, scenario) {
        ScenarioMetrics::Cache(m) => m,
        other => panic!("{scenario}: not cache metrics: {other:?}"),
    }
}

fn metrics(report: &Report, scenario: &str) -> ScenarioMetrics {
    report
        .scenarios
        .iter()
        .find(|s| s.name == scenario)
        .expect("scenario in report")
        .metrics
        .clone()
        .expect("the scenario ran")
}

/// The `loadgrade-agent` binary, built if needed. The agent is another package, so cargo gives this package's tests
/// no `CARGO_BIN_EXE_` for it: ask cargo to build it (a no-op when it is fresh) and take the path it reports.
pub fn agent_binary() -> std::path::PathBuf {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let out = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "loadgrade-agent",
                "--bin",
                "loadgrade-agent",
                "--message-format=json",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "building loadgrade-agent failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|v| {
                let is_agent =
                    v["target"]["name"] == "loadgrade-agent" && v["target"]["kind"][0] == "bin";
                is_agent.then(|| v["executable"].as_str().map(std::path::PathBuf::from))?
            })
            .expect("cargo reports the agent executable")
    })
    .clone()
}

/// The URL of a service the tests need, from `LOADGRADE_TEST_<NAME>_URL`. Without it the test says so and skips,
/// except under CI (`CI=true`), where a missing service is a failure.
pub fn service_url(name: &str) -> Option<String> {
    let var = format!("LOADGRADE_TEST_{name}_URL");
    match std::env::var(&var) {
        Ok(url) => Some(url),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{var} is not set, and under CI every service test must run")
        }
        Err(_) => {
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}

/// Whether `tool` is on PATH. Without it the test says so and skips, except under CI (`CI=true`, where .ci/run
/// installs it), where a missing tool is a failure.
pub fn require_tool(tool: &str, install: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{tool} is not on PATH, and under CI every test must run ({install})");
    }
    eprintln!("skipped: no {tool} on PATH ({install})");
    false
}

/// `loadgrade run plan.toml --agents 1 --out report --database sqlite://runs.db` in `dir`, as a user types it.
pub async fn run_plan_file(dir: &std::path::Path) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgrade"))
        .args([
            "run",
            "plan.toml",
            "--agents",
            "1",
            "--out",
            "report",
            "--database",
            "sqlite://runs.db",
        ])
        .current_dir(dir)
        .output()
        .await
        .expect("loadgrade runs")
}

/// The message of the first finding about `scenario` (of `kind`, when given).
pub fn finding_about(
    report: &Report,
    scenario: &str,
    kind: Option<loadgrade_common::report::FindingKind>,
) -> String {
    report
        .findings
        .iter()
        .find(|f| {
            kind.is_none_or(|k| f.kind == k)
                && f.message.contains(&format!("scenario \"{scenario}\""))
        })
        .unwrap_or_else(|| panic!("nothing about {scenario}: {:?}", report.findings))
        .message
        .clone()
}

/// A loopback port free at the time of asking (for a process that must listen where others dial, again after a
/// restart).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}
