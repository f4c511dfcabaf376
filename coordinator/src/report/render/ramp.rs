//! The `ramp` kind's section of the report page: the capacity figures, a chart of throughput and p95 by
//! concurrency (HTML), the step table, memory against the budget, the USL fit, and what was not measured.

use super::doc::{Block, Inline, count, figure, text};
use loadgrade_common::report::RampMetrics;
use std::fmt::Write as _;

fn mib(bytes: Option<u64>) -> Option<f64> {
    bytes.map(|b| b as f64 / (1024.0 * 1024.0))
}

fn or_text(value: Option<String>, missing: &str) -> String {
    value.unwrap_or_else(|| missing.to_owned())
}

pub(super) fn section(blocks: &mut Vec<Block>, m: &RampMetrics) {
    blocks.push(Block::Paragraph(vec![
        text(format!(
            "{} requests · {} errors · max concurrency ",
            m.requests, m.errors
        )),
        Inline::Strong(or_text(
            m.max_concurrency.map(|c| c.to_string()),
            "none before the cliff",
        )),
        text(format!(
            " · cliff {} · saturation {} · autoscale at {} · peak ",
            or_text(m.cliff_concurrency.map(|c| c.to_string()), "not reached"),
            or_text(m.saturation_concurrency.map(|c| c.to_string()), "-"),
            or_text(m.autoscale_trigger.map(|c| format!("{c:.0}")), "-"),
        )),
        figure(m.peak_throughput_rps),
        text(" req/s"),
    ]));
    if let Some(reason) = &m.cliff_reason {
        blocks.push(Block::Paragraph(vec![text(format!("Cliff: {reason}."))]));
    }
    blocks.push(Block::Html(chart(m)));
    blocks.push(Block::Table {
        headers: vec![
            "connections",
            "req/s",
            "successful req/s",
            "p50 (ms)",
            "p95 (ms)",
            "p99 (ms)",
            "error rate",
            "target memory, max (MiB)",
            "target CPU %",
            "samples",
            "",
        ],
        rows: m
            .steps
            .iter()
            .map(|s| {
                let l = s.latency_ms;
                vec![
                    count(s.concurrency),
                    figure(s.throughput_rps),
                    figure(s.success_rps),
                    figure(l.map(|l| l.p50)),
                    figure(l.map(|l| l.p95)),
                    figure(l.map(|l| l.p99)),
                    figure(s.error_rate),
                    figure(mib(s.target_memory_bytes)),
                    figure(s.target_cpu_percent),
                    count(s.probe_samples),
                    if s.past_cliff {
                        Inline::Bad("past the cliff".into())
                    } else {
                        text("")
                    },
                ]
            })
            .collect(),
    });
    blocks.push(Block::Paragraph(vec![
        text("Memory at 90 % of capacity (MiB): "),
        figure(mib(m.memory_at_90pct_bytes)),
        text(" of budget "),
        figure(mib(m.memory_budget_bytes)),
        text(" · headroom "),
        figure(m.memory_headroom),
    ]));
    if let Some(u) = &m.usl {
        blocks.push(Block::Paragraph(vec![
            text(format!(
                "USL fit over the goodput of the steps before the cliff: sigma {:.4}, kappa {:.6}, lambda {:.1} \
                 req/s per connection, peak at {} connections, R² ",
                u.sigma,
                u.kappa,
                u.lambda,
                or_text(u.peak_concurrency.map(|p| format!("{p:.0}")), "-"),
            )),
            figure(u.r_squared),
        ]));
    }
    let missing: Vec<Vec<Inline>> = m
        .absent
        .iter()
        .map(|(field, reason)| vec![text(format!("{field}: none ({reason})"))])
        .chain(
            m.not_measured
                .iter()
                .map(|(field, reason)| vec![text(format!("{field}: not measured ({reason})"))]),
        )
        .collect();
    if !missing.is_empty() {
        blocks.push(Block::List(missing));
    }
    blocks.push(Block::Paragraph(vec![text(format!(
        "Each step settled for {:.1} s first (excluded from its figures); rates are over the rest of the step.",
        m.settle_s
    ))]));
}

/// Throughput (blue) and p95 (orange) by concurrency, each scaled to its own maximum.
fn chart(m: &RampMetrics) -> String {
    let mut out = String::new();
    let (w, h, pad) = (640.0, 240.0, 36.0);
    let xs: Vec<f64> = m.steps.iter().map(|s| s.concurrency as f64).collect();
    let (Some(&x_min), Some(&x_max)) = (xs.first(), xs.last()) else {
        return out;
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
    out
}
