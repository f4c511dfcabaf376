//! The load engine through the whole system (coordinator + in-process agents over loopback gRPC + testbed):
//! ramping profiles follow their plan second by second, and the generator's self-diagnosis tells a run whose
//! planned load was not offered (INVALID) from a target that is merely slow (valid, and the latency shows it).

mod support;

use loadgrade_common::grade::Verdict;
use loadgrade_common::plan::{Plan, ScenarioSpec};

fn scenario_plan(name: &str, min_agents: u32, body: &str) -> String {
    format!(
        "name = \"{name}\"\nmin_agents = {min_agents}\n[[scenario]]\nname = \"{name}\"\nkind = \"http\"\n{body}"
    )
}

/// Per-second request totals of the measured phase, from the stored intervals (full seconds only).
async fn per_second(
    embedded: &loadgrade_coordinator::embedded::Embedded,
    run: &str,
    scenario: &str,
) -> Vec<i64> {
    let rows = embedded
        .coordinator
        .store
        .interval_requests(run, scenario)
        .await
        .expect("intervals");
    rows.into_iter().map(|(_, requests)| requests).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramping_arrival_rate_follows_the_plan_every_second() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(3).await;
    let plan = scenario_plan(
        "ramp",
        3,
        &format!(
            "url = \"{}\"\nrate = 50\nstages = [{{ rate = 500, duration = \"10s\" }}]\nconnections = 60\n",
            testbed.url("/api/items?limit=5")
        ),
    );
    let finished = support::run_plan(&embedded, &plan).await;
    support::assert_schema_valid(&finished.json);
    assert_eq!(
        finished.report.verdict,
        Verdict::Pass,
        "{:?}",
        finished.report.verdict_reasons
    );
    let counts = per_second(&embedded, &finished.report.run_id, "ramp").await;
    let parsed = Plan::parse("ramp.toml", &plan).expect("plan");
    let ScenarioSpec::Http(spec) = &parsed.scenarios[0].spec else {
        panic!("an http scenario")
    };
    let profile = spec.profile();
    assert!(counts.len() >= 10, "ten measured seconds: {counts:?}");
    for (second, &count) in counts.iter().enumerate().take(10).skip(1) {
        let expected = profile.total_in_second(second as u64) as f64;
        let off = (count as f64 - expected).abs() / expected;
        assert!(
            off <= 0.05,
            "second {second}: {count} requests, planned {expected} ({counts:?})"
        );
    }
    let m = support::http_metrics(&finished.report, "ramp");
    let planned: u64 = (0..10).map(|s| profile.total_in_second(s)).sum();
    assert_eq!(
        m.requests, planned,
        "every planned arrival was sent and answered"
    );
    assert_eq!(testbed.requests(), planned);
    embedded.stop().await;
    testbed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramping_connections_raise_throughput_step_by_step() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(2).await;
    // Each connection of a 20 ms endpoint does at most 50 requests a second; 1 -> 8 connections over 4 s.
    let plan = scenario_plan(
        "conns",
        2,
        &format!(
            "url = \"{}\"\nmodel = \"closed\"\nconnections = 1\nstages = [{{ connections = 8, duration = \"4s\" }}]\n",
            testbed.url("/delay?ms=20")
        ),
    );
    let finished = support::run_plan(&embedded, &plan).await;
    assert_eq!(
        finished.report.verdict,
        Verdict::Pass,
        "{:?}",
        finished.report.verdict_reasons
    );
    let counts = per_second(&embedded, &finished.report.run_id, "conns").await;
    // Planned connections per second: 2, 4, 5, 7 (1 + 7t/4 at each second's middle, rounded).
    assert!(counts.len() >= 4, "{counts:?}");
    assert!(
        counts[0] <= 2 * 50 + 5,
        "second 0 runs at most 2 connections: {counts:?}"
    );
    assert!(
        counts[3] >= 5 * 40,
        "second 3 runs 7 connections: {counts:?}"
    );
    assert!(
        counts[0] < counts[1] && counts[1] < counts[2] && counts[2] < counts[3],
        "{counts:?}"
    );
    embedded.stop().await;
    testbed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_overflow_is_invalid_and_enough_connections_are_valid() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(2).await;
    // 200 arrivals/s at a 100 ms endpoint: 2 connections carry 20/s, the backlog of 20 overflows.
    let starved = scenario_plan(
        "starved",
        2,
        &format!(
            "url = \"{}\"\nrate = 200\nconnections = 2\nmax_backlog = 20\nduration = \"3s\"\n",
            testbed.url("/delay?ms=100")
        ),
    );
    let finished = support::run_plan(&embedded, &starved).await;
    support::assert_schema_valid(&finished.json);
    let m = support::http_metrics(&finished.report, "starved");
    assert_eq!(finished.report.verdict, Verdict::Invalid);
    assert!(m.dropped > 300, "dropped arrivals counted: {}", m.dropped);
    assert!(
        finished
            .report
            .verdict_reasons
            .iter()
            .any(|r| r.contains("dropped") && r.contains("arrivals")),
        "{:?}",
        finished.report.verdict_reasons
    );
    let generator_drops: u64 = finished
        .report
        .agents
        .iter()
        .map(|a| a.generator.dropped)
        .sum();
    assert_eq!(generator_drops, m.dropped);

    // The same plan with enough connections: 40 connections carry 400/s.
    let enough = starved.replace("connections = 2", "connections = 40");
    let finished = support::run_plan(&embedded, &enough).await;
    let m = support::http_metrics(&finished.report, "starved");
    assert_eq!(
        finished.report.verdict,
        Verdict::Pass,
        "{:?}",
        finished.report.verdict_reasons
    );
    assert_eq!((m.dropped, m.requests), (0, 600));
    embedded.stop().await;
    testbed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_with_a_large_backlog_is_valid_and_shows_in_corrected_latency() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(2).await;
    // The target freezes for 1 s every 3 s; 2 connections and a backlog that holds the freeze's arrivals.
    let plan = scenario_plan(
        "freeze",
        2,
        &format!(
            "url = \"{}\"\nrate = 100\nconnections = 2\nmax_backlog = 1000\nduration = \"4s\"\n",
            testbed.url("/stall?period_ms=3000&pause_ms=1000")
        ),
    );
    let finished = support::run_plan(&embedded, &plan).await;
    assert_eq!(
        finished.report.verdict,
        Verdict::Pass,
        "waiting on a slow target is not a generator fault: {:?}",
        finished.report.verdict_reasons
    );
    let m = support::http_metrics(&finished.report, "freeze");
    assert_eq!((m.dropped, m.requests), (0, 400));
    let corrected = m.latency_ms.expect("corrected");
    let raw = m.latency_raw_ms.expect("raw");
    assert!(
        corrected.p99 >= 800.0,
        "the 1 s freeze shows: corrected p99 {}",
        corrected.p99
    );
    assert!(raw.p90 < 100.0, "raw p90 hides it: {}", raw.p90);
    let wait = finished
        .report
        .agents
        .iter()
        .filter_map(|a| a.generator.connection_wait_ms_p99)
        .fold(0.0, f64::max);
    assert!(
        wait >= 500.0,
        "the wait for a connection is reported: {wait}"
    );
    embedded.stop().await;
    testbed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramping_open_model_still_separates_corrected_from_raw() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(2).await;
    let plan = scenario_plan(
        "ramp-stall",
        2,
        &format!(
            "url = \"{}\"\nrate = 100\nstages = [{{ rate = 300, duration = \"6s\" }}]\nconnections = 2\n",
            testbed.url("/stall?period_ms=2000&pause_ms=500")
        ),
    );
    let finished = support::run_plan(&embedded, &plan).await;
    let m = support::http_metrics(&finished.report, "ramp-stall");
    let corrected = m.latency_ms.expect("corrected");
    let raw = m.latency_raw_ms.expect("raw");
    assert!(
        corrected.p99 >= 300.0,
        "corrected p99 {} shows the 500 ms freezes",
        corrected.p99
    );
    assert!(raw.p99 < 100.0, "raw p99 {} hides them", raw.p99);
    assert_eq!(m.dropped, 0);
    assert_eq!(testbed.requests(), m.requests);
    embedded.stop().await;
    testbed.shutdown().await;
}

/// Regression: an open-model request budget whose rate splits to 0 for some agents or load threads used to spin a
/// thread forever (a rate-0 slot never awaited), so the shard never ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_at_a_rate_too_small_to_split_still_ends() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(2).await;
    let plan = scenario_plan(
        "trickle",
        2,
        &format!(
            "url = \"{}\"\nrate = 1\nrequests = 3\nconnections = 4\n",
            testbed.url("/health")
        ),
    );
    let finished = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        support::run_plan(&embedded, &plan),
    )
    .await
    .expect("the run ends by itself");
    let m = support::http_metrics(&finished.report, "trickle");
    assert_eq!((m.requests, m.errors, m.dropped), (3, 0, 0));
    assert_eq!(
        finished.report.verdict,
        Verdict::Pass,
        "{:?}",
        finished.report.verdict_reasons
    );
    assert_eq!(testbed.requests(), 3);
    embedded.stop().await;
    testbed.shutdown().await;
}
