//! Regression verdict between two stored runs: each headline figure of every scenario present in both, head against
//! base, with a relative tolerance. Runs whose own verdict was DEGRADED or INVALID are not compared as trusted.

use loadgrade_common::grade::Verdict;
use loadgrade_common::kind::ScenarioKind;
use loadgrade_common::report::{Report, ScenarioMetrics};

/// Whether a larger figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
}

/// Headline figures compared, per kind.
fn figures(kind: ScenarioKind) -> &'static [(&'static str, Better)] {
    match kind {
        ScenarioKind::Http => &[
            ("latency_ms.p50", Better::Lower),
            ("latency_ms.p95", Better::Lower),
            ("latency_ms.p99", Better::Lower),
            // Goodput: failed requests (a dead port answers fast) are not capacity.
            ("success_rps", Better::Higher),
            ("success_rate", Better::Higher),
        ],
        ScenarioKind::Ramp => &[
            ("max_concurrency", Better::Higher),
            ("peak_throughput_rps", Better::Higher),
            ("memory_at_90pct_bytes", Better::Lower),
        ],
        ScenarioKind::Cache => &[
            ("hit_rate", Better::Higher),
            ("hit_latency_ms.p95", Better::Lower),
            ("miss_latency_ms.p95", Better::Lower),
            ("success_rps", Better::Higher),
        ],
        ScenarioKind::Pagination => &[
            ("offset_at_deepest_ms.p50", Better::Lower),
            ("cursor_at_deepest_ms.p50", Better::Lower),
            ("speedup_at_deepest", Better::Higher),
        ],
        // The first interval is the baseline the plan measures against.
        ScenarioKind::Scrape => &[
            ("intervals.0.scrape_ms.p95", Better::Lower),
            ("intervals.0.series", Better::Lower),
            ("intervals.0.prometheus_rss_bytes", Better::Lower),
            ("intervals.0.prometheus_cpu_percent", Better::Lower),
        ],
    }
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub scenario: String,
    pub metric: String,
    pub base: Option<f64>,
    pub head: Option<f64>,
    /// Relative change, head against base (positive: larger).
    pub change: Option<f64>,
    pub regressed: bool,
}

