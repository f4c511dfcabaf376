//! The open model against a target that freezes: latency from the intended send time shows the freeze
//! (coordinated omission corrected), latency from the actual send time hides it, and every request is counted.

mod support;

use loadgrade_common::grade::Verdict;
use loadgrade_common::histogram::decode_base64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrected_latency_shows_a_stall_that_raw_latency_hides() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(2).await;
    // 200 req/s over 2 connections; the target holds every response for 500 ms every 2 s.
    // Per freeze only the 2 requests in flight wait in the raw figure (about 0.5 % of requests), while every
    // arrival during the freeze waits in the corrected one (about 25 %).
    let plan = format!(
        r#"
name = "stall"
min_agents = 2
[[scenario]]
name = "stall"
kind = "http"
url = "{}"
model = "open"
rate = 200
connections = 2
duration = "6s"
"#,
        testbed.url("/stall?period_ms=2000&pause_ms=500")
    );
    let finished = support::run_plan(&embedded, &plan).await;
    support::assert_schema_valid(&finished.json);
    let m = support::http_metrics(&finished.report, "stall");
    let corrected = m.latency_ms.expect("corrected latency measured");
    let raw = m.latency_raw_ms.expect("raw latency measured");
    eprintln!("corrected {corrected:?}\nraw {raw:?}");
    assert!(
        corrected.p99 >= 300.0,
        "corrected p99 {} ms must show the 500 ms freeze",
        corrected.p99
    );
    assert!(
        raw.p99 < 100.0,
        "raw p99 {} ms must hide the freeze",
        raw.p99
    );
    assert!(
        corrected.p90 > raw.p90 * 4.0,
        "corrected p90 {} vs raw p90 {}",
        corrected.p90,
        raw.p90
    );
    assert!(
        raw.max >= 300.0,
        "the requests in flight during a freeze did wait: raw max {}",
        raw.max
    );

    // Nothing lost: every arrival was sent and answered, and the testbed saw each one.
    assert_eq!(m.dropped, 0);
    assert_eq!(m.errors, 0);
    assert_eq!(m.requests, 1200, "6 s at 200 req/s");
    assert_eq!(testbed.requests(), m.requests);
    assert_eq!(decode_base64(&m.hdr).expect("hdr").len(), m.requests);
    assert_eq!(
        decode_base64(m.hdr_raw.as_deref().expect("raw hdr"))
            .expect("hdr")
            .len(),
        m.requests
    );
    assert_eq!(finished.report.verdict, Verdict::Pass);
    embedded.stop().await;
    testbed.shutdown().await;
}

/// Regression (issue 8, item 12): examples/demo.toml said the raw p99 "hides most of" its stall while its report
/// showed raw p99 295 ms against corrected 297 ms. The demo's stall-open scenario, as shipped, must show what it
/// says: the corrected p99 carries the 300 ms freeze, the raw p99 misses it, the raw max shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_stall_shows_the_contrast_its_comment_states() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(1).await;
    let plan = loadgrade_coordinator::demo::plan_for(testbed.addr(), std::process::id());
    let plan = loadgrade_coordinator::demo::only_scenario(&plan, "stall-open")
        .expect("the demo has stall-open");
    let finished = support::run_plan(&embedded, &plan).await;
    let m = support::http_metrics(&finished.report, "stall-open");
    let (corrected, raw) = (
        m.latency_ms.expect("corrected"),
        m.latency_raw_ms.expect("raw"),
    );
    assert!(corrected.p99 > 200.0, "corrected p99 {} ms", corrected.p99);
    assert!(
        raw.p99 < 50.0,
        "raw p99 {} ms should miss the freeze",
        raw.p99
    );
    assert!(raw.max > 100.0, "raw max {} ms shows it", raw.max);
    embedded.stop().await;
    testbed.shutdown().await;
}
