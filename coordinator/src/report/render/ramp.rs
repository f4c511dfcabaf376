//! The `ramp` kind's section of the report page: the capacity figures, charts of throughput (with the USL curve),
//! latency and memory by concurrency with the cliff, saturation, max concurrency, autoscale point and budget marked
//! (HTML), the step table, memory against the budget, the USL fit, and what was not measured.

use super::chart::{Axis, Line, Mark, marked_chart};
use super::doc::{Block, Inline, count, figure, text};
use loadgrade_common::report::RampMetrics;

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
            "error rate (%)",
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
                    super::doc::percent(s.error_rate),
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
        text(" · headroom (%) "),
        super::doc::percent(m.memory_headroom),
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
    blocks.push(Block::Paragraph(vec![text(
        "How the capacity figures are defined: saturation is the lowest concurrency after which no step raises \
         goodput by more than 5 % (more concurrency stops buying throughput); max concurrency is the last step before the \
         cliff (latency or errors past the plan's rule), the most the target held; the autoscale point is \
         autoscale_at times max concurrency, where to add capacity before the cliff; peak is the best goodput \
         before the cliff.",
    )]));
}

/// Three charts by concurrency, each on its own axis: goodput and throughput with the USL curve, p95, and the
/// target's memory against the budget; the cliff, saturation, max concurrency and autoscale point are marked.
fn chart(m: &RampMetrics) -> String {
    let at = |pick: &dyn Fn(&loadgrade_common::report::RampStep) -> Option<f64>| {
        m.steps
            .iter()
            .filter_map(|s| Some((s.concurrency as f64, pick(s)?)))
            .collect::<Vec<_>>()
    };
    let line = |label: &str, colour: &'static str, points: Vec<(f64, f64)>| Line {
        label: label.to_owned(),
        colour,
        points,
        dashed: false,
    };
    let mut marks = Vec::new();
    if let Some(c) = m.cliff_concurrency {
        marks.push(Mark::AtX(c as f64, format!("cliff {c}")));
    }
    if let Some(c) = m.saturation_concurrency {
        marks.push(Mark::AtX(c as f64, format!("saturation {c}")));
    }
    if let Some(c) = m.max_concurrency.filter(|c| *c > 0) {
        marks.push(Mark::AtX(c as f64, format!("max {c}")));
    }
    if let Some(c) = m.autoscale_trigger {
        marks.push(Mark::AtX(c, format!("autoscale {c:.0}")));
    }
    let x = Axis::linear("concurrent connections");
    let mut throughput = vec![
        line("successful req/s", "#2ca02c", at(&|s| s.success_rps)),
        line("req/s", "#1f77b4", at(&|s| s.throughput_rps)),
    ];
    if let Some(u) = &m.usl {
        let (lo, hi) = (
            m.steps.first().map_or(1, |s| s.concurrency),
            m.steps.last().map_or(1, |s| s.concurrency),
        );
        let points = (0..=40)
            .map(|i| lo as f64 + (hi - lo) as f64 * f64::from(i) / 40.0)
            .map(|n| {
                (
                    n,
                    u.lambda * n / (1.0 + u.sigma * (n - 1.0) + u.kappa * n * (n - 1.0)),
                )
            })
            .collect();
        throughput.push(Line {
            dashed: true,
            ..line("USL fit", "#7f7f7f", points)
        });
    }
    let mut out = marked_chart(
        "throughput by concurrency",
        &x,
        &Axis::linear("requests per second"),
        &throughput,
        &marks,
    );
    out.push_str(&marked_chart(
        "p95 by concurrency",
        &x,
        &Axis::linear("p95 latency, ms"),
        &[
            line("p50", "#1f77b4", at(&|s| s.latency_ms.map(|l| l.p50))),
            line("p95", "#ff7f0e", at(&|s| s.latency_ms.map(|l| l.p95))),
            line("p99", "#d62728", at(&|s| s.latency_ms.map(|l| l.p99))),
        ],
        &marks,
    ));
    let mut memory_marks: Vec<Mark> = Vec::new();
    if let Some(budget) = mib(m.memory_budget_bytes) {
        memory_marks.push(Mark::AtY(budget, format!("budget {budget:.0} MiB")));
    }
    out.push_str(&marked_chart(
        "target memory by concurrency",
        &x,
        &Axis::linear("target memory, MiB (max of the step)"),
        &[line(
            "target memory",
            "#9467bd",
            at(&|s| mib(s.target_memory_bytes)),
        )],
        &memory_marks,
    ));
    out.push_str(&over_time(m));
    if out.is_empty() {
        out
    } else {
        format!("<div class=\"charts\">{out}</div>")
    }
}

/// Goodput and p95 second by second across the steps, each step's seconds after the last's, the steps' starts
/// marked: how each step settled and held.
fn over_time(m: &RampMetrics) -> String {
    let mut goodput = Vec::new();
    let mut p95 = Vec::new();
    let mut marks = Vec::new();
    let mut offset = 0.0;
    for step in &m.steps {
        if step.series.is_empty() {
            continue;
        }
        marks.push(Mark::AtX(offset, step.concurrency.to_string()));
        for p in &step.series {
            let t = offset + p.t_s;
            goodput.push((t, p.per_s(p.ok)));
            if let Some(v) = p.p95_ms {
                p95.push((t, v));
            }
        }
        offset += step.series.last().map_or(0.0, |p| p.t_s + p.width_s);
    }
    let x = Axis::linear("seconds of measured steps (each step's connections marked)");
    let mut out = marked_chart(
        "goodput over time, all steps",
        &x,
        &Axis::linear("successful requests per second"),
        &[Line {
            label: "successful/s".to_owned(),
            colour: "#2ca02c",
            points: goodput,
            dashed: false,
        }],
        &marks,
    );
    out.push_str(&marked_chart(
        "p95 over time, all steps",
        &x,
        &Axis::linear("p95 latency, ms"),
        &[Line {
            label: "p95".to_owned(),
            colour: "#ff7f0e",
            points: p95,
            dashed: false,
        }],
        &marks,
    ));
    out
}
