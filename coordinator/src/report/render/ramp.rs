//! The `ramp` kind's section of report.md and report.html: the capacity figures, the step table, the USL fit, and
//! (HTML) a chart of throughput and p95 by concurrency.

use super::{escape, figure_html, figure_md};
use loadgrade_common::report::RampMetrics;
use std::fmt::Write as _;

pub(super) fn markdown(out: &mut String, m: &RampMetrics) {
    let _ = writeln!(
        out,
        "{} requests · {} errors · max concurrency **{}** · cliff {} · saturation {} · autoscale at {} · \
         peak {} req/s\n",
        m.requests,
        m.errors,
        m.max_concurrency
            .map_or("none before the cliff".to_owned(), |c| c.to_string()),
        m.cliff_concurrency
            .map_or("not reached".to_owned(), |c| c.to_string()),
        m.saturation_concurrency
            .map_or("-".to_owned(), |c| c.to_string()),
        m.autoscale_trigger
            .map_or("-".to_owned(), |c| format!("{c:.0}")),
        figure_md(m.peak_throughput_rps),
    );
    if let Some(reason) = &m.cliff_reason {
        let _ = writeln!(out, "Cliff: {reason}.\n");
    }
    out.push_str("| connections | req/s | p50 (ms) | p95 (ms) | p99 (ms) | error rate | target memory (max) | target CPU % | samples | |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for s in &m.steps {
        let l = s.latency_ms;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.concurrency,
            figure_md(s.throughput_rps),
            figure_md(l.map(|l| l.p50)),
            figure_md(l.map(|l| l.p95)),
            figure_md(l.map(|l| l.p99)),
            figure_md(s.error_rate),
            bytes(s.target_memory_bytes),
            figure_md(s.target_cpu_percent),
            s.probe_samples,
            if s.past_cliff {
                "**past the cliff**"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        out,
        "\nMemory at 90 % of capacity: {} of budget {} · headroom {}",
        bytes(m.memory_at_90pct_bytes),
        bytes(m.memory_budget_bytes),
        figure_md(m.memory_headroom)
    );
    match &m.usl {
        Some(u) => {
            let _ = writeln!(
                out,
                "\nUSL fit: sigma {:.4}, kappa {:.6}, lambda {:.1} req/s per connection, peak at {} connections, R² {:.3}\n",
                u.sigma,
                u.kappa,
                u.lambda,
                u.peak_concurrency
                    .map_or("-".to_owned(), |p| format!("{p:.0}")),
                u.r_squared
            );
        }
        None => out.push('\n'),
    }
    for (field, reason) in &m.not_measured {
        let _ = writeln!(out, "- {field}: not measured ({reason})");
    }
    if !m.not_measured.is_empty() {
        out.push('\n');
    }
}
fn bytes(value: Option<u64>) -> String {
    value.map_or_else(
        || "not measured".to_owned(),
        |b| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    )
}

pub(super) fn html(out: &mut String, m: &RampMetrics) {
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
        figure_html(m.memory_headroom)
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
            figure_html(s.throughput_rps),
            figure_html(l.map(|l| l.p50)),
            figure_html(l.map(|l| l.p95)),
            figure_html(l.map(|l| l.p99)),
            figure_html(s.error_rate),
            figure_html(s.target_memory_bytes.map(|b| b as f64 / 1048576.0)),
            figure_html(s.target_cpu_percent),
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
