//! The `pagination` kind's section of the report page: what was measured (backend, table, rows, page size, the
//! two statements), a table by depth (OFFSET and keyset latency, speedup), a chart of both curves by depth, and
//! the database's own plans when asked.

use super::doc::{Block, Inline, figure, text};
use loadgrade_common::report::pagination::PaginationMetrics;
use std::fmt::Write as _;

pub(super) fn section(blocks: &mut Vec<Block>, m: &PaginationMetrics) {
    blocks.push(Block::Paragraph(vec![
        text(format!(
            "{} {} · table {} ordered by {} · {} rows{} · {} rows a page · {} timed runs of each query per depth on \
             each of {} connection(s) on {} agent(s) · {} queries, {} errors · speedup at the deepest page ",
            m.backend,
            m.server_version.as_deref().unwrap_or("(version not read)"),
            m.table,
            m.key,
            m.rows.map_or_else(|| "?".to_owned(), |r| r.to_string()),
            if m.seeded { " (seeded by loadgrade)" } else { "" },
            m.page_size,
            m.iterations,
            m.concurrency,
            m.agents,
            m.queries,
            m.errors,
        )),
        figure(m.speedup_at_deepest),
        text("x"),
    ]));
    blocks.push(Block::Paragraph(vec![text(
        "Each latency is client-observed: from sending the prepared statement to the last row received, round trip \
         included, after one untimed warm run per connection. OFFSET and keyset runs alternate. Both queries \
         returned the same keys at every depth (checked). Speedup = OFFSET median / keyset median.",
    )]));
    let ms = |v: Option<f64>| figure(v);
    let rows: Vec<Vec<Inline>> = m
        .depths
        .iter()
        .map(|d| {
            vec![
                text(d.page.to_string()),
                text(d.offset.to_string()),
                ms(d.offset_ms.map(|s| s.p50)),
                ms(d.offset_ms.map(|s| s.p95)),
                ms(d.cursor_ms.map(|s| s.p50)),
                ms(d.cursor_ms.map(|s| s.p95)),
                figure(d.speedup),
                text(format!("{} / {}", d.offset_queries, d.cursor_queries)),
            ]
        })
        .collect();
    blocks.push(Block::Table {
        headers: vec![
            "page",
            "offset (rows)",
            "OFFSET p50 (ms)",
            "OFFSET p95 (ms)",
            "keyset p50 (ms)",
            "keyset p95 (ms)",
            "speedup (x)",
            "queries (OFFSET / keyset)",
        ],
        rows,
    });
    blocks.push(Block::Html(chart(m)));
    blocks.push(Block::Paragraph(vec![text("The statements timed:")]));
    blocks.push(Block::Code(format!(
        "{}\n{}",
        m.offset_statement, m.cursor_statement
    )));
    if let Some(e) = &m.explain {
        blocks.push(Block::Paragraph(vec![text(format!(
            "The database's plan at the deepest page ({}), OFFSET then keyset:",
            e.method
        ))]));
        blocks.push(Block::Code(e.offset.clone()));
        blocks.push(Block::Code(e.cursor.clone()));
    }
    if !m.not_measured.is_empty() {
        blocks.push(Block::List(
            m.not_measured
                .iter()
                .map(|(k, v)| vec![text(format!("{k}: not measured ({v})"))])
                .collect(),
        ));
    }
}

/// A depth on the chart: page, OFFSET p50, keyset p50.
type Point = (f64, Option<f64>, Option<f64>);

/// OFFSET p50 (orange) and keyset p50 (blue) by page, both axes logarithmic, with their ticks.
fn chart(m: &PaginationMetrics) -> String {
    let points: Vec<Point> = m
        .depths
        .iter()
        .map(|d| {
            (
                d.page as f64,
                d.offset_ms.map(|s| s.p50),
                d.cursor_ms.map(|s| s.p50),
            )
        })
        .collect();
    let values: Vec<f64> = points
        .iter()
        .flat_map(|(_, a, b)| [*a, *b])
        .flatten()
        .filter(|v| *v > 0.0)
        .collect();
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return String::new();
    };
    if values.is_empty() {
        return String::new();
    }
    let (w, h, left, right, top, bottom) = (640.0, 260.0, 56.0, 16.0, 28.0, 36.0);
    let lo = values
        .iter()
        .copied()
        .fold(f64::MAX, f64::min)
        .log10()
        .floor();
    let hi = values
        .iter()
        .copied()
        .fold(0.0, f64::max)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let (x_lo, x_hi) = (first.0.log10(), last.0.log10().max(first.0.log10() + 1e-9));
    let x = |page: f64| left + (page.log10() - x_lo) / (x_hi - x_lo) * (w - left - right);
    let y = |v: f64| top + (hi - v.log10()) / (hi - lo) * (h - top - bottom);
    let line = |pick: &dyn Fn(&Point) -> Option<f64>| {
        points
            .iter()
            .filter_map(|p| Some((p.0, pick(p).filter(|v| *v > 0.0)?)))
            .map(|(page, v)| format!("{:.1},{:.1}", x(page), y(v)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"100%\" style=\"max-width:{w}px\" role=\"img\" \
         aria-label=\"OFFSET and keyset median latency by page\">"
    );
    // Y ticks at each power of ten, X ticks at each page timed.
    let mut decade = lo;
    while decade <= hi {
        let v = 10f64.powf(decade);
        let _ = write!(
            out,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            w - right,
            left - 4.0,
            y(v) + 4.0,
            if v < 1.0 {
                format!("{v}")
            } else {
                format!("{v:.0}")
            },
            y = y(v),
        );
        decade += 1.0;
    }
    for (page, _, _) in &points {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{page}</text>",
            x(*page),
            h - bottom + 14.0
        );
    }
    let offset = line(&|p| p.1);
    let cursor = line(&|p| p.2);
    let _ = write!(
        out,
        "<line x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{}\" stroke=\"#888\"/>\
         <line x1=\"{left}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#888\"/>\
         <polyline fill=\"none\" stroke=\"#ff7f0e\" stroke-width=\"2\" points=\"{offset}\"/>\
         <polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{cursor}\"/>\
         <text x=\"{left}\" y=\"16\" font-size=\"12\" fill=\"#ff7f0e\">OFFSET p50 (ms, log)</text>\
         <text x=\"{}\" y=\"16\" font-size=\"12\" fill=\"#1f77b4\">keyset p50 (ms, log)</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">page (log)</text></svg>",
        h - bottom,
        w - right,
        h - bottom,
        h - bottom,
        w / 2.0,
        (left + w - right) / 2.0,
        h - 4.0,
    );
    out
}
