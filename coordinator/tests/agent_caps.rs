//! An agent's `--max-rate` is checked against its share before any load (issue 20: "rate at most --max-rate per
//! agent, checked at validation against the agents it would run on where the coordinator knows them"): `check`
//! fails the row, and a run stops before its first request.

mod support;

use loadgrade_common::preflight::CheckStatus;
use loadgrade_coordinator::embedded::Embedded;
use loadgrade_coordinator::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_beyond_an_agents_max_rate_fails_its_check_and_sends_nothing() {
    let testbed = support::testbed().await;
    let embedded = Embedded::start_with(Store::in_memory().await.expect("store"), 2, |config| {
        config.caps.max_rate = Some(100);
    })
    .await
    .expect("agents");
    // 300 arrivals/s over 2 agents: 150 each, over their cap of 100.
    let plan = format!(
        "name = \"fast\"\n[[scenario]]\nname = \"api\"\nkind = \"http\"\nurl = \"{}\"\nrate = 300\nduration = \"2s\"\n",
        testbed.url("/health")
    );
    let rows = embedded
        .coordinator
        .check_plan("fast.toml", &plan)
        .await
        .expect("valid plan");
    let failing: Vec<_> = rows
        .iter()
        .filter(|r| r.status == CheckStatus::Fail)
        .collect();
    assert_eq!(failing.len(), 2, "one failing row per agent: {rows:#?}");
    for row in &failing {
        assert!(row.value.contains("--max-rate"), "{row:?}");
        assert!(row.value.contains("150"), "{row:?}");
    }
    let finished = support::run_plan(&embedded, &plan).await;
    assert_eq!(
        testbed.requests(),
        0,
        "no request before the failing preflight"
    );
    assert!(
        finished
            .report
            .findings
            .iter()
            .any(|f| f.message.contains("--max-rate")),
        "{:?}",
        finished.report.findings
    );
    // Within the cap, the same plan checks clean.
    let slower = plan.replace("rate = 300", "rate = 200");
    let rows = embedded
        .coordinator
        .check_plan("slower.toml", &slower)
        .await
        .expect("valid plan");
    assert!(
        rows.iter().all(|r| r.status != CheckStatus::Fail),
        "{rows:#?}"
    );
    embedded.stop().await;
}
