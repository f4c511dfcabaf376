//! Load always stops: whichever way a run ends, its agents stop sending load and are free again.

mod support;

use loadgrade_common::run::RunState;
use loadgrade_coordinator::run::RunError;
use std::time::Duration;

/// Regression (issue 7): a run task that failed after its shards were assigned (an overflowing duration then)
/// panicked, and the agents kept sending load for as long as their shard said, still busy, the run still "running".
/// Now the run's load guard stops them when the task unwinds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_fails_under_load_stops_its_load_within_two_seconds() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(2).await;
    embedded.coordinator.faults.arm_panic_under_load();
    let plan = format!(
        "name = \"doomed\"\nmin_agents = 2\n[[scenario]]\nname = \"long\"\nkind = \"http\"\nurl = \"{}\"\n\
         model = \"closed\"\nconnections = 4\nduration = \"60s\"\n",
        testbed.url("/delay?ms=2")
    );
    let started = embedded
        .coordinator
        .start_run("doomed.toml", &plan)
        .await
        .expect("plan accepted");
    let id = started.id.clone();
    let result = tokio::time::timeout(Duration::from_secs(20), started.finished)
        .await
        .expect("the failed run ends at once, not after its 60 s")
        .expect("run task");
    assert!(matches!(result, Err(RunError::Panicked(_))), "{result:?}");
    let at_failure = testbed.requests();
    assert!(at_failure > 0, "the load had started");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_two_seconds = testbed.requests();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        testbed.requests(),
        after_two_seconds,
        "requests still arrived more than 2 s after the run failed"
    );
    assert_eq!(
        embedded.coordinator.registry.idle_count(),
        2,
        "the agents are free again"
    );
    let stored = embedded
        .coordinator
        .store
        .run(&id)
        .await
        .expect("query")
        .expect("run");
    assert_eq!(stored.state, RunState::Error);
    // The agents take the next run.
    let next = format!(
        "name = \"next\"\nmin_agents = 2\n[[scenario]]\nname = \"short\"\nkind = \"http\"\nurl = \"{}\"\nrequests = 20\n",
        testbed.url("/api/items")
    );
    let finished = support::run_plan(&embedded, &next).await;
    assert_eq!(finished.report.agents.len(), 2);
    embedded.stop().await;
    testbed.shutdown().await;
}
