//! What the reports show people: the load over time (per-second points that add up to the scenario's totals).

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_second_points_add_up_to_the_merged_totals() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(2).await;
    let plan = format!(
        "name = \"series\"\n\
         [[scenario]]\nname = \"open\"\nkind = \"http\"\nurl = \"{0}\"\nmodel = \"open\"\nrate = 200\n\
         connections = 8\nduration = \"3s\"\nwarmup = \"1s\"\n\
         [[scenario]]\nname = \"closed\"\nkind = \"http\"\nurl = \"{0}\"\nconnections = 4\nduration = \"2s\"\n\
         [[scenario]]\nname = \"steps\"\nkind = \"ramp\"\nurl = \"{0}\"\nstart = 2\nstop = 4\nstep = 2\nhold = \"1s\"\n",
        testbed.url("/delay?ms=1")
    );
    let finished = support::run_plan(&embedded, &plan).await;
    let report = &finished.report;
    support::assert_schema_valid(&serde_json::to_string(report).expect("json"));
    for name in ["open", "closed"] {
        let m = support::http_metrics(report, name);
        let series = &m.series;
        assert!(series.len() >= 2, "{name}: {series:?}");
        let sum = |f: &dyn Fn(&loadgrade_common::report::series::SeriesPoint) -> u64| {
            series.iter().map(f).sum::<u64>()
        };
        assert_eq!(sum(&|p| p.requests), m.requests, "{name}: requests");
        assert_eq!(sum(&|p| p.ok), m.requests - m.errors, "{name}: successes");
        assert_eq!(sum(&|p| p.errors.total()), m.errors, "{name}: errors");
        assert_eq!(sum(&|p| p.dropped), m.dropped, "{name}: dropped");
        assert!(
            series.windows(2).all(|w| w[0].t_s < w[1].t_s),
            "{name}: points in order"
        );
        for p in series.iter().filter(|p| p.requests > 0) {
            let (p50, p99) = (p.p50_ms.expect("p50"), p.p99_ms.expect("p99"));
            assert!(p50 <= p99 && p50 >= 1.0, "{name}: {p:?}");
        }
    }
    let ramp = support::ramp_metrics(report, "steps");
    assert_eq!(ramp.steps.len(), 2);
    for step in &ramp.steps {
        let summed: u64 = step.series.iter().map(|p| p.requests).sum();
        assert_eq!(summed, step.requests, "step {}", step.concurrency);
    }
    let open = support::http_metrics(report, "open");
    // The warm-up second is not a point; arrivals over the points are what was planned for the window.
    let arrivals: u64 = open.series.iter().map(|p| p.arrivals).sum();
    assert!((590..=610).contains(&arrivals), "{arrivals}");
}

/// Chromium, where installed (.ci/run installs Debian's `chromium`); without it the test skips, except under CI.
fn chromium() -> Option<std::path::PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("no chromium on PATH, and under CI the report page test must run");
        }
        eprintln!("skipped: no chromium on PATH (apt-get install chromium)");
    }
    found
}

/// What a page looked like in headless Chromium at one width: read by a probe script added to a copy of the page
/// (the report itself has no script) and written into the DOM that `--dump-dom` prints.
#[derive(Debug, serde::Deserialize)]
struct Seen {
    width: u64,
    /// The page's own viewport (the frame's width).
    viewport: u64,
    errors: Vec<String>,
    /// Resources the page loaded (images, styles, scripts, fetches): none may be loaded.
    resources: Vec<String>,
    /// Per scenario heading ("name (kind)"): the charts in its section, each with the points it draws.
    sections: Vec<(String, Vec<u64>)>,
}

