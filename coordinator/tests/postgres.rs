//! A whole run on the results store in a real PostgreSQL (`LOADGRADE_TEST_POSTGRES_URL`; .ci/run sets it and checks
//! the server answers; without it the test says so and skips, except under CI). The store's own contract runs on
//! PostgreSQL and SQLite alike in tests/store.rs.

mod support;

use loadgrade_common::grade::Verdict;
use loadgrade_coordinator::embedded::Embedded;
use support::postgres::postgres_store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_run_lands_in_postgres() {
    let Some((store, guard)) = postgres_store("run").await else {
        return;
    };
    let testbed = support::testbed().await;
    let embedded = Embedded::start(store.clone(), 2).await.expect("embedded");
    let plan = format!(
        "name = \"pg\"\nmin_agents = 2\n[[scenario]]\nname = \"items\"\nkind = \"http\"\nurl = \"{}\"\nrequests = 300\nconnections = 4\n",
        testbed.url("/api/items")
    );
    let finished = support::run_plan(&embedded, &plan).await;
    assert_eq!(
        finished.report.verdict,
        Verdict::Pass,
        "{:?}",
        finished.report.verdict_reasons
    );
    let stored = store
        .report(&finished.report.run_id)
        .await
        .expect("query")
        .expect("stored report");
    assert_eq!(stored.json, finished.json);
    let intervals = store
        .interval_count(&finished.report.run_id)
        .await
        .expect("count");
    assert_eq!(
        intervals as u64,
        finished
            .report
            .agents
            .iter()
            .map(|a| a.intervals)
            .sum::<u64>()
    );
    assert_eq!(testbed.requests(), 300);
    embedded.stop().await;
    testbed.shutdown().await;
    guard.drop_schema().await;
}
