//! The results store's contract, one body run on SQLite and on a real PostgreSQL (`LOADGRADE_TEST_POSTGRES_URL`):
//! runs and their states, intervals stored once per (run, agent, epoch, seq), reports and listings.

mod support;

use loadgrade_common::grade::Verdict;
use loadgrade_common::interval::{Counters, IntervalReport};
use loadgrade_common::run::RunState;
use loadgrade_common::shard::PartId;
use loadgrade_coordinator::store::{LateIntervals, Store, StoredShard};

async fn store_contract(store: &Store) {
    store
        .insert_run(
            "r1",
            "plan",
            "plan.toml",
            "name = 'plan'",
            "2026-11-27T00:00:00Z",
            Some("key-1"),
        )
        .await
        .expect("run");
    let summary = store.run("r1").await.expect("query").expect("known");
    assert_eq!((summary.state, summary.verdict), (RunState::Queued, None));
    // An idempotency key names one run: found again, and refused for a second one.
    let keyed = store
        .run_by_key("key-1")
        .await
        .expect("query")
        .expect("keyed");
    assert_eq!(keyed.id, "r1");
    assert!(store.run_by_key("key-2").await.expect("query").is_none());
    assert!(
        store
            .insert_run(
                "r1b",
                "plan",
                "plan.toml",
                "",
                "2026-11-27T00:00:00Z",
                Some("key-1")
            )
            .await
            .is_err(),
        "a second run with the same key is refused by the store"
    );
    store
        .set_state("r1", RunState::Running)
        .await
        .expect("state");
    let report = IntervalReport {
        run_id: "r1".into(),
        agent: "a".into(),
        epoch: u64::MAX,
        seq: 0,
        part: PartId {
            scenario: "s".into(),
            stage: 0,
        },
        start_unix_ms: 1000,
        hdr_corrected: vec![1, 2, 3],
        counters: Counters {
            requests: 7,
            ..Counters::default()
        },
        ..IntervalReport::default()
    };
    assert!(store.insert_interval(&report).await.expect("first"));
    assert!(
        !store.insert_interval(&report).await.expect("again"),
        "a re-sent report is ignored"
    );
    assert_eq!(store.interval_count("r1").await.expect("count"), 1);
    // Shards as assigned, read back for a restarted coordinator; intervals stored late are counted per agent.
    let shard = StoredShard {
        agent: "a".into(),
        part: report.part.clone(),
        start_unix_ms: 1000,
        bound_ms: 60_000,
        connections: 4,
        epoch: u64::MAX,
    };
    store
        .insert_shards("r1", &[shard.clone(), shard.clone()])
        .await
        .expect("shards, a second copy ignored");
    assert_eq!(store.shards_of("r1").await.expect("shards"), vec![shard]);
    let late = IntervalReport {
        seq: 1,
        ..report.clone()
    };
    assert_eq!(
        store
            .insert_intervals_marked(&[&late], true)
            .await
            .expect("late"),
        vec![true]
    );
    let per_agent = store.late_intervals("r1").await.expect("late ones");
    assert_eq!(
        per_agent,
        vec![LateIntervals {
            agent: "a".into(),
            count: 1,
            requests: 7
        }]
    );
    assert_eq!(
        store
            .interval_requests("r1", "s")
            .await
            .expect("per second"),
        vec![(1000, 14)]
    );
    assert!(
        store.report("r1").await.expect("query").is_none(),
        "no report before the end"
    );
    store
        .finish_run(
            "r1",
            RunState::Finished,
            Verdict::Pass,
            "2026-11-27T00:01:00Z",
            "{}",
            "# r",
        )
        .await
        .expect("finish");
    let stored = store.report("r1").await.expect("query").expect("report");
    assert_eq!(
        (stored.verdict, stored.json.as_str()),
        (Verdict::Pass, "{}")
    );
    let runs = store.runs(10).await.expect("runs");
    assert_eq!(runs[0].id, "r1");
    assert_eq!(
        (runs[0].state, runs[0].verdict),
        (RunState::Finished, Some(Verdict::Pass))
    );
    assert!(store.run("nope").await.expect("query").is_none());
}

#[tokio::test]
async fn the_store_contract_holds_on_sqlite() {
    store_contract(&Store::in_memory().await.expect("store")).await;
}

#[tokio::test]
async fn the_store_contract_holds_on_postgres() {
    let Some((store, guard)) = support::postgres::postgres_store("contract").await else {
        return;
    };
    store_contract(&store).await;
    guard.drop_schema().await;
}

/// A scrape interval's figures come back as they went in; one whose stored figures lost a field is an error naming
/// it, never a zero.
#[tokio::test]
async fn scrape_figures_round_trip_and_a_missing_field_is_an_error() {
    use loadgrade_common::interval::{PrometheusFigures, ScrapeFigures};
    let dir = std::env::temp_dir().join(format!("loadgrade-store-scrape-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("store.db").display());
    let store = Store::open(&url).await.expect("store");
    store
        .insert_run("r", "p", "p.toml", "", "2026-12-08T00:00:00Z", None)
        .await
        .expect("run");
    let report = IntervalReport {
        run_id: "r".into(),
        agent: "a".into(),
        part: PartId {
            scenario: "s".into(),
            stage: 0,
        },
        scrape: Some(ScrapeFigures {
            target_series: 5,
            series: 10,
            samples: 20,
            prometheus: Some(PrometheusFigures {
                version: "prometheus, version 2.42.0".into(),
                window_ms: 3_000,
                head_series: 10,
                samples_appended_per_s: 9.5,
                rss_bytes: 1 << 20,
                cpu_seconds: 0.25,
                heap_inuse_bytes: 1 << 19,
            }),
            prometheus_not_measured: String::new(),
            window_ms: 3_000,
        }),
        ..IntervalReport::default()
    };
    store.insert_interval(&report).await.expect("stored");
    let back = store.intervals_of("r").await.expect("read back");
    assert_eq!(back[0].scrape, report.scrape);

    // Damage the stored figures: the series count goes missing.
    let pool = sqlx::SqlitePool::connect(&url)
        .await
        .expect("raw connection");
    let json: String = sqlx::query_scalar("SELECT counters_json FROM intervals")
        .fetch_one(&pool)
        .await
        .expect("counters");
    let mut value: serde_json::Value = serde_json::from_str(&json).expect("json");
    value["scrape"]
        .as_object_mut()
        .expect("scrape figures")
        .remove("series");
    sqlx::query("UPDATE intervals SET counters_json = ?")
        .bind(value.to_string())
        .execute(&pool)
        .await
        .expect("damaged");
    let error = store
        .intervals_of("r")
        .await
        .expect_err("a missing figure is an error")
        .to_string();
    assert!(error.contains("series is missing"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}
