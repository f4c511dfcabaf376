//! Thresholds, grade and verdict: from merged figures and what went wrong during the run to the report's head.
//! The rules are documented in `loadgrade_common::grade` and the README.

use loadgrade_common::grade::{Grade, Verdict};
use loadgrade_common::plan::{Plan, Scenario};
use loadgrade_common::report::{
    Finding, FindingKind, ScenarioMetrics, ScenarioReport, Severity, ThresholdResult,
};

/// Evaluates a scenario's thresholds on its metrics (`None`: the scenario did not run). A thresholded figure that
/// is missing fails its threshold; when it is missing because the measurement failed (not because of what was
/// measured, such as no cliff up to `stop`) that is also a finding, and the result is not trusted.
pub fn judge_scenario(
    scenario: &Scenario,
    metrics: Option<ScenarioMetrics>,
    findings: &mut Vec<Finding>,
) -> ScenarioReport {
    let thresholds: Vec<ThresholdResult> = scenario
        .thresholds
        .iter()
        .map(|t| {
            let actual = metrics.as_ref().and_then(|m| m.figure(&t.metric));
            let unmeasured = metrics.as_ref().is_some_and(|m| !m.absent_by_result(&t.metric));
            if actual.is_none() && unmeasured {
                findings.push(Finding::new(
                    FindingKind::NotMeasured,
                    format!(
                        "scenario {:?}: threshold {:?} has no measured figure (not measured in this run)",
                        scenario.name, t.expr
                    ),
                ));
            }
            ThresholdResult {
                expr: t.expr.clone(),
                actual,
                passed: t.holds(actual),
                // Missing because the measurement failed (or never ran): neither passed nor failed by the target.
                not_measured: actual.is_none() && (metrics.is_none() || unmeasured),
            }
        })
        .collect();
    ScenarioReport {
        name: scenario.name.clone(),
        kind: scenario.kind(),
        passed: thresholds.iter().all(|t| t.passed) && metrics.is_some(),
        thresholds,
        metrics,
        setup: super::setup::setup(scenario),
    }
}

/// The head of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub grade: Grade,
    pub grade_reason: String,
    pub verdict: Verdict,
    pub verdict_reasons: Vec<String>,
}

/// Grade, its reason and the verdict with its reasons: INVALID when a finding makes the result untrustworthy,
/// DEGRADED when one makes it partly so, FAIL when the grade is below the plan's bar, PASS otherwise.
pub fn grade_run(plan: &Plan, scenarios: &[ScenarioReport], findings: &[Finding]) -> Judged {
    let total: usize = scenarios.iter().map(|s| s.thresholds.len()).sum();
    // A threshold whose figure was not measured cannot pass: it counts against the grade like a failed one, and the
    // reason says which it was.
    let not_passed: usize = scenarios
        .iter()
        .flat_map(|s| &s.thresholds)
        .filter(|t| !t.passed)
        .count();
    let grade = Grade::from_failures(not_passed, total);
    let grade_reason = match what_happened(findings) {
        Some(happened) => format!("{happened}; {}", thresholds_summary(scenarios, total)),
        None => thresholds_summary(scenarios, total),
    };
    let worst = findings.iter().map(Finding::severity).max();
    // Invalid findings first, then degraded ones, each in the order found.
    let messages = |severity: Severity| {
        findings
            .iter()
            .filter(move |f| f.severity() == severity)
            .map(|f| f.message.clone())
    };
    let (verdict, verdict_reasons) = match worst {
        Some(Severity::Invalid) => (
            Verdict::Invalid,
            messages(Severity::Invalid)
                .chain(messages(Severity::Degraded))
                .collect(),
        ),
        Some(Severity::Degraded) => (Verdict::Degraded, messages(Severity::Degraded).collect()),
        None if grade.is_below(plan.fail_below) => (
            Verdict::Fail,
            vec![format!(
                "grade {grade} is below the plan's fail_below {}",
                plan.fail_below
            )],
        ),
        None => (Verdict::Pass, Vec::new()),
    };
    Judged {
        grade,
        grade_reason,
        verdict,
        verdict_reasons,
    }
}

/// What happened to the run as a whole, when it did not run to its end: said before its thresholds.
fn what_happened(findings: &[Finding]) -> Option<&'static str> {
    let has = |kind: FindingKind| findings.iter().any(|f| f.kind == kind);
    Some(if has(FindingKind::PreflightFailed) {
        "no load was sent: a preflight check failed"
    } else if has(FindingKind::NoAgents) {
        "no load was sent: too few agents were ready"
    } else if has(FindingKind::Interrupted) {
        "interrupted: the coordinator stopped mid-run, and what it had stored was judged"
    } else if has(FindingKind::Cancelled) {
        "cancelled before its end, and what was measured until then was judged"
    } else if has(FindingKind::RunFailed) {
        "the run failed, and what was measured until then was judged"
    } else {
        return None;
    })
}

