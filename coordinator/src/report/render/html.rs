//! report.html: one self-contained page (no scripts, no external assets): the verdict, every scenario's figures and
//! thresholds, a chart of each ramp's throughput and p95 by concurrency, and the agents' health.

use super::{escape, figure_html as figure, http, ramp};
use loadgrade_common::report::{Report, ScenarioMetrics};
use std::fmt::Write as _;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem;color:#222}\
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}\
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.verdict{padding:.6rem 1rem;font-size:1.3rem;\
border-radius:.3rem;display:inline-block}.PASS{background:#d8f5d8}.FAIL{background:#fbd5d5}.DEGRADED,.INVALID\
{background:#fdebc8}.bad{color:#b00;font-weight:bold}svg{background:#fafafa;border:1px solid #ddd}";

pub fn html(report: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>loadgrade: {}</title><style>{STYLE}</style></head><body>",
        escape(&report.plan_name)
    );
    let _ = write!(
        out,
        "<h1>loadgrade report: {}</h1><div class=\"verdict {}\">Verdict <b>{}</b> · grade <b>{}</b> · {}</div>",
        escape(&report.plan_name),
        report.verdict,
        report.verdict,
        report.grade,
        escape(&report.grade_reason)
    );
    if !report.verdict_reasons.is_empty() {
        out.push_str("<ul>");
        for r in &report.verdict_reasons {
            let _ = write!(out, "<li>{}</li>", escape(r));
        }
        out.push_str("</ul>");
    }
    let _ = write!(
        out,
        "<p>Run <code>{}</code>, {} to {}.</p>",
        escape(&report.run_id),
        escape(&report.started_at),
        escape(&report.finished_at)
    );
    for s in &report.scenarios {
        let _ = write!(
            out,
            "<h2>Scenario {} ({})</h2>",
            escape(&s.name),
            s.kind.as_str()
        );
        match &s.metrics {
            None => out.push_str("<p>Not run: no figures were measured.</p>"),
            Some(ScenarioMetrics::Http(m)) => http::html(&mut out, m),
            Some(ScenarioMetrics::Ramp(m)) => ramp::html(&mut out, m),
        }
        if !s.thresholds.is_empty() {
            out.push_str("<table><tr><th>threshold</th><th>actual</th><th>result</th></tr>");
            for t in &s.thresholds {
                let _ = write!(
                    out,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    escape(&t.expr),
                    figure(t.actual),
                    if t.passed {
                        "pass"
                    } else {
                        "<span class=\"bad\">FAIL</span>"
                    }
                );
            }
            out.push_str("</table>");
        }
    }
    out.push_str("<h2>Agents</h2><table><tr><th>agent</th><th>requests</th><th>errors</th><th>lost</th><th>threads</th>\
        <th>CPU %</th><th>lag p99 (ms)</th><th>connect p99 (ms)</th><th>wait p99 (ms)</th><th>dropped</th><th>EMFILE</th>\
        <th>EADDRNOTAVAIL</th></tr>");
    for a in &report.agents {
        let g = &a.generator;
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&a.name),
            a.requests,
            a.errors,
            if a.lost {
                "<span class=\"bad\">yes</span>"
            } else {
                "no"
            },
            g.threads,
            figure(g.cpu_percent),
            figure(g.lag_ms_p99),
            figure(g.connect_ms_p99),
            figure(g.connection_wait_ms_p99),
            g.dropped,
            g.emfile,
            g.eaddrnotavail
        );
    }
    out.push_str("</table></body></html>\n");
    out
}