/// The comparison and its verdict: FAIL when a figure regressed beyond `tolerance`, INVALID when either run was
/// not trustworthy, PASS otherwise.
pub fn compare(
    base: &Report,
    head: &Report,
    tolerance: f64,
) -> (Verdict, Vec<Comparison>, Vec<String>) {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let untrusted = |run: &Report| matches!(run.verdict, Verdict::Invalid | Verdict::Degraded);
    for run in [base, head].into_iter().filter(|r| untrusted(r)) {
        notes.push(format!(
            "run {} was {}: its figures are not trusted",
            run.run_id, run.verdict
        ));
    }
    for hs in &head.scenarios {
        let Some(bs) = base
            .scenarios
            .iter()
            .find(|s| s.name == hs.name && s.kind == hs.kind)
        else {
            notes.push(format!("scenario {:?} is only in the head run", hs.name));
            continue;
        };
        let figure =
            |m: &Option<ScenarioMetrics>, path: &str| m.as_ref().and_then(|m| m.figure(path));
        for &(metric, better) in figures(hs.kind) {
            let (b, h) = (figure(&bs.metrics, metric), figure(&hs.metrics, metric));
            let change = match (b, h) {
                (Some(b), Some(h)) if b != 0.0 => Some((h - b) / b.abs()),
                (Some(b), Some(h)) if b == h => Some(0.0),
                _ => None,
            };
            // A figure the base measured and the head did not is a regression: it can no longer be shown good.
            let regressed = match (change, better) {
                (Some(c), Better::Lower) => c > tolerance,
                (Some(c), Better::Higher) => c < -tolerance,
                (None, _) => b.is_some() && h.is_none(),
            };
            if change.is_none() {
                notes.push(format!(
                    "{}: {metric} is not comparable (not measured in one of the runs)",
                    hs.name
                ));
            }
            rows.push(Comparison {
                scenario: hs.name.clone(),
                metric: metric.to_owned(),
                base: b,
                head: h,
                change,
                regressed,
            });
        }
    }
    let mut lost_scenario = false;
    for bs in &base.scenarios {
        if !head
            .scenarios
            .iter()
            .any(|s| s.name == bs.name && s.kind == bs.kind)
        {
            notes.push(format!(
                "scenario {:?} is only in the base run: counted as a regression",
                bs.name
            ));
            lost_scenario = true;
        }
    }
    let verdict = if untrusted(base) || untrusted(head) {
        Verdict::Invalid
    } else if lost_scenario || rows.iter().any(|r| r.regressed) {
        Verdict::Fail
    } else {
        Verdict::Pass
    };
    (verdict, rows, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgrade_common::grade::Grade;
    use loadgrade_common::report::{HttpMetrics, LatencyStats, ScenarioReport};

    fn http(p95: Option<f64>, rps: f64) -> ScenarioMetrics {
        ScenarioMetrics::Http(HttpMetrics {
            model: loadgrade_common::plan::LoadModel::Closed,
            requests: 10,
            errors: 0,
            errors_by_class: Default::default(),
            dropped: 0,
            success_rate: Some(1.0),
            throughput_rps: Some(rps),
            success_rps: Some(rps),
            completed_after_window: 0,
            resent: 0,
            discarded_at_stop: 0,
            warmup_requests: 0,
            duration_s: 1.0,
            bytes_received: 0,
            latency_ms: p95.map(|p95| LatencyStats {
                min: 1.0,
                mean: 1.0,
                p50: 1.0,
                p90: 1.0,
                p95,
                p99: 9.0,
                p999: 9.0,
                max: 9.0,
            }),
            latency_raw_ms: None,
            send_late_ms: None,
            hdr: String::new(),
            hdr_raw: None,
            series: Vec::new(),
            not_measured: Default::default(),
        })
    }

    fn run(id: &str, p95: f64, rps: f64, verdict: Verdict) -> Report {
        Report {
            tool_version: String::new(),
            schema_version: 1,
            run_id: id.into(),
            plan_name: "p".into(),
            started_at: String::new(),
            finished_at: String::new(),
            verdict,
            grade: Grade::A,
            grade_reason: String::new(),
            verdict_reasons: Vec::new(),
            findings: Vec::new(),
            agents: Vec::new(),
            scenarios: vec![ScenarioReport {
                name: "api".into(),
                kind: ScenarioKind::Http,
                passed: true,
                thresholds: Vec::new(),
                metrics: Some(http(Some(p95), rps)),
                setup: Default::default(),
            }],
        }
    }

    #[test]
    fn a_slower_head_beyond_tolerance_fails() {
        let (v, rows, _) = compare(
            &run("a", 10.0, 100.0, Verdict::Pass),
            &run("b", 11.5, 100.0, Verdict::Pass),
            0.1,
        );
        assert_eq!(v, Verdict::Fail);
        assert!(
            rows.iter()
                .any(|r| r.metric == "latency_ms.p95" && r.regressed)
        );
        let (v, _, _) = compare(
            &run("a", 10.0, 100.0, Verdict::Pass),
            &run("b", 10.5, 95.0, Verdict::Pass),
            0.1,
        );
        assert_eq!(v, Verdict::Pass, "within tolerance");
        let (v, _, _) = compare(
            &run("a", 10.0, 100.0, Verdict::Pass),
            &run("b", 10.0, 80.0, Verdict::Pass),
            0.1,
        );
        assert_eq!(v, Verdict::Fail, "throughput dropped 20 %");
    }

    #[test]
    fn a_figure_or_scenario_lost_in_head_is_a_regression() {
        let mut head = run("b", 10.0, 100.0, Verdict::Pass);
        head.scenarios[0].metrics = Some(http(None, 100.0));
        let (v, rows, _) = compare(&run("a", 10.0, 100.0, Verdict::Pass), &head, 0.1);
        assert_eq!(v, Verdict::Fail);
        assert!(
            rows.iter()
                .any(|r| r.metric == "latency_ms.p95" && r.regressed)
        );
        let mut head = run("b", 10.0, 100.0, Verdict::Pass);
        head.scenarios[0].name = "renamed".into();
        let (v, _, notes) = compare(&run("a", 10.0, 100.0, Verdict::Pass), &head, 0.1);
        assert_eq!(v, Verdict::Fail, "{notes:?}");
    }

    #[test]
    fn an_untrusted_run_is_not_compared_as_trusted() {
        let (v, _, notes) = compare(
            &run("a", 10.0, 100.0, Verdict::Invalid),
            &run("b", 10.0, 100.0, Verdict::Pass),
            0.1,
        );
        assert_eq!(v, Verdict::Invalid);
        assert!(notes[0].contains("not trusted"));
    }
}