/// The thresholds in words: how many passed, which failed, which were not measured.
fn thresholds_summary(scenarios: &[ScenarioReport], total: usize) -> String {
    if total == 0 {
        return "no thresholds set: grade A by default".to_owned();
    }
    let listed = |pick: fn(&ThresholdResult) -> bool| {
        scenarios
            .iter()
            .flat_map(|s| {
                s.thresholds
                    .iter()
                    .filter(move |t| pick(t))
                    .map(move |t| format!("{}: {}", s.name, t.expr))
            })
            .collect::<Vec<_>>()
    };
    let failed = listed(|t| !t.passed && !t.not_measured);
    let unmeasured = listed(|t| t.not_measured);
    if unmeasured.len() == total {
        return format!("none of the {total} thresholds was measured");
    }
    if failed.is_empty() && unmeasured.is_empty() {
        return format!("all {total} thresholds passed");
    }
    let mut parts = vec![format!(
        "{} of {total} thresholds passed",
        total - failed.len() - unmeasured.len()
    )];
    if !failed.is_empty() {
        parts.push(format!("{} failed: {}", failed.len(), failed.join("; ")));
    }
    if !unmeasured.is_empty() {
        parts.push(format!(
            "{} not measured: {}",
            unmeasured.len(),
            unmeasured.join("; ")
        ));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgrade_common::report::{HttpMetrics, LatencyStats};

    const PLAN: &str = r#"
name = "p"
[[scenario]]
name = "api"
kind = "http"
url = "http://127.0.0.1:1/"
duration = "1s"
thresholds = ["latency_ms.p95 < 100", "success_rate >= 0.99"]
"#;

    fn metrics(p95: Option<f64>) -> ScenarioMetrics {
        ScenarioMetrics::Http(HttpMetrics {
            model: loadgrade_common::plan::LoadModel::Closed,
            requests: 10,
            errors: 0,
            errors_by_class: Default::default(),
            dropped: 0,
            success_rate: Some(1.0),
            throughput_rps: Some(10.0),
            success_rps: Some(10.0),
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
                p99: p95,
                p999: p95,
                max: p95,
            }),
            latency_raw_ms: None,
            send_late_ms: None,
            hdr: String::new(),
            hdr_raw: None,
            series: Vec::new(),
            not_measured: Default::default(),
        })
    }

    #[test]
    fn a_missing_figure_fails_and_invalidates() {
        let plan = Plan::parse("p.toml", PLAN).expect("plan");
        let mut findings = Vec::new();
        let report = judge_scenario(&plan.scenarios[0], Some(metrics(None)), &mut findings);
        assert!(!report.thresholds[0].passed);
        assert!(report.thresholds[1].passed);
        let judged = grade_run(&plan, &[report], &findings);
        assert_eq!(judged.grade, Grade::C);
        assert_eq!(judged.verdict, Verdict::Invalid);
        assert!(
            judged.verdict_reasons[0].contains("not measured"),
            "{judged:?}"
        );
        assert_eq!(findings[0].kind, FindingKind::NotMeasured);
        assert!(
            judged
                .grade_reason
                .contains("1 of 2 thresholds passed, 1 not measured: api: latency_ms.p95 < 100"),
            "{judged:?}"
        );
    }

    /// Regression (issue 21): a cancelled run printed "INVALID (all 1 thresholds passed)", and one stopped by a failed
    /// preflight "4 of 4 thresholds failed" though nothing ran.
    #[test]
    fn the_reason_says_what_happened_and_what_was_not_measured() {
        let plan = Plan::parse("p.toml", PLAN).expect("plan");
        let mut findings = vec![Finding::new(FindingKind::PreflightFailed, "down")];
        let report = judge_scenario(&plan.scenarios[0], None, &mut findings);
        assert!(
            report
                .thresholds
                .iter()
                .all(|t| t.not_measured && !t.passed)
        );
        let judged = grade_run(&plan, &[report], &findings);
        assert_eq!(
            judged.grade_reason,
            "no load was sent: a preflight check failed; none of the 2 thresholds was measured"
        );
        assert_eq!(judged.verdict, Verdict::Invalid);
        let mut findings = vec![Finding::new(FindingKind::Cancelled, "cancelled")];
        let report = judge_scenario(&plan.scenarios[0], Some(metrics(Some(5.0))), &mut findings);
        let judged = grade_run(&plan, &[report], &findings);
        assert_eq!(
            judged.grade_reason,
            "cancelled before its end, and what was measured until then was judged; all 2 thresholds passed"
        );
    }

    #[test]
    fn failed_threshold_fails_below_the_bar() {
        let plan = Plan::parse("p.toml", PLAN).expect("plan");
        let mut findings = Vec::new();
        let report = judge_scenario(
            &plan.scenarios[0],
            Some(metrics(Some(150.0))),
            &mut findings,
        );
        let judged = grade_run(&plan, &[report], &findings);
        assert_eq!((judged.grade, judged.verdict), (Grade::C, Verdict::Fail));
        assert!(
            judged
                .grade_reason
                .contains("1 of 2 thresholds passed, 1 failed: api: latency_ms.p95 < 100"),
            "{judged:?}"
        );
    }

    #[test]
    fn a_degraded_finding_degrades_and_an_invalid_one_wins() {
        let plan = Plan::parse("p.toml", PLAN).expect("plan");
        let lost = Finding::new(FindingKind::AgentLost, "lost");
        let judged = grade_run(&plan, &[], std::slice::from_ref(&lost));
        assert_eq!(judged.verdict, Verdict::Degraded);
        let judged = grade_run(
            &plan,
            &[],
            &[lost, Finding::new(FindingKind::GeneratorFault, "behind")],
        );
        assert_eq!(judged.verdict, Verdict::Invalid);
        assert_eq!(
            judged.verdict_reasons,
            vec!["behind".to_owned(), "lost".to_owned()]
        );
    }
}
