//! The results store on a real PostgreSQL (`LOADGRADE_TEST_POSTGRES_URL`; .ci/run sets it and checks the server
//! answers; without it these tests say so and skip). Each test works in a schema of its own, dropped at the end.

mod support;

use loadgrade_common::grade::Verdict;
use loadgrade_coordinator::embedded::Embedded;
use loadgrade_coordinator::store::Store;
use loadgrade_proto::v1::IntervalReport;

/// A store in a fresh schema, and a guard that drops the schema.
async fn postgres_store(name: &str) -> Option<(Store, SchemaGuard)> {
    let Ok(url) = std::env::var("LOADGRADE_TEST_POSTGRES_URL") else {
        eprintln!("skipped: LOADGRADE_TEST_POSTGRES_URL is not set");
        return None;
    };
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&url)
        .await
        .expect("PostgreSQL answers at LOADGRADE_TEST_POSTGRES_URL");
    let schema = format!("loadgrade_test_{name}_{}", std::process::id());
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&admin)
        .await
        .expect("drop");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .expect("create schema");
    let separator = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let store = Store::open(&scoped).await.expect("store on PostgreSQL");
    Some((store, SchemaGuard { admin, schema }))
}

struct SchemaGuard {
    admin: sqlx::AnyPool,
    schema: String,
}

impl SchemaGuard {
    async fn drop_schema(self) {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .execute(&self.admin)
            .await;
    }
}

#[tokio::test]
async fn runs_and_intervals_are_stored_once_in_postgres() {
    let Some((store, guard)) = postgres_store("store").await else {
        return;
    };
    store
        .insert_run(
            "r1",
            "plan",
            "plan.toml",
            "name = 'plan'",
            "2026-11-27T00:00:00Z",
        )
        .await
        .expect("run");
    let report = IntervalReport {
        run_id: "r1".into(),
        agent: "a".into(),
        epoch: u64::MAX,
        seq: 0,
        scenario: "s".into(),
        start_unix_ms: 1000,
        hdr_corrected: vec![1, 2, 3],
        counters: Some(loadgrade_proto::v1::Counters {
            requests: 7,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(store.insert_interval(&report).await.expect("first"));
    assert!(
        !store.insert_interval(&report).await.expect("again"),
        "a re-sent report is ignored"
    );
    assert_eq!(store.interval_count("r1").await.expect("count"), 1);
    assert_eq!(
        store
            .interval_requests("r1", "s")
            .await
            .expect("per second"),
        vec![(1000, 7)]
    );
    store
        .finish_run(
            "r1",
            "finished",
            "PASS",
            "2026-11-27T00:01:00Z",
            "{}",
            "# r",
        )
        .await
        .expect("finish");
    assert_eq!(
        store
            .report("r1")
            .await
            .expect("query")
            .expect("report")
            .verdict,
        "PASS"
    );
    assert_eq!(store.runs(10).await.expect("runs")[0].id, "r1");
    guard.drop_schema().await;
}

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
