//! Thresholds, grade and verdict: from merged figures and what went wrong during the run to the report's head.
//! The rules are documented in `loadgrade_common::grade` and the README.

use loadgrade_common::grade::{Grade, Verdict};
use loadgrade_common::plan::{Plan, Scenario};
use loadgrade_common::report::{ScenarioReport, ThresholdResult};
use loadgrade_common::threshold::lookup;

/// What a run found wrong with its own result.
#[derive(Debug, Default)]
pub struct Trouble {
    /// The result cannot be trusted (verdict INVALID).
    pub invalid: Vec<String>,
    /// The result can be partly trusted (verdict DEGRADED).
    pub degraded: Vec<String>,
}

/// Evaluates a scenario's thresholds on its metrics (`None`: the scenario did not run).
pub fn judge_scenario(
    scenario: &Scenario,
    metrics: Option<serde_json::Value>,
    trouble: &mut Trouble,
) -> ScenarioReport {
    let thresholds: Vec<ThresholdResult> = scenario
        .thresholds
        .iter()
        .map(|t| {
            let actual = metrics.as_ref().and_then(|m| lookup(m, &t.metric));
            if actual.is_none() && metrics.is_some() {
                trouble.invalid.push(format!(
                    "scenario {:?}: threshold {:?} has no measured figure (not measured in this run)",
                    scenario.name, t.expr
                ));
            }
            ThresholdResult { expr: t.expr.clone(), actual, passed: t.holds(actual) }
        })
        .collect();
    ScenarioReport {
        name: scenario.name.clone(),
        kind: scenario.kind().to_owned(),
        passed: thresholds.iter().all(|t| t.passed) && metrics.is_some(),
        thresholds,
        metrics: metrics.unwrap_or(serde_json::Value::Null),
    }
}

/// Grade, its reason and the verdict with its reasons.
pub fn grade_run(
    plan: &Plan,
    scenarios: &[ScenarioReport],
    trouble: &Trouble,
) -> (Grade, String, Verdict, Vec<String>) {
    let total: usize = scenarios.iter().map(|s| s.thresholds.len()).sum();
    let failed: usize = scenarios
        .iter()
        .flat_map(|s| &s.thresholds)
        .filter(|t| !t.passed)
        .count();
    let grade = Grade::from_failures(failed, total);
    let grade_reason = match (total, failed) {
        (0, _) => "no thresholds set: grade A by default".to_owned(),
        (t, 0) => format!("all {t} thresholds passed"),
        (t, f) => format!(
            "{f} of {t} thresholds failed: {}",
            scenarios
                .iter()
                .flat_map(|s| s
                    .thresholds
                    .iter()
                    .filter(|t| !t.passed)
                    .map(move |t| format!("{}: {}", s.name, t.expr)))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    let (verdict, reasons) = if !trouble.invalid.is_empty() {
        (
            Verdict::Invalid,
            trouble
                .invalid
                .iter()
                .chain(&trouble.degraded)
                .cloned()
                .collect(),
        )
    } else if !trouble.degraded.is_empty() {
        (Verdict::Degraded, trouble.degraded.clone())
    } else if grade.is_below(plan.fail_below) {
        (
            Verdict::Fail,
            vec![format!(
                "grade {grade} is below the plan's fail_below {}",
                plan.fail_below
            )],
        )
    } else {
        (Verdict::Pass, Vec::new())
    };
    (grade, grade_reason, verdict, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"
name = "p"
[[scenario]]
name = "api"
kind = "http"
url = "http://127.0.0.1:1/"
duration = "1s"
thresholds = ["latency_ms.p95 < 100", "success_rate >= 0.99"]
"#;

    #[test]
    fn a_missing_figure_fails_and_invalidates() {
        let plan = Plan::parse("p.toml", PLAN).expect("plan");
        let mut trouble = Trouble::default();
        let metrics = serde_json::json!({"latency_ms": null, "success_rate": 1.0});
        let report = judge_scenario(&plan.scenarios[0], Some(metrics), &mut trouble);
        assert!(!report.thresholds[0].passed);
        assert!(report.thresholds[1].passed);
        let (grade, _, verdict, reasons) = grade_run(&plan, &[report], &trouble);
        assert_eq!(grade, Grade::C);
        assert_eq!(verdict, Verdict::Invalid);
        assert!(reasons[0].contains("not measured"), "{reasons:?}");
    }

    #[test]
    fn failed_threshold_fails_below_the_bar() {
        let plan = Plan::parse("p.toml", PLAN).expect("plan");
        let mut trouble = Trouble::default();
        let metrics = serde_json::json!({"latency_ms": {"p95": 150.0}, "success_rate": 1.0});
        let report = judge_scenario(&plan.scenarios[0], Some(metrics), &mut trouble);
        let (grade, reason, verdict, _) = grade_run(&plan, &[report], &trouble);
        assert_eq!((grade, verdict), (Grade::C, Verdict::Fail));
        assert!(reason.contains("1 of 2 thresholds failed"), "{reason}");
    }
}
