//! Load always stops: whichever way a run ends, its agents stop sending load and are free again.

mod support;

use loadgrade_common::grade::Verdict;
use loadgrade_common::run::RunState;
use loadgrade_coordinator::CancelOutcome;
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
    // ... and it still has a report: INVALID, saying why.
    let report = embedded
        .coordinator
        .store
        .report(&id)
        .await
        .expect("query")
        .expect("the failed run has a report");
    assert_eq!(report.verdict, Verdict::Invalid);
    assert!(report.json.contains("run_failed"), "{}", report.json);
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

/// CancelRun stops the load within a second, or says it could not: here every agent ends its shard in time, the
/// answer says so, and the target sees nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_stops_its_load_within_a_second_and_says_so() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(2).await;
    let plan = format!(
        "name = \"cancelled\"\nmin_agents = 2\n[[scenario]]\nname = \"long\"\nkind = \"http\"\nurl = \"{}\"\n\
         connections = 4\nduration = \"60s\"\n",
        testbed.url("/delay?ms=2")
    );
    let started = embedded
        .coordinator
        .start_run("cancelled.toml", &plan)
        .await
        .expect("plan accepted");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while testbed.requests() < 100 {
        assert!(std::time::Instant::now() < deadline, "the load starts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let outcome = embedded
        .coordinator
        .cancel_run(&started.id, Duration::from_secs(1))
        .await;
    assert_eq!(outcome, CancelOutcome::Stopped);
    let at_answer = testbed.requests();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        testbed.requests(),
        at_answer,
        "no request after CancelRun said the load stopped"
    );
    let finished = tokio::time::timeout(Duration::from_secs(20), started.finished)
        .await
        .expect("the run ends")
        .expect("task")
        .expect("run");
    assert_eq!(finished.report.verdict, Verdict::Invalid);
    assert_eq!(
        embedded
            .coordinator
            .cancel_run(&started.id, Duration::from_secs(1))
            .await,
        CancelOutcome::NotRunning
    );
    embedded.stop().await;
    testbed.shutdown().await;
}