const PROBE: &str = r#"<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message)));
window.addEventListener('load', () => {
  const sections = [];
  let current = null;
  for (const el of document.body.querySelectorAll('h2, svg')) {
    if (el.tagName === 'H2') { current = [el.textContent, []]; sections.push(current); continue; }
    if (!current) continue;
    const marks = el.querySelectorAll('polyline[points]:not([points=""]), rect[height]').length;
    current[1].push(marks);
  }
  const seen = {
    width: document.documentElement.scrollWidth,
    viewport: window.innerWidth,
    errors: window.__errors,
    resources: performance.getEntriesByType('resource').map(r => r.name),
    sections,
  };
  // Chromium's headless window is at least 500 px wide: the page is looked at in a frame of the width asked, and
  // writes what it saw into the frame's parent, the document --dump-dom prints.
  const host = window.parent.document;
  const out = host.createElement('pre');
  out.id = 'loadgrade-probe';
  out.textContent = JSON.stringify(seen);
  host.body.appendChild(out);
});
</script>"#;

fn look(chromium: &std::path::Path, page: &std::path::Path, width: u32) -> Seen {
    let html = std::fs::read_to_string(page).expect("report.html");
    let probed = page.with_file_name(format!("probed-{width}.html"));
    std::fs::write(
        &probed,
        html.replacen("<head>", &format!("<head>{PROBE}"), 1),
    )
    .expect("copy");
    let frame = page.with_file_name(format!("frame-{width}.html"));
    std::fs::write(
        &frame,
        format!(
            "<!doctype html><html><body style=\"margin:0\"><iframe src=\"{}\" style=\"width:{width}px;height:900px;\
             border:0\"></iframe></body></html>",
            probed.file_name().and_then(|n| n.to_str()).unwrap_or_default()
        ),
    )
    .expect("frame");
    let output = std::process::Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--virtual-time-budget=5000",
            "--allow-file-access-from-files",
            &format!("--window-size={},1000", width.max(600) + 40),
            "--dump-dom",
        ])
        .arg(format!("file://{}", frame.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&output.stdout);
    let json = dom
        .split("<pre id=\"loadgrade-probe\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| {
            panic!(
                "the probe did not run at {width} px: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let json = json
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// The demo's report.html at 1280 px and at 390 px: no script error, nothing loaded from anywhere, no sideways
/// scrolling on a phone, and in every scenario's section at least one chart that draws something.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_report_page_works_on_a_desktop_and_a_phone() {
    let Some(chromium) = chromium() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("loadgrade-page-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgrade"))
        .args(["demo", "--out", "report", "--database", "sqlite://runs.db"])
        .current_dir(&dir)
        .output()
        .await
        .expect("demo runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    monitoring_artifacts_are_valid(&dir.join("report"));
    let page = dir.join("report/report.html");
    for width in [1280, 390] {
        let seen = look(&chromium, &page, width);
        assert_eq!(
            seen.viewport,
            u64::from(width),
            "the page was not looked at {width} px wide"
        );
        assert!(seen.errors.is_empty(), "{width} px: {:?}", seen.errors);
        assert!(
            seen.resources.is_empty(),
            "{width} px loaded {:?}",
            seen.resources
        );
        assert!(
            seen.width <= u64::from(width),
            "{width} px: the page is {} px wide",
            seen.width
        );
        let scenarios: Vec<&(String, Vec<u64>)> = seen
            .sections
            .iter()
            .filter(|(h, _)| h.starts_with("Scenario"))
            .collect();
        for kind in ["(http)", "(ramp)", "(cache)", "(pagination)", "(scrape)"] {
            assert!(
                scenarios.iter().any(|(h, _)| h.ends_with(kind)),
                "no {kind} scenario in the demo: {scenarios:?}"
            );
        }
        for (heading, charts) in scenarios {
            assert!(
                charts.iter().any(|marks| *marks > 0),
                "{width} px: {heading} has no chart with data: {charts:?}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The value of attribute `name` in the first tag of `xml`.
fn attribute(tag: &str, name: &str) -> u64 {
    tag.split(&format!(" {name}=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
}

/// junit.xml on a FAIL and an INVALID run: every suite's and the root's tests/failures/errors count the cases under
/// them, the verdict's case is named `verdict` whatever the outcome, and the suites carry a timestamp and the root
/// the run's time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junit_counts_match_the_cases_on_fail_and_invalid_runs() {
    let testbed = support::testbed().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr");
    for (name, url, expected) in [
        ("fail", testbed.url("/delay?ms=5"), "FAIL"),
        ("invalid", format!("http://{closed}/"), "INVALID"),
    ] {
        let dir =
            std::env::temp_dir().join(format!("loadgrade-junit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(
            dir.join("plan.toml"),
            format!(
                "name = \"junit\"\n[[scenario]]\nname = \"a\"\nkind = \"http\"\nurl = \"{url}\"\nrequests = 20\n\
                 connections = 2\nthresholds = [\"latency_ms.p50 < 1\", \"errors == 0\"]\n"
            ),
        )
        .expect("plan");
        let output = support::run_plan_file(&dir).await;
        assert!(output.status.code().is_some_and(|c| c != 0), "{name}");
        let xml = std::fs::read_to_string(dir.join("report/junit.xml")).expect("junit.xml");
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "),
            "{xml}"
        );
        assert_eq!(
            xml.matches("<testsuite ").count(),
            xml.matches("</testsuite>").count()
        );
        let root = xml
            .split("<testsuites ")
            .nth(1)
            .and_then(|r| r.split('>').next())
            .expect("root");
        let mut totals = (0, 0, 0);
        for suite in xml.split("<testsuite ").skip(1) {
            let tag = suite.split('>').next().expect("tag");
            let body = suite.split("</testsuite>").next().expect("body");
            let cases = (
                body.matches("<testcase ").count() as u64,
                body.matches("<failure ").count() as u64,
                body.matches("<error ").count() as u64,
            );
            assert_eq!(
                (
                    attribute(tag, "tests"),
                    attribute(tag, "failures"),
                    attribute(tag, "errors")
                ),
                cases,
                "{name}: {tag}"
            );
            assert!(tag.contains(" timestamp=\"20"), "{tag}");
            totals = (totals.0 + cases.0, totals.1 + cases.1, totals.2 + cases.2);
        }
        assert_eq!(
            (
                attribute(root, "tests"),
                attribute(root, "failures"),
                attribute(root, "errors")
            ),
            totals,
            "{name}: {root}"
        );
        assert!(root.contains(" time=\""), "{root}");
        assert!(
            xml.contains("<testcase classname=\"loadgrade\" name=\"verdict\""),
            "{xml}"
        );
        assert!(xml.contains(&format!("verdict {expected}")), "{xml}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// alerts.yml passes `promtool check rules` (Debian's prometheus package; under CI it must be there) and names
/// the measurements its thresholds came from; dashboard.json has what Grafana's import needs.
fn monitoring_artifacts_are_valid(dir: &std::path::Path) {
    let rules = std::fs::read_to_string(dir.join("alerts.yml")).expect("alerts.yml");
    assert!(
        rules.contains("# from scenario \"capacity\": autoscale_trigger = "),
        "{rules}"
    );
    assert!(rules.contains("latency_ms.p95 = "), "{rules}");
    match std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(dir.join("alerts.yml"))
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("no promtool on PATH, and under CI the rules must be checked")
        }
        Err(_) => eprintln!("skipped: promtool check rules (apt-get install prometheus)"),
    }
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("dashboard.json")).expect("dashboard.json"),
    )
    .expect("dashboard.json parses");
    for field in [
        "title",
        "uid",
        "panels",
        "schemaVersion",
        "__inputs",
        "time",
    ] {
        assert!(
            dashboard.get(field).is_some(),
            "dashboard.json has no {field}"
        );
    }
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    for p in panels {
        for field in ["id", "type", "title", "gridPos", "targets", "datasource"] {
            assert!(p.get(field).is_some(), "a panel has no {field}: {p}");
        }
        assert!(
            p["targets"][0]["expr"]
                .as_str()
                .is_some_and(|e| !e.is_empty())
        );
    }
}
