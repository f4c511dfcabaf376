//! junit.xml: one test case per threshold (failed thresholds are failures), plus one for the run's verdict
//! (DEGRADED or INVALID is an error: the result could not be trusted), so CI systems show what failed and why.

use super::escape;
use loadgrade_common::grade::Verdict;
use loadgrade_common::report::Report;
use std::fmt::Write as _;

pub fn junit(report: &Report) -> String {
    let failures: usize = report
        .scenarios
        .iter()
        .flat_map(|s| &s.thresholds)
        .filter(|t| !t.passed)
        .count();
    let tests: usize = report
        .scenarios
        .iter()
        .map(|s| s.thresholds.len())
        .sum::<usize>()
        + 1;
    let untrusted = matches!(report.verdict, Verdict::Degraded | Verdict::Invalid);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"loadgrade: {}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{}\">",
        escape(&report.plan_name),
        usize::from(untrusted)
    );
    for s in &report.scenarios {
        let failed = s.thresholds.iter().filter(|t| !t.passed).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\">",
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
        "  <testsuite name=\"verdict\" tests=\"1\" failures=\"{}\" errors=\"{}\">",
        usize::from(report.verdict == Verdict::Fail),
        usize::from(untrusted)
    );
    let _ = write!(
        out,
        "    <testcase classname=\"loadgrade\" name=\"verdict {} (grade {})\"",
        report.verdict, report.grade
    );
    let reasons = escape(&report.verdict_reasons.join("; "));
    match report.verdict {
        Verdict::Pass => out.push_str("/>\n"),
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
