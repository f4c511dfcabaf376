//! The `http` kind's section of the report page: counts, rates, errors by class and the latency table (corrected
//! and raw for the open model).

use super::chart::{Axis, Line, line_chart};
use super::doc::{Block, Inline, figure, text};
use loadgrade_common::histogram::{decode_base64, us_to_ms};
use loadgrade_common::plan::LoadModel;
use loadgrade_common::report::{HttpMetrics, LatencyStats};

pub(super) fn section(blocks: &mut Vec<Block>, m: &HttpMetrics) {
    blocks.push(Block::Paragraph(vec![
        text(format!(
            "{} model · {} requests · {} errors · {} dropped · success rate (%) ",
            m.model.as_str(),
            m.requests,
            m.errors,
            m.dropped
        )),
        super::doc::percent(m.success_rate),
        text(" · "),
        figure(m.throughput_rps),
        text(" req/s ("),
        figure(m.success_rps),
        text(format!(
            " successful) over the {:.1} s window",
            m.duration_s
        )),
    ]));
    blocks.push(Block::Paragraph(vec![text(format!(
        "Completed after the window: {} · resent: {} · warm-up requests: {} · discarded at stop: {}",
        m.completed_after_window, m.resent, m.warmup_requests, m.discarded_at_stop
    ))]));
    let e = &m.errors_by_class;
    blocks.push(Block::Paragraph(vec![text(format!(
        "Errors by class: connect {}, timeout {}, 4xx {}, 5xx {}, other {}, response too large {}",
        e.connect, e.timeout, e.status_4xx, e.status_5xx, e.other, e.response_too_large
    ))]));
    let open = m.model == LoadModel::Open;
    let mut rows = vec![latency_row(
        if open {
            "corrected (from intended send)"
        } else {
            "measured"
        },
        m.latency_ms.as_ref(),
    )];
    if open {
        rows.push(latency_row(
            "raw (from actual send)",
            m.latency_raw_ms.as_ref(),
        ));
    }
    blocks.push(latency_table(rows));
    charts(blocks, m);
}

/// Latency and throughput over time from the per-second points, and the percentile distribution (HDR plot) from
/// the merged histograms.
pub(super) fn charts(blocks: &mut Vec<Block>, m: &HttpMetrics) {
    let open = m.model == LoadModel::Open;
    let at = |p: &loadgrade_common::report::series::SeriesPoint| p.t_s;
    let line = |label: &str, colour: &'static str, points: Vec<(f64, f64)>| Line {
        label: label.to_owned(),
        colour,
        points,
        dashed: false,
    };
    let percentile = |pick: fn(&loadgrade_common::report::series::SeriesPoint) -> Option<f64>| {
        m.series
            .iter()
            .filter_map(|p| Some((at(p), pick(p)?)))
            .collect::<Vec<_>>()
    };
    let mut charts = String::new();
    charts.push_str(&line_chart(
        "latency over time",
        &Axis::linear("seconds from the start"),
        &Axis::linear(if open {
            "latency, ms (from intended send)"
        } else {
            "latency, ms"
        }),
        &[
            line("p50", "#1f77b4", percentile(|p| p.p50_ms)),
            line("p95", "#ff7f0e", percentile(|p| p.p95_ms)),
            line("p99", "#d62728", percentile(|p| p.p99_ms)),
        ],
    ));
    let rate = |n: fn(&loadgrade_common::report::series::SeriesPoint) -> u64| {
        m.series
            .iter()
            .map(|p| (at(p), p.per_s(n(p))))
            .collect::<Vec<_>>()
    };
    let mut lines = vec![
        line("completed/s", "#1f77b4", rate(|p| p.requests)),
        line("successful/s", "#2ca02c", rate(|p| p.ok)),
        line("errors/s", "#d62728", rate(|p| p.errors.total())),
    ];
    if open {
        lines.push(Line {
            dashed: true,
            ..line("intended (arrivals/s)", "#7f7f7f", rate(|p| p.arrivals))
        });
        lines.push(line("dropped/s", "#9467bd", rate(|p| p.dropped)));
    }
    charts.push_str(&line_chart(
        "throughput over time",
        &Axis::linear("seconds from the start"),
        &Axis::linear("requests per second"),
        &lines,
    ));
    let mut distribution = vec![line(
        if open { "corrected" } else { "measured" },
        "#1f77b4",
        percentile_curve(&m.hdr),
    )];
    if let Some(raw) = m.hdr_raw.as_deref().filter(|_| open) {
        distribution.push(Line {
            dashed: true,
            ..line("raw (from actual send)", "#ff7f0e", percentile_curve(raw))
        });
    }
    charts.push_str(&line_chart(
        "latency by percentile",
        &percentile_axis(),
        &Axis::linear("latency, ms"),
        &distribution,
    ));
    if !charts.is_empty() {
        blocks.push(Block::Html(format!("<div class=\"charts\">{charts}</div>")));
    }
}

/// The x axis of an HDR percentile plot: "1 in N" on a log scale, labelled as percentiles.
pub(super) fn percentile_axis() -> Axis {
    Axis {
        label: "percentile (log scale of 1 in N)".to_owned(),
        log: true,
        ticks: Some(
            [
                (1.0, "0%"),
                (10.0, "90%"),
                (100.0, "99%"),
                (1e3, "99.9%"),
                (1e4, "99.99%"),
                (1e5, "99.999%"),
            ]
            .iter()
            .map(|(v, l)| (*v, (*l).to_owned()))
            .collect(),
        ),
    }
}

/// The HDR percentile curve of a base64 histogram: (1 / (1 − q), latency in ms) from the minimum to the
/// percentile the count still resolves.
pub(super) fn percentile_curve(hdr: &str) -> Vec<(f64, f64)> {
    let Ok(h) = decode_base64(hdr) else {
        return Vec::new();
    };
    if h.is_empty() {
        return Vec::new();
    }
    let count = h.len() as f64;
    let mut points = vec![(1.0, us_to_ms(h.min()))];
    // Ten points a decade of "1 in N".
    let mut n = 10f64.powf(0.1);
    while n <= count && n <= 1e6 {
        let q = 1.0 - 1.0 / n;
        points.push((n, us_to_ms(h.value_at_quantile(q))));
        n *= 10f64.powf(0.1);
    }
    points.push((count.max(1.0), us_to_ms(h.max())));
    points
}

/// A table of latency rows (see [`latency_row`]) under the latency headers.
pub(super) fn latency_table(rows: Vec<Vec<Inline>>) -> Block {
    Block::Table {
        headers: vec![
            "latency (ms)",
            "min",
            "mean",
            "p50",
            "p90",
            "p95",
            "p99",
            "p99.9",
            "max",
        ],
        rows,
    }
}

pub(super) fn latency_row(label: &str, stats: Option<&LatencyStats>) -> Vec<Inline> {
    let mut row = vec![text(label)];
    row.extend(
        LatencyStats::FIELDS
            .iter()
            .map(|f| figure(stats.and_then(|s| s.get(f)))),
    );
    row
}
