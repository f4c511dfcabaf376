//! Shared by the coordinator's integration tests: the testbed as target, a coordinator with in-process agents
//! over real loopback gRPC, and report checks.

#![allow(dead_code)]

use loadgrade_common::report::{HttpMetrics, Report};
use loadgrade_coordinator::embedded::Embedded;
use loadgrade_coordinator::runner::FinishedRun;
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
    let s = report
        .scenarios
        .iter()
        .find(|s| s.name == scenario)
        .expect("scenario in report");
    serde_json::from_value(s.metrics.clone()).expect("http metrics")
}
