//! The scrape kind against the testbed's /metrics and a real Prometheus (Debian's `prometheus`; .ci/run installs
//! it): series parsed equal what the testbed says it exports; 1 s vs 2 s on Prometheus halves the samples
//! appended and leaves head series equal; a target that is down, garbage or not Prometheus's format is a clear
//! error while the rest of the plan runs; without a Prometheus its figures are not measured and only a threshold
//! on them changes the verdict.

mod support;

use loadgrade_common::grade::Verdict;
use loadgrade_common::report::scrape::ScrapeMetrics;
use loadgrade_common::report::{Report, ScenarioMetrics};
use loadgrade_testbed::{Testbed, TestbedConfig};

fn scrape_metrics(report: &Report, scenario: &str) -> ScrapeMetrics {
    match report
        .scenarios
        .iter()
        .find(|s| s.name == scenario)
        .and_then(|s| s.metrics.clone())
    {
        Some(ScenarioMetrics::Scrape(m)) => m,
        other => panic!(
            "{scenario}: no scrape metrics: {other:?}\n{:?}",
            report.findings
        ),
    }
}

async fn testbed_with(series: u64) -> Testbed {
    Testbed::start(TestbedConfig {
        metrics_series: series,
        ..TestbedConfig::plain("127.0.0.1:0".parse().expect("addr"))
    })
    .await
    .expect("testbed starts")
}

