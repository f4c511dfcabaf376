//! Targets that answer nothing, or answer without end, and loads no engine can send (issue 20, attack round 2):
//! a target that never answers is not a PASS; a body that never ends is given up at the request timeout, also when
//! its one-byte chunks keep the agent busy; an open model far beyond the agent stops sending at its window's end.

mod support;

use loadgrade_common::grade::Verdict;
use loadgrade_common::report::FindingKind;
use loadgrade_testbed::hostile::{HostileTarget, Hostility};
use std::time::{Duration, Instant};

/// Regression: a target that accepts and never answers got 16 timeouts of 16 requests, verdict PASS and exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_never_answers_is_no_pass() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(1).await;
    let plan = format!(
        "name = \"silent\"\npreflight = \"warn\"\n[[scenario]]\nname = \"s\"\nkind = \"http\"\n\
         url = \"{}\"\nconnections = 4\nduration = \"2s\"\ntimeout = \"500ms\"\n",
        testbed.url("/delay?ms=60000")
    );
    let finished = support::run_plan(&embedded, &plan).await;
    let m = support::http_metrics(&finished.report, "s");
    assert!(
        m.errors_by_class.timeout > 0 && m.errors_by_class.timeout == m.requests,
        "{m:?}"
    );
    assert_eq!(finished.report.verdict, Verdict::Invalid);
    assert!(
        finished
            .report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::NoResponse
                && f.message.contains("given up at their timeout")),
        "{:?}",
        finished.report.findings
    );
    embedded.stop().await;
}

/// Regression: a body of endless one-byte chunks kept 32 connections busy 20 s past a 3 s run with a 2 s timeout
/// (latency p95 5.6 s): the exchange spent its task's budget on every poll and its timer, polled after it, never
/// fired. Each request now ends at its timeout and the run on time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_ends_at_the_request_timeout() {
    let target = HostileTarget::start(([127, 0, 0, 1], 0).into(), Hostility::EndlessBody)
        .await
        .expect("hostile target");
    let embedded = support::embedded(1).await;
    let plan = format!(
        "name = \"endless\"\npreflight = \"warn\"\n[[scenario]]\nname = \"e\"\nkind = \"http\"\n\
         url = \"http://{}/\"\nconnections = 16\nduration = \"3s\"\ntimeout = \"1s\"\n",
        target.addr
    );
    let began = Instant::now();
    let finished = support::run_plan(&embedded, &plan).await;
    let took = began.elapsed();
    let m = support::http_metrics(&finished.report, "e");
    let max = m.latency_ms.as_ref().map_or(0.0, |l| l.max);
    eprintln!(
        "{} requests, {:?}, latency max {max} ms, run {took:?}",
        m.requests, m.errors_by_class
    );
    assert!(m.errors_by_class.timeout > 0, "{m:?}");
    assert!(max < 1_600.0, "a request ran {max} ms with a 1 s timeout");
    assert!(took < Duration::from_secs(12), "the run took {took:?}");
    assert!(
        !finished
            .report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::Overran),
        "{:?}",
        finished.report.findings
    );
    embedded.stop().await;
}

/// Regression: `rate = 10000000` for 1 s drained a backlog of a million arrivals for 13 s after the window, and the
/// intervals of that time were refused. Past the window, what waits is sent for one request timeout at most; the
/// rest is counted as discarded and the run ends on time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impossible_rate_stops_sending_at_the_window_end() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(1).await;
    let plan = format!(
        "name = \"fast\"\n[[scenario]]\nname = \"f\"\nkind = \"http\"\nurl = \"{}\"\nrate = 2000000\n\
         connections = 8\nduration = \"1s\"\ntimeout = \"1s\"\n",
        testbed.url("/health")
    );
    let began = Instant::now();
    let finished = support::run_plan(&embedded, &plan).await;
    let took = began.elapsed();
    let m = support::http_metrics(&finished.report, "f");
    eprintln!(
        "{} requests, {} dropped, {} discarded at the stop, run {took:?}",
        m.requests, m.dropped, m.discarded_at_stop
    );
    assert!(took < Duration::from_secs(15), "the run took {took:?}");
    assert!(m.discarded_at_stop > 0, "{m:?}");
    assert!(
        !finished
            .report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::BadInterval || f.kind == FindingKind::Overran),
        "{:?}",
        finished.report.findings
    );
    // What the agent did is what the target saw: nothing was sent after the window and not counted.
    assert_eq!(testbed.requests(), m.requests + m.warmup_requests);
    embedded.stop().await;
}
