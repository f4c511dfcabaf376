//! The `scrape` kind's section of the report page: what was scraped and how (sequential, scaled or not, which
//! Prometheus), the per-interval figures at the target and on Prometheus, the savings from the first interval to
//! the last (measured), the projections (marked, with their formula), and a chart of each figure against the
//! first interval.

use super::doc::{Block, Inline, figure, text};
use loadgrade_common::report::scrape::{Basis, IntervalMetrics, ScrapeMetrics};
use std::fmt::Write as _;

pub(super) fn section(blocks: &mut Vec<Block>, m: &ScrapeMetrics) {
    let scaled = if m.scaled {
        format!(
            " · SCALED: Prometheus was served {} copies of the target's series (label loadgrade_replica); the \
             Prometheus figures are for that many series, not for the target alone",
            m.replicas
        )
    } else {
        String::new()
    };
    blocks.push(Block::Paragraph(vec![text(format!(
        "Target {} · intervals measured one after another ({}), a fresh Prometheus each · Prometheus: {}{scaled}",
        m.target,
        m.mode,
        m.prometheus
            .as_deref()
            .unwrap_or("no figures (not run, or it failed: see what was not measured below)"),
    ))]));
    blocks.push(Block::Paragraph(vec![text(
        "At the target: each scrape timed from request to last byte; series and samples counted by parsing the \
         exposition. On Prometheus: its own /metrics, read half an interval after a scrape at the start and at the \
         end of the window, so the window holds whole scrapes.",
    )]));
    let mib = |v: Option<u64>| figure(v.map(|b| b as f64 / 1_048_576.0));
    let count =
        |v: Option<u64>| text(v.map_or_else(|| "not measured".to_owned(), |v| v.to_string()));
    blocks.push(Block::Table {
        headers: vec![
            "interval (s)",
            "window (s)",
            "scrapes",
            "errors",
            "series",
            "samples/s",
            "scrape p50 (ms)",
            "scrape p95 (ms)",
            "bytes a scrape",
            "target CPU (%)",
            "target memory (MiB)",
        ],
        rows: m
            .intervals
            .iter()
            .map(|i| {
                vec![
                    figure(Some(i.interval_s)),
                    figure(Some(i.window_s)),
                    text(i.scrapes.to_string()),
                    text(i.errors.to_string()),
                    count(i.series),
                    figure(i.samples_per_s),
                    figure(i.scrape_ms.map(|s| s.p50)),
                    figure(i.scrape_ms.map(|s| s.p95)),
                    count(i.scrape_bytes),
                    figure(i.target_cpu_percent),
                    mib(i.target_memory_bytes),
                ]
            })
            .collect(),
    });
    blocks.push(Block::Table {
        headers: vec![
            "interval (s)",
            "Prometheus head series",
            "samples appended/s",
            "RSS (MiB)",
            "CPU (%)",
            "CPU (s in window)",
            "heap in use (MiB)",
        ],
        rows: m
            .intervals
            .iter()
            .map(|i| {
                vec![
                    figure(Some(i.interval_s)),
                    count(i.prometheus_head_series),
                    figure(i.prometheus_samples_per_s),
                    mib(i.prometheus_rss_bytes),
                    figure(i.prometheus_cpu_percent),
                    figure(i.prometheus_cpu_seconds),
                    mib(i.prometheus_heap_inuse_bytes),
                ]
            })
            .collect(),
    });
    blocks.push(Block::Html(chart(&m.intervals)));
    if !m.savings.is_empty() {
        blocks.push(Block::Paragraph(vec![text(format!(
            "Savings from the first interval ({} s) to the last ({} s), both measured in this run:",
            m.intervals.first().map_or(0.0, |i| i.interval_s),
            m.intervals.last().map_or(0.0, |i| i.interval_s),
        ))]));
        blocks.push(Block::Table {
            headers: vec!["figure", "first", "last", "saved (%)", "basis"],
            rows: m
                .savings
                .iter()
                .map(|(name, s)| {
                    vec![
                        Inline::Code(name.clone()),
                        figure(Some(s.from)),
                        figure(Some(s.to)),
                        figure(Some(100.0 * s.saved)),
                        text(basis(s.basis)),
                    ]
                })
                .collect(),
        });
    }
    if !m.projections.is_empty() {
        blocks.push(Block::Paragraph(vec![text(
            "Projections: extended from the measured rates, not measured themselves.",
        )]));
        blocks.push(Block::Table {
            headers: vec!["interval (s)", "figure", "value", "formula", "basis"],
            rows: m
                .projections
                .iter()
                .map(|p| {
                    vec![
                        figure(Some(p.interval_s)),
                        Inline::Code(p.figure.clone()),
                        text(format!("{:.0}", p.value)),
                        text(p.formula.clone()),
                        text(basis(p.basis)),
                    ]
                })
                .collect(),
        });
    }
    let mut reasons: Vec<Vec<Inline>> = m
        .not_measured
        .iter()
        .map(|(k, v)| vec![text(format!("{k}: not measured ({v})"))])
        .collect();
    for i in &m.intervals {
        reasons.extend(i.not_measured.iter().map(|(k, v)| {
            vec![text(format!(
                "at {} s, {k}: not measured ({v})",
                i.interval_s
            ))]
        }));
    }
    if !reasons.is_empty() {
        blocks.push(Block::List(reasons));
    }
}

