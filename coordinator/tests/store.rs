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
