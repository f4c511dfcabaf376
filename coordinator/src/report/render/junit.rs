//! junit.xml: one test case per threshold (failed thresholds are failures; thresholds whose figure was not
//! measured are errors: they could not be judged), plus one named `verdict` for the run's
//! verdict (FAIL is a failure; DEGRADED or INVALID an error: the result could not be trusted), so CI systems show
//! what failed and why, and keep one history per case whatever the outcome. Counts on every level include every
//! case under it; each suite has the run's start as `timestamp`, and the whole run's length is the root's `time`.

use super::escape;
use loadgrade_common::grade::Verdict;
use loadgrade_common::report::Report;
use std::fmt::Write as _;

pub fn junit(report: &Report) -> String {
    let failures: usize = report
        .scenarios
        .iter()
        .flat_map(|s| &s.thresholds)
        .filter(|t| !t.passed && !t.not_measured)
        .count()
        + usize::from(report.verdict == Verdict::Fail);
    let unmeasured: usize = report
        .scenarios
        .iter()
        .flat_map(|s| &s.thresholds)
        .filter(|t| t.not_measured)
        .count();
    let tests: usize = report
        .scenarios
        .iter()
        .map(|s| s.thresholds.len())
        .sum::<usize>()
        + 1;
    let untrusted = matches!(report.verdict, Verdict::Degraded | Verdict::Invalid);
    let seconds = run_seconds(report).unwrap_or(0.0);
    // JUnit's timestamp is ISO 8601 without a zone; the run's start is UTC.
    let timestamp = escape(
        report
            .started_at
            .split('.')
            .next()
            .unwrap_or_default()
            .trim_end_matches('Z'),
    );
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"loadgrade: {}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{}\" \
         time=\"{seconds:.3}\" timestamp=\"{timestamp}\">",
        escape(&report.plan_name),
        usize::from(untrusted) + unmeasured
    );
    for s in &report.scenarios {
        let failed = s
            .thresholds
            .iter()
            .filter(|t| !t.passed && !t.not_measured)
            .count();
        let errors = s.thresholds.iter().filter(|t| t.not_measured).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"{errors}\" timestamp=\"{timestamp}\">",
            escape(&s.name),
            s.thresholds.len()
        );
        for t in &s.thresholds {
            let actual = t
                .actual
                .map_or_else(|| "not measured".to_owned(), |a| format!("{a}"));
            let _ = write!(
                out,
                "    <testcase classname=\"loadgrade.{}\" name=\"{}\"",
                escape(&s.name),
                escape(&t.expr)
            );
            if t.passed {
                let _ = writeln!(
                    out,
                    "><system-out>actual {}</system-out></testcase>",
                    escape(&actual)
                );
            } else if t.not_measured {
                let _ = writeln!(
                    out,
                    "><error message=\"{}: not measured\" type=\"not_measured\"/></testcase>",
                    escape(&t.expr)
                );
            } else {
                let _ = writeln!(
                    out,
                    "><failure message=\"{} (actual {})\" type=\"threshold\"/></testcase>",
                    escape(&t.expr),
                    escape(&actual)
                );
            }
        }
        out.push_str("  </testsuite>\n");
    }
    let _ = writeln!(
        out,
        "  <testsuite name=\"verdict\" tests=\"1\" failures=\"{}\" errors=\"{}\" time=\"{seconds:.3}\" \
         timestamp=\"{timestamp}\">",
        usize::from(report.verdict == Verdict::Fail),
        usize::from(untrusted)
    );
    // The case's name stays `verdict` whatever the outcome (CI keeps one history); the outcome is in its text.
    let _ = write!(
        out,
        "    <testcase classname=\"loadgrade\" name=\"verdict\" time=\"{seconds:.3}\""
    );
    let reasons = escape(&format!(
        "verdict {} (grade {}): {}",
        report.verdict,
        report.grade,
        report.verdict_reasons.join("; ")
    ));
    match report.verdict {
        Verdict::Pass => {
            let _ = writeln!(
                out,
                "><system-out>verdict PASS (grade {})</system-out></testcase>",
                report.grade
            );
        }
        Verdict::Fail => {
            let _ = writeln!(
                out,
                "><failure message=\"{reasons}\" type=\"FAIL\"/></testcase>"
            );
        }
        Verdict::Degraded | Verdict::Invalid => {
            let _ = writeln!(
                out,
                "><error message=\"{reasons}\" type=\"{}\"/></testcase>",
                report.verdict
            );
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The run's length in seconds from its RFC 3339 start and end (`None` when either does not parse).
pub(super) fn run_seconds(report: &Report) -> Option<f64> {
    let at = |t: &str| humantime::parse_rfc3339_weak(t).ok();
    let (start, end) = (at(&report.started_at)?, at(&report.finished_at)?);
    end.duration_since(start).ok().map(|d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("p95 < 300 & \"x\""),
            "p95 &lt; 300 &amp; &quot;x&quot;"
        );
    }
}
