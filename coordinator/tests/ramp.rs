//! Capacity ramps end to end: the cliff lands where the testbed's configured capacity predicts, the target's
//! memory is really probed, and a probe that cannot measure makes memory figures "not measured" and memory
//! thresholds fail.

mod support;

use loadgrade_common::grade::Verdict;
use loadgrade_common::plan::ProbeSpec;
use loadgrade_common::report::RampMetrics;
use loadgrade_coordinator::run::probe;
use loadgrade_coordinator::server::registry::Registry;

fn ramp_metrics(report: &loadgrade_common::report::Report) -> RampMetrics {
    support::ramp_metrics(report, &report.scenarios[0].name)
}

/// The testbed's `/work` p95 at `c` concurrent clients: `ms` per turn, and the unluckiest clients wait
/// ceil(c / slots) turns (first come, first served).
fn predicted_latency(ms: f64, slots: f64, c: f64) -> f64 {
    ms * (c / slots).ceil().max(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cliff_is_where_the_testbeds_capacity_puts_it() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(2).await;
    let (ms, slots, factor) = (20.0, 8.0, 2.5);
    let steps = [8u64, 16, 24, 32, 40];
    let predicted = *steps
        .iter()
        .find(|&&c| {
            predicted_latency(ms, slots, c as f64)
                > factor * predicted_latency(ms, slots, steps[0] as f64)
        })
        .expect("the configuration predicts a cliff");
    assert_eq!(predicted, 24);
    let plan = format!(
        r#"
name = "capacity"
min_agents = 2
[budget]
memory = "4GiB"
[[scenario]]
name = "cap"
kind = "ramp"
url = "{}"
start = 8
stop = 40
step = 8
hold = "2s"
cliff = {{ latency_factor = {factor} }}
probe = {{ kind = "process", pid = {} }}
stop_at_cliff = true
thresholds = ["max_concurrency >= 16", "memory_headroom >= 0.5"]
"#,
        testbed.url(&format!("/work?ms={ms}&slots={slots}")),
        std::process::id()
    );
    let finished = support::run_plan(&embedded, &plan).await;
    support::assert_schema_valid(&finished.json);
    let m = ramp_metrics(&finished.report);
    eprintln!("{}", finished.markdown);
    assert_eq!(m.cliff_concurrency, Some(predicted), "{:?}", m.cliff_reason);
    assert!(
        m.cliff_reason.as_deref().is_some_and(|r| r.contains("p95")),
        "{:?}",
        m.cliff_reason
    );
    assert_eq!(m.max_concurrency, Some(16));
    assert_eq!(m.autoscale_trigger, Some(12.0));
    assert_eq!(
        m.steps.len(),
        3,
        "stop_at_cliff ends the ramp at the first step past the cliff"
    );
    assert!(m.steps[2].past_cliff && !m.steps[1].past_cliff);
    // Capacity is 8 slots x 50 per second = 400 req/s from 8 connections on: throughput saturates at once.
    assert_eq!(m.saturation_concurrency, Some(8));
    let peak = m.peak_throughput_rps.expect("throughput");
    assert!(
        (340.0..=410.0).contains(&peak),
        "peak {peak} req/s vs capacity 400"
    );
    // Memory is the test process's real RSS (the testbed runs in it), sampled every step.
    for step in &m.steps {
        assert!(step.probe_samples >= 3, "{step:?}");
        assert!(
            step.target_memory_bytes.is_some_and(|b| b > 1 << 20),
            "{step:?}"
        );
    }
    assert!(m.memory_at_90pct_bytes.is_some() && m.memory_headroom.is_some_and(|h| h > 0.5));
    assert_eq!(
        finished.report.verdict,
        Verdict::Pass,
        "{:?}",
        finished.report.verdict_reasons
    );
    // Every request the target served is in the report: measured, or completed while a step settled.
    let settled: u64 = m.steps.iter().map(|s| s.settle_requests).sum();
    assert!(settled > 0, "each step settles first");
    assert_eq!(testbed.requests(), m.requests + settled);
    embedded.stop().await;
    testbed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_probe_reads_the_testbeds_real_rss() {
    let testbed = support::testbed().await;
    let pid: u32 = http_get(&testbed.url("/_testbed/pid"))
        .await
        .trim()
        .parse()
        .expect("pid");
    let spec = ProbeSpec::Process {
        pid: Some(pid),
        name: None,
    };
    let before = probe::sample(&spec, &Registry::default(), &Default::default())
        .await
        .expect("sample")
        .memory_bytes;
    http_post(&testbed.url("/_testbed/allocate?mb=64")).await;
    let after = probe::sample(&spec, &Registry::default(), &Default::default())
        .await
        .expect("sample")
        .memory_bytes;
    assert!(
        after >= before + (60 << 20),
        "RSS {before} -> {after} after allocating 64 MiB"
    );
    http_post(&testbed.url("/_testbed/free")).await;
    testbed.shutdown().await;
}

#[tokio::test]
async fn the_cgroup_probe_reads_a_real_cgroup_v2_directory() {
    let Some(path) = own_cgroup() else {
        eprintln!(
            "skipped: this process is not in a readable cgroup v2 hierarchy (no /sys/fs/cgroup/<path>/memory.current)"
        );
        return;
    };
    let sample = probe::sample(
        &ProbeSpec::Cgroup { path: path.clone() },
        &Registry::default(),
        &Default::default(),
    )
    .await
    .expect("cgroup sample");
    assert!(sample.memory_bytes > 0, "{path}: {sample:?}");
    let current: u64 = std::fs::read_to_string(format!("{path}/memory.current"))
        .expect("memory.current")
        .trim()
        .parse()
        .expect("number");
    let ratio = sample.memory_bytes as f64 / current as f64;
    assert!(
        (0.5..2.0).contains(&ratio),
        "probe {} vs file {current}",
        sample.memory_bytes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_probe_leaves_memory_not_measured_and_memory_thresholds_fail() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(2).await;
    for probe in [
        format!("{{ kind = \"process\", pid = {} }}", u32::MAX - 7),
        "{ kind = \"prometheus\", url = \"http://127.0.0.1:9\", query = \"process_resident_memory_bytes\" }".to_owned(),
    ] {
        let plan = format!(
            "name = \"blind\"\nmin_agents = 2\n[budget]\nmemory = \"1GiB\"\n[[scenario]]\nname = \"cap\"\nkind = \"ramp\"\nurl = \"{}\"\nstart = 2\nstop = 4\nstep = 2\nhold = \"1s\"\nprobe = {probe}\nthresholds = [\"memory_headroom >= 0.2\", \"memory_at_90pct_bytes < 1000000000\"]\n",
            testbed.url("/work?ms=5&slots=8")
        );
        let finished = support::run_plan(&embedded, &plan).await;
        support::assert_schema_valid(&finished.json);
        let m = ramp_metrics(&finished.report);
        assert!(m.steps.iter().all(|s| s.target_memory_bytes.is_none()), "{probe}");
        assert_eq!(m.memory_headroom, None);
        let reason = m.not_measured.get("memory_at_90pct_bytes").expect("a reason");
        assert!(reason.contains("the probe failed"), "{reason}");
        for t in &finished.report.scenarios[0].thresholds {
            assert!(!t.passed && t.actual.is_none(), "{t:?} must fail, never pass");
        }
        assert_ne!(finished.report.verdict, Verdict::Pass);
        assert!(finished.markdown.contains("not measured"), "{probe}");
    }
    embedded.stop().await;
    testbed.shutdown().await;
}

/// This process's cgroup v2 directory, if it has memory accounting.
fn own_cgroup() -> Option<String> {
    let line = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let relative = line.lines().find_map(|l| l.strip_prefix("0::"))?;
    let path = format!("/sys/fs/cgroup{}", relative.trim_end_matches('/'));
    std::path::Path::new(&path)
        .join("memory.current")
        .exists()
        .then_some(path)
}

async fn http_get(url: &str) -> String {
    request("GET", url).await
}

async fn http_post(url: &str) -> String {
    request("POST", url).await
}

/// A one-shot HTTP/1.1 request with `Connection: close` (test helper; the testbed is on loopback).
async fn request(method: &str, url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http url");
    let (authority, path) = rest.split_once('/').expect("path");
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect");
    let head = format!(
        "{method} /{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// The Prometheus probe against a real Prometheus server (Debian's `prometheus`; .ci/run installs it): an instant
/// query's first value is the sample. Skips with a message where no `prometheus` binary is installed.
#[tokio::test]
async fn the_prometheus_probe_reads_an_instant_query_from_a_real_prometheus() {
    let Some(binary) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("prometheus"))
            .find(|p| p.is_file())
    }) else {
        // Under CI, a missing Prometheus fails the test instead of skipping it.
        support::require_tool("prometheus", "apt-get install prometheus");
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let dir = std::env::temp_dir().join(format!("loadgrade-prometheus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("prometheus.yml"),
        "global:\n  scrape_interval: 15s\n",
    )
    .expect("config");
    let mut server = tokio::process::Command::new(binary)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus starts");
    let spec = ProbeSpec::Prometheus {
        url: format!("http://127.0.0.1:{port}"),
        query: "vector(123456789)".into(),
    };
    let registry = Registry::default();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let sample = loop {
        match probe::sample(&spec, &registry, &Default::default()).await {
            Ok(sample) => break sample,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => panic!("prometheus did not answer: {e}"),
        }
    };
    assert_eq!(sample.memory_bytes, 123_456_789);
    let empty = ProbeSpec::Prometheus {
        url: format!("http://127.0.0.1:{port}"),
        query: "no_such_metric".into(),
    };
    let e = probe::sample(&empty, &registry, &Default::default())
        .await
        .expect_err("no sample")
        .to_string();
    assert!(e.contains("returned no sample"), "{e}");
    let _ = server.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}
