//! The `http` kind's section of the report page: counts, rates, errors by class and the latency table (corrected
//! and raw for the open model).

use super::doc::{Block, Inline, figure, text};
use loadgrade_common::plan::LoadModel;
use loadgrade_common::report::{HttpMetrics, LatencyStats};

pub(super) fn section(blocks: &mut Vec<Block>, m: &HttpMetrics) {
    blocks.push(Block::Paragraph(vec![
        text(format!(
            "{} model · {} requests · {} errors · {} dropped · success rate ",
            m.model.as_str(),
            m.requests,
            m.errors,
            m.dropped
        )),
        figure(m.success_rate),
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
        "Errors by class: connect {}, timeout {}, 4xx {}, 5xx {}, other {}",
        e.connect, e.timeout, e.status_4xx, e.status_5xx, e.other
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
