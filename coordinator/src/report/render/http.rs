//! The `http` kind's section of report.md and report.html: counts, rates and the latency table (corrected and raw
//! for the open model).

use super::{figure_html, figure_md};
use loadgrade_common::plan::LoadModel;
use loadgrade_common::report::{HttpMetrics, LatencyStats};
use std::fmt::Write as _;

pub(super) fn markdown(out: &mut String, m: &HttpMetrics) {
    {
        {
            let _ = writeln!(
                out,
                "{} model · {} requests · {} errors · {} dropped · success rate {} · {} req/s over {:.1} s\n",
                m.model.as_str(),
                m.requests,
                m.errors,
                m.dropped,
                figure_md(m.success_rate),
                figure_md(m.throughput_rps),
                m.duration_s
            );
            let e = &m.errors_by_class;
            let _ = writeln!(
                out,
                "Errors by class: connect {}, timeout {}, 4xx {}, 5xx {}, other {}\n",
                e.connect, e.timeout, e.status_4xx, e.status_5xx, e.other
            );
            out.push_str("| latency (ms) | min | mean | p50 | p90 | p95 | p99 | p99.9 | max |\n");
            out.push_str("|---|---|---|---|---|---|---|---|---|\n");
            let open = m.model == LoadModel::Open;
            let corrected_label = if open {
                "corrected (from intended send)"
            } else {
                "measured"
            };
            out.push_str(&md_latency_row(corrected_label, m.latency_ms.as_ref()));
            if open {
                out.push_str(&md_latency_row(
                    "raw (from actual send)",
                    m.latency_raw_ms.as_ref(),
                ));
            }
            out.push('\n');
        }
    }
}

fn md_latency_row(label: &str, stats: Option<&LatencyStats>) -> String {
    match stats {
        None => format!("| {label} | not measured | | | | | | | |\n"),
        Some(s) => format!(
            "| {label} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            s.min, s.mean, s.p50, s.p90, s.p95, s.p99, s.p999, s.max
        ),
    }
}

pub(super) fn html(out: &mut String, m: &HttpMetrics) {
    let _ = write!(
        out,
        "<p>{} model · {} requests · {} errors · {} dropped · success rate {} · {} req/s over {:.1} s</p>",
        m.model.as_str(),
        m.requests,
        m.errors,
        m.dropped,
        figure_html(m.success_rate),
        figure_html(m.throughput_rps),
        m.duration_s
    );
    out.push_str("<table><tr><th>latency (ms)</th><th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th></tr>");
    let open = m.model == LoadModel::Open;
    html_latency_row(
        out,
        if open {
            "corrected (from intended send)"
        } else {
            "measured"
        },
        m.latency_ms.as_ref(),
    );
    if open {
        html_latency_row(out, "raw (from actual send)", m.latency_raw_ms.as_ref());
    }
    out.push_str("</table>");
}

fn html_latency_row(out: &mut String, label: &str, stats: Option<&LatencyStats>) {
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