/// What the testbed says its /metrics exposes, read with a plain text search (not with the parser under test).
async fn exported_series(testbed: &Testbed) -> u64 {
    let body = reqwest_free_get(testbed.addr(), "/metrics").await;
    body.lines()
        .find_map(|l| l.strip_prefix("loadgrade_testbed_exposed_series "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the testbed says how many series it exposes")
}

/// A GET over a plain TCP stream, `Connection: close`, the body returned.
async fn reqwest_free_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("send");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

fn scenario(name: &str, target: &str, extra: &str) -> String {
    format!("[[scenario]]\nname = \"{name}\"\nkind = \"scrape\"\ntarget = \"{target}\"\n{extra}\n")
}

/// The `prometheus` binary on PATH; without one the test skips, except under CI where it fails.
fn prometheus_on_path() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("prometheus"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("no prometheus binary on PATH, and under CI the Prometheus tests must run");
        }
        eprintln!("skipped: no prometheus binary on PATH (apt-get install prometheus)");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_parsed_from_the_testbed_equal_what_it_exports_at_two_sizes() {
    let small = testbed_with(1_000).await;
    let large = testbed_with(50_000).await;
    let embedded = support::embedded(1).await;
    let extra = "intervals = [\"500ms\", \"1s\"]\nduration = \"3s\"";
    let plan = format!(
        "name = \"scrape\"\n{}{}",
        scenario("small", &format!("http://{}/metrics", small.addr()), extra),
        scenario("large", &format!("http://{}/metrics", large.addr()), extra),
    );
    let finished = support::run_plan(&embedded, &plan).await;
    let report = &finished.report;
    support::assert_schema_valid(&serde_json::to_string(report).expect("json"));
    for (name, testbed) in [("small", &small), ("large", &large)] {
        let exported = exported_series(testbed).await;
        let m = scrape_metrics(report, name);
        assert!(!m.scaled && m.prometheus.is_none(), "{m:?}");
        for i in &m.intervals {
            assert_eq!(i.series, Some(exported), "{name} at {} s", i.interval_s);
            assert_eq!(i.target_series, Some(exported));
            assert_eq!(i.errors, 0, "{name}");
            // One scrape at once and one every interval within the 3 s window.
            let expected = (3.0 / i.interval_s).round() as u64;
            assert_eq!(i.scrapes, expected, "{name} at {} s", i.interval_s);
            let samples = i.samples_per_s.expect("samples/s");
            let per_scrape = exported as f64 * expected as f64 / 3.0;
            // The window is the agent's own measure of `duration` (a few ms over it).
            assert!(
                (samples - per_scrape).abs() < 0.01 * per_scrape,
                "{samples} vs {per_scrape}"
            );
            assert!(i.scrape_ms.is_some() && i.scrape_bytes.unwrap_or(0) > exported * 10);
            assert!(i.prometheus_rss_bytes.is_none());
            assert!(i.not_measured["prometheus"].contains("names no prometheus"));
        }
        let saved = m.savings["samples_per_s"].saved;
        assert!((saved - 0.5).abs() < 0.01, "{name}: {saved}");
        assert!(m.projections.iter().all(|p| p.formula.contains('×')));
    }
    assert!(exported_series(&small).await >= 1_000);
    assert!(exported_series(&large).await >= 50_000);
    assert_eq!(report.verdict, Verdict::Pass, "{:?}", report.findings);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_real_prometheus_two_seconds_halves_samples_appended_and_keeps_head_series() {
    if prometheus_on_path().is_none() {
        return;
    }
    let testbed = testbed_with(2_000).await;
    let exported = exported_series(&testbed).await;
    let embedded = support::embedded(1).await;
    let plan = format!(
        "name = \"scrape\"\n{}",
        scenario(
            "monitoring",
            &format!("http://{}/metrics", testbed.addr()),
            "intervals = [\"1s\", \"2s\"]\nduration = \"12s\"\nsettle = \"2s\"\nprometheus = \"prometheus\"\n\
             thresholds = [\"intervals.0.prometheus_rss_bytes > 0\", \"intervals.1.prometheus_rss_bytes > 0\"]",
        )
    );
    let finished = support::run_plan(&embedded, &plan).await;
    let report = &finished.report;
    support::assert_schema_valid(&serde_json::to_string(report).expect("json"));
    let m = scrape_metrics(report, "monitoring");
    assert!(
        m.prometheus
            .as_deref()
            .is_some_and(|v| v.starts_with("prometheus, version")),
        "{m:?}"
    );
    let (one, two) = (&m.intervals[0], &m.intervals[1]);
    let rate = |i: &loadgrade_common::report::scrape::IntervalMetrics| {
        i.prometheus_samples_per_s
            .unwrap_or_else(|| panic!("not measured: {:?} {:?}", i.not_measured, report.findings))
    };
    let ratio = rate(one) / rate(two);
    assert!(
        (ratio - 2.0).abs() <= 0.4,
        "samples appended 1 s / 2 s = {ratio}"
    );
    let heads = (
        one.prometheus_head_series.expect("head") as f64,
        two.prometheus_head_series.expect("head") as f64,
    );
    assert!(
        (heads.0 - heads.1).abs() <= 0.05 * heads.0,
        "head series {heads:?}"
    );
    // Prometheus adds its own series per target (up, scrape_duration_seconds, ...).
    assert!(heads.0 >= exported as f64, "{heads:?} vs {exported}");
    for i in [one, two] {
        assert!(i.prometheus_rss_bytes.unwrap_or(0) > 0, "{i:?}");
        assert!(i.prometheus_heap_inuse_bytes.unwrap_or(0) > 0);
        assert_eq!(i.series, Some(exported));
        assert_eq!(i.errors, 0);
        // Every scrape Prometheus made in the window went through the relay and was timed.
        let expected = i.window_s / i.interval_s;
        assert!(
            (i.scrapes as f64 - expected).abs() <= 1.0,
            "{} scrapes in {} s at {} s",
            i.scrapes,
            i.window_s,
            i.interval_s
        );
    }
    let saved = m.savings["prometheus_samples_per_s"].saved;
    assert!((saved - 0.5).abs() < 0.1, "{saved}");
    assert_eq!(report.verdict, Verdict::Pass, "{:?}", report.findings);
    // Each Prometheus's data folder is gone, and no Prometheus is left running.
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("loadgrade-prometheus-{}-", std::process::id()))
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_down_garbage_or_not_an_exposition_is_a_clear_error_and_the_rest_runs() {
    let testbed = support::testbed().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr");
    let extra = "intervals = [\"200ms\"]\nduration = \"1s\"";
    let plan = format!(
        "name = \"scrape\"\npreflight = \"warn\"\n{}{}{}[[scenario]]\nname = \"after\"\nkind = \"http\"\nurl = \"http://{}/health\"\n\
         requests = 20\nconnections = 2\n",
        scenario("down", &format!("http://{closed}/metrics"), extra),
        scenario(
            "garbage",
            &format!("http://{}/health", testbed.addr()),
            extra
        ),
        scenario(
            "json",
            &format!("http://{}/api/items", testbed.addr()),
            extra
        ),
        testbed.addr(),
    );
    let embedded = support::embedded(1).await;
    let finished = support::run_plan(&embedded, &plan).await;
    let report = &finished.report;
    let down = support::finding_about(report, "down", None);
    assert!(
        down.contains(&format!(
            "cannot scrape http://{closed}/metrics: cannot connect"
        )),
        "{down}"
    );
    let garbage = support::finding_about(report, "garbage", None);
    assert!(
        garbage.contains("not a Prometheus exposition: line 1"),
        "{garbage}"
    );
    let json = support::finding_about(report, "json", None);
    assert!(
        json.contains("content type is \"application/json\""),
        "{json}"
    );
    assert_eq!(
        support::http_metrics(report, "after").requests,
        20,
        "the rest of the plan ran"
    );
    assert_eq!(report.verdict, Verdict::Invalid);
}

/// `loadgrade run` as a user types it: a Prometheus that is not there is "not measured"; the exit code is 4
/// only when a threshold names one of its figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_prometheus_its_figures_are_not_measured_and_only_a_threshold_on_them_fails() {
    let testbed = testbed_with(100).await;
    let target = format!("http://{}/metrics", testbed.addr());
    for (index, (thresholds, code)) in [
        ("[\"intervals.0.errors == 0\"]", 0),
        (
            "[\"intervals.0.errors == 0\", \"intervals.0.prometheus_rss_bytes < 1e9\"]",
            4,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = std::env::temp_dir().join(format!(
            "loadgrade-scrape-test-{index}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(
            dir.join("plan.toml"),
            format!(
                "name = \"scrape\"\n{}",
                scenario(
                    "monitoring",
                    &target,
                    &format!(
                        "intervals = [\"200ms\"]\nduration = \"1s\"\nprometheus = \"/nonexistent/prometheus\"\n\
                         thresholds = {thresholds}"
                    ),
                )
            ),
        )
        .expect("plan");
        let output = support::run_plan_file(&dir).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(code), "{thresholds}: {stdout}");
        let report: Report = serde_json::from_str(
            &std::fs::read_to_string(dir.join("report/report.json")).expect("report"),
        )
        .expect("report.json");
        let m = scrape_metrics(&report, "monitoring");
        let why = &m.intervals[0].not_measured["prometheus"];
        // In-process agents run only the trusted prometheus on PATH (or none), never a path a plan names.
        assert!(
            why.contains("not /nonexistent/prometheus") || why.contains("runs no Prometheus"),
            "{why}"
        );
        assert!(m.intervals[0].series.is_some_and(|s| s > 100));
        let md = std::fs::read_to_string(dir.join("report/report.md")).expect("md");
        assert!(md.contains("prometheus: not measured"), "{md}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `replicas`: Prometheus is served that many copies of the target's series through the relay (its head holds
/// them all), and the report says the figures are scaled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_scale_what_prometheus_ingests_and_are_labelled() {
    if prometheus_on_path().is_none() {
        return;
    }
    let testbed = testbed_with(500).await;
    let exported = exported_series(&testbed).await;
    let embedded = support::embedded(1).await;
    let plan = format!(
        "name = \"scrape\"\n{}",
        scenario(
            "scaled",
            &format!("http://{}/metrics", testbed.addr()),
            "intervals = [\"1s\"]\nduration = \"3s\"\nsettle = \"1s\"\nprometheus = \"prometheus\"\nreplicas = 3",
        )
    );
    let finished = support::run_plan(&embedded, &plan).await;
    let m = scrape_metrics(&finished.report, "scaled");
    assert!(m.scaled && m.replicas == 3, "{m:?}");
    let i = &m.intervals[0];
    assert_eq!(i.target_series, Some(exported));
    assert_eq!(i.series, Some(3 * exported));
    let head = i.prometheus_head_series.expect("head series");
    assert!(
        head >= 3 * exported && head < 3 * exported + 20,
        "head {head} for 3 x {exported}"
    );
}
