//! report.html: one self-contained page (no scripts, no external assets): the verdict, every scenario's figures and
//! thresholds, a chart of each ramp's throughput and p95 by concurrency, and the agents' health.

use super::junit::escape;
use loadgrade_common::report::{HttpMetrics, LatencyStats, RampMetrics, Report};
use std::fmt::Write as _;

fn figure(value: Option<f64>) -> String {
    value.map_or_else(|| "<em>not measured</em>".to_owned(), |v| format!("{v:.3}"))
}

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
            escape(&s.kind)
        );
        if s.metrics.is_null() {
            out.push_str("<p>Not run: no figures were measured.</p>");
        } else if s.kind == "ramp" {
            if let Ok(m) = serde_json::from_value::<RampMetrics>(s.metrics.clone()) {
                ramp(&mut out, &m);
            }
        } else if let Ok(m) = serde_json::from_value::<HttpMetrics>(s.metrics.clone()) {
            http(&mut out, &m);
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

fn latency_row(out: &mut String, label: &str, stats: Option<&LatencyStats>) {
    match stats {
        None => {
            let _ = write!(
                out,
                "<tr><td>{label}</td><td colspan=\"8\"><em>not measured</em></td></tr>"
            );
        }
        Some(s) => {
            let _ = write!(
                out,
                "<tr><td>{label}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
                s.min, s.mean, s.p50, s.p90, s.p95, s.p99, s.p999, s.max
            );
        }
    }
}

fn http(out: &mut String, m: &HttpMetrics) {
    let _ = write!(
        out,
        "<p>{} model · {} requests · {} errors · {} dropped · success rate {} · {} req/s over {:.1} s</p>",
        m.model,
        m.requests,
        m.errors,
        m.dropped,
        figure(m.success_rate),
        figure(m.throughput_rps),
        m.duration_s
    );
    out.push_str("<table><tr><th>latency (ms)</th><th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th></tr>");
    let open = m.model == "open";
    latency_row(
        out,
        if open {
            "corrected (from intended send)"
        } else {
            "measured"
        },
        m.latency_ms.as_ref(),
    );
    if open {
        latency_row(out, "raw (from actual send)", m.latency_raw_ms.as_ref());
    }
    out.push_str("</table>");
}

fn ramp(out: &mut String, m: &RampMetrics) {
    let _ = write!(
        out,
        "<p>max concurrency <b>{}</b> · cliff {} · saturation {} · autoscale at {} · memory at 90 % {} · headroom {}</p>",
        m.max_concurrency
            .map_or("none before the cliff".to_owned(), |c| c.to_string()),
        m.cliff_concurrency
            .map_or("not reached".to_owned(), |c| c.to_string()),
        m.saturation_concurrency
            .map_or("-".to_owned(), |c| c.to_string()),
        m.autoscale_trigger
            .map_or("-".to_owned(), |c| format!("{c:.0}")),
        m.memory_at_90pct_bytes
            .map_or("<em>not measured</em>".to_owned(), |b| format!(
                "{:.1} MiB",
                b as f64 / 1048576.0
            )),
        figure(m.memory_headroom)
    );
    if let Some(reason) = &m.cliff_reason {
        let _ = write!(out, "<p>Cliff: {}.</p>", escape(reason));
    }
    chart(out, m);
    out.push_str("<table><tr><th>connections</th><th>req/s</th><th>p50 (ms)</th><th>p95 (ms)</th><th>p99 (ms)</th>\
        <th>error rate</th><th>target memory (MiB)</th><th>target CPU %</th><th></th></tr>");
    for s in &m.steps {
        let l = s.latency_ms;
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s.concurrency,
            figure(s.throughput_rps),
            figure(l.map(|l| l.p50)),
            figure(l.map(|l| l.p95)),
            figure(l.map(|l| l.p99)),
            figure(s.error_rate),
            figure(s.target_memory_bytes.map(|b| b as f64 / 1048576.0)),
            figure(s.target_cpu_percent),
            if s.past_cliff {
                "<span class=\"bad\">past the cliff</span>"
            } else {
                ""
            }
        );
    }
    out.push_str("</table>");
    for (field, reason) in &m.not_measured {
        let _ = write!(
            out,
            "<p>{}: <em>not measured</em> ({})</p>",
            escape(field),
            escape(reason)
        );
    }
}

/// Throughput (blue) and p95 (orange) by concurrency, each scaled to its own maximum.
fn chart(out: &mut String, m: &RampMetrics) {
    let (w, h, pad) = (640.0, 240.0, 36.0);
    let xs: Vec<f64> = m.steps.iter().map(|s| s.concurrency as f64).collect();
    let (Some(&x_min), Some(&x_max)) = (xs.first(), xs.last()) else {
        return;
    };
    let span = (x_max - x_min).max(1.0);
    let series = |values: Vec<Option<f64>>| -> String {
        let max = values
            .iter()
            .flatten()
            .copied()
            .fold(0.0, f64::max)
            .max(f64::MIN_POSITIVE);
        xs.iter()
            .zip(values)
            .filter_map(|(x, v)| Some((x, v?)))
            .map(|(x, v)| {
                format!(
                    "{:.1},{:.1}",
                    pad + (x - x_min) / span * (w - 2.0 * pad),
                    h - pad - v / max * (h - 2.0 * pad)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let throughput = series(m.steps.iter().map(|s| s.throughput_rps).collect());
    let p95 = series(
        m.steps
            .iter()
            .map(|s| s.latency_ms.map(|l| l.p95))
            .collect(),
    );
    let _ = write!(
        out,
        "<svg width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"throughput and p95 by concurrency\">\
         <polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{throughput}\"/>\
         <polyline fill=\"none\" stroke=\"#ff7f0e\" stroke-width=\"2\" points=\"{p95}\"/>\
         <text x=\"{pad}\" y=\"16\" font-size=\"12\" fill=\"#1f77b4\">throughput (req/s, to its max)</text>\
         <text x=\"{}\" y=\"16\" font-size=\"12\" fill=\"#ff7f0e\">p95 (ms, to its max)</text>\
         <text x=\"{pad}\" y=\"{}\" font-size=\"12\">{x_min} connections</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\">{x_max}</text></svg>",
        w / 2.0,
        h - 8.0,
        w - pad,
        h - 8.0
    );
}