fn basis(b: Basis) -> &'static str {
    match b {
        Basis::Measured => "measured",
        Basis::Projected => "projected",
    }
}

/// The figures the chart shows, and their colours.
const CHARTED: [(&str, &str, &str); 4] = [
    ("samples_per_s", "samples/s at the target", "#1f77b4"),
    ("scrape_bytes_per_s", "bytes/s scraped", "#2ca02c"),
    ("prometheus_rss_bytes", "Prometheus RSS", "#ff7f0e"),
    ("prometheus_cpu_percent", "Prometheus CPU", "#d62728"),
];

/// Per interval, a bar per figure as a percentage of the same figure at the first interval (100 %), its value
/// written above; figures not measured are left out.
fn chart(intervals: &[IntervalMetrics]) -> String {
    let Some(first) = intervals.first() else {
        return String::new();
    };
    let series: Vec<(&str, &str, Vec<Option<f64>>)> = CHARTED
        .iter()
        .filter_map(|(name, label, colour)| {
            let base = first.figure(name).filter(|b| *b > 0.0)?;
            Some((
                *label,
                *colour,
                intervals
                    .iter()
                    .map(|i| i.figure(name).map(|v| 100.0 * v / base))
                    .collect(),
            ))
        })
        .collect();
    if series.is_empty() {
        return String::new();
    }
    let top_value = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().flatten())
        .copied()
        .fold(100.0f64, f64::max)
        .min(1_000.0);
    let (w, h, left, top, bottom) = (640.0, 260.0, 48.0, 40.0, 36.0);
    let plot_h = h - top - bottom;
    let group_w = (w - left - 16.0) / intervals.len() as f64;
    let bar_w = (group_w * 0.8 / series.len() as f64).min(40.0);
    let y = |v: f64| top + plot_h * (1.0 - v.min(top_value) / top_value);
    let mut out = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"100%\" style=\"max-width:{w}px\" role=\"img\" \
         aria-label=\"scrape figures by interval, percent of the first interval\">"
    );
    let mut ticks = vec![0.0, 50.0, 100.0];
    if top_value > 115.0 {
        ticks.push(top_value);
    }
    for tick in ticks {
        let _ = write!(
            out,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{tick:.0}%</text>",
            w - 16.0,
            left - 4.0,
            y(tick) + 4.0,
            y = y(tick),
        );
    }
    for (g, interval) in intervals.iter().enumerate() {
        let x0 = left + g as f64 * group_w + group_w * 0.1;
        for (k, (label, colour, values)) in series.iter().enumerate() {
            let Some(v) = values[g] else { continue };
            let x = x0 + k as f64 * bar_w;
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\">\
                 <title>{label} at {} s: {v:.0}% of the first interval</title></rect>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{v:.0}</text>",
                y(v),
                bar_w - 2.0,
                (h - bottom) - y(v),
                interval.interval_s,
                x + bar_w / 2.0 - 1.0,
                y(v) - 3.0,
            );
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">every {} s</text>",
            left + g as f64 * group_w + group_w / 2.0,
            h - bottom + 14.0,
            interval.interval_s,
        );
    }
    let mut x = left;
    for (label, colour, _) in &series {
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"8\" width=\"10\" height=\"10\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"17\" font-size=\"11\">{label}</text>",
            x + 14.0
        );
        x += 14.0 + 7.0 * label.len() as f64 + 12.0;
    }
    let _ = write!(
        out,
        "<line x1=\"{left}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#888\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">percent of the first interval's figure</text>\
         </svg>",
        w - 16.0,
        h - bottom,
        h - bottom,
        w / 2.0,
        h - 4.0
    );
    out
}
