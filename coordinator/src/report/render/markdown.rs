//! report.md: the verdict first, then per-scenario figures and thresholds, then the agents and their health.

use super::{figure_md as figure, http, ramp};
use loadgrade_common::report::{Report, ScenarioMetrics};
use std::fmt::Write as _;

pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# loadgrade report: {}\n", report.plan_name);
    let _ = writeln!(
        out,
        "**Verdict: {}** · grade **{}** · {}\n",
        report.verdict, report.grade, report.grade_reason
    );
    for reason in &report.verdict_reasons {
        let _ = writeln!(out, "- {reason}");
    }
    if !report.verdict_reasons.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Run `{}`, {} to {}.\n",
        report.run_id, report.started_at, report.finished_at
    );

    for scenario in &report.scenarios {
        let _ = writeln!(out, "## Scenario `{}` ({})\n", scenario.name, scenario.kind);
        match &scenario.metrics {
            None => {
                let _ = writeln!(out, "Not run: no figures were measured.\n");
            }
            Some(ScenarioMetrics::Http(m)) => http::markdown(&mut out, m),
            Some(ScenarioMetrics::Ramp(m)) => ramp::markdown(&mut out, m),
        }
        if !scenario.thresholds.is_empty() {
            out.push_str("| threshold | actual | result |\n|---|---|---|\n");
            for t in &scenario.thresholds {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} |",
                    t.expr,
                    figure(t.actual),
                    if t.passed { "pass" } else { "**FAIL**" }
                );
            }
            out.push('\n');
        }
    }

    out.push_str("## Agents\n\n");
    out.push_str(
        "| agent | requests | errors | intervals | lost | clock offset (ms) | threads | CPU % | lag p99 (ms) | connect p99 (ms) | connection wait p99 (ms) | arrivals | dropped | EMFILE | EADDRNOTAVAIL |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for a in &report.agents {
        let g = &a.generator;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            a.name,
            a.requests,
            a.errors,
            a.intervals,
            if a.lost { "**yes**" } else { "no" },
            a.clock_offset_ms,
            g.threads,
            figure(g.cpu_percent),
            figure(g.lag_ms_p99),
            figure(g.connect_ms_p99),
            figure(g.connection_wait_ms_p99),
            g.arrivals,
            g.dropped,
            g.emfile,
            g.eaddrnotavail
        );
    }
    out
}
